/**
 * Attention written with `Einsum`, as the original LDM / CompVis code does
 * (`ldm/modules/attention.py`, CrossAttention) and the TorchScript exporter keeps it:
 *
 *   q, k, v = rearrange(·, 'b n (h d) -> (b h) n d')     (Reshape / Transpose / Reshape)
 *   scores  = Einsum("bid,bjd->bij", q, k) · scale       (or kᵀ given: "bid,bdj->bij")
 *   scores  = scores + mask                              (optional)
 *   probs   = Softmax(scores, axis=-1)                   (Cast islands in fp16 exports)
 *   out     = Einsum("bij,bjd->bid", probs, v)
 *
 * Any batch letters (`bhid,bhjd->bhij`) or an ellipsis (`...id,...jd->...ij`) may
 * stand before i, j, d, as long as all three terms share them.
 */
import type { Node } from '../../ir/node.js';
import { parseEinsum } from '../../ir/shape-inference/einsum.js';
import type { Value } from '../../ir/value.js';
import type { AttentionPattern } from './match.js';
import type { FloatOp } from '../quantization/reading.js';
import { isSoftmax, softmaxCore } from './softmax-attention.js';

/** The terms of an Einsum node split into shared batch labels and the last (two) letters; null when the prefixes differ. */
function terms(node: Node): { a: string[]; b: string[]; out: string[] } | null {
  if (node.opType !== 'Einsum' || node.domain !== '' || node.inputs.length !== 2) return null;
  const eq = parseEinsum(node.getString('equation', ''));
  if (!eq || !eq.output || eq.inputs.length !== 2) return null;
  const [a, b] = eq.inputs as [string[], string[]];
  const out = eq.output;
  if (a.length < 2 || a.length !== b.length || a.length !== out.length) return null;
  const prefix = a.slice(0, -2).join(' ');
  if (b.slice(0, -2).join(' ') !== prefix || out.slice(0, -2).join(' ') !== prefix) return null;
  const tails = [...a.slice(-2), ...b.slice(-2), ...out.slice(-2)];
  if (tails.some((c) => a.slice(0, -2).includes(c))) return null;
  return { a: a.slice(-2), b: b.slice(-2), out: out.slice(-2) };
}

const same = (x: string[], y: string[]) => x.join('') === y.join('');

/** `…id,…jd->…ij` (or `…id,…dj->…ij`): scores from q and k. */
function isScoresEinsum(op: FloatOp): boolean {
  const t = op.opType === 'Einsum' ? terms(op.node) : null;
  if (!t) return false;
  const [i, d] = t.a as [string, string];
  const j = t.out[1]!;
  return i !== d && j !== i && j !== d && t.out[0] === i && (same(t.b, [j, d]) || same(t.b, [d, j]));
}

/** `…ij,…jd->…id` with the probabilities first: probabilities times v. */
function isProbsEinsum(op: FloatOp, probs: Value): boolean {
  const t = op.opType === 'Einsum' ? terms(op.node) : null;
  if (!t || op.inputs[0] !== probs) return false;
  const [i, j] = t.a as [string, string];
  const d = t.b[1]!;
  return i !== j && d !== i && d !== j && t.b[0] === j && same(t.out, [i, d]);
}

export const einsumAttention: AttentionPattern = {
  name: 'einsum',
  description: 'Einsum attention: Einsum(q, k) → [scale, mask] → Softmax → Einsum(·, v) (LDM / CompVis code)',
  anchor: isSoftmax,
  match: softmaxCore(isScoresEinsum, isProbsEinsum),
};
