/**
 * Tensors whose bytes live inline, in an external file (read lazily through a
 * ByteSource), are computed when read ("deferred": a checkpoint's weight, its
 * transpose or cast, held by no buffer between reads), or nowhere (an "elided"
 * tensor from the textual IR, known only by its digest). Raw bytes are always
 * little-endian, as in ONNX raw_data.
 */
import { DataType, byteSizeOf, dtypeName } from './dtype.js';
import { DeltacError } from './errors.js';
import { bfloat16ToFloat32Array, float32ToBfloat16Array, float32ToHalfArray, halfToFloat32Array } from './half.js';

/** Typed arrays use the platform's byte order; ONNX raw data is little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Random access to bytes that live outside the protobuf (an external-data file). */
export interface ByteSource {
  /** What to call this source in messages (path relative to the model). */
  readonly description: string;
  /** Total size in bytes. */
  size(): number;
  read(offset: number, length: number): Uint8Array;
}

/** How a tensor's bytes were encoded in the protobuf, kept so that saving can reproduce it. */
export type InlineEncoding = 'raw' | 'typed';

export type TensorStorage =
  | { kind: 'inline'; bytes: Uint8Array; encoding: InlineEncoding }
  | {
      kind: 'external';
      source: ByteSource;
      /** `location` as written in the model. */
      location: string;
      offset: number;
      length: number;
      /** Other external_data entries (e.g. checksum), kept as they were. */
      extraEntries: [string, string][];
    }
  | {
      kind: 'deferred';
      /**
       * The bytes, computed (or read) anew on every call: nothing is kept between calls.
       * Given `into` (at least `length` bytes), it may put them there and return a view
       * of it, so that a saver can use the same buffers for every tensor.
       */
      read: (into?: Uint8Array) => Uint8Array;
      length: number;
      /** What the bytes are, for messages (e.g. `conv_pool.weight of checkpoint "delta.safetensors", transposed`). */
      description: string;
      /**
       * Where the bytes lie verbatim when they are a range of a file (a checkpoint's
       * tensor): savers copy the range file to file instead of calling `read`.
       */
      range?: { source: ByteSource; offset: number };
      /**
       * The values are known to be finite (read from a scanned file, or derived from
       * finite values by a map that keeps them finite, like a transpose): not scanned again.
       */
      finite?: boolean;
    }
  | { kind: 'strings'; values: Uint8Array[] }
  | { kind: 'elided'; digest: string };

/** Options of `Tensor.deferred`. */
export interface DeferredOptions {
  description: string;
  range?: { source: ByteSource; offset: number };
  finite?: boolean;
}

export class Tensor {
  /** Name as stored in the proto (only meaningful for attribute tensors; initializers use their Value's name). */
  name: string;
  dtype: DataType;
  dims: number[];
  storage: TensorStorage;
  docString = '';
  metadataProps: [string, string][] = [];
  /** Proto fields deltac does not model (e.g. `segment`), carried through unchanged. */
  extra: Record<string, unknown> = {};

  constructor(dtype: DataType, dims: number[], storage: TensorStorage, name = '') {
    this.dtype = dtype;
    this.dims = dims;
    this.storage = storage;
    this.name = name;
  }

  get elementCount(): number {
    return this.dims.reduce((a, b) => a * b, 1);
  }

  /** Size of the data in raw little-endian form. */
  get byteLength(): number {
    if (this.storage.kind === 'strings') return this.storage.values.reduce((a, v) => a + v.length, 0);
    return byteSizeOf(this.dtype, this.elementCount);
  }

  get isExternal(): boolean {
    return this.storage.kind === 'external';
  }

