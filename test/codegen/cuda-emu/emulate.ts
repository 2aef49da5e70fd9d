/**
 * Builds and runs generated CUDA on the CPU emulation in this folder (cuda_runtime.h,
 * cuda_fp16.h, cublasLt.h stand-ins): g++ compiles the .cu after a rewrite of its launch
 * syntax and dynamic shared memory, and a driver runs one entry point on files.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { systemDependency } from '../../helpers/system.js';
import { floatsFromHalfBits, halfBitsFromFloats } from '../../../src/codegen/host/webgpu-runtime.js';

export const EMU = import.meta.dirname;

/** Turns a generated .cu into C++ for the emulation (launch syntax and dynamic shared memory). */
export function emulatedSource(cu: string): string {
  return cu
    .replace(/extern __shared__ float4 (\w+)\[\];/g, 'float4* $1 = deltac_emu::shared_memory<float4>();')
    .replace(/(\w+)<<<([\s\S]*?)>>>\(/g, 'deltac_emu::launch($1, $2, ');
}

/**
 * g++ with C++20 <barrier> (std::thread per CUDA thread) is available; otherwise one loud
 * SKIPPED line for `suite` (a failure under DELTAC_REQUIRE_GXX=1, which .ci/run sets).
 */
export function hasGxx20(suite: string): boolean {
  let missing: string | null = null;
  try {
    execFileSync('g++', ['-std=c++20', '-x', 'c++', '-fsyntax-only', '-'], { input: '#include <barrier>\n', stdio: ['pipe', 'ignore', 'ignore'] });
  } catch {
    missing = 'g++ with C++20 <barrier> is not available';
  }
  return systemDependency({ suite, missing, hint: 'install g++ 12 or newer (apt-get install g++; `bash .ci/run` does it)', require: 'DELTAC_REQUIRE_GXX' });
}

/** Compiles `cu` + a driver into `dir/name`; `defines` become -D flags. */
export function buildEmulated(cu: string, driver: string, dir: string, name: string, defines: Record<string, string>): string {
  const src = path.join(dir, `${name}.cpp`);
  fs.writeFileSync(src, `${emulatedSource(cu)}\n#include "${driver}"\n`);
  const exe = path.join(dir, name);
  const flags = Object.entries(defines).map(([k, v]) => `-D${k}=${v}`);
  execFileSync('g++', ['-std=c++20', '-O0', '-pthread', `-I${EMU}`, ...flags, src, '-o', exe], { stdio: 'pipe' });
  return exe;
}

/** float32 values as the bytes of the element type. */
export function elementBytes(a: Float32Array, half: boolean): Buffer {
  return half ? Buffer.from(halfBitsFromFloats(a).buffer) : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** The bytes of an element-typed file as float32. */
export function floatsOf(raw: Buffer, half: boolean): Float32Array {
  const copy = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  return half ? floatsFromHalfBits(new Uint16Array(copy)) : new Float32Array(copy);
}

/** Rounds float32 values through the element type (what the kernels read). */
export function rounded(a: Float32Array, half: boolean): Float32Array {
  return half ? floatsFromHalfBits(halfBitsFromFloats(a)) : a;
}
