/**
 * Reads one projection of an attention layer out of the model as an affine map
 * x·W + b (W [C, D] in x·W layout), whatever form the export gave it:
 *
 *   base   = x·W (+ b)                     MatMul with a constant weight, or Gemm (transB, alpha, beta, C)
 *   lora   = base + ((x·A)·B)·s            unfused LoRA adapter (lora-projection.ts): W += s·A·B
 *   bias   = t + b                         a constant added on the way (either operand)
 *   scale  = t · c,  t / c                 a constant scalar (folded into W and b); a scalar computed
 *                                          at run time is reported (`computedScale`), not folded
 *   select = Split / Slice / Gather         columns of a packed projection (one MatMul [C, 3·D]) on the last axis
 *   part   = Reshape [.., h, P, d]         part j of P interleaved per head (packed QKV/KV of
 *                                          com.microsoft.MultiHeadAttention): column (n·P + j)·d + i
 *   layout = Reshape / Transpose / Cast / Identity / Squeeze / Unsqueeze   (heads split, kᵀ)
 *
 * The walk goes back from the tensor entering the attention core to the
 * projection, then replays the steps forward on (W, b).
 */
import type { Node } from '../../ir/node.js';
import type { Tensor } from '../../ir/tensor.js';
import type { Value } from '../../ir/value.js';
import { loraSum } from '../../passes/attention/lora-projection.js';
import { type MatchContext, weightOf } from '../../passes/attention/match.js';
import { matmul } from './linalg.js';

export interface Matrix {
  data: Float64Array;
  rows: number;
  cols: number;
}

/** x·W + b read from the model. */
export interface Affine {
  w: Matrix;
  b: Float64Array | null;
  /** x: what the projection reads. */
  source: Value;
  /** A scalar computed at run time multiplies the result (TorchScript's √(1/√d) from the shapes). */
  computedScale: boolean;
}

export type AffineResult = Affine | { reason: string };

/** Which part of a tensor packing P projections per head the core takes (q = 0, k = 1, v = 2; packed KV: k = 0, v = 1). */
export interface PackedPart {
  index: number;
  parts: number;
}

/** A constant tensor behind `v` (initializer or Constant), if any. */
function constantTensor(v: Value | null | undefined): Tensor | null {
  if (!v) return null;
  if (v.initializer) return v.initializer;
  const p = v.producer;
  if (p?.opType === 'Constant') {
    const a = p.attributes.get('value');
    return a?.type === 'tensor' ? a.value : null;
  }
  return null;
}

export function transposeMatrix(m: Matrix): Matrix {
  const out = new Float64Array(m.data.length);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) out[j * m.rows + i] = m.data[i * m.cols + j]!;
  return { data: out, rows: m.cols, cols: m.rows };
}

/** A 2-D weight through Cast / Identity / Transpose. */
export function readMatrix(v: Value | null | undefined, depth = 0): Matrix | null {
  if (!v || depth > 4) return null;
  const t = constantTensor(v);
  if (t) {
    if (t.dims.length !== 2) return null;
    return { data: Float64Array.from(t.toFloat32()), rows: t.dims[0]!, cols: t.dims[1]! };
  }
  const p = v.producer;
  if (!p) return null;
  if (p.opType === 'Cast' || p.opType === 'Identity') return readMatrix(p.inputs[0], depth + 1);
  if (p.opType === 'Transpose') {
    const perm = p.getInts('perm');
    if (perm && perm.join(',') !== '1,0') return null;
    const m = readMatrix(p.inputs[0], depth + 1);
    return m ? transposeMatrix(m) : null;
  }
  return null;
}

/** A constant tensor's values (flattened) through Cast / Identity. */
export function readVector(v: Value | null | undefined): Float64Array | null {
  let cur = v;
  for (let i = 0; cur && i < 4; i++) {
    const t = constantTensor(cur);
    if (t) return Float64Array.from(t.toFloat32());
    const p: Node | null = cur.producer;
    if (!p || (p.opType !== 'Cast' && p.opType !== 'Identity')) return null;
    cur = p.inputs[0];
  }
  return null;
}

