/** Several attention cores summed before one to_out form one module; it is self-attention only if all read its one input. */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import type { Value } from '../../src/ir/value.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';

const C = 8;

function model(twoInputs: boolean) {
  const m = new Model();
  m.opsetImports.set('', 17);
  const g = m.graph;
  const x = g.addInput('x', tensorType(DataType.FLOAT, [2, 6, C]));
  const y = twoInputs ? g.addInput('y', tensorType(DataType.FLOAT, [2, 6, C])) : x;
  let k = 0;
  const w = () => g.addInitializer(`w${k++}`, Tensor.fromFloat32(new Float32Array(C * C).fill(0.1), [C, C]));
  const core = (src: Value) => {
    const [q, kk, v] = [0, 1, 2].map(() => g.op('MatMul', [src, w()]));
    const scores = g.op('MatMul', [q!, g.op('Transpose', [kk!], { attributes: { perm: { type: 'ints', value: [0, 2, 1] } } })]);
    return g.op('MatMul', [g.op('Softmax', [scores], { attributes: { axis: { type: 'int', value: -1 } } }), v!]);
  };
  const out = g.op('MatMul', [g.op('Add', [core(x), core(y)]), w()]);
  g.addOutput(out);
  return m;
}

describe('attention cores sharing one to_out', () => {
  it('are one self-attention module when every core attends over the same input', () => {
    const found = findAttention(model(false));
    expect(found.matches.map((m) => [m.kind, m.input.name, m.nodes.filter((n) => n.opType === 'Softmax').length])).toEqual([['self', 'x', 2]]);
  });

  it('are not self-attention when the cores read different inputs (replacing the module would drop one)', () => {
    const found = findAttention(model(true));
    expect(found.matches.map((m) => [m.kind, m.input.name, m.kvSource.name])).toEqual([['cross', 'x', 'y']]);
  });
});
