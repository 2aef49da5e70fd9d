/** Writes safetensors files for tests (header JSON + little-endian data, 8-byte aligned header). */
import fs from 'node:fs';
import { float32ToBfloat16Bits, float32ToHalfBits } from '../../src/ir/half.js';
import { seededRandom } from './random.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export interface TensorSpec {
  dtype?: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export function encodeFloats(data: Float32Array, dtype: SafetensorsDtype): Buffer {
  if (dtype === 'F32') return Buffer.from(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = Buffer.alloc(data.length * 2);
  for (let i = 0; i < data.length; i++) out.writeUInt16LE(dtype === 'F16' ? float32ToHalfBits(data[i]!) : float32ToBfloat16Bits(data[i]!), i * 2);
  return out;
}

export function writeSafetensors(file: string, tensors: Record<string, TensorSpec>, metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [key, t] of Object.entries(tensors)) {
    const dtype = t.dtype ?? 'F32';
    const bytes = encodeFloats(t.data, dtype);
    header[key] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  fs.writeFileSync(file, Buffer.concat([encodeHeader(header), ...chunks]));
}

/** The file's start: the header's byte length (u64 LE), then the header JSON padded to 8 bytes. */
export function encodeHeader(header: Record<string, unknown>): Buffer {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json)]);
}

export { seededRandom } from './random.js';

export interface DeltaBlockSpec {
  /** Key prefix of the block, e.g. `down_blocks.0.attentions.0.transformer_blocks.0`. */
  block: string;
  channels: number;
  inner?: number;
  kernel: number;
  gates?: number;
}

/** The tensors of a ΔConvFusion checkpoint of `blocks` (SPEC.md §2), in file order, with the scale of their random values. */
export function deltaCheckpointLayout(blocks: DeltaBlockSpec[]): { key: string; shape: number[]; scale: number }[] {
  const out: { key: string; shape: number[]; scale: number }[] = [];
  for (const b of blocks) {
    const C = b.channels;
    const Ci = b.inner ?? C / 2;
    const S = b.gates ?? 2;
    const p = `${b.block}.conv1`;
    out.push({ key: `${p}.conv_up.weight`, shape: [Ci, C], scale: 1 / Math.sqrt(C) }, { key: `${p}.conv_up.bias`, shape: [Ci], scale: 0.1 });
    for (let g = 0; g < S; g++) out.push({ key: `${p}.gates.${g}.conv_spatial.weight`, shape: [b.kernel, b.kernel, Ci], scale: 1 / b.kernel });
    out.push(
      { key: `${p}.conv_out.weight`, shape: [C, (S * Ci) / 2], scale: 1 / Math.sqrt((S * Ci) / 2) },
      { key: `${p}.conv_out.bias`, shape: [C], scale: 0.1 },
      { key: `${p}.conv_pool.weight`, shape: [C, C], scale: 1 / Math.sqrt(C) },
      { key: `${p}.conv_pool.bias`, shape: [C], scale: 0.1 },
    );
  }
  return out;
}

/** Seeded values for one tensor of deltaCheckpointLayout: uniform in ±scale, drawn from `rand` in order. */
export function seededValues(rand: () => number, shape: number[], scale: number): Float32Array {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (rand() * 2 - 1) * scale;
  return data;
}

/** ΔConvFusion checkpoint tensors (SPEC.md §2) with small seeded random values. */
export function deltaCheckpointTensors(blocks: DeltaBlockSpec[], seed = 1, dtype: SafetensorsDtype = 'F32'): Record<string, TensorSpec> {
  const rand = seededRandom(seed);
  return Object.fromEntries(deltaCheckpointLayout(blocks).map((t) => [t.key, { dtype, shape: t.shape, data: seededValues(rand, t.shape, t.scale) }]));
}
