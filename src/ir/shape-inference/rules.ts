/**
 * One shape rule per operator. A rule returns the output types (null where
 * unknown) and may record the contents of small integer outputs (shape math).
 */
import { DataType } from '../dtype.js';
import type { Dim } from '../types.js';
import type { RuleContext, ShapeRule } from './infer.js';
import { MAX_CONTENT_ELEMENTS, broadcast, convShape, matmulShape, normAxis, rankOfShapeInput, sameAsInput, tensor, unknownDims } from './rule-helpers.js';
import { CONTRIB_RULES } from './contrib-rules.js';
import { einsumRule } from './einsum.js';
import { NN_RULES } from './rules-nn.js';
import { CONTROL_RULES } from './rules-control.js';
import { TENSOR_RULES } from './rules-tensor.js';
import { addDim, divDimExact, floorDivDim, mulDim, sameDim, subDim } from './symbolic.js';

/** Elementwise arithmetic; also propagates contents of integer shape math. */
function elementwise(op?: (a: Dim, b: Dim) => Dim): ShapeRule {
  return (ctx) => {
    const n = ctx.node.inputs.length;
    const shape = broadcast(Array.from({ length: n }, (_, i) => ctx.shape(i)));
    if (op) {
      const a = ctx.contents(0);
      const b = ctx.contents(1);
      if (a && b && (a.length === b.length || a.length === 1 || b.length === 1)) {
        const len = Math.max(a.length, b.length);
        ctx.setContents(
          0,
          Array.from({ length: len }, (_, i) => op(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!)),
        );
      }
    }
    return [tensor(ctx.dtype(0), shape)];
  };
}

const comparison: ShapeRule = (ctx) => [tensor(DataType.BOOL, broadcast([ctx.shape(0), ctx.shape(1)]))];

function reduce(ctx: RuleContext, axes: number[] | undefined, keepdims: boolean): Dim[] | null {
  const s = ctx.shape(0);
  if (!s) return null;
  const all = axes === undefined || axes.length === 0;
  const set = new Set((axes ?? []).map((a) => normAxis(a, s.length)));
  const out: Dim[] = [];
  s.forEach((d, i) => {
    if (all || set.has(i)) {
      if (keepdims) out.push(1);
    } else out.push(d);
  });
  return out;
}

const reduceRule: ShapeRule = (ctx) => {
  // an axes input whose shape is [0] is known to be empty, whatever it holds at run time
  const emptyAxes = ctx.hasInput(1) && ctx.shape(1)?.length === 1 && ctx.shape(1)![0] === 0 ? [] : undefined;
  const axes = ctx.node.getInts('axes') ?? (ctx.hasInput(1) ? (ctx.numbers(1) ?? emptyAxes) : undefined);
  if (ctx.hasInput(1) && !axes) return [tensor(ctx.dtype(0), null)];
  if ((ctx.node.getInt('noop_with_empty_axes', 0) === 1) && (!axes || axes.length === 0)) return [ctx.type(0)];
  return [tensor(ctx.dtype(0), reduce(ctx, axes, ctx.node.getInt('keepdims', 1) === 1))];
};

const convLike =
  (channelsFromWeight: boolean): ShapeRule =>
  (ctx) => [tensor(ctx.dtype(0), convShape(ctx, 0, channelsFromWeight ? 1 : null))];

const reshapeRule: ShapeRule = (ctx) => {
  const target = ctx.contents(1);
  const x = ctx.shape(0);
  if (!target) {
    return [tensor(ctx.dtype(0), unknownDims(rankOfShapeInput(ctx, 1)))];
  }
  const allowzero = ctx.node.getInt('allowzero', 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowzero ? (x?.[i] ?? null) : d));
  const minus = out.findIndex((d) => d === -1);
  if (minus >= 0) {
    // a dim copied by 0 is the same on both sides: it cancels even when unknown
    const copied = (i: number) => target[i] === 0 && !allowzero && x !== null && i < x.length;
    let total: Dim = x ? x.reduce<Dim>((a, b, i) => (copied(i) ? a : mulDim(a, b)), 1) : null;
    for (const [i, d] of out.entries()) if (i !== minus && !copied(i)) total = divDimExact(total, d);
    out[minus] = total;
  }
  return [tensor(ctx.dtype(0), out.map((d) => (typeof d === 'number' && d < 0 ? null : d)))];
};

