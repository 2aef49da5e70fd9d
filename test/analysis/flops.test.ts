/** The FLOP and memory counts, checked against values computed by hand for one SD1.5 layer. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { attentionCost, blockCost, flashAttentionBytes, localAttentionCost } from '../../src/analysis/flops.js';
import { reportModel } from '../../src/analysis/report.js';
import { convert } from '../../src/convert.js';
import { loadModel } from '../../src/onnx/load.js';
import { MODELS_DIR } from '../helpers/paths.js';

describe('FLOPs of one SD1.5 layer at 64×64×320 (8 heads; ΔConvBlock Ci = 160, K = 9, scales 1, ½, simple gate)', () => {
  // N = 4096 tokens, C = 320.
  it('self-attention', () => {
    const projections = 3 * 2 * 4096 * 320 * 320; //  2,516,582,400  (to_q, to_k, to_v)
    const scores = 2 * 4096 * 4096 * 320; //           10,737,418,240  (Q·Kᵀ)
    const softmax = 3 * 8 * 4096 * 4096; //               402,653,184
    const weighted = 2 * 4096 * 4096 * 320; //         10,737,418,240  (P·V)
    const out = 2 * 4096 * 320 * 320 + 4096 * 320; //     840,171,520  (to_out + bias)
    expect(projections + scores + softmax + weighted + out).toBe(25_234_243_584);
    const c = attentionCost({ tokens: 4096, channels: 320, heads: 8 });
    expect(c.flops).toBe(25_234_243_584);
    // q, k, v and 8 heads of 4096×4096 scores in f32
    expect(c.activationBytes).toBe((3 * 4096 * 320 + 8 * 4096 * 4096) * 4);
  });

  it('ΔConvBlock', () => {
    const convUp = 2 * 4096 * 320 * 160 + 4096 * 160; //   420,085,760
    const gate0 = 2 * 4096 * 160 * 81 + 4096 * 80; //      106,496,000  (depthwise 9×9, A·B)
    const gate1 = 4096 * 160 + 2 * 1024 * 160 * 81 + 1024 * 80 + 7 * 4096 * 80; // 29,573,120 (pool, conv 32×32, A·B, bilinear)
    const convOut = 2 * 4096 * 160 * 320 + 4096 * 320; //  420,741,120
    const pool = 4096 * 320 + 2 * 320 * 320 + 320; //        1,515,840  (mean, conv_pool, bias)
    const add = 4096 * 320; //                               1,310,720
    expect(convUp + gate0 + gate1 + convOut + pool + add).toBe(979_722_560);
    const c = blockCost({ height: 64, width: 64, channels: 320, inner: 160, kernel: 9, scales: [1, 0.5], gate: 'simple' });
    expect(c.flops).toBe(979_722_560);
    expect(c.activationBytes).toBe((4096 * 160 + (4096 * 160 + 4096 * 80) + (1024 * 160 + 4096 * 80) + 4096 * 320) * 4);
    expect(25_234_243_584 / c.flops).toBeCloseTo(25.76, 2);
  });

  it('the sigmoid gate costs 4 more FLOPs per gated element', () => {
    const simple = blockCost({ height: 8, width: 6, channels: 32, inner: 16, kernel: 5, scales: [1, 0.5], gate: 'simple' });
    const sigmoid = blockCost({ height: 8, width: 6, channels: 32, inner: 16, kernel: 5, scales: [1, 0.5], gate: 'sigmoid' });
    expect(sigmoid.flops - simple.flops).toBe(4 * (48 * 8 + 12 * 8));
  });
});

describe('baselines for the same SD1.5 layer (seed §E, §F)', () => {
  it('local attention NA with K = 17: 289 keys per query', () => {
    const projections = 3 * 2 * 4096 * 320 * 320; //  2,516,582,400
    const scores = 2 * 4096 * 289 * 320; //              757,596,160
    const softmax = 3 * 8 * 4096 * 289; //                28,409,856
    const weighted = 2 * 4096 * 289 * 320; //            757,596,160
    const out = 2 * 4096 * 320 * 320 + 4096 * 320; //    840,171,520
    expect(projections + scores + softmax + weighted + out).toBe(4_900_356_096);
    const c = localAttentionCost({ height: 64, width: 64, channels: 320, heads: 8, window: 17 });
    expect(c.flops).toBe(4_900_356_096);
    expect(c.activationBytes).toBe((3 * 4096 * 320 + 8 * 4096 * 289) * 4);
    // a window larger than the grid sees the whole grid: self-attention's count
    expect(localAttentionCost({ height: 8, width: 8, channels: 1280, heads: 8, window: 17 }).flops).toBe(attentionCost({ tokens: 64, channels: 1280, heads: 8 }).flops);
  });

  it('flash self-attention at batch 32: q, k, v, output and 2 float32 statistics per row and head', () => {
    expect(flashAttentionBytes({ tokens: 4096, channels: 320, heads: 8 }, 32)).toBe(32 * (4 * 4096 * 320 * 4 + 2 * 8 * 4096 * 4));
    expect(flashAttentionBytes({ tokens: 4096, channels: 320, heads: 8 }, 32)).toBe(679_477_248);
  });

  it('deltac report --baseline na:17 --batch 32 puts them beside the ΔConvBlock', () => {
    const full = loadModel(path.join(MODELS_DIR, 'sd15-full', 'model.graph.onnx'), { missingExternalData: 'warn' });
    const r = reportModel(full, { resolutions: [512], baselineWindow: 17, batch: 32 });
    const top = r.layers[0]!.at[0]!;
    expect(top.localAttention!.flops).toBe(4_900_356_096);
    expect(top.atBatch).toEqual({ batch: 32, flashAttentionBytes: 679_477_248, blockBytes: 32 * top.block.activationBytes });
    expect(r.totals[0]!.flashPeakBytesAtBatch).toBe(679_477_248);
  });
});

describe('deltac report', () => {
  it('evaluates an original SD1.5 graph at 512 px with default geometry, and a converted model from its record', () => {
    const full = loadModel(path.join(MODELS_DIR, 'sd15-full', 'model.graph.onnx'), { missingExternalData: 'warn' });
    const r = reportModel(full, { resolutions: [512] });
    expect(r.converted).toBe(false);
    expect(r.layers).toHaveLength(16);
    const top = r.layers[0]!;
    expect(top.at[0]).toMatchObject({ height: 64, width: 64 });
    expect(top.at[0]!.attention.flops).toBe(25_234_243_584);
    expect(top.at[0]!.block.flops).toBe(979_722_560);
    expect(r.notes.join(' ')).toMatch(/geometry assumed/);

    const dir = path.join(MODELS_DIR, 'sd15-mini');
    const mini = loadModel(path.join(dir, 'model.onnx'));
    convert(mini, { weights: path.join(dir, 'delta.safetensors') });
    const after = reportModel(mini, { resolutions: [256] });
    expect(after.converted).toBe(true);
    expect(after.layers.map((l) => l.kernel)).toEqual([9, 9, 9, 9, 7, 7, 5, 7, 7, 7, 9, 9, 9, 9, 9, 9]);
    expect(after.layers[0]!.at[0]).toMatchObject({ height: 32, width: 32 });
    expect(after.layers[6]!.at[0]).toMatchObject({ height: 4, width: 4 });
  });
});
