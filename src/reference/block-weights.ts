/**
 * A converted layer's ΔConvBlock weights read back out of a model, in the layouts
 * of the PyramidConvBlock node (op.ts), so that the reference computes with exactly
 * what a saved model holds:
 *
 *   fused (`--emit fused`)   the node's weight inputs, as they are
 *   lowered (the default)    the initializers lower-pyramid-conv.ts packed them into,
 *                            unpacked again:
 *     conv_up.weight [Ci, C]              or conv_up.weight_t [C, Ci] (wide layers)   → upWeight
 *     conv_up.bias_col [Ci, 1]            or conv_up.bias [Ci]                        → upBias
 *     gate<g>.conv_spatial.weight [Ci, 1, K, K], B half × √(Ci/2) for the simple gate → gateWeights [S, K, K, Ci]
 *     conv_out.weight_t [1, S·Ci/2, C]                                                → outWeight [C, S·Ci/2]
 *     conv_pool.weight_t [C, C]                                                       → poolWeight
 *     conv_pool_out.bias [C] = conv_pool.bias + conv_out.bias                         → poolBias (outBias 0)
 *
 * The lowering keeps only the sum of the two output biases, so weights read from a
 * lowered block have it in `poolBias` and zeros in `outBias`; `foldBiases` brings any
 * block's weights to that form (the block computes the same: both are added to every
 * token). test/reference/block-weights.test.ts lowers blocks and reads them back, so
 * these names and layouts cannot drift from the lowering's.
 */
import { isFloatType } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import type { Node } from '../ir/node.js';
import type { Tensor } from '../ir/tensor.js';
import { transposeWords } from '../passes/delta-conv/lower-pyramid-conv.js';
import { type PyramidConvConfig, isPyramidConvBlock } from '../passes/delta-conv/op.js';
import { type DeltaConvBlockWeights, deltaConvBlockFromNode } from './delta-conv-block.js';

/** What a block's geometry says about its weights (the provenance a conversion records). */
export interface BlockShape {
  channels: number;
  inner: number;
  kernel: number;
  scales: readonly number[];
  gate: PyramidConvConfig['gate'];
}

/**
 * The weights of the block whose nodes are `nodes` (one fused PyramidConvBlock, or the
 * nodes it was lowered into), as float32 in the node's layouts, biases folded.
 * Throws DELTAC_E_UNSUPPORTED_MODEL naming what is missing or misshapen.
 */
export function blockWeightsOf(nodes: readonly Node[], shape: BlockShape, layer: string): DeltaConvBlockWeights {
  const fused = nodes.filter(isPyramidConvBlock);
  if (fused.length > 1) throw bad(layer, `it holds ${fused.length} PyramidConvBlock nodes`);
  if (fused.length === 1) return foldBiases(deltaConvBlockFromNode(fused[0]!).weights);
  return loweredWeights(nodes, shape, layer);
}

/** The same block with conv_out's bias added to conv_pool's (as the lowering stores them). */
export function foldBiases(w: DeltaConvBlockWeights): DeltaConvBlockWeights {
  const poolBias = Float32Array.from(w.poolBias, (v, i) => v + w.outBias[i]!);
  return { ...w, poolBias, outBias: new Float32Array(w.outBias.length) };
}

function loweredWeights(nodes: readonly Node[], s: BlockShape, layer: string): DeltaConvBlockWeights {
  // The block's constants, by the label the lowering gave them (`<block name>/<label>`).
  const byLabel = new Map<string, Tensor>();
  for (const n of nodes) {
    for (const v of n.inputs) {
      if (!v?.initializer) continue;
      byLabel.set(v.name.slice(v.name.lastIndexOf('/') + 1), v.initializer);
    }
  }
  const { channels: C, inner: Ci, kernel: K, scales, gate } = s;
  const half = Ci / 2;
  const S = scales.length;
  const read = (label: string, dims: number[]): Float32Array | null => {
    const t = byLabel.get(label);
    if (!t) return null;
    if (t.dims.join(',') !== dims.join(',')) throw bad(layer, `its constant "${label}" is [${t.dims.join(', ')}], expected [${dims.join(', ')}]`);
    if (!isFloatType(t.dtype)) throw bad(layer, `its constant "${label}" is not a float tensor`);
    return t.toFloat32();
  };
  const need = (label: string, dims: number[]): Float32Array => {
    const v = read(label, dims);
    if (!v) throw bad(layer, `it has no constant "${label}" (is it a ΔConvBlock lowered by deltac?)`);
    return v;
  };
  const upWeight = read('conv_up.weight', [Ci, C]) ?? transpose(need('conv_up.weight_t', [C, Ci]), C, Ci);
  const upBias = read('conv_up.bias_col', [Ci, 1]) ?? need('conv_up.bias', [Ci]);
  const gateWeights = new Float32Array(S * K * K * Ci);
  const scaleB = gate === 'simple' ? Math.sqrt(half) : 1;
  for (let g = 0; g < S; g++) {
    const w = need(`gate${g}.conv_spatial.weight`, [Ci, 1, K, K]);
    for (let c = 0; c < Ci; c++) {
      for (let ij = 0; ij < K * K; ij++) {
        const v = w[c * K * K + ij]!;
        gateWeights[g * K * K * Ci + ij * Ci + c] = c >= half ? v / scaleB : v;
      }
    }
  }
  const outWeight = transpose(need('conv_out.weight_t', [1, S * half, C]), S * half, C);
  const poolWeight = transpose(need('conv_pool.weight_t', [C, C]), C, C);
  const poolBias = need('conv_pool_out.bias', [C]);
  return { upWeight, upBias, gateWeights, outWeight, outBias: new Float32Array(C), poolWeight, poolBias };
}

/** [rows, cols] → [cols, rows]. */
const transpose = (m: Float32Array, rows: number, cols: number): Float32Array => transposeWords(m, new Float32Array(m.length), rows, cols);

function bad(layer: string, why: string): DeltacError {
  return new DeltacError('DELTAC_E_UNSUPPORTED_MODEL', `layer ${layer}: cannot read its ΔConvBlock weights back: ${why}`, { layer });
}
