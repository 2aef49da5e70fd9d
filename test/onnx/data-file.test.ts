/**
 * The external-data file (src/onnx/data-file.ts): when the input's data file holds
 * most of the output, the output's starts as a copy of it — kept tensors at their
 * offsets, new ones in the ranges of removed ones — and `compact` packs instead;
 * deferred tensors (a checkpoint's weights left in their file) are copied from
 * their file and never held; the files they come from are protected like inputs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { PlannedDataFile, layoutDataFile, writeDataFile, writeDataFileAsync } from '../../src/onnx/data-file.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel, saveModelAsync, startDataCopy } from '../../src/onnx/save.js';
import { SafetensorsFile } from '../../src/weights/safetensors.js';
import { makeTempDir } from '../helpers/paths.js';
import { writeSafetensors } from '../helpers/safetensors-writer.js';

const tmp = makeTempDir('deltac-data-file-');
afterAll(tmp.cleanup);
const freshDir = tmp.fresh;
const MiB = 2 ** 20;

function values(n: number, seed: number): Float32Array {
  return new Float32Array(n).map((_, i) => ((i * 7919 + seed * 104729) % 1000) / 1000 - 0.5);
}

/**
 * The input: four weights in one 72 MiB data file (keep1 24 MiB, attn 16 MiB,
 * keep2 24 MiB, keep3 8 MiB), each read by an Identity so the graph is valid.
 */
let input: string;
const SIZES: [string, number][] = [
  ['keep1', 24],
  ['attn', 16],
  ['keep2', 24],
  ['keep3', 8],
];
beforeAll(() => {
  const model = new Model();
  model.opsetImports.set('', 17);
  const g = model.graph;
  SIZES.forEach(([name, mib], i) => {
    const w = g.addInitializer(name, Tensor.fromFloat32(values((mib * MiB) / 4, i), [(mib * MiB) / 4]));
    const y = g.op('Identity', [w], { output: `${name}_out` });
    y.type = tensorType(DataType.FLOAT, [(mib * MiB) / 4]);
    g.addOutput(y);
  });
  input = path.join(freshDir(), 'model.onnx');
  saveModel(model, input, { externalData: true, externalDataName: 'model.onnx_data' });
});

/** external_data offset of every external initializer in a saved model. */
function offsets(file: string): Record<string, number> {
  const m = loadModel(file);
  const out: Record<string, number> = {};
  for (const v of m.graph.initializers.values()) {
    const s = v.initializer!.storage;
    if (s.kind === 'external') out[v.name] = s.offset;
  }
  return out;
}

/** The input with `attn` removed (its Identity and output too) and an 8 MiB weight `delta` added. */
function converted(extra?: (m: Model) => void): Model {
  const m = loadModel(input);
  const g = m.graph;
  const out = g.outputs.find((v) => v.name === 'attn_out')!;
  g.outputs.splice(g.outputs.indexOf(out), 1);
  g.removeNode(out.producer!);
  g.removeInitializer(g.initializers.get('attn')!);
  const d = g.addInitializer('delta', Tensor.fromFloat32(values((8 * MiB) / 4, 9), [(8 * MiB) / 4]));
  const y = g.op('Identity', [d], { output: 'delta_out' });
  y.type = tensorType(DataType.FLOAT, [(8 * MiB) / 4]);
  g.addOutput(y);
  extra?.(m);
  return m;
}

function expectSameTensors(file: string, model: Model): void {
  const back = loadModel(file);
  for (const [name, v] of model.graph.initializers) {
    const a = v.initializer!.bytes();
    const b = back.graph.initializers.get(name)!.initializer!.bytes();
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), name).toBe(0);
  }
}

