/**
 * Saving never damages the user's files: the input model and its data files are
 * not overwritten without --force (also through symlinks and hard links), output
 * goes to temp files renamed into place, and any failure leaves the output folder
 * exactly as it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import type { Model } from '../../src/ir/model.js';
import { type ByteSource, Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { listDir, makeTempDir, modelPath } from '../helpers/paths.js';
import { PIXART, PIXART_WEIGHTS, cli, expectCode, expectConvertFails, expectUserError } from './hostile.js';

const tmp = makeTempDir('deltac-hostile-save-');
afterAll(tmp.cleanup);
afterEach(() => void vi.restoreAllMocks());
const freshDir = tmp.fresh;

/** pixart-mini saved with external data into a fresh folder: model.onnx + model.onnx.data, and the loaded model. */
let pixartInline: Model;
beforeAll(() => {
  pixartInline = loadModel(PIXART);
});
function externalCopy(): { dir: string; file: string; data: string; model: Model } {
  const dir = freshDir();
  const file = path.join(dir, 'model.onnx');
  saveModel(loadModel(PIXART), file, { externalData: true });
  return { dir, file, data: `${file}.data`, model: loadModel(file) };
}

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(listDir(dir).map((f) => [f, fs.lstatSync(path.join(dir, f)).isFile() ? fs.readFileSync(path.join(dir, f)).toString('base64') : 'not a file']));
}

/** A tensor whose bytes cannot be read: the save fails after earlier tensors were written. */
function failingTensor(error: Error): Tensor {
  const source: ByteSource = {
    description: 'failing.bin',
    size: () => 4096,
    read: () => {
      throw error;
    },
  };
  return new Tensor(DataType.FLOAT, [1024], { kind: 'external', source, location: 'failing.bin', offset: 0, length: 4096, extraEntries: [] });
}

