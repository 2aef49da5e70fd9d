/**
 * A LoRA adapter left unfused in an export (PEFT's `lora.Linear`, diffusers'
 * `LoRACompatibleLinear`): the projection plus a low-rank term of the same input,
 *
 *   y     = base + term                   (Add, either operand order)
 *   base  = x·W (+ b)                     (the projection itself: to_q, to_k, to_v, to_out.0)
 *   term  = ((x'·A)·B)·s                  A [in, r], B [r, out] weights; s a scalar (Mul or Div, or none)
 *   x'    = x, maybe through Dropout / Identity / Cast
 *
 * This file recognises the term; the projection walks in match.ts use it to see
 * through the sum (and check that the adapter reads the projection's input).
 */
import type { Node } from '../../ir/node.js';
import type { Value } from '../../ir/value.js';
import { type MatchContext, weightOf } from './match.js';

export interface LoraTerm {
  /** The Add of base and term. */
  sum: Node;
  /** The other operand of the sum: the projection (x·W, + b). */
  base: Value;
  /** What the adapter reads (x, after the skipped Dropout/Identity/Cast). */
  input: Value;
  /** The adapter's nodes (A, B, scale, skipped ops), the sum excluded. */
  nodes: Node[];
  /** A and B. */
  weights: Value[];
}

/** Ops between x and the adapter's first MatMul, or around its scale. */
const PASS = new Set(['Dropout', 'Identity', 'Cast']);

/** x·W with W a weight (MatMul, or Gemm without transA). */
function linearOf(v: Value | null | undefined): { node: Node; x: Value; weight: Value } | null {
  const p = v?.producer;
  if (!p || p.domain !== '' || !(p.opType === 'MatMul' || (p.opType === 'Gemm' && !p.getInt('transA', 0)))) return null;
  const weight = weightOf(p.inputs[1] ?? null);
  return weight && p.inputs[0] ? { node: p, x: p.inputs[0], weight } : null;
}

/** The low-rank term ((x·A)·B)·s ending in `v`, or null. */
function lowRankTerm(v: Value | null | undefined, ctx: MatchContext): Omit<LoraTerm, 'sum' | 'base'> | null {
  const nodes: Node[] = [];
  let cur = v ?? null;
  // the scale (and casts around it)
  for (let i = 0; cur && i < 4; i++) {
    const p: Node | null = cur.producer;
    if (!p) return null;
    if (p.opType === 'Cast') cur = p.inputs[0] ?? null;
    else if ((p.opType === 'Mul' || p.opType === 'Div') && ctx.isScalar(p.inputs[1]) && weightOf(p.inputs[1] ?? null)) cur = p.inputs[0] ?? null;
    else if (p.opType === 'Mul' && ctx.isScalar(p.inputs[0]) && weightOf(p.inputs[0] ?? null)) cur = p.inputs[1] ?? null;
    else break;
    nodes.push(p);
  }
  const up = linearOf(cur);
  const down = up && linearOf(up.x);
  if (!up || !down) return null;
  nodes.push(up.node, down.node);
  let input = down.x;
  // only the adapter's own Dropout/Identity/Cast: a node the projection reads too is not skipped
  while (input.producer && PASS.has(input.producer.opType) && input.users().length === 1) {
    nodes.push(input.producer);
    input = input.producer.inputs[0]!;
  }
  return { input, nodes, weights: [down.weight, up.weight] };
}

/** The LoRA term of `add` when it is `base + ((x·A)·B)·s`; null for any other Add. */
export function loraSum(add: Node, ctx: MatchContext): LoraTerm | null {
  if (add.opType !== 'Add' || add.domain !== '' || add.inputs.length !== 2) return null;
  for (const [b, t] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const base = add.inputs[b];
    const term = lowRankTerm(add.inputs[t], ctx);
    // the base must be computed (a projection), not another weight: that Add is a bias
    if (term && base && !weightOf(base)) return { sum: add, base, ...term };
  }
  return null;
}

/** True when `n` lies on an adapter's low-rank path (its result flows into a LoRA sum as the term). */
export function isAdapterNode(n: Node, ctx: MatchContext): boolean {
  let cur: Value | undefined = n.outputs[0];
  for (let i = 0; cur && i < 8; i++) {
    const users: Node[] = cur.users();
    if (users.length !== 1) return false;
    const u: Node = users[0]!;
    const sum = u.opType === 'Add' ? loraSum(u, ctx) : null;
    if (sum) return sum.nodes.includes(n);
    cur = u.outputs[0];
  }
  return false;
}
