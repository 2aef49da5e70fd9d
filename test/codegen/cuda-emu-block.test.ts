/**
 * The generated whole-block entry (`deltac_block_<id>`, cuda-block.ts) executed on the CPU
 * emulation: the CUDA runtime stand-in plus a cuBLASLt stand-in that runs cuBLASLt's
 * column-major semantics in plain loops (test/codegen/cuda-emu/cublasLt.h). Compared
 * with the TypeScript reference of SPEC.md §1: conv_up, pyramid, conv_out and the pool
 * term with its biases, three kernel launches, a second call on the same workspace
 * (the pool term's counters reset themselves), and a call with one image's workspace
 * (the batch then runs image by image). Some cases run the CTAs shuffled, reversed or four at
 * a time (cuda-emu/cuda_runtime.h), and the stand-ins enforce what the GPU would: vector loads
 * aligned to their size, cuBLASLt pointers as aligned as the heuristic was told.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cudaBlockSource } from '../../src/codegen/cuda/cuda-block.js';
import type { TilingOverride } from '../../src/codegen/cuda/cuda-kernel.js';
import { kernelPlan, packBlockWeights } from '../../src/codegen/kernel-plan.js';
import type { PyramidConvConfig } from '../../src/passes/delta-conv/op.js';
import { deltaConvBlockReference, type DeltaConvBlockWeights } from '../../src/reference/index.js';
import { maxRelError, randomArray, randomWeights } from '../reference/fixtures.js';
import { makeTempDir } from '../helpers/paths.js';
import { buildEmulated, elementBytes, floatsOf, hasGxx20, rounded } from './cuda-emu/emulate.js';

const GXX = hasGxx20('the generated whole-block CUDA on the CPU emulation');

const CASES: { config: PyramidConvConfig; shapes: [number, number, number][]; env?: Record<string, string>; tiling?: TilingOverride }[] = [
  // SD1.5-like: simple gate, K=9; batch 2; odd sizes; more than one pool token range (N > 512)
  { config: { channels: 32, inner: 16, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype: 'float32' }, shapes: [[2, 19, 35], [1, 3, 2]] },
  // PixArt-like: sigmoid gate, fp16 storage; C = 72 spans two 64-channel pool chunks
  { config: { channels: 72, inner: 16, kernel: 5, scales: [1, 0.5], gate: 'sigmoid', dtype: 'float16' }, shapes: [[2, 9, 7]] },
  // the 8×8 tiling of the GPU check's sweep (low-res tiles step by 7)
  { config: { channels: 32, inner: 16, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype: 'float16' }, shapes: [[2, 19, 35]], tiling: { th: 8, tw: 8, r: 4 } },
  // 4 A-channels per CTA (the sweep's c4)
  { config: { channels: 32, inner: 16, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype: 'float32' }, shapes: [[1, 19, 35]], tiling: { ca: 4 } },
  // Ci > C (U cannot be staged in `out`), three gates, odd Ci/2; cuBLASLt without batch-stride-0 support
  { config: { channels: 4, inner: 6, kernel: 3, scales: [1, 0.5, 0.25], gate: 'simple', dtype: 'float32' }, shapes: [[3, 17, 13]], env: { DELTAC_EMU_NO_BROADCAST: '1' } },
  // CTAs of 32 threads (one pool row of 64 tokens: 11 token ranges × 2 channel chunks per image), run in a
  // shuffled order, 4 at a time: the pool term must not depend on which CTA comes last, nor on the order
  { config: { channels: 72, inner: 16, kernel: 5, scales: [1, 0.5], gate: 'sigmoid', dtype: 'float32' }, shapes: [[2, 19, 35]], tiling: { ca: 2, th: 8, tw: 8, r: 2 },
    env: { DELTAC_EMU_CTA_ORDER: 'shuffle', DELTAC_EMU_CONCURRENT_CTAS: '4' } },
  // odd C in fp16: a pass's slices of x and out (b0·H·W·C elements in) are only 2-byte aligned, which
  // cuBLASLt must be told (the stand-in refuses a call less aligned than its heuristic assumed), and U
  // (Ci/2 even: pairs of channels per load) cannot be staged there; the pool term's loads go one by one.
  // CTAs in reverse order; a cuBLASLt that refuses the shared W only in cublasLtMatmul (after the heuristic)
  { config: { channels: 9, inner: 8, kernel: 3, scales: [1, 0.5], gate: 'simple', dtype: 'float16' }, shapes: [[3, 5, 7]],
    env: { DELTAC_EMU_CTA_ORDER: 'reverse', DELTAC_EMU_NO_BROADCAST: 'matmul' } },
];

/** The weights as the kernels read them (fp16 configurations round them). */
function roundedWeights(w: DeltaConvBlockWeights, half: boolean): DeltaConvBlockWeights {
  return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, rounded(v as Float32Array, half)])) as unknown as DeltaConvBlockWeights;
}

