/**
 * Node attributes. Graph-valued attributes hold IR subgraphs; a node in a function body
 * may refer to an attribute of its function (`ref`); exotic kinds stay opaque.
 */
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
  /**
   * Inside a function body: the value of the calling node's attribute `ref` (or the
   * function's default for it); `of` is its ONNX attribute type (`int`, `floats`, …).
   */
  | { type: 'ref'; ref: string; of: RefAttributeType }
  /** sparse tensors and type protos: kept as their decoded AttributeProto. */
  | { type: 'opaque'; proto: unknown };

export type AttributeType = Attribute['type'];

/** ONNX's AttributeProto.AttributeType in file order: the index is the number in the file. */
export const ONNX_ATTRIBUTE_TYPES = [
  'undefined', 'float', 'int', 'string', 'tensor', 'graph', 'floats', 'ints', 'strings', 'tensors', 'graphs',
  'sparse_tensor', 'sparse_tensors', 'type_proto', 'type_protos',
] as const;

export type RefAttributeType = (typeof ONNX_ATTRIBUTE_TYPES)[number];

/** Shorthand constructors used by passes. */
export const attr = {
  int: (value: number): Attribute => ({ type: 'int', value }),
  ints: (value: number[]): Attribute => ({ type: 'ints', value }),
  float: (value: number): Attribute => ({ type: 'float', value: Math.fround(value) }),
  floats: (value: number[]): Attribute => ({ type: 'floats', value: value.map(Math.fround) }),
  string: (value: string): Attribute => ({ type: 'string', value }),
  tensor: (value: Tensor): Attribute => ({ type: 'tensor', value }),
};