export function readScalar(v: Value | null | undefined): number | null {
  const vec = readVector(v);
  return vec && vec.length === 1 ? vec[0]! : null;
}

/** Integer constant (Split sizes, Slice bounds, Gather indices). */
function readInts(v: Value | null | undefined): number[] | null {
  const t = constantTensor(v);
  return t ? Array.from(t.toFloat32(), Math.round) : null;
}

/** The linear map of a MatMul / Gemm node with a constant weight (Gemm's C, alpha, beta included). */
export function linearNode(node: Node): { w: Matrix; b: Float64Array | null } | null {
  if (node.domain !== '' || (node.opType !== 'MatMul' && node.opType !== 'Gemm')) return null;
  let w = readMatrix(node.inputs[1]);
  if (!w) return null;
  if (node.opType === 'MatMul') return { w, b: null };
  if (node.getInt('transA', 0)) return null;
  if (node.getInt('transB', 0)) w = transposeMatrix(w);
  const alpha = node.getFloat('alpha', 1);
  const beta = node.getFloat('beta', 1);
  if (alpha !== 1) w.data.forEach((x, i) => (w!.data[i] = x * alpha));
  if (!node.inputs[2]) return { w, b: null };
  const c = readVector(node.inputs[2]);
  if (!c || (c.length !== w.cols && c.length !== 1)) return null;
  const b = c.length === 1 ? new Float64Array(w.cols).fill(c[0]!) : c;
  return { w, b: b.map((x) => x * beta) };
}

/** Columns `cols` of W and b. */
export function selectColumns(w: Matrix, b: Float64Array | null, cols: ArrayLike<number>): { w: Matrix; b: Float64Array | null } {
  const n = cols.length;
  const data = new Float64Array(w.rows * n);
  for (let i = 0; i < w.rows; i++) for (let j = 0; j < n; j++) data[i * n + j] = w.data[i * w.cols + cols[j]!]!;
  return { w: { data, rows: w.rows, cols: n }, b: b ? Float64Array.from(cols, (c) => b[c]!) : null };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** Forward steps replayed on (W, b); a string says why the step cannot be read. */
type Step = (a: { w: Matrix; b: Float64Array | null }) => { w: Matrix; b: Float64Array | null } | string;

const LAYOUT = new Set(['Reshape', 'Transpose', 'Cast', 'Identity', 'Squeeze', 'Unsqueeze', 'Contiguous', 'Dropout']);

function scaleStep(s: number): Step {
  return ({ w, b }) => ({ w: { ...w, data: w.data.map((x) => x * s) }, b: b ? b.map((x) => x * s) : null });
}

/** The last-axis length of `v` when known. */
function lastDim(v: Value | null | undefined, ctx: MatchContext): number | null {
  const s = ctx.shape(v);
  const d = s?.[s.length - 1];
  return typeof d === 'number' ? d : null;
}

/** Last-axis normalisation: the axis must be the input's last. */
function isLastAxis(axis: number, input: Value | null | undefined, ctx: MatchContext): boolean {
  const rank = ctx.shape(input)?.length;
  return axis === -1 || (rank !== undefined && axis === rank - 1);
}

/** Columns selected by a Split / Slice / Gather on the last axis (relative to its input). */
function selection(p: Node, out: Value, ctx: MatchContext): number[] | string {
  const width = lastDim(p.inputs[0], ctx);
  if (width === null) return `the width of ${p.opType} "${p.name}"'s input is not known`;
  if (p.opType === 'Split') {
    if (!isLastAxis(p.getInt('axis', 0), p.inputs[0], ctx)) return `Split "${p.name}" is not on the last axis`;
    const k = p.outputs.indexOf(out);
    const sizes = readInts(p.inputs[1]) ?? p.getInts('split') ?? null;
    const n = p.outputs.length;
    const sz = sizes ?? Array.from({ length: n }, (_, i) => (i < n - 1 ? Math.ceil(width / n) : width - (n - 1) * Math.ceil(width / n)));
    const from = sz.slice(0, k).reduce((a, b) => a + b, 0);
    return range(from, sz[k]!);
  }
  if (p.opType === 'Slice') {
    const [starts, ends] = [readInts(p.inputs[1]), readInts(p.inputs[2])];
    const axes = p.inputs[3] ? readInts(p.inputs[3]) : [-1];
    const steps = p.inputs[4] ? readInts(p.inputs[4]) : [1];
    if (!starts || !ends || !axes || !steps || starts.length !== 1 || steps[0] !== 1) return `Slice "${p.name}" is not a constant slice of the last axis`;
    if (!isLastAxis(axes[0]!, p.inputs[0], ctx)) return `Slice "${p.name}" is not on the last axis`;
    const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + width : x, 0), width);
    const [s, e] = [clamp(starts[0]!), clamp(ends[0]!)];
    return range(s, Math.max(0, e - s));
  }
  // Gather
  const idx = readInts(p.inputs[1]);
  if (!idx || !isLastAxis(p.getInt('axis', 0), p.inputs[0], ctx) || ctx.shape(out)?.length !== ctx.shape(p.inputs[0])?.length) {
    return `Gather "${p.name}" is not a selection of columns`;
  }
  return idx.map((i) => (i < 0 ? i + width : i));
}

