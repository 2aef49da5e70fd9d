/**
 * A full disk: the output folder is a small tmpfs (mounted here; the suite skips
 * loudly where mounting is not allowed). Whatever fails — the packed data file, the
 * kernel copy of an input's data file, the model protobuf — the user gets
 * DELTAC_E_WRITE naming ENOSPC, and the folder is left as it was.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { FileByteSource } from '../../src/onnx/external-data.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel, saveModelAsync } from '../../src/onnx/save.js';
import { listDir, makeTempDir, modelPath } from '../helpers/paths.js';
import { systemDependency } from '../helpers/system.js';
import { cli, expectCode, expectUserError } from './hostile.js';

const tmp = makeTempDir('deltac-full-disk-');
const disk = path.join(tmp.dir, 'disk');
fs.mkdirSync(disk);
const SIZE = 4 * 2 ** 20;

function tryMount(): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE}`, 'tmpfs', disk], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `cannot mount a ${SIZE >> 20} MiB tmpfs (${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim().split('\n')[0]})`;
  }
}
const mounted = systemDependency({ suite: 'full-disk saves (test/errors/full-disk.test.ts)', missing: tryMount(), hint: 'run the tests as root (CAP_SYS_ADMIN) to mount a small tmpfs' });
afterAll(() => {
  if (mounted) execFileSync('umount', [disk]);
  tmp.cleanup();
});

let counter = 0;
function freshDir(): string {
  const dir = path.join(disk, `case${++counter}`);
  fs.mkdirSync(dir);
  return dir;
}

/** A model whose one 80 MiB weight lies in a sparse input data file (no disk used): saving it copies that file. */
let sparse: Model;
beforeAll(() => {
  if (!mounted) return;
  const dir = path.join(tmp.dir, 'sparse');
  fs.mkdirSync(dir);
  const n = 20 * 2 ** 20;
  const data = path.join(dir, 'weights.bin');
  fs.writeFileSync(data, '');
  fs.truncateSync(data, n * 4);
  const m = new Model();
  m.opsetImports.set('', 17);
  m.baseDir = dir;
  const source = new FileByteSource(data, 'weights.bin');
  const w = m.graph.addInitializer('w', new Tensor(DataType.FLOAT, [n], { kind: 'external', source, location: 'weights.bin', offset: 0, length: n * 4, extraEntries: [] }));
  const y = m.graph.op('Identity', [w], { output: 'y' });
  y.type = tensorType(DataType.FLOAT, [n]);
  m.graph.addOutput(y);
  saveModel(m, path.join(dir, 'model.onnx'), { reuseWeights: true }); // the protobuf only
  sparse = loadModel(path.join(dir, 'model.onnx'));
});

describe.runIf(mounted)(`a full disk (a ${SIZE >> 20} MiB tmpfs) → DELTAC_E_WRITE, nothing left`, () => {
  it('`deltac convert` of sd15-mini (11 MB) with external data', async () => {
    const dir = freshDir();
    const r = await cli('convert', modelPath('sd15-mini'), '--weights', modelPath('sd15-mini', 'delta.safetensors'), '-o', path.join(dir, 'out.onnx'), '--external-data', 'always');
    expectUserError(r, 'convert', 'DELTAC_E_WRITE');
    expect(r.err).toMatch(/ENOSPC|no space left/i);
    expect(listDir(dir)).toEqual([]);
  });

  it('`deltac convert` of sd15-mini with everything inline (the model protobuf fails)', async () => {
    const dir = freshDir();
    const r = await cli('convert', modelPath('sd15-mini'), '--weights', modelPath('sd15-mini', 'delta.safetensors'), '-o', path.join(dir, 'out.onnx'), '--external-data', 'never');
    expectUserError(r, 'convert', 'DELTAC_E_WRITE');
    expect(listDir(dir)).toEqual([]);
  });

  it('the kernel copy of an input data file (80 MiB), sync and async', async () => {
    const dir = freshDir();
    expect(expectCode(() => saveModel(sparse, path.join(dir, 'out.onnx')), 'DELTAC_E_WRITE').message).toMatch(/ENOSPC|no space left/i);
    expect(listDir(dir)).toEqual([]);
    await expect(saveModelAsync(sparse, path.join(dir, 'out.onnx'))).rejects.toMatchObject({ code: 'DELTAC_E_WRITE', message: expect.stringMatching(/ENOSPC|no space left/i) });
    expect(listDir(dir)).toEqual([]);
    // packed instead of copied: the same
    await expect(saveModelAsync(sparse, path.join(dir, 'out.onnx'), { compact: true })).rejects.toMatchObject({ code: 'DELTAC_E_WRITE' });
    expect(listDir(dir)).toEqual([]);
  });

  it('a previous output in the folder is kept as it was', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'out.onnx'), 'the previous output');
    const r = await cli('convert', modelPath('sd15-mini'), '--weights', modelPath('sd15-mini', 'delta.safetensors'), '-o', path.join(dir, 'out.onnx'), '--external-data', 'always');
    expectUserError(r, 'convert', 'DELTAC_E_WRITE');
    expect(listDir(dir)).toEqual(['out.onnx']);
    expect(fs.readFileSync(path.join(dir, 'out.onnx'), 'utf8')).toBe('the previous output');
  });
});
