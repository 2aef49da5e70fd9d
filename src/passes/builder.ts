/**
 * A small helper for passes that emit many nodes: names them under a common
 * prefix and makes constants.
 */
import type { Attribute } from '../ir/attribute.js';
import type { DataType } from '../ir/dtype.js';
import type { Graph } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { Value } from '../ir/value.js';

export type AttrInput = number | number[] | string | Attribute;

export class GraphBuilder {
  private count = 0;
  constructor(
    readonly graph: Graph,
    readonly prefix: string,
  ) {}

  /** Adds a single-output node named `<prefix>/<label>`. */
  op(opType: string, inputs: (Value | null)[], attrs: Record<string, AttrInput> = {}, label = opType, domain = ''): Value {
    return this.graph.op(opType, inputs, { name: `${this.prefix}/${label}`, domain, attributes: toAttributes(attrs), output: `${this.prefix}/${label}_output` });
  }

  /** Adds a node with several outputs. */
  multi(opType: string, inputs: (Value | null)[], outputs: number, attrs: Record<string, AttrInput> = {}, label = opType): Value[] {
    return this.graph.addNode(opType, inputs, { name: `${this.prefix}/${label}`, attributes: toAttributes(attrs), outputs: Array.from({ length: outputs }, (_, i) => `${this.prefix}/${label}_output_${i}`) }).outputs;
  }

  int64(values: number[], dims: number[] = [values.length], label = 'const'): Value {
    return this.graph.addInitializer(`${this.prefix}/${label}_${this.count++}`, Tensor.fromInt64(values, dims));
  }

  /** A float constant of `dtype` (scalar when dims = []). */
  float(values: number[] | Float32Array, dims: number[], dtype: DataType, label = 'const'): Value {
    return this.graph.addInitializer(`${this.prefix}/${label}_${this.count++}`, Tensor.fromFloat32(values instanceof Float32Array ? values : Float32Array.from(values), dims, dtype));
  }

  tensor(t: Tensor, label: string): Value {
    return this.graph.addInitializer(`${this.prefix}/${label}`, t);
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

