/**
 * CPU reference of the whole ΔConvBlock (SPEC.md §1): tokens x [B, N, C] → [B, N, C].
 * conv_up, the pyramid conv, conv_out and the global-mean conv_pool, in plain loops.
 */
import { DeltacError } from '../ir/errors.js';
import type { Node } from '../ir/node.js';
import { PyramidInput, pyramidConvConfig, type PyramidConvConfig } from '../passes/delta-conv/op.js';
import { pyramidConvReference, pyramidReads, windowTokens, type Extent, type PyramidConvParams, type TokenWindow } from './pyramid-conv.js';

/** A ΔConvBlock's weights as float32, in the layouts of the PyramidConvBlock node (op.ts). */
export interface DeltaConvBlockWeights {
  /** conv_up.weight [Ci, C] */
  upWeight: Float32Array;
  /** conv_up.bias [Ci] */
  upBias: Float32Array;
  /** gates' conv_spatial weights [S, K, K, Ci] */
  gateWeights: Float32Array;
  /** conv_out.weight [C, S·Ci/2] */
  outWeight: Float32Array;
  /** conv_out.bias [C] */
  outBias: Float32Array;
  /** conv_pool.weight [C, C] */
  poolWeight: Float32Array;
  /** conv_pool.bias [C] */
  poolBias: Float32Array;
}

export interface DeltaConvBlockParams extends PyramidConvParams {
  /** C: token channels. */
  channels: number;
}

/**
 * y[p, o] = sum_i x[p, i]·w[o, i] + bias[o]  (a Linear layer on `rows` rows). Four rows
 * and four outputs share each pass over the inputs (sixteen sums in registers: about
 * four times as fast here as one dot product at a time); every sum still adds its
 * terms in order i = 0, 1, …, so the results are the plain loop's, bit for bit.
 */
export function linear(x: Float32Array, rows: number, inDim: number, w: Float32Array, bias: Float32Array, outDim: number): Float32Array {
  const y = new Float32Array(rows * outDim);
  const dot = (p: number, o: number) => {
    let sum = bias[o]!;
    for (let i = 0; i < inDim; i++) sum += x[p * inDim + i]! * w[o * inDim + i]!;
    y[p * outDim + o] = sum;
  };
  let p = 0;
  for (; p + 4 <= rows; p += 4) {
    const x0 = p * inDim;
    const x1 = x0 + inDim;
    const x2 = x1 + inDim;
    const x3 = x2 + inDim;
    let o = 0;
    for (; o + 4 <= outDim; o += 4) {
      const wa = o * inDim;
      const wb = wa + inDim;
      const wc = wb + inDim;
      const wd = wc + inDim;
      let a0 = bias[o]!, a1 = a0, a2 = a0, a3 = a0;
      let b0 = bias[o + 1]!, b1 = b0, b2 = b0, b3 = b0;
      let c0 = bias[o + 2]!, c1 = c0, c2 = c0, c3 = c0;
      let d0 = bias[o + 3]!, d1 = d0, d2 = d0, d3 = d0;
      for (let i = 0; i < inDim; i++) {
        const q0 = x[x0 + i]!;
        const q1 = x[x1 + i]!;
        const q2 = x[x2 + i]!;
        const q3 = x[x3 + i]!;
        const u = w[wa + i]!;
        a0 += q0 * u; a1 += q1 * u; a2 += q2 * u; a3 += q3 * u;
        const v = w[wb + i]!;
        b0 += q0 * v; b1 += q1 * v; b2 += q2 * v; b3 += q3 * v;
        const s = w[wc + i]!;
        c0 += q0 * s; c1 += q1 * s; c2 += q2 * s; c3 += q3 * s;
        const t = w[wd + i]!;
        d0 += q0 * t; d1 += q1 * t; d2 += q2 * t; d3 += q3 * t;
      }
      const y0 = p * outDim + o;
      const y1 = y0 + outDim;
      const y2 = y1 + outDim;
      const y3 = y2 + outDim;
      y[y0] = a0; y[y1] = a1; y[y2] = a2; y[y3] = a3;
      y[y0 + 1] = b0; y[y1 + 1] = b1; y[y2 + 1] = b2; y[y3 + 1] = b3;
      y[y0 + 2] = c0; y[y1 + 2] = c1; y[y2 + 2] = c2; y[y3 + 2] = c3;
      y[y0 + 3] = d0; y[y1 + 3] = d1; y[y2 + 3] = d2; y[y3 + 3] = d3;
    }
    for (; o < outDim; o++) for (let q = p; q < p + 4; q++) dot(q, o);
  }
  for (; p < rows; p++) for (let o = 0; o < outDim; o++) dot(p, o);
  return y;
}