describe('the data file starts as a copy of the input data file that holds most of it', () => {
  it('kept tensors stay at their offsets, the new one takes the removed one\'s range; sync and async write the same bytes', async () => {
    const before = offsets(input);
    const model = converted();
    const a = path.join(freshDir(), 'out.onnx');
    const b = path.join(freshDir(), 'out.onnx');
    const r = saveModel(model, a);
    const progress: number[] = [];
    const ra = await saveModelAsync(model, b, { onProgress: (done) => progress.push(done) });
    const after = offsets(a);
    expect(after.keep1).toBe(before.keep1);
    expect(after.keep2).toBe(before.keep2);
    expect(after.keep3).toBe(before.keep3);
    expect(after.delta).toBe(before.attn); // first fit: the start of the freed 16 MiB
    expect(r.baseCopy).toMatchObject({ path: path.join(path.dirname(input), 'model.onnx_data'), bytes: 72 * MiB, unreferencedBytes: 8 * MiB });
    expect(fs.statSync(`${a}.data`).size).toBe(72 * MiB);
    expect(r.externalDataBytes).toBe(72 * MiB);
    expect(ra.baseCopy).toEqual(r.baseCopy);
    expect(fs.readFileSync(`${a}.data`).equals(fs.readFileSync(`${b}.data`))).toBe(true);
    expect(fs.readFileSync(a).equals(fs.readFileSync(b))).toBe(true);
    expect(Math.max(...progress)).toBe(80 * MiB); // the copy, then the 8 MiB written into it
    expectSameTensors(a, model);
    // the copy is writable by its owner even when the input's data file is not
    expect(fs.statSync(`${a}.data`).mode & 0o200).toBe(0o200);
  });

  it('compact: packed in graph order, no copy, no unreferenced bytes', () => {
    const model = converted();
    const out = path.join(freshDir(), 'out.onnx');
    const r = saveModel(model, out, { compact: true });
    expect(r.baseCopy).toBeUndefined();
    expect(r.externalDataBytes).toBe(64 * MiB);
    expect(offsets(out)).toEqual({ keep1: 0, keep2: 24 * MiB, keep3: 48 * MiB, delta: 56 * MiB });
    expectSameTensors(out, model);
  });

  it('a new tensor larger than every freed range goes after the end', () => {
    const model = converted((m) => m.graph.addInitializer('big_new', Tensor.fromFloat32(values((20 * MiB) / 4, 5), [(20 * MiB) / 4]), true));
    const out = path.join(freshDir(), 'out.onnx');
    const r = saveModel(model, out);
    expect(r.baseCopy?.bytes).toBe(72 * MiB);
    expect(offsets(out).big_new).toBe(72 * MiB);
    expect(r.externalDataBytes).toBe(92 * MiB);
    expectSameTensors(out, model);
  });

  it('no copy when it would leave more than 1/8 of it unreferenced (here 16 of 72 MiB removed, nothing new)', () => {
    const model = loadModel(input);
    const g = model.graph;
    const out0 = g.outputs.find((v) => v.name === 'attn_out')!;
    g.outputs.splice(g.outputs.indexOf(out0), 1);
    g.removeNode(out0.producer!);
    g.removeInitializer(g.initializers.get('attn')!);
    const out = path.join(freshDir(), 'out.onnx');
    const r = saveModel(model, out);
    expect(r.baseCopy).toBeUndefined();
    expect(r.externalDataBytes).toBe(56 * MiB);
    expectSameTensors(out, model);
  });

  it('the layout alone: which tensors are written, where', () => {
    const model = converted();
    const tensors = [...model.graph.initializers.values()].map((v) => v.initializer!);
    const l = layoutDataFile(tensors, { alignThreshold: MiB });
    expect(l.writes.map((w) => w.tensor)).toEqual([model.graph.initializers.get('delta')!.initializer]);
    expect(l.base?.unreferencedBytes).toBe(8 * MiB);
    expect(layoutDataFile(tensors, { alignThreshold: MiB, compact: true }).writes).toHaveLength(4);
  });
});

