/**
 * The report's pictures when only some layers have a ΔConvBlock ERF (the checkpoint
 * lacks a block, or its C differs): every layer keeps three panels, so the overview's
 * per-layer grouping does not depend on which layer comes first.
 */
import fs from 'node:fs';
import path from 'node:path';
import pngjs from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { type AnalysisReport, type LayerAnalysis, writeAnalysisReport } from '../../src/analysis/analyze/index.js';
import { makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-analyze-pictures-');
afterAll(() => tmp.cleanup());

function layer(name: string, withBlock: boolean): LayerAnalysis {
  const H = 4;
  const W = 4;
  const erf = Float64Array.from({ length: H * W }, (_, i) => i + 1);
  return {
    name, family: 'unet', height: H, width: W, channels: 8, heads: 1, probsSource: 'captured',
    map: { data: Float64Array.from({ length: (2 * H - 1) * (2 * W - 1) }, (_, i) => i), height: H, width: W, rows: 1 },
    locality: null, erfToken: 10, erfSamples: 1, attentionErf: erf, blockErf: withBlock ? erf : null,
    check: { output: null, probs: null }, checkpoint: null, fidelity: null, notes: [],
  };
}

describe('deltac analyze pictures with a ΔConvBlock ERF on some layers only', () => {
  it('gives every layer three panels, in its own picture and in overview.png', () => {
    const report: AnalysisReport = {
      model: 'm.onnx', inputs: 'test', latent: null, queriesPerLayer: 1, seed: 0, weights: 'ckpt', recommendMass: 0.8,
      layers: [layer('a.attn1', false), layer('b.attn1', true)], levels: [], notes: [], seconds: 0,
    };
    const out = path.join(tmp.dir, 'mixed');
    const files = writeAnalysisReport(report, out);
    const width = (f: string) => pngjs.PNG.sync.read(fs.readFileSync(path.join(out, f))).width;
    const pictures = files.filter((f) => f.startsWith('layers/'));
    expect(pictures).toHaveLength(2);
    // 7×7 map at zoom 27 (189 px), two 4×4 ERFs at zoom 48 (192 px), gaps of 8 px
    expect(pictures.map(width)).toEqual([8 + 189 + 8 + 192 + 8 + 192 + 8, 8 + 189 + 8 + 192 + 8 + 192 + 8]);
    // overview: 91 + 96 + 96 px per layer (zooms 13 and 24), 8 px gaps, 32 px between layers
    expect(width('overview.png')).toBe(8 + (91 + 8) + (96 + 8) + (96 + 32) + (91 + 8) + (96 + 8) + (96 + 8));
  });
});