describe('the input model and its data files are not overwritten without --force', () => {
  it('the model itself → DELTAC_E_OUTPUT_EXISTS (API and CLI), the file unchanged', async () => {
    const { dir, file, model } = externalCopy();
    const before = snapshot(dir);
    expect(expectCode(() => saveModel(model, file), 'DELTAC_E_OUTPUT_EXISTS').message).toMatch(/refusing to overwrite ".*model\.onnx": it is the input model .* pass --force/);
    const r = await cli('convert', file, '--weights', PIXART_WEIGHTS, '-o', file);
    expectUserError(r, 'convert', 'DELTAC_E_OUTPUT_EXISTS');
    expect(snapshot(dir)).toEqual(before);
  });

  it('a symlink to the model → DELTAC_E_OUTPUT_EXISTS', async () => {
    const { dir, file, model } = externalCopy();
    fs.symlinkSync(file, path.join(dir, 'alias.onnx'));
    const before = snapshot(dir);
    expectCode(() => saveModel(model, path.join(dir, 'alias.onnx')), 'DELTAC_E_OUTPUT_EXISTS');
    expectUserError(await cli('convert', file, '--weights', PIXART_WEIGHTS, '-o', path.join(dir, 'alias.onnx')), 'convert', 'DELTAC_E_OUTPUT_EXISTS');
    expect(snapshot(dir)).toEqual(before);
  });

  it('a hard link to the model → DELTAC_E_OUTPUT_EXISTS', async () => {
    const { dir, file, model } = externalCopy();
    fs.linkSync(file, path.join(dir, 'hard.onnx'));
    const before = snapshot(dir);
    expectCode(() => saveModel(model, path.join(dir, 'hard.onnx')), 'DELTAC_E_OUTPUT_EXISTS');
    expectUserError(await cli('convert', file, '--weights', PIXART_WEIGHTS, '-o', path.join(dir, 'hard.onnx')), 'convert', 'DELTAC_E_OUTPUT_EXISTS');
    expect(snapshot(dir)).toEqual(before);
  });

  it('its external-data file, as the output or as the output\'s data file (also through a symlink) → DELTAC_E_OUTPUT_EXISTS', async () => {
    const { dir, file, data, model } = externalCopy();
    fs.symlinkSync(data, path.join(dir, 'alias.data'));
    const before = snapshot(dir);
    expectCode(() => saveModel(model, data), 'DELTAC_E_OUTPUT_EXISTS');
    expectCode(() => saveModel(model, path.join(dir, 'other.onnx'), { externalDataName: 'model.onnx.data' }), 'DELTAC_E_OUTPUT_EXISTS');
    expect(expectCode(() => saveModel(model, path.join(dir, 'other.onnx'), { externalDataName: 'alias.data' }), 'DELTAC_E_OUTPUT_EXISTS').message).toContain('alias.data');
    expectUserError(await cli('convert', file, '--weights', PIXART_WEIGHTS, '-o', data), 'convert', 'DELTAC_E_OUTPUT_EXISTS');
    expect(snapshot(dir)).toEqual(before);
  });

  it('--force replaces the input model and its data file, reading the old data before the rename', async () => {
    const { dir, file, model } = externalCopy();
    const r = saveModel(model, file, { force: true });
    expect(r.externalDataPath).toBe(`${file}.data`);
    expect(listDir(dir)).toEqual(['model.onnx', 'model.onnx.data']);
    const again = loadModel(file);
    for (const [name, v] of pixartInline.graph.initializers) {
      expect(Buffer.from(again.graph.initializers.get(name)!.initializer!.bytes()).equals(Buffer.from(v.initializer!.bytes())), name).toBe(true);
    }
    // and through the CLI: the converted model replaces the input
    const inline = path.join(freshDir(), 'model.onnx');
    fs.copyFileSync(PIXART, inline);
    const c = await cli('convert', inline, '--weights', PIXART_WEIGHTS, '-o', inline, '--force');
    expect(c.code, c.err).toBe(0);
    expect(loadModel(inline).graph.nodes.length).toBeLessThan(pixartInline.graph.nodes.length);
  });

  it('even with --force, --reuse-weights cannot replace a data file the output still reads → DELTAC_E_OUTPUT_EXISTS', () => {
    const { dir, file, model } = externalCopy();
    // a new tensor that must go to the output's data file (model.onnx.data, the file reused tensors point into)
    model.graph.addInitializer('new_weights', Tensor.fromFloat32(new Float32Array(4096).fill(0.5), [4096]));
    const before = snapshot(dir);
    const e = expectCode(() => saveModel(model, file, { reuseWeights: true, force: true }), 'DELTAC_E_OUTPUT_EXISTS');
    expect(e.message).toMatch(/with --reuse-weights the output still reads tensors from that file/);
    expect(snapshot(dir)).toEqual(before);
  });

  it('--force is documented in the usage of `deltac convert`', async () => {
    const r = await cli('convert', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('[--force]');
  });
});

describe('writes go to temp files renamed into place; failures leave nothing behind', () => {
  it('while the data is written, neither the model nor its data file exists under its final name', () => {
    const dir = freshDir();
    const out = path.join(dir, 'out.onnx');
    const seen: string[][] = [];
    saveModel(pixartInline, out, { externalData: true, sizeThreshold: 0, onProgress: () => void seen.push(listDir(dir)) });
    expect(seen.length).toBeGreaterThan(10);
    for (const files of seen) {
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^out\.onnx\.data\.tmp-\d+-\w+$/);
    }
    expect(listDir(dir)).toEqual(['out.onnx', 'out.onnx.data']);
  });

  for (const externalData of [true, false]) {
    it(`a tensor source that throws mid-write → its code, nothing left (externalData ${externalData})`, () => {
      const dir = freshDir();
      fs.writeFileSync(path.join(dir, 'out.onnx'), 'the previous output');
      const before = snapshot(dir);
      const m = loadModel(PIXART);
      m.graph.addInitializer('late', failingTensor(new DeltacError('DELTAC_E_EXTERNAL_RANGE', 'sentinel: source shrank')));
      expectCode(() => saveModel(m, path.join(dir, 'out.onnx'), { externalData, force: true }), 'DELTAC_E_EXTERNAL_RANGE');
      expect(snapshot(dir)).toEqual(before);
      const m2 = loadModel(PIXART);
      m2.graph.addInitializer('late', failingTensor(new Error('EIO: i/o error')));
      expect(expectCode(() => saveModel(m2, path.join(dir, 'out.onnx'), { externalData, force: true }), 'DELTAC_E_WRITE').message).toMatch(/could not write .*EIO/);
      expect(snapshot(dir)).toEqual(before);
    });
  }

  it('an output folder that cannot be written (EACCES on open) → DELTAC_E_WRITE, nothing left', () => {
    const dir = freshDir();
    const realOpen = fs.openSync;
    vi.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      if (String(p).startsWith(dir) && flags !== 'r') throw Object.assign(new Error(`EACCES: permission denied, open '${String(p)}'`), { code: 'EACCES' });
      return realOpen(p, flags ?? 'r', mode);
    }) as typeof fs.openSync);
    for (const externalData of [true, false]) {
      expect(expectCode(() => saveModel(pixartInline, path.join(dir, 'out.onnx'), { externalData }), 'DELTAC_E_WRITE').message).toMatch(/EACCES/);
      expect(listDir(dir)).toEqual([]);
    }
  });

  it.skipIf(process.getuid?.() === 0)('a read-only output folder (chmod 555) → DELTAC_E_WRITE, nothing left', () => {
    const dir = freshDir();
    fs.chmodSync(dir, 0o555);
    try {
      expectCode(() => saveModel(pixartInline, path.join(dir, 'out.onnx'), { externalData: true }), 'DELTAC_E_WRITE');
      expect(listDir(dir)).toEqual([]);
    } finally {
      fs.chmodSync(dir, 0o755);
    }
  });

  it('a failing final rename of the model removes the data file already renamed → DELTAC_E_WRITE, nothing left', () => {
    const dir = freshDir();
    const out = path.join(dir, 'out.onnx');
    const realRename = fs.renameSync;
    vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      if (to === out) throw Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
      realRename(from, to);
    });
    expect(expectCode(() => saveModel(pixartInline, out, { externalData: true }), 'DELTAC_E_WRITE').message).toMatch(/EXDEV/);
    expect(listDir(dir)).toEqual([]);
  });

  it('an output path that is a folder → DELTAC_E_WRITE before anything is written (API and CLI)', async () => {
    const dir = freshDir();
    fs.mkdirSync(path.join(dir, 'out.onnx'));
    expect(expectCode(() => saveModel(pixartInline, path.join(dir, 'out.onnx'), { externalData: true }), 'DELTAC_E_WRITE').message).toMatch(/it is a folder/);
    expect(listDir(dir)).toEqual(['out.onnx']);
    expectUserError(await cli('convert', PIXART, '--weights', PIXART_WEIGHTS, '-o', path.join(dir, 'out.onnx'), '--external-data', 'always'), 'convert', 'DELTAC_E_WRITE');
    expect(listDir(dir)).toEqual(['out.onnx']);
    expect(listDir(path.join(dir, 'out.onnx'))).toEqual([]);
  });

  it('an output folder that does not exist → DELTAC_E_WRITE (API)', () => {
    expectCode(() => saveModel(pixartInline, path.join(tmp.dir, 'no', 'such', 'out.onnx')), 'DELTAC_E_WRITE');
    expect(fs.existsSync(path.join(tmp.dir, 'no'))).toBe(false);
  });

  it('`deltac convert` that fails after loading the model writes nothing', async () => {
    const dir = freshDir();
    // weights of another model: found while converting, before saving
    await expectConvertFails(PIXART, modelPath('sd15-mini', 'delta.safetensors'), dir, 'DELTAC_E_WEIGHTS_UNUSED');
    expect(listDir(dir)).toEqual([]);
  });
});
