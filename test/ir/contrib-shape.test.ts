/** Shape rules of the onnxruntime contrib operators (com.microsoft) in optimized diffusion graphs. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Model } from '../../src/ir/model.js';
import { CONTRIB_RULES } from '../../src/ir/shape-inference/contrib-rules.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { RULES } from '../../src/ir/shape-inference/rules.js';
import { Tensor } from '../../src/ir/tensor.js';
import { type Dim, tensorType } from '../../src/ir/types.js';
import type { Value } from '../../src/ir/value.js';
import { REPO_ROOT } from '../helpers/paths.js';

const ms = { domain: 'com.microsoft' };
const ints = (value: number[]) => ({ type: 'ints' as const, value });
const int = (value: number) => ({ type: 'int' as const, value });

function setup() {
  const m = new Model();
  const g = m.graph;
  const input = (name: string, shape: Dim[], dt = DataType.FLOAT16) => g.addInput(name, tensorType(dt, shape));
  const weight = (name: string, dims: number[]) => g.addInitializer(name, Tensor.fromFloat32(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims, DataType.FLOAT16));
  const shapeOf = (v: Value) => {
    const t = runInference(m).types.get(v);
    return t?.kind === 'tensor' ? { dtype: t.dtype, shape: t.shape } : null;
  };
  return { g, input, weight, shapeOf };
}

describe('contrib shape rules', () => {
  it('NhwcConv: channels last, output channels from the [M, kH, kW, C] weight, strides and pads as Conv', () => {
    const { g, input, weight, shapeOf } = setup();
    const x = input('x', ['batch', 'height', 'width', 320]);
    const conv = (w: Value, k: number, s: number, p: number, src = x) =>
      g.op('NhwcConv', [src, w], { ...ms, attributes: { kernel_shape: ints([k, k]), strides: ints([s, s]), pads: ints([p, p, p, p]) } });
    expect(shapeOf(conv(weight('w1', [640, 3, 3, 320]), 3, 1, 1))).toEqual({ dtype: DataType.FLOAT16, shape: ['batch', 'height', 'width', 640] });
    expect(shapeOf(conv(weight('w2', [320, 3, 3, 320]), 3, 2, 1))).toEqual({ dtype: DataType.FLOAT16, shape: ['batch', 'floor((height-1)/2)+1', 'floor((width-1)/2)+1', 320] });
    const y = input('y', [2, 64, 48, 320]);
    expect(shapeOf(conv(weight('w3', [320, 3, 3, 320]), 3, 2, 1, y))?.shape).toEqual([2, 32, 24, 320]);
    // kernel from the weight when the attribute is absent
    expect(shapeOf(g.op('NhwcConv', [y, weight('w4', [8, 1, 1, 320])], ms))?.shape).toEqual([2, 64, 48, 8]);
  });

  it('NhwcConv gives the shape of Conv, channels moved last (one window arithmetic for both)', () => {
    const { g, input, weight, shapeOf } = setup();
    const nchw = input('nchw', ['batch', 320, 'height', 'width']);
    const nhwc = input('nhwc', ['batch', 'height', 'width', 320]);
    const cases: Record<string, { type: 'ints'; value: number[] } | { type: 'string'; value: string }>[] = [
      { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) },
      { strides: ints([2, 2]), auto_pad: { type: 'string', value: 'SAME_UPPER' } },
      { strides: ints([1, 2]), dilations: ints([2, 1]), auto_pad: { type: 'string', value: 'VALID' } },
      { strides: ints([3, 3]), pads: ints([0, 1, 2, 0]) },
    ];
    for (const [i, attributes] of cases.entries()) {
      const conv = shapeOf(g.op('Conv', [nchw, weight(`wc${i}`, [640, 320, 3, 3])], { attributes }))!.shape!;
      const nconv = shapeOf(g.op('NhwcConv', [nhwc, weight(`wn${i}`, [640, 3, 3, 320])], { ...ms, attributes }))!.shape!;
      expect(conv[1]).toBe(640);
      expect(nconv, JSON.stringify(attributes)).toEqual([conv[0], conv[2], conv[3], conv[1]]);
    }
    // SAME padding with stride 2 on a symbolic dim: ceil(h/2), as Conv says
    expect(shapeOf(g.op('NhwcConv', [nhwc, weight('ws', [8, 3, 3, 320])], { ...ms, attributes: cases[1]! }))!.shape).toEqual(['batch', 'ceil(height/2)', 'ceil(width/2)', 8]);
  });

  it('GroupNorm, SkipGroupNorm, BiasAdd keep the input type; BiasSplitGelu halves the last dim', () => {
    const { g, input, weight, shapeOf } = setup();
    const x = input('x', ['batch', 'height', 'width', 320]);
    const gamma = weight('gamma', [320]);
    expect(shapeOf(g.op('GroupNorm', [x, gamma, gamma], { ...ms, attributes: { groups: int(32), activation: int(1) } }))?.shape).toEqual(['batch', 'height', 'width', 320]);
    const sgn = g.addNode('SkipGroupNorm', [x, gamma, gamma, x], { ...ms, outputs: 2 });
    expect(shapeOf(sgn.outputs[1]!)).toEqual({ dtype: DataType.FLOAT16, shape: ['batch', 'height', 'width', 320] });
    const t = input('t', ['batch', 'height*width', 2560]);
    expect(shapeOf(g.op('BiasSplitGelu', [t, weight('b', [2560])], ms))?.shape).toEqual(['batch', 'height*width', 1280]);
    expect(shapeOf(g.op('BiasAdd', [t, weight('b2', [2560]), t], ms))?.shape).toEqual(['batch', 'height*width', 2560]);
  });

  it('SkipLayerNormalization: output and sum like the input, mean and inv_std_var [..., 1] in float', () => {
    const { g, input, weight, shapeOf } = setup();
    const t = input('t', ['batch', 'n', 320]);
    const n = g.addNode('SkipLayerNormalization', [t, t, weight('g', [320]), weight('b', [320])], { ...ms, outputs: 4 });
    expect(n.outputs.map(shapeOf)).toEqual([
      { dtype: DataType.FLOAT16, shape: ['batch', 'n', 320] },
      { dtype: DataType.FLOAT, shape: ['batch', 'n', 1] },
      { dtype: DataType.FLOAT, shape: ['batch', 'n', 1] },
      { dtype: DataType.FLOAT16, shape: ['batch', 'n', 320] },
    ]);
  });

  it('MultiHeadAttention (separate, packed QKV, 4-D value) and Attention with a packed weight and no bias', () => {
    const { g, input, weight, shapeOf } = setup();
    const q = input('q', ['batch', 'n', 320]);
    const kv = input('kv', ['batch', 77, 768]);
    const mha = (inputs: (Value | null)[]) => g.op('MultiHeadAttention', inputs, { ...ms, attributes: { num_heads: int(8) } });
    expect(shapeOf(mha([q, kv, input('v', ['batch', 77, 320])]))?.shape).toEqual(['batch', 'n', 320]);
    expect(shapeOf(mha([input('qkv', ['batch', 'n', 8, 3, 40])]))?.shape).toEqual(['batch', 'n', 320]);
    expect(shapeOf(mha([q, input('k4', ['batch', 8, 77, 40]), input('v4', ['batch', 8, 77, 40])]))?.shape).toEqual(['batch', 'n', 320]);
    const att = g.op('Attention', [q, weight('w', [320, 960])], { ...ms, attributes: { num_heads: int(8) } });
    expect(shapeOf(att)).toEqual({ dtype: DataType.FLOAT16, shape: ['batch', 'n', 320] });
    expect(shapeOf(kv)?.shape).toEqual(['batch', 77, 768]);
  });

  it('4-D value with another head size, and Attention with qkv_hidden_sizes: the output width is the value\'s', () => {
    const { g, input, weight, shapeOf } = setup();
    const q = input('q', ['batch', 'n', 320]);
    const mha = g.op('MultiHeadAttention', [q, input('k4', ['batch', 8, 77, 40]), input('v4', ['batch', 8, 77, 64])], { ...ms, attributes: { num_heads: int(8) } });
    expect(shapeOf(mha)?.shape).toEqual(['batch', 'n', 512]);
    const att = g.op('Attention', [q, weight('w', [320, 1280])], { ...ms, attributes: { num_heads: int(8), qkv_hidden_sizes: ints([320, 320, 640]) } });
    expect(shapeOf(att)?.shape).toEqual(['batch', 'n', 640]);
  });

  it('the com.microsoft rules are the ones of contrib-rules.ts, written nowhere else', () => {
    const contrib = Object.keys(RULES).filter((op) => op.startsWith('com.microsoft.'));
    expect(contrib.sort()).toEqual(Object.keys(CONTRIB_RULES).sort());
    for (const op of contrib) expect(RULES[op], op).toBe(CONTRIB_RULES[op]);
    const rulesSource = fs.readFileSync(path.join(REPO_ROOT, 'src/ir/shape-inference/rules.ts'), 'utf8');
    expect(rulesSource.match(/'com\.microsoft\.\w+'/g)).toBeNull();
  });
});
