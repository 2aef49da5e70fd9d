/**
 * Unknown, unnamed dims (`dim {}`) stay unknown: through load → save, and through a
 * whole `deltac convert`; onnxruntime then runs the result with more than one batch
 * size. (They used to be saved as `dim_value: 0`, and onnxruntime rejected every input.)
 * Dim and type denotations are kept as well.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel, loadModel } from '../../src/onnx/load.js';
import { saveModel, serializeModel } from '../../src/onnx/save.js';
import { type NpyArray, readNpy } from '../../src/runtime/npy.js';
import { OrtModel, compareArrays } from '../../src/runtime/onnxruntime.js';
import { runCli } from '../helpers/cli.js';
import { FLOAT, type ProtoObject, decodeFile, encodeModel, modelProto } from '../helpers/onnx-proto.js';
import { makeTempDir, modelPath } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-unknown-dims-');
afterAll(tmp.cleanup);

/** A Relu over x: f32[dims], written with raw Dimension messages. */
function reluModel(dims: ProtoObject[], typeExtra: ProtoObject = {}): Uint8Array {
  const type = { tensorType: { elemType: FLOAT, shape: { dim: dims } }, ...typeExtra };
  return encodeModel(
    modelProto({
      nodes: [{ opType: 'Relu', input: ['x'], output: ['y'] }],
      inputs: [{ name: 'x', type }],
      outputs: [{ name: 'y', type }],
    }),
  );
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const dimsOf = (proto: ProtoObject, which: 'input' | 'output', i = 0): ProtoObject[] => (proto as any).graph[which][i].type.tensorType.shape.dim;

/** The first `n` items of an array along dim 0. */
function firstItems(a: NpyArray, n: number): NpyArray {
  const per = a.data.length / a.shape[0]!;
  return { dtype: a.dtype, shape: [n, ...a.shape.slice(1)], data: a.data.slice(0, n * per) as NpyArray['data'] };
}

describe('unknown unnamed dims', () => {
  it('load → save keeps `dim {}` as `dim {}`, next to a dim_value 0 and a dim_param', () => {
    const bytes = reluModel([{}, { dimValue: 0 }, { dimParam: 'n' }]);
    const { model } = decodeModel(bytes, tmp.dir);
    expect(model.graph.inputs[0]!.type).toMatchObject({ shape: [null, 0, 'n'] });
    const file = path.join(tmp.dir, 'dims.onnx');
    saveModel(model, file);
    const saved = decodeFile(file);
    expect(dimsOf(saved, 'input')).toEqual([{}, { dimValue: '0' }, { dimParam: 'n' }]);
    expect(dimsOf(saved, 'output')).toEqual([{}, { dimValue: '0' }, { dimParam: 'n' }]);
  });

  it('keeps dim denotations (also on a `dim {}`) and the type denotation', () => {
    const bytes = reluModel([{ denotation: 'DATA_BATCH' }, { dimValue: 3, denotation: 'DATA_CHANNEL' }], { denotation: 'TENSOR' });
    const saved = decodeModel(serializeModel(decodeModel(bytes, tmp.dir).model), tmp.dir).model;
    const file = path.join(tmp.dir, 'denoted.onnx');
    saveModel(saved, file);
    const proto = decodeFile(file);
    expect(dimsOf(proto, 'input')).toEqual([{ denotation: 'DATA_BATCH' }, { dimValue: '3', denotation: 'DATA_CHANNEL' }]);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    expect((proto as any).graph.input[0].type.denotation).toBe('TENSOR');
  });

  it('onnxruntime runs the saved model with a batch of 2 (and of 5)', async () => {
    const { model } = decodeModel(reluModel([{}, { dimValue: 3 }]), tmp.dir);
    const file = path.join(tmp.dir, 'relu.onnx');
    saveModel(model, file);
    const session = await OrtModel.load(file);
    try {
      for (const batch of [2, 5]) {
        const x = Float32Array.from({ length: batch * 3 }, (_, i) => i - 4);
        const out = await session.run({ x: { dtype: 'float32', shape: [batch, 3], data: x } });
        expect(out.y!.dims).toEqual([batch, 3]);
        expect([...out.y!.data]).toEqual([...x].map((v) => Math.max(v, 0)));
      }
    } finally {
      await session.release();
    }
  });

  it('survive `deltac convert`: the converted PixArt runs with batch 1 and 2 and matches PyTorch', async () => {
    const dir = path.join(tmp.dir, 'pixart');
    fs.mkdirSync(dir);
    const fixture = modelPath('pixart-mini');
    const model = loadModel(fixture);
    // Rewrite the symbolic batch dim of every input and output to an unnamed unknown dim.
    for (const v of [...model.graph.inputs, ...model.graph.outputs]) {
      if (v.type?.kind === 'tensor' && v.type.shape?.[0] === 'batch') v.type = { ...v.type, shape: [null, ...v.type.shape.slice(1)] };
    }
    const input = path.join(dir, 'model.onnx');
    saveModel(model, input);
    expect(dimsOf(decodeFile(input), 'input')[0]).toEqual({});

    const output = path.join(dir, 'model.delta.onnx');
    const r = await runCli('convert', input, '--weights', modelPath('pixart-mini', 'delta.safetensors'), '-o', output);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const converted = decodeFile(output);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const graph = (converted as any).graph;
    for (const name of ['hidden_states', 'encoder_hidden_states', 'timestep']) {
      const i = graph.input.findIndex((v: ProtoObject) => v.name === name);
      expect(dimsOf(converted, 'input', i)[0], name).toEqual({});
    }
    expect(dimsOf(converted, 'output')[0]).toEqual({});

    const feeds = {
      hidden_states: readNpy(modelPath('pixart-mini', 'in0.hidden_states.npy')),
      encoder_hidden_states: readNpy(modelPath('pixart-mini', 'in0.encoder_hidden_states.npy')),
      timestep: readNpy(modelPath('pixart-mini', 'in0.timestep.npy')),
    };
    const reference = readNpy(modelPath('pixart-mini', 'out0.delta.npy'));
    expect(reference.shape[0]).toBe(2);
    const session = await OrtModel.load(output);
    try {
      for (const batch of [1, 2]) {
        const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, a]) => [k, firstItems(a, batch)])));
        const result = Object.values(out)[0]!;
        const expected = firstItems(reference, batch);
        expect(result.dims).toEqual(expected.shape);
        const { rel } = compareArrays(result.data, expected.data as Float32Array);
        expect(rel, `batch ${batch}`).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      await session.release();
    }
  });
});
