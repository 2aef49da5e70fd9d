/**
 * Saving: models built with the IR (inline and external data), layout options,
 * atomic writes, protection of the input model, fields the IR does not model,
 * the 2 GB decision, and the loader's refusals (IR version, non-ONNX files).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import { Model } from '../../src/ir/model.js';
import { type ByteSource, Tensor } from '../../src/ir/tensor.js';
import { parseModel } from '../../src/ir/text/build.js';
import { printModel } from '../../src/ir/text/printer.js';
import { tensorType } from '../../src/ir/types.js';
import { decodeModel, loadModel } from '../../src/onnx/load.js';
import { saveModel, serializeModel } from '../../src/onnx/save.js';
import { OrtModel } from '../../src/runtime/onnxruntime.js';
import { FLOAT, decodeFile, encodeModel, modelProto, valueInfo, writeModel } from '../helpers/onnx-proto.js';
import { listDir, makeTempDir, modelPath } from '../helpers/paths.js';
import { codeOf } from '../helpers/cli.js';

const tmp = makeTempDir('deltac-save-');
afterAll(tmp.cleanup);
const freshDir = tmp.fresh;


/** y = (x · W1 + b) · W2 with W1 [64,256] f32 (64 KiB), W2 [256,8] f16 (4 KiB), b [256] f32 (1 KiB), k [4] i64 (32 B). */
function buildModel(): Model {
  const model = new Model();
  model.opsetImports.set('', 17);
  const g = model.graph;
  const rand = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.1);
  const x = g.addInput('x', tensorType(DataType.FLOAT, ['batch', 64]));
  const w1 = g.addInitializer('w1', Tensor.fromFloat32(rand(64 * 256, 1), [64, 256]));
  const b = g.addInitializer('b', Tensor.fromFloat32(rand(256, 2), [256]));
  const w2 = g.addInitializer('w2', Tensor.fromFloat32(rand(256 * 8, 3), [256, 8], DataType.FLOAT16));
  const shape = g.addInitializer('k', Tensor.fromInt64([0, 2, 2, 2]));
  const h = g.op('Add', [g.op('MatMul', [x, w1]), b]);
  const h16 = g.op('Cast', [h], { attributes: { to: { type: 'int', value: DataType.FLOAT16 } } });
  const y16 = g.op('MatMul', [h16, w2]);
  const y = g.op('Cast', [y16], { attributes: { to: { type: 'int', value: DataType.FLOAT } } });
  const out = g.op('Reshape', [y, shape], { output: 'y' });
  out.type = tensorType(DataType.FLOAT, ['batch', 2, 2, 2]);
  out.typeSource = 'declared';
  g.addOutput(out);
  return model;
}

async function run(file: string): Promise<Float32Array> {
  const session = await OrtModel.load(file);
  const data = new Float32Array(2 * 64).map((_, i) => (i % 7) / 7 - 0.5);
  const y = (await session.run({ x: { dtype: 'float32', shape: [2, 64], data } })).y!;
  await session.release();
  expect(y.dims).toEqual([2, 2, 2, 2]);
  return y.data;
}

/** external_data entries of every initializer in a saved file. */
function layout(file: string): Record<string, { location: string; offset: number; length: number } | 'inline'> {
  const out: Record<string, { location: string; offset: number; length: number } | 'inline'> = {};
  for (const t of decodeFile(file).graph.initializer) {
    if (!t.externalData) out[t.name] = 'inline';
    else {
      const kv = Object.fromEntries(t.externalData.map((e: { key: string; value: string }) => [e.key, e.value]));
      out[t.name] = { location: kv.location, offset: Number(kv.offset), length: Number(kv.length) };
    }
  }
  return out;
}

