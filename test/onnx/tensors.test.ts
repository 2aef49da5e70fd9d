/**
 * Tensor encodings through load → save: raw_data and the typed fields
 * (float_data, int32_data for f16/bf16/bool/int8, int64_data, double_data,
 * uint64_data), fp16/bf16/int64 initializers, empty and string tensors, tensor
 * attributes; and onnxruntime computing with typed-field weights.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import { float32ToBfloat16Bits, float32ToHalfBits } from '../../src/ir/half.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { OrtModel } from '../../src/runtime/onnxruntime.js';
import {
  BFLOAT16,
  DOUBLE,
  FLOAT,
  FLOAT16,
  INT32,
  INT64,
  UINT64,
  decodeFile,
  float32Bytes,
  valueInfo,
  writeModel,
} from '../helpers/onnx-proto.js';
import { makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-tensors-');
afterAll(tmp.cleanup);
let counter = 0;
const file = (name = 'm') => path.join(tmp.dir, `${name}-${++counter}.onnx`);

/** A model whose initializers are `inits` (one Identity per initializer keeps them used). */
function modelWith(inits: Record<string, unknown>[]): string {
  const f = file('typed');
  writeModel(f, {
    initializers: inits,
    nodes: inits.map((t) => ({ opType: 'Identity', input: [t.name], output: [`${t.name}_out`] })),
    outputs: inits.map((t) => ({ name: `${t.name}_out` })),
  });
  return f;
}

function init(path: string, name: string): Tensor {
  return loadModel(path).graph.initializers.get(name)!.initializer!;
}

function savedTensor(src: string, name: string): Record<string, unknown> {
  const m = loadModel(src);
  const out = file('saved');
  saveModel(m, out);
  return decodeFile(out).graph.initializer.find((t: { name: string }) => t.name === name);
}

describe('typed-field tensors', () => {
  it('float_data: reads as little-endian f32 and saves back as float_data', () => {
    const src = modelWith([{ name: 'f', dataType: FLOAT, dims: [2, 2], floatData: [1.5, -2, 0.1, 3e38] }]);
    const t = init(src, 'f');
    expect(t.storage).toMatchObject({ kind: 'inline', encoding: 'typed' });
    expect(Array.from(t.toFloat32())).toEqual([1.5, -2, Math.fround(0.1), Math.fround(3e38)]);
    const saved = savedTensor(src, 'f');
    expect(saved.rawData).toBeUndefined();
    expect(saved.floatData).toEqual([1.5, -2, Math.fround(0.1), Math.fround(3e38)]);
  });

  it('int64_data: exact at the int64 extremes', () => {
    const values = ['9223372036854775807', '-9223372036854775808', '0', '-1', '4611686018427387905'];
    const src = modelWith([{ name: 'i', dataType: INT64, dims: [5], int64Data: values }]);
    const t = init(src, 'i');
    const dv = new DataView(t.bytes().buffer, t.bytes().byteOffset, 40);
    expect([0, 1, 2, 3, 4].map((k) => dv.getBigInt64(k * 8, true).toString())).toEqual(values);
    expect(savedTensor(src, 'i').int64Data).toEqual(values);
  });

  it('int32_data holding f16 and bf16 bit patterns', () => {
    const halves = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7e00];
    const brains = [0x3f80, 0xc049, 0x7f80, 0x0001];
    const src = modelWith([
      { name: 'h', dataType: FLOAT16, dims: [2, 3], int32Data: halves },
      { name: 'b', dataType: BFLOAT16, dims: [4], int32Data: brains },
    ]);
    const h = init(src, 'h');
    expect(Array.from(new Uint16Array(h.bytes().slice().buffer))).toEqual(halves);
    expect(Array.from(h.toFloat32()).slice(0, 4)).toEqual([1, -2, 65504, 2 ** -24]);
    const b = init(src, 'b');
    expect(Array.from(new Uint16Array(b.bytes().slice().buffer))).toEqual(brains);
    expect(b.toFloat32()[1]).toBe(-3.140625);
    expect(savedTensor(src, 'h').int32Data).toEqual(halves);
    expect(savedTensor(src, 'b').int32Data).toEqual(brains);
  });

  it('int32_data for int32, int8, uint8 and bool', () => {
    const src = modelWith([
      { name: 'i32', dataType: INT32, dims: [3], int32Data: [-2147483648, 2147483647, 5] },
      { name: 'i8', dataType: 3, dims: [3], int32Data: [-128, 127, -5] },
      { name: 'u8', dataType: 2, dims: [2], int32Data: [255, 0] },
      { name: 'bool', dataType: 9, dims: [3], int32Data: [1, 0, 1] },
    ]);
    expect(init(src, 'i32').toNumbers()).toEqual([-2147483648, 2147483647, 5]);
    expect(init(src, 'i8').toNumbers()).toEqual([-128, 127, -5]);
    expect(init(src, 'u8').toNumbers()).toEqual([255, 0]);
    expect(init(src, 'bool').toNumbers()).toEqual([1, 0, 1]);
    expect(savedTensor(src, 'i32').int32Data).toEqual([-2147483648, 2147483647, 5]);
    expect(savedTensor(src, 'i8').int32Data).toEqual([-128, 127, -5]);
    expect(savedTensor(src, 'bool').int32Data).toEqual([1, 0, 1]);
  });

  it('double_data and uint64_data', () => {
    const src = modelWith([
      { name: 'd', dataType: DOUBLE, dims: [2], doubleData: [0.1, -1e300] },
      { name: 'u', dataType: UINT64, dims: [2], uint64Data: ['18446744073709551615', '1'] },
    ]);
    const d = init(src, 'd');
    const dv = new DataView(d.bytes().buffer, d.bytes().byteOffset, 16);
    expect([dv.getFloat64(0, true), dv.getFloat64(8, true)]).toEqual([0.1, -1e300]);
    const u = init(src, 'u');
    const uv = new DataView(u.bytes().buffer, u.bytes().byteOffset, 16);
    expect(uv.getBigUint64(0, true)).toBe(18446744073709551615n);
    expect(savedTensor(src, 'd').doubleData).toEqual([0.1, -1e300]);
    expect(savedTensor(src, 'u').uint64Data).toEqual(['18446744073709551615', '1']);
  });

  it('refuses typed data whose count disagrees with the shape', () => {
    const src = modelWith([{ name: 'bad', dataType: FLOAT, dims: [3], floatData: [1, 2] }]);
    expect(() => loadModel(src)).toThrow(expect.objectContaining({ code: 'DELTAC_E_TENSOR_DATA' }));
  });
});

