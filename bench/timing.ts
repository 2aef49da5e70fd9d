/** Timing helpers shared by the benchmarks: interleaved runs, medians, ratios. */
import { OrtModel, type Feeds } from '../src/runtime/onnxruntime.js';

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
 * Times two onnxruntime models on the same feeds, alternating runs (so that
 * background load hits both alike), after `warmup` runs each; medians of `runs`.
 */
export async function timePair(baseline: string, candidate: string, feeds: Feeds, runs = 7, warmup = 2): Promise<PairTiming> {
  const a = await OrtModel.load(baseline);
  const b = await OrtModel.load(candidate);
  try {
    for (let i = 0; i < warmup; i++) {
      await a.run(feeds);
      await b.run(feeds);
    }
    const ta: number[] = [];
    const tb: number[] = [];
    for (let i = 0; i < runs; i++) {
      let t0 = performance.now();
      await a.run(feeds);
      ta.push(performance.now() - t0);
      t0 = performance.now();
      await b.run(feeds);
      tb.push(performance.now() - t0);
    }
    const baselineMs = median(ta);
    const candidateMs = median(tb);
    return { baselineMs, candidateMs, speedup: baselineMs / candidateMs, runs };
  } finally {
    await a.release();
    await b.release();
  }
}

export function seededFeed(shape: number[], seed = 1): Float32Array {
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}
