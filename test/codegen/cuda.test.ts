/**
 * The generated CUDA compiles with nvcc for sm_80 and sm_90 — every configuration
 * of sd15-mini and pixart-mini and the full SD1.5 / PixArt-Σ layer shapes in fp16
 * and fp32 — and exports its C entry points. Every configuration lives in its own
 * namespace, so all files are compiled as one translation unit, for both
 * architectures in one nvcc run (device passes in parallel); the first file is
 * included with nothing before it, which shows that each file is self-contained.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cudaHeader, cudaSource } from '../../src/codegen/cuda/cuda-kernel.js';
import { emitKernels } from '../../src/codegen/emit.js';
import { kernelPlan } from '../../src/codegen/kernel-plan.js';
import type { PyramidConvConfig } from '../../src/passes/delta-conv/op.js';
import { fixtureLayers, pyramidModel } from '../reference/fixtures.js';

const run = promisify(execFile);

function hasNvcc(): boolean {
  try {
    execFileSync('nvcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const NVCC = hasNvcc();
if (!NVCC) console.warn('SKIPPED: nvcc is not on PATH, so the generated CUDA was not compiled (install the CUDA toolkit to run test/codegen/cuda.test.ts)');

function fullModelConfigs(): PyramidConvConfig[] {
  const out: PyramidConvConfig[] = [];
  for (const dtype of ['float16', 'float32'] as const) {
    for (const c of [320, 640, 1280]) out.push({ channels: c, inner: c / 2, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype });
    out.push({ channels: 1152, inner: 576, kernel: 13, scales: [1, 0.5], gate: 'sigmoid', dtype });
  }
  return out;
}

describe.skipIf(!NVCC)('generated CUDA (nvcc)', () => {
  it('compiles every configuration for sm_80 and sm_90 and exports the entry points', { timeout: 240_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-cuda-'));
    const sd = emitKernels(pyramidModel(fixtureLayers('sd15-mini')), path.join(dir, 'sd15-mini'));
    const px = emitKernels(pyramidModel(fixtureLayers('pixart-mini')), path.join(dir, 'pixart-mini'));
    const files = [
      ...sd.manifest.kernels.map((k) => path.join(dir, 'sd15-mini', k.cuda)),
      ...px.manifest.kernels.map((k) => path.join(dir, 'pixart-mini', k.cuda)),
    ];
    const entries = [...sd.manifest.kernels, ...px.manifest.kernels].map((k) => k.entry);
    for (const c of fullModelConfigs()) {
      const plan = kernelPlan(c);
      const file = path.join(dir, `${plan.id}.cu`);
      fs.writeFileSync(file, cudaSource(c));
      files.push(file);
      entries.push(plan.entry);
    }
    expect(files).toHaveLength(12);
    const umbrella = path.join(dir, 'all.cu');
    fs.writeFileSync(umbrella, files.map((f) => `#include "${f}"`).join('\n') + '\n');
    const obj = path.join(dir, 'all.o');
    const gencode = ['80', '90'].flatMap((sm) => ['-gencode', `arch=compute_${sm},code=sm_${sm}`]);
    // A non-zero exit of nvcc rejects the promise: the test fails with nvcc's stderr.
    const { stderr } = await run('nvcc', ['-std=c++17', ...gencode, '--threads', '2', '-Xptxas', '-v', '-c', umbrella, '-o', obj], { maxBuffer: 1 << 24 });
    // ptxas produced machine code of both kernels (conv grid + upsample) of every configuration for both targets
    for (const sm of ['sm_80', 'sm_90']) {
      const compiled = stderr.match(new RegExp(`Compiling entry function '\\w+' for '${sm}'`, 'g')) ?? [];
      expect(compiled, sm).toHaveLength(24);
    }
    {
      const symbols = execFileSync('nm', ['-g', '--defined-only', obj], { encoding: 'utf8' });
      for (const e of entries) {
        expect(symbols, `${path.basename(obj)}: ${e}`).toMatch(new RegExp(`^[0-9a-f]+ T ${e}$`, 'm'));
        expect(symbols).toMatch(new RegExp(`^[0-9a-f]+ T ${e}_ws$`, 'm'));
        expect(symbols).toMatch(new RegExp(`^[0-9a-f]+ T ${e}_workspace_size$`, 'm'));
      }
    }
  });

  it('writes a deltac_kernels.h that C and C++ compilers accept', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-h-'));
    const header = path.join(dir, 'deltac_kernels.h');
    fs.writeFileSync(header, cudaHeader(fullModelConfigs()));
    for (const lang of ['c', 'c++']) execFileSync('gcc', ['-fsyntax-only', '-Wall', '-Werror', '-x', lang, header]);
    expect(fs.readFileSync(header, 'utf8')).toContain('size_t deltac_pyramid_conv_c1152_ci576_k13_s1_0p5_sigmoid_f16_workspace_size(int batch, int height, int width);');
  });
});