describe('raw_data tensors', () => {
  it('fp16, bf16 and int64 raw_data round trip byte for byte', () => {
    const half = Buffer.from(new Uint16Array([0x3c00, 0x2e66, 0xfbff]).buffer);
    const brain = Buffer.from(new Uint16Array([float32ToBfloat16Bits(1.5), float32ToBfloat16Bits(-0.25)]).buffer);
    const longs = Buffer.from(new BigInt64Array([9223372036854775807n, -3n]).buffer);
    const src = modelWith([
      { name: 'h', dataType: FLOAT16, dims: [3], rawData: half },
      { name: 'b', dataType: BFLOAT16, dims: [2], rawData: brain },
      { name: 'l', dataType: INT64, dims: [2], rawData: longs },
    ]);
    const m = loadModel(src);
    expect(m.graph.initializers.get('h')!.initializer!.storage).toMatchObject({ kind: 'inline', encoding: 'raw' });
    expect(Array.from(m.graph.initializers.get('h')!.initializer!.toFloat32())).toEqual([1, 0.0999755859375, -65504]);
    expect(Array.from(m.graph.initializers.get('b')!.initializer!.toFloat32())).toEqual([1.5, -0.25]);
    expect(Buffer.from(savedTensor(src, 'h').rawData as Buffer).equals(half)).toBe(true);
    expect(Buffer.from(savedTensor(src, 'b').rawData as Buffer).equals(brain)).toBe(true);
    expect(Buffer.from(savedTensor(src, 'l').rawData as Buffer).equals(longs)).toBe(true);
  });

  it('refuses raw_data of the wrong length', () => {
    const src = modelWith([{ name: 'bad', dataType: FLOAT16, dims: [3], rawData: Buffer.alloc(4) }]);
    try {
      loadModel(src);
      expect.unreachable();
    } catch (e) {
      expect((e as DeltacError).code).toBe('DELTAC_E_TENSOR_DATA');
      expect((e as Error).message).toContain('should hold 6 bytes but has 4');
    }
  });

  it('keeps empty and scalar tensors and string tensors', () => {
    const src = modelWith([
      { name: 'empty', dataType: FLOAT, dims: [0, 4] },
      { name: 'scalar', dataType: INT64, dims: [], rawData: Buffer.from(new BigInt64Array([42n]).buffer) },
      { name: 'strs', dataType: 8, dims: [2], stringData: [Buffer.from('a'), Buffer.from('héllo')] },
    ]);
    const m = loadModel(src);
    expect(m.graph.initializers.get('empty')!.initializer!.byteLength).toBe(0);
    expect(m.graph.initializers.get('scalar')!.initializer!.toNumbers()).toEqual([42]);
    const out = file('saved');
    saveModel(m, out);
    const back = loadModel(out);
    expect(back.graph.initializers.get('empty')!.initializer!.dims).toEqual([0, 4]);
    expect(back.graph.initializers.get('scalar')!.initializer!.toNumbers()).toEqual([42]);
    const s = back.graph.initializers.get('strs')!.initializer!.storage;
    expect(s.kind === 'strings' && s.values.map((v) => Buffer.from(v).toString('utf8'))).toEqual(['a', 'héllo']);
    // the saver reproduces the file exactly
    expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(src))).toBe(0);
  });
});