describe('saving a model built with the IR', () => {
  it('inline (externalData false): one file that onnxruntime runs', async () => {
    const dir = freshDir();
    const r = saveModel(buildModel(), path.join(dir, 'inline.onnx'), { externalData: false });
    expect(r).toMatchObject({ externalDataBytes: 0, externalTensors: 0, inlineTensors: 4, externalDataPath: undefined });
    expect(listDir(dir)).toEqual(['inline.onnx']);
    expect(Object.values(layout(path.join(dir, 'inline.onnx')))).toEqual(['inline', 'inline', 'inline', 'inline']);
    const y = await run(path.join(dir, 'inline.onnx'));
    expect(y.every(Number.isFinite)).toBe(true);
    expect(new Set(y).size).toBeGreaterThan(1);
  });

  it('external (externalData true): tensors ≥ sizeThreshold in one aligned file, same outputs', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'ext.onnx');
    const progress: [number, number][] = [];
    const r = saveModel(buildModel(), file, { externalData: true, alignThreshold: 4096, onProgress: (d, t) => progress.push([d, t]) });
    expect(listDir(dir)).toEqual(['ext.onnx', 'ext.onnx.data']);
    // w1 (65536 B, ≥ alignThreshold → 4 KiB boundary), b (1024 B, 64-byte boundary), w2 (4096 B, 4 KiB boundary); k (32 B) stays inline
    expect(layout(file)).toEqual({
      w1: { location: 'ext.onnx.data', offset: 0, length: 65536 },
      b: { location: 'ext.onnx.data', offset: 65536, length: 1024 },
      w2: { location: 'ext.onnx.data', offset: 69632, length: 4096 },
      k: 'inline',
    });
    expect(r).toMatchObject({ externalTensors: 3, inlineTensors: 1, externalDataBytes: 73728 });
    expect(fs.statSync(path.join(dir, 'ext.onnx.data')).size).toBe(73728);
    expect(progress.at(-1)).toEqual([73728, 73728]);
    expect(progress.map((p) => p[0])).toEqual([...progress.map((p) => p[0])].sort((a, b) => a - b));

    const inlineFile = path.join(freshDir(), 'inline.onnx');
    saveModel(buildModel(), inlineFile, { externalData: false });
    expect(Array.from(await run(file))).toEqual(Array.from(await run(inlineFile)));
    // and the IR reads back the same bytes
    const back = loadModel(file);
    expect(Buffer.from(back.graph.initializers.get('w2')!.initializer!.bytes()).equals(Buffer.from(buildModel().graph.initializers.get('w2')!.initializer!.bytes()))).toBe(true);
  });

  it('honours sizeThreshold, the default alignment threshold and externalDataName', () => {
    const dir = freshDir();
    const file = path.join(dir, 'm.onnx');
    saveModel(buildModel(), file, { externalData: true, sizeThreshold: 2048, externalDataName: 'weights.bin' });
    expect(listDir(dir)).toEqual(['m.onnx', 'weights.bin']);
    expect(layout(file)).toEqual({
      w1: { location: 'weights.bin', offset: 0, length: 65536 },
      b: 'inline',
      w2: { location: 'weights.bin', offset: 65536, length: 4096 }, // below 1 MiB: 64-byte alignment
      k: 'inline',
    });
  });

  it("'auto' keeps a small all-inline model inline", () => {
    const dir = freshDir();
    const r = saveModel(buildModel(), path.join(dir, 'auto.onnx'));
    expect(r.externalDataPath).toBeUndefined();
    expect(listDir(dir)).toEqual(['auto.onnx']);
  });

  it('serializeModel gives the bytes saveModel writes inline', () => {
    const dir = freshDir();
    saveModel(buildModel(), path.join(dir, 'a.onnx'), { externalData: false });
    expect(Buffer.from(serializeModel(buildModel())).equals(fs.readFileSync(path.join(dir, 'a.onnx')))).toBe(true);
  });

  it('refuses data file names that are paths, and missing output folders', () => {
    for (const name of ['../x.data', 'sub/x.data', '..', '.']) {
      expect(codeOf(() => saveModel(buildModel(), path.join(freshDir(), 'm.onnx'), { externalData: true, externalDataName: name }))).toMatch(
        /^DELTAC_E_BAD_OPTION/,
      );
    }
    expect(codeOf(() => saveModel(buildModel(), path.join(tmp.dir, 'no/such/dir/m.onnx')))).toMatch(/^DELTAC_E_WRITE: .*does not exist/);
  });

  it('refuses elided tensors (from the textual IR) and leaves nothing behind', () => {
    const m = parseModel(`graph @g(%x: f32[4]) -> (%y: f32[4]) {
      @w: f32[4] = tensor<f32[4]> elided("sha256:0")
      %y = Add(%x, @w)
    }`);
    const dir = freshDir();
    expect(codeOf(() => saveModel(m, path.join(dir, 'm.onnx')))).toMatch(/^DELTAC_E_TENSOR_DATA: .*elided/);
    expect(listDir(dir)).toEqual([]);
  });
});