describe.skipIf(!GXX)('generated whole-block CUDA on a CPU emulation vs the reference', () => {
  for (const { config, shapes, env, tiling } of CASES) {
    const plan = kernelPlan(config);
    const fallback = env?.DELTAC_EMU_NO_BROADCAST !== undefined;
    it(`${plan.blockEntry}${fallback ? ' (per-batch GEMM fallback)' : ''}${env?.DELTAC_EMU_CTA_ORDER ? ` (CTAs ${env.DELTAC_EMU_CTA_ORDER})` : ''}${tiling ? ` (tiling ${JSON.stringify(tiling)})` : ''}`, { timeout: 120_000 }, () => {
      const { dir, cleanup } = makeTempDir('deltac-emu-block-');
      try {
        const exe = buildEmulated(cudaBlockSource(config, tiling), 'driver_block.cpp', dir, plan.id, { DELTAC_BLOCK_ENTRY: plan.blockEntry });
        const half = config.dtype === 'float16';
        const weights = randomWeights(config.channels, config.inner, config.kernel, config.scales.length, 11);
        fs.writeFileSync(path.join(dir, 'w.bin'), elementBytes(packBlockWeights(config, weights), half));
        for (const [b, h, w] of shapes) {
          const x = randomArray(b * h * w * config.channels, h * 7 + w);
          fs.writeFileSync(path.join(dir, 'x.bin'), elementBytes(x, half));
          const n = b * h * w * config.channels;
          const out = path.join(dir, 'out.bin');
          const log = execFileSync(exe, [path.join(dir, 'x.bin'), path.join(dir, 'w.bin'), out, String(b), String(h), String(w), String(n), String(half ? 2 : 4)], {
            encoding: 'utf8',
            env: { ...process.env, ...env },
          });
          const got = floatsOf(fs.readFileSync(out), half);
          const ref = deltaConvBlockReference(rounded(x, half), roundedWeights(weights, half), { batch: b, height: h, width: w }, config);
          // fp16: U and G are stored in fp16 between the launches (as on the GPU)
          expect(maxRelError(got, ref), `${plan.id} at ${b}×${h}×${w}`).toBeLessThan(half ? 2e-3 : 1e-5);
          const [, launches, matmuls] = /launches (\d+) matmuls (\d+)/.exec(log)!.map(Number);
          expect(launches, 'kernel launches of ours per call').toBe(1);
          expect(matmuls, 'cuBLASLt calls per call').toBe(fallback ? 1 + b : 2);
          // with one image's workspace the batch runs image by image and gives the same bytes (not when CTAs
          // run concurrently: the pool term's fp32 atomics then add in a racy order, as on a GPU)
          if (!env?.DELTAC_EMU_CONCURRENT_CTAS) expect(log).toContain('passes-equal 1');
          expect(Number(/launches-one-image (\d+)/.exec(log)![1])).toBe(b);
        }
      } finally {
        cleanup();
      }
    });
  }
});