describe('the copy started before the conversion (startDataCopy)', () => {
  it('is adopted by the save: the same files as a save that copies itself', async () => {
    const reference = path.join(freshDir(), 'out.onnx');
    saveModel(converted(), reference);
    const dir = freshDir();
    const out = path.join(dir, 'out.onnx');
    const model = loadModel(input);
    const early = startDataCopy(model, out);
    expect(early?.base).toBe(path.join(path.dirname(input), 'model.onnx_data'));
    // … the conversion runs meanwhile …
    const m = converted();
    const r = await saveModelAsync(m, out, { early });
    expect(r.baseCopy?.path).toBe(early!.base);
    expect(fs.readdirSync(dir).sort()).toEqual(['out.onnx', 'out.onnx.data']);
    expect(fs.readFileSync(`${out}.data`).equals(fs.readFileSync(`${reference}.data`))).toBe(true);
    expect(fs.readFileSync(out).equals(fs.readFileSync(reference))).toBe(true);
  });

  it('the other tensors are written behind the copy\'s front while it runs; a copier that sets the size first is waited for', async () => {
    const model = converted();
    const tensors = [...model.graph.initializers.values()].map((v) => v.initializer!);
    const layout = layoutDataFile(tensors, { alignThreshold: MiB });
    const expected = path.join(freshDir(), 'expected.data');
    writeDataFile(expected, layout);
    const base = fs.readFileSync(layout.base!.path);
    // a slow copier, front to back (as libuv's), or one that first sets the whole size
    const copier = (file: string, preallocate: boolean, log: number[]) => {
      const fd = fs.openSync(file, 'wx');
      if (preallocate) fs.ftruncateSync(fd, base.length);
      return (async () => {
        for (let at = 0; at < base.length; at += 4 * MiB) {
          await new Promise((r) => setTimeout(r, 15));
          fs.writeSync(fd, base, at, Math.min(4 * MiB, base.length - at), at);
          log.push(at + 4 * MiB);
        }
        fs.closeSync(fd);
      })();
    };
    for (const preallocate of [false, true]) {
      const file = path.join(freshDir(), 'out.data');
      const log: number[] = [];
      const copying = copier(file, preallocate, log);
      let copiedWhenWritten = -1;
      await writeDataFileAsync(file, layout, { baseCopy: copying, onProgress: (d, t) => { if (copiedWhenWritten < 0 && d > 0 && d < t) copiedWhenWritten = log.length; } });
      expect(fs.readFileSync(file).equals(fs.readFileSync(expected)), `preallocate ${preallocate}`).toBe(true);
      // front to back: the new tensor (at 24 MiB) went in while the copy was at about a third
      if (!preallocate) expect(copiedWhenWritten).toBeLessThan(base.length / (4 * MiB));
    }
  });

  it('is removed when the save does not start from it (compact), and by discard()', async () => {
    const dir = freshDir();
    const out = path.join(dir, 'out.onnx');
    const early = startDataCopy(loadModel(input), out)!;
    await saveModelAsync(converted(), out, { early, compact: true });
    expect(fs.readdirSync(dir).sort()).toEqual(['out.onnx', 'out.onnx.data']);
    expect(fs.statSync(`${out}.data`).size).toBe(64 * MiB);
    const dir2 = freshDir();
    const again = startDataCopy(loadModel(input), path.join(dir2, 'out.onnx'))!;
    again.discard();
    await again.done.catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync(dir2)).toEqual([]);
  });

  it('is not started where no copy would be used, and checks the output like the save', () => {
    const dir = freshDir();
    const out = path.join(dir, 'out.onnx');
    expect(startDataCopy(loadModel(input), out, { compact: true })).toBeUndefined();
    expect(startDataCopy(loadModel(input), out, { externalData: false })).toBeUndefined();
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(() => startDataCopy(loadModel(input), path.join(path.dirname(input), 'model.onnx_data'))).toThrow(expect.objectContaining({ code: 'DELTAC_E_OUTPUT_EXISTS' }));
  });
});

