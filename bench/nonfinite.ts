/**
 * What refusing NaN/±Inf weights costs. A full-size SD1.5 ΔConvFusion checkpoint
 * (16 blocks, K = 9, the real channel counts: 103 MB in F32) in F32, F16 and BF16:
 * the scan of every tensor (in place, as Checkpoint.read does it) against reading
 * the tensors from the file (warm page cache) and against the whole in-memory
 * conversion of the full SD1.5 UNet graph with that checkpoint (which includes the
 * scan). The least of 7 scans and reads and of 3 conversions: on a shared machine
 * the minimum is the run least disturbed by others.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convert } from '../src/convert.js';
import { loadModel } from '../src/onnx/load.js';
import { Checkpoint } from '../src/weights/checkpoint.js';
import { scanNonFinite } from '../src/weights/nonfinite.js';
import { MODELS_DIR } from '../test/helpers/paths.js';
import type { SafetensorsDtype } from '../test/helpers/safetensors-writer.js';
import { writeSd15DeltaCheckpoint } from './models/sd15-delta.js';
import { timeMs } from './timing.js';


export interface NonFiniteResult {
  dtype: SafetensorsDtype;
  bytes: number;
  /** Reading every tensor of the checkpoint (no scan). */
  readMs: number;
  /** The scan alone over the tensors in memory. */
  scanMs: number;
  scanGBps: number;
  /** convert() of the sd15-full graph with this checkpoint, scan included. */
  convertMs: number;
  /** scanMs / convertMs. */
  share: number;
  target: number;
  met: boolean;
}

/** The scan may take at most this share of the conversion. */
const TARGET = 0.05;

export async function benchNonFinite(): Promise<NonFiniteResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-bench-nonfinite-'));
  try {
    const results: NonFiniteResult[] = [];
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const file = path.join(dir, `sd15-delta-${dtype}.safetensors`);
      writeSd15DeltaCheckpoint(file, 7, dtype);
      const ckpt = Checkpoint.open(file);
      const keys = [...ckpt.file.entries.keys()];
      const read = () => keys.map((k) => ckpt.file.tensor(k));
      const tensors = read();
      const scan = () => tensors.forEach((t) => scanNonFinite(t.bytes(), t.dtype));
      scan();
      const reads: number[] = [];
      const scans: number[] = [];
      for (let i = 0; i < 7; i++) {
        reads.push(timeMs(read));
        scans.push(timeMs(scan));
      }
      const converts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const model = loadModel(path.join(MODELS_DIR, 'sd15-full', 'model.graph.onnx'), { missingExternalData: 'warn' });
        converts.push(timeMs(() => convert(model, { weights: file })));
      }
      const convertMs = Math.min(...converts);
      const scanMs = Math.min(...scans);
      const bytes = fs.statSync(file).size;
      const share = scanMs / convertMs;
      results.push({ dtype, bytes, readMs: Math.min(...reads), scanMs, scanGBps: bytes / (scanMs / 1000) / 1e9, convertMs, share, target: TARGET, met: share <= TARGET });
    }
    return results;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
