/**
 * Where H and W of a self-attention layer come from (SPEC.md §3). Tokens are
 * [B, N, C]; the 2-D layout is only visible where a 4-D tensor is flattened into
 * tokens. Walking back from the attention input along token tensors (rank 3) finds
 * that flatten point:
 *
 *  - UNet (SD1.5, SDXL): the Transformer2DModel input [B, C, H, W] → proj_in 1×1 Conv
 *    → Transpose(0,2,3,1) → Reshape [B, H·W, C]; or, with use_linear_projection,
 *    Transpose → Reshape → proj_in Linear (see `unet` in describeSource).
 *  - DiT (PixArt): the latent → patch-embedding Conv (stride = patch) → Reshape
 *    [B, C, h·w] → Transpose(0,2,1) (see `dit` in describeSource).
 *
 * The result names the 4-D tensor and the axes holding H and W; the rewrite emits
 * `Shape(tensor, start, end)` for them, or a constant when both are static.
 */
import type { Graph } from '../../ir/graph.js';
import type { Node } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';
import type { Value } from '../../ir/value.js';
import type { MatchContext } from '../attention/match.js';
import { mulDim, sameDim } from '../../ir/shape-inference/symbolic.js';

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

const MAX_VISITED = 400;

/**
 * Finds the flatten point behind a token tensor, or null. `barriers` are values
 * the walk must not cross (the outputs of attention modules: their head-merging
 * Reshape [B, N, heads, d] → [B, N, C] is not a spatial flatten).
 */
export function findSpatialSource(tokens: Value, ctx: MatchContext, barriers: Set<Value> = new Set()): SpatialSource | null {
  const rank = (v: Value | null | undefined) => ctx.shape(v)?.length;
  const queue: Value[] = [tokens];
  /** The node through which the walk reached a value (to recognise Reshape → Transpose(0,2,1)). */
  const via = new Map<Value, Node | null>([[tokens, null]]);
  while (queue.length && via.size < MAX_VISITED) {
    const v = queue.shift()!;
    const p = v.producer;
    if (!p) continue;
    if ((p.opType === 'Reshape' || p.opType === 'Flatten') && rank(p.inputs[0]) === 4 && rank(v) === 3) {
      const found = describeSource(p, v, via.get(v) ?? null, ctx);
      if (found) return found;
      continue;
    }
    for (const input of p.inputs) {
      if (!input || input.initializer || via.has(input) || barriers.has(input)) continue;
      if (rank(input) !== 3) continue; // stay on token tensors
      via.set(input, p);
      queue.push(input);
    }
  }
  return null;
}

function describeSource(flatten: Node, flat: Value, consumer: Node | null, ctx: MatchContext): SpatialSource | null {
  const t4 = flatten.inputs[0]!;
  const s4 = ctx.shape(t4)!;
  const out = ctx.shape(flat)!;
  const transposed = t4.producer?.opType === 'Transpose' ? t4.producer : null;
  const perm = transposed?.getInts('perm');
  // [B, H, W, C] → [B, H·W, C]: the last dim survives and dims 1, 2 merge.
  const channelsLast =
    (perm?.join(',') === '0,2,3,1' || sameDim(out[2]!, s4[3]!)) &&
    (out[1] === null || sameDim(out[1]!, mulDim(s4[1]!, s4[2]!)));
  // [B, C, H, W] → [B, C, H·W], then Transpose(0, 2, 1) to tokens (the DiT patch embedding).
  const channelsFirst =
    !channelsLast &&
    sameDim(out[1]!, s4[1]!) &&
    consumer?.opType === 'Transpose' &&
    consumer.getInts('perm')?.join(',') === '0,2,1';
  if (!channelsLast && !channelsFirst) return null;
  const hAxis = channelsLast ? 1 : 2;
  const h = s4[hAxis];
  const w = s4[hAxis + 1];
  const isStatic = typeof h === 'number' && typeof w === 'number';
  const nchw = channelsLast && transposed ? transposed.inputs[0]! : t4;
  const producer = nchw.producer;
  const where = { tensor: t4, hAxis, wAxis: hAxis + 1, static: isStatic ? ([h, w] as [number, number]) : null };
  // DiT: the 4-D tensor is a patch-embedding Conv (stride = kernel > 1).
  if (producer?.opType === 'Conv') {
    const strides = producer.getInts('strides') ?? [1, 1];
    const kernel = producer.getInts('kernel_shape') ?? [];
    if (strides.some((s) => s > 1) && kernel.join(',') === strides.join(',')) {
      return { family: 'dit', description: `DiT patch embedding ${producer.name || 'Conv'} (stride ${strides.join('×')}) output`, ...where };
    }
  }
  const proj = producer?.opType === 'Conv' ? `proj_in Conv ${producer.name}`.trim() : 'Transformer2DModel input';
  return { family: 'unet', description: `UNet ${proj} [B,C,H,W] (flattened ${channelsLast ? 'channels-last' : 'channels-first'})`, ...where };
}

/** Emits an int64 [2] value (H, W): a constant when static, else Shape(tensor, start, end). */
export function emitHW(graph: Graph, source: SpatialSource, opset: number, name: string): Value {
  if (source.static) return graph.addInitializer(`${name}.hw`, Tensor.fromInt64(source.static));
  if (opset >= 15) {
    return graph.op('Shape', [source.tensor], {
      name: `${name}/hw`,
      attributes: { start: { type: 'int', value: source.hAxis }, end: { type: 'int', value: source.wAxis + 1 } },
    });
  }
  const shape = graph.op('Shape', [source.tensor], { name: `${name}/shape` });
  return graph.op(
    'Slice',
    [
      shape,
      graph.addInitializer(`${name}.hw_start`, Tensor.fromInt64([source.hAxis])),
      graph.addInitializer(`${name}.hw_end`, Tensor.fromInt64([source.wAxis + 1])),
    ],
    { name: `${name}/hw` },
  );
}
