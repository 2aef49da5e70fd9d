/**
 * Shape rules for the rest of the ONNX neural-network operators: transposed and
 * quantized convolutions, the other pooling ops, recurrent layers, losses,
 * quantization, spectral ops and the training-preview optimizers. Written from the
 * operator specs and checked against the onnx node-test corpus (test/conformance);
 * where the spec leaves a size to run time, the dim is unknown.
 */
import { DataType } from '../dtype.js';
import type { Dim, ValueType } from '../types.js';
import type { RuleContext, ShapeRule } from './infer.js';
import { convShape, matmulShape, normAxis, sameAsInput, scalarInput, tensor } from './rule-helpers.js';
import { addDim, divDimExact, floorDivDim, mulDim, subDim } from './symbolic.js';

/**
 * ConvTranspose: per spatial dim `stride·(in−1) + output_padding + dilation·(k−1) + 1 − pads`,
 * `in·stride` with SAME auto-padding, or the `output_shape` attribute; channels W[1]·group.
 */
const convTranspose: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const spatial = x.length - 2;
  const channels = w ? mulDim(w[1] ?? null, ctx.node.getInt('group', 1)) : null;
  const given = ctx.node.getInts('output_shape');
  if (given) return [tensor(ctx.dtype(0), [x[0]!, channels, ...given.slice(-spatial)])];
  const kernel = ctx.node.getInts('kernel_shape') ?? (w ? w.slice(2) : undefined);
  if (!kernel || kernel.length !== spatial) return [tensor(ctx.dtype(0), [x[0]!, channels, ...Array(spatial).fill(null)])];
  const strides = ctx.node.getInts('strides') ?? Array(spatial).fill(1);
  const dil = ctx.node.getInts('dilations') ?? Array(spatial).fill(1);
  const outPad = ctx.node.getInts('output_padding') ?? Array(spatial).fill(0);
  const autoPad = ctx.node.getString('auto_pad', 'NOTSET');
  const pads = autoPad === 'NOTSET' ? (ctx.node.getInts('pads') ?? Array(spatial * 2).fill(0)) : Array(spatial * 2).fill(0);
  const out: Dim[] = [x[0]!, channels];
  for (let i = 0; i < spatial; i++) {
    const d = x[i + 2]!;
    const k = kernel[i]!;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') out.push(mulDim(d, strides[i]!));
    else if (typeof d === 'number' && typeof k === 'number') {
      out.push(strides[i]! * (d - 1) + outPad[i]! + dil[i]! * (k - 1) + 1 - pads[i]! - pads[i + spatial]!);
    } else out.push(null);
  }
  return [tensor(ctx.dtype(0), out)];
};

/** MaxUnpool: the `output_shape` input, else `(in−1)·stride + k − pads` per spatial dim. */
const maxUnpool: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (ctx.hasInput(2)) return [tensor(ctx.dtype(0), ctx.contents(2) ?? x?.map(() => null) ?? null)];
  const kernel = ctx.node.getInts('kernel_shape');
  if (!x || !kernel) return [tensor(ctx.dtype(0), null)];
  const spatial = x.length - 2;
  const strides = ctx.node.getInts('strides') ?? Array(spatial).fill(1);
  const pads = ctx.node.getInts('pads') ?? Array(spatial * 2).fill(0);
  const out: Dim[] = [x[0]!, x[1]!];
  for (let i = 0; i < spatial; i++) {
    const d = x[i + 2]!;
    out.push(typeof d === 'number' ? (d - 1) * strides[i]! + kernel[i]! - pads[i]! - pads[i + spatial]! : null);
  }
  return [tensor(ctx.dtype(0), out)];
};

/**
 * RNN / GRU / LSTM: Y [seq, dirs, batch, hidden] and the final states [dirs, batch, hidden]
 * (layout 1: batch first, [batch, seq, dirs, hidden] and [batch, dirs, hidden]).
 */
