/** Reading and writing NumPy .npy files (v1–v3, little-endian, C order). */
import fs from 'node:fs';
import { DeltacError } from '../ir/errors.js';
import { halfToFloat32Array } from '../ir/half.js';

export type NpyDtype = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** Element data; float16 arrays are widened to float32, bool to uint8. */
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

const DESCR: Record<string, NpyDtype> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<f2': 'float16',
  '<i8': 'int64',
  '<i4': 'int32',
  '|u1': 'uint8',
  '|b1': 'bool',
};

export function readNpy(file: string): NpyArray {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `cannot read "${file}"`);
  }
  return parseNpy(buf, file);
}

export function parseNpy(buf: Uint8Array, label = 'array'): NpyArray {
  const bad = (why: string) => new DeltacError('DELTAC_E_NPY', `"${label}" is not a valid .npy file: ${why}`);
  if (buf.length < 10 || buf[0] !== 0x93 || String.fromCharCode(...buf.subarray(1, 6)) !== 'NUMPY') throw bad('bad magic');
  const major = buf[6]!;
  if (major < 1 || major > 3) throw bad(`unsupported format version ${major}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) throw bad('truncated header');
  const header = new TextDecoder('latin1').decode(buf.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw bad('unreadable header');
  if (fortran === 'True') throw bad('Fortran order is not supported');
  const dtype = DESCR[descr];
  if (!dtype) throw bad(`unsupported dtype ${descr}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`invalid shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count)) throw bad(`shape (${shapeText}) is too large`);
  const offset = start + headerLen;
  const size = { float32: 4, float64: 8, float16: 2, int64: 8, int32: 4, uint8: 1, bool: 1 }[dtype];
  if (buf.length - offset < count * size) throw bad(`holds ${buf.length - offset} data bytes, shape needs ${count * size}`);
  const bytes = buf.slice(offset, offset + count * size);
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  switch (dtype) {
    case 'float32':
      return { dtype, shape, data: new Float32Array(ab) };
    case 'float64':
      return { dtype, shape, data: new Float64Array(ab) };
    case 'int64':
      return { dtype, shape, data: new BigInt64Array(ab) };
    case 'int32':
      return { dtype, shape, data: new Int32Array(ab) };
    case 'float16': {
      return { dtype: 'float32', shape, data: halfToFloat32Array(new Uint16Array(ab)) };
    }
    default:
      return { dtype, shape, data: new Uint8Array(ab) };
  }
}

export function writeNpy(file: string, data: Float32Array, shape: number[]): void {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.set([0x93, ...Buffer.from('NUMPY'), 1, 0]);
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}
