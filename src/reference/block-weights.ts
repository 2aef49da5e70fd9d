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
import { type DataType, byteSizeOf, isFloatType } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import type { Node } from '../ir/node.js';
import { Tensor } from '../ir/tensor.js';
import { transposeBytes } from '../passes/delta-conv/lower-pyramid-conv.js';
import { type PyramidConvConfig, isPyramidConvBlock } from '../passes/delta-conv/op.js';
import { type DeltaConvBlockWeights, weightsOfSlots } from './delta-conv-block.js';

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
  return weightsFromConstants(blockConstants(nodes, layer), shape, layer);
}

/** A constant's bytes as the model holds them, with its type and shape (what crosses to a worker thread). */
export interface RawConstant {
  dtype: DataType;
  dims: number[];
  bytes: Uint8Array;
}

/**
 * A block's constants, read but not unpacked: the fused node's inputs by slot, or the
 * lowered block's constants by label. Each holds its own bytes (never a view into a
 * larger buffer, such as a decoded protobuf's), so that posting it copies only them.
 */
export type BlockConstants = { node: string; slots: (RawConstant | null)[] } | { labels: Record<string, RawConstant> };

/** The first half of blockWeightsOf: the constants of the block whose nodes are `nodes`, as they are. */
export function blockConstants(nodes: readonly Node[], layer: string): BlockConstants {
  const fused = nodes.filter(isPyramidConvBlock);
  if (fused.length > 1) throw bad(layer, `it holds ${fused.length} PyramidConvBlock nodes`);
  const raw = (t: Tensor): RawConstant => {
    const b = t.bytes();
    return { dtype: t.dtype, dims: [...t.dims], bytes: b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice() };
  };
  if (fused.length === 1) return { node: fused[0]!.name, slots: fused[0]!.inputs.map((v) => (v?.initializer ? raw(v.initializer) : null)) };
  // The block's constants, by the label the lowering gave them (`<block name>/<label>`).
  const labels: Record<string, RawConstant> = {};
  for (const n of nodes) {
    for (const v of n.inputs) {
      if (!v?.initializer) continue;
      const label = v.name.slice(v.name.lastIndexOf('/') + 1);
      if (!(label in labels)) labels[label] = raw(v.initializer);
    }
  }
  return { labels };
}

/** The second half of blockWeightsOf: the weights unpacked from `constants` (on any thread). */
export function weightsFromConstants(constants: BlockConstants, shape: BlockShape, layer: string): DeltaConvBlockWeights {
  return unpackConstants(constants, shape, layer).weights;
}

/**
 * The weights, and for a lowered block the weight matrices' bytes in the weights' layouts
 * (in the model's type, as saved: compared with the checkpoint's bytes they need no
 * conversion to float32).
 */
export interface UnpackedWeights {
  weights: DeltaConvBlockWeights;
  raw: Partial<Record<'upWeight' | 'outWeight' | 'poolWeight', RawConstant>>;
}

export function unpackConstants(constants: BlockConstants, shape: BlockShape, layer: string): UnpackedWeights {
  const tensor = (r: RawConstant) => new Tensor(r.dtype, r.dims, { kind: 'inline', bytes: r.bytes, encoding: 'raw' });
  if ('slots' in constants) {
    const weights = foldBiases(weightsOfSlots(constants.node, (slot) => {
      const r = constants.slots[slot];
      return r ? tensor(r).toFloat32() : null;
    }));
    return { weights, raw: {} };
  }
  return loweredWeights(new Map(Object.entries(constants.labels).map(([label, r]) => [label, tensor(r)])), shape, layer);
}

/** The same block with conv_out's bias added to conv_pool's (as the lowering stores them). */
export function foldBiases(w: DeltaConvBlockWeights): DeltaConvBlockWeights {
  return { ...w, poolBias: foldedPoolBias(w.poolBias, w.outBias), outBias: new Float32Array(w.outBias.length) };
}

/** conv_pool.bias + conv_out.bias, the one output bias a lowered block keeps. */
export function foldedPoolBias(poolBias: Float32Array, outBias: Float32Array): Float32Array {
  return Float32Array.from(poolBias, (v, i) => v + outBias[i]!);
}

function loweredWeights(byLabel: Map<string, Tensor>, s: BlockShape, layer: string): UnpackedWeights {
  const { channels: C, inner: Ci, kernel: K, scales, gate } = s;
  const half = Ci / 2;
  const S = scales.length;
  const find = (label: string, dims: number[]): Tensor | null => {
    const t = byLabel.get(label);
    if (!t) return null;
    if (t.dims.join(',') !== dims.join(',')) throw bad(layer, `its constant "${label}" is [${t.dims.join(', ')}], expected [${dims.join(', ')}]`);
    if (!isFloatType(t.dtype)) throw bad(layer, `its constant "${label}" is not a float tensor`);
    return t;
  };
  const needed = (label: string, dims: number[]): Tensor => {
    const t = find(label, dims);
    if (!t) throw bad(layer, `it has no constant "${label}" (is it a ΔConvBlock lowered by deltac?)`);
    return t;
  };
  const need = (label: string, dims: number[]) => needed(label, dims).toFloat32();
  const raw: UnpackedWeights['raw'] = {};
  /** A [rows, cols] matrix as [cols, rows] (or as it is), its bytes kept in that layout. */
  const matrix = (key: keyof UnpackedWeights['raw'], t: Tensor, rows: number, cols: number, transposed: boolean): Float32Array => {
    const size = byteSizeOf(t.dtype, 1);
    const bytes = transposed ? transposeBytes(t.bytes(), rows, cols, size) : t.bytes();
    const inLayout = new Tensor(t.dtype, transposed ? [cols, rows] : [rows, cols], { kind: 'inline', bytes, encoding: 'raw' });
    raw[key] = { dtype: t.dtype, dims: inLayout.dims, bytes };
    // (a transposed matrix's bytes are its own: as float32, read in place)
    return transposed ? inLayout.readFloat32() : inLayout.toFloat32();
  };
  const upNarrow = find('conv_up.weight', [Ci, C]);
  const upWeight = upNarrow ? matrix('upWeight', upNarrow, Ci, C, false) : matrix('upWeight', needed('conv_up.weight_t', [C, Ci]), C, Ci, true);
  const upBias = find('conv_up.bias_col', [Ci, 1])?.toFloat32() ?? need('conv_up.bias', [Ci]);
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
  const outWeight = matrix('outWeight', needed('conv_out.weight_t', [1, S * half, C]), S * half, C, true);
  const poolWeight = matrix('poolWeight', needed('conv_pool.weight_t', [C, C]), C, C, true);
  const poolBias = need('conv_pool_out.bias', [C]);
  return { weights: { upWeight, upBias, gateWeights, outWeight, outBias: new Float32Array(C), poolWeight, poolBias }, raw };
}


function bad(layer: string, why: string): DeltacError {
  return new DeltacError('DELTAC_E_UNSUPPORTED_MODEL', `layer ${layer}: cannot read its ΔConvBlock weights back: ${why}`, { layer });
}