describe('atomic saves', () => {
  /** A tensor whose bytes come from a source that fails when read. */
  function failingTensor(error: Error, dims = [1024]): Tensor {
    const source: ByteSource = {
      description: 'failing.bin',
      size: () => dims.reduce((a, b) => a * b, 4),
      read: () => {
        throw error;
      },
    };
    const length = dims.reduce((a, b) => a * b, 4);
    return new Tensor(DataType.FLOAT, dims, { kind: 'external', source, location: 'failing.bin', offset: 0, length, extraEntries: [] });
  }

  for (const externalData of [true, false]) {
    it(`leaves no output and no temp files when a tensor fails mid-save (externalData ${externalData})`, () => {
      const m = buildModel();
      m.graph.addInitializer('late', failingTensor(new DeltacError('DELTAC_E_EXTERNAL_MISSING', 'sentinel: the source vanished')));
      const dir = freshDir();
      expect(codeOf(() => saveModel(m, path.join(dir, 'm.onnx'), { externalData }))).toBe(
        'DELTAC_E_EXTERNAL_MISSING: sentinel: the source vanished',
      );
      expect(listDir(dir)).toEqual([]);
    });
  }

  it('keeps an existing output intact when the save fails, and wraps non-deltac errors as DELTAC_E_WRITE', () => {
    const dir = freshDir();
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, 'previous model');
    fs.writeFileSync(`${file}.data`, 'previous data');
    const m = buildModel();
    m.graph.addInitializer('late', failingTensor(new Error('EIO: disk on fire')));
    const got = codeOf(() => saveModel(m, file, { externalData: true, force: true }));
    expect(got).toMatch(/^DELTAC_E_WRITE: could not write .*EIO: disk on fire/);
    expect(listDir(dir)).toEqual(['m.onnx', 'm.onnx.data']);
    expect(fs.readFileSync(file, 'utf8')).toBe('previous model');
    expect(fs.readFileSync(`${file}.data`, 'utf8')).toBe('previous data');
  });
});

describe('protecting the input model', () => {
  it('refuses to overwrite the model it was loaded from, unless forced', () => {
    const dir = freshDir();
    const file = path.join(dir, 'm.onnx');
    saveModel(buildModel(), file);
    const m = loadModel(file);
    const original = fs.readFileSync(file);
    expect(codeOf(() => saveModel(m, file))).toMatch(/^DELTAC_E_OUTPUT_EXISTS: refusing to overwrite/);
    // also through another path to the same file
    fs.symlinkSync(file, path.join(dir, 'alias.onnx'));
    expect(codeOf(() => saveModel(m, path.join(dir, 'alias.onnx')))).toMatch(/^DELTAC_E_OUTPUT_EXISTS/);
    fs.linkSync(file, path.join(dir, 'hard.onnx'));
    expect(codeOf(() => saveModel(m, path.join(dir, 'hard.onnx')))).toMatch(/^DELTAC_E_OUTPUT_EXISTS/);
    expect(fs.readFileSync(file).equals(original)).toBe(true);
    m.producerName = 'changed';
    saveModel(m, file, { force: true });
    expect(loadModel(file).producerName).toBe('changed');
  });

  it("refuses to overwrite the input's external-data files", () => {
    const dir = freshDir();
    const file = path.join(dir, 'm.onnx');
    saveModel(buildModel(), file, { externalData: true });
    const m = loadModel(file);
    const out = path.join(dir, 'other.onnx');
    expect(codeOf(() => saveModel(m, out, { externalData: true, externalDataName: 'm.onnx.data' }))).toMatch(
      /^DELTAC_E_OUTPUT_EXISTS: .*m\.onnx\.data/,
    );
    expect(listDir(dir)).toEqual(['m.onnx', 'm.onnx.data']);
    // another name in the same folder is fine
    saveModel(m, out, { externalData: true });
    expect(listDir(dir)).toEqual(['m.onnx', 'm.onnx.data', 'other.onnx', 'other.onnx.data']);
  });
});

