/**
 * Decomposed scaled-dot-product attention, as the TorchScript exporter and the
 * dynamo exporter (opset ≤ 22) write it:
 *
 *   scores = MatMul(q·√s, kᵀ·√s)        (or one Mul/Div by the scale on the scores)
 *   scores = scores + mask               (optional)
 *   probs  = Softmax(scores, axis=-1)    (Cast islands around it in fp16 exports)
 *   out    = MatMul(probs, v)
 *
 * Quantized exports write the same core with QuantizeLinear/DequantizeLinear
 * around each op, or as QLinearMatMul → com.microsoft.QLinearSoftmax →
 * QLinearMatMul, or with DynamicQuantizeLinear + MatMulInteger products: the
 * walks read them as the float ops (quantization/reading.ts), and the anchor is either Softmax.
 */
import type { Node } from '../../ir/node.js';
import type { Value } from '../../ir/value.js';
import type { AttentionCore, AttentionPattern, MatchContext, ScoreScale } from './match.js';
import { type FloatOp, floatOf, producerOp, readerOps } from '../quantization/reading.js';

/** q·kᵀ as a MatMul of two computed tensors. */
const isScoresMatMul = (p: FloatOp) => p.opType === 'MatMul' && p.inputs.every((i) => i && !i.initializer && i.producer?.opType !== 'Constant');

/** probs·v as a MatMul with the probabilities first. */
const isProbsMatMul = (n: FloatOp, probs: Value) => n.opType === 'MatMul' && n.inputs[0] === probs;

/** The anchor of the softmax-based patterns: a node that reads as a Softmax (its quantized forms too: reading.ts). */
export const isSoftmax = (node: Node) => {
  if (!node.opType.endsWith('Softmax')) return false; // (the cheap test first: every node of the graph is asked)
  const op = floatOf(node);
  return op.opType === 'Softmax' && op.domain === '';
};

/** The nodes between the Softmax and the QKᵀ product, and what they do to the scores. */
interface ScoresWalk {
  nodes: Node[];
  scale: ScoreScale;
}

/**
 * Walks back from the softmax input over casts, scalar scaling and additive masks
 * to the QKᵀ product (`isScores`), recording the factors and masks it steps over
 * in `walk`. An Add's operands are tried in turn: exporters and optimizers put the
 * mask on either side, and it may itself be computed with Mul/Sub/Cast.
 */
function scoresProduct(v: Value | null, ctx: MatchContext, walk: ScoresWalk, isScores: (n: FloatOp) => boolean, depth = 0): FloatOp | null {
  const p = producerOp(v);
  if (!p || depth > 8) return null;
  if (isScores(p)) return p;
  if (p.opType === 'MatMul') return null;
  const via = (next: Value | null | undefined, factor?: Value | null): FloatOp | null => {
    const seen: ScoresWalk = { nodes: [], scale: { factors: [], masked: false } };
    const mm = scoresProduct(next ?? null, ctx, seen, isScores, depth + 1);
    if (!mm) return null;
    walk.nodes.push(...p.nodes, ...seen.nodes);
    // inner steps first: factors in the order they apply
    walk.scale.factors.push(...seen.scale.factors);
    if (factor) walk.scale.factors.push({ op: p.opType === 'Div' ? 'Div' : 'Mul', value: factor });
    walk.scale.masked ||= seen.scale.masked || p.opType === 'Add';
    return mm;
  };
  if (p.opType === 'Cast' || p.opType === 'Identity') return via(p.inputs[0]);
  if ((p.opType === 'Mul' || p.opType === 'Div') && ctx.isScalar(p.inputs[1])) return via(p.inputs[0], p.inputs[1]);
  if (p.opType === 'Mul' && ctx.isScalar(p.inputs[0])) return via(p.inputs[1], p.inputs[0]);
  if (p.opType === 'Add') return via(p.inputs[0]) ?? via(p.inputs[1]);
  return null;
}

/** Walks forward from the softmax output over casts to the product with V (`isProbsV`). */
function probsProduct(v: Value, nodes: Node[], isProbsV: (n: FloatOp, probs: Value) => boolean): FloatOp | null {
  let cur = v;
  for (let i = 0; i < 4; i++) {
    const users = readerOps(cur);
    if (users.length !== 1) return null;
    const u = users[0]!;
    if (isProbsV(u, cur)) return u;
    if (u.opType === 'Cast' || u.opType === 'Identity' || u.opType === 'Dropout') {
      nodes.push(...u.nodes);
      cur = u.outputs[0]!;
      continue;
    }
    return null;
  }
  return null;
}

/**
 * The core shared by the softmax-anchored patterns: a Softmax over the last axis between the
 * QKᵀ product (`isScores`) and the product with V (`isProbsV`); only the two products differ.
 */
export function softmaxCore(
  isScores: (n: FloatOp) => boolean = isScoresMatMul,
  isProbsV: (n: FloatOp, probs: Value) => boolean = isProbsMatMul,
): AttentionPattern['match'] {
  return (softmax, ctx): AttentionCore | null => {
    const axis = softmax.getInt('axis', -1);
    const rank = ctx.shape(softmax.inputs[0])?.length;
    if (rank !== undefined && axis !== -1 && axis !== rank - 1) return null;
    const walk: ScoresWalk = { nodes: [softmax], scale: { factors: [], masked: false } };
    const qk = scoresProduct(softmax.inputs[0] ?? null, ctx, walk, isScores);
    if (!qk) return null;
    const { nodes, scale } = walk;
    const pv = probsProduct(softmax.outputs[0]!, nodes, isProbsV);
    if (!pv) return null;
    nodes.push(...qk.nodes, ...pv.nodes);
    return { q: qk.inputs[0] ?? null, k: qk.inputs[1] ?? null, v: pv.inputs[1] ?? null, output: pv.outputs[0]!, nodes, scale };
  };
}

export const softmaxAttention: AttentionPattern = {
  name: 'softmax',
  description: 'decomposed attention: MatMul(q, kᵀ) → [scale, mask] → Softmax → MatMul(·, v) (TorchScript, dynamo)',
  anchor: isSoftmax,
  match: softmaxCore(),
};
