/**
 * Nothing left behind: `deltac convert` stopped by SIGINT, SIGTERM or SIGHUP while it
 * writes the full SD1.5 UNet (3.44 GB of weights) removes its temp files, prints one
 * line and exits 130, 143 or 129; stopped by SIGKILL it cannot, and the next
 * conversion to the same output removes what it left and says so. Both ways of
 * writing are interrupted: the packed file (sd15-full's 384 weight files) and the
 * kernel copy of an input's data file (the SD1.5 layout, one data file).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFullSizeDeltaCheckpoint } from '../../bench/models/full-size-delta.js';
import { ensureSd15DeltaCheckpoint } from '../../bench/models/sd15-delta.js';
import { runCli } from '../helpers/cli.js';
import { deltaCheckpointTensors, writeSafetensors } from '../helpers/safetensors-writer.js';
import { REPO_ROOT, listDir, makeTempDir } from '../helpers/paths.js';
import { ensureFullSizeWeights } from '../helpers/synthesize-full-size.js';
import { ensureSd15FullWeights } from '../helpers/synthesize-sd15-full.js';

const tmp = makeTempDir('deltac-interrupt-');
afterAll(tmp.cleanup);
const freshDir = tmp.fresh;

interface Model {
  model: string;
  weights: string;
}
let packed: Model; // sd15-full: 384 weight files → one packed data file
let copied: Model; // the SD1.5 layout in fp16: one data file → copied by the kernel
let overflowing: string; // an F32 checkpoint for it with a value beyond f16's range
beforeAll(async () => {
  packed = { model: path.join(await ensureSd15FullWeights(), 'model.graph.onnx'), weights: ensureSd15DeltaCheckpoint() };
  const layout = ensureFullSizeWeights({ layout: 'sd15', style: 'ts-sdpa', dtype: 'f16' });
  copied = { model: layout.model, weights: ensureFullSizeDeltaCheckpoint('sd15-ts-sdpa', layout.built.selfBlocks, 'F16') };
  const tensors = deltaCheckpointTensors(layout.built.selfBlocks.map((b) => ({ block: b.path, channels: b.channels, kernel: b.kernel })), 5);
  const last = Object.values(tensors).at(-1)!;
  last.data[0] = 1e6;
  overflowing = path.join(tmp.dir, 'overflowing.safetensors');
  writeSafetensors(overflowing, tensors);
}, 600_000);

function start(m: Model, out: string): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/deltac-bin.ts'), 'convert', m.model, '--weights', m.weights, '-o', out, '--no-check'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exited };
}

/** Waits until the data temp file exists and holds bytes: the conversion is writing. */
async function whileWriting(dir: string, exited: Promise<unknown>): Promise<string> {
  let done = false;
  void exited.then(() => (done = true));
  for (;;) {
    const tmpFile = listDir(dir).find((f) => /^unet\.onnx\.data\.tmp-\d+-\w+$/.test(f));
    if (tmpFile && fs.statSync(path.join(dir, tmpFile), { throwIfNoEntry: false })?.size) return tmpFile;
    if (done) throw new Error('the conversion ended before it was seen writing');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SIGINT, SIGTERM and SIGHUP while writing remove the temp files', () => {
  const cases: [NodeJS.Signals, () => Model, string][] = [
    ['SIGTERM', () => packed, 'the packed data file of sd15-full'],
    ['SIGINT', () => packed, 'the packed data file of sd15-full'],
    ['SIGHUP', () => packed, 'the packed data file of sd15-full'],
    ['SIGTERM', () => copied, 'the kernel copy of the SD1.5 layout\'s data file'],
    ['SIGINT', () => copied, 'the kernel copy of the SD1.5 layout\'s data file'],
  ];
  for (const [signal, model, what] of cases) {
    it(`${signal} during ${what}: exit ${128 + os.constants.signals[signal]}, one line, nothing left`, async () => {
      const dir = freshDir();
      const { child, exited } = start(model(), path.join(dir, 'unet.onnx'));
      await whileWriting(dir, exited);
      child.kill(signal);
      const r = await exited;
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(128 + os.constants.signals[signal]);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^deltac convert: interrupted by ${signal} while writing ".*unet\\.onnx"; its temp files were removed$`));
      expect(listDir(dir)).toEqual([]);
    }, 300_000);
  }
});

describe('SIGKILL cannot be caught: the next conversion to the same output cleans up', () => {
  it('leaves the temp file; the next conversion removes it, says so, and writes the output', async () => {
    const dir = freshDir();
    const out = path.join(dir, 'unet.onnx');
    const { child, exited } = start(packed, out);
    const left = await whileWriting(dir, exited);
    child.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');
    expect(listDir(dir)).toContain(left);
    // a temp file of a process that still runs (this one) is never touched
    const alive = `unet.onnx.tmp-${process.pid}-abc`;
    fs.writeFileSync(path.join(dir, alive), 'in progress');
    const r = await runCli('convert', packed.model, '--weights', packed.weights, '-o', out, '--no-check');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(new RegExp(`^note: removed a temp file of an interrupted save to this output \\(process ${child.pid} no longer runs\\): ${left.replace(/\./g, '\\.')} \\(`, 'm'));
    expect(listDir(dir)).toEqual([alive, 'unet.onnx', 'unet.onnx.data'].sort());
  }, 300_000);
});

describe('a conversion that fails after the copy for its save started', () => {
  it('removes the copy and the output folder it created (f32 → f16 overflow → DELTAC_E_WEIGHTS_NONFINITE)', async () => {
    const dir = freshDir();
    const out = path.join(dir, 'new', 'sub', 'unet.onnx');
    const r = await runCli('convert', copied.model, '--weights', overflowing, '-o', out);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_WEIGHTS_NONFINITE/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(listDir(dir)).toEqual([]);
  }, 300_000);
});