describe('models over 2 GB', () => {
  /** A 3 GiB f32 tensor whose source is never supposed to be read in full. */
  function hugeTensor(reads: number[]): Tensor {
    const dims = [768, 1024, 1024];
    const length = 768 * 1024 * 1024 * 4;
    const source: ByteSource = {
      description: 'huge.bin',
      size: () => length,
      read: (offset, len) => {
        reads.push(len);
        throw new DeltacError('DELTAC_E_EXTERNAL_MISSING', 'sentinel: external writing started');
      },
    };
    return new Tensor(DataType.FLOAT, dims, { kind: 'external', source, location: 'huge.bin', offset: 0, length, extraEntries: [] });
  }

  function hugeModel(reads: number[]): Model {
    const m = parseModel(`graph @g(%x: f32[1]) -> (%y: f32[1]) {
      %y = Identity(%x)
    }`);
    m.graph.addInitializer('huge', hugeTensor(reads));
    return m;
  }

  it('refuses to write more than 2 GB inline, without reading the data', () => {
    const reads: number[] = [];
    const dir = freshDir();
    expect(codeOf(() => saveModel(hugeModel(reads), path.join(dir, 'm.onnx'), { externalData: false }))).toMatch(
      /^DELTAC_E_MODEL_TOO_LARGE: .*3221225472 bytes/,
    );
    expect(reads).toEqual([]);
    expect(listDir(dir)).toEqual([]);
  });

  it("'auto' chooses external data for a model over 2 GB (even when its tensors are not external)", () => {
    const reads: number[] = [];
    const dir = freshDir();
    const m = hugeModel(reads);
    // make the huge tensor look inline to the planner: only its size should matter
    const t = m.graph.initializers.get('huge')!.initializer!;
    const inlineLike = new Tensor(t.dtype, t.dims, { kind: 'inline', bytes: new Uint8Array(0), encoding: 'raw' });
    Object.defineProperty(inlineLike, 'byteLength', { value: t.byteLength });
    Object.defineProperty(inlineLike, 'bytes', {
      value: () => {
        reads.push(-1);
        throw new DeltacError('DELTAC_E_EXTERNAL_MISSING', 'sentinel: external writing started');
      },
    });
    m.graph.initializers.get('huge')!.initializer = inlineLike;
    expect(codeOf(() => saveModel(m, path.join(dir, 'm.onnx')))).toMatch(/sentinel: external writing started/);
    expect(reads.length).toBe(1);
    expect(listDir(dir)).toEqual([]);
  });

  it("'auto' chooses external data when the input used external data", () => {
    const reads: number[] = [];
    const dir = freshDir();
    expect(codeOf(() => saveModel(hugeModel(reads), path.join(dir, 'm.onnx')))).toMatch(/sentinel: external writing started/);
    expect(reads).toEqual([3221225472]);
    expect(listDir(dir)).toEqual([]);
  });
});

