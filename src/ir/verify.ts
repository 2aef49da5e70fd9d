/**
 * The verifier: every pass must leave a model that passes it. Reports dangling and
 * undefined values, cycles and ordering problems, duplicate names, inconsistent
 * use lists, tensor sizes that disagree with their shapes — in the main graph and in
 * the body of every local function, and functions defined twice or calling themselves. Through shape inference
 * it also warns (DELTAC_W_TYPE_CONFLICT) where a declared type disagrees with what the
 * producer computes: a warning, because the rule may be what is wrong.
 */
import { type Diagnostic, error, warning } from './diagnostics.js';
import { byteSizeOf, dtypeName } from './dtype.js';
import { DeltacError } from './errors.js';
import { type LocalFunction, calledFunction, functionKey, indexFunctions } from './function.js';
import type { Graph } from './graph.js';
import type { Model } from './model.js';
import type { Node } from './node.js';
import { inferShapes } from './shape-inference/infer.js';
import type { Value } from './value.js';

export interface VerifyOptions {
  /** Also run shape inference and warn about type/shape conflicts (default true). */
  types?: boolean;
}

export function verifyModel(model: Model, options: VerifyOptions = {}): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Map<string, Value>();
  verifyGraph(model.graph, out, seen);
  verifyFunctions(model.functions, out);
  if (options.types !== false && !out.some((d) => d.severity === 'error')) {
    out.push(...inferShapes(model, { check: true }).filter((d) => d.code === 'DELTAC_W_TYPE_CONFLICT'));
  }
  return out;
}

/** Throws the first error as a DeltacError. */
export function verifyOrThrow(model: Model, options?: VerifyOptions): void {
  const first = verifyModel(model, options).find((d) => d.severity === 'error');
  if (first) throw new DeltacError(first.code, first.message);
}

/** Every body on its own (its names are its own), one definition per key, and no call cycle. */
function verifyFunctions(functions: LocalFunction[], out: Diagnostic[]): void {
  if (!functions.length) return;
  const keys = new Set<string>();
  for (const f of functions) {
    const key = functionKey(f.domain, f.name, f.overload);
    if (keys.has(key)) out.push(error('DELTAC_E_DUPLICATE_NAME', `function ${f.label} is defined twice`, f.label));
    keys.add(key);
    if (f.body.initializers.size) {
      out.push(error('DELTAC_E_UNSUPPORTED_MODEL', `function ${f.label} has initializers; a function body holds constants as Constant nodes`, f.label));
    }
    const found: Diagnostic[] = [];
    verifyGraph(f.body, found, new Map());
    for (const d of found) out.push({ ...d, message: `function ${f.label}: ${d.message}` });
  }
  // Calls between functions must not form a cycle (a runtime would inline forever).
  const index = indexFunctions(functions);
  const callees = new Map(functions.map((f) => [f, new Set([...f.body.allNodes()].map((n) => calledFunction(index, n)).filter((c) => c !== undefined))]));
  const state = new Map<LocalFunction, 1 | 2>(); // 1 on the current path, 2 done
  for (const start of functions) {
    if (state.has(start)) continue;
    // depth first without recursion: a hostile file may chain many functions
    const stack: { f: LocalFunction; next: Iterator<LocalFunction> }[] = [{ f: start, next: callees.get(start)!.values() }];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const step = top.next.next();
      if (step.done) {
        state.set(top.f, 2);
        stack.pop();
        continue;
      }
      const c = step.value;
      if (state.get(c) === 1) {
        const path = stack.map((s) => s.f);
        const cycle = [...path.slice(path.indexOf(c)), c].map((x) => x.label).join(' → ');
        out.push(error('DELTAC_E_GRAPH_CYCLE', `local functions call themselves: ${cycle}`, c.label));
        return;
      }
      if (!state.has(c)) {
        state.set(c, 1);
        stack.push({ f: c, next: callees.get(c)!.values() });
      }
    }
  }
}

