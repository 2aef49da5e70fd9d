/**
 * Shape inference with symbolic dims. Walks the graph in order, applies one rule
 * per operator (rules.ts), and propagates the *contents* of small integer tensors
 * (Shape → Gather → Concat → Reshape chains) so that exported shape arithmetic
 * resolves to dims like `batch`, `height*width`.
 *
 * The result is a map from values to types; `apply` writes inferred types into
 * values that have none (declared types are never overwritten). With `bindings`
 * (e.g. `{height: 64, width: 64}`) symbolic input dims become numbers, which is
 * how reports evaluate a model at a given resolution.
 *
 * A call to a local function is inferred through the function's body, with the call's
 * input types (function-inference.ts).
 */
import { type Diagnostic, warning } from '../diagnostics.js';
import { DataType } from '../dtype.js';
import { calledFunction, indexFunctions } from '../function.js';
import type { Graph } from '../graph.js';
import type { Model } from '../model.js';
import type { Node } from '../node.js';
import { type Dim, type ValueType, formatType } from '../types.js';
import type { Value } from '../value.js';
import { MAX_CONTENT_ELEMENTS } from './rule-helpers.js';
import { type CallScope, inferCall } from './function-inference.js';
import { scanBodyInputTypes, scanStatesKeepTypes } from './rules-control.js';
import { RULES } from './rules.js';
import { MAX_DIM_EXPRESSION, bindDim, capDim, sameDim } from './symbolic.js';

export interface InferOptions {
  /**
   * Report conflicts between declared and inferred types (DELTAC_W_TYPE_CONFLICT warnings:
   * the declared type is kept, since a rule may be wrong where the file is right).
   */
  check?: boolean;
  /** Store inferred types on values whose type is unknown or was inferred before. */
  apply?: boolean;
  /** Replace symbols in graph-input dims by numbers. */
  bindings?: Record<string, number>;
}

export interface InferResult {
  types: Map<Value, ValueType>;
  /** Known contents of small integer tensors (shape arithmetic). */
  contents: Map<Value, Dim[]>;
  diagnostics: Diagnostic[];
}

/** What a shape rule sees of one node. */
export class RuleContext {
  constructor(
    readonly node: Node,
    private readonly env: InferResult,
    /** The model's ai.onnx opset (undefined when it imports none). */
    readonly opset?: number,
  ) {}

  type(i: number): ValueType | null {
    const v = this.node.inputs[i];
    return v ? (this.env.types.get(v) ?? null) : null;
  }

  /** Tensor shape of input i, null when unknown. */
  shape(i: number): Dim[] | null {
    const t = this.type(i);
    return t?.kind === 'tensor' ? t.shape : null;
  }

  rank(i: number): number | undefined {
    return this.shape(i)?.length;
  }

  dtype(i: number): DataType {
    const t = this.type(i);
    return t?.kind === 'tensor' ? t.dtype : DataType.UNDEFINED;
  }

  hasInput(i: number): boolean {
    return !!this.node.inputs[i];
  }

  /** Contents of input i when it is a small integer tensor whose values are known (possibly symbolic). */
  contents(i: number): Dim[] | undefined {
    const v = this.node.inputs[i];
    return v ? this.env.contents.get(v) : undefined;
  }

  /** Contents of input i when every element is a known number. */
  numbers(i: number): number[] | undefined {
    const c = this.contents(i);
    return c && c.every((d) => typeof d === 'number') ? (c as number[]) : undefined;
  }

  /** Values of input i when it is a small constant (initializer or Constant node) of any numeric type. */
  constantValues(i: number): number[] | undefined {
    const v = this.node.inputs[i];
    if (!v) return undefined;
    const t = v.initializer ?? (v.producer?.opType === 'Constant' ? v.producer.getTensor('value') : undefined);
    if (!t || t.storage.kind !== 'inline' || t.elementCount > MAX_CONTENT_ELEMENTS) return undefined;
    return t.toNumbers();
  }

  /** Type of any value the node can see (e.g. a subgraph output, inferred before the node's rule runs). */
  valueType(v: Value): ValueType | null {
    return this.env.types.get(v) ?? v.type ?? null;
  }

  setContents(outputIndex: number, dims: Dim[]): void {
    const v = this.node.outputs[outputIndex];
    // Contents are for shape arithmetic: bounded, so that chains of Concat cannot grow them without limit.
    if (v && dims.length <= MAX_CONTENT_ELEMENTS) this.env.contents.set(v, dims.map(capDim));
  }
}

export type ShapeRule = (ctx: RuleContext) => (ValueType | null)[] | null;

export function inferShapes(model: Model, options: InferOptions = {}): Diagnostic[] {
  return runInference(model, options).diagnostics;
}

export function runInference(model: Model, options: InferOptions = {}): InferResult {
  const env: InferResult = { types: new Map(), contents: new Map(), diagnostics: [] };
  const scope: CallScope = { functions: indexFunctions(model.functions), stack: [], budget: { nodes: 0 }, cache: new Map(), inferBody: inferGraph };
  inferGraph(model.graph, env, options, model.opset(''), scope);
  return env;
}