/** The columns of part `part` in a tensor reshaped to [.., h, P, d] (packed per head). */
function packedColumns(reshaped: Value, part: PackedPart, ctx: MatchContext): number[] | null {
  const s = ctx.shape(reshaped);
  if (!s || s.length < 3) return null;
  const [h, P, d] = s.slice(-3);
  if (typeof h !== 'number' || typeof d !== 'number' || P !== part.parts) return null;
  const cols: number[] = [];
  for (let n = 0; n < h; n++) for (let i = 0; i < d; i++) cols.push((n * part.parts + part.index) * d + i);
  return cols;
}

/** The LoRA adapter's term as a [C, width] matrix s·A·B (the nodes lora-projection.ts found). */
function loraStep(add: Node, ctx: MatchContext): { step: Step; input: Value } | string {
  const lora = loraSum(add, ctx)!;
  const mms = lora.nodes.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm');
  const [up, down] = mms.map(linearNode);
  if (mms.length !== 2 || !up || !down || up.b || down.b) return 'a LoRA adapter\'s A/B weights are not constant matrices';
  let s = 1;
  for (const n of lora.nodes) {
    if (n.opType === 'Mul') s *= readScalar(n.inputs[1]) ?? readScalar(n.inputs[0]) ?? NaN;
    else if (n.opType === 'Div') s /= readScalar(n.inputs[1]) ?? NaN;
  }
  if (!Number.isFinite(s)) return 'a LoRA adapter\'s scale is not a constant';
  const A = down.w;
  const B = up.w;
  if (A.cols !== B.rows) return 'a LoRA adapter\'s A and B do not chain';
  const term = matmul(A.data, B.data, A.rows, A.cols, B.cols);
  const step: Step = ({ w, b }) => {
    if (w.rows !== A.rows || w.cols !== B.cols) return `a LoRA adapter is [${A.rows}, ${B.cols}], its projection [${w.rows}, ${w.cols}]`;
    return { w: { ...w, data: w.data.map((x, i) => x + s * term[i]!) }, b };
  };
  return { step, input: lora.input };
}

/**
 * The affine map from the projection's input to `v` (a tensor entering the attention
 * core). `part` picks one projection out of a per-head packed tensor.
 */
