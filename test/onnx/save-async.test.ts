/** saveModelAsync (overlapped copies) writes exactly what saveModel writes, and cleans up on failure. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel, saveModelAsync } from '../../src/onnx/save.js';
import { makeTempDir, modelPath } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-save-async-');
afterAll(tmp.cleanup);

describe('saveModelAsync', () => {
  it('gives byte-identical files to saveModel, from inline and from external sources, with big tensors split into pieces', async () => {
    const model = loadModel(modelPath('pixart-mini'));
    // a tensor bigger than one copy piece (8 MiB), to exercise splitting
    const big = new Float32Array(3 * 2 ** 20 + 5).map((_, i) => Math.sin(i));
    model.graph.addInitializer('big_unused', Tensor.fromFloat32(big, [big.length], DataType.FLOAT), true);
    const a = path.join(tmp.dir, 'a');
    const b = path.join(tmp.dir, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    saveModel(model, path.join(a, 'm.onnx'), { externalData: true });
    await saveModelAsync(model, path.join(b, 'm.onnx'), { externalData: true });
    expect(fs.readFileSync(path.join(a, 'm.onnx')).equals(fs.readFileSync(path.join(b, 'm.onnx')))).toBe(true);
    expect(fs.readFileSync(path.join(a, 'm.onnx.data')).equals(fs.readFileSync(path.join(b, 'm.onnx.data')))).toBe(true);
    // now the sources are external files: copy file-to-file both ways
    const reloaded = loadModel(path.join(a, 'm.onnx'));
    const c = path.join(tmp.dir, 'c');
    const d = path.join(tmp.dir, 'd');
    fs.mkdirSync(c);
    fs.mkdirSync(d);
    saveModel(reloaded, path.join(c, 'm.onnx'));
    const progress: number[] = [];
    const r = await saveModelAsync(reloaded, path.join(d, 'm.onnx'), { onProgress: (done) => progress.push(done) });
    expect(fs.readFileSync(path.join(c, 'm.onnx.data')).equals(fs.readFileSync(path.join(d, 'm.onnx.data')))).toBe(true);
    expect(fs.readFileSync(path.join(d, 'm.onnx.data')).length).toBe(r.externalDataBytes);
    expect(Math.max(...progress)).toBe(r.externalDataBytes);
    const back = loadModel(path.join(d, 'm.onnx'));
    expect(Array.from(back.graph.initializers.get('big_unused')!.initializer!.toFloat32().subarray(0, 4))).toEqual(Array.from(big.subarray(0, 4)));
  });

  it('leaves nothing behind when a source fails mid-copy', async () => {
    const model = loadModel(modelPath('pixart-mini'));
    const t = new Tensor(DataType.FLOAT, [4096], {
      kind: 'external',
      location: 'gone.bin',
      offset: 0,
      length: 4096 * 4,
      extraEntries: [],
      source: { description: 'gone.bin', size: () => 4096 * 4, read: () => { throw new Error('disk went away'); } },
    });
    model.graph.addInitializer('failing', t, true);
    const out = path.join(tmp.dir, 'fail');
    fs.mkdirSync(out);
    await expect(saveModelAsync(model, path.join(out, 'm.onnx'), { externalData: true })).rejects.toMatchObject({ code: 'DELTAC_E_WRITE' });
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