function verifyGraph(g: Graph, out: Diagnostic[], seen: Map<string, Value>): void {
  const define = (v: Value) => {
    const prev = seen.get(v.name);
    if (prev && prev !== v) out.push(error('DELTAC_E_DUPLICATE_NAME', `value name "${v.name}" is defined twice`, v.name));
    seen.set(v.name, v);
  };
  for (const v of g.inputs) define(v);
  const inputs = new Set(g.inputs);
  for (const v of g.initializers.values()) {
    if (!inputs.has(v)) define(v);
    const t = v.initializer!;
    if (t.storage.kind === 'inline' && t.storage.bytes.length !== byteSizeOf(t.dtype, t.elementCount)) {
      out.push(
        error(
          'DELTAC_E_TENSOR_DATA',
          `initializer "${v.name}" (${dtypeName(t.dtype)}[${t.dims.join(',')}]) holds ${t.storage.bytes.length} bytes, expected ${byteSizeOf(t.dtype, t.elementCount)}`,
          v.name,
        ),
      );
    }
  }
  const position = new Map(g.nodes.map((n, i) => [n, i]));
  // (node, slot) pairs of long use lists, indexed on first need: a value read by 10^5
  // slots would otherwise make this check quadratic.
  const useIndex = new Map<Value, Map<Node, Set<number>>>();
  const hasUse = (v: Value, node: Node, slot: number): boolean => {
    if (v.uses.length <= 16) return v.uses.some((u) => u.node === node && u.index === slot);
    let index = useIndex.get(v);
    if (!index) {
      index = new Map();
      for (const u of v.uses) {
        let slots = index.get(u.node);
        if (!slots) index.set(u.node, (slots = new Set()));
        slots.add(u.index);
      }
      useIndex.set(v, index);
    }
    return index.get(node)?.has(slot) ?? false;
  };
  let misordered = false;
  for (const [i, node] of g.nodes.entries()) {
    if (node.removed) out.push(error('DELTAC_E_DANGLING_VALUE', `removed node "${node.name}" is still listed`, node.name));
    node.inputs.forEach((v, slot) => {
      if (!v) return;
      const label = `${node.opType} node "${node.name || node.outputs[0]?.name}"`;
      if (!hasUse(v, node, slot)) {
        out.push(error('DELTAC_E_DANGLING_VALUE', `${label} reads "${v.name}" but the use list misses it`, node.name));
      }
      if (g.lookup(v.name) !== v) {
        out.push(error('DELTAC_E_UNDEFINED_VALUE', `${label} reads "${v.name}", which is not defined in its scope`, node.name));
        return;
      }
      const p = v.producer;
      if (p) {
        if (p.removed) {
          out.push(error('DELTAC_E_DANGLING_VALUE', `${label} reads "${v.name}", whose producer was removed`, node.name));
        } else if (p.graph === g && (position.get(p) ?? Infinity) >= i) {
          misordered = true;
        }
      }
    });
    for (const o of node.outputs) {
      define(o);
      if (o.producer !== node) out.push(error('DELTAC_E_DANGLING_VALUE', `output "${o.name}" has a wrong producer`, o.name));
    }
    for (const sub of node.subgraphs()) {
      // A value a branch captures must be produced before the node that owns the branch.
      for (const v of sub.captures()) {
        const p = v.producer;
        if (p && !p.removed && p.graph === g && (position.get(p) ?? Infinity) >= i) misordered = true;
      }
      verifyGraph(sub, out, seen);
    }
  }
  for (const o of g.outputs) {
    if (g.lookup(o.name) !== o) out.push(error('DELTAC_E_UNDEFINED_VALUE', `graph output "${o.name}" is not defined`, o.name));
    else if (o.producer?.removed) out.push(error('DELTAC_E_DANGLING_VALUE', `graph output "${o.name}" lost its producer`, o.name));
  }
  if (misordered) {
    // Either a cycle or merely an unsorted node list: find out which.
    const saved = g.nodes;
    try {
      g.topologicalSort();
      out.push(warning('DELTAC_E_GRAPH_CYCLE', `nodes of graph "${g.name}" are not in topological order (fixable by sorting)`));
    } catch (e) {
      if (e instanceof DeltacError) out.push(error(e.code, e.message));
      else throw e;
    } finally {
      g.nodes = saved;
    }
  }
}
