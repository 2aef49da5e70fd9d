/**
 * Whole-denoiser latency in onnxruntime-node (CPU): the original UNet against the
 * deltac-converted one, one step at 512×512 and 768×768 (latents 64² and 96²),
 * batch 1, runs alternating in one process. And the floor: the converted UNet
 * against the same with every ΔConvBlock's output replaced by zeros
 * (models/floor.ts), so the blocks' share of the converted step is measured too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convert } from '../src/convert.js';
import { loadModel } from '../src/onnx/load.js';
import { saveModel } from '../src/onnx/save.js';
import type { Feeds } from '../src/runtime/onnxruntime.js';
import { MODELS_DIR } from '../test/helpers/paths.js';
import { ensureSd15FullWeights } from '../test/helpers/synthesize-sd15-full.js';
import { zeroBlocks } from './models/floor.js';
import { ensureSd15DeltaCheckpoint } from './models/sd15-delta.js';
import { seededFeed, timePair } from './timing.js';


export interface UnetResult {
  model: string;
  resolution: number;
  originalMs: number;
  convertedMs: number;
  /** converted / original latency (lower is better). */
  ratio: number;
  target?: number;
  met?: boolean;
}

/** The converted step against its floor (every ΔConvBlock's output replaced by zeros). */
export interface FloorResult {
  model: string;
  resolution: number;
  blocks: number;
  convertedMs: number;
  floorMs: number;
  /** converted / floor latency: 1 would be blocks that cost nothing. */
  ratio: number;
  /** (converted − floor) / converted: the ΔConvBlocks' share of the converted step. */
  blocksShare: number;
}

function feeds(resolution: number, textChannels: number, seq: number): Feeds {
  const l = resolution / 8;
  return {
    sample: { dtype: 'float32', shape: [1, 4, l, l], data: seededFeed([1, 4, l, l], 3) },
    timestep: { dtype: 'float32', shape: [1], data: Float32Array.of(500) },
    encoder_hidden_states: { dtype: 'float32', shape: [1, seq, textChannels], data: seededFeed([1, seq, textChannels], 4).map((x) => x * 0.5) },
  };
}

export async function benchUnets(options: { full?: boolean; runs?: number } = {}): Promise<{ steps: UnetResult[]; floor: FloorResult[] }> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-bench-unet-'));
  const results: UnetResult[] = [];
  const floor: FloorResult[] = [];
  const floorRow = async (model: string, converted: string, floored: string, blocks: number, res: number, f: Feeds, runs: number) => {
    const t = await timePair(converted, floored, f, runs);
    floor.push({ model, resolution: res, blocks, convertedMs: t.baselineMs, floorMs: t.candidateMs, ratio: t.baselineMs / t.candidateMs, blocksShare: (t.baselineMs - t.candidateMs) / t.baselineMs });
  };
  try {
    // SD1.5-mini (shared fixture, real distilled weights)
    const miniDir = path.join(MODELS_DIR, 'sd15-mini');
    const mini = loadModel(path.join(miniDir, 'model.onnx'));
    convert(mini, { weights: path.join(miniDir, 'delta.safetensors') });
    const miniOut = path.join(work, 'sd15-mini.delta.onnx');
    saveModel(mini, miniOut);
    const miniFloor = loadModel(path.join(miniDir, 'model.onnx'));
    convert(miniFloor, { weights: path.join(miniDir, 'delta.safetensors'), emit: 'fused' });
    const miniBlocks = zeroBlocks(miniFloor);
    const miniFloorOut = path.join(work, 'sd15-mini.floor.onnx');
    saveModel(miniFloor, miniFloorOut);
    for (const res of [512, 768]) {
      const t = await timePair(path.join(miniDir, 'model.onnx'), miniOut, feeds(res, 48, 7), options.runs ?? 5);
      results.push({ model: 'sd15-mini', resolution: res, originalMs: t.baselineMs, convertedMs: t.candidateMs, ratio: t.candidateMs / t.baselineMs });
      await floorRow('sd15-mini', miniOut, miniFloorOut, miniBlocks, res, feeds(res, 48, 7), options.runs ?? 5);
    }
    if (options.full !== false) {
      const dir = await ensureSd15FullWeights();
      const ckpt = ensureSd15DeltaCheckpoint();
      const full = loadModel(path.join(dir, 'model.graph.onnx'));
      convert(full, { weights: ckpt });
      // Written next to the original, referencing its weight files (no 3.4 GB copy).
      const fullOut = path.join(dir, 'bench-converted.onnx');
      saveModel(full, fullOut, { reuseWeights: true, force: true });
      const floored = loadModel(path.join(dir, 'model.graph.onnx'));
      convert(floored, { weights: ckpt, emit: 'fused' });
      const blocks = zeroBlocks(floored);
      const floorOut = path.join(dir, 'bench-floor.onnx');
      saveModel(floored, floorOut, { reuseWeights: true, force: true });
      try {
        for (const [res, target] of [[512, 0.8], [768, 0.6]] as const) {
          const t = await timePair(path.join(dir, 'model.graph.onnx'), fullOut, feeds(res, 768, 77), options.runs ?? 2);
          const ratio = t.candidateMs / t.baselineMs;
          results.push({ model: 'sd15-full', resolution: res, originalMs: t.baselineMs, convertedMs: t.candidateMs, ratio, target, met: ratio <= target });
          await floorRow('sd15-full', fullOut, floorOut, blocks, res, feeds(res, 768, 77), options.runs ?? 2);
        }
      } finally {
        for (const f of [fullOut, floorOut]) {
          fs.rmSync(f, { force: true });
          fs.rmSync(`${f}.data`, { force: true });
        }
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { steps: results, floor };
}
