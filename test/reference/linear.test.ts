import fs from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { compileLinearWat, linearWasmModule, MODULE_PATH } from '../../scripts/build-linear-wasm.js';
import { linear, linearJs } from '../../src/reference/delta-conv-block.js';
import { LINEAR_WASM_BASE64 } from '../../src/reference/linear-wasm.js';
import { compareArrays } from '../../src/runtime/compare.js';

/** Standard normal floats from a 32-bit LCG (Box–Muller), the same for the same seed. */
function normals(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 2 ** 32; // in (0, 1]
  };
  const a = new Float32Array(n);
  for (let k = 0; k < n; k++) a[k] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return a;
}

/** The plain loop, summed in float64 (not rounded to float32). */
function linearF64(x: Float32Array, rows: number, inDim: number, w: Float32Array, bias: Float32Array, outDim: number): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let p = 0; p < rows; p++) {
    for (let o = 0; o < outDim; o++) {
      let sum = bias[o]!;
      for (let i = 0; i < inDim; i++) sum += x[p * inDim + i]! * w[o * inDim + i]!;
      y[p * outDim + o] = sum;
    }
  }
  return y;
}

/** max |actual − expected| / max |expected| */
const relError = (actual: Float32Array, expected: Float64Array) => compareArrays(actual, expected).rel;

// [rows, inDim, outDim]: blocks of 4 with and without leftover rows, outputs and inputs
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 1], [4, 4, 4], [4, 1, 4], [5, 3, 6], [7, 9, 5], [8, 16, 8], [3, 5, 2],
  [1, 33, 9], [9, 1, 13], [12, 31, 4], [4, 30, 1], [6, 64, 11], [17, 130, 23], [46, 1280, 640],
];

function problem(rows: number, inDim: number, outDim: number, seed: number) {
  return {
    x: normals(rows * inDim, seed),
    w: normals(outDim * inDim, seed + 1),
    bias: normals(outDim, seed + 2),
  };
}

describe('linear (WebAssembly SIMD)', () => {
  it('runs SIMD here (not the JS fallback)', () => {
    expect(WebAssembly.validate(Buffer.from(LINEAR_WASM_BASE64, 'base64'))).toBe(true);
  });

  it.each(SHAPES)('matches the float64 loop: rows %i, inDim %i, outDim %i', (rows, inDim, outDim) => {
    const { x, w, bias } = problem(rows, inDim, outDim, rows * 1000 + inDim * 10 + outDim);
    const y = linear(x, rows, inDim, w, bias, outDim);
    expect(y).toBeInstanceOf(Float32Array);
    expect(y.length).toBe(rows * outDim);
    expect(relError(y, linearF64(x, rows, inDim, w, bias, outDim))).toBeLessThanOrEqual(2e-6);
  });

  it.each(SHAPES)('the JS fallback matches too: rows %i, inDim %i, outDim %i', (rows, inDim, outDim) => {
    const { x, w, bias } = problem(rows, inDim, outDim, rows * 1000 + inDim * 10 + outDim);
    expect(relError(linearJs(x, rows, inDim, w, bias, outDim), linearF64(x, rows, inDim, w, bias, outDim))).toBeLessThanOrEqual(2e-6);
  });

  it('falls back to linearJs where WebAssembly SIMD is missing', async () => {
    const { x, w, bias } = problem(9, 130, 7, 11);
    vi.resetModules(); // a fresh delta-conv-block.js, whose kernel is not tried yet
    const validate = vi.spyOn(WebAssembly, 'validate').mockReturnValue(false);
    try {
      const fresh = await import('../../src/reference/delta-conv-block.js');
      expect(fresh.linear(x, 9, 130, w, bias, 7)).toEqual(linearJs(x, 9, 130, w, bias, 7));
    } finally {
      validate.mockRestore();
    }
    // the kernel's float32 sums differ from the fallback's somewhere: the fallback did run
    expect(linear(x, 9, 130, w, bias, 7)).not.toEqual(linearJs(x, 9, 130, w, bias, 7));
  });

  it('reads only the first rows·inDim of x (subarrays of longer arrays)', () => {
    const { x, w, bias } = problem(6, 10, 5, 7);
    expect(linear(x.subarray(10, 40), 3, 10, w, bias, 5)).toEqual(linear(x.slice(10, 40), 3, 10, w, bias, 5));
  });

  it('propagates a NaN in x to that row’s outputs only', () => {
    for (const [rows, inDim, outDim, p, i] of [[8, 12, 8, 5, 11], [6, 7, 6, 4, 6], [1, 1, 1, 0, 0]]) {
      const { x, w, bias } = problem(rows!, inDim!, outDim!, 3);
      x[p! * inDim! + i!] = NaN;
      const y = linear(x, rows!, inDim!, w, bias, outDim!);
      for (let q = 0; q < rows!; q++) {
        for (let o = 0; o < outDim!; o++) expect(Number.isNaN(y[q * outDim! + o]!), `y[${q}, ${o}]`).toBe(q === p);
      }
    }
  });
});

describe('linear-wasm.ts', () => {
  it('is what scripts/build-linear-wasm.ts makes of linear.wat now (npm run build:wasm)', async () => {
    const bytes = await compileLinearWat();
    expect(Buffer.from(LINEAR_WASM_BASE64, 'base64').equals(Buffer.from(bytes))).toBe(true);
    expect(fs.readFileSync(MODULE_PATH, 'utf8')).toBe(linearWasmModule(bytes));
    // browsers compile synchronously on their main thread only under 4 KB (see linear())
    expect(bytes.length).toBeLessThan(4096);
  });
});
