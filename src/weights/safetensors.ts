/**
 * A validating, lazy safetensors reader: the header is parsed and checked
 * (size bound, JSON shape, dtypes, offsets in range and non-overlapping) without
 * reading tensor data; each tensor's bytes are read from the file on demand.
 */
import fs from 'node:fs';
import { DataType } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { FileByteSource } from '../onnx/external-data.js';
import { type NonFiniteSummary, mergeNonFinite, scanNonFinite } from './nonfinite.js';

/** Bytes read at a time when a tensor is only scanned (a multiple of every element size). */
const SCAN_PIECE = 4 * 2 ** 20;

/** safetensors' own limit on the JSON header. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPES: Record<string, { dtype: DataType; size: number }> = {
  F64: { dtype: DataType.DOUBLE, size: 8 },
  F32: { dtype: DataType.FLOAT, size: 4 },
  F16: { dtype: DataType.FLOAT16, size: 2 },
  BF16: { dtype: DataType.BFLOAT16, size: 2 },
  I64: { dtype: DataType.INT64, size: 8 },
  I32: { dtype: DataType.INT32, size: 4 },
  I16: { dtype: DataType.INT16, size: 2 },
  I8: { dtype: DataType.INT8, size: 1 },
  U64: { dtype: DataType.UINT64, size: 8 },
  U32: { dtype: DataType.UINT32, size: 4 },
  U16: { dtype: DataType.UINT16, size: 2 },
  U8: { dtype: DataType.UINT8, size: 1 },
  BOOL: { dtype: DataType.BOOL, size: 1 },
  F8_E4M3: { dtype: DataType.FLOAT8E4M3FN, size: 1 },
  F8_E5M2: { dtype: DataType.FLOAT8E5M2, size: 1 },
};

export interface SafetensorsEntry {
  key: string;
  /** safetensors dtype name (F32, F16, BF16 …). */
  dtypeName: string;
  dtype: DataType;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export class SafetensorsFile {
  readonly entries = new Map<string, SafetensorsEntry>();
  readonly metadata: Record<string, string>;
  private source: FileByteSource | undefined;
  private scratch: Buffer | undefined;

  private constructor(
    readonly path: string,
    entries: SafetensorsEntry[],
    metadata: Record<string, string>,
  ) {
    for (const e of entries) this.entries.set(e.key, e);
    this.metadata = metadata;
  }

  static open(file: string): SafetensorsFile {
    const bad = (why: string) =>
      new DeltacError('DELTAC_E_SAFETENSORS', `"${file}" is not a valid safetensors file: ${why}`, { file });
    let fd: number;
    try {
      // Not a plain file (a directory, or a FIFO that would block the open): refuse before opening.
      if (!fs.statSync(file).isFile()) {
        throw new DeltacError('DELTAC_E_FILE_READ', `weights file "${file}" is not a regular file; pass the .safetensors file itself`);
      }
      fd = fs.openSync(file, 'r');
    } catch (e) {
      if (e instanceof DeltacError) throw e;
      throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `weights file "${file}" does not exist or cannot be opened`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) throw bad(`it is ${size} bytes long, shorter than the 8-byte header length`);
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) throw bad(`its header claims ${headerLen} bytes (limit ${MAX_HEADER_BYTES})`);
      const n = Number(headerLen);
      if (8 + n > size) throw bad(`its header claims ${n} bytes but the file has ${size - 8} after the length (truncated?)`);
      const headerBuf = Buffer.alloc(n);
      fs.readSync(fd, headerBuf, 0, n, 8);
      let header: unknown;
      try {
        header = JSON.parse(headerBuf.toString('utf8'));
      } catch (e) {
        throw bad(`its header is not JSON (${(e as Error).message})`);
      }
      if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('its header is not a JSON object');
      const dataStart = 8 + n;
      const dataSize = size - dataStart;
      const entries: SafetensorsEntry[] = [];
      let metadata: Record<string, string> = {};
      for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
        if (key === '__metadata__') {
          if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('__metadata__ is not an object');
          if (!Object.values(raw).every((v) => typeof v === 'string')) throw bad('__metadata__ has values that are not strings');
          metadata = raw as Record<string, string>;
          continue;
        }
        entries.push(parseEntry(key, raw, dataStart, dataSize, bad));
      }
      // Data ranges must not overlap.
      const sorted = [...entries].sort((a, b) => a.begin - b.begin);
      for (let i = 1; i < sorted.length; i++) {
        const prev = sorted[i - 1]!;
        const cur = sorted[i]!;
        if (cur.begin < prev.end) throw bad(`the data of "${cur.key}" overlaps the data of "${prev.key}"`);
      }
      return new SafetensorsFile(file, entries, metadata);
    } catch (e) {
      if (e instanceof DeltacError) throw e;
      throw new DeltacError('DELTAC_E_FILE_READ', `cannot read weights file "${file}": ${(e as Error).message}`);
    } finally {
      fs.closeSync(fd);
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Reads one tensor (its bytes are loaded now); into `into` when given (at least its size). */
  tensor(key: string, into?: Uint8Array): Tensor {
    const e = this.entries.get(key);
    if (!e) throw new DeltacError('DELTAC_E_WEIGHT_MISSING', `"${this.path}" has no tensor "${key}"`);
    const bytes = into ? into.subarray(0, e.end - e.begin) : Buffer.allocUnsafe(e.end - e.begin); // filled completely below
    try {
      const fd = fs.openSync(this.path, 'r');
      try {
        let done = 0;
        while (done < bytes.length) {
          const got = fs.readSync(fd, bytes, done, bytes.length - done, e.begin + done);
          if (got === 0) throw new DeltacError('DELTAC_E_SAFETENSORS', `"${this.path}" ended while reading "${key}" (truncated?)`);
          done += got;
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      if (err instanceof DeltacError) throw err;
      throw new DeltacError('DELTAC_E_FILE_READ', `cannot read "${key}" from "${this.path}": ${(err as Error).message}`);
    }
    return new Tensor(e.dtype, [...e.shape], { kind: 'inline', bytes, encoding: 'raw' }, key);
  }

  /**
   * Scans one tensor for NaN/±Inf piece by piece through one reused buffer: no
   * tensor-sized allocation (fresh pages cost a page fault each), nothing kept.
   */
  scanNonFinite(key: string): NonFiniteSummary | null {
    const e = this.entries.get(key);
    if (!e) throw new DeltacError('DELTAC_E_WEIGHT_MISSING', `"${this.path}" has no tensor "${key}"`);
    const size = DTYPES[e.dtypeName]!.size;
    this.scratch ??= Buffer.allocUnsafe(SCAN_PIECE);
    const buf = this.scratch;
    let total: NonFiniteSummary | null = null;
    try {
      const fd = fs.openSync(this.path, 'r');
      try {
        for (let at = e.begin; at < e.end; ) {
          const want = Math.min(buf.length, e.end - at);
          let got = 0;
          while (got < want) {
            const n = fs.readSync(fd, buf, got, want - got, at + got);
            if (n === 0) throw new DeltacError('DELTAC_E_SAFETENSORS', `"${this.path}" ended while reading "${key}" (truncated?)`);
            got += n;
          }
          const part = scanNonFinite(buf.subarray(0, got), e.dtype, (at - e.begin) / size);
          if (part) total = total ? mergeNonFinite(total, part) : part;
          at += got;
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      if (err instanceof DeltacError) throw err;
      throw new DeltacError('DELTAC_E_FILE_READ', `cannot read "${key}" from "${this.path}": ${(err as Error).message}`);
    }
    return total;
  }

  /**
   * One tensor whose bytes stay in the file: read again whenever they are needed,
   * and copied file to file by a saver. `finite`: the caller has scanned them.
   */
  deferredTensor(key: string, finite = false): Tensor {
    const e = this.entries.get(key);
    if (!e) throw new DeltacError('DELTAC_E_WEIGHT_MISSING', `"${this.path}" has no tensor "${key}"`);
    this.source ??= new FileByteSource(this.path, this.path);
    const t = Tensor.deferred(e.dtype, [...e.shape], (into) => this.tensor(key, into).bytes(), {
      description: `"${key}" of "${this.path}"`,
      range: { source: this.source, offset: e.begin },
      finite,
    });
    t.name = key;
    return t;
  }
}

function parseEntry(
  key: string,
  raw: unknown,
  dataStart: number,
  dataSize: number,
  bad: (why: string) => DeltacError,
): SafetensorsEntry {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`entry "${key}" is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !DTYPES[dtype]) throw bad(`tensor "${key}" has unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`tensor "${key}" has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw bad(`tensor "${key}" has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [b, e] = offsets as [number, number];
  if (e > dataSize) throw bad(`tensor "${key}" ends at byte ${e} of a ${dataSize}-byte data section (truncated?)`);
  const info = DTYPES[dtype]!;
  const count = (shape as number[]).reduce((a, d) => a * d, 1);
  if ((e - b) !== count * info.size) {
    throw bad(`tensor "${key}" (${dtype}[${shape.join(',')}]) needs ${count * info.size} bytes but its offsets span ${e - b}`);
  }
  return { key, dtypeName: dtype, dtype: info.dtype, shape: [...(shape as number[])], begin: dataStart + b, end: dataStart + e };
}