  /**
   * The raw bytes; reads external data from its file, or computes a deferred tensor's,
   * on every call (callers decide what to keep). `into`: a buffer a deferred tensor may
   * fill instead of allocating (the result is then a view of it, valid until its next use).
   */
  bytes(into?: Uint8Array): Uint8Array {
    const s = this.storage;
    switch (s.kind) {
      case 'inline':
        return s.bytes;
      case 'external':
        return s.source.read(s.offset, s.length);
      case 'deferred': {
        const b = s.read(into && into.length >= s.length ? into : undefined);
        if (b.length !== s.length) {
          throw new DeltacError('DELTAC_E_TENSOR_DATA', `${s.description}: ${b.length} bytes where ${s.length} were expected (did the file change?)`);
        }
        return b;
      }
      case 'strings':
        throw new DeltacError('DELTAC_E_TENSOR_DATA', `tensor "${this.name}" holds strings, not numeric data`);
      case 'elided':
        throw new DeltacError(
          'DELTAC_E_TENSOR_DATA',
          `tensor "${this.name}" has no data (it was elided in the textual IR, digest ${s.digest}); load the model from ONNX to compute with it`,
        );
    }
  }

  /**
   * The elements as float32 for reading only: a view of the bytes when they are
   * aligned little-endian f32 (no copy), else the same as toFloat32().
   */
  readFloat32(): Float32Array {
    if (this.dtype === DataType.FLOAT && LITTLE_ENDIAN && this.storage.kind === 'inline') {
      const b = this.storage.bytes;
      if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, this.elementCount);
    }
    return this.toFloat32();
  }

  /** The elements as float32 (from f32, f16, bf16, f64, or any integer type). Always a copy. */
  toFloat32(): Float32Array {
    const b = this.bytes();
    const n = this.elementCount;
    if (this.dtype === DataType.FLOAT && LITTLE_ENDIAN) {
      // raw_data is little-endian f32: one memcpy into an aligned buffer
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + n * 4));
    }
    if ((this.dtype === DataType.FLOAT16 || this.dtype === DataType.BFLOAT16) && LITTLE_ENDIAN) {
      // whole-array conversion over a Uint16Array view (a copy first only when the bytes are unaligned)
      const h = b.byteOffset % 2 === 0 ? new Uint16Array(b.buffer, b.byteOffset, n) : new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + n * 2));
      return this.dtype === DataType.FLOAT16 ? halfToFloat32Array(h) : bfloat16ToFloat32Array(h);
    }
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out = new Float32Array(n);
    switch (this.dtype) {
      case DataType.FLOAT:
        for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
        return out;
      case DataType.FLOAT16:
      case DataType.BFLOAT16: {
        // big-endian host: swap the bytes into a native Uint16Array, then convert
        const h = new Uint16Array(n);
        for (let i = 0; i < n; i++) h[i] = dv.getUint16(i * 2, true);
        return this.dtype === DataType.FLOAT16 ? halfToFloat32Array(h, out) : bfloat16ToFloat32Array(h, out);
      }
      case DataType.DOUBLE:
        for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
        return out;
      default: {
        const ints = this.toNumbers();
        for (let i = 0; i < n; i++) out[i] = ints[i]!;
        return out;
      }
    }
  }

  /** The elements as JS numbers (integer and float types; int64 beyond 2^53 loses precision). */
  toNumbers(): number[] {
    const b = this.bytes();
    const n = this.elementCount;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out: number[] = new Array(n);
    const read = (size: number, get: (off: number) => number) => {
      for (let i = 0; i < n; i++) out[i] = get(i * size);
      return out;
    };
    switch (this.dtype) {
      case DataType.INT64:
        return read(8, (o) => Number(dv.getBigInt64(o, true)));
      case DataType.UINT64:
        return read(8, (o) => Number(dv.getBigUint64(o, true)));
      case DataType.INT32:
        return read(4, (o) => dv.getInt32(o, true));
      case DataType.UINT32:
        return read(4, (o) => dv.getUint32(o, true));
      case DataType.INT16:
        return read(2, (o) => dv.getInt16(o, true));
      case DataType.UINT16:
        return read(2, (o) => dv.getUint16(o, true));
      case DataType.INT8:
        return read(1, (o) => dv.getInt8(o));
      case DataType.UINT8:
      case DataType.BOOL:
        return read(1, (o) => dv.getUint8(o));
      case DataType.FLOAT:
      case DataType.FLOAT16:
      case DataType.BFLOAT16:
      case DataType.DOUBLE:
        return Array.from(this.toFloat32());
      default:
        throw new DeltacError('DELTAC_E_TENSOR_DATA', `cannot read elements of type ${dtypeName(this.dtype)} as numbers`);
    }
  }

  /** A float tensor of `dtype` (f32, f16, bf16, f64) built from float32 values. */
  static fromFloat32(values: Float32Array | number[], dims: number[], dtype: DataType = DataType.FLOAT): Tensor {
    const n = values.length;
    if (dtype === DataType.FLOAT && LITTLE_ENDIAN) {
      const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
      const bytes = new Uint8Array(f32.buffer.slice(f32.byteOffset, f32.byteOffset + n * 4));
      return new Tensor(dtype, dims, { kind: 'inline', bytes, encoding: 'raw' });
    }
    const size = byteSizeOf(dtype, n);
    const bytes = new Uint8Array(size);
    const dv = new DataView(bytes.buffer);
    switch (dtype) {
      case DataType.FLOAT:
        for (let i = 0; i < n; i++) dv.setFloat32(i * 4, values[i]!, true);
        break;
      case DataType.FLOAT16:
      case DataType.BFLOAT16: {
        // whole-array conversion (numbers are rounded to float32 first, as the scalar path did)
        const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
        const h = new Uint16Array(bytes.buffer, 0, n);
        if (dtype === DataType.FLOAT16) float32ToHalfArray(f32, h);
        else float32ToBfloat16Array(f32, h);
        if (!LITTLE_ENDIAN) for (let i = 0; i < n; i++) dv.setUint16(i * 2, h[i]!, true);
        break;
      }
      case DataType.DOUBLE:
        for (let i = 0; i < n; i++) dv.setFloat64(i * 8, values[i]!, true);
        break;
      default:
        throw new DeltacError('DELTAC_E_TENSOR_DATA', `fromFloat32 cannot produce ${dtypeName(dtype)}`);
    }
    return new Tensor(dtype, dims, { kind: 'inline', bytes, encoding: 'raw' });
  }

  /** An int64 tensor (shapes, axes, indices). */
  static fromInt64(values: number[], dims: number[] = [values.length]): Tensor {
    const bytes = new Uint8Array(values.length * 8);
    const dv = new DataView(bytes.buffer);
    values.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
    return new Tensor(DataType.INT64, dims, { kind: 'inline', bytes, encoding: 'raw' });
  }

  /**
   * A tensor whose bytes are computed by `read` each time they are needed (none kept
   * in between): weights taken from a checkpoint and re-laid out, written by the
   * saver straight from their source.
   */
  static deferred(dtype: DataType, dims: number[], read: (into?: Uint8Array) => Uint8Array, options: DeferredOptions): Tensor {
    const length = byteSizeOf(dtype, dims.reduce((a, b) => a * b, 1));
    return new Tensor(dtype, dims, { kind: 'deferred', read, length, ...options });
  }

  /**
   * A copy of this tensor converted to another float dtype; deferred when this one
   * is (the cast runs whenever its bytes are read).
   */
  castTo(dtype: DataType): Tensor {
    if (dtype === this.dtype) return this;
    const s = this.storage;
    if (s.kind === 'deferred') {
      const from = this.dtype;
      const dims = [...this.dims];
      // Widening keeps finite values finite; narrowing (f32 → f16) can overflow.
      const widening = (dtype === DataType.FLOAT || dtype === DataType.DOUBLE) && (from === DataType.FLOAT16 || from === DataType.BFLOAT16 || from === DataType.FLOAT);
      const eager = () => new Tensor(from, dims, { kind: 'inline', bytes: this.bytes(), encoding: 'raw' });
      return Tensor.deferred(dtype, dims, () => eager().castTo(dtype).bytes(), {
        description: `${s.description}, cast to ${dtypeName(dtype)}`,
        finite: s.finite === true && widening,
      });
    }
    const f32 = this.toFloat32();
    if (dtype === DataType.FLOAT && LITTLE_ENDIAN) {
      // toFloat32() made a fresh array: its bytes become the tensor's, with no second copy
      return new Tensor(dtype, [...this.dims], { kind: 'inline', bytes: new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength), encoding: 'raw' });
    }
    return Tensor.fromFloat32(f32, [...this.dims], dtype);
  }
}
