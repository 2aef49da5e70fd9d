/**
 * Fuzzing the loaders: seeded mutations of the shared models (byte-level and
 * structure-aware), of their ΔConvFusion checkpoints and of a small textual-IR
 * file. Every load must return or throw a DeltacError — never another exception,
 * never hang, never blow up memory.
 *
 * A failure names its corpus and seed; rerun just that input with
 *   DELTAC_FUZZ_REPRO=<corpus>:<seed> npx vitest run test/errors/fuzz.test.ts
 * Longer local runs: DELTAC_FUZZ_SCALE=10 (ten times the inputs), DELTAC_FUZZ_SEED=<base>.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { isDeltacError } from '../../src/ir/errors.js';
import { parseModel } from '../../src/ir/text/build.js';
import { printModel } from '../../src/ir/text/printer.js';
import { verifyModel } from '../../src/ir/verify.js';
import { decodeModel } from '../../src/onnx/load.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { makeTempDir, modelPath } from '../helpers/paths.js';
import { type Mutated, mutateBytes, mutateModelProto, mutateSafetensors, mutateText, prng } from './mutate.js';

/** Longest a single load may take (the slowest unmutated one, sd15-mini, takes ~0.3 s). */
const PER_INPUT_MS = 2000;
/** A load still running after this long is a hang: the watchdog prints it and kills the process. */
const HANG_MS = 20_000;
/** How far the resident set may grow above its level before the run. */
const RSS_GROWTH = 1.5 * 2 ** 30;

const SCALE = Number(process.env.DELTAC_FUZZ_SCALE ?? 1);
const SEED_BASE = Number(process.env.DELTAC_FUZZ_SEED ?? 20250101);
const REPRO = process.env.DELTAC_FUZZ_REPRO;

const tmp = makeTempDir('deltac-fuzz-');
afterAll(tmp.cleanup);

// The folder external-data locations resolve against: one real data file, a
// subfolder, and a symlink that escapes (mutations name them as locations).
const baseDir = path.join(tmp.dir, 'model');
fs.mkdirSync(path.join(baseDir, 'sub'), { recursive: true });
fs.writeFileSync(path.join(baseDir, 'weights.bin'), Buffer.alloc(4096, 7));
fs.writeFileSync(path.join(tmp.dir, 'outside.bin'), Buffer.alloc(4096, 9));
fs.symlinkSync(path.join(tmp.dir, 'outside.bin'), path.join(baseDir, 'escape.bin'));
const stFile = path.join(tmp.dir, 'fuzz.safetensors');

const pixartOnnx = fs.readFileSync(modelPath('pixart-mini'));
const sd15Onnx = fs.readFileSync(modelPath('sd15-mini'));
const smallText = fs.readFileSync(new URL('./fixtures/small.ir.txt', import.meta.url), 'utf8');

function loadOnnx(bytes: Uint8Array): void {
  decodeModel(bytes, baseDir);
}

function loadStructured(bytes: Uint8Array): void {
  // A structurally odd model that loads is printed too (what `deltac print` does with it).
  printModel(decodeModel(bytes, baseDir).model);
}

function loadSafetensors(bytes: Uint8Array): void {
  fs.writeFileSync(stFile, bytes);
  const ckpt = Checkpoint.open(stFile);
  for (const key of ckpt.file.keys()) ckpt.file.tensor(key);
  for (const block of ckpt.blocks.values()) {
    try {
      ckpt.geometry(block, block.path);
    } catch (e) {
      if (!isDeltacError(e)) throw e;
    }
  }
}

function loadText(bytes: Uint8Array): void {
  verifyModel(parseModel(Buffer.from(bytes).toString('utf8'), { source: 'fuzz.ir' }));
}

interface Corpus {
  name: string;
  count: number;
  mutate(seed: number): Mutated;
  load(bytes: Uint8Array): void;
}

