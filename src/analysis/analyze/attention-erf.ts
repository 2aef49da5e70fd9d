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
import { absRowSums, addBias, matmul, pickRows } from './linalg.js';

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
  /** y at the chosen rows [R, C] (empty unless asked for). */
  y: Float64Array;
  /** Probabilities [heads, R, N]. */
  probs: Float64Array;
}

/** Wh·vh for head h of a [C, D] weight: [C] (Σ_j W[c, h·d + j]·v[j]). */
function headColumn(w: Float64Array, c: number, dIn: number, off: number, d: number, v: ArrayLike<number>, vOff: number): Float64Array {
  const out = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    let s = 0;
    const row = i * dIn + off;
    for (let j = 0; j < d; j++) s += w[row + j]! * v[vOff + j]!;
    out[i] = s;
  }
  return out;
}

/** x[m]·u for every token m (x [N, C]). */
function tokenDots(x: Float64Array, tokens: number, c: number, u: Float64Array, bias: number, scale: number, out: Float64Array, outOff: number): void {
  for (let m = 0; m < tokens; m++) {
    let s = 0;
    const row = m * c;
    for (let i = 0; i < c; i++) s += x[row + i]! * u[i]!;
    out[outOff + m] = (s + bias) * scale;
  }
}

function dot(a: ArrayLike<number> | null, aOff: number, b: ArrayLike<number>, bOff: number, n: number): number {
  if (!a) return 0;
  let s = 0;
  for (let j = 0; j < n; j++) s += a[aOff + j]! * b[bOff + j]!;
  return s;
}

/**
 * Attention probabilities (and, with `withOutput`, the output y) at query rows
 * `rows` of one sample x [N, C], without projecting every token: the score of key
 * m is x[m]·(Wk_h q_h) + bk_h·q_h, and since the probabilities sum to 1 the output
 * is (Σ_m P[m] x[m])·Wv_h + bv_h. Cost O(rows · heads · N · C).
 */
export function attentionRows(xIn: ArrayLike<number>, tokens: number, p: AttentionParams, rows: ArrayLike<number>, withOutput = true): AttentionRows {
  const { channels: c, inner: dIn, heads } = p;
  const x = xIn instanceof Float64Array ? xIn : Float64Array.from(xIn);
  const d = dIn / heads;
  const r = rows.length;
  const q = addBias(matmul(pickRows(x, rows, c), p.wq, r, c, dIn), p.bq, dIn);
  const probs = new Float64Array(heads * r * tokens);
  const o = new Float64Array(withOutput ? r * dIn : 0);
  const xbar = new Float64Array(c);
  for (let h = 0; h < heads; h++) {
    const off = h * d;
    for (let i = 0; i < r; i++) {
      const base = (h * r + i) * tokens;
      const kq = headColumn(p.wk, c, dIn, off, d, q, i * dIn + off);
      tokenDots(x, tokens, c, kq, dot(p.bk, off, q, i * dIn + off, d), p.scale, probs, base);
      softmaxInPlace(probs, base, tokens);
      if (!withOutput) continue;
      xbar.fill(0);
      for (let m = 0; m < tokens; m++) {
        const w = probs[base + m]!;
        const row = m * c;
        for (let k = 0; k < c; k++) xbar[k]! += w * x[row + k]!;
      }
      for (let j = 0; j < d; j++) {
        let s = p.bv ? p.bv[off + j]! : 0;
        for (let k = 0; k < c; k++) s += xbar[k]! * p.wv[k * dIn + off + j]!;
        o[i * dIn + off + j] = s;
      }
    }
  }
  const y = withOutput ? addBias(matmul(o, p.wo, r, dIn, c), p.bo, c) : new Float64Array(0);
  if (p.rescale !== 1) for (let i = 0; i < y.length; i++) y[i]! *= p.rescale;
  return { y, probs };
}

/**
 * ∂(uᵀ y[n0]) / ∂x for one sample x [N, C] (u defaults to all ones): [N, C].
 * Per head only C-vectors are needed: with z_h = Wv_h a_h and w_h = s·Wk_h q_h,
 * gP[m] = x[m]·z_h + bv_h·a_h, and the value and key paths give
 * gx[m] = Σ_h P_h[m] z_h + gS_h[m] w_h / s … (plus Wq_h (s Σ_m gS_h[m] k_h[m]) at n0).
 */
export function attentionVjp(xIn: ArrayLike<number>, tokens: number, p: AttentionParams, n0: number, u?: ArrayLike<number>): Float64Array {
  const { channels: c, inner: dIn, heads } = p;
  const x = xIn instanceof Float64Array ? xIn : Float64Array.from(xIn);
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
  const gx = new Float64Array(tokens * c);
  const prob = new Float64Array(tokens);
  const gP = new Float64Array(tokens);
  const xbarS = new Float64Array(c);
  const gq = new Float64Array(dIn);
  for (let h = 0; h < heads; h++) {
    const off = h * d;
    const kq = headColumn(p.wk, c, dIn, off, d, q0, off); // Wk_h q_h
    tokenDots(x, tokens, c, kq, dot(p.bk, off, q0, off, d), p.scale, prob, 0);
    softmaxInPlace(prob, 0, tokens);
    const z = headColumn(p.wv, c, dIn, off, d, a, off); // Wv_h a_h
    tokenDots(x, tokens, c, z, dot(p.bv, off, a, off, d), 1, gP, 0);
    let mean = 0;
    for (let m = 0; m < tokens; m++) mean += prob[m]! * gP[m]!;
    xbarS.fill(0);
    let gsSum = 0;
    for (let m = 0; m < tokens; m++) {
      const pm = prob[m]!;
      const gs = pm * (gP[m]! - mean) * p.scale; // ∂/∂(q·k) including the scale
      gsSum += gs;
      const row = m * c;
      // value path P[m]·z_h and key path gs·(Wk_h q_h)
      for (let i = 0; i < c; i++) {
        gx[row + i]! += pm * z[i]! + gs * kq[i]!;
        xbarS[i]! += gs * x[row + i]!;
      }
    }
    // gq_h = Σ_m gs[m] k_h[m] = (Σ gs x[m])·Wk_h + (Σ gs)·bk_h
    for (let j = 0; j < d; j++) {
      let s = p.bk ? gsSum * p.bk[off + j]! : 0;
      for (let i = 0; i < c; i++) s += xbarS[i]! * p.wk[i * dIn + off + j]!;
      gq[off + j] = s;
    }
  }
  // query path at n0: gq · Wqᵀ
  for (let i = 0; i < c; i++) {
    let s = 0;
    for (let j = 0; j < dIn; j++) s += p.wq[i * dIn + j]! * gq[j]!;
    gx[n0 * c + i]! += s;
  }
  return gx;
}

/** |∂ Σ y[n0] / ∂x| summed over channels, per token [N]. */
export function attentionErf(x: ArrayLike<number>, tokens: number, p: AttentionParams, n0: number): Float64Array {
  return absRowSums(attentionVjp(x, tokens, p, n0), tokens, p.channels);
}