describe('fields deltac does not model are kept', () => {
  it('dynamo-style node metadata_props, doc strings, overloads, functions, value_info and tensor metadata', () => {
    const proto = modelProto({
      irVersion: 10,
      opset: 18,
      extra: {
        opsetImport: [{ version: 18 }, { domain: 'pkg.custom', version: 1 }],
        docString: 'model doc',
        metadataProps: [{ key: 'source', value: 'dynamo' }],
        functions: [
          {
            name: 'Twice',
            domain: 'pkg.custom',
            input: ['a'],
            output: ['b'],
            node: [{ opType: 'Add', input: ['a', 'a'], output: ['b'] }],
            opsetImport: [{ version: 18 }],
          },
        ],
      },
      graphExtra: {
        docString: 'graph doc',
        metadataProps: [{ key: 'graph.key', value: 'graph.value' }],
      },
      initializers: [
        {
          name: 'w',
          dataType: FLOAT,
          dims: [2],
          rawData: Buffer.from(new Float32Array([1, 2]).buffer),
          docString: 'tensor doc',
          metadataProps: [{ key: 't', value: 'v' }],
        },
      ],
      nodes: [
        {
          opType: 'Add',
          input: ['x', 'w'],
          output: ['a'],
          name: 'node_Add_0',
          docString: 'node doc',
          metadataProps: [
            { key: 'pkg.torch.onnx.name_scopes', value: "['', 'down_blocks.0', 'attentions.0', 'transformer_blocks.0', 'attn1']" },
            { key: 'pkg.torch.onnx.class_hierarchy', value: "['UNet2DConditionModel', 'Attention']" },
          ],
        },
        { opType: 'Twice', domain: 'pkg.custom', input: ['a'], output: ['y'], name: 'node_Twice_1', overload: 'v2' },
      ],
      inputs: [valueInfo('x', FLOAT, ['batch'])],
      outputs: [valueInfo('y', FLOAT, ['batch'])],
      valueInfo: [{ ...valueInfo('a', FLOAT, ['batch']), docString: 'a doc', metadataProps: [{ key: 'vi', value: '1' }] }],
    });
    const dir = freshDir();
    const src = path.join(dir, 'dynamo.onnx');
    fs.writeFileSync(src, encodeModel(proto));
    const m = loadModel(src);
    expect(m.graph.nodes[0]!.meta('pkg.torch.onnx.class_hierarchy')).toBe("['UNet2DConditionModel', 'Attention']");
    expect(m.graph.nodes[1]!.overload).toBe('v2');
    expect(m.functions.length).toBe(1);
    const out = path.join(dir, 'saved.onnx');
    saveModel(m, out);
    expect(decodeFile(out)).toEqual(decodeFile(src));
    expect(fs.readFileSync(out).equals(fs.readFileSync(src))).toBe(true);
  });

  it('node metadata set through the IR is saved', () => {
    const m = buildModel();
    m.irVersion = 10;
    m.graph.nodes[0]!.metadataProps.push(['pkg.torch.onnx.name_scopes', "['', 'proj']"]);
    const file = path.join(freshDir(), 'm.onnx');
    saveModel(m, file);
    const node = decodeFile(file).graph.node[0];
    expect(node.metadataProps).toEqual([{ key: 'pkg.torch.onnx.name_scopes', value: "['', 'proj']" }]);
    expect(loadModel(file).graph.nodes[0]!.meta('pkg.torch.onnx.name_scopes')).toBe("['', 'proj']");
  });
});

