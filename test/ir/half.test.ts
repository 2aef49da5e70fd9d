/**
 * The whole-array 16-bit float conversions against the scalar reference ones:
 * every f16 and bf16 bit pattern, and a few million float32 values chosen where
 * rounding goes wrong (ties, one ulp either side, subnormals, the 65504/65520 top).
 */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import {
  bfloat16BitsToFloat32,
  bfloat16ToFloat32Array,
  float32ToBfloat16Array,
  float32ToBfloat16Bits,
  float32ToHalfArray,
  float32ToHalfBits,
  halfBitsToFloat32,
  halfToFloat32Array,
} from '../../src/ir/half.js';
import { Tensor } from '../../src/ir/tensor.js';

const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0]!;
const hex = (u: number) => `0x${(u >>> 0).toString(16)}`;
const ALL16 = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
const isHalfNaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBf16NaN = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;

/** xorshift32: the same "random" bit patterns on every run. */
function randomBits(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x;
  }
  return out;
}

/** float32 bit patterns where f32 → f16 rounding is easy to get wrong. */
function hardFloat32Bits(): Uint32Array {
  const bits: number[] = [];
  const around = (u: number) => {
    for (let d = -2; d <= 2; d++) bits.push((u + d) >>> 0, ((u + d) ^ 0x80000000) >>> 0);
  };
  // every finite half, and the exact midpoint (a tie) between it and the next one, ± 2 ulp
  for (let h = 0; h < 0x7c00; h++) {
    const lo = halfBitsToFloat32(h);
    const hi = halfBitsToFloat32(h + 1); // h = 0x7bff: hi = Inf, the midpoint is 65520
    around(f32Bits(lo));
    around(f32Bits(h === 0x7bff ? 65520 : (lo + hi) / 2));
  }
  // every float32 exponent: its ends; from 2^-37 to 2^23 (past both ends of the halves)
  // the mantissas at each 13-bit rounding boundary and tie
  for (let e = 0; e < 256; e++) around(e << 23), around((e << 23) | 0x7fffff);
  for (let e = 90; e <= 150; e++) for (let m = 0; m < 0x800000; m += 0x1000) around((e << 23) | m);
  // the subnormal-half range in detail: 2^-26 … 2^-14, every 2^-10 of each binade's mantissa
  for (let e = 100; e <= 113; e++) for (let m = 0; m < 0x800000; m += 0x2000) around((e << 23) | m);
  return Uint32Array.from(bits);
}

function firstMismatch(n: number, got: (i: number) => number, want: (i: number) => number, input: (i: number) => string): string | undefined {
  for (let i = 0; i < n; i++) {
    const g = got(i);
    const w = want(i);
    if (g !== w) return `${input(i)}: fast ${hex(g)}, reference ${hex(w)}`;
  }
  return undefined;
}

