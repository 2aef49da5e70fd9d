/**
 * Where H and W of a self-attention layer come from (SPEC.md §3). Tokens are
 * [B, N, C]; the 2-D layout is only visible where a 4-D tensor is flattened into
 * tokens. Walking back from the attention input along token tensors (rank 3) finds
 * that flatten point; the model family decides what the 4-D tensor is:
 * `unet.ts` (SD1.5, SDXL: the Transformer2DModel input around proj_in) and
 * `dit.ts` (PixArt: the patch embedding). `emit-hw.ts` turns the result into the
 * int64 [H, W] value the ΔConvBlock reads.
 */
import type { Node } from '../../../ir/node.js';
import { mulDim, sameDim } from '../../../ir/shape-inference/symbolic.js';
import type { Value } from '../../../ir/value.js';
import type { MatchContext } from '../../attention/match.js';
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
  const patch = ditPatchEmbedding(producer);
  if (patch) return { family: 'dit', description: patch, ...where };
  return { family: 'unet', description: unetDescription(producer, channelsLast), ...where };
}

