/**
 * Shape rule of ONNX `Einsum` for any equation:
 *
 *   equation = term ("," term)* ["->" term]      term = (letter | "...")*  (spaces ignored)
 *
 * Each operand's term names its axes; `...` stands for the axes no letter names
 * (rank − letters of them), and the ellipsis axes of all operands broadcast together
 * (right-aligned, NumPy rules). With `->` the output is the given term; without it
 * (implicit mode) the output is the ellipsis axes followed by the letters that occur
 * exactly once, in ASCII order.
 *
 * A letter's size is what its occurrences agree on; a 1 broadcasts. Where the
 * operands do not say for sure (unknown dims, two different symbols) the dim is
 * unknown, and an equation that does not fit the operands' ranks gives an unknown
 * shape rather than a guess. The element type is the first operand's.
 */
import type { Dim } from '../types.js';
import type { ShapeRule } from './infer.js';
import { tensor } from './rule-helpers.js';
import { sameDim } from './symbolic.js';

/** One term: its axis labels in order; `...` is kept as the label '.'. */
type Term = string[];

interface Equation {
  inputs: Term[];
  /** null in implicit mode. */
  output: Term | null;
}

const ELLIPSIS = '.';

/** Parses an equation; null when it is malformed (bad characters, a stray '.', two ellipses in a term). */
export function parseEinsum(equation: string): Equation | null {
  const eq = equation.replace(/\s+/g, '');
  const arrow = eq.indexOf('->');
  if (arrow >= 0 && eq.indexOf('->', arrow + 1) >= 0) return null;
  const lhs = arrow >= 0 ? eq.slice(0, arrow) : eq;
  const inputs = lhs.split(',').map(parseTerm);
  const output = arrow >= 0 ? parseTerm(eq.slice(arrow + 2)) : null;
  if (inputs.some((t) => t === null) || (arrow >= 0 && (output === null || output.includes(',')))) return null;
  if (output && new Set(output).size !== output.length) return null;
  return { inputs: inputs as Term[], output };
}

function parseTerm(s: string): Term | null {
  const out: Term = [];
  for (let i = 0; i < s.length; ) {
    if (s.startsWith('...', i)) {
      if (out.includes(ELLIPSIS)) return null;
      out.push(ELLIPSIS);
      i += 3;
    } else if (/[A-Za-z]/.test(s[i]!)) out.push(s[i++]!);
    else return null;
  }
  return out;
}

/** The dim two axes that must broadcast together have, when it is certain; null otherwise. */
function unify(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (sameDim(a, b)) return a;
  // A number other than 1 fixes the size: the other axis is that number or 1.
  if (typeof a === 'number' && typeof b !== 'number') return a;
  if (typeof b === 'number' && typeof a !== 'number') return b;
  return null;
}

/** Right-aligned broadcast of the ellipsis dims of the operands. */
function broadcastTail(parts: Dim[][]): Dim[] {
  const rank = Math.max(0, ...parts.map((p) => p.length));
  return Array.from({ length: rank }, (_, i) => {
    const dims = parts.map((p) => p[p.length - rank + i]).filter((d): d is Dim => d !== undefined);
    return dims.reduce<Dim>((acc, d) => unify(acc, d), 1);
  });
}

/** The output shape of `equation` for operands of these shapes (null: unknown rank). */
export function einsumShape(equation: string, shapes: (Dim[] | null)[]): Dim[] | null {
  const eq = parseEinsum(equation);
  if (!eq || eq.inputs.length !== shapes.length) return null;
  const sizes = new Map<string, Dim>();
  const counts = new Map<string, number>();
  const ellipses: Dim[][] = [];
  let ellipsisRankKnown = true;
  let anyEllipsis = false;
  for (let k = 0; k < eq.inputs.length; k++) {
    const term = eq.inputs[k]!;
    const shape = shapes[k];
    const hasEllipsis = term.includes(ELLIPSIS);
    anyEllipsis ||= hasEllipsis;
    const letters = term.filter((c) => c !== ELLIPSIS);
    for (const c of letters) counts.set(c, (counts.get(c) ?? 0) + 1);
    if (!shape) {
      if (hasEllipsis) ellipsisRankKnown = false;
      for (const c of letters) sizes.set(c, sizes.has(c) ? unify(sizes.get(c)!, null) : null);
      continue;
    }
    if (hasEllipsis ? shape.length < letters.length : shape.length !== letters.length) return null;
    const e = term.indexOf(ELLIPSIS);
    const span = shape.length - letters.length;
    term.forEach((c, i) => {
      if (c === ELLIPSIS) {
        ellipses.push(shape.slice(i, i + span));
        return;
      }
      const d = shape[e >= 0 && i > e ? i - 1 + span : i]!;
      sizes.set(c, sizes.has(c) ? unify(sizes.get(c)!, d) : d);
    });
  }
  const output = eq.output ?? [
    ...(anyEllipsis ? [ELLIPSIS] : []),
    ...[...counts.keys()].filter((c) => counts.get(c) === 1).sort(),
  ];
  const out: Dim[] = [];
  for (const c of output) {
    if (c === ELLIPSIS) {
      if (!ellipsisRankKnown) return null;
      out.push(...broadcastTail(ellipses));
    } else if (!counts.has(c)) return null;
    else out.push(sizes.get(c) ?? null);
  }
  return out;
}

export const einsumRule: ShapeRule = (ctx) => {
  const shapes = ctx.node.inputs.map((_, i) => ctx.shape(i));
  return [tensor(ctx.dtype(0), einsumShape(ctx.node.getString('equation', ''), shapes))];
};
