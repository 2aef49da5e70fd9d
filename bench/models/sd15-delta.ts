/** Seeded ΔConvFusion checkpoints (K = 9) of the 16 SD1.5 blocks, as the sd15-full benchmarks bind them. */
import fs from 'node:fs';
import path from 'node:path';
import { CACHE_DIR } from '../../test/helpers/paths.js';
import { deltaCheckpointTensors, type SafetensorsDtype, writeSafetensors } from '../../test/helpers/safetensors-writer.js';
import { SD15_BLOCKS } from './sd15-blocks.js';

export function writeSd15DeltaCheckpoint(file: string, seed: number, dtype: SafetensorsDtype = 'F32'): void {
  writeSafetensors(file, deltaCheckpointTensors(SD15_BLOCKS.map((b) => ({ ...b, kernel: 9 })), seed, dtype));
}

/**
 * The checkpoint (seed 11, F32) the convert, analyze and UNet benchmarks share, written
 * once to the cache (temporary file + rename: an interrupted run leaves no half file behind).
 */
export function ensureSd15DeltaCheckpoint(): string {
  const file = path.join(CACHE_DIR, 'sd15-full-delta.safetensors');
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeSd15DeltaCheckpoint(tmp, 11);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return file;
}