describe('what the loader refuses', () => {
  const tiny = (irVersion: number, opset = 17) =>
    encodeModel(
      modelProto({
        irVersion,
        opset,
        nodes: [{ opType: 'Relu', input: ['x'], output: ['y'] }],
        inputs: [valueInfo('x', FLOAT, [2])],
        outputs: [valueInfo('y', FLOAT, [2])],
      }),
    );

  it('reads IR versions 3–14 and every opset 13–28, without warnings', () => {
    for (const v of [3, 7, 8, 9, 10, 11, 12, 13, 14]) {
      const loaded = decodeModel(tiny(v), tmp.dir);
      expect(loaded.model.irVersion).toBe(v);
      expect(loaded.diagnostics).toEqual([]);
    }
    for (let opset = 13; opset <= 28; opset++) expect(decodeModel(tiny(14, opset), tmp.dir).model.opset()).toBe(opset);
  });

  it('reads a newer IR version with a warning (DELTAC_W_IR_VERSION) and saves it unchanged', () => {
    const loaded = decodeModel(tiny(99), tmp.dir, {}, 'm.onnx');
    expect(loaded.diagnostics.map((d) => [d.severity, d.code])).toEqual([['warning', 'DELTAC_W_IR_VERSION']]);
    expect(loaded.diagnostics[0]!.message).toContain('"m.onnx" declares IR version 99, newer than the 14 deltac knows');
    expect(decodeModel(serializeModel(loaded.model), tmp.dir).model.irVersion).toBe(99);
  });

  it('refuses IR versions before 3 (DELTAC_E_IR_VERSION)', () => {
    for (const v of [0, 2]) {
      expect(codeOf(() => decodeModel(tiny(v), tmp.dir, {}, 'm.onnx'))).toMatch(
        new RegExp(`^DELTAC_E_IR_VERSION: "m.onnx" declares IR version ${v}`),
      );
    }
  });

  it('refuses files that are not ONNX models (DELTAC_E_NOT_ONNX)', () => {
    const dir = freshDir();
    const sd15 = fs.readFileSync(modelPath('sd15-mini'));
    const cases: Record<string, Uint8Array> = {
      'text.onnx': Buffer.from('this is not a model\n'),
      'empty.onnx': Buffer.alloc(0),
      'truncated.onnx': sd15.subarray(0, Math.floor(sd15.length / 2)),
      'noise.onnx': Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 197 + 13) & 0xff)),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      fs.writeFileSync(path.join(dir, name), bytes);
      expect(codeOf(() => loadModel(path.join(dir, name))), name).toMatch(/^DELTAC_E_NOT_ONNX: /);
    }
  });

  it('reports a missing file, a folder, and undefined or duplicate values in the file', () => {
    const dir = freshDir();
    expect(codeOf(() => loadModel(path.join(dir, 'nope.onnx')))).toMatch(/^DELTAC_E_FILE_NOT_FOUND/);
    expect(codeOf(() => loadModel(dir))).toMatch(/^DELTAC_E_FILE_READ/);
    writeModel(path.join(dir, 'undef.onnx'), {
      nodes: [{ opType: 'Relu', input: ['ghost'], output: ['y'] }],
      outputs: [valueInfo('y', FLOAT, [2])],
    });
    expect(codeOf(() => loadModel(path.join(dir, 'undef.onnx')))).toMatch(/^DELTAC_E_UNDEFINED_VALUE: .*"ghost"/);
    writeModel(path.join(dir, 'dup.onnx'), {
      nodes: [
        { opType: 'Relu', input: ['x'], output: ['y'] },
        { opType: 'Neg', input: ['x'], output: ['y'] },
      ],
      inputs: [valueInfo('x', FLOAT, [2])],
      outputs: [valueInfo('y', FLOAT, [2])],
    });
    expect(codeOf(() => loadModel(path.join(dir, 'dup.onnx')))).toMatch(/^DELTAC_E_DUPLICATE_NAME: .*"y"/);
  });

  it('loads an unsorted file and keeps its order (the verifier only warns)', () => {
    const dir = freshDir();
    writeModel(path.join(dir, 'unsorted.onnx'), {
      nodes: [
        { opType: 'Neg', input: ['a'], output: ['y'] },
        { opType: 'Relu', input: ['x'], output: ['a'] },
      ],
      inputs: [valueInfo('x', FLOAT, [2])],
      outputs: [valueInfo('y', FLOAT, [2])],
    });
    const m = loadModel(path.join(dir, 'unsorted.onnx'));
    expect(m.graph.nodes.map((n) => n.opType)).toEqual(['Neg', 'Relu']);
    expect(printModel(m)).toContain('%y = Neg(%a)');
  });
});
