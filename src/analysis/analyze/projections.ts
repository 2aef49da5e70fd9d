/**
 * A matched self-attention layer's projection weights, biases, head count and
 * score scale, in the layout of `AttentionParams`, for the receptive-field
 * computation (and for the attention maps of fused attention ops that expose no
 * probabilities). Every projection is read by one function (projection-weights.ts:
 * separate, packed, LoRA); this file finds the tensors to read it from for each
 * matched core — decomposed softmax or einsum attention, ONNX Attention,
 * com.microsoft MultiHeadAttention (separate, packed QKV or packed KV) and
 * com.microsoft Attention (packed weights inside the op) — and the score scale,
 * from what the pattern recorded (`AttentionCore.scale`).
 */
import type { Node } from '../../ir/node.js';
import { ATTENTION_PATTERNS } from '../../passes/attention/find-attention.js';
import { type AttentionCore, type AttentionMatch, type MatchContext, type ScoreScale, traceOutputProjection } from '../../passes/attention/match.js';
import type { AttentionParams } from './attention-erf.js';
import { type Affine, type PackedPart, readMatrix, readProjection, readScalar, readVector, selectColumns } from './projection-weights.js';

export type ParamsResult = { params: AttentionParams } | { reason: string };

/**
 * The score scale a pattern recorded: the fused op's attribute (null: the default
 * 1/√d), or the product of the constant factors on the scores; undefined when a
 * factor is computed at run time.
 */
function scoresScale(s: ScoreScale | undefined): number | null | undefined {
  if (!s) return undefined;
  if (s.attribute !== undefined) return s.attribute;
  let scale = 1;
  for (const f of s.factors) {
    const c = readScalar(f.value);
    if (c === null) return undefined;
    scale = f.op === 'Mul' ? scale * c : scale / c;
  }
  return scale;
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

/** Which projection of a per-head packed tensor each of q, k, v is (the core reads the same tensor twice or thrice). */
function packedParts(core: AttentionCore): [PackedPart | undefined, PackedPart | undefined, PackedPart | undefined] {
  if (core.q && core.q === core.k && core.k === core.v) return [{ index: 0, parts: 3 }, { index: 1, parts: 3 }, { index: 2, parts: 3 }];
  if (core.k && core.k === core.v) return [undefined, { index: 0, parts: 2 }, { index: 1, parts: 2 }];
  return [undefined, undefined, undefined];
}

/** q, k, v of com.microsoft.Attention: the op's own [C, 3·D] weight and [3·D] bias, in q, k, v order. */
function fusedProjections(anchor: Node, inner: number): Affine[] | { reason: string } {
  const w = readMatrix(anchor.inputs[1]);
  const b = anchor.inputs[2] ? readVector(anchor.inputs[2]) : null;
  if (!w || w.cols !== 3 * inner) return { reason: 'packed QKV weight is not [C, 3·D]' };
  if (anchor.inputs[2] && b?.length !== 3 * inner) return { reason: 'packed QKV bias is not a constant [3·D]' };
  if (anchor.getInts('qkv_hidden_sizes')) return { reason: 'qkv_hidden_sizes (unequal packed projections) is not read' };
  return [0, 1, 2].map((k) => ({ ...selectColumns(w, b, Array.from({ length: inner }, (_, j) => k * inner + j)), source: anchor.inputs[0]!, computedScale: false }));
}

export function attentionParams(match: AttentionMatch, ctx: MatchContext, headsHint?: number): ParamsResult {
  const found = coreOf(match, ctx);
  if (!found) return { reason: 'the attention core could not be re-matched' };
  const { core, anchor } = found;
  const tail = traceOutputProjection(core.output, ctx);
  if (!tail) return { reason: 'no output projection' };
  // to_out from the module's output back: bias, LoRA and rescale_output_factor folded into (Wo, bo)
  const out = readProjection(tail.output, ctx);
  if ('reason' in out) return { reason: `to_out: ${out.reason}` };
  const channels = out.w.cols;
  const inner = out.w.rows;
  const heads = match.heads ?? core.heads ?? headsHint ?? null;
  let qkv: Affine[];
  let scale: number | null;
  if (core.fusedInput) {
    const f = fusedProjections(anchor, inner);
    if ('reason' in f) return f;
    qkv = f;
    scale = scoresScale(core.scale) ?? null;
  } else {
    const parts = packedParts(core);
    const read = [core.q, core.k, core.v].map((v, i) => readProjection(v, ctx, parts[i]));
    for (const [i, r] of read.entries()) if ('reason' in r) return { reason: `${'qkv'[i]}: ${r.reason}` };
    qkv = read as Affine[];
    if (qkv.some((a) => a.source !== qkv[0]!.source)) return { reason: 'q, k and v do not read the same tensor' };
    if (qkv.some((a) => a.w.cols !== inner || a.w.rows !== channels)) return { reason: 'q/k/v weights are not [C, D] matrices matching to_out' };
    if (anchor.opType === 'MultiHeadAttention') {
      const b = readVector(anchor.inputs[3]);
      if (b && b.length === 3 * inner) qkv.forEach((a, k) => (a.b = a.b ? a.b.map((x, j) => x + b[k * inner + j]!) : b.slice(k * inner, (k + 1) * inner)));
    }
    // a scale computed from the shapes is taken to be the standard 1/√d (checked against onnxruntime later)
    if (qkv[0]!.computedScale || qkv[1]!.computedScale) scale = null;
    else {
      const ss = scoresScale(core.scale);
      if (ss === undefined) return { reason: 'the score scale could not be read' };
      scale = ss;
    }
  }
  if (qkv[2]!.computedScale) return { reason: 'v is multiplied by a scalar computed at run time' };
  if (!heads) return { reason: 'the head count is not known' };
  if (inner % heads !== 0) return { reason: `inner dim ${inner} is not divisible by ${heads} heads` };
  scale ??= 1 / Math.sqrt(inner / heads);
  const [q, k, v] = qkv as [Affine, Affine, Affine];
  return {
    params: { channels, inner, heads, scale, wq: q.w.data, wk: k.w.data, wv: v.w.data, bq: q.b, bk: k.b, bv: v.b, wo: out.w.data, bo: out.b, rescale: 1 },
  };
}
