/**
 * The per-layer check's reference ΔConvBlocks are computed in a worker thread: the
 * worker starts from the sources (through tsx, as here) and gives the bits the calling
 * thread gives; with DELTAC_CHECK_THREADS=0, or once a worker fails, they are computed
 * on the calling thread.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { computeReferences, referencePool, type ReferenceJob } from '../../src/runtime/reference-pool.js';
import { normalSampler, seededRandom } from '../../src/runtime/seeded-random.js';

function job(seed: number): ReferenceJob {
  const normal = normalSampler(seededRandom(seed));
  const fill = (n: number) => Float32Array.from({ length: n }, () => normal() * 0.2);
  const C = 12;
  const Ci = 8;
  const K = 3;
  const scales = [1, 0.5];
  const gOut = (scales.length * Ci) / 2;
  return {
    weights: {
      upWeight: fill(Ci * C),
      upBias: fill(Ci),
      gateWeights: fill(scales.length * K * K * Ci),
      outWeight: fill(C * gOut),
      outBias: fill(C),
      poolWeight: fill(C * C),
      poolBias: fill(C),
    },
    params: { channels: C, inner: Ci, kernel: K, scales, gate: 'simple' },
    runs: [
      { x: fill(1 * 4 * 4 * C), size: { batch: 1, height: 4, width: 4 } },
      { x: fill(2 * 3 * 5 * C), size: { batch: 2, height: 3, width: 5 } },
      { x: fill(1 * 6 * 5 * C), size: { batch: 1, height: 6, width: 5 }, window: { rows: [4, 6], cols: [3, 5] } },
    ],
  } as ReferenceJob;
}

describe('reference pool', () => {
  const saved = process.env.DELTAC_CHECK_THREADS;
  afterEach(() => {
    if (saved === undefined) delete process.env.DELTAC_CHECK_THREADS;
    else process.env.DELTAC_CHECK_THREADS = saved;
  });

  it('computes in a worker thread, bit for bit what the calling thread computes, jobs answered in any number', async () => {
    delete process.env.DELTAC_CHECK_THREADS;
    const pool = referencePool();
    try {
      expect(pool.where).toBe('worker');
      const jobs = [1, 2, 3, 4].map(job);
      const got = await Promise.all(jobs.map((j) => pool.compute(j)));
      expect(pool.where).toBe('worker'); // (no fallback happened on the way)
      for (const [i, j] of jobs.entries()) {
        const here = computeReferences(j);
        expect(got[i]!.length).toBe(3);
        for (const [k, r] of here.entries()) {
          expect(got[i]![k]!.length).toBe(r.length);
          expect(Buffer.from(got[i]![k]!.buffer, got[i]![k]!.byteOffset, got[i]![k]!.byteLength).equals(Buffer.from(r.buffer, r.byteOffset, r.byteLength))).toBe(true);
        }
      }
      // (the windowed run: batch 1, a 2×2 window, 12 channels)
      expect(got[0]![2]!.length).toBe(2 * 2 * 12);
    } finally {
      await pool.close();
    }
  });

  it('stays on the calling thread with DELTAC_CHECK_THREADS=0', async () => {
    process.env.DELTAC_CHECK_THREADS = '0';
    const pool = referencePool();
    expect(pool.where).toBe('inline');
    const [a] = await pool.compute(job(5));
    expect(a).toEqual(computeReferences(job(5))[0]);
    await pool.close();
  });

  it('computes on the calling thread once its worker is gone', async () => {
    delete process.env.DELTAC_CHECK_THREADS;
    const pool = referencePool();
    await pool.close(); // (the worker terminated: what a crashed worker leaves)
    expect(pool.where).toBe('inline');
    const [a] = await pool.compute(job(6));
    expect(a).toEqual(computeReferences(job(6))[0]);
  });
});