/** The whole block: x [B, H·W, C] (row-major tokens) → [B, H·W, C]. */
export function deltaConvBlockReference(
  x: Float32Array,
  weights: DeltaConvBlockWeights,
  ext: Extent,
  params: DeltaConvBlockParams,
): Float32Array {
  const { channels: c, inner: ci, scales } = params;
  const { batch, height: H, width: W } = ext;
  const n = H * W;
  if (x.length !== batch * n * c) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `deltaConvBlockReference: x has ${x.length} elements, expected ${batch}·${n}·${c}`);
  }
  const gOut = (scales.length * ci) / 2;
  const u = linear(x, batch * n, c, weights.upWeight, weights.upBias, ci);
  const g = pyramidConvReference(u, weights.gateWeights, ext, params);
  const y = linear(g, batch * n, gOut, weights.outWeight, weights.outBias, c);
  return addPooled(y, x, batch, n, n, c, weights);
}

/** y [B, tokens, C] += conv_pool(the mean of each image's n tokens of x [B, n, C]): the block's global term. */
function addPooled(y: Float32Array, x: Float32Array, batch: number, n: number, tokens: number, c: number, weights: DeltaConvBlockWeights): Float32Array {
  for (let b = 0; b < batch; b++) {
    const mean = new Float32Array(c);
    for (let t = 0; t < n; t++) for (let k = 0; k < c; k++) mean[k]! += x[(b * n + t) * c + k]!;
    for (let k = 0; k < c; k++) mean[k]! /= n;
    const pooled = linear(mean, 1, c, weights.poolWeight, weights.poolBias, c);
    for (let t = 0; t < tokens; t++) for (let k = 0; k < c; k++) y[(b * tokens + t) * c + k]! += pooled[k]!;
  }
  return y;
}

/**
 * The block's output at the tokens of `window` only, [B, rows·cols, C] (row-major in
 * the window), as deltaConvBlockReference computes them: conv_up runs only on the
 * tokens the pyramid reads for the window (pyramidReads; the others stay zero and are
 * never read for it), the depthwise convolutions only where the window reads them,
 * conv_out and the pooled term only on the window. For large images, where the whole
 * block would cost N·C·Ci per token.
 */
export function deltaConvBlockReferenceAt(
  x: Float32Array,
  weights: DeltaConvBlockWeights,
  ext: Extent,
  params: DeltaConvBlockParams,
  window: TokenWindow,
): Float32Array {
  const { channels: c, inner: ci, kernel, scales } = params;
  const { batch, height: H, width: W } = ext;
  const n = H * W;
  if (x.length !== batch * n * c) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `deltaConvBlockReferenceAt: x has ${x.length} elements, expected ${batch}·${n}·${c}`);
  }
  const [r0, r1] = window.rows;
  const [c0, c1] = window.cols;
  if (!(0 <= r0 && r0 < r1 && r1 <= H && 0 <= c0 && c0 < c1 && c1 <= W)) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `deltaConvBlockReferenceAt: window [${r0}, ${r1})×[${c0}, ${c1}) is not inside ${H}×${W}`);
  }
  const [u0, u1] = pyramidReads(H, r0, r1, kernel, scales);
  const [v0, v1] = pyramidReads(W, c0, c1, kernel, scales);
  const u = new Float32Array(batch * n * ci);
  for (let b = 0; b < batch; b++) {
    for (let r = u0; r < u1; r++) {
      const at = (b * H + r) * W;
      const row = linear(x.subarray((at + v0) * c, (at + v1) * c), v1 - v0, c, weights.upWeight, weights.upBias, ci);
      u.set(row, (at + v0) * ci);
    }
  }
  const g = pyramidConvReference(u, weights.gateWeights, ext, params, window);
  const gOut = (scales.length * ci) / 2;
  const wh = r1 - r0;
  const ww = c1 - c0;
  const picked = windowTokens(g, ext, gOut, window);
  const y = linear(picked, batch * wh * ww, gOut, weights.outWeight, weights.outBias, c);
  return addPooled(y, x, batch, n, wh * ww, c, weights);
}

/**
 * Reads the weights and configuration of an `ai.deltac.PyramidConvBlock` node
 * (its weight inputs must be initializers).
 */
export function deltaConvBlockFromNode(node: Node): { config: PyramidConvConfig; weights: DeltaConvBlockWeights } {
  const read = (slot: PyramidInput, what: string): Float32Array => {
    const t = node.inputs[slot]?.initializer;
    if (!t) {
      throw new DeltacError(
        'DELTAC_E_UNSUPPORTED_MODEL',
        `PyramidConvBlock "${node.name}": ${what} is not a constant initializer; kernels need constant weights`,
      );
    }
    return t.toFloat32();
  };
  return {
    config: pyramidConvConfig(node),
    weights: {
      upWeight: read(PyramidInput.UpWeight, 'conv_up.weight'),
      upBias: read(PyramidInput.UpBias, 'conv_up.bias'),
      gateWeights: read(PyramidInput.GateWeights, 'the gate weights'),
      outWeight: read(PyramidInput.OutWeight, 'conv_out.weight'),
      outBias: read(PyramidInput.OutBias, 'conv_out.bias'),
      poolWeight: read(PyramidInput.PoolWeight, 'conv_pool.weight'),
      poolBias: read(PyramidInput.PoolBias, 'conv_pool.bias'),
    },
  };
}
