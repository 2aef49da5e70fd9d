/**
 * Arithmetic on symbolic dimensions. A symbolic dim is a string: either a product
 * `k*a*b` of an integer and symbols (kept in canonical sorted form so that equal
 * products compare equal), or an opaque expression such as `floor((height+-1)/2)+1`,
 * which behaves as one atom.
 */
import type { Dim } from '../types.js';

interface Monomial {
  coef: number;
  factors: string[]; // sorted atoms
}

const ATOM = /^[A-Za-z_][\w.:]*$|^\(.*\)$/;

/**
 * Longest dim expression kept; longer ones become unknown (null). Real exports stay
 * far below (SD1.5's deepest level is ~110 characters); without a bound, a hostile
 * chain of Concat/Add nodes doubles an expression at every node.
 */
export const MAX_DIM_EXPRESSION = 1024;

/** `d`, or null when it is an expression longer than MAX_DIM_EXPRESSION. */
export function capDim(d: Dim): Dim {
  return typeof d === 'string' && d.length > MAX_DIM_EXPRESSION ? null : d;
}

function toMonomial(d: number | string): Monomial {
  if (typeof d === 'number') return { coef: d, factors: [] };
  const parts = splitTopLevel(d, '*');
  if (parts && parts.every((p) => /^-?\d+$/.test(p) || ATOM.test(p))) {
    let coef = 1;
    const factors: string[] = [];
    for (const p of parts) {
      if (/^-?\d+$/.test(p)) coef *= Number(p);
      else factors.push(p);
    }
    return { coef, factors: factors.sort() };
  }
  return { coef: 1, factors: [`(${d})`] };
}

function fromMonomial(m: Monomial): Dim {
  if (m.factors.length === 0) return m.coef;
  const atoms = m.factors;
  return m.coef === 1 ? atoms.join('*') : [String(m.coef), ...atoms].join('*');
}

/** Splits on `sep` outside parentheses; undefined when parentheses are unbalanced. */
function splitTopLevel(s: string, sep: string): string[] | undefined {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === sep && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
    if (depth < 0) return undefined;
  }
  out.push(s.slice(start));
  return depth === 0 ? out : undefined;
}

function atom(d: Dim): string {
  if (typeof d === 'number') return String(d);
  const s = String(d);
  return ATOM.test(s) || /^\d+$/.test(s) ? s : `(${s})`;
}

export function mulDim(a: Dim, b: Dim): Dim {
  if (a === null || b === null) return null;
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  if (a === 0 || b === 0) return 0;
  const ma = toMonomial(a);
  const mb = toMonomial(b);
  return capDim(fromMonomial({ coef: ma.coef * mb.coef, factors: [...ma.factors, ...mb.factors].sort() }));
}

/** Exact division (the result times b equals a), or null when it cannot be shown. */
export function divDimExact(a: Dim, b: Dim): Dim {
  if (a === null || b === null) return null;
  if (typeof a === 'number' && typeof b === 'number') return b !== 0 && a % b === 0 ? a / b : null;
  const ma = toMonomial(a);
  const mb = toMonomial(b);
  if (mb.coef === 0 || ma.coef % mb.coef !== 0) return null;
  const rest = [...ma.factors];
  for (const f of mb.factors) {
    const k = rest.indexOf(f);
    if (k < 0) return null;
    rest.splice(k, 1);
  }
  return fromMonomial({ coef: ma.coef / mb.coef, factors: rest });
}

export function addDim(a: Dim, b: Dim): Dim {
  if (a === null || b === null) return null;
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (b === 0) return a;
  if (a === 0) return b;
  return capDim(`${atom(a)}+${atom(b)}`);
}

export function subDim(a: Dim, b: Dim): Dim {
  if (a === null || b === null) return null;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (b === 0) return a;
  if (a === b) return 0;
  return capDim(`${atom(a)}-${atom(b)}`);
}

/** Floor division (integer Div in ONNX truncates; shapes are non-negative so floor = trunc). */
export function floorDivDim(a: Dim, b: Dim): Dim {
  if (a === null || b === null) return null;
  if (typeof a === 'number' && typeof b === 'number') return b === 0 ? null : Math.trunc(a / b);
  const exact = divDimExact(a, b);
  if (exact !== null) return exact;
  return capDim(`floor(${atom(a)}/${atom(b)})`);
}

/** A dimension with symbols replaced by numbers, evaluated when fully bound. */
export function bindDim(d: Dim, bindings: Record<string, number>): Dim {
  if (typeof d !== 'string') return d;
  if (d in bindings) return bindings[d]!;
  if (d.length > MAX_DIM_EXPRESSION) return d; // the evaluator recurses on parentheses
  const value = evaluate(d, bindings);
  return value === undefined ? d : value;
}

/**
 * Evaluates a dim expression (integers, symbols, + - * /, parentheses, floor(), ceil())
 * with every symbol bound; undefined when a symbol is unbound or the text is not such an expression.
 */
function evaluate(text: string, bindings: Record<string, number>): number | undefined {
  const tokens = text.match(/\d+|[A-Za-z_][\w.:]*|[-+*/()]/g);
  if (!tokens || tokens.join('') !== text.replace(/\s+/g, '')) return undefined;
  let pos = 0;
  const peek = () => tokens[pos];
  const expr = (): number | undefined => {
    let v = term();
    while (v !== undefined && (peek() === '+' || peek() === '-')) {
      const op = tokens[pos++];
      const r = term();
      if (r === undefined) return undefined;
      v = op === '+' ? v + r : v - r;
    }
    return v;
  };
  const term = (): number | undefined => {
    let v = factor();
    while (v !== undefined && (peek() === '*' || peek() === '/')) {
      const op = tokens[pos++];
      const r = factor();
      if (r === undefined) return undefined;
      v = op === '*' ? v * r : v / r;
    }
    return v;
  };
  const factor = (): number | undefined => {
    const t = tokens[pos++];
    if (t === undefined) return undefined;
    if (t === '-') {
      const v = factor();
      return v === undefined ? undefined : -v;
    }
    if (t === '(') {
      const v = expr();
      return tokens[pos++] === ')' ? v : undefined;
    }
    if (/^\d+$/.test(t)) return Number(t);
    if ((t === 'floor' || t === 'ceil') && peek() === '(') {
      pos++;
      const v = expr();
      if (tokens[pos++] !== ')' || v === undefined) return undefined;
      return t === 'floor' ? Math.floor(v) : Math.ceil(v);
    }
    return t in bindings ? bindings[t] : undefined;
  };
  const v = expr();
  return pos === tokens.length && v !== undefined && Number.isFinite(v) ? v : undefined;
}

/** Two dims that are provably the same. */
export function sameDim(a: Dim, b: Dim): boolean {
  if (a === null || b === null) return false;
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  const ma = toMonomial(a);
  const mb = toMonomial(b);
  return ma.coef === mb.coef && ma.factors.join('*') === mb.factors.join('*');
}
