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
import { deltaCheckpointLayout, encodeHeader, seededValues } from '../../test/helpers/safetensors-writer.js';

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
  const tensors = deltaCheckpointLayout(blocks.map((b) => ({ block: b.path, channels: b.channels, kernel: b.kernel })));
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
      const data = seededValues(rand, t.shape, t.scale);
      const bytes = dtype === 'F16' ? new Uint8Array(float32ToHalfArray(data).buffer) : new Uint8Array(data.buffer);
      for (let w = 0; w < bytes.length; ) w += fs.writeSync(fd, bytes, w, bytes.length - w);
    }
  } finally {
    fs.closeSync(fd);
  }
}
