/**
 * The ΔConvBlock reference on a window of tokens (deltaConvBlockReferenceAt): conv_up
 * only where the pyramid reads for the window (pyramidReads), yet exactly the whole
 * block's output there, bit for bit, at every scale, kernel, odd and even size.
 */
import { describe, expect, it } from 'vitest';
import { deltaConvBlockReference, deltaConvBlockReferenceAt, pyramidReads, type TokenWindow } from '../../src/reference/index.js';
import { randomArray, randomWeights } from './fixtures.js';

/** The tokens of `w` out of a whole [B, H·W, C] output. */
function slice(y: Float32Array, batch: number, H: number, W: number, c: number, w: TokenWindow): Float32Array {
  const out: number[] = [];
  for (let b = 0; b < batch; b++) for (let r = w.rows[0]; r < w.rows[1]; r++) for (let q = w.cols[0]; q < w.cols[1]; q++) out.push(...y.subarray(((b * H + r) * W + q) * c, ((b * H + r) * W + q + 1) * c));
  return Float32Array.from(out);
}

describe('pyramidReads', () => {
  it('a scale-1 gate reads the K×K neighbourhood, clamped', () => {
    expect(pyramidReads(16, 0, 2, 5, [1])).toEqual([0, 4]);
    expect(pyramidReads(16, 7, 8, 5, [1])).toEqual([5, 10]);
  });

  it('a pooled gate reads the pooling windows of the cells its taps and kernel reach', () => {
    // 15 → 7 cells (windows of 2, the last 3 rows); the last row taps cells 6, its K = 3 neighbourhood 5..6 → rows 10..14
    expect(pyramidReads(15, 14, 15, 3, [0.5])).toEqual([10, 15]);
    expect(pyramidReads(15, 14, 15, 3, [1, 0.5])).toEqual([10, 15]);
    expect(pyramidReads(64, 0, 1, 9, [1, 0.5, 0.25])[0]).toBe(0);
  });
});

describe('deltaConvBlockReferenceAt', () => {
  const cases: [string, number, number, number, number[], number, TokenWindow][] = [
    ['corner of an even grid', 12, 10, 5, [1, 0.5], 2, { rows: [0, 2], cols: [0, 2] }],
    ['last rows of an odd grid (3-row pooling windows)', 13, 11, 3, [1, 0.5], 1, { rows: [11, 13], cols: [8, 11] }],
    ['interior, three gates', 17, 19, 7, [1, 0.5, 0.25], 2, { rows: [7, 9], cols: [5, 8] }],
    ['the whole grid', 6, 5, 3, [1, 0.5], 1, { rows: [0, 6], cols: [0, 5] }],
  ];
  it.each(cases)('%s: equal to the whole block there', (_what, H, W, K, scales, batch, window) => {
    const c = 8;
    const ci = 6;
    const w = randomWeights(c, ci, K, scales.length, 11);
    const x = randomArray(batch * H * W * c, 5);
    const params = { channels: c, inner: ci, kernel: K, scales, gate: 'simple' as const };
    const whole = deltaConvBlockReference(x, w, { batch, height: H, width: W }, params);
    const part = deltaConvBlockReferenceAt(x, w, { batch, height: H, width: W }, params, window);
    expect(part).toEqual(slice(whole, batch, H, W, c, window));
  });

  it('refuses a window outside the grid', () => {
    const w = randomWeights(4, 2, 3, 2, 1);
    expect(() => deltaConvBlockReferenceAt(new Float32Array(4 * 4 * 4), w, { batch: 1, height: 4, width: 4 }, { channels: 4, inner: 2, kernel: 3, scales: [1, 0.5], gate: 'simple' }, { rows: [3, 5], cols: [0, 1] })).toThrow(/not inside 4×4/);
  });
});
