/**
 * `deltac convert` on full-size models with real bytes, default flags, `sync`
 * included, against `cp -r` of the same model folder + `sync`, alternately in the
 * same run with the page cache warm for both: SD1.5 as torch exports it (sd15-full:
 * 384 weight files, synthesized once into bench/cache) and the full-size layouts of
 * SD1.5 and SDXL base in fp32 and fp16 (test/fixtures/full-size with seeded weights
 * in one data file, as optimum exports them; test/helpers/synthesize-full-size.ts),
 * each with a seeded ΔConvFusion checkpoint of its blocks. The conversion runs in a
 * child process (its peak RSS is its own); outputs go to a temporary folder that is
 * removed after each step and when the benchmark ends or is interrupted.
 * And every full-size layout of SPEC.md §5.1 as a graph with elided weights
 * (benchConvertLayouts): what is timed is the compiler's work, layer by layer.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { INTERRUPTS, type Interrupt, exitCodeOf } from '../src/cli/interrupt.js';
import { REPO_ROOT } from '../test/helpers/paths.js';
import { ensureFullSizeWeights } from '../test/helpers/synthesize-full-size.js';
import { ensureSd15FullWeights } from '../test/helpers/synthesize-sd15-full.js';
import type { FullSizeOptions } from '../test/fixtures/full-size/index.js';
import { ensureFullSizeDeltaCheckpoint } from './models/full-size-delta.js';
import { ensureSd15DeltaCheckpoint } from './models/sd15-delta.js';
import { median } from './timing.js';

const MiB = 2 ** 20;

export interface ConvertRealRow {
  model: string;
  /** How the weights are stored: `torch, 384 files` or `one data file`. */
  storage: string;
  dtype: 'fp32' | 'fp16';
  /** Size of the model folder (what `cp -r` copies). */
  folderBytes: number;
  /** Extra `deltac convert` flags (none: the defaults). */
  flags: string[];
  /** Per round, seconds: `cp -r` + `sync`, and `deltac convert` + `sync`. */
  cpRounds: number[];
  convertRounds: number[];
  cpSeconds: number;
  convertSeconds: number;
  /** convert / cp, medians. */
  ratio: number;
  peakRssBytes: number;
  /** The check's own time in the conversion (median), or why it did not run. */
  checkSeconds: number | null;
  check: string;
  /** `copy`: the data file started as a kernel copy of the input's; `packed`: written piece by piece. */
  dataFile: 'copy' | 'packed' | 'none';
  outputBytes: number;
  unreferencedBytes: number;
  deterministic: boolean;
  targetRatio: number;
  targetRssBytes: number;
  met: boolean;
}

interface RealCase {
  model: string;
  storage: string;
  dtype: 'fp32' | 'fp16';
  /** Large (SDXL): left out by --quick. */
  large?: boolean;
  targetRssBytes: number;
  prepare(): Promise<{ dir: string; file: string; weights: string }>;
}

function layoutCase(model: string, layout: FullSizeOptions['layout'], dtype: 'fp32' | 'fp16', targetRssBytes: number, large = false): RealCase {
  return {
    model,
    storage: 'one data file',
    dtype,
    large,
    targetRssBytes,
    async prepare() {
      const built = ensureFullSizeWeights({ layout, style: 'ts-sdpa', dtype: dtype === 'fp16' ? 'f16' : 'f32' });
      const weights = ensureFullSizeDeltaCheckpoint(`${layout}-ts-sdpa`, built.built.selfBlocks, dtype === 'fp16' ? 'F16' : 'F32');
      return { dir: built.dir, file: 'model.onnx', weights };
    },
  };
}

const REAL_CASES: RealCase[] = [
  {
    model: 'SD1.5',
    storage: 'torch, 384 files',
    dtype: 'fp32',
    targetRssBytes: 512 * MiB,
    prepare: async () => ({ dir: await ensureSd15FullWeights(), file: 'model.graph.onnx', weights: ensureSd15DeltaCheckpoint() }),
  },
  layoutCase('SD1.5', 'sd15', 'fp32', 512 * MiB),
  layoutCase('SD1.5', 'sd15', 'fp16', 512 * MiB),
  layoutCase('SDXL base', 'sdxl-base', 'fp32', 1024 * MiB, true),
  layoutCase('SDXL base', 'sdxl-base', 'fp16', 1024 * MiB, true),
];
const TARGET_RATIO = 1.2;

function folderBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
}

/** A temporary folder for the outputs, removed at the end — also when the benchmark is interrupted. */
function workFolder(): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-bench-convert-'));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const onSignal = (signal: Interrupt) => {
    remove();
    process.exit(exitCodeOf(signal));
  };
  for (const s of INTERRUPTS) process.once(s, onSignal);
  process.once('exit', remove);
  return {
    dir,
    remove: () => {
      remove();
      for (const s of INTERRUPTS) process.off(s, onSignal);
      process.off('exit', remove);
    },
  };
}

