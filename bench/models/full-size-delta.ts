/**
 * Seeded ΔConvFusion checkpoints for the full-size layouts (SDXL base: 70 blocks,
 * 829 MB in fp32), streamed to the file one tensor at a time and cached under
 * bench/cache/full-size (temporary file + rename).
 */
import fs from 'node:fs';
import path from 'node:path';
import { float32ToHalfArray } from '../../src/ir/half.js';
import type { SelfBlock } from '../../test/fixtures/exports/index.js';
import { CACHE_DIR } from '../../test/helpers/paths.js';
import { seededRandom } from '../../test/helpers/random.js';
import { encodeHeader } from '../../test/helpers/safetensors-writer.js';

/** The checkpoint of `blocks` (K per block, S = 2 gates, Ci = C/2) in F32 or F16; written on first use. */
export function ensureFullSizeDeltaCheckpoint(name: string, blocks: SelfBlock[], dtype: 'F32' | 'F16', seed = 11): string {
  const dir = path.join(CACHE_DIR, 'full-size');
  const file = path.join(dir, `${name}-delta-${dtype.toLowerCase()}-seed-${seed}.safetensors`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeCheckpoint(tmp, blocks, dtype, seed);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return file;
}

function writeCheckpoint(file: string, blocks: SelfBlock[], dtype: 'F32' | 'F16', seed: number): void {
  const size = dtype === 'F16' ? 2 : 4;
  const tensors: { key: string; shape: number[]; scale: number }[] = [];
  for (const b of blocks) {
    const C = b.channels;
    const Ci = C / 2;
    const p = `${b.path}.conv1`;
    tensors.push({ key: `${p}.conv_up.weight`, shape: [Ci, C], scale: 1 / Math.sqrt(C) }, { key: `${p}.conv_up.bias`, shape: [Ci], scale: 0.1 });
    for (let g = 0; g < 2; g++) tensors.push({ key: `${p}.gates.${g}.conv_spatial.weight`, shape: [b.kernel, b.kernel, Ci], scale: 1 / b.kernel });
    tensors.push(
      { key: `${p}.conv_out.weight`, shape: [C, Ci], scale: 1 / Math.sqrt(Ci) },
      { key: `${p}.conv_out.bias`, shape: [C], scale: 0.1 },
      { key: `${p}.conv_pool.weight`, shape: [C, C], scale: 1 / Math.sqrt(C) },
      { key: `${p}.conv_pool.bias`, shape: [C], scale: 0.1 },
    );
  }
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * size;
    header[t.key] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const fd = fs.openSync(file, 'wx');
  try {
    const start = encodeHeader(header);
    fs.writeSync(fd, start);
    const rand = seededRandom(seed);
    for (const t of tensors) {
      const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) data[i] = (rand() * 2 - 1) * t.scale;
      const bytes = dtype === 'F16' ? new Uint8Array(float32ToHalfArray(data).buffer) : new Uint8Array(data.buffer);
      for (let w = 0; w < bytes.length; ) w += fs.writeSync(fd, bytes, w, bytes.length - w);
    }
  } finally {
    fs.closeSync(fd);
  }
}
