/**
 * Shape inference of a call to a local function: the function's body is inferred with the
 * call's input types and contents, its `ref` attributes bound to the call's attributes (or
 * the function's defaults), and the body's output types become the call's.
 *
 * Model files are hostile, so the work is bounded: calls nest at most MAX_CALL_DEPTH deep
 * and never recursively; a body is inferred once per distinct (input types, contents,
 * attributes) and the cached result reused by every such call (a model's 28 blocks calling
 * one function cost one inference); the bodies inferred for one model add up to at most
 * MAX_FUNCTION_NODES nodes. Beyond that a call's outputs stay unknown.
 */
import type { Attribute } from '../attribute.js';
import { type LocalFunction, resolveRef } from '../function.js';
import type { Graph } from '../graph.js';
import type { Node } from '../node.js';
import type { Dim, ValueType } from '../types.js';
import type { InferOptions, InferResult } from './infer.js';

export const MAX_CALL_DEPTH = 16;
export const MAX_FUNCTION_NODES = 200_000;

/** What inference shares across the calls of one model. */
export interface CallScope {
  /** The model's functions by key (`indexFunctions`). */
  functions: Map<string, LocalFunction>;
  /** Functions whose bodies are being inferred, outermost first. */
  stack: LocalFunction[];
  /** Body nodes inferred so far. */
  budget: { nodes: number };
  cache: Map<LocalFunction, Map<string, CallResult>>;
  /** infer.ts' graph walk (passed in, so that the two modules do not import each other's values). */
  inferBody: (g: Graph, env: InferResult, options: InferOptions, opset: number | undefined, scope: CallScope) => void;
}

interface CallResult {
  types: (ValueType | null)[];
  contents: (Dim[] | undefined)[];
}

/** A body node's attribute that refers to a function attribute. */
interface RefSite {
  node: Node;
  name: string;
  ref: string;
}

const refSites = new WeakMap<LocalFunction, { sites: RefSite[]; nodes: number }>();

function bodyFacts(fn: LocalFunction): { sites: RefSite[]; nodes: number } {
  let facts = refSites.get(fn);
  if (!facts) {
    const sites: RefSite[] = [];
    let nodes = 0;
    for (const node of fn.body.allNodes()) {
      nodes++;
      for (const [name, a] of node.attributes) if (a.type === 'ref') sites.push({ node, name, ref: a.ref });
    }
    facts = { sites, nodes };
    refSites.set(fn, facts);
  }
  return facts;
}

/** The output types of `call`, inferred through `fn`'s body; null when beyond the bounds. */
export function inferCall(call: Node, fn: LocalFunction, env: InferResult, scope: CallScope, opset: number | undefined): (ValueType | null)[] | null {
  if (scope.stack.includes(fn) || scope.stack.length >= MAX_CALL_DEPTH) return null;
  const input = (i: number) => call.inputs[i] ?? null;
  const types = fn.inputs.map((_, i) => {
    const v = input(i);
    return v ? (env.types.get(v) ?? null) : null;
  });
  const contents = fn.inputs.map((_, i) => {
    const v = input(i);
    return v ? env.contents.get(v) : undefined;
  });
  const facts = bodyFacts(fn);
  const bound = new Map<string, Attribute | undefined>();
  for (const s of facts.sites) if (!bound.has(s.ref)) bound.set(s.ref, resolveRef(fn, call, s.ref));
  const key = cacheKey(types, contents, bound);
  let perFunction = scope.cache.get(fn);
  let result = key !== undefined ? perFunction?.get(key) : undefined;
  if (!result) {
    if (scope.budget.nodes + facts.nodes > MAX_FUNCTION_NODES) return null;
    scope.budget.nodes += facts.nodes;
    result = inferBody(fn, types, contents, bound, facts.sites, scope, opset);
    if (key !== undefined) {
      if (!perFunction) scope.cache.set(fn, (perFunction = new Map()));
      perFunction.set(key, result);
    }
  }
  call.outputs.forEach((o, i) => {
    const c = result.contents[i];
    if (c) env.contents.set(o, c);
  });
  return call.outputs.map((_, i) => result.types[i] ?? null);
}

function inferBody(
  fn: LocalFunction,
  types: (ValueType | null)[],
  contents: (Dim[] | undefined)[],
  bound: Map<string, Attribute | undefined>,
  sites: RefSite[],
  scope: CallScope,
  opset: number | undefined,
): CallResult {
  const env: InferResult = { types: new Map(), contents: new Map(), diagnostics: [] };
  fn.inputs.forEach((v, i) => {
    const t = types[i] ?? (v.typeSource === 'declared' ? v.type : null);
    if (t) env.types.set(v, t);
    const c = contents[i];
    if (c) env.contents.set(v, c);
  });
  // The body's nodes see the call's attribute values in place of their references while
  // the body is inferred; each node's attributes are put back exactly (same order) after.
  const saved = new Map<Node, [string, Attribute][]>();
  for (const s of sites) if (!saved.has(s.node)) saved.set(s.node, [...s.node.attributes]);
  for (const s of sites) {
    const value = bound.get(s.ref);
    if (value && value.type !== 'ref') s.node.attributes.set(s.name, value);
    else s.node.attributes.delete(s.name); // not given and no default: the attribute is absent
  }
  scope.stack.push(fn);
  try {
    scope.inferBody(fn.body, env, {}, fn.opset('') ?? opset, scope);
  } finally {
    scope.stack.pop();
    for (const [node, attrs] of saved) {
      node.attributes.clear();
      for (const [k, a] of attrs) node.attributes.set(k, a);
    }
  }
  return {
    types: fn.outputs.map((v) => env.types.get(v) ?? (v.typeSource === 'declared' ? v.type : null)),
    contents: fn.outputs.map((v) => env.contents.get(v)),
  };
}

/** The key of a call's inference, or undefined when an attribute it binds is a tensor or graph (not cached). */
function cacheKey(types: (ValueType | null)[], contents: (Dim[] | undefined)[], bound: Map<string, Attribute | undefined>): string | undefined {
  const attrs: unknown[] = [];
  for (const [ref, a] of bound) {
    if (!a || a.type === 'ref') attrs.push([ref]);
    else if (a.type === 'int' || a.type === 'float' || a.type === 'string' || a.type === 'ints' || a.type === 'floats' || a.type === 'strings') attrs.push([ref, a.type, a.value]);
    else return undefined;
  }
  const type = (t: ValueType | null) => (!t ? null : t.kind === 'tensor' ? [t.dtype, t.shape] : t.summary);
  return JSON.stringify([types.map(type), contents.map((c) => c ?? null), attrs]);
}
