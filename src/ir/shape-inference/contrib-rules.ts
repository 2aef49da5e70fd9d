/**
 * Shape rules for the onnxruntime contrib operators (domain `com.microsoft`) that
 * onnxruntime's transformer optimizer writes into diffusion models (SPEC.md §5.2),
 * after their definitions in onnxruntime's docs/ContribOperators.md. Their
 * outputs carry no declared types, so without these rules everything after the
 * first of them would be of unknown shape and element type.
 */
import { DataType } from '../dtype.js';
import type { Dim, ValueType } from '../types.js';
import type { ShapeRule } from './infer.js';
import { convShape, sameAsInput, tensor } from './rule-helpers.js';
import { divDimExact, floorDivDim, mulDim } from './symbolic.js';

/**
 * NhwcConv: Conv on channels-last tensors. X [N, H, W, C], W [M, kH, kW, C/group]
 * (the optimizer transposes the weight, or adds a Transpose(0, 2, 3, 1) on it),
 * attributes as Conv; Y [N, H', W', M].
 */
const nhwcConv: ShapeRule = (ctx) => [tensor(ctx.dtype(0), convShape(ctx, 0, 1, true))];

/** Mean and inverse standard deviation of a layer norm over the last axis: [..., 1], float. */
const statsOf = (x: Dim[] | null): ValueType => tensor(DataType.FLOAT, x ? [...x.slice(0, -1), 1] : null);

/** SkipLayerNormalization / SkipSimplifiedLayerNormalization: output, mean, inv_std_var, input + skip (+ bias). */
const skipLayerNorm: ShapeRule = (ctx) => [ctx.type(0), statsOf(ctx.shape(0)), statsOf(ctx.shape(0)), ctx.type(0)];

/**
 * MultiHeadAttention: query [B, S, D] or packed QKV [B, S, N, 3, H]; key [B, L, D],
 * [B, N, L, H] or packed KV [B, L, N, 2, H]; value [B, L, Dv] or [B, N, L, Hv].
 * Output [B, S, Dv]; present_key/value [B, N, L_total, H].
 */
const multiHeadAttention: ShapeRule = (ctx) => {
  const q = ctx.shape(0);
  const k = ctx.shape(1);
  const v = ctx.shape(2);
  const dt = ctx.dtype(0);
  const heads = ctx.node.getInt('num_heads') ?? null;
  if (!q) return [tensor(dt, null)];
  if (q.length === 5) return [tensor(dt, [q[0]!, q[1]!, mulDim(q[2]!, q[4]!)])];
  let dv: Dim = q[2] ?? null;
  if (v?.length === 3) dv = v[2]!;
  else if (v?.length === 4) dv = mulDim(v[1]!, v[3]!);
  const headSize = heads ? divDimExact(q[2]!, heads) : null;
  const present = k?.length === 4 ? tensor(dt, k) : tensor(dt, [q[0]!, heads, null, headSize]);
  return [tensor(dt, [q[0]!, q[1]!, dv]), present, present];
};

/**
 * Attention: input [B, S, Cin] projected by a packed weight [Cin, 3·hidden]
 * (or qkv_hidden_sizes); output [B, S, v_hidden].
 */
const attention: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  const bias = ctx.shape(2);
  const sizes = ctx.node.getInts('qkv_hidden_sizes');
  let hidden: Dim = sizes?.length === 3 ? sizes[2]! : null;
  if (hidden === null && w?.length === 2) hidden = floorDivDim(w[1]!, 3);
  if (hidden === null && bias?.length === 1) hidden = floorDivDim(bias[0]!, 3);
  return [tensor(ctx.dtype(0), x ? [x[0]!, x[1]!, hidden] : null)];
};

/** BiasSplitGelu: X [N, S, D] + bias [D], split in halves along D: Y [N, S, D/2]. */
const biasSplitGelu: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  return [tensor(ctx.dtype(0), x ? [...x.slice(0, -1), floorDivDim(x[x.length - 1]!, 2)] : null)];
};

/** Keyed `com.microsoft.<op>` as infer.ts looks rules up. */
export const CONTRIB_RULES: Record<string, ShapeRule> = {
  'com.microsoft.NhwcConv': nhwcConv,
  /** GroupNorm (channels_last = 1 by default, optional SiLU): Y has X's type. */
  'com.microsoft.GroupNorm': sameAsInput,
  /** SkipGroupNorm: Y = GroupNorm(X + skip + bias), S = X + skip + bias. */
  'com.microsoft.SkipGroupNorm': (ctx) => [ctx.type(0), ctx.type(0)],
  'com.microsoft.SkipLayerNormalization': skipLayerNorm,
  'com.microsoft.SkipSimplifiedLayerNormalization': skipLayerNorm,
  /** BiasAdd: X [N, S, C] + bias [C] + skip [N, S, C]. */
  'com.microsoft.BiasAdd': sameAsInput,
  'com.microsoft.BiasSplitGelu': biasSplitGelu,
  'com.microsoft.BiasGelu': sameAsInput,
  'com.microsoft.FastGelu': sameAsInput,
  'com.microsoft.QuickGelu': sameAsInput,
  'com.microsoft.Gelu': sameAsInput,
  'com.microsoft.MultiHeadAttention': multiHeadAttention,
  'com.microsoft.Attention': attention,
};
