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
import { divDimExact, floorDivDim, mulDim } from './symbolic.js';

const tensor = (dtype: DataType, shape: Dim[] | null): ValueType => ({ kind: 'tensor', dtype, shape });

const sameAsInput: ShapeRule = (ctx) => [ctx.type(0)];

/** One output dim of a convolution (floor mode). */
function convDim(d: Dim, k: number, s: number, p0: number, p1: number, dil: number): Dim {
  if (typeof d === 'number') return Math.floor((d + p0 + p1 - dil * (k - 1) - 1) / s) + 1;
  if (d === null) return null;
  if (s === 1 && p0 + p1 === dil * (k - 1)) return d;
  const off = p0 + p1 - dil * (k - 1) - 1;
  return `floor((${d}${off >= 0 ? '+' : ''}${off})/${s})+1`;
}

/**
 * NhwcConv: Conv on channels-last tensors. X [N, H, W, C], W [M, kH, kW, C/group]
 * (the optimizer transposes the weight, or adds a Transpose(0, 2, 3, 1) on it),
 * attributes as Conv; Y [N, H', W', M].
 */
const nhwcConv: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  if (!x || x.length < 3) return [tensor(ctx.dtype(0), null)];
  const spatial = x.length - 2;
  const kernel = ctx.node.getInts('kernel_shape') ?? (w ? (w.slice(1, 1 + spatial) as number[]) : undefined);
  const out: Dim[] = [x[0]!];
  const autoPad = ctx.node.getString('auto_pad', 'NOTSET');
  const strides = ctx.node.getInts('strides') ?? Array(spatial).fill(1);
  const dil = ctx.node.getInts('dilations') ?? Array(spatial).fill(1);
  const pads = autoPad === 'VALID' ? Array(spatial * 2).fill(0) : (ctx.node.getInts('pads') ?? Array(spatial * 2).fill(0));
  for (let i = 0; i < spatial; i++) {
    const d = x[i + 1]!;
    const k = kernel?.[i];
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') out.push(typeof d === 'number' ? Math.ceil(d / strides[i]!) : strides[i] === 1 ? d : null);
    else out.push(typeof k === 'number' ? convDim(d, k, strides[i]!, pads[i]!, pads[i + spatial]!, dil[i]!) : null);
  }
  out.push(w?.[0] ?? null);
  return [tensor(ctx.dtype(0), out)];
};

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
  'com.microsoft.SkipSimplifiedLayerNormalization': (ctx) => [ctx.type(0), statsOf(ctx.shape(0)), statsOf(ctx.shape(0)), ctx.type(0)],
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
