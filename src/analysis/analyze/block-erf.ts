/**
 * Exact vector–Jacobian product of a ΔConvBlock's output at one position with
 * respect to its input tokens (SPEC.md §1; forward: src/reference). The block is
 * linear except for the gate product, so the VJP needs only the gate inputs D at
 * the cells that reach the chosen output position:
 *
 *   y[n0] = Wout · concat_g G_g[n0] + bout + Wpool · mean(x) + bpool
 *   scale 1:   G_g[n0] = gate(D_g[n0]),  D_g = depthwise(U, W_g)
 *   scale < 1: G_g[n0] = Σ_taps w · gate(D_g[cell]),  D_g = depthwise(pool(U), W_g)
 *
 * Backward: gate → depthwise (transposed: scatter over the K×K window) → adaptive
 * average pool (transposed: spread over the pooled rows/columns) → conv_up
 * (gx = gU · Wup), plus Wpoolᵀu / N on every token from the global mean.
 */
import { adaptiveWindows } from '../../passes/delta-conv/op.js';
import { adaptiveAvgPool2d, linearTaps, scaledSize, sigmoid } from '../../reference/pyramid-conv.js';
import type { DeltaConvBlockParams, DeltaConvBlockWeights } from '../../reference/delta-conv-block.js';
import { absRowSums, addBias, matmul, matmulTransB } from './linalg.js';

/**
 * Calls `f(cell, tap)` for each tap of the K×K window centred on (cy, cx) that lies
 * inside the ho×wo grid (zero padding): cell = row-major index, tap = i·K + j.
 */
function forEachTap(cy: number, cx: number, ho: number, wo: number, kk: number, f: (cell: number, tap: number) => void): void {
  const r = kk >> 1;
  for (let i = 0; i < kk; i++) {
    const yy = cy + i - r;
    if (yy < 0 || yy >= ho) continue;
    for (let j = 0; j < kk; j++) {
      const xx = cx + j - r;
      if (xx >= 0 && xx < wo) f(yy * wo + xx, i * kk + j);
    }
  }
}

/** ∂(uᵀ y[n0]) / ∂x for one sample x [H·W, C] (u defaults to all ones): [H·W, C]. */
export function blockVjp(
  x: ArrayLike<number>,
  height: number,
  width: number,
  w: DeltaConvBlockWeights,
  p: DeltaConvBlockParams,
  n0: number,
  u?: ArrayLike<number>,
): Float64Array {
  const { channels: c, inner: ci, kernel: kk, scales, gate } = p;
  const n = height * width;
  const half = ci / 2;
  const gOut = scales.length * half;
  const cot = u ?? new Float64Array(c).fill(1);
  // U = x·Wupᵀ + bup (Wup [Ci, C])
  const uAct = Float32Array.from(addBias(matmulTransB(x, w.upWeight, n, c, ci), w.upBias, ci));
  // gG = Woutᵀ u  ([S·Ci/2]), Wout [C, S·Ci/2]
  const gG = new Float64Array(gOut);
  for (let o = 0; o < c; o++) for (let j = 0; j < gOut; j++) gG[j]! += cot[o]! * w.outWeight[o * gOut + j]!;
  const gU = new Float64Array(n * ci);
  const y0 = Math.floor(n0 / width);
  const x0 = n0 % width;
  scales.forEach((scale, g) => {
    const ho = scale === 1 ? height : scaledSize(height, scale);
    const wo = scale === 1 ? width : scaledSize(width, scale);
    const v = scale === 1 ? uAct : adaptiveAvgPool2d(uAct, { batch: 1, height, width }, ci, ho, wo);
    // cells of the gate's grid that reach (y0, x0), with their interpolation weights
    const cells = new Map<number, number>();
    if (scale === 1) cells.set(n0, 1);
    else {
      const ty = linearTaps(ho, height)[y0]!;
      const tx = linearTaps(wo, width)[x0]!;
      for (const [iy, wy] of [[ty.i0, ty.w0], [ty.i1, ty.w1]] as const) {
        for (const [ix, wx] of [[tx.i0, tx.w0], [tx.i1, tx.w1]] as const) {
          const key = iy * wo + ix;
          cells.set(key, (cells.get(key) ?? 0) + wy * wx);
        }
      }
    }
    const gV = new Float64Array(ho * wo * ci);
    const wOff = g * kk * kk * ci;
    const sc = Math.sqrt(half);
    for (const [cell, weight] of cells) {
      if (weight === 0) continue;
      const cy = Math.floor(cell / wo);
      const cx = cell % wo;
      // D at this cell
      const dv = new Float64Array(ci);
      forEachTap(cy, cx, ho, wo, kk, (at, tap) => {
        for (let ch = 0; ch < ci; ch++) dv[ch]! += v[at * ci + ch]! * w.gateWeights[wOff + tap * ci + ch]!;
      });
      // gate backward
      const gD = new Float64Array(ci);
      for (let ch = 0; ch < half; ch++) {
        const up = gG[g * half + ch]! * weight;
        const a = dv[ch]!;
        const b = dv[half + ch]!;
        if (gate === 'simple') {
          gD[ch] = up * b * sc;
          gD[half + ch] = up * a * sc;
        } else {
          const s = sigmoid(b);
          gD[ch] = up * s;
          gD[half + ch] = up * a * s * (1 - s);
        }
      }
      // depthwise conv, transposed
      forEachTap(cy, cx, ho, wo, kk, (at, tap) => {
        for (let ch = 0; ch < ci; ch++) gV[at * ci + ch]! += gD[ch]! * w.gateWeights[wOff + tap * ci + ch]!;
      });
    }
    if (scale === 1) {
      for (let i = 0; i < gU.length; i++) gU[i]! += gV[i]!;
      return;
    }
    // adaptive average pool, transposed
    const rows = adaptiveWindows(height, ho);
    const cols = adaptiveWindows(width, wo);
    for (let i = 0; i < ho; i++) {
      const [r0, r1] = rows[i]!;
      for (let j = 0; j < wo; j++) {
        const [c0, c1] = cols[j]!;
        const count = (r1 - r0) * (c1 - c0);
        const src = (i * wo + j) * ci;
        let any = false;
        for (let ch = 0; ch < ci; ch++) if (gV[src + ch] !== 0) any = true;
        if (!any) continue;
        for (let rr = r0; rr < r1; rr++) {
          for (let qq = c0; qq < c1; qq++) {
            const dst = (rr * width + qq) * ci;
            for (let ch = 0; ch < ci; ch++) gU[dst + ch]! += gV[src + ch]! / count;
          }
        }
      }
    }
  });
  // conv_up backward: gx = gU · Wup  (Wup [Ci, C])
  const gx = matmul(gU, w.upWeight, n, ci, c);
  // global mean → conv_pool: every token gets Wpoolᵀu / N
  const gMean = new Float64Array(c);
  for (let o = 0; o < c; o++) for (let j = 0; j < c; j++) gMean[j]! += cot[o]! * w.poolWeight[o * c + j]!;
  for (let m = 0; m < n; m++) for (let j = 0; j < c; j++) gx[m * c + j]! += gMean[j]! / n;
  return gx;
}

/** |∂ Σ y[n0] / ∂x| summed over channels, per token [H·W]. */
export function blockErf(x: ArrayLike<number>, height: number, width: number, w: DeltaConvBlockWeights, p: DeltaConvBlockParams, n0: number): Float64Array {
  return absRowSums(blockVjp(x, height, width, w, p, n0), height * width, p.channels);
}
