/**
 * Shape rules quantized models need: onnxruntime's QOperator contrib ops
 * (QLinearAdd/Mul/Softmax/Sigmoid/Concat, QGemm …), com.microsoft
 * Quantize/DequantizeLinear, Expand with an unknown target, and the anonymous
 * `unk__N` dims onnx's shape inference writes into value_info.
 */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Model } from '../../src/ir/model.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { Tensor } from '../../src/ir/tensor.js';
import { type Dim, tensorType } from '../../src/ir/types.js';
import type { Value } from '../../src/ir/value.js';

const ms = { domain: 'com.microsoft' };

function setup() {
  const m = new Model();
  const g = m.graph;
  const input = (name: string, shape: Dim[], dt = DataType.UINT8) => g.addInput(name, tensorType(dt, shape));
  const scale = (name: string) => g.addInitializer(name, Tensor.fromFloat32([0.1], []));
  const zp = (name: string, dt: DataType = DataType.UINT8) =>
    g.addInitializer(name, new Tensor(dt, [], { kind: 'inline', bytes: new Uint8Array(dt === DataType.UINT16 || dt === DataType.INT16 ? 2 : 1), encoding: 'raw' }));
  const typeOf = (v: Value) => {
    const t = runInference(m).types.get(v);
    return t?.kind === 'tensor' ? { dtype: t.dtype, shape: t.shape } : null;
  };
  return { m, g, input, scale, zp, typeOf };
}

describe('shape rules of quantized ops', () => {
  it('QLinearAdd / QLinearMul broadcast their operands and take the output zero point type', () => {
    const { g, input, scale, zp, typeOf } = setup();
    const a = input('a', ['batch', 'tokens', 32]);
    const b = input('b', [32], DataType.UINT8);
    const s = scale('s');
    for (const op of ['QLinearAdd', 'QLinearMul']) {
      const y = g.op(op, [a, s, zp(`za_${op}`), b, s, zp(`zb_${op}`), s, zp(`zy_${op}`, DataType.INT8)], ms);
      expect(typeOf(y)).toEqual({ dtype: DataType.INT8, shape: ['batch', 'tokens', 32] });
    }
  });

  it('QLinearSoftmax / QLinearSigmoid keep the shape; QLinearConcat concatenates its (X, scale, zero point) triples', () => {
    const { g, input, scale, zp, typeOf } = setup();
    const x = input('x', ['batch', 4, 'n', 'n']);
    const s = scale('s');
    expect(typeOf(g.op('QLinearSoftmax', [x, s, zp('z1'), s, zp('z2')], { ...ms, attributes: { axis: { type: 'int', value: -1 } } }))).toEqual({ dtype: DataType.UINT8, shape: ['batch', 4, 'n', 'n'] });
    expect(typeOf(g.op('QLinearSigmoid', [x, s, zp('z3'), s, zp('z4')], ms))?.shape).toEqual(['batch', 4, 'n', 'n']);
    const y = input('y', ['batch', 6, 'n', 'n']);
    const cat = g.op('QLinearConcat', [s, zp('z5'), x, s, zp('z6'), y, s, zp('z7')], { ...ms, attributes: { axis: { type: 'int', value: 1 } } });
    expect(typeOf(cat)).toEqual({ dtype: DataType.UINT8, shape: ['batch', 10, 'n', 'n'] });
  });

  it('QGemm: [M, N] from transB, quantized with y_scale and float without it', () => {
    const { g, input, scale, zp, typeOf } = setup();
    const a = input('a', ['batch', 32]);
    const w = g.addInitializer('w', new Tensor(DataType.INT8, [64, 32], { kind: 'inline', bytes: new Uint8Array(64 * 32), encoding: 'raw' }));
    const s = scale('s');
    const attributes = { transB: { type: 'int' as const, value: 1 } };
    expect(typeOf(g.op('QGemm', [a, s, zp('z1'), w, s, zp('z2', DataType.INT8), null, s, zp('z3')], { ...ms, attributes }))).toEqual({ dtype: DataType.UINT8, shape: ['batch', 64] });
    expect(typeOf(g.op('QGemm', [a, s, zp('z4'), w, s, zp('z5', DataType.INT8)], { ...ms, attributes }))).toEqual({ dtype: DataType.FLOAT, shape: ['batch', 64] });
  });

  it('com.microsoft Quantize/DequantizeLinear (16 bit before opset 21) type as the ONNX ops', () => {
    const { g, input, scale, zp, typeOf } = setup();
    const x = input('x', ['batch', 'n', 32], DataType.FLOAT);
    const s = scale('s');
    const q = g.op('QuantizeLinear', [x, s, zp('z', DataType.UINT16)], ms);
    expect(typeOf(q)).toEqual({ dtype: DataType.UINT16, shape: ['batch', 'n', 32] });
    expect(typeOf(g.op('DequantizeLinear', [q, s, zp('z2', DataType.UINT16)], ms))).toEqual({ dtype: DataType.FLOAT, shape: ['batch', 'n', 32] });
  });

  it('Expand with a target of unknown values but known length: the rank, and the numeric dims other than 1', () => {
    const { g, input, typeOf } = setup();
    const t = input('timestep', ['batch'], DataType.FLOAT);
    const target = g.addInput('target', tensorType(DataType.INT64, [1]));
    expect(typeOf(g.op('Expand', [t, target]))?.shape).toEqual([null]);
    const x = input('x', [1, 'n', 4], DataType.FLOAT);
    const target3 = g.addInput('target3', tensorType(DataType.INT64, [4]));
    expect(typeOf(g.op('Expand', [x, target3]))?.shape).toEqual([null, null, null, 4]);
  });

  it("a declared anonymous dim (onnx's unk__N) gives way to what inference knows; a named one stays", () => {
    const { g, input, typeOf } = setup();
    const x = input('x', ['batch', 32, 8, 6], DataType.FLOAT);
    const shape = g.addInitializer('shape', Tensor.fromInt64([0, 32, 48]));
    const y = g.op('Reshape', [x, shape]);
    y.type = tensorType(DataType.FLOAT, ['unk__0', 'unk__1', 'tokens']);
    y.typeSource = 'declared';
    expect(typeOf(y)?.shape).toEqual(['batch', 32, 'tokens']);
  });
});
