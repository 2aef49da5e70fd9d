/**
 * Conversion of the full SD1.5 UNet (3.44 GB of external weights, synthesized once
 * into bench/cache): wall time and peak RSS of `deltac convert`, against `cp` of
 * the same weight files, measured alternately in the same run with a warm page cache.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/onnx/load.js';
import { deltaCheckpointTensors, writeSafetensors } from '../test/helpers/safetensors-writer.js';
import { ensureSd15FullWeights } from '../test/helpers/synthesize-sd15-full.js';
import { SD15_BLOCKS } from './models/sd15-blocks.js';
import { median } from './timing.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ConvertFullResult {
  weightBytes: number;
  cpSeconds: number;
  convertSeconds: number;
  ratio: number;
  peakRssBytes: number;
  deterministic: boolean;
  targetRatio: number;
  targetRssBytes: number;
  met: boolean;
}

function externalFiles(dir: string): string[] {
  const model = loadModel(path.join(dir, 'model.graph.onnx'));
  const files = new Set<string>();
  for (const v of model.graph.initializers.values()) {
    const s = v.initializer!.storage;
    if (s.kind === 'external') files.add(path.join(dir, s.location));
  }
  return [...files];
}

export async function benchConvertFull(rounds = 3): Promise<ConvertFullResult> {
  // The child runs the built CLI (dist/), as `deltac convert` runs for users.
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('building dist/ failed');
  const dir = await ensureSd15FullWeights();
  const ckpt = path.join(ROOT, 'bench/cache/sd15-full-delta.safetensors');
  if (!fs.existsSync(ckpt)) writeSafetensors(ckpt, deltaCheckpointTensors(SD15_BLOCKS.map((b) => ({ ...b, kernel: 9 })), 11));
  const files = externalFiles(dir);
  const weightBytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-bench-convert-'));
  const cpTimes: number[] = [];
  const convertTimes: number[] = [];
  let peakRss = 0;
  const digests: string[] = [];
  try {
    // Each timed step starts with no dirty pages pending, so one step's writeback does not slow the next.
    const settle = () => spawnSync('sync');
    const cp = () => {
      const dest = path.join(work, 'cp');
      fs.mkdirSync(dest);
      settle();
      const t0 = performance.now();
      const r = spawnSync('cp', [...files, dest], { stdio: 'inherit' });
      const t = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error('cp failed');
      fs.rmSync(dest, { recursive: true, force: true });
      return t;
    };
    const convert = (i: number) => {
      const out = path.join(work, `out${i}`);
      fs.mkdirSync(out);
      settle();
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bench/convert-child.mjs'), 'convert', path.join(dir, 'model.graph.onnx'), '--weights', ckpt, '-o', path.join(out, 'unet.onnx')], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      const t = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`deltac convert failed: ${r.stderr}`);
      const { maxRssBytes } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { maxRssBytes: number };
      peakRss = Math.max(peakRss, maxRssBytes);
      return { t, out };
    };
    cp(); // warm the page cache with the input files
    for (let i = 0; i < rounds; i++) {
      cpTimes.push(cp());
      const { t, out } = convert(i);
      convertTimes.push(t);
      digests.push(spawnSync('sha256sum', [path.join(out, 'unet.onnx'), path.join(out, 'unet.onnx.data')], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]).join(','));
      fs.rmSync(out, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const cpSeconds = median(cpTimes);
  const convertSeconds = median(convertTimes);
  const ratio = convertSeconds / cpSeconds;
  return {
    weightBytes,
    cpSeconds,
    convertSeconds,
    ratio,
    peakRssBytes: peakRss,
    deterministic: digests.every((d) => d === digests[0]),
    targetRatio: 1.5,
    targetRssBytes: 2 ** 30,
    met: ratio <= 1.5 && peakRss <= 2 ** 30,
  };
}
