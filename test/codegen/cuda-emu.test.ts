/**
 * Executes the generated CUDA on the CPU: each .cu is compiled with g++ against a
 * small emulation of the CUDA runtime (test/codegen/cuda-emu: one std::thread per
 * CUDA thread, std::barrier for __syncthreads, NaN-filled shared memory) and its C
 * entry point is run on random data, compared with the CPU reference. This checks
 * the kernels' indexing, tiling, halos, pooling and in-CTA upsampling (low-res tiles that
 * overlap by one row/column, several of them in both directions) on machines without a
 * GPU (bench/gpu/run_gpu_check.py does the same on a real one).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cudaSource } from '../../src/codegen/cuda/cuda-kernel.js';
import { kernelPlan } from '../../src/codegen/kernel-plan.js';
import type { PyramidConvConfig } from '../../src/passes/delta-conv/op.js';
import { pyramidConvReference } from '../../src/reference/index.js';
import { maxRelError, randomArray } from '../reference/fixtures.js';
import { makeTempDir } from '../helpers/paths.js';
import { buildEmulated, elementBytes, floatsOf, hasGxx20, rounded } from './cuda-emu/emulate.js';

function build(config: PyramidConvConfig, dir: string): string {
  const plan = kernelPlan(config);
  return buildEmulated(cudaSource(config), 'driver.cpp', dir, plan.id, { DELTAC_ENTRY: plan.entry });
}

/** Runs the entry point; returns G and the number of kernel launches it made. */
function runEmulated(exe: string, config: PyramidConvConfig, u: Float32Array, w: Float32Array, b: number, h: number, wd: number, dir: string) {
  const half = config.dtype === 'float16';
  fs.writeFileSync(path.join(dir, 'u.bin'), elementBytes(u, half));
  fs.writeFileSync(path.join(dir, 'w.bin'), elementBytes(w, half));
  const n = (b * h * wd * config.scales.length * config.inner) / 2;
  const out = path.join(dir, 'out.bin');
  const log = execFileSync(exe, [path.join(dir, 'u.bin'), path.join(dir, 'w.bin'), out, String(b), String(h), String(wd), String(n), String(half ? 2 : 4)], {
    encoding: 'utf8',
  });
  const [, launches, ctas] = /launches (\d+) ctas (\d+)/.exec(log)!.map(Number);
  return { g: floatsOf(fs.readFileSync(out), half), launches: launches!, ctas: ctas! };
}

const CASES: { config: PyramidConvConfig; shapes: [number, number, number][] }[] = [
  // sd15-mini's K=9 layers; odd, non-divisible sizes; more than one tile in both directions
  { config: { channels: 32, inner: 16, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype: 'float32' }, shapes: [[2, 19, 35], [1, 3, 2], [1, 40, 37]] },
  // PixArt's sigmoid gate, fp16 storage with fp32 accumulation
  { config: { channels: 32, inner: 16, kernel: 5, scales: [1, 0.5], gate: 'sigmoid', dtype: 'float16' }, shapes: [[2, 9, 7]] },
  // odd Ci/2 (scalar lanes), three gates, K=3
  { config: { channels: 12, inner: 6, kernel: 3, scales: [1, 0.5, 0.25], gate: 'simple', dtype: 'float32' }, shapes: [[1, 17, 13]] },
  // no full-resolution gate, K=13 (above 48 KiB of shared memory)
  { config: { channels: 32, inner: 16, kernel: 13, scales: [0.5], gate: 'sigmoid', dtype: 'float32' }, shapes: [[1, 21, 18]] },
];

const GXX = hasGxx20('the generated CUDA on the CPU emulation');

describe.skipIf(!GXX)('generated CUDA executed on a CPU emulation vs the reference', () => {
  for (const { config, shapes } of CASES) {
    const id = kernelPlan(config).id;
    it(id, { timeout: 120_000 }, () => {
      const { dir, cleanup } = makeTempDir('deltac-emu-');
      try {
        const exe = build(config, dir);
        for (const [b, h, w] of shapes) {
          const u = randomArray(b * h * w * config.inner, h * 31 + w);
          const wt = randomArray(config.scales.length * config.kernel ** 2 * config.inner, 5, 1 / config.kernel);
          const half = config.dtype === 'float16';
          const ref = pyramidConvReference(rounded(u, half), rounded(wt, half), { batch: b, height: h, width: w }, config);
          const { g, launches, ctas } = runEmulated(exe, config, u, wt, b, h, w, dir);
          expect(maxRelError(g, ref), `${id} at ${b}×${h}×${w}`).toBeLessThan(half ? 1e-3 : 1e-5);
          expect(launches, 'one launch per call').toBe(1);
          // launch_info counts the grid: 2×19×35 at 16×16 tiles is 3·2 full-res + 2·1 low-res (9×17, step 15) per image
          if (id === 'c32_ci16_k9_s1_0p5_simple_f32' && b === 2 && h === 19) expect(ctas).toBe(16);
        }
      } finally {
        cleanup();
      }
    });
  }
});
