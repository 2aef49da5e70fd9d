/**
 * CPU reference of the whole ΔConvBlock (SPEC.md §1): tokens x [B, N, C] → [B, N, C].
 * conv_up, the pyramid conv, conv_out and the global-mean conv_pool, in plain loops.
 */
import { DeltacError } from '../ir/errors.js';
import type { Node } from '../ir/node.js';
import { PyramidInput, pyramidConvConfig, type PyramidConvConfig } from '../passes/delta-conv/op.js';
import { pyramidConvReference, type Extent, type PyramidConvParams } from './pyramid-conv.js';

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

/** y[p, o] = sum_i x[p, i]·w[o, i] + bias[o]  (a Linear layer on `rows` rows). */
export function linear(x: Float32Array, rows: number, inDim: number, w: Float32Array, bias: Float32Array, outDim: number): Float32Array {
  const y = new Float32Array(rows * outDim);
  for (let p = 0; p < rows; p++) {
    for (let o = 0; o < outDim; o++) y[p * outDim + o] = bias[o]! + dot(x, p * inDim, w, o * inDim, inDim);
  }
  return y;
}

/**
 * Σ_k a[aAt + k]·b[bAt + k] for k < n, in double precision: four running sums (k mod 4),
 * so that consecutive additions do not wait for each other (~2× faster than one sum).
 */
function dot(a: Float32Array, aAt: number, b: Float32Array, bAt: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += a[aAt + k]! * b[bAt + k]!;
    s1 += a[aAt + k + 1]! * b[bAt + k + 1]!;
    s2 += a[aAt + k + 2]! * b[bAt + k + 2]!;
    s3 += a[aAt + k + 3]! * b[bAt + k + 3]!;
  }
  for (; k < n; k++) s0 += a[aAt + k]! * b[bAt + k]!;
  return s0 + s1 + (s2 + s3);
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
  for (let b = 0; b < batch; b++) {
    const mean = new Float32Array(c);
    for (let t = 0; t < n; t++) for (let k = 0; k < c; k++) mean[k]! += x[(b * n + t) * c + k]!;
    for (let k = 0; k < c; k++) mean[k]! /= n;
    const pooled = linear(mean, 1, c, weights.poolWeight, weights.poolBias, c);
    for (let t = 0; t < n; t++) for (let k = 0; k < c; k++) y[(b * n + t) * c + k]! += pooled[k]!;
  }
  return y;
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
