/**
 * Reads a matched self-attention layer's projection weights, biases, head count
 * and score scale out of the model, in the layout of `AttentionParams`, for the
 * receptive-field computation (and for the attention maps of fused attention ops
 * that expose no probabilities). Works on what the attention matcher found:
 * decomposed softmax attention, ONNX Attention, com.microsoft MultiHeadAttention
 * with separate projections, and com.microsoft Attention with packed weights.
 */
import type { Node } from '../../ir/node.js';
import type { Tensor } from '../../ir/tensor.js';
import type { Value } from '../../ir/value.js';
import { ATTENTION_PATTERNS } from '../../passes/attention/find-attention.js';
import {
  type AttentionCore,
  type AttentionMatch,
  dataUsers,
  type MatchContext,
  traceOutputProjection,
  traceProjection,
  weightOf,
} from '../../passes/attention/match.js';
import type { AttentionParams } from './attention-erf.js';

export type ParamsResult = { params: AttentionParams } | { reason: string };

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

interface Matrix {
  data: Float64Array;
  rows: number;
  cols: number;
}

/** A 2-D weight through Cast / Identity / Transpose. */
function readMatrix(v: Value | null | undefined, depth = 0): Matrix | null {
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
    return m ? transpose(m) : null;
  }
  return null;
}

function transpose(m: Matrix): Matrix {
  const out = new Float64Array(m.data.length);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) out[j * m.rows + i] = m.data[i * m.cols + j]!;
  return { data: out, rows: m.cols, cols: m.rows };
}