describe('halfToFloat32Array', () => {
  it('equals halfBitsToFloat32 bit for bit on all 65,536 half patterns (NaNs keep sign and payload)', () => {
    const out = halfToFloat32Array(ALL16);
    const bits = new Uint32Array(out.buffer);
    const bad = firstMismatch(
      0x10000,
      (h) => (isHalfNaN(h) ? (Number.isNaN(out[h]!) ? bits[h]! : -1) : bits[h]!),
      (h) => (isHalfNaN(h) ? (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0 : f32Bits(halfBitsToFloat32(h))),
      (h) => `half ${hex(h)}`,
    );
    expect(bad).toBeUndefined();
    expect(out[0x0001]).toBe(2 ** -24);
    expect(out[0x03ff]).toBe(2 ** -14 - 2 ** -24);
    expect(out[0x7bff]).toBe(65504);
    expect(Object.is(out[0x8000], -0)).toBe(true);
    expect(out[0xfc00]).toBe(-Infinity);
  });

  it('writes into a given array at its offset', () => {
    const out = new Float32Array(8).fill(7);
    halfToFloat32Array(Uint16Array.of(0x3c00, 0xc000), out.subarray(3, 5));
    expect(Array.from(out)).toEqual([7, 7, 7, 1, -2, 7, 7, 7]);
  });
});

describe('float32ToHalfArray', () => {
  it('equals float32ToHalfBits on ties, ±2 ulp around them, every exponent and the subnormal range', () => {
    const src = hardFloat32Bits();
    expect(src.length).toBeGreaterThan(1_000_000);
    const values = new Float32Array(src.buffer);
    const out = float32ToHalfArray(values);
    const bad = firstMismatch(src.length, (i) => out[i]!, (i) => float32ToHalfBits(values[i]!), (i) => `f32 ${hex(src[i]!)}`);
    expect(bad).toBeUndefined();
  });

  it('equals float32ToHalfBits on a million random bit patterns (NaN payloads included)', () => {
    const src = randomBits(1_000_000, 0x9e3779b9);
    const values = new Float32Array(src.buffer);
    const out = float32ToHalfArray(values);
    const bad = firstMismatch(src.length, (i) => out[i]!, (i) => float32ToHalfBits(values[i]!), (i) => `f32 ${hex(src[i]!)}`);
    expect(bad).toBeUndefined();
  });

  it('round-trips every half pattern (NaNs to a quiet NaN of the same sign)', () => {
    const back = float32ToHalfArray(halfToFloat32Array(ALL16));
    const bad = firstMismatch(0x10000, (h) => back[h]!, (h) => (isHalfNaN(h) ? (h & 0x8000) | 0x7e00 : h), (h) => `half ${hex(h)}`);
    expect(bad).toBeUndefined();
  });

  it('rounds the edge cases as IEEE 754 says', () => {
    const up = (v: number) => new Float32Array(new Uint32Array([f32Bits(v) + 1]).buffer)[0]!;
    const down = (v: number) => new Float32Array(new Uint32Array([f32Bits(v) - 1]).buffer)[0]!;
    const cases: [number, number][] = [
      [65504, 0x7bff],
      [down(65520), 0x7bff], // just below the tie: the largest half
      [65520, 0x7c00], // the tie between 65504 (odd) and 65536 rounds to even: Inf
      [-65520, 0xfc00],
      [up(65520), 0x7c00],
      [65536, 0x7c00],
      [3.4028234663852886e38, 0x7c00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [NaN, 0x7e00],
      [0, 0x0000],
      [-0, 0x8000],
      [1.401298464324817e-45, 0x0000], // least float32 subnormal
      [2 ** -25, 0x0000], // tie between 0 and the least half subnormal: to even (0)
      [up(2 ** -25), 0x0001],
      [down(2 ** -25), 0x0000],
      [-(2 ** -24), 0x8001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units: to even (2)
      [5 * 2 ** -25, 0x0002], // tie between 2 and 3 units: to even (2)
      [2 ** -14 - 2 ** -25, 0x0400], // tie between the largest subnormal (odd) and the least normal
      [down(2 ** -14 - 2 ** -25), 0x03ff],
      [1 + 2 ** -11, 0x3c00], // tie → even (down)
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
      [2048 + 1, 0x6800], // 2049 is a tie between 2048 and 2050
      [2048 + 3, 0x6802],
    ];
    const out = float32ToHalfArray(Float32Array.from(cases, (c) => c[0]));
    expect(Array.from(out, hex)).toEqual(cases.map((c) => hex(c[1])));
    expect(Array.from(out)).toEqual(cases.map((c) => float32ToHalfBits(c[0])));
    const negNaN = new Float32Array(new Uint32Array([0xffc00001]).buffer);
    expect(hex(float32ToHalfArray(negNaN)[0]!)).toBe('0xfe00');
  });
});

describe('bfloat16 arrays', () => {
  it('bfloat16ToFloat32Array equals bfloat16BitsToFloat32 on all 65,536 patterns', () => {
    const out = bitsOf(bfloat16ToFloat32Array(ALL16));
    // the fast path keeps NaN payloads; the reference reads through a float, which may not
    const bad = firstMismatch(0x10000, (b) => out[b]!, (b) => (isBf16NaN(b) ? (b << 16) >>> 0 : f32Bits(bfloat16BitsToFloat32(b))), (b) => `bf16 ${hex(b)}`);
    expect(bad).toBeUndefined();
    expect(ALL16.filter(isBf16NaN).every((b) => Number.isNaN(bfloat16BitsToFloat32(b)))).toBe(true);
  });

  it('float32ToBfloat16Array equals float32ToBfloat16Bits on random and hard bit patterns', () => {
    const hard = hardFloat32Bits();
    const src = new Uint32Array(hard.length + 1_000_000);
    src.set(hard);
    src.set(randomBits(1_000_000, 12345), hard.length);
    const values = new Float32Array(src.buffer);
    const out = float32ToBfloat16Array(values);
    const bad = firstMismatch(src.length, (i) => out[i]!, (i) => float32ToBfloat16Bits(values[i]!), (i) => `f32 ${hex(src[i]!)}`);
    expect(bad).toBeUndefined();
  });
});

function bitsOf(f: Float32Array): Uint32Array {
  return new Uint32Array(f.buffer, f.byteOffset, f.length);
}

describe('Tensor casts use the array conversions', () => {
  const refHalf = (h: Uint16Array) => Array.from(h, (x) => f32Bits(halfBitsToFloat32(x)));

  it('reads f16 bytes at an odd offset (copied) and at an even one (a view)', () => {
    const halves = randomBits(1001, 7).map((x) => x & 0x7bff); // finite halves, both signs
    const h16 = Uint16Array.from(halves, (x, i) => (i % 2 ? x | 0x8000 : x));
    for (const offset of [1, 2]) {
      const buf = new Uint8Array(h16.byteLength + offset + 1);
      buf.set(new Uint8Array(h16.buffer), offset);
      const t = new Tensor(DataType.FLOAT16, [h16.length], { kind: 'inline', bytes: buf.subarray(offset, offset + h16.byteLength), encoding: 'raw' });
      expect(Array.from(bitsOf(t.toFloat32()))).toEqual(refHalf(h16));
      const f = t.castTo(DataType.FLOAT);
      expect(f.dtype).toBe(DataType.FLOAT);
      expect(Array.from(bitsOf(f.readFloat32()))).toEqual(refHalf(h16));
      expect(Array.from(new Uint16Array(f.castTo(DataType.FLOAT16).bytes().slice().buffer))).toEqual(Array.from(h16));
    }
  });

  it('builds f16 and bf16 from JS numbers the way the scalar path did (rounded to float32 first)', () => {
    const values = [0.1, -1 / 3, 65519.99, 65520, 1e-8, 2 ** -25 + 2 ** -60, NaN, -Infinity, 1 + 2 ** -11 + 2 ** -40];
    const h = new Uint16Array(Tensor.fromFloat32(values, [values.length], DataType.FLOAT16).bytes().slice().buffer);
    expect(Array.from(h)).toEqual(values.map(float32ToHalfBits));
    const b = new Uint16Array(Tensor.fromFloat32(values, [values.length], DataType.BFLOAT16).bytes().slice().buffer);
    expect(Array.from(b)).toEqual(values.map(float32ToBfloat16Bits));
  });
});