const gatherRule: ShapeRule = (ctx) => {
  const data = ctx.shape(0);
  const idx = ctx.shape(1);
  const axis = normAxis(ctx.node.getInt('axis', 0), data?.length ?? 1);
  const c = ctx.contents(0);
  const i = ctx.numbers(1);
  if (c && i) {
    const picked = i.map((k) => c[k < 0 ? k + c.length : k] ?? null);
    ctx.setContents(0, picked);
  }
  if (!data || !idx) return [tensor(ctx.dtype(0), null)];
  return [tensor(ctx.dtype(0), [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)])];
};

const sliceRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const starts = ctx.numbers(1);
  const ends = ctx.numbers(2);
  if (!x || !starts || !ends) return [tensor(ctx.dtype(0), x ? x.map(() => null) : null)];
  const axes = ctx.hasInput(3) ? ctx.numbers(3) : starts.map((_, i) => i);
  const steps = ctx.hasInput(4) ? ctx.numbers(4) : starts.map(() => 1);
  if (!axes || !steps) return [tensor(ctx.dtype(0), x.map(() => null))];
  const out = [...x];
  const c = ctx.contents(0);
  axes.forEach((a0, k) => {
    const a = normAxis(a0, x.length);
    const d = x[a];
    const step = steps[k]!;
    if (typeof d !== 'number') {
      // Symbolic dim: only full-range or suffix/prefix slices with known lengths resolve.
      const s = starts[k]!;
      const e = ends[k]!;
      if (step === 1 && s === 0 && e >= 2 ** 31) out[a] = d ?? null;
      else if (step === 1 && s >= 0 && e >= 0 && e < 2 ** 31) out[a] = e - s;
      else out[a] = null;
      return;
    }
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    let s = starts[k]! < 0 ? starts[k]! + d : starts[k]!;
    let e = ends[k]! < 0 ? ends[k]! + d : ends[k]!;
    if (step > 0) {
      s = clamp(s, 0, d);
      e = clamp(e, 0, d);
      out[a] = Math.max(0, Math.ceil((e - s) / step));
      if (c && a === 0 && x.length === 1) {
        const vals: Dim[] = [];
        // Bounded by the known contents, not by the (possibly declared, possibly huge) dim.
        for (let i = s; i < Math.min(e, c.length); i += step) vals.push(c[i]!);
        ctx.setContents(0, vals);
      }
    } else {
      s = clamp(s, -1, d - 1);
      e = clamp(e, -1, d - 1);
      out[a] = Math.max(0, Math.ceil((s - e) / -step));
    }
  });
  return [tensor(ctx.dtype(0), out)];
};

const concatRule: ShapeRule = (ctx) => {
  const n = ctx.node.inputs.length;
  const shapes = Array.from({ length: n }, (_, i) => ctx.shape(i));
  const contents = Array.from({ length: n }, (_, i) => ctx.contents(i));
  if (contents.every((c) => c)) ctx.setContents(0, contents.flatMap((c) => c!));
  if (shapes.some((s) => !s)) {
    const known = shapes.find((s) => s);
    return [tensor(ctx.dtype(0), known ? known.map(() => null) : null)];
  }
  const axis = normAxis(ctx.node.getInt('axis', 0), shapes[0]!.length);
  const out = [...shapes[0]!];
  out[axis] = shapes.reduce<Dim>((a, s) => addDim(a, s![axis]!), 0);
  return [tensor(ctx.dtype(0), out)];
};

/**
 * Split: sizes from the `split` input (opset 1 and 13+) or attribute (opset 2–12); without
 * them equal parts, the last one smaller when the dim does not divide (opset 18's
 * num_outputs; earlier opsets only allow even splits, where both readings agree).
 */
const splitRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const nOut = ctx.node.outputs.length;
  if (!x) return Array(nOut).fill(tensor(ctx.dtype(0), null));
  const axis = normAxis(ctx.node.getInt('axis', 0), x.length);
  const given = ctx.hasInput(1) ? ctx.numbers(1) : ctx.node.getInts('split');
  const explicit = ctx.hasInput(1) || ctx.node.getInts('split') !== undefined;
  const d = x[axis]!;
  let sizes: Dim[];
  if (explicit) {
    sizes = given && given.length === nOut ? given : Array(nOut).fill(null);
  } else if (typeof d === 'number') {
    const chunk = Math.ceil(d / nOut);
    const last = d - chunk * (nOut - 1);
    sizes = last >= 0 ? [...Array(nOut - 1).fill(chunk), last] : Array(nOut).fill(null);
  } else {
    // Before opset 18 the parts must be equal, so d/n is exact; from 18 on d may not divide.
    sizes = Array(nOut).fill((ctx.opset ?? 0) < 18 ? floorDivDim(d, nOut) : divDimExact(d, nOut));
  }
  return sizes.map((size) => {
    const out = [...x];
    out[axis] = size;
    return tensor(ctx.dtype(0), out);
  });
};

const unsqueezeRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const axes = ctx.node.getInts('axes') ?? ctx.numbers(1);
  const c = ctx.contents(0);
  if (c && c.length === 1 && (x?.length ?? 0) <= 1) ctx.setContents(0, c);
  if (!x || !axes) return [tensor(ctx.dtype(0), null)];
  const rank = x.length + axes.length;
  const set = new Set(axes.map((a) => normAxis(a, rank)));
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : x[k++]!);
  return [tensor(ctx.dtype(0), out)];
};

const squeezeRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const axes = ctx.node.getInts('axes') ?? (ctx.hasInput(1) ? ctx.numbers(1) : undefined);
  const c = ctx.contents(0);
  if (c && c.length === 1) ctx.setContents(0, c);
  if (!x) return [tensor(ctx.dtype(0), null)];
  if (ctx.hasInput(1) && !axes) return [tensor(ctx.dtype(0), null)];
  const set = axes ? new Set(axes.map((a) => normAxis(a, x.length))) : undefined;
  return [tensor(ctx.dtype(0), x.filter((d, i) => (set ? !set.has(i) : d !== 1)))];
};

const transposeRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const perm = ctx.node.getInts('perm') ?? x.map((_, i) => x.length - 1 - i);
  return [tensor(ctx.dtype(0), perm.map((p) => x[p] ?? null))];
};

const shapeRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(DataType.INT64, [null])];
  const r = x.length;
  let start = ctx.node.getInt('start', 0);
  let end = ctx.node.getInt('end', r);
  start = Math.min(Math.max(start < 0 ? start + r : start, 0), r);
  end = Math.min(Math.max(end < 0 ? end + r : end, 0), r);
  const dims = x.slice(start, end);
  ctx.setContents(0, dims);
  return [tensor(DataType.INT64, [dims.length])];
};

const castRule: ShapeRule = (ctx) => {
  const to = ctx.node.getInt('to', 0) as DataType;
  const c = ctx.contents(0);
  if (c && (to === DataType.INT64 || to === DataType.INT32)) ctx.setContents(0, c);
  return [tensor(to, ctx.shape(0))];
};

const constantRule: ShapeRule = (ctx) => {
  const t = ctx.node.getTensor('value');
  if (t) {
    if (t.storage.kind === 'inline' && t.dims.length <= 1 && t.elementCount <= MAX_CONTENT_ELEMENTS && (t.dtype === DataType.INT64 || t.dtype === DataType.INT32)) {
      ctx.setContents(0, t.toNumbers());
    }
    return [tensor(t.dtype, [...t.dims])];
  }
  const i = ctx.node.getInt('value_int');
  if (i !== undefined) {
    ctx.setContents(0, [i]);
    return [tensor(DataType.INT64, [])];
  }
  const ints = ctx.node.getInts('value_ints');
  if (ints) {
    ctx.setContents(0, ints);
    return [tensor(DataType.INT64, [ints.length])];
  }
  if (ctx.node.getFloat('value_float') !== undefined) return [tensor(DataType.FLOAT, [])];
  const floats = ctx.node.attr('value_floats');
  if (floats?.type === 'floats') return [tensor(DataType.FLOAT, [floats.value.length])];
  return null;
};

