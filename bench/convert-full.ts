/**
 * Conversion of the full SD1.5 UNet (3.44 GB of external weights, synthesized once
 * into bench/cache): wall time and peak RSS of `deltac convert`, against `cp` of
 * the same weight files, measured alternately in the same run with a warm page cache.
 * And every full-size layout of SPEC.md §5.1 as a graph with elided weights
 * (benchConvertLayouts): what is timed is the compiler's work, layer by layer.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/onnx/load.js';
import { REPO_ROOT } from '../test/helpers/paths.js';
import { ensureSd15FullWeights } from '../test/helpers/synthesize-sd15-full.js';
import type { FullSizeOptions } from '../test/fixtures/full-size/index.js';
import { ensureSd15DeltaCheckpoint } from './models/sd15-delta.js';
import { median } from './timing.js';


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
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('building dist/ failed');
  const dir = await ensureSd15FullWeights();
  const ckpt = ensureSd15DeltaCheckpoint();
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
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bench/convert-child.mjs'), 'convert', path.join(dir, 'model.graph.onnx'), '--weights', ckpt, '-o', path.join(out, 'unet.onnx'), '--no-check'], {
        cwd: REPO_ROOT,
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

// ---- every full-size layout (SPEC.md §5.1), graph only ------------------------------------

export interface ConvertLayoutRow {
  model: string;
  style: string;
  layers: number;
  nodes: number;
  /** The whole conversion (all passes, lowering included). */
  convertSeconds: number;
  /** The insert pass alone (matching, H/W sources, binding) per converted layer. */
  insertMsPerLayer: number;
  layersPerSecond: number;
  peakRssBytes: number;
  complete: boolean;
}

interface LayoutCase {
  model: string;
  options: FullSizeOptions;
}

const LAYOUT_CASES: LayoutCase[] = [
  { model: 'SD1.5', options: { layout: 'sd15', style: 'ts-sdpa' } },
  { model: 'SD1.5 (onnxruntime-optimized)', options: { layout: 'sd15', style: 'ms-mha-packed', ort: true, dtype: 'f16' } },
  { model: 'SD2.1', options: { layout: 'sd21', style: 'dynamo-sdpa' } },
  { model: 'SDXL base', options: { layout: 'sdxl-base', style: 'ts-sdpa' } },
  { model: 'SDXL base', options: { layout: 'sdxl-base', style: 'dynamo-sdpa', dtype: 'f16' } },
  { model: 'SDXL refiner', options: { layout: 'sdxl-refiner', style: 'ts-sdpa' } },
  { model: 'PixArt-Σ', options: { layout: 'pixart-sigma', style: 'ts-sdpa' } },
  // depth sweep: one token stream of n blocks at C 1152; ms/layer must not grow with n
  ...[7, 14, 56].map((n) => ({ model: `PixArt-Σ, ${n} blocks`, options: { layout: 'pixart-sigma', style: 'ts-sdpa', blocks: n } as FullSizeOptions })),
  // deeper than any real model, at a quarter of the width (the weights would not fit otherwise)
  ...[28, 224].map((n) => ({ model: `PixArt-Σ at C 288, ${n} blocks`, options: { layout: 'pixart-sigma', style: 'ts-sdpa', blocks: n, channels: 288 } as FullSizeOptions })),
];

/**
 * Converts each full-size layout (elided UNet/DiT weights, a zero ΔConvBlock
 * checkpoint of the real shapes) in a child process: wall time of the passes,
 * per-layer rate and the child's peak RSS.
 */
export function benchConvertLayouts(): ConvertLayoutRow[] {
  return LAYOUT_CASES.map((c) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench/convert-layout-child.ts'), JSON.stringify(c.options)], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`converting ${c.model} failed: ${r.stderr}`);
    const x = JSON.parse(r.stdout.trim().split('\n').pop()!) as { layers: number; expected: number; nodesBefore: number; convertMs: number; passes: Record<string, number>; maxRssBytes: number };
    const o = c.options;
    return {
      model: c.model,
      style: `${o.style}${o.ort ? ' (ort)' : ''} ${o.dtype ?? 'f32'}`,
      layers: x.layers,
      nodes: x.nodesBefore,
      convertSeconds: x.convertMs / 1000,
      insertMsPerLayer: (x.passes['insert-pyramid-conv'] ?? 0) / x.layers,
      layersPerSecond: x.layers / (x.convertMs / 1000),
      peakRssBytes: x.maxRssBytes,
      complete: x.layers === x.expected,
    };
  });
}
