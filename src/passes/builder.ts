/**
 * A small helper for passes that emit many nodes: names them under a common
 * prefix and makes constants — initializers in a model's graph, `Constant` nodes in
 * a function body (which has no initializers).
 */
import type { Attribute } from '../ir/attribute.js';
import type { DataType } from '../ir/dtype.js';
import type { Graph } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { Value } from '../ir/value.js';

export type AttrInput = number | number[] | string | Attribute;

export interface GraphBuilderOptions {
  /** How constants are made: initializers (default) or `Constant` nodes (function bodies). */
  constants?: 'initializers' | 'nodes';
}

export class GraphBuilder {
  private count = 0;
  private readonly constantNodes: boolean;
  constructor(
    readonly graph: Graph,
    /** Names are `<prefix>/<label>` (just `<label>` when the prefix is ''). */
    readonly prefix: string,
    options: GraphBuilderOptions = {},
  ) {
    this.constantNodes = options.constants === 'nodes';
  }

  private named(label: string): string {
    return this.prefix ? `${this.prefix}/${label}` : label;
  }

  /** Adds a single-output node named `<prefix>/<label>`. */
  op(opType: string, inputs: (Value | null)[], attrs: Record<string, AttrInput> = {}, label = opType, domain = ''): Value {
    return this.graph.op(opType, inputs, { name: this.named(label), domain, attributes: toAttributes(attrs), output: `${this.named(label)}_output` });
  }

  /** Adds a node with several outputs. */
  multi(opType: string, inputs: (Value | null)[], outputs: number, attrs: Record<string, AttrInput> = {}, label = opType): Value[] {
    return this.graph.addNode(opType, inputs, { name: this.named(label), attributes: toAttributes(attrs), outputs: Array.from({ length: outputs }, (_, i) => `${this.named(label)}_output_${i}`) }).outputs;
  }

  int64(values: number[], dims: number[] = [values.length], label = 'const'): Value {
    return this.constant(`${label}_${this.count++}`, Tensor.fromInt64(values, dims));
  }

  /** A float constant of `dtype` (scalar when dims = []). */
  float(values: number[] | Float32Array, dims: number[], dtype: DataType, label = 'const'): Value {
    return this.constant(`${label}_${this.count++}`, Tensor.fromFloat32(values instanceof Float32Array ? values : Float32Array.from(values), dims, dtype));
  }

  tensor(t: Tensor, label: string): Value {
    return this.constant(label, t);
  }

  private constant(label: string, t: Tensor): Value {
    if (!this.constantNodes) return this.graph.addInitializer(this.named(label), t);
    return this.graph.op('Constant', [], { name: this.named(label), attributes: { value: { type: 'tensor', value: t } }, output: this.graph.uniqueName(this.named(label)) });
  }
}

export function toAttributes(attrs: Record<string, AttrInput>): Record<string, Attribute> {
  const out: Record<string, Attribute> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'number') out[k] = Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: Math.fround(v) };
    else if (typeof v === 'string') out[k] = { type: 'string', value: v };
    else if (Array.isArray(v)) out[k] = { type: 'ints', value: v };
    else out[k] = v;
  }
  return out;
}

