/**
 * Where H and W of a self-attention layer come from (SPEC.md §3). Tokens are
 * [B, N, C]; the 2-D layout is only visible where a 4-D tensor is flattened into
 * tokens. One forward pass over the graph (in node order, so linear in its size
 * and independent of how deep a layer sits in a token stream) finds every such
 * flatten point and carries "these tokens are the flattening of that tensor" to
 * every token tensor (rank 3) computed from them:
 *
 *   [B, H, W, C] ─Reshape→ [B, H·W, C]                       channels-last (UNet proj_in;
 *                                                              onnxruntime's NhwcConv graphs)
 *   [B, C, H, W] ─Reshape→ [B, C, H·W] ─Transpose(0,2,1)→     channels-first (DiT patch embedding)
 *   tokens ─(any op, to outputs of rank 3 with as many tokens)→ tokens    LayerNorm, MatMul, Add, SkipLayerNorm …
 *
 * An output whose token count is known to differ (a Concat of image and text
 * tokens, a Slice) is not the flattening of that tensor any more and gets no source.
 * Quantized exports are read through (quantization/reading.ts): the tensors may be quantized
 * (a QLinearConv proj_in, Reshapes of uint8 tensors), QuantizeLinear /
 * DequantizeLinear steps sit between the flatten and its Transpose, and the
 * projection before the flatten may be a ConvInteger group.
 *
 * The model family decides what the 4-D tensor is: `unet.ts` (SD1.5, SDXL: the
 * Transformer2DModel input around proj_in) and `dit.ts` (PixArt: the patch
 * embedding). `emit-hw.ts` turns the result into the int64 [H, W] value the
 * ΔConvBlock reads.
 */
import type { Graph } from '../../../ir/graph.js';
import type { Node } from '../../../ir/node.js';
import { mulDim, sameDim } from '../../../ir/shape-inference/symbolic.js';
import type { Value } from '../../../ir/value.js';
import type { MatchContext } from '../../attention/match.js';
import { dequantized, isQuantizeStep, producerOp } from '../../quantization/reading.js';
import { ditPatchEmbedding } from './dit.js';
import { unetDescription } from './unet.js';

export type ModelFamily = 'unet' | 'dit';

export interface SpatialSource {
  family: ModelFamily;
  /** How H, W were found, for the conversion report. */
  description: string;
  /** The 4-D tensor whose dims hold H and W. */
  tensor: Value;
  hAxis: number;
  wAxis: number;
  /** Both dims when static. */
  static: [number, number] | null;
}

/** The spatial source of every token tensor of one graph. */
export type SpatialIndex = ReadonlyMap<Value, SpatialSource>;

/**
 * Propagates spatial sources forward through `graph` once. `barriers` are values
 * that do not pass a source on (the outputs of attention modules: their
 * head-merging Reshape [B, N, heads, d] → [B, N, C] is not a spatial flatten).
 */
export function spatialIndex(graph: Graph, ctx: MatchContext, barriers: ReadonlySet<Value> = new Set()): SpatialIndex {
  const rank = (v: Value | null | undefined) => ctx.shape(v)?.length;
  const sources = new Map<Value, SpatialSource>();
  /** [B, C, H·W] flattenings waiting for their Transpose(0, 2, 1) to become tokens. */
  const channelsFirst = new Map<Value, SpatialSource>();
  for (const node of graph.nodes) {
    const out = node.outputs[0];
    if (!out) continue;
    if ((node.opType === 'Reshape' || node.opType === 'Flatten') && rank(node.inputs[0]) === 4 && rank(out) === 3) {
      const flat = describeFlatten(node, ctx);
      if (flat?.channelsLast) sources.set(out, flat.source);
      else if (flat) channelsFirst.set(out, flat.source);
      continue;
    }
    if (node.opType === 'Transpose' && node.inputs[0] && channelsFirst.has(node.inputs[0]) && node.getInts('perm')?.join(',') === '0,2,1') {
      sources.set(out, channelsFirst.get(node.inputs[0])!);
      continue;
    }
    // [B, C, H·W] quantized again, or cast, on its way to the Transpose
    if ((isQuantizeStep(node) || node.opType === 'Cast') && node.inputs[0] && channelsFirst.has(node.inputs[0])) {
      channelsFirst.set(out, channelsFirst.get(node.inputs[0])!);
      continue;
    }
    const from = inheritedSource(node, sources, barriers, rank);
    if (!from) continue;
    const tokens = ctx.shape(from.input)![1]!;
    for (const v of node.outputs) {
      const n = ctx.shape(v)?.[1];
      if (rank(v) === 3 && n !== undefined && (n === null || tokens === null || sameDim(n, tokens))) sources.set(v, from.source);
    }
  }
  return sources;
}

/** The first token input (rank 3, computed, not a barrier) that has a source, with that source. */
function inheritedSource(
  node: Node,
  sources: Map<Value, SpatialSource>,
  barriers: ReadonlySet<Value>,
  rank: (v: Value) => number | undefined,
): { input: Value; source: SpatialSource } | null {
  for (const input of node.inputs) {
    if (!input || input.initializer || barriers.has(input)) continue;
    const source = sources.get(input);
    if (source && rank(input) === 3) return { input, source };
  }
  return null;
}

const cache = new WeakMap<MatchContext, { graph: Graph; barriers: ReadonlySet<Value>; index: SpatialIndex }>();

/**
 * The flatten point behind a token tensor, or null. The index of the graph is
 * built on the first call for a (context, barriers) pair and reused after.
 */
export function findSpatialSource(tokens: Value, ctx: MatchContext, barriers: ReadonlySet<Value> = new Set()): SpatialSource | null {
  let hit = cache.get(ctx);
  if (!hit || hit.graph !== tokens.graph || hit.barriers !== barriers) {
    hit = { graph: tokens.graph, barriers, index: spatialIndex(tokens.graph, ctx, barriers) };
    cache.set(ctx, hit);
  }
  return hit.index.get(tokens) ?? null;
}

function describeFlatten(flatten: Node, ctx: MatchContext): { source: SpatialSource; channelsLast: boolean } | null {
  const t4 = flatten.inputs[0]!;
  const s4 = ctx.shape(t4)!;
  const out = ctx.shape(flatten.outputs[0])!;
  const before = dequantized(t4).value.producer;
  const transposed = before?.opType === 'Transpose' ? before : null;
  const perm = transposed?.getInts('perm');
  // [B, H, W, C] → [B, H·W, C]: the last dim survives and dims 1, 2 merge.
  const channelsLast =
    (perm?.join(',') === '0,2,3,1' || sameDim(out[2]!, s4[3]!)) &&
    (out[1] === null || sameDim(out[1]!, mulDim(s4[1]!, s4[2]!)));
  // [B, C, H, W] → [B, C, H·W] (tokens after a Transpose(0, 2, 1): the DiT patch embedding).
  if (!channelsLast && !sameDim(out[1]!, s4[1]!)) return null;
  const hAxis = channelsLast ? 1 : 2;
  const h = s4[hAxis];
  const w = s4[hAxis + 1];
  const isStatic = typeof h === 'number' && typeof w === 'number';
  const nchw = channelsLast && transposed ? transposed.inputs[0]! : t4;
  const producer = producerOp(nchw);
  const where = { tensor: t4, hAxis, wAxis: hAxis + 1, static: isStatic ? ([h, w] as [number, number]) : null };
  const patch = ditPatchEmbedding(producer);
  const source: SpatialSource = patch ? { family: 'dit', description: patch, ...where } : { family: 'unet', description: unetDescription(producer, channelsLast), ...where };
  return { source, channelsLast };
}
