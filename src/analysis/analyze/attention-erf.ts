/**
 * Self-attention with its projections, in float64: the rows of the output at
 * chosen query positions (with their attention probabilities), and the exact
 * vector–Jacobian product of the output at one position with respect to every
 * input token — the layer's effective receptive field (seed §D).
 *
 *   q = x·Wq + bq,  k = x·Wk + bk,  v = x·Wv + bv          (x [N, C], W [C, D])
 *   per head h (columns h·d … h·d+d−1):  P_h = softmax(s · q_h k_hᵀ),  o_h = P_h v_h
 *   y = (o·Wo + bo) · r                                       (Wo [D, C], r: rescale)
 *
 * VJP of y[n0] with cotangent u: a = r·Wo u;  gP[m] = a_h·v_h[m];
 * gS = P ⊙ (gP − Σ P gP);  gv_h[m] = P[m] a_h;  gk_h[m] = s gS[m] q_h[n0];
 * gq_h = s Σ_m gS[m] k_h[m];  gx = gv Wvᵀ + gk Wkᵀ (+ gq Wqᵀ at n0).
 */
import { absRowSums, addBias, matmul, matmulTransB, pickRows } from './linalg.js';

export interface AttentionParams {
  /** C: channels of x and y. */
  channels: number;
  /** D: inner (all heads) dimension. */
  inner: number;
  heads: number;
  /** Score scale s (usually 1/√(D/heads)). */
  scale: number;
  /** [C, D] each (x·W layout). */
  wq: Float64Array;
  wk: Float64Array;
  wv: Float64Array;
  bq: Float64Array | null;
  bk: Float64Array | null;
  bv: Float64Array | null;
  /** [D, C] */
  wo: Float64Array;
  bo: Float64Array | null;
  /** Output factor (1 / rescale_output_factor). */
  rescale: number;
}

function softmaxInPlace(s: Float64Array, from: number, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, s[from + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[from + i] = Math.exp(s[from + i]! - max);
  for (let i = 0; i < n; i++) s[from + i]! /= sum;
}

export interface AttentionRows {
  /** y at the chosen rows [R, C]. */
  y: Float64Array;
  /** Probabilities [heads, R, N]. */
  probs: Float64Array;
}

/** Attention output and probabilities at query rows `rows` of one sample x [N, C]. */
export function attentionRows(x: ArrayLike<number>, tokens: number, p: AttentionParams, rows: ArrayLike<number>): AttentionRows {
  const { channels: c, inner: dIn, heads } = p;
  const d = dIn / heads;
  const r = rows.length;
  const q = addBias(matmul(pickRows(x, rows, c), p.wq, r, c, dIn), p.bq, dIn);
  const k = addBias(matmul(x, p.wk, tokens, c, dIn), p.bk, dIn);
  const v = addBias(matmul(x, p.wv, tokens, c, dIn), p.bv, dIn);
  const probs = new Float64Array(heads * r * tokens);
  const o = new Float64Array(r * dIn);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < r; i++) {
      const base = (h * r + i) * tokens;
      for (let m = 0; m < tokens; m++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += q[i * dIn + h * d + j]! * k[m * dIn + h * d + j]!;
        probs[base + m] = s * p.scale;
      }
      softmaxInPlace(probs, base, tokens);
      for (let m = 0; m < tokens; m++) {
        const w = probs[base + m]!;
        for (let j = 0; j < d; j++) o[i * dIn + h * d + j]! += w * v[m * dIn + h * d + j]!;
      }
    }
  }
  const y = addBias(matmul(o, p.wo, r, dIn, c), p.bo, c);
  if (p.rescale !== 1) for (let i = 0; i < y.length; i++) y[i]! *= p.rescale;
  return { y, probs };
}

/**
 * ∂(uᵀ y[n0]) / ∂x for one sample x [N, C] (u defaults to all ones): [N, C].
 */
export function attentionVjp(x: ArrayLike<number>, tokens: number, p: AttentionParams, n0: number, u?: ArrayLike<number>): Float64Array {
  const { channels: c, inner: dIn, heads } = p;
  const d = dIn / heads;
  const cot = u ?? new Float64Array(c).fill(1);
  // a = r · Wo u  ([D])
  const a = new Float64Array(dIn);
  for (let j = 0; j < dIn; j++) {
    let s = 0;
    for (let o = 0; o < c; o++) s += p.wo[j * c + o]! * cot[o]!;
    a[j] = s * p.rescale;
  }
  const q0 = addBias(matmul(pickRows(x, [n0], c), p.wq, 1, c, dIn), p.bq, dIn);
  const k = addBias(matmul(x, p.wk, tokens, c, dIn), p.bk, dIn);
  const v = addBias(matmul(x, p.wv, tokens, c, dIn), p.bv, dIn);
  const gk = new Float64Array(tokens * dIn);
  const gv = new Float64Array(tokens * dIn);
  const gq = new Float64Array(dIn);
  const prob = new Float64Array(tokens);
  const gP = new Float64Array(tokens);
  for (let h = 0; h < heads; h++) {
    const off = h * d;
    for (let m = 0; m < tokens; m++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += q0[off + j]! * k[m * dIn + off + j]!;
      prob[m] = s * p.scale;
    }
    softmaxInPlace(prob, 0, tokens);
    let mean = 0;
    for (let m = 0; m < tokens; m++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += a[off + j]! * v[m * dIn + off + j]!;
      gP[m] = s;
      mean += prob[m]! * s;
    }
    for (let m = 0; m < tokens; m++) {
      const pm = prob[m]!;
      const gs = pm * (gP[m]! - mean) * p.scale;
      for (let j = 0; j < d; j++) {
        gv[m * dIn + off + j] = pm * a[off + j]!;
        gk[m * dIn + off + j] = gs * q0[off + j]!;
        gq[off + j]! += gs * k[m * dIn + off + j]!;
      }
    }
  }
  // back through the projections: g·Wᵀ with W [C, D]
  const gx = matmulTransB(gv, p.wv, tokens, dIn, c);
  const fromK = matmulTransB(gk, p.wk, tokens, dIn, c);
  for (let i = 0; i < gx.length; i++) gx[i]! += fromK[i]!;
  const fromQ = matmulTransB(gq, p.wq, 1, dIn, c);
  for (let j = 0; j < c; j++) gx[n0 * c + j]! += fromQ[j]!;
  return gx;
}

/** |∂ Σ y[n0] / ∂x| summed over channels, per token [N]. */
export function attentionErf(x: ArrayLike<number>, tokens: number, p: AttentionParams, n0: number): Float64Array {
  return absRowSums(attentionVjp(x, tokens, p, n0), tokens, p.channels);
}
