/**
 * `deltac convert` runs the per-layer check while the data file is being written, on
 * the model as saved (saveModelAsync's whilePlanned), and handles its outcome after
 * the save as a check after the save would: a failed check deletes the output (or
 * keeps it with --keep-failed), any other error leaves it in place.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { DeltacError } from '../../src/ir/errors.js';
import type { Model } from '../../src/ir/model.js';
import { runCli } from '../helpers/cli.js';
import { listDir, makeTempDir, modelPath } from '../helpers/paths.js';

const state = vi.hoisted(() => ({ fail: null as null | 'check' | 'crash', seen: [] as { sourcePath?: string; outputExisted: boolean }[] }));
vi.mock('../../src/runtime/layer-check.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/runtime/layer-check.js')>();
  return {
    ...real,
    checkLayers: async (...args: Parameters<typeof real.checkLayers>) => {
      const model = args[1] as Model;
      state.seen.push({ sourcePath: model.sourcePath, outputExisted: model.sourcePath ? fs.existsSync(model.sourcePath) : false });
      const result = await real.checkLayers(...args);
      if (state.fail === 'check') throw new DeltacError('DELTAC_E_CHECK_FAILED', 'layer transformer_blocks.0: injected failure');
      if (state.fail === 'crash') throw new Error('injected crash');
      return result;
    },
  };
});

const tmp = makeTempDir('deltac-check-writing-');
afterAll(tmp.cleanup);
afterEach(() => {
  state.fail = null;
  state.seen = [];
});
const freshDir = tmp.fresh;
const convert = (out: string, ...more: string[]) =>
  runCli('convert', modelPath('pixart-mini'), '--weights', modelPath('pixart-mini', 'delta.safetensors'), '-o', out, '--external-data', 'always', ...more);

describe('the per-layer check runs while the output is written', () => {
  it('on the model as saved, before it is renamed into place; passed, the output is there', async () => {
    const dir = freshDir();
    const out = path.join(dir, 'out.onnx');
    const r = await convert(out);
    expect(r.code, r.err).toBe(0);
    expect(state.seen).toEqual([{ sourcePath: out, outputExisted: false }]);
    expect(r.out).toMatch(/^check {12}passed in \d+\.\d s: 4 layers cut from the saved model/m);
    expect(listDir(dir)).toEqual(['out.onnx', 'out.onnx.data']);
  });

  it('failed: DELTAC_E_CHECK_FAILED, the output deleted', async () => {
    const dir = freshDir();
    state.fail = 'check';
    const r = await convert(path.join(dir, 'out.onnx'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_CHECK_FAILED: layer check: layer transformer_blocks\.0: injected failure; the output was deleted/);
    expect(listDir(dir)).toEqual([]);
  });

  it('failed with --keep-failed: kept as out.failed.onnx with its data file', async () => {
    const dir = freshDir();
    state.fail = 'check';
    const r = await convert(path.join(dir, 'out.onnx'), '--keep-failed');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the output was kept as .*out\.failed\.onnx/);
    expect(listDir(dir)).toEqual(['out.failed.onnx', 'out.onnx.data']);
  });

  it('crashed (not a failed check): the error is reported and the output stays, as after a save', async () => {
    const dir = freshDir();
    state.fail = 'crash';
    const r = await convert(path.join(dir, 'out.onnx'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/internal error: injected crash/);
    expect(listDir(dir)).toEqual(['out.onnx', 'out.onnx.data']);
  });
});