function readVector(v: Value | null | undefined): Float64Array | null {
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

function readScalar(v: Value | null | undefined): number | null {
  const vec = readVector(v);
  return vec && vec.length === 1 ? vec[0]! : null;
}

/** A Linear (MatMul with a [C, D] weight, or Gemm) as x·W + b. */
function linearOf(node: Node): { w: Matrix; b: Float64Array | null; out: Value } | null {
  let w = readMatrix(node.inputs[1]);
  if (!w) return null;
  let b: Float64Array | null = null;
  let out = node.outputs[0]!;
  if (node.opType === 'Gemm') {
    if (node.getInt('transA', 0)) return null;
    if (node.getInt('transB', 0)) w = transpose(w);
    b = readVector(node.inputs[2]);
    if (b && b.length !== w.cols) b = b.length === 1 ? new Float64Array(w.cols).fill(b[0]!) : null;
  } else {
    const users = dataUsers(out);
    const add = users.length === 1 && users[0]!.opType === 'Add' ? users[0]! : null;
    const other = add ? (add.inputs[0] === out ? add.inputs[1] : add.inputs[0]) : null;
    const bias = other && weightOf(other) ? readVector(other) : null;
    if (add && bias && bias.length === w.cols) {
      b = bias;
      out = add.outputs[0]!;
    }
  }
  return { w, b, out };
}

/**
 * Product of scalar Mul/Div factors on the way from `v` back to `stop` (through
 * layout ops); null when a factor is computed at run time (TorchScript's SDPA
 * export multiplies q and kᵀ by √(1/√d) computed from the shapes).
 */
function pathScale(v: Value | null, stop: Value, ctx: MatchContext): number | null {
  let s = 1;
  let cur = v;
  for (let i = 0; cur && cur !== stop && i < 24; i++) {
    const p: Node | null = cur.producer;
    if (!p) break;
    if (p.opType === 'Mul' || p.opType === 'Div') {
      const c1 = readScalar(p.inputs[1]);
      const c0 = p.opType === 'Mul' ? readScalar(p.inputs[0]) : null;
      if (c1 !== null) {
        s = p.opType === 'Mul' ? s * c1 : s / c1;
        cur = p.inputs[0] ?? null;
      } else if (c0 !== null) {
        s *= c0;
        cur = p.inputs[1] ?? null;
      } else if (ctx.isScalar(p.inputs[1])) return null;
      else break;
      continue;
    }
    cur = p.inputs[0] ?? null;
  }
  return s;
}

/** Scale applied between the QKᵀ MatMul and the Softmax (scalar Mul/Div; masks skipped). */
function scoresScale(v: Value | null, qk: Node, depth = 0): number | null {
  const p = v?.producer;
  if (!p || depth > 8) return null;
  if (p === qk) return 1;
  if (p.opType === 'Cast' || p.opType === 'Identity') return scoresScale(p.inputs[0] ?? null, qk, depth + 1);
  if (p.opType === 'Mul' || p.opType === 'Div') {
    const c1 = readScalar(p.inputs[1]);
    if (c1 !== null) {
      const inner = scoresScale(p.inputs[0] ?? null, qk, depth + 1);
      return inner === null ? null : p.opType === 'Mul' ? inner * c1 : inner / c1;
    }
    const c0 = readScalar(p.inputs[0]);
    if (p.opType === 'Mul' && c0 !== null) {
      const inner = scoresScale(p.inputs[1] ?? null, qk, depth + 1);
      return inner === null ? null : inner * c0;
    }
    return null;
  }
  if (p.opType === 'Add') return scoresScale(p.inputs[0] ?? null, qk, depth + 1) ?? scoresScale(p.inputs[1] ?? null, qk, depth + 1);
  return null;
}

/** The pattern's core for a match (re-run on its anchor). */
function coreOf(match: AttentionMatch, ctx: MatchContext): { core: AttentionCore; anchor: Node } | null {
  const pattern = ATTENTION_PATTERNS.find((p) => p.name === match.pattern);
  if (!pattern) return null;
  for (const n of match.nodes) {
    if (!pattern.anchor(n)) continue;
    const core = pattern.match(n, ctx);
    if (core) return { core, anchor: n };
  }
  return null;
}

export function attentionParams(match: AttentionMatch, ctx: MatchContext, headsHint?: number): ParamsResult {
  const found = coreOf(match, ctx);
  if (!found) return { reason: 'the attention core could not be re-matched' };
  const { core, anchor } = found;
  const tail = traceOutputProjection(core.output, ctx);
  if (!tail) return { reason: 'no output projection' };
  const out = linearOf(tail.node);
  if (!out) return { reason: 'to_out weight is not a constant 2-D matrix' };
  let bo = out.b;
  let rescale = 1;
  for (const n of tail.nodes) {
    if (n === tail.node || (out.b && n === out.out.producer)) continue;
    if (n.opType === 'Add' && !bo) bo = readVector(n.inputs[1]) ?? readVector(n.inputs[0]);
    else if (n.opType === 'Mul') rescale *= readScalar(n.inputs[1]) ?? readScalar(n.inputs[0]) ?? 1;
    else if (n.opType === 'Div') rescale /= readScalar(n.inputs[1]) ?? 1;
  }
  const channels = out.w.cols;
  const inner = out.w.rows;
  let wq: Matrix, wk: Matrix, wv: Matrix;
  let bq: Float64Array | null, bk: Float64Array | null, bv: Float64Array | null;
  let scale: number | null;
  const explicitScale = (n: Node) => {
    const s = n.getFloat('scale');
    return s !== undefined && s !== 0 ? s : null;
  };
  const heads = match.heads ?? core.heads ?? headsHint ?? null;
  if (core.fusedInput) {
    // com.microsoft Attention: packed [C, 3D] weight, [3D] bias
    const w = readMatrix(anchor.inputs[1]);
    const b = readVector(anchor.inputs[2]);
    if (!w || w.cols !== 3 * inner) return { reason: 'packed QKV weight is not [C, 3·D]' };
    const cols = (k: number): Matrix => {
      const data = new Float64Array(w.rows * inner);
      for (let i = 0; i < w.rows; i++) for (let j = 0; j < inner; j++) data[i * inner + j] = w.data[i * w.cols + k * inner + j]!;
      return { data, rows: w.rows, cols: inner };
    };
    [wq, wk, wv] = [cols(0), cols(1), cols(2)];
    [bq, bk, bv] = [0, 1, 2].map((k) => (b ? b.slice(k * inner, (k + 1) * inner) : null)) as [Float64Array | null, Float64Array | null, Float64Array | null];
    scale = explicitScale(anchor);
  } else {
    const pr = [core.q, core.k, core.v].map((v) => traceProjection(v, ctx));
    if (pr.some((p) => !p) || new Set(pr.map((p) => p!.node)).size !== 3) return { reason: 'q, k, v are not three separate projections (packed QKV)' };
    const lin = pr.map((p) => linearOf(p!.node));
    if (lin.some((l) => !l || l.w.cols !== inner || l.w.rows !== channels)) return { reason: 'q/k/v weights are not constant [C, D] matrices' };
    [wq, wk, wv] = lin.map((l) => l!.w) as [Matrix, Matrix, Matrix];
    [bq, bk, bv] = lin.map((l) => l!.b) as [Float64Array | null, Float64Array | null, Float64Array | null];
    if (anchor.opType === 'MultiHeadAttention') {
      const b = readVector(anchor.inputs[3]);
      if (b && b.length === 3 * inner) [bq, bk, bv] = [0, 1, 2].map((k) => b.slice(k * inner, (k + 1) * inner)) as [Float64Array, Float64Array, Float64Array];
    }
    const qs = pathScale(core.q, lin[0]!.out, ctx);
    const ks = pathScale(core.k, lin[1]!.out, ctx);
    // a scale computed from the shapes is taken to be the standard 1/√d (checked against onnxruntime later)
    if (qs === null || ks === null) scale = null;
    else if (anchor.opType === 'Softmax') {
      const qk = core.q?.users().find((n) => n.opType === 'MatMul' && n.inputs[1] === core.k);
      const ss = qk ? scoresScale(anchor.inputs[0] ?? null, qk) : null;
      if (ss === null) return { reason: 'the score scale could not be read' };
      scale = qs * ks * ss;
    } else {
      const s = explicitScale(anchor);
      scale = s === null ? null : s * qs * ks;
    }
  }
  if (!heads) return { reason: 'the head count is not known' };
  if (inner % heads !== 0) return { reason: `inner dim ${inner} is not divisible by ${heads} heads` };
  scale ??= 1 / Math.sqrt(inner / heads);
  return {
    params: {
      channels,
      inner,
      heads,
      scale,
      wq: wq.data,
      wk: wk.data,
      wv: wv.data,
      bq,
      bk,
      bv,
      wo: out.w.data,
      bo,
      rescale,
    },
  };
}