const constantOfShapeRule: ShapeRule = (ctx) => {
  const t = ctx.node.getTensor('value');
  const dtype = t?.dtype ?? DataType.FLOAT;
  const dims = ctx.contents(0);
  if (!dims) return [tensor(dtype, unknownDims(rankOfShapeInput(ctx, 0)))];
  // A small integer fill (ConstantOfShape([n], 1) builds shapes of ones) is shape arithmetic too.
  if (dims.length <= 1 && typeof dims[0] !== 'string' && t && (t.dtype === DataType.INT64 || t.dtype === DataType.INT32) && t.storage.kind === 'inline') {
    const n = dims.length === 0 ? 1 : dims[0];
    if (typeof n === 'number' && n <= MAX_CONTENT_ELEMENTS) ctx.setContents(0, Array(n).fill(t.toNumbers()[0] ?? 0));
  }
  return [tensor(dtype, dims)];
};

/** Size: the element count, also as contents (the rank of a shape tensor is a Size). */
const sizeRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (x) ctx.setContents(0, [x.reduce<Dim>((a, b) => mulDim(a, b), 1)]);
  return [tensor(DataType.INT64, [])];
};

/**
 * Expand: the input broadcast with the target shape. With the target's values unknown but
 * its length known, the rank is known, and so is every numeric dim of the input other than
 * 1 (the target may only keep it; a symbolic dim may be 1 and grow).
 */
const expandRule: ShapeRule = (ctx) => {
  const target = ctx.contents(1);
  if (target) return [tensor(ctx.dtype(0), broadcast([ctx.shape(0), target]))];
  const x = ctx.shape(0);
  const n = rankOfShapeInput(ctx, 1);
  if (!x || n === undefined) return [tensor(ctx.dtype(0), null)];
  const rank = Math.max(x.length, n);
  const dims: Dim[] = Array.from({ length: rank }, (_, i) => {
    const d = x[i - (rank - x.length)];
    return typeof d === 'number' && d !== 1 ? d : null;
  });
  return [tensor(ctx.dtype(0), dims)];
};

const whereRule: ShapeRule = (ctx) => [tensor(ctx.dtype(1), broadcast([ctx.shape(0), ctx.shape(1), ctx.shape(2)]))];

const gemmRule: ShapeRule = (ctx) => {
  const a = ctx.shape(0);
  const b = ctx.shape(1);
  if (!a || !b) return [tensor(ctx.dtype(0), [null, null])];
  const m = ctx.node.getInt('transA', 0) ? a[1]! : a[0]!;
  const n = ctx.node.getInt('transB', 0) ? b[0]! : b[1]!;
  return [tensor(ctx.dtype(0), [m, n])];
};

const resizeRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const sizes = ctx.hasInput(3) ? ctx.contents(3) : undefined;
  const axes = ctx.node.getInts('axes');
  if (sizes) {
    if (!axes) return [tensor(ctx.dtype(0), sizes)];
    const out = [...x];
    axes.forEach((a, i) => (out[normAxis(a, x.length)] = sizes[i]!));
    return [tensor(ctx.dtype(0), out)];
  }
  const scales = ctx.hasInput(2) ? ctx.constantValues(2) : undefined;
  if (!scales || scales.length === 0) return [tensor(ctx.dtype(0), x.map(() => null))];
  const targetAxes = axes ? axes.map((a) => normAxis(a, x.length)) : x.map((_, i) => i);
  const out = [...x];
  targetAxes.forEach((a, i) => {
    const s = scales[i]!;
    const d = x[a]!;
    if (typeof d === 'number') out[a] = Math.floor(d * s);
    else if (Number.isInteger(s)) out[a] = mulDim(d, s);
    else out[a] = d === null ? null : `floor(${d}*${s})`;
  });
  return [tensor(ctx.dtype(0), out)];
};

const rangeRule: ShapeRule = (ctx) => {
  const [s] = ctx.numbers(0) ?? [];
  const [e] = ctx.numbers(1) ?? [];
  const [d] = ctx.numbers(2) ?? [];
  if (s !== undefined && e !== undefined && d !== undefined && d !== 0) {
    const n = Math.max(0, Math.ceil((e - s) / d));
    if (n <= MAX_CONTENT_ELEMENTS) ctx.setContents(0, Array.from({ length: n }, (_, i) => s + i * d));
    return [tensor(ctx.dtype(0), [n])];
  }
  const se = ctx.contents(1);
  if (s === 0 && d === 1 && se && se.length === 1) return [tensor(ctx.dtype(0), [se[0]!])];
  return [tensor(ctx.dtype(0), [null])];
};

const flattenRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), [null, null])];
  const axis = normAxis(ctx.node.getInt('axis', 1), x.length);
  const prod = (ds: Dim[]) => ds.reduce<Dim>((a, b) => mulDim(a, b), 1);
  return [tensor(ctx.dtype(0), [prod(x.slice(0, axis)), prod(x.slice(axis))])];
};

/**
 * Attention (opset 23/24). Q, K, V are 4D [B, heads, seq, head_size] or 3D [B, seq, heads·head_size]
 * (heads from q_num_heads / kv_num_heads). Outputs: Y [B, q_heads, q_seq, v_head] (3D:
 * [B, q_seq, q_heads·v_head]); present_key [B, kv_heads, total, head_size]; present_value
 * [B, kv_heads, total, v_head] (V's element type); qk_matmul_output [B, q_heads, q_seq, total],
 * with total = past_seq (past_key dim 2, when given) + kv_seq.
 */
const attentionRule: ShapeRule = (ctx) => {
  const q = ctx.shape(0);
  const k = ctx.shape(1);
  const v = ctx.shape(2);
  const past = ctx.hasInput(4) ? ctx.shape(4) : undefined;
  const fourD = q?.length === 4;
  const qHeadsAttr = ctx.node.getInt('q_num_heads');
  const qHeads: Dim = fourD ? q![1]! : (qHeadsAttr ?? null);
  // 3D inputs: kv_num_heads (and q_num_heads) are required attributes; MHA when kv_num_heads is absent
  const kvHeads: Dim = k?.length === 4 ? k[1]! : (ctx.node.getInt('kv_num_heads') ?? qHeadsAttr ?? null);
  const perHead = (s: Dim[] | null | undefined): Dim =>
    !s ? null : s.length === 4 ? s[3]! : s.length === 3 ? divDimExact(s[2]!, kvHeads) : null;
  const headSize = perHead(k);
  const vHead = perHead(v);
  const batch: Dim = q?.[0] ?? null;
  const qSeq: Dim = q ? (fourD ? q[2]! : (q[1] ?? null)) : null;
  const kvSeq: Dim = k ? (k.length === 4 ? k[2]! : (k[1] ?? null)) : null;
  const pastSeq: Dim = past === undefined ? 0 : past && past.length === 4 ? past[2]! : null;
  const total = addDim(pastSeq, kvSeq);
  const y = !q
    ? tensor(ctx.dtype(0), null)
    : fourD
      ? tensor(ctx.dtype(0), [q[0]!, q[1]!, q[2]!, vHead])
      : tensor(ctx.dtype(0), [q[0]!, q[1] ?? null, mulDim(divDimExact(v?.[2] ?? null, kvHeads ?? 1), qHeadsAttr ?? 1)]);
  return [
    y,
    tensor(ctx.dtype(0), [batch, kvHeads, total, headSize]),
    tensor(ctx.dtype(2), [batch, kvHeads, total, vHead]),
    tensor(ctx.dtype(0), [batch, qHeads, qSeq, total]),
  ];
};

const topLevelPool: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  return [tensor(ctx.dtype(0), x ? [x[0]!, x[1]!, ...x.slice(2).map(() => 1)] : null)];
};

const tileRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const reps = ctx.contents(1);
  if (!x || !reps) return [tensor(ctx.dtype(0), x ? x.map(() => null) : null)];
  return [tensor(ctx.dtype(0), x.map((d, i) => mulDim(d, reps[i] ?? null)))];
};

const padRule: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const pads = ctx.node.getInts('pads') ?? (ctx.hasInput(1) ? ctx.numbers(1) : undefined);
  if (!x || !pads || ctx.hasInput(3)) return [tensor(ctx.dtype(0), x ? x.map(() => null) : null)];
  const r = x.length;
  return [tensor(ctx.dtype(0), x.map((d, i) => addDim(d, pads[i]! + pads[i + r]!)))];
};

/** Same type as the input; shape contents pass through `f` (Identity, Neg). */
const passContents =
  (f: (d: Dim) => Dim): ShapeRule =>
  (ctx) => {
    const c = ctx.contents(0);
    if (c) ctx.setContents(0, c.map(f));
    return [ctx.type(0)];
  };

const intArith = (f: (a: number, b: number) => number) => (a: Dim, b: Dim) =>
  typeof a === 'number' && typeof b === 'number' ? f(a, b) : null;