const recurrent: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const batchFirst = ctx.node.getInt('layout', 0) === 1;
  const dirs = ctx.node.getString('direction', 'forward') === 'bidirectional' ? 2 : 1;
  const hidden: Dim = ctx.node.getInt('hidden_size') ?? ctx.shape(2)?.[2] ?? null;
  const seq: Dim = x ? (batchFirst ? x[1]! : x[0]!) : null;
  const batch: Dim = x ? (batchFirst ? x[0]! : x[1]!) : null;
  const y = tensor(ctx.dtype(0), batchFirst ? [batch, seq, dirs, hidden] : [seq, dirs, batch, hidden]);
  const state = tensor(ctx.dtype(0), batchFirst ? [batch, dirs, hidden] : [dirs, batch, hidden]);
  return [y, state, state];
};

/**
 * LinearAttention (opset 27): query [B, T, H_q·d_k], value [B, T, H_kv·d_v] (heads from the
 * q_num_heads / kv_num_heads attributes). Output [B, T, H_q·d_v] of the query's type;
 * present_state [B, H_kv, d_k, d_v] of past_state's type (the query's without one).
 */
const linearAttention: ShapeRule = (ctx) => {
  const q = ctx.shape(0);
  const v = ctx.shape(2);
  const qHeads: Dim = ctx.node.getInt('q_num_heads') ?? null;
  const kvHeads: Dim = ctx.node.getInt('kv_num_heads') ?? null;
  const dk = q?.length === 3 ? divDimExact(q[2]!, qHeads) : null;
  const dv = v?.length === 3 ? divDimExact(v[2]!, kvHeads) : null;
  const batch: Dim = q?.[0] ?? null;
  const stateType = ctx.hasInput(3) ? ctx.dtype(3) : ctx.dtype(0);
  return [
    tensor(ctx.dtype(0), q?.length === 3 ? [batch, q[1]!, mulDim(qHeads, dv)] : null),
    tensor(stateType, [batch, kvHeads, dk, dv]),
  ];
};

/**
 * CausalConvWithState (opset 27): a depthwise causal conv over [B, C, L] with weight [C, 1, k];
 * the output has the input's shape, present_state keeps the last k−1 positions: [B, C, k−1].
 */
const causalConvWithState: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  const k = w?.length === 3 ? w[2]! : null;
  return [
    ctx.type(0),
    tensor(ctx.dtype(0), x?.length === 3 ? [x[0]!, x[1]!, subDim(k, 1)] : [null, null, subDim(k, 1)]),
  ];
};

/** FlexAttention (ai.onnx.preview): Q [B, H_q, S_q, d], V [B, H_kv, S_kv, d_v] → Y [B, H_q, S_q, d_v]. */
const flexAttention: ShapeRule = (ctx) => {
  const q = ctx.shape(0);
  const v = ctx.shape(2);
  return [tensor(ctx.dtype(0), q?.length === 4 ? [q[0]!, q[1]!, q[2]!, v?.length === 4 ? v[3]! : null] : null)];
};

/** NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss: per element with reduction 'none', else a scalar. */
const loss: ShapeRule = (ctx) => {
  const none = ctx.node.getString('reduction', 'mean') === 'none';
  return [tensor(ctx.dtype(0), none ? ctx.shape(1) : []), tensor(ctx.dtype(0), ctx.shape(0))];
};

const attrType = (ctx: RuleContext, name: string): DataType | undefined => {
  const t = ctx.node.getInt(name);
  return t ? (t as DataType) : undefined;
};

const quantizeLinear: ShapeRule = (ctx) => [
  tensor(attrType(ctx, 'output_dtype') ?? (ctx.hasInput(2) ? ctx.dtype(2) : DataType.UINT8), ctx.shape(0)),
];

const dequantizeLinear: ShapeRule = (ctx) => [tensor(attrType(ctx, 'output_dtype') ?? ctx.dtype(1), ctx.shape(0))];

const dynamicQuantizeLinear: ShapeRule = (ctx) => [
  tensor(DataType.UINT8, ctx.shape(0)),
  tensor(DataType.FLOAT, []),
  tensor(DataType.UINT8, []),
];

/**
 * DFT: the last dim becomes 2 (real, imaginary); the transformed axis has dft_length
 * elements (default: as many as the input), floor(n/2)+1 when onesided (an inverse of a
 * one-sided spectrum is real: last dim 1, 2·(n−1) elements). The axis is an
 * attribute (default 1) before opset 20, an input (default −2) from 20 on.
 */
