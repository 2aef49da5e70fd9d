/**
 * The effective receptive fields are exact vector–Jacobian products: checked against
 * central finite differences of the forward passes (the ΔConvBlock's from
 * src/reference, attention's own forward), ≤ 1e-3 relative.
 */
import { describe, expect, it } from 'vitest';
import { type AttentionParams, attentionRows, attentionVjp } from '../../src/analysis/analyze/attention-erf.js';
import { blockVjp } from '../../src/analysis/analyze/block-erf.js';
import { deltaConvBlockReference, type DeltaConvBlockParams, type DeltaConvBlockWeights } from '../../src/reference/delta-conv-block.js';
import { seededRandom } from '../helpers/random.js';

const rand = seededRandom(7);
const uniform = (n: number, s = 1) => Float64Array.from({ length: n }, () => (rand() * 2 - 1) * s);

/** max|a − b| / max|b| over the checked entries. */
function relError(pairs: [number, number][]): number {
  const maxRef = Math.max(...pairs.map(([, b]) => Math.abs(b)));
  return Math.max(...pairs.map(([a, b]) => Math.abs(a - b))) / maxRef;
}

/** (∂f/∂x_i by central differences, g_i) for every entry i of x. */
function centralDifferences(f: (x: Float64Array) => number, x: Float64Array, g: ArrayLike<number>, eps: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < x.length; i++) {
    const xp = x.slice();
    const xm = x.slice();
    xp[i]! += eps;
    xm[i]! -= eps;
    pairs.push([(f(xp) - f(xm)) / (2 * eps), g[i]!]);
  }
  return pairs;
}

describe('ΔConvBlock ERF', () => {
  const cases: [gate: 'simple' | 'sigmoid', H: number, W: number, n0: number, scales: number[], k: number][] = [
    ['simple', 7, 5, 17, [1, 0.5], 3],
    ['sigmoid', 6, 6, 0, [1, 0.5], 3],
    ['simple', 5, 3, 14, [1, 0.5], 3],
    // odd sizes whose adaptive-pool windows overlap (9 → 4 → 2 rows, 7 → 3 → 1 columns), a 5×5 kernel
    ['sigmoid', 9, 7, 31, [1, 0.5, 0.25], 5],
  ];
  for (const [gate, H, W, n0, scales, k] of cases) {
    it(`VJP = finite differences (${gate} gate, ${H}×${W}, output token ${n0}, scales ${scales.join(', ')}, K ${k})`, () => {
      const c = 6;
      const ci = 4;
      const p: DeltaConvBlockParams = { channels: c, inner: ci, kernel: k, scales, gate };
      const f32 = (a: Float64Array) => Float32Array.from(a);
      const w: DeltaConvBlockWeights = {
        upWeight: f32(uniform(ci * c, 0.5)),
        upBias: f32(uniform(ci, 0.1)),
        gateWeights: f32(uniform(scales.length * k * k * ci, 0.5)),
        outWeight: f32(uniform((c * scales.length * ci) / 2, 0.5)),
        outBias: f32(uniform(c, 0.1)),
        poolWeight: f32(uniform(c * c, 0.5)),
        poolBias: f32(uniform(c, 0.1)),
      };
      const x = uniform(H * W * c);
      const g = blockVjp(x, H, W, w, p, n0);
      const f = (xs: Float64Array) => {
        // the float32 reference forward; central differences with eps = 1e-2 stay well above its rounding
        const y = deltaConvBlockReference(Float32Array.from(xs), w, { batch: 1, height: H, width: W }, p);
        let s = 0;
        for (let o = 0; o < c; o++) s += y[n0 * c + o]!;
        return s;
      };
      expect(relError(centralDifferences(f, x, g, 1e-2))).toBeLessThan(1e-3);
    });
  }
});

describe('attention ERF', () => {
  it('VJP = finite differences (2 heads, biases, rescale)', () => {
    const c = 6;
    const dIn = 8;
    const tokens = 12;
    const p: AttentionParams = {
      channels: c, inner: dIn, heads: 2, scale: 1 / Math.sqrt(4),
      wq: uniform(c * dIn, 0.6), wk: uniform(c * dIn, 0.6), wv: uniform(c * dIn, 0.6),
      bq: uniform(dIn, 0.1), bk: uniform(dIn, 0.1), bv: uniform(dIn, 0.1),
      wo: uniform(dIn * c, 0.5), bo: uniform(c, 0.1), rescale: 0.5,
    };
    const x = uniform(tokens * c);
    const n0 = 5;
    const g = attentionVjp(x, tokens, p, n0);
    const f = (xs: Float64Array) => attentionRows(xs, tokens, p, [n0]).y.reduce((a, b) => a + b, 0);
    expect(relError(centralDifferences(f, x, g, 1e-4))).toBeLessThan(1e-6);
  });
});