/** sha256 of the model protobuf and of 1 MiB every 256 MiB of the data file (and its size). */
function outputDigest(model: string, data: string): string {
  const h = createHash('sha256').update(fs.readFileSync(model));
  if (fs.existsSync(data)) {
    const fd = fs.openSync(data, 'r');
    const buf = Buffer.alloc(MiB);
    const size = fs.fstatSync(fd).size;
    for (let at = 0; at < size; at += 256 * MiB) h.update(buf.subarray(0, fs.readSync(fd, buf, 0, MiB, at)));
    fs.closeSync(fd);
    h.update(String(size));
  }
  return h.digest('hex');
}

/**
 * One row per case: `rounds` alternating runs of `cp -r` + `sync` and `deltac convert`
 * (+ `flags`) + `sync`, after a warm-up that reads the model folder once.
 */
export async function benchConvertReal(options: { rounds?: number; quick?: boolean; flags?: string[] } = {}): Promise<ConvertRealRow[]> {
  const rounds = options.rounds ?? 3;
  const flags = options.flags ?? [];
  // The child runs the built CLI (dist/), as `deltac convert` runs for users.
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('building dist/ failed');
  const rows: ConvertRealRow[] = [];
  const work = workFolder();
  try {
    for (const c of REAL_CASES.filter((x) => !(options.quick && x.large))) {
      const { dir, file, weights } = await c.prepare();
      const sync = () => spawnSync('sync');
      // Warm: the model folder and the checkpoint in the page cache, as for both steps after it.
      for (const f of [...fs.readdirSync(dir).map((x) => path.join(dir, x)), weights]) spawnSync('cat', [f], { stdio: ['ignore', 'ignore', 'inherit'] });
      const cpRounds: number[] = [];
      const convertRounds: number[] = [];
      const checks: number[] = [];
      const digests: string[] = [];
      let check = '';
      let peak = 0;
      let dataFile: ConvertRealRow['dataFile'] = 'none';
      let outputBytes = 0;
      let unreferenced = 0;
      for (let i = 0; i < rounds; i++) {
        const dest = path.join(work.dir, 'cp');
        sync();
        let t0 = performance.now();
        const cp = spawnSync('cp', ['-r', dir, dest], { stdio: 'inherit' });
        sync();
        cpRounds.push((performance.now() - t0) / 1000);
        if (cp.status !== 0) throw new Error('cp -r failed');
        fs.rmSync(dest, { recursive: true, force: true });

        const out = path.join(work.dir, 'out');
        fs.mkdirSync(out);
        sync();
        t0 = performance.now();
        const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bench/convert-child.mjs'), 'convert', path.join(dir, file), '--weights', weights, '-o', path.join(out, 'unet.onnx'), '--json', ...flags], {
          cwd: REPO_ROOT,
          encoding: 'utf8',
          maxBuffer: 256 * MiB,
        });
        sync();
        convertRounds.push((performance.now() - t0) / 1000);
        if (r.status !== 0) throw new Error(`deltac convert failed: ${r.stderr}`);
        const child = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
          maxRssBytes: number;
          report: { check: { status: string; ms?: number; reason?: string; layers?: { ms: number }; full?: { ms: number } }; output: { baseCopy?: { unreferencedBytes: number }; externalDataBytes: number; modelBytes: number } };
        };
        peak = Math.max(peak, child.maxRssBytes);
        const ck = child.report.check;
        if (ck.status === 'skipped') check = `skipped: ${ck.reason}`;
        else {
          check = ck.status;
          // the per-layer check's own time (it runs while the data file is written), and the whole-model run's with --check full
          const ms = ck.layers ? ck.layers.ms + (ck.full?.ms ?? 0) : ck.ms;
          if (typeof ms === 'number') checks.push(ms / 1000);
        }
        const o = child.report.output;
        dataFile = o.externalDataBytes ? (o.baseCopy ? 'copy' : 'packed') : 'none';
        outputBytes = o.modelBytes + o.externalDataBytes;
        unreferenced = o.baseCopy?.unreferencedBytes ?? 0;
        digests.push(outputDigest(path.join(out, 'unet.onnx'), path.join(out, 'unet.onnx.data')));
        fs.rmSync(out, { recursive: true, force: true });
      }
      const cpSeconds = median(cpRounds);
      const convertSeconds = median(convertRounds);
      const ratio = convertSeconds / cpSeconds;
      const checkSeconds = checks.length ? median(checks) : null;
      rows.push({
        model: c.model,
        storage: c.storage,
        dtype: c.dtype,
        folderBytes: folderBytes(dir),
        flags,
        cpRounds,
        convertRounds,
        cpSeconds,
        convertSeconds,
        ratio,
        peakRssBytes: peak,
        checkSeconds,
        check,
        dataFile,
        outputBytes,
        unreferencedBytes: unreferenced,
        deterministic: digests.every((d) => d === digests[0]),
        targetRatio: TARGET_RATIO,
        targetRssBytes: c.targetRssBytes,
        met: ratio <= TARGET_RATIO && peak <= c.targetRssBytes && checkSeconds !== null,
      });
    }
  } finally {
    work.remove();
  }
  return rows;
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
