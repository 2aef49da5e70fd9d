/**
 * Constant folding of shape arithmetic: integer nodes whose inputs are all
 * constants (initializers or Constant nodes) — Shape math like Concat, Gather,
 * Unsqueeze, Squeeze, Cast, Slice, Add/Sub/Mul/Div, Reshape — become initializers.
 * Shapes of run-time tensors are never folded, so symbolic dims stay symbolic
 * (SPEC.md §4: PixArt's `If` fails to load when token counts turn static).
 */
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node } from '../../ir/node.js';
import { runInference } from '../../ir/shape-inference/infer.js';
import { Tensor } from '../../ir/tensor.js';
import type { Value } from '../../ir/value.js';
import type { Pass } from '../pass-manager.js';

const FOLDABLE = new Set(['Concat', 'Gather', 'Unsqueeze', 'Squeeze', 'Cast', 'Slice', 'Add', 'Sub', 'Mul', 'Div', 'Reshape', 'Identity']);

function isConstant(v: Value | null): boolean {
  return !v || v.initializer !== null || v.producer?.opType === 'Constant';
}

export const foldConstantsPass: Pass = {
  name: 'fold-constants',
  description: 'fold integer shape arithmetic on constants into initializers',
  run(model: Model) {
    const env = runInference(model);
    let folded = 0;
    for (const node of [...model.graph.nodes]) {
      if (!FOLDABLE.has(node.opType) || node.domain !== '' || node.outputs.length !== 1) continue;
      if (!node.inputs.every(isConstant)) continue;
      const out = node.outputs[0]!;
      const t = env.types.get(out);
      const contents = env.contents.get(out);
      if (!t || t.kind !== 'tensor' || !t.shape || !contents) continue;
      if (t.dtype !== DataType.INT64 || !contents.every((d): d is number => typeof d === 'number')) continue;
      const dims = t.shape as number[];
      if (dims.some((d) => typeof d !== 'number') || dims.reduce((a, b) => a * b, 1) !== contents.length) continue;
      const init = model.graph.addInitializer(`${out.name}_folded`, Tensor.fromInt64(contents as number[], dims));
      env.contents.set(init, contents);
      env.types.set(init, t);
      out.replaceAllUsesWith(init);
      folded++;
      removeIfDead(node);
    }
    return { changed: folded > 0, diagnostics: [], stats: { folded } };
  },
};

function removeIfDead(node: Node): void {
  if (node.outputs.every((o) => !o.uses.length && !o.isGraphOutput)) node.graph.removeNode(node);
}
