/**
 * `deltac analyze` on the full SD1.5 UNet (3.44 GB of external weights, synthesized
 * once into bench/cache) at 512×512 with two random input sets and a ΔConvFusion
 * checkpoint: wall time and peak RSS of the built CLI in a child process.
 * Targets: under 2 minutes and under 4 GB.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../test/helpers/paths.js';
import { ensureSd15FullWeights } from '../test/helpers/synthesize-sd15-full.js';
import { ensureSd15DeltaCheckpoint } from './models/sd15-delta.js';

export interface AnalyzeBenchResult {
  model: string;
  resolution: number;
  samples: number;
  layers: number;
  seconds: number;
  peakRssBytes: number;
  targetSeconds: number;
  targetRssBytes: number;
  met: boolean;
}

export async function benchAnalyze(): Promise<AnalyzeBenchResult> {
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('building dist/ failed');
  const dir = await ensureSd15FullWeights();
  const ckpt = ensureSd15DeltaCheckpoint();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-bench-analyze-'));
  try {
    const out = path.join(work, 'report');
    const t0 = performance.now();
    const r = spawnSync(
      process.execPath,
      [path.join(REPO_ROOT, 'bench/convert-child.mjs'), 'analyze', path.join(dir, 'model.graph.onnx'), '--resolution', '512', '--samples', '2', '--weights', ckpt, '-o', out],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    const seconds = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`deltac analyze failed: ${r.stderr}`);
    const { maxRssBytes } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { maxRssBytes: number };
    const report = JSON.parse(fs.readFileSync(path.join(out, 'analysis.json'), 'utf8')) as { layers: unknown[] };
    const targetSeconds = 120;
    const targetRssBytes = 4e9;
    return {
      model: 'sd15-full',
      resolution: 512,
      samples: 2,
      layers: report.layers.length,
      seconds,
      peakRssBytes: maxRssBytes,
      targetSeconds,
      targetRssBytes,
      met: seconds < targetSeconds && maxRssBytes < targetRssBytes,
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