describe('onnxruntime with typed-field weights', () => {
  it('computes with f16 int32_data and int64_data initializers, before and after saving', async () => {
    const scale = [0.5, 2, -1, 0.25, 3, 1].map(float32ToHalfBits);
    const src = file('ort');
    writeModel(src, {
      initializers: [
        { name: 'scale', dataType: FLOAT16, dims: [6], int32Data: scale },
        { name: 'shape', dataType: INT64, dims: [2], int64Data: ['2', '3'] },
        { name: 'bias', dataType: FLOAT, dims: [1], floatData: [10] },
      ],
      nodes: [
        { opType: 'Cast', input: ['x'], output: ['xh'], attribute: [{ name: 'to', type: 2, i: FLOAT16 }] },
        { opType: 'Mul', input: ['xh', 'scale'], output: ['p'] },
        { opType: 'Cast', input: ['p'], output: ['pf'], attribute: [{ name: 'to', type: 2, i: FLOAT }] },
        { opType: 'Add', input: ['pf', 'bias'], output: ['q'] },
        { opType: 'Reshape', input: ['q', 'shape'], output: ['y'] },
      ],
      inputs: [valueInfo('x', FLOAT, [6])],
      outputs: [valueInfo('y', FLOAT, [2, 3])],
    });
    const out = file('ort-saved');
    saveModel(loadModel(src), out);
    const x = { dtype: 'float32' as const, shape: [6], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
    const expected = [10.5, 14, 7, 11, 25, 16];
    for (const f of [src, out]) {
      const session = await OrtModel.load(f);
      const y = (await session.run({ x })).y!;
      await session.release();
      expect(y.dims).toEqual([2, 3]);
      expect(Array.from(y.data)).toEqual(expected);
    }
    expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(src))).toBe(0);
  });
});

describe('tensor attributes', () => {
  it('Constant value tensors keep their encoding and bytes', () => {
    const src = file('const');
    writeModel(src, {
      nodes: [
        { opType: 'Constant', output: ['c1'], attribute: [{ name: 'value', type: 4, t: { dataType: INT64, dims: [2], int64Data: ['1', '-1'] } }] },
        { opType: 'Constant', output: ['c2'], attribute: [{ name: 'value', type: 4, t: { dataType: FLOAT, dims: [2], rawData: float32Bytes([0.5, 4]) } }] },
        { opType: 'Add', input: ['c2', 'c2'], output: ['y'] },
        { opType: 'Identity', input: ['c1'], output: ['z'] },
      ],
      outputs: [{ name: 'y' }, { name: 'z' }],
    });
    const m = loadModel(src);
    const c1 = m.graph.lookup('c1')!.producer!.getTensor('value')!;
    expect(c1.toNumbers()).toEqual([1, -1]);
    expect(c1.storage).toMatchObject({ encoding: 'typed' });
    const c2 = m.graph.lookup('c2')!.producer!.getTensor('value')!;
    expect(Array.from(c2.toFloat32())).toEqual([0.5, 4]);
    const out = file('const-saved');
    saveModel(m, out);
    expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(src))).toBe(0);
    expect(DataType[c1.dtype]).toBe('INT64');
  });
});