describe('the model as it is being saved (whilePlanned, PlannedDataFile)', () => {
  it('is the saved model, readable before the data file is written; every range read is then compared with the file', async () => {
    const out = path.join(freshDir(), 'out.onnx');
    const m = converted();
    let seen: Record<string, number[]> = {};
    let verified: unknown = 'not called';
    await saveModelAsync(m, out, {
      whilePlanned: async (planned) => {
        expect(planned.model.sourcePath).toBe(out);
        seen = Object.fromEntries([...planned.model.graph.initializers].map(([name, v]) => [name, Array.from(v.initializer!.toFloat32().subarray(0, 3))]));
        await planned.written;
        verified = planned.verify();
      },
    });
    expect(verified).toBeNull();
    const back = loadModel(out);
    expect(Object.keys(seen).sort()).toEqual([...back.graph.initializers.keys()].sort());
    for (const [name, v] of back.graph.initializers) expect(seen[name], name).toEqual(Array.from(v.initializer!.toFloat32().subarray(0, 3)));
  });

  it('whenWritten: a tensor waited for is read from the file being written (nothing of it left to verify)', async () => {
    const dir = freshDir();
    const out = path.join(dir, 'out.onnx');
    const m = converted();
    const early = startDataCopy(m, out);
    expect(early).toBeDefined();
    let fromFile: number[] = [];
    let planned: number[] = [];
    let verified: unknown = 'not called';
    await saveModelAsync(m, out, {
      early,
      whilePlanned: async (p) => {
        const delta = p.model.graph.initializers.get('delta')!.initializer!;
        const s = delta.storage;
        if (s.kind !== 'external') throw new Error('delta is not external');
        planned = Array.from(delta.toFloat32().subarray(0, 2)); // (before it is written: from the plan)
        await p.whenWritten([delta]);
        // Its bytes are in the temp data file now: changed there, the change is what a read sees.
        const tmpData = fs.readdirSync(dir).find((f) => f.startsWith('out.onnx.data.tmp-'))!;
        const fd = fs.openSync(path.join(dir, tmpData), 'r+');
        fs.writeSync(fd, Buffer.from(new Float32Array([1234.5]).buffer), 0, 4, s.offset);
        fs.closeSync(fd);
        fromFile = Array.from(delta.toFloat32().subarray(0, 2));
        await p.written;
        verified = p.verify(); // (the read before whenWritten is verified: its first 4 bytes changed since)
      },
    });
    expect(planned).toEqual(Array.from(values(2, 9).subarray(0, 2)).map((v) => Math.fround(v)));
    expect(fromFile).toEqual([1234.5, planned[1]]);
    expect(verified).toMatchObject({ length: 8 * MiB });
  });

  it('a failing whilePlanned fails the save: nothing is left', async () => {
    const dir = freshDir();
    await expect(saveModelAsync(converted(), path.join(dir, 'out.onnx'), { whilePlanned: async () => Promise.reject(new Error('the check crashed')) })).rejects.toMatchObject({ code: 'DELTAC_E_WRITE' });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('verify finds a range that differs in the written file', () => {
    const model = converted();
    const tensors = [...model.graph.initializers.values()].map((v) => v.initializer!);
    const layout = layoutDataFile(tensors, { alignThreshold: MiB });
    const planned = new PlannedDataFile(layout, 'out.onnx.data');
    const file = path.join(freshDir(), 'out.onnx.data');
    writeDataFile(file, layout);
    const delta = layout.offsets.get(model.graph.initializers.get('delta')!.initializer!)!;
    const keep2 = layout.offsets.get(model.graph.initializers.get('keep2')!.initializer!)!;
    planned.read(delta, 4096); // a new tensor's range (from the tensor)
    planned.read(keep2 + 100, 64); // a kept one's (from the copied input file)
    expect(planned.verify(file)).toBeNull();
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, keep2 + 120);
    fs.closeSync(fd);
    expect(planned.verify(file)).toEqual({ offset: keep2 + 100, length: 64 });
    expect(() => planned.read(72 * MiB + 10, 4)).toThrow(/belong to no tensor/);
  });
});

describe('deferred tensors', () => {
  const dir = () => freshDir();
  /** A checkpoint with a 256 KiB tensor, opened; its tensor deferred (left in the file). */
  function checkpoint(d: string): { file: string; tensor: Tensor; data: Float32Array } {
    const file = path.join(d, 'delta.safetensors');
    const data = values(65536, 3);
    writeSafetensors(file, { w: { shape: [256, 256], data } });
    return { file, tensor: SafetensorsFile.open(file).deferredTensor('w', true), data };
  }

  it('hold no bytes: read from their file when needed, copied from it by the saver (external and inline)', async () => {
    const d = dir();
    const { tensor, data } = checkpoint(d);
    expect(tensor.storage.kind).toBe('deferred');
    expect(Buffer.from(tensor.bytes()).equals(Buffer.from(data.buffer))).toBe(true);
    const model = new Model();
    model.opsetImports.set('', 17);
    const w = model.graph.addInitializer('w', tensor);
    const y = model.graph.op('Identity', [w], { output: 'y' });
    y.type = tensorType(DataType.FLOAT, [256, 256]);
    model.graph.addOutput(y);
    for (const externalData of [true, false]) {
      const out = path.join(dir(), 'out.onnx');
      const r = await saveModelAsync(model, out, { externalData });
      expect(r.externalTensors).toBe(externalData ? 1 : 0);
      const back = loadModel(out).graph.initializers.get('w')!.initializer!;
      expect(Array.from(back.toFloat32())).toEqual(Array.from(data));
    }
    // cast: deferred too (computed when read), and only widening casts stay known-finite
    const half = tensor.castTo(DataType.FLOAT16);
    expect(half.storage).toMatchObject({ kind: 'deferred', finite: false, length: 65536 * 2 });
    expect(half.toFloat32()[1]).toBeCloseTo(data[1]!, 3);
    expect(half.castTo(DataType.FLOAT).storage).toMatchObject({ kind: 'deferred', finite: false });
  });

  it('their file is protected like an input: saving over the checkpoint → DELTAC_E_OUTPUT_EXISTS, the file unchanged', () => {
    const d = dir();
    const { file, tensor } = checkpoint(d);
    const before = fs.readFileSync(file);
    const model = new Model();
    model.opsetImports.set('', 17);
    const w = model.graph.addInitializer('w', tensor);
    const y = model.graph.op('Identity', [w], { output: 'y' });
    model.graph.addOutput(y);
    expect(() => saveModel(model, file)).toThrow(expect.objectContaining({ code: 'DELTAC_E_OUTPUT_EXISTS' }));
    expect(() => saveModel(model, path.join(d, 'out.onnx'), { externalDataName: 'delta.safetensors' })).toThrow(expect.objectContaining({ code: 'DELTAC_E_OUTPUT_EXISTS' }));
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('a checkpoint that shrank before the save → DELTAC_E_EXTERNAL_RANGE, nothing written', () => {
    const d = dir();
    const { file, tensor } = checkpoint(d);
    const model = new Model();
    model.opsetImports.set('', 17);
    model.graph.addOutput(model.graph.op('Identity', [model.graph.addInitializer('w', tensor)], { output: 'y' }));
    fs.truncateSync(file, 1000);
    const out = freshDir();
    expect(() => saveModel(model, path.join(out, 'out.onnx'), { externalData: true })).toThrow(expect.objectContaining({ code: 'DELTAC_E_EXTERNAL_RANGE' }));
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
