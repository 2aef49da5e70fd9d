/**
 * Executes the generated CUDA on the CPU: each .cu is compiled with g++ against a
 * small emulation of the CUDA runtime (test/codegen/cuda-emu: one std::thread per
 * CUDA thread, std::barrier for __syncthreads, NaN-filled shared memory) and its C
 * entry point is run on random data, compared with the CPU reference. This checks
 * the kernels' indexing, tiling, halos, pooling and upsampling on machines without a
 * GPU (bench/gpu/run_gpu_check.py does the same on a real one).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cudaSource } from '../../src/codegen/cuda/cuda-kernel.js';
import { kernelPlan } from '../../src/codegen/kernel-plan.js';
import { halfBitsFromFloats, floatsFromHalfBits } from '../../src/codegen/host/webgpu-runtime.js';
import type { PyramidConvConfig } from '../../src/passes/delta-conv/op.js';
import { pyramidConvReference } from '../../src/reference/index.js';
import { maxRelError, randomArray } from '../reference/fixtures.js';

const EMU = path.resolve(import.meta.dirname, 'cuda-emu');

/** Turns a generated .cu into C++ for the emulation (launch syntax and dynamic shared memory). */
export function emulatedSource(cu: string): string {
  return cu
    .replace(/extern __shared__ float4 (\w+)\[\];/g, 'float4* $1 = deltac_emu::shared_memory<float4>();')
    .replace(/(\w+)<<<([\s\S]*?)>>>\(/g, 'deltac_emu::launch($1, $2, ');
}

function build(config: PyramidConvConfig, dir: string): string {
  const plan = kernelPlan(config);
  const src = path.join(dir, `${plan.id}.cpp`);
  fs.writeFileSync(src, `${emulatedSource(cudaSource(config))}\n#include "driver.cpp"\n`);
  const exe = path.join(dir, plan.id);
  execFileSync('g++', ['-std=c++20', '-O0', '-pthread', `-I${EMU}`, `-DDELTAC_ENTRY=${plan.entry}`, src, '-o', exe], { stdio: 'pipe' });
  return exe;
}

function runEmulated(exe: string, config: PyramidConvConfig, u: Float32Array, w: Float32Array, b: number, h: number, wd: number, dir: string): Float32Array {
  const half = config.dtype === 'float16';
  const bytes = (a: Float32Array) => (half ? Buffer.from(halfBitsFromFloats(a).buffer) : Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  fs.writeFileSync(path.join(dir, 'u.bin'), bytes(u));
  fs.writeFileSync(path.join(dir, 'w.bin'), bytes(w));
  const n = (b * h * wd * config.scales.length * config.inner) / 2;
  const esize = half ? 2 : 4;
  const out = path.join(dir, 'out.bin');
  execFileSync(exe, [path.join(dir, 'u.bin'), path.join(dir, 'w.bin'), out, String(b), String(h), String(wd), String(n), String(esize)], { stdio: 'pipe' });
  const raw = fs.readFileSync(out);
  const copy = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  return half ? floatsFromHalfBits(new Uint16Array(copy)) : new Float32Array(copy);
}

const CASES: { config: PyramidConvConfig; shapes: [number, number, number][] }[] = [
  // sd15-mini's K=9 layers; odd, non-divisible sizes; more than one tile in both directions
  { config: { channels: 32, inner: 16, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype: 'float32' }, shapes: [[2, 19, 35], [1, 3, 2]] },
  // PixArt's sigmoid gate, fp16 storage with fp32 accumulation
  { config: { channels: 32, inner: 16, kernel: 5, scales: [1, 0.5], gate: 'sigmoid', dtype: 'float16' }, shapes: [[2, 9, 7]] },
  // odd Ci/2 (scalar lanes), three gates, K=3
  { config: { channels: 12, inner: 6, kernel: 3, scales: [1, 0.5, 0.25], gate: 'simple', dtype: 'float32' }, shapes: [[1, 17, 13]] },
  // no full-resolution gate, K=13 (above 48 KiB of shared memory)
  { config: { channels: 32, inner: 16, kernel: 13, scales: [0.5], gate: 'sigmoid', dtype: 'float32' }, shapes: [[1, 21, 18]] },
];

function hasGxx20(): boolean {
  try {
    execFileSync('g++', ['-std=c++20', '-x', 'c++', '-fsyntax-only', '-'], { input: '#include <barrier>\n', stdio: ['pipe', 'ignore', 'ignore'] });
    return true;
  } catch {
    return false;
  }
}
const GXX = hasGxx20();
if (!GXX) console.warn('SKIPPED: g++ with C++20 <barrier> is not available, so the generated CUDA was not executed on the CPU emulation');

describe.skipIf(!GXX)('generated CUDA executed on a CPU emulation vs the reference', () => {
  for (const { config, shapes } of CASES) {
    const id = kernelPlan(config).id;
    it(id, { timeout: 120_000 }, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-emu-'));
      const exe = build(config, dir);
      for (const [b, h, w] of shapes) {
        const u = randomArray(b * h * w * config.inner, h * 31 + w);
        const wt = randomArray(config.scales.length * config.kernel ** 2 * config.inner, 5, 1 / config.kernel);
        const [uu, ww] = config.dtype === 'float16' ? [floatsFromHalfBits(halfBitsFromFloats(u)), floatsFromHalfBits(halfBitsFromFloats(wt))] : [u, wt];
        const ref = pyramidConvReference(uu, ww, { batch: b, height: h, width: w }, config);
        const got = runEmulated(exe, config, u, wt, b, h, w, dir);
        expect(maxRelError(got, ref), `${id} at ${b}×${h}×${w}`).toBeLessThan(config.dtype === 'float16' ? 1e-3 : 1e-5);
      }
    });
  }
});