/** Infers a graph's values into `env` (function bodies too, through the CallScope function-inference.ts builds around it). */
function inferGraph(g: Graph, env: InferResult, options: InferOptions, opset: number | undefined, scope: CallScope): void {
  const bind = (t: ValueType | null): ValueType | null => {
    if (!t || t.kind !== 'tensor' || !t.shape || !options.bindings) return t;
    return { ...t, shape: t.shape.map((d) => bindDim(d, options.bindings!)) };
  };
  for (const v of g.inputs) if (v.type) env.types.set(v, bind(v.type)!);
  for (const v of g.initializers.values()) {
    const t = v.initializer!;
    env.types.set(v, { kind: 'tensor', dtype: t.dtype, shape: [...t.dims] });
    recordConstantContents(v, env);
  }
  for (const node of g.nodes) {
    // a Scan body's untyped inputs take their types from the node's inputs, when a trial
    // inference shows that the states keep them from one iteration to the next
    const seeded = scanBodyInputTypes(new RuleContext(node, env, opset));
    if (seeded.size > 0) {
      const trial: InferResult = { types: new Map([...env.types, ...seeded]), contents: new Map(env.contents), diagnostics: [] };
      for (const sub of node.subgraphs()) inferGraph(sub, trial, { bindings: options.bindings }, opset, scope);
      if (scanStatesKeepTypes(node, seeded, (v) => trial.types.get(v) ?? null)) {
        for (const [v, t] of seeded) if (!env.types.has(v)) env.types.set(v, t);
      }
    }
    for (const sub of node.subgraphs()) inferGraph(sub, env, options, opset, scope);
    const rule: ShapeRule | undefined = RULES[ruleKey(node)];
    let outs: (ValueType | null)[] | null = null;
    // A standard (or contrib) operator's rule first; otherwise the local function the node calls.
    const fn = rule === undefined ? calledFunction(scope.functions, node) : undefined;
    if (fn) {
      outs = inferCall(node, fn, env, scope, opset);
    } else if (rule) {
      try {
        outs = rule(new RuleContext(node, env, opset));
      } catch (e) {
        env.diagnostics.push(
          warning('DELTAC_W_SHAPE', `shape rule for ${node.opType} "${node.name}" failed: ${(e as Error).message}`, node.name),
        );
      }
    }
    node.outputs.forEach((v, i) => {
      const inferred = outs?.[i] ?? null;
      const declared = v.typeSource === 'declared' ? bind(v.type) : null;
      if (declared && inferred && options.check) {
        const conflict = typeConflict(declared, inferred);
        if (conflict) {
          env.diagnostics.push(
            warning(
              'DELTAC_W_TYPE_CONFLICT',
              `"${v.name}" is declared ${formatType(declared)} but ${node.opType} "${node.name}" produces ${formatType(inferred)} (${conflict})`,
              v.name,
            ),
          );
        }
      }
      const chosen = capType(declared ? refine(declared, inferred) : inferred);
      if (chosen) env.types.set(v, chosen);
      if (options.apply && chosen && v.typeSource !== 'declared') v.type = chosen;
    });
  }
}

function ruleKey(node: Node): string {
  return node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType;
}

/** The type with over-long dim expressions replaced by unknown dims (see MAX_DIM_EXPRESSION). */
function capType(t: ValueType | null): ValueType | null {
  if (!t || t.kind !== 'tensor' || !t.shape || !t.shape.some((d) => typeof d === 'string' && d.length > MAX_DIM_EXPRESSION)) return t;
  return { ...t, shape: t.shape.map(capDim) };
}

/**
 * Symbols onnx's shape inference invents for dims it could not name (`unk__12`): each
 * stands for nothing but itself, so a declared one says no more than an unknown dim.
 */
const ANONYMOUS_DIM = /^unk__\d+$/;

/** Declared type, with unknown (or anonymous) dims filled in from inference. */
function refine(declared: ValueType, inferred: ValueType | null): ValueType {
  if (!inferred || declared.kind !== 'tensor' || inferred.kind !== 'tensor') return declared;
  if (!declared.shape) return { ...declared, shape: inferred.shape };
  if (!inferred.shape || inferred.shape.length !== declared.shape.length) return declared;
  return {
    ...declared,
    shape: declared.shape.map((d, i) => {
      const x = inferred.shape![i]!;
      return d === null || (typeof d === 'string' && ANONYMOUS_DIM.test(d) && x !== null) ? x : d;
    }),
  };
}

function typeConflict(a: ValueType, b: ValueType): string | undefined {
  if (a.kind !== 'tensor' || b.kind !== 'tensor') return undefined;
  if (a.dtype !== DataType.UNDEFINED && b.dtype !== DataType.UNDEFINED && a.dtype !== b.dtype) return 'element types differ';
  if (!a.shape || !b.shape) return undefined;
  if (a.shape.length !== b.shape.length) return 'ranks differ';
  for (let i = 0; i < a.shape.length; i++) {
    const x = a.shape[i]!;
    const y = b.shape[i]!;
    if (typeof x === 'number' && typeof y === 'number' && x !== y) return `dim ${i} differs`;
  }
  return undefined;
}

/** Records the values of small integer initializers / Constant outputs. */
export function recordConstantContents(v: Value, env: InferResult): void {
  const t = v.initializer;
  if (!t || t.dims.length > 1 || t.elementCount > MAX_CONTENT_ELEMENTS) return;
  if (t.storage.kind !== 'inline') return;
  if (t.dtype !== DataType.INT64 && t.dtype !== DataType.INT32) return;
  env.contents.set(v, t.toNumbers());
}

/** Are two dims provably equal? (re-exported for rules) */
export { sameDim };
