/**
 * Model-local functions (ONNX `FunctionProto`): an operator the model defines itself, by
 * a body of nodes. A node calls a function when its (domain, op type, overload) equal the
 * function's (domain, name, overload); a runtime without a kernel for the operator runs
 * the body in its place.
 *
 * The body is a root graph of its own: its names are its own, its inputs and outputs
 * are the function's formal parameters (typed only where the function's value_info says
 * so), and it has no initializers (constants are `Constant` nodes). Attributes are
 * declared by name, with or without a default; a body node reads one through a `ref`
 * attribute.
 */
import type { Attribute } from './attribute.js';
import { Graph } from './graph.js';
import type { Node } from './node.js';
import type { Value } from './value.js';

export interface FunctionAttribute {
  name: string;
  /** The value when a call does not set it (saved in `attribute_proto`; names without one in `attribute`). */
  default?: Attribute;
}

export class LocalFunction {
  domain: string;
  name: string;
  overload: string;
  /** The definition: inputs and outputs are the function's parameters, in order. */
  readonly body: Graph;
  attributes: FunctionAttribute[] = [];
  /** The opsets the body's nodes use, in file order. */
  readonly opsetImports = new Map<string, number>();
  docString = '';
  metadataProps: [string, string][] = [];
  /** Body values listed in the function's value_info, in file order (their types, docs and metadata are on the values). */
  valueInfo: Value[] = [];

  constructor(domain: string, name: string, overload = '') {
    this.domain = domain;
    this.name = name;
    this.overload = overload;
    this.body = new Graph(name);
  }

  get inputs(): Value[] {
    return this.body.inputs;
  }

  get outputs(): Value[] {
    return this.body.outputs;
  }

  /** `domain.name` (and `:overload`), as messages and the textual IR name it. */
  get label(): string {
    return functionLabel(this.domain, this.name, this.overload);
  }

  /** The ai.onnx opset the body imports (undefined when it imports none). */
  opset(domain = ''): number | undefined {
    return this.opsetImports.get(domain) ?? (domain === '' ? this.opsetImports.get('ai.onnx') : undefined);
  }

  attribute(name: string): FunctionAttribute | undefined {
    return this.attributes.find((a) => a.name === name);
  }
}

/** The key under which a function is found: '' and 'ai.onnx' are the same domain. */
export function functionKey(domain: string, name: string, overload: string): string {
  return JSON.stringify([domain === 'ai.onnx' ? '' : domain, name, overload]);
}

export function functionLabel(domain: string, name: string, overload: string): string {
  return `${domain && domain !== 'ai.onnx' ? `${domain}.` : ''}${name}${overload ? `:${overload}` : ''}`;
}

/** The model's functions by key; the first of two with the same key wins (verify reports the second). */
export function indexFunctions(functions: readonly LocalFunction[]): Map<string, LocalFunction> {
  const index = new Map<string, LocalFunction>();
  for (const f of functions) {
    const key = functionKey(f.domain, f.name, f.overload);
    if (!index.has(key)) index.set(key, f);
  }
  return index;
}

/** The function `node` calls, looked up in an index from `indexFunctions`. */
export function calledFunction(index: Map<string, LocalFunction>, node: Node): LocalFunction | undefined {
  return index.size ? index.get(functionKey(node.domain, node.opType, node.overload)) : undefined;
}

/**
 * The value a body node's `ref` attribute takes in a call: the call's attribute, else the
 * function's default, else none (the body node then has no such attribute).
 */
export function resolveRef(fn: LocalFunction, call: Node, ref: string): Attribute | undefined {
  return call.attributes.get(ref) ?? fn.attribute(ref)?.default;
}
