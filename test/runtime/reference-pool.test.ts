/**
 * The per-layer check's reference ΔConvBlocks (and its comparison of a layer's weights
 * with the checkpoint) are computed in a worker thread: the worker starts from the
 * sources (through tsx, as here) and gives the bits the calling thread gives; with
 * DELTAC_CHECK_THREADS=0, or once a worker fails, they are computed on the calling
 * thread.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import type { ProvenanceLayer } from '../../src/passes/delta-conv/provenance.js';
import { convert } from '../../src/convert.js';
import { loadModel } from '../../src/onnx/load.js';
import { readProvenance } from '../../src/passes/delta-conv/provenance.js';
import { blockConstants, blockWeightsOf, foldBiases } from '../../src/reference/block-weights.js';
import { cutLayerRegion } from '../../src/runtime/layer-region.js';
import { computeJob, referencePool, type ReferenceJob } from '../../src/runtime/reference-pool.js';
import { normalSampler, seededRandom } from '../../src/runtime/seeded-random.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { modelPath } from '../helpers/paths.js';

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
        const here = computeJob(j).outputs;
        const there = got[i]!.outputs;
        expect(there.length).toBe(3);
        for (const [k, r] of here.entries()) {
          expect(there[k]!.length).toBe(r.length);
          expect(Buffer.from(there[k]!.buffer, there[k]!.byteOffset, there[k]!.byteLength).equals(Buffer.from(r.buffer, r.byteOffset, r.byteLength))).toBe(true);
        }
        expect(got[i]!.weightDiff).toBeUndefined(); // (nothing to compare with)
      }
      // (the windowed run: batch 1, a 2×2 window, 12 channels)
      expect(got[0]!.outputs[2]!.length).toBe(2 * 2 * 12);
    } finally {
      await pool.close();
    }
  });

  it('stays on the calling thread with DELTAC_CHECK_THREADS=0', async () => {
    process.env.DELTAC_CHECK_THREADS = '0';
    const pool = referencePool();
    expect(pool.where).toBe('inline');
    const [a] = (await pool.compute(job(5))).outputs;
    expect(a).toEqual(computeJob(job(5)).outputs[0]);
    await pool.close();
  });

  it('computes on the calling thread once its worker is gone', async () => {
    delete process.env.DELTAC_CHECK_THREADS;
    const pool = referencePool();
    await pool.close(); // (the worker terminated: what a crashed worker leaves)
    expect(pool.where).toBe('inline');
    const [a] = (await pool.compute(job(6))).outputs;
    expect(a).toEqual(computeJob(job(6)).outputs[0]);
  });

  it("unpacks a layer's constants in the worker (handed over, not copied): the weights blockWeightsOf unpacks here", async () => {
    delete process.env.DELTAC_CHECK_THREADS;
    const model = loadModel(modelPath('sd15-mini'));
    convert(model, { weights: modelPath('sd15-mini', 'delta.safetensors') });
    const layer = readProvenance(model)![0]!;
    const region = cutLayerRegion(model, layer);
    const { runs } = job(1);
    const sized = { channels: layer.channels, inner: layer.inner, kernel: layer.kernel, scales: layer.scales, gate: layer.gate };
    const x = (n: number) => Float32Array.from({ length: n * layer.channels }, (_, i) => Math.sin(i));
    const here = computeJob({ weights: blockWeightsOf(region.nodes, layer, 'a layer'), params: sized, runs: [{ x: x(16), size: runs[0]!.size }] }).outputs[0]!;
    const constants = blockConstants(region.nodes, 'a layer');
    const big = Object.values('labels' in constants ? constants.labels : {}).filter((r) => r.bytes.byteLength >= 4096);
    expect(big.length).toBeGreaterThan(0);
    const buffers = [...new Set(big.map((r) => r.bytes.buffer as ArrayBuffer))];
    const pool = referencePool();
    try {
      const there = (await pool.compute({ weights: { constants, shape: layer, layer: 'a layer' }, params: sized, runs: [{ x: x(16), size: runs[0]!.size }] }, buffers)).outputs[0]!;
      expect(Buffer.from(there.buffer, there.byteOffset, there.byteLength).equals(Buffer.from(here.buffer, here.byteOffset, here.byteLength))).toBe(true);
      expect(big.every((r) => r.bytes.byteLength === 0)).toBe(true); // (handed over: detached here)
    } finally {
      await pool.close();
    }
  });

  it("compares a layer's weights with the checkpoint in the worker, by its path; a failure there keeps its code", async () => {
    delete process.env.DELTAC_CHECK_THREADS;
    const file = modelPath('sd15-mini', 'delta.safetensors');
    const checkpoint = Checkpoint.open(file);
    const [prefix, block] = [...checkpoint.blocks].at(0)!;
    const t = checkpoint.read(block);
    const geometry = checkpoint.geometry(block, prefix);
    const gates = t.gates.map((g) => g.toFloat32());
    const gateWeights = new Float32Array(gates.reduce((a, g) => a + g.length, 0));
    gates.reduce((at, g) => (gateWeights.set(g, at), at + g.length), 0);
    const weights = foldBiases({ upWeight: t.upWeight.toFloat32(), upBias: t.upBias.toFloat32(), gateWeights, outWeight: t.outWeight.toFloat32(), outBias: t.outBias.toFloat32(), poolWeight: t.poolWeight.toFloat32(), poolBias: t.poolBias.toFloat32() });
    const layer = { modulePath: 'a layer', checkpointBlock: prefix, kernel: geometry.kernel, inner: geometry.inner } as ProvenanceLayer;
    const params = { channels: geometry.channels, inner: geometry.inner, kernel: geometry.kernel, scales: [1, 0.5], gate: 'simple' as const };
    const pool = referencePool();
    try {
      expect(pool.where).toBe('worker');
      const same = await pool.compute({ weights, params, runs: [], compare: { checkpoint: file, layer, dtype: DataType.FLOAT } });
      expect(same.weightDiff?.error).toBe(0);
      const off = { ...weights, gateWeights: Float32Array.from(weights.gateWeights) };
      off.gateWeights[7]! += 0.01;
      const differs = await pool.compute({ weights: off, params, runs: [], compare: { checkpoint: file, layer, dtype: DataType.FLOAT } });
      expect(differs.weightDiff!.error).toBeGreaterThan(1e-3);
      expect(differs.weightDiff!.where).toMatch(/^gate 0 conv_spatial\.weight \[0, 0, 7\]$/);
      const missing = pool.compute({ weights, params, runs: [], compare: { checkpoint: file, layer: { ...layer, checkpointBlock: 'no.such.block' }, dtype: DataType.FLOAT } });
      await expect(missing).rejects.toBeInstanceOf(DeltacError);
      await expect(missing).rejects.toMatchObject({ code: 'DELTAC_E_CHECK_FAILED', details: { layer: 'a layer', stage: 'weights' } });
      expect(pool.where).toBe('worker');
    } finally {
      await pool.close();
    }
  });
});
