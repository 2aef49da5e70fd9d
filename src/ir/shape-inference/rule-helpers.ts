/** Building blocks the shape rules share: tensor types, axes, broadcasting, convolution windows. */
import type { DataType } from '../dtype.js';
import type { Dim, ValueType } from '../types.js';
import type { RuleContext, ShapeRule } from './infer.js';
import { sameDim } from './symbolic.js';

export const tensor = (dtype: DataType, shape: Dim[] | null): ValueType => ({ kind: 'tensor', dtype, shape });

export const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** A shape of `rank` unknown dims (null when the rank is unknown too). */
export const unknownDims = (rank: number | undefined): Dim[] | null => (rank === undefined ? null : Array(rank).fill(null));

/** Longest contents (shape-math values) inference keeps or a rule builds. */
export const MAX_CONTENT_ELEMENTS = 64;

/** Ranks above this are not materialized from a (declared) shape-tensor length. */
const MAX_RANK = 64;

/** The rank a 1-D shape-valued input describes (its length), when that is known and at most MAX_RANK. */
export function rankOfShapeInput(ctx: RuleContext, i: number): number | undefined {
  const n = ctx.shape(i)?.[0];
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= MAX_RANK ? n : undefined;
}

/** Numpy-style broadcast of several shapes. */
export function broadcast(shapes: (Dim[] | null)[]): Dim[] | null {
  if (shapes.some((s) => s === null)) return null;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = i - (rank - s!.length);
      if (k < 0) continue;
      const x = s![k]!;
      if (x === 1) continue;
      if (d === 1) d = x;
      else if (x === null) d = typeof d === 'number' ? d : null;
      else if (d === null) d = x;
      else if (!sameDim(d, x) && typeof d === 'string' && typeof x === 'number') d = x;
    }
    out.push(d);
  }
  return out;
}

/** Shape of MatMul's output (NumPy matmul: 1-D operands get a dim added, then removed). */
export function matmulShape(a: Dim[] | null, b: Dim[] | null): Dim[] | null {
  if (!a || !b) return null;
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const batch = broadcast([a2.slice(0, -2), b2.slice(0, -2)]);
  if (!batch) return null;
  const out = [...batch, a2[a2.length - 2]!, b2[b2.length - 1]!];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

/** The single number in input i (a scalar or 1-element tensor), when known. */
export function scalarInput(ctx: RuleContext, i: number): number | undefined {
  if (!ctx.hasInput(i)) return undefined;
  const v = ctx.numbers(i) ?? ctx.constantValues(i);
  return v && v.length === 1 && Number.isFinite(v[0]) ? Math.trunc(v[0]!) : undefined;
}

export const sameAsInput: ShapeRule = (ctx) => [ctx.type(0)];

/**
 * One spatial dim of a convolution or pooling window. With `ceil` (pooling's ceil_mode)
 * a last window that would start in the right padding is dropped: it must start
 * inside the input or the left padding (onnx and PyTorch agree on this).
 */
export function poolDim(d: Dim, k: number, s: number, p0: number, p1: number, dil: number, ceil: boolean): Dim {
  if (typeof d === 'number') {
    const v = (d + p0 + p1 - dil * (k - 1) - 1) / s + 1;
    if (!ceil) return Math.floor(v);
    const out = Math.ceil(v);
    return (out - 1) * s >= d + p0 ? out - 1 : out;
  }
  if (d === null) return null;
  if (k === 1 && s === 1 && p0 === 0 && p1 === 0) return d;
  if (s === 1 && p0 + p1 === dil * (k - 1)) return d;
  if (ceil) return null; // whether the last window is dropped depends on the value of d
  const off = p0 + p1 - dil * (k - 1) - 1;
  return `floor((${d}${off >= 0 ? '+' : ''}${off})/${s})+1`;
}

/**
 * Output shape of a convolution (weight at input `w`: channels from it, kernel from it
 * when there is no kernel_shape) or of a pooling window (`w` null: channels kept).
 * `channelsLast`: X is [N, spatial…, C], W [M, k…, C/group] and Y [N, spatial…, M]
 * (onnxruntime's NhwcConv); the arithmetic is the same. With an unknown kernel the
 * spatial dims are unknown.
 */
export function convShape(ctx: RuleContext, x: number, w: number | null, channelsLast = false): Dim[] | null {
  // channels-last shapes are read as channels-first ([N, C, spatial…]) and the result turned back
  const channelsFirst = (s: Dim[] | null) => (s && channelsLast && s.length >= 2 ? [s[0]!, s[s.length - 1]!, ...s.slice(1, -1)] : s);
  const xs = channelsFirst(ctx.shape(x));
  if (!xs) return null;
  const spatial = xs.length - 2;
  const ws = w === null ? null : channelsFirst(ctx.shape(w));
  const kernel = ctx.node.getInts('kernel_shape') ?? (ws ? ws.slice(2) : undefined);
  const strides = ctx.node.getInts('strides') ?? Array(spatial).fill(1);
  const dil = ctx.node.getInts('dilations') ?? Array(spatial).fill(1);
  const autoPad = ctx.node.getString('auto_pad', 'NOTSET');
  const pads = autoPad === 'VALID' ? Array(spatial * 2).fill(0) : (ctx.node.getInts('pads') ?? Array(spatial * 2).fill(0));
  const ceil = ctx.node.getInt('ceil_mode', 0) === 1;
  const out: Dim[] = [xs[0]!, w !== null ? (ws?.[0] ?? null) : xs[1]!];
  for (let i = 0; i < spatial; i++) {
    const d = xs[i + 2]!;
    const k = kernel?.[i];
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      out.push(typeof d === 'number' ? Math.ceil(d / strides[i]!) : strides[i] === 1 ? d : `ceil(${d}/${strides[i]})`);
    } else out.push(typeof k === 'number' ? poolDim(d, k, strides[i]!, pads[i]!, pads[i + spatial]!, dil[i]!, ceil) : null);
  }
  return channelsLast ? [out[0]!, ...out.slice(2), out[1]!] : out;
}