const dft: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const fromInput = (ctx.opset ?? 0) >= 20;
  const axisValue = fromInput ? (ctx.hasInput(2) ? scalarInput(ctx, 2) : -2) : ctx.node.getInt('axis', 1);
  const onesided = ctx.node.getInt('onesided', 0) === 1;
  const realOutput = onesided && ctx.node.getInt('inverse', 0) === 1;
  if (axisValue === undefined) return [tensor(ctx.dtype(0), [...x.slice(0, -1).map(() => null), realOutput ? 1 : 2])];
  const axis = normAxis(axisValue, x.length);
  const given: Dim | undefined = ctx.hasInput(1) ? (scalarInput(ctx, 1) ?? null) : undefined;
  if (realOutput) {
    // the inverse of a one-sided spectrum is a real signal of length 2·(n−1) (or dft_length)
    const d = x[axis]!;
    const n = given !== undefined ? given : typeof d === 'number' ? 2 * (d - 1) : null;
    return [tensor(ctx.dtype(0), x.map((dim, i) => (i === x.length - 1 ? 1 : i === axis ? n : dim)))];
  }
  const length: Dim = given !== undefined ? given : x[axis]!;
  const n = onesided ? addDim(floorDivDim(length, 2), 1) : length;
  return [tensor(ctx.dtype(0), x.map((d, i) => (i === x.length - 1 ? 2 : i === axis ? n : d)))];
};

/**
 * The training-preview optimizers: inputs R, T, then n tensors per group; outputs the
 * new values of some groups, each with the shape of its input. `groups` says, per
 * output group, which input group it updates.
 */
const optimizer =
  (inputGroups: number, outputGroups: number[]): ShapeRule =>
  (ctx) => {
    const n = (ctx.node.inputs.length - 2) / inputGroups;
    if (!Number.isInteger(n)) return null;
    const out: (ValueType | null)[] = [];
    for (const g of outputGroups) for (let i = 0; i < n; i++) out.push(ctx.type(2 + g * n + i));
    return out;
  };

const pooled: ShapeRule = (ctx) => [tensor(ctx.dtype(0), convShape(ctx, 0, null))];

export const NN_RULES: Record<string, ShapeRule> = {
  ConvTranspose: convTranspose,
  ConvInteger: (ctx) => [tensor(DataType.INT32, convShape(ctx, 0, 1))],
  QLinearConv: (ctx) => [tensor(ctx.dtype(7), convShape(ctx, 0, 3))],
  MatMulInteger: (ctx) => [tensor(DataType.INT32, matmulShape(ctx.shape(0), ctx.shape(1)))],
  QLinearMatMul: (ctx) => [tensor(ctx.dtype(7), matmulShape(ctx.shape(0), ctx.shape(3)))],
  LpPool: pooled,
  MaxUnpool: maxUnpool,
  RNN: recurrent,
  GRU: recurrent,
  LSTM: recurrent,
  RMSNormalization: sameAsInput,
  // RotaryEmbedding (opset 23): the output has the input's shape and type
  RotaryEmbedding: sameAsInput,
  // SwiGLU (opset 28): A and B have the same shape (no broadcasting); so has Y
  SwiGLU: (ctx) => [tensor(ctx.dtype(0), ctx.shape(0) ?? ctx.shape(1))],
  // DeformConv (opset 19): Y [N, W[0], spatial…] with Conv's arithmetic (kernel, pads, strides, dilations)
  DeformConv: (ctx) => [tensor(ctx.dtype(0), convShape(ctx, 0, 1))],
  LinearAttention: linearAttention,
  CausalConvWithState: causalConvWithState,
  'ai.onnx.preview.FlexAttention': flexAttention,
  NegativeLogLikelihoodLoss: loss,
  SoftmaxCrossEntropyLoss: loss,
  QuantizeLinear: quantizeLinear,
  DequantizeLinear: dequantizeLinear,
  DynamicQuantizeLinear: dynamicQuantizeLinear,
  DFT: dft,
  // inputs R, T, X…, G…, [V…, [H…]]; outputs X_new…, [V_new…, [H_new…]] (Adagrad: X…, G…, H… → X_new…, H_new…)
  'ai.onnx.preview.training.Adagrad': optimizer(3, [0, 2]),
  'ai.onnx.preview.training.Momentum': optimizer(3, [0, 2]),
  'ai.onnx.preview.training.Adam': optimizer(4, [0, 2, 3]),
};
