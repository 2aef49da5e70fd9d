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
import { broadcast, convShape, matmulShape, normAxis, sameAsInput, tensor } from './rule-helpers.js';
import { addDim, divDimExact, floorDivDim, mulDim } from './symbolic.js';

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

// ---- quantized operators (onnxruntime's quantizer, QOperator format) ----------------------------------
// A quantized tensor's element type is its zero point's (inputs of the QLinear op); without a
// zero point it is uint8 (the ONNX default, which the contrib ops follow).

/** The element type a quantized output takes from its zero-point input `zp` (uint8 without one). */
const quantizedType = (ctx: Parameters<ShapeRule>[0], zp: number): DataType => (ctx.hasInput(zp) ? ctx.dtype(zp) : DataType.UINT8);

/** QLinearAdd / QLinearMul: (A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp) → C, broadcast A·B. */
const qlinearBinary: ShapeRule = (ctx) => [tensor(quantizedType(ctx, 7), broadcast([ctx.shape(0), ctx.shape(3)]))];

/** QLinearSoftmax / QLinearSigmoid / QLinearLeakyRelu: (X, X_scale, X_zp, Y_scale, Y_zp) → Y of X's shape. */
const qlinearUnary: ShapeRule = (ctx) => [tensor(quantizedType(ctx, 4), ctx.shape(0))];

/** QLinearConcat: (Y_scale, Y_zp, then (X, X_scale, X_zp) per input) → Concat along `axis`. */
const qlinearConcat: ShapeRule = (ctx) => {
  const n = Math.floor((ctx.node.inputs.length - 2) / 3);
  const shapes = Array.from({ length: n }, (_, i) => ctx.shape(2 + 3 * i));
  const dt = quantizedType(ctx, 1);
  if (n === 0 || shapes.some((s) => !s)) {
    const known = shapes.find((s) => s);
    return [tensor(dt, known ? known.map(() => null) : null)];
  }
  const axis = normAxis(ctx.node.getInt('axis', 0), shapes[0]!.length);
  const out = [...shapes[0]!];
  out[axis] = shapes.reduce<Dim>((a, s) => addDim(a, s![axis]!), 0);
  return [tensor(dt, out)];
};

/**
 * QGemm: (A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp) → [M, N]; quantized with
 * y_scale given, else float (a_scale's type).
 */
const qgemm: ShapeRule = (ctx) => {
  const a = ctx.shape(0);
  const b = ctx.shape(3);
  const dt = ctx.hasInput(7) ? quantizedType(ctx, 8) : ctx.dtype(1);
  if (!a || !b || a.length !== 2 || b.length !== 2) return [tensor(dt, [null, null])];
  return [tensor(dt, [ctx.node.getInt('transA', 0) ? a[1]! : a[0]!, ctx.node.getInt('transB', 0) ? b[0]! : b[1]!])];
};

/** QLinearAveragePool: (X, x_scale, x_zp, y_scale, y_zp) with AveragePool's window attributes. */
const qlinearPool: ShapeRule = (ctx) => [tensor(quantizedType(ctx, 4), convShape(ctx, 0, null, ctx.node.getInt('channels_last', 0) === 1))];

/** QLinearGlobalAveragePool: [N, C, spatial…] → [N, C, 1…] (channels_last: [N, 1…, C]). */
const qlinearGlobalPool: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const last = ctx.node.getInt('channels_last', 0) === 1;
  const dt = quantizedType(ctx, 4);
  if (!x) return [tensor(dt, null)];
  return [tensor(dt, last ? [x[0]!, ...x.slice(1, -1).map(() => 1), x[x.length - 1]!] : [x[0]!, x[1]!, ...x.slice(2).map(() => 1)])];
};

/** MatMulIntegerToFloat: (A, B, a_scale, b_scale, a_zp, b_zp, bias) → float MatMul(A, B) of a_scale's type. */
const matmulIntegerToFloat: ShapeRule = (ctx) => [tensor(ctx.dtype(2), matmulShape(ctx.shape(0), ctx.shape(1)))];

/** DynamicQuantizeMatMul: (A float, B int8, b_scale, b_zp, bias) → float MatMul(A, B). */
const dynamicQuantizeMatMul: ShapeRule = (ctx) => [tensor(ctx.dtype(0), matmulShape(ctx.shape(0), ctx.shape(1)))];

/**
 * MatMulNBits (weight-only 2–8 bit): A [..., K] times a packed [N, K] weight → [..., N] (attribute N),
 * A's type.
 */
const matmulNBits: ShapeRule = (ctx) => {
  const a = ctx.shape(0);
  const n = ctx.node.getInt('N');
  return [tensor(ctx.dtype(0), a ? [...a.slice(0, -1), n ?? null] : null)];
};

/** QuantizeLinear / DequantizeLinear in the com.microsoft domain (16-bit types before opset 21): as the ONNX ops. */
const msQuantizeLinear: ShapeRule = (ctx) => [tensor(quantizedType(ctx, 2), ctx.shape(0))];
const msDequantizeLinear: ShapeRule = (ctx) => [tensor(ctx.dtype(1), ctx.shape(0))];

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
  'com.microsoft.QLinearAdd': qlinearBinary,
  'com.microsoft.QLinearMul': qlinearBinary,
  'com.microsoft.QLinearSoftmax': qlinearUnary,
  'com.microsoft.QLinearSigmoid': qlinearUnary,
  'com.microsoft.QLinearLeakyRelu': qlinearUnary,
  'com.microsoft.QLinearConcat': qlinearConcat,
  'com.microsoft.QLinearAveragePool': qlinearPool,
  'com.microsoft.QLinearGlobalAveragePool': qlinearGlobalPool,
  'com.microsoft.QGemm': qgemm,
  'com.microsoft.MatMulIntegerToFloat': matmulIntegerToFloat,
  'com.microsoft.DynamicQuantizeMatMul': dynamicQuantizeMatMul,
  'com.microsoft.MatMulNBits': matmulNBits,
  'com.microsoft.QuantizeLinear': msQuantizeLinear,
  'com.microsoft.DequantizeLinear': msDequantizeLinear,
};