const CORPORA: Corpus[] = [
  { name: 'pixart-onnx-bytes', count: 800, mutate: (s) => mutateBytes(pixartOnnx, prng(s)), load: loadOnnx },
  { name: 'pixart-onnx-structure', count: 200, mutate: (s) => mutateModelProto(pixartOnnx, prng(s)), load: loadStructured },
  { name: 'sd15-onnx-bytes', count: 12, mutate: (s) => mutateBytes(sd15Onnx, prng(s)), load: loadOnnx },
  ...['pixart-mini', 'sd15-mini'].map((m, i) => {
    const src = fs.readFileSync(modelPath(m, 'delta.safetensors'));
    return { name: `${m}-safetensors`, count: i === 0 ? 300 : 500, mutate: (s: number) => mutateSafetensors(src, prng(s)), load: loadSafetensors };
  }),
  { name: 'small-ir-text', count: 800, mutate: (s) => mutateText(smallText, prng(s)), load: loadText },
];

interface Failure {
  corpus: string;
  seed: number;
  steps: string[];
  problem: string;
}

/** A watchdog thread: if the counter in `shared` stops moving for HANG_MS, print the input and kill the process. */
function startWatchdog(shared: SharedArrayBuffer, names: string[]): Worker {
  const code = `
    const { workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    const state = new Int32Array(workerData.shared);
    let last = -1;
    let since = Date.now();
    setInterval(() => {
      const tick = Atomics.load(state, 0);
      if (tick !== last) { last = tick; since = Date.now(); return; }
      if (Atomics.load(state, 3) === 1 && Date.now() - since > workerData.hangMs) {
        const corpus = workerData.names[Atomics.load(state, 1)];
        const seed = Atomics.load(state, 2);
        fs.writeSync(2, '\\nfuzz: HANG: ' + corpus + ' seed ' + seed + ' still loading after ' + workerData.hangMs +
          ' ms; reproduce with DELTAC_FUZZ_REPRO=' + corpus + ':' + seed + '\\n');
        process.kill(process.pid, 'SIGKILL');
      }
    }, 200);`;
  const w = new Worker(code, { eval: true, workerData: { shared, names, hangMs: HANG_MS } });
  w.unref();
  return w;
}

function run(corpus: Corpus, seed: number, failures: Failure[], stats: Stats): void {
  const m = corpus.mutate(seed);
  const started = performance.now();
  try {
    corpus.load(m.bytes);
    stats.loaded++;
  } catch (e) {
    if (isDeltacError(e)) {
      stats.codes.set(e.code, (stats.codes.get(e.code) ?? 0) + 1);
    } else {
      const err = e as Error;
      failures.push({ corpus: corpus.name, seed, steps: m.steps, problem: `${err?.constructor?.name ?? typeof e}: ${err?.message ?? String(e)}\n${err?.stack?.split('\n').slice(1, 5).join('\n') ?? ''}` });
    }
  }
  const ms = performance.now() - started;
  stats.maxMs = Math.max(stats.maxMs, ms);
  if (ms > PER_INPUT_MS) failures.push({ corpus: corpus.name, seed, steps: m.steps, problem: `took ${ms.toFixed(0)} ms (budget ${PER_INPUT_MS} ms)` });
  const rss = process.memoryUsage().rss;
  stats.peakRss = Math.max(stats.peakRss, rss);
  if (rss - stats.baseRss > RSS_GROWTH) {
    failures.push({ corpus: corpus.name, seed, steps: m.steps, problem: `resident memory grew by ${((rss - stats.baseRss) / 2 ** 20).toFixed(0)} MiB` });
  }
}

interface Stats {
  inputs: number;
  loaded: number;
  codes: Map<string, number>;
  maxMs: number;
  baseRss: number;
  peakRss: number;
  seconds: number;
}

function newStats(): Stats {
  const rss = process.memoryUsage().rss;
  return { inputs: 0, loaded: 0, codes: new Map(), maxMs: 0, baseRss: rss, peakRss: rss, seconds: 0 };
}

function report(failures: Failure[]): string {
  return failures
    .slice(0, 10)
    .map((f) => `${f.corpus} seed ${f.seed} [${f.steps.join('; ')}]\n  ${f.problem}\n  reproduce: DELTAC_FUZZ_REPRO=${f.corpus}:${f.seed} npx vitest run test/errors/fuzz.test.ts`)
    .join('\n\n');
}

