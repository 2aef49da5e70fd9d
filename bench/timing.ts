/** Timing helpers shared by the benchmarks: interleaved runs, medians, ratios. */
import { OrtModel, type Feeds } from '../src/runtime/onnxruntime.js';
import { seededRandom } from '../test/helpers/random.js';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface PairTiming {
  baselineMs: number;
  candidateMs: number;
  /** baseline / candidate: how many times faster the candidate is. */
  speedup: number;
  runs: number;
}

/**
 * Times two onnxruntime models on the same feeds in one process: blocks of runs
 * A, B, A, B (each block after a warm-up), so both see the same machine
 * state; medians over all timed runs. Blocks rather than strictly alternating
 * runs keep one model's caches and thread wake-ups from taxing the other.
 */
export async function timePair(baseline: string, candidate: string, feeds: Feeds, runs = 7): Promise<PairTiming> {
  const a = await OrtModel.load(baseline);
  const b = await OrtModel.load(candidate);
  const ta: number[] = [];
  const tb: number[] = [];
  // onnxruntime needs several runs to settle (arena growth, layout caches): warm up for
  // at least one run and one second before each block.
  const block = async (m: OrtModel, into: number[], n: number) => {
    const start = performance.now();
    for (let i = 0; i < 1 || performance.now() - start < 1000; i++) await m.run(feeds);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await m.run(feeds);
      into.push(performance.now() - t0);
    }
  };
  try {
    const first = Math.ceil(runs / 2);
    await block(a, ta, first);
    await block(b, tb, first);
    await block(a, ta, runs - first);
    await block(b, tb, runs - first);
    const baselineMs = median(ta);
    const candidateMs = median(tb);
    return { baselineMs, candidateMs, speedup: baselineMs / candidateMs, runs };
  } finally {
    await a.release();
    await b.release();
  }
}

/** Milliseconds one call of `f` takes. */
export function timeMs(f: () => unknown): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

/** The least of `runs` timings of `f`, in milliseconds. */
export function leastMs(runs: number, f: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) best = Math.min(best, timeMs(f));
  return best;
}

/** Uniform values in [-1, 1) from a seed. */
export function seededFeed(shape: number[], seed = 1): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rand() * 2 - 1);
}
