/**
 * The generated CUDA compiles with nvcc for sm_80 and sm_90 — every configuration
 * of sd15-mini and pixart-mini and the full SD1.5 / PixArt-Σ layer shapes in fp16
 * and fp32, the pyramid-conv files and the whole-block files (which need cuBLASLt's
 * headers) — and exports its C entry points. Every configuration lives in its own
 * namespace, so all files are compiled as one translation unit, for both
 * architectures in one nvcc run (device passes in parallel); the first file is
 * included with nothing before it, which shows that each file is self-contained.
 *
 * cuBLASLt's headers come from $DELTAC_CUBLAS_INCLUDE, ~/.cache/deltac/cublas/include
 * (extract `nvidia/cu13/include` of the `nvidia-cublas` wheel there:
 * bench/gpu/fetch-cublas-headers.sh) or the CUDA toolkit's include folder.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cudaHeader } from '../../src/codegen/cuda/cuda-header.js';
import { cudaSource } from '../../src/codegen/cuda/cuda-kernel.js';
import { cudaBlockSource } from '../../src/codegen/cuda/cuda-block.js';
import { emitKernels } from '../../src/codegen/emit.js';
import { kernelPlan } from '../../src/codegen/kernel-plan.js';
import type { PyramidConvConfig } from '../../src/passes/delta-conv/op.js';
import { systemDependency } from '../helpers/system.js';
import { fixtureLayers, pyramidModel } from '../reference/fixtures.js';
import { makeTempDir } from '../helpers/paths.js';

/** Every folder this file writes lies in here, removed after the run. */
const TMP = makeTempDir('deltac-codegen-');
afterAll(TMP.cleanup);

const run = promisify(execFile);

