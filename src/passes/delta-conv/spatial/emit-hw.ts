/** The int64 [H, W] value a ΔConvBlock reads: a constant when static, else Shape(tensor, start, end). */
import type { Graph } from '../../../ir/graph.js';
import { Tensor } from '../../../ir/tensor.js';
import type { Value } from '../../../ir/value.js';
import type { SpatialSource } from './source.js';

export function emitHW(graph: Graph, source: SpatialSource, opset: number, name: string): Value {
  if (source.static) return graph.addInitializer(`${name}.hw`, Tensor.fromInt64(source.static));
  if (opset >= 15) {
    return graph.op('Shape', [source.tensor], {
      name: `${name}/hw`,
      attributes: { start: { type: 'int', value: source.hAxis }, end: { type: 'int', value: source.wAxis + 1 } },
    });
  }
  const shape = graph.op('Shape', [source.tensor], { name: `${name}/shape` });
  return graph.op(
    'Slice',
    [
      shape,
      graph.addInitializer(`${name}.hw_start`, Tensor.fromInt64([source.hAxis])),
      graph.addInitializer(`${name}.hw_end`, Tensor.fromInt64([source.wAxis + 1])),
    ],
    { name: `${name}/hw` },
  );
}
