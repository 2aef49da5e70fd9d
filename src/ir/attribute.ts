/** Node attributes. Graph-valued attributes hold IR subgraphs; exotic kinds stay opaque. */
import type { Graph } from './graph.js';
import type { Tensor } from './tensor.js';

export type Attribute =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensors'; value: Tensor[] }
  | { type: 'graphs'; value: Graph[] }
  /** sparse tensors, type protos and ref_attr_name attributes: kept as their decoded AttributeProto. */
  | { type: 'opaque'; proto: unknown };

export type AttributeType = Attribute['type'];

/** Shorthand constructors used by passes. */
export const attr = {
  int: (value: number): Attribute => ({ type: 'int', value }),
  ints: (value: number[]): Attribute => ({ type: 'ints', value }),
  float: (value: number): Attribute => ({ type: 'float', value: Math.fround(value) }),
  floats: (value: number[]): Attribute => ({ type: 'floats', value: value.map(Math.fround) }),
  string: (value: string): Attribute => ({ type: 'string', value }),
  tensor: (value: Tensor): Attribute => ({ type: 'tensor', value }),
};
