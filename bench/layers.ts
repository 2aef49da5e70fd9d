/**
 * onnxruntime-node CPU latency of one SD1.5 self-attention layer (as exported)
 * against the ΔConvBlock deltac lowers it to, at the SD1.5 shapes. Both models are
 * built and converted here; runs alternate within one process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attentionCost, blockCost } from '../src/analysis/flops.js';
import { convert } from '../src/convert.js';
import { saveModel } from '../src/onnx/save.js';
import { attentionLayerModel, writeLayerCheckpoint, type LayerShape } from './models/attention-layer.js';
import { seededFeed, timePair } from './timing.js';

export const LAYER_SHAPES: (LayerShape & { target: number })[] = [
  { height: 64, width: 64, channels: 320, target: 20 },
  { height: 32, width: 32, channels: 640, target: 5 },
  { height: 16, width: 16, channels: 1280, target: 3.5 },
];

export interface LayerResult {
  shape: string;
  attentionMs: number;
  deltaMs: number;
  speedup: number;
  flopRatio: number;
  target: number;
  met: boolean;
}

export async function benchLayers(runs = 7, shapes = LAYER_SHAPES): Promise<LayerResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-bench-layer-'));
  const results: LayerResult[] = [];
  try {
    for (const s of shapes) {
      const model = attentionLayerModel(s);
      const attnFile = path.join(dir, 'attention.onnx');
      saveModel(model, attnFile);
      const ckpt = path.join(dir, 'delta.safetensors');
      writeLayerCheckpoint(ckpt, s);
      const report = convert(model, { weights: ckpt });
      if (report.layers[0]?.status !== 'converted') throw new Error('the benchmark layer was not converted');
      const deltaFile = path.join(dir, 'delta.onnx');
      saveModel(model, deltaFile);
      const shape = [1, s.height, s.width, s.channels];
      const feeds = { sample: { dtype: 'float32' as const, shape, data: seededFeed(shape) } };
      const t = await timePair(attnFile, deltaFile, feeds, runs);
      const l = report.layers[0]!;
      const flopRatio =
        attentionCost({ tokens: s.height * s.width, channels: s.channels, heads: 8 }).flops /
        blockCost({ height: s.height, width: s.width, channels: s.channels, inner: l.inner!, kernel: l.kernel!, scales: l.scales!, gate: l.gate! }).flops;
      results.push({
        shape: `${s.height}×${s.width}×${s.channels}`,
        attentionMs: t.baselineMs,
        deltaMs: t.candidateMs,
        speedup: t.speedup,
        flopRatio,
        target: s.target,
        met: t.speedup >= s.target,
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