function hasNvcc(): boolean {
  try {
    execFileSync('nvcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const NVCC = systemDependency({
  suite: 'the generated CUDA compiled by nvcc',
  missing: hasNvcc() ? null : 'nvcc is not on PATH',
  hint: 'install the CUDA toolkit',
  require: 'DELTAC_REQUIRE_NVCC',
});

/** A folder holding cublasLt.h, or undefined. */
function cublasInclude(): string | undefined {
  const candidates = [process.env.DELTAC_CUBLAS_INCLUDE, path.join(os.homedir(), '.cache/deltac/cublas/include'), '/usr/local/cuda/include'];
  return candidates.find((d) => d && fs.existsSync(path.join(d, 'cublasLt.h')));
}
const CUBLAS = NVCC
  ? systemDependency({
      suite: 'the whole-block .block.cu files compiled by nvcc',
      missing: cublasInclude() ? null : 'cublasLt.h not found ($DELTAC_CUBLAS_INCLUDE, ~/.cache/deltac/cublas/include, /usr/local/cuda/include)',
      hint: 'run `bash bench/gpu/fetch-cublas-headers.sh`',
      require: 'DELTAC_REQUIRE_CUBLAS',
    }) && cublasInclude()
  : undefined;
const gencode = ['80', '90'].flatMap((sm) => ['-gencode', `arch=compute_${sm},code=sm_${sm}`]);

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
    const dir = fs.mkdtempSync(path.join(TMP.dir, 'deltac-cuda-'));
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
    // A non-zero exit of nvcc rejects the promise: the test fails with nvcc's stderr.
    const { stderr } = await run('nvcc', ['-std=c++17', ...gencode, '--threads', '2', '-Xptxas', '-v', '-c', umbrella, '-o', obj], { maxBuffer: 1 << 24 });
    // ptxas produced machine code of the one kernel (the conv grid) of every configuration for both targets
    for (const sm of ['sm_80', 'sm_90']) {
      const compiled = stderr.match(new RegExp(`Compiling entry function '\\w+' for '${sm}'`, 'g')) ?? [];
      expect(compiled, sm).toHaveLength(12);
    }
    // at most a few bytes of register spills: __launch_bounds__ promises the CTAs per SM that shared
    // memory allows (K = 13 spilled 28 bytes, 120 reloaded, inside the conv loop without it)
    const spills = [...stderr.matchAll(/(\d+) bytes spill stores/g)].map((m) => Number(m[1]));
    expect(Math.max(0, ...spills)).toBeLessThanOrEqual(8);
    {
      const symbols = execFileSync('nm', ['-g', '--defined-only', obj], { encoding: 'utf8' });
      for (const e of entries) {
        expect(symbols, `${path.basename(obj)}: ${e}`).toMatch(new RegExp(`^[0-9a-f]+ T ${e}$`, 'm'));
        expect(symbols).toMatch(new RegExp(`^[0-9a-f]+ T ${e}_ws$`, 'm'));
        expect(symbols).toMatch(new RegExp(`^[0-9a-f]+ T ${e}_workspace_size$`, 'm'));
        expect(symbols).toMatch(new RegExp(`^[0-9a-f]+ T ${e}_launch_info$`, 'm'));
      }
    }
  });

  it.skipIf(!CUBLAS)('compiles the whole-block files (cuBLASLt) for sm_80 and sm_90 and exports their entry points', { timeout: 300_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(TMP.dir, 'deltac-cuda-block-'));
    const px = emitKernels(pyramidModel(fixtureLayers('pixart-mini')), path.join(dir, 'pixart-mini'));
    const files = px.manifest.kernels.map((k) => path.join(dir, 'pixart-mini', k.block_cuda));
    const entries = px.manifest.kernels.map((k) => k.block_entry);
    // the fp16 full-size configurations (the fp32 ones differ only in the element type)
    for (const c of fullModelConfigs().filter((x) => x.dtype === 'float16')) {
      const plan = kernelPlan(c);
      const file = path.join(dir, `${plan.id}.block.cu`);
      fs.writeFileSync(file, cudaBlockSource(c));
      files.push(file);
      entries.push(plan.blockEntry);
    }
    const umbrella = path.join(dir, 'all.cu');
    fs.writeFileSync(umbrella, files.map((f) => `#include "${f}"`).join('\n') + '\n');
    const obj = path.join(dir, 'all.o');
    const { stderr } = await run('nvcc', ['-std=c++17', ...gencode, '--threads', '2', `-I${CUBLAS}`, '-Xptxas', '-v', '-c', umbrella, '-o', obj], { maxBuffer: 1 << 24 });
    for (const sm of ['sm_80', 'sm_90']) {
      const compiled = stderr.match(new RegExp(`Compiling entry function '\\w+' for '${sm}'`, 'g')) ?? [];
      expect(compiled, sm).toHaveLength(files.length);
    }
    const symbols = execFileSync('nm', ['-g', '--defined-only', obj], { encoding: 'utf8' });
    for (const e of entries) {
      expect(symbols).toMatch(new RegExp(`^[0-9a-f]+ T ${e}$`, 'm'));
      expect(symbols).toMatch(new RegExp(`^[0-9a-f]+ T ${e}_workspace_size$`, 'm'));
    }
    // the cuBLASLt calls are left to -lcublasLt
    expect(execFileSync('nm', ['-u', obj], { encoding: 'utf8' })).toMatch(/cublasLtMatmul$/m);
  });

  it('writes a deltac_kernels.h that C and C++ compilers accept', () => {
    const dir = fs.mkdtempSync(path.join(TMP.dir, 'deltac-h-'));
    const header = path.join(dir, 'deltac_kernels.h');
    fs.writeFileSync(header, cudaHeader(fullModelConfigs()));
    for (const lang of ['c', 'c++']) execFileSync('gcc', ['-fsyntax-only', '-Wall', '-Werror', '-x', lang, header]);
    expect(fs.readFileSync(header, 'utf8')).toContain('size_t deltac_pyramid_conv_c1152_ci576_k13_s1_0p5_sigmoid_f16_workspace_size(int batch, int height, int width);');
    expect(fs.readFileSync(header, 'utf8')).toContain(
      'int deltac_block_c1152_ci576_k13_s1_0p5_sigmoid_f16(const void* x, const void* weights, void* out, int batch, int height, int width,\n    void* workspace, size_t workspace_bytes, void* cublaslt_handle, void* stream);',
    );
  });
});
