/**
 * Decomposed scaled-dot-product attention, as the TorchScript exporter and the
 * dynamo exporter (opset ≤ 22) write it:
 *
 *   scores = MatMul(q·√s, kᵀ·√s)        (or one Mul/Div by the scale on the scores)
 *   scores = scores + mask               (optional)
 *   probs  = Softmax(scores, axis=-1)    (Cast islands around it in fp16 exports)
 *   out    = MatMul(probs, v)
 */
import type { Node } from '../../ir/node.js';
import type { Value } from '../../ir/value.js';
import { type AttentionCore, type AttentionPattern, type MatchContext, dataUsers } from './match.js';

/** Walks back from the softmax input over casts, scalar scaling and a mask add to the QKᵀ MatMul. */
function scoresMatMul(v: Value | null, ctx: MatchContext, nodes: Node[]): Node | null {
  let cur = v;
  for (let i = 0; cur && i < 6; i++) {
    const p: Node | null = cur.producer;
    if (!p) return null;
    if (p.opType === 'MatMul') return p;
    nodes.push(p);
    if (p.opType === 'Cast' || p.opType === 'Identity') cur = p.inputs[0] ?? null;
    else if ((p.opType === 'Mul' || p.opType === 'Div') && ctx.isScalar(p.inputs[1])) cur = p.inputs[0] ?? null;
    else if (p.opType === 'Mul' && ctx.isScalar(p.inputs[0])) cur = p.inputs[1] ?? null;
    else if (p.opType === 'Add') {
      // attention mask: the scores side is the one produced by a MatMul/Mul/Div chain
      const [a, b] = p.inputs;
      cur = a?.producer && ['MatMul', 'Mul', 'Div', 'Cast'].includes(a.producer.opType) ? a : (b ?? null);
    } else return null;
  }
  return null;
}

/** Walks forward from the softmax output over casts to the MatMul with V. */
function probsMatMul(v: Value, nodes: Node[]): Node | null {
  let cur = v;
  for (let i = 0; i < 4; i++) {
    const users = dataUsers(cur);
    if (users.length !== 1) return null;
    const u = users[0]!;
    if (u.opType === 'MatMul' && u.inputs[0] === cur) return u;
    if (u.opType === 'Cast' || u.opType === 'Identity' || u.opType === 'Dropout') {
      nodes.push(u);
      cur = u.outputs[0]!;
      continue;
    }
    return null;
  }
  return null;
}

export const softmaxAttention: AttentionPattern = {
  name: 'softmax',
  description: 'decomposed attention: MatMul(q, kᵀ) → [scale, mask] → Softmax → MatMul(·, v) (TorchScript, dynamo)',
  anchor: (node) => node.opType === 'Softmax' && node.domain === '',
  match(softmax, ctx): AttentionCore | null {
    const axis = softmax.getInt('axis', -1);
    const rank = ctx.shape(softmax.inputs[0])?.length;
    if (rank !== undefined && axis !== -1 && axis !== rank - 1) return null;
    const nodes: Node[] = [softmax];
    const qk = scoresMatMul(softmax.inputs[0] ?? null, ctx, nodes);
    if (!qk) return null;
    const pv = probsMatMul(softmax.outputs[0]!, nodes);
    if (!pv) return null;
    nodes.push(qk, pv);
    return { q: qk.inputs[0] ?? null, k: qk.inputs[1] ?? null, v: pv.inputs[1] ?? null, output: pv.outputs[0]!, nodes };
  },
};
