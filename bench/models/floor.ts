/**
 * The floor of a converted UNet step: the converted model with every ΔConvBlock's
 * output replaced by zeros of its shape (ConstantOfShape(Shape(x))), the blocks'
 * nodes and weights removed, the graph otherwise the same — what the step costs
 * if every block were free, the best any block could do.
 */
import { createPassManager } from '../../src/convert.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { PyramidInput, isPyramidConvBlock } from '../../src/passes/delta-conv/op.js';

/** On a model converted with `emit: 'fused'`: replaces its blocks by zeros; returns how many. */
export function zeroBlocks(model: Model): number {
  const g = model.graph;
  const blocks = g.nodes.filter(isPyramidConvBlock);
  for (const node of blocks) {
    const x = node.inputs[PyramidInput.X]!;
    const dtype = node.inputs[PyramidInput.UpWeight]!.initializer!.dtype;
    const shape = g.op('Shape', [x], { name: `${node.name}/floor/shape` });
    const zeros = g.op('ConstantOfShape', [shape], { name: `${node.name}/floor/zeros`, attributes: { value: { type: 'tensor', value: Tensor.fromFloat32([0], [1], dtype) } } });
    node.outputs[0]!.replaceAllUsesWith(zeros);
    g.removeNode(node);
  }
  g.topologicalSort();
  createPassManager().run(model, ['dce', 'remove-unused-initializers']);
  model.opsetImports.delete('ai.deltac');
  return blocks.length;
}