describe('fuzzing the loaders', () => {
  it.runIf(REPRO !== undefined)('reproduces one input', () => {
    const [name, seedText] = REPRO!.split(':');
    const corpus = CORPORA.find((c) => c.name === name);
    expect(corpus, `corpus "${name}" (one of ${CORPORA.map((c) => c.name).join(', ')})`).toBeDefined();
    const seed = Number(seedText);
    console.log(`${name} seed ${seed}: ${corpus!.mutate(seed).steps.join('; ')}`);
    const failures: Failure[] = [];
    const stats = newStats();
    run(corpus!, seed, failures, stats);
    console.log(failures.length ? report(failures) : `outcome: ${stats.loaded ? 'loaded' : [...stats.codes.keys()].join(', ')}`);
    expect(failures).toEqual([]);
  });

  it.runIf(REPRO === undefined)('every mutated model, checkpoint and text loads or fails with a DeltacError, quickly and in bounded memory', () => {
    const shared = new SharedArrayBuffer(16);
    const state = new Int32Array(shared);
    const watchdog = startWatchdog(shared, CORPORA.map((c) => c.name));
    const failures: Failure[] = [];
    const perCorpus = new Map<string, Stats>();
    const total = newStats();
    const started = performance.now();
    try {
      Atomics.store(state, 3, 1);
      CORPORA.forEach((corpus, ci) => {
        const stats = newStats();
        stats.baseRss = total.baseRss;
        const n = Math.round(corpus.count * SCALE);
        const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          const seed = SEED_BASE + i;
          Atomics.store(state, 1, ci);
          Atomics.store(state, 2, seed);
          Atomics.add(state, 0, 1);
          run(corpus, seed, failures, stats);
          stats.inputs++;
        }
        stats.seconds = (performance.now() - t0) / 1000;
        perCorpus.set(corpus.name, stats);
        total.inputs += stats.inputs;
        total.loaded += stats.loaded;
        total.maxMs = Math.max(total.maxMs, stats.maxMs);
        total.peakRss = Math.max(total.peakRss, stats.peakRss);
        for (const [code, k] of stats.codes) total.codes.set(code, (total.codes.get(code) ?? 0) + k);
      });
    } finally {
      Atomics.store(state, 3, 0);
      void watchdog.terminate();
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `fuzz: ${total.inputs} inputs in ${seconds.toFixed(1)} s, slowest ${total.maxMs.toFixed(0)} ms, peak RSS ${(total.peakRss / 2 ** 20).toFixed(0)} MiB ` +
        `(+${((total.peakRss - total.baseRss) / 2 ** 20).toFixed(0)} MiB)\n` +
        [...perCorpus].map(([name, s]) => `  ${name}: ${s.inputs} inputs in ${s.seconds.toFixed(1)} s, ${s.loaded} loaded, ${[...s.codes].map(([c, k]) => `${c} ${k}`).join(', ')}`).join('\n'),
    );

    expect(failures, report(failures)).toEqual([]);
    expect(total.inputs).toBeGreaterThanOrEqual(2000 * Math.min(SCALE, 1));
    if (SCALE <= 1) expect(seconds).toBeLessThan(60);
    // The mutations reach both outcomes in every corpus, and the errors are the specific ones.
    for (const [name, s] of perCorpus) {
      expect(s.loaded, `${name}: some inputs load`).toBeGreaterThan(0);
      expect(s.inputs - s.loaded, `${name}: some inputs fail`).toBeGreaterThan(0);
    }
    for (const code of ['DELTAC_E_NOT_ONNX', 'DELTAC_E_TENSOR_DATA', 'DELTAC_E_UNDEFINED_VALUE', 'DELTAC_E_DUPLICATE_NAME', 'DELTAC_E_GRAPH_CYCLE', 'DELTAC_E_IR_VERSION', 'DELTAC_E_EXTERNAL_PATH', 'DELTAC_E_SAFETENSORS', 'DELTAC_E_TEXT_SYNTAX']) {
      expect(total.codes.get(code) ?? 0, code).toBeGreaterThan(0);
    }
  });
});