export function readProjection(v: Value | null, ctx: MatchContext, part?: PackedPart): AffineResult {
  const steps: Step[] = [];
  const adapterInputs: Value[] = [];
  let pending = part ?? null;
  let computedScale = false;
  let cur = v;
  for (let depth = 0; cur && depth < 32; depth++) {
    const p: Node | null = cur.producer;
    if (!p) break;
    const base = p.domain === '' && (p.opType === 'MatMul' || p.opType === 'Gemm') ? linearNode(p) : null;
    if (base) {
      if (pending) return { reason: `the packed ${pending.parts}-way projection has no [.., heads, ${pending.parts}, d] reshape` };
      const source = p.inputs[0]!;
      if (adapterInputs.some((x) => x !== source)) return { reason: 'a LoRA adapter reads another tensor than its projection' };
      let a: { w: Matrix; b: Float64Array | null } = base;
      for (const step of steps.reverse()) {
        const r = step(a);
        if (typeof r === 'string') return { reason: r };
        a = r;
      }
      return { ...a, source, computedScale };
    }
    if (p.opType === 'MatMul' || p.opType === 'Gemm') return { reason: `projection "${p.name}" has no constant 2-D weight` };
    const at = cur;
    if (p.opType === 'Reshape' && pending) {
      const cols = packedColumns(at, pending, ctx);
      if (cols) {
        steps.push((a) => (a.w.cols === lastDim(p.inputs[0], ctx) ? selectColumns(a.w, a.b, cols) : 'a packed reshape does not split the projection\'s columns'));
        pending = null;
      }
      cur = p.inputs[0] ?? null;
    } else if (LAYOUT.has(p.opType)) cur = p.inputs[0] ?? null;
    else if (p.opType === 'Split' || p.opType === 'Slice' || p.opType === 'Gather') {
      const cols = selection(p, at, ctx);
      if (typeof cols === 'string') return { reason: cols };
      const width = lastDim(p.inputs[0], ctx);
      steps.push((a) => (a.w.cols === width ? selectColumns(a.w, a.b, cols) : `${p.opType} "${p.name}" does not select the projection's columns`));
      cur = p.inputs[0] ?? null;
    } else if (p.opType === 'Mul' || p.opType === 'Div') {
      const [x, y] = p.inputs;
      const c1 = readScalar(y);
      const c0 = p.opType === 'Mul' ? readScalar(x) : null;
      if (c1 !== null) steps.push(scaleStep(p.opType === 'Mul' ? c1 : 1 / c1));
      else if (c0 !== null) steps.push(scaleStep(c0));
      else if (ctx.isScalar(y)) computedScale = true;
      else if (p.opType === 'Mul' && ctx.isScalar(x)) {
        computedScale = true;
        cur = y ?? null;
        continue;
      } else return { reason: `"${p.name}" multiplies by a tensor, not a scalar` };
      cur = c1 === null && c0 !== null ? (y ?? null) : (x ?? null);
    } else if (p.opType === 'Add') {
      const [x, y] = p.inputs;
      const bias = weightOf(y ?? null) ? y : weightOf(x ?? null) ? x : null;
      if (bias) {
        const vec = readVector(bias);
        if (!vec) return { reason: `the bias of "${p.name}" is not a constant` };
        steps.push(({ w, b }) => {
          if (vec.length !== w.cols && vec.length !== 1) return `the bias of "${p.name}" has ${vec.length} values for ${w.cols} columns`;
          const nb = b ? b.slice() : new Float64Array(w.cols);
          for (let i = 0; i < w.cols; i++) nb[i]! += vec.length === 1 ? vec[0]! : vec[i]!;
          return { w, b: nb };
        });
        cur = bias === y ? (x ?? null) : (y ?? null);
      } else if (loraSum(p, ctx)) {
        const l = loraStep(p, ctx);
        if (typeof l === 'string') return { reason: l };
        steps.push(l.step);
        adapterInputs.push(l.input);
        cur = loraSum(p, ctx)!.base;
      } else return { reason: `"${p.name}" adds a computed tensor` };
    } else return { reason: `${p.opType} "${p.name}" lies between the projection and the attention core` };
  }
  return { reason: 'no projection (MatMul/Gemm with a constant weight) found' };
}