export const RULES: Record<string, ShapeRule> = {
  Identity: passContents((d) => d),
  Neg: passContents((d) => (typeof d === 'number' ? -d : null)),
  Dropout: (ctx) => [ctx.type(0), tensor(DataType.BOOL, ctx.shape(0))],
  Add: elementwise(addDim),
  Sub: elementwise(subDim),
  Mul: elementwise(mulDim),
  Div: elementwise((a, b) => floorDivDim(a, b)),
  Pow: elementwise(),
  Max: elementwise(intArith(Math.max)),
  Min: elementwise(intArith(Math.min)),
  Mod: elementwise(),
  PRelu: elementwise(),
  Equal: comparison,
  Less: comparison,
  LessOrEqual: comparison,
  Greater: comparison,
  GreaterOrEqual: comparison,
  And: comparison,
  Or: comparison,
  Xor: comparison,
  Not: (ctx) => [tensor(DataType.BOOL, ctx.shape(0))],
  Where: whereRule,
  ...Object.fromEntries(
    [
      'Sigmoid', 'Tanh', 'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Gelu', 'FastGelu', 'Erf', 'Sqrt', 'Exp', 'Log', 'Abs',
      'Reciprocal', 'Sin', 'Cos', 'Softplus', 'HardSigmoid', 'HardSwish', 'Floor', 'Ceil', 'Round', 'Sign', 'Clip',
      'Softmax', 'LogSoftmax', 'Mish', 'Celu', 'ThresholdedRelu', 'Trilu', 'CumSum', 'BiasGelu',
    ].map((op) => [op, sameAsInput]),
  ),
  MatMul: (ctx) => [tensor(ctx.dtype(0), matmulShape(ctx.shape(0), ctx.shape(1)))],
  Gemm: gemmRule,
  Reshape: reshapeRule,
  Transpose: transposeRule,
  Conv: convLike(true),
  ConvTranspose: (ctx) => [tensor(ctx.dtype(0), null)],
  AveragePool: convLike(false),
  MaxPool: (ctx) => {
    const y = convLike(false)(ctx)![0]!;
    return [y, y?.kind === 'tensor' ? tensor(DataType.INT64, y.shape) : null]; // Indices: int64, shaped like Y
  },
  GlobalAveragePool: topLevelPool,
  GlobalMaxPool: topLevelPool,
  GlobalLpPool: topLevelPool,
  LayerNormalization: (ctx) => {
    const x = ctx.shape(0);
    const axis = normAxis(ctx.node.getInt('axis', -1), x?.length ?? 1);
    const stat = x ? x.map((d, i) => (i < axis ? d : 1)) : null;
    return [ctx.type(0), tensor(DataType.FLOAT, stat), tensor(DataType.FLOAT, stat)];
  },
  GroupNormalization: sameAsInput,
  InstanceNormalization: sameAsInput,
  // training mode (and opset 9's saved statistics): running mean/var shaped like the input mean/var
  BatchNormalization: (ctx) => [ctx.type(0), ctx.type(3), ctx.type(4), ctx.type(3), ctx.type(4)],
  Resize: resizeRule,
  Concat: concatRule,
  Split: splitRule,
  Slice: sliceRule,
  Gather: gatherRule,
  Shape: shapeRule,
  Size: sizeRule,
  Unsqueeze: unsqueezeRule,
  Squeeze: squeezeRule,
  Cast: castRule,
  CastLike: (ctx) => [tensor(ctx.dtype(1), ctx.shape(0))],
  ReduceMean: reduceRule,
  ReduceSum: reduceRule,
  ReduceMax: reduceRule,
  ReduceMin: reduceRule,
  ReduceProd: reduceRule,
  ReduceL2: reduceRule,
  ReduceSumSquare: reduceRule,
  ReduceL1: reduceRule,
  ReduceLogSum: reduceRule,
  ReduceLogSumExp: reduceRule,
  Expand: expandRule,
  Constant: constantRule,
  ConstantOfShape: constantOfShapeRule,
  Range: rangeRule,
  Flatten: flattenRule,
  Einsum: einsumRule,
  Tile: tileRule,
  Pad: padRule,
  Attention: attentionRule,
  ...TENSOR_RULES,
  ...NN_RULES,
  ...CONTROL_RULES,
  // onnxruntime contrib operators (com.microsoft.*): their only rules are in contrib-rules.ts
  ...CONTRIB_RULES,
};
