/** Tensors, element types and the 16-bit float conversions. */
import { describe, expect, it } from 'vitest';
import { DataType, byteSizeOf, dtypeFromName, dtypeName } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import { bfloat16BitsToFloat32, float32ToBfloat16Bits, float32ToHalfBits, halfBitsToFloat32 } from '../../src/ir/half.js';
import { type ByteSource, Tensor } from '../../src/ir/tensor.js';

const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0]!;
const fromBits = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0]!;

describe('IEEE half', () => {
  it('converts known values', () => {
    expect(float32ToHalfBits(1)).toBe(0x3c00);
    expect(float32ToHalfBits(-2)).toBe(0xc000);
    expect(float32ToHalfBits(0.1)).toBe(0x2e66);
    expect(float32ToHalfBits(65504)).toBe(0x7bff);
    expect(float32ToHalfBits(-0)).toBe(0x8000);
    expect(float32ToHalfBits(Infinity)).toBe(0x7c00);
    expect(float32ToHalfBits(-Infinity)).toBe(0xfc00);
    expect(float32ToHalfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToHalfBits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(float32ToHalfBits(1e-9)).toBe(0x0000);
    const nan = float32ToHalfBits(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('rounds to nearest even, overflowing to infinity', () => {
    expect(float32ToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(float32ToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(float32ToHalfBits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(float32ToHalfBits(65519)).toBe(0x7bff);
    expect(float32ToHalfBits(65520)).toBe(0x7c00); // tie at the top rounds to inf
    expect(float32ToHalfBits(1e6)).toBe(0x7c00);
    expect(float32ToHalfBits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
    expect(float32ToHalfBits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 subnormal units
    expect(float32ToHalfBits(2 ** -14 - 2 ** -26)).toBe(0x0400); // subnormal rounding up into the normals
  });

  it('round-trips every half value exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const f = halfBitsToFloat32(h);
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN) {
        expect(Number.isNaN(f)).toBe(true);
        continue;
      }
      if (float32ToHalfBits(f) !== h) throw new Error(`half 0x${h.toString(16)} → ${f} → 0x${float32ToHalfBits(f).toString(16)}`);
    }
  });
});

describe('bfloat16', () => {
  it('converts known values', () => {
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80);
    expect(float32ToBfloat16Bits(-2)).toBe(0xc000);
    expect(float32ToBfloat16Bits(Infinity)).toBe(0x7f80);
    expect(bfloat16BitsToFloat32(0x3f80)).toBe(1);
    expect(bfloat16BitsToFloat32(0x4049)).toBe(3.140625);
    const nan = float32ToBfloat16Bits(NaN);
    expect(Number.isNaN(bfloat16BitsToFloat32(nan))).toBe(true);
    // a NaN whose payload sits in the low bits must not become infinity
    expect(Number.isNaN(bfloat16BitsToFloat32(float32ToBfloat16Bits(fromBits(0x7f800001))))).toBe(true);
  });

  it('rounds to nearest even', () => {
    expect(float32ToBfloat16Bits(fromBits(0x3f808000))).toBe(0x3f80); // tie → even
    expect(float32ToBfloat16Bits(fromBits(0x3f818000))).toBe(0x3f82); // tie → even (up)
    expect(float32ToBfloat16Bits(fromBits(0x3f808001))).toBe(0x3f81);
    expect(float32ToBfloat16Bits(fromBits(0x7f7fffff))).toBe(0x7f80); // max float rounds to inf
    expect(float32ToBfloat16Bits(fromBits(0xff7fffff))).toBe(0xff80);
  });

  it('round-trips every bfloat16 value exactly', () => {
    for (let b = 0; b < 0x10000; b++) {
      const f = bfloat16BitsToFloat32(b);
      if (Number.isNaN(f)) continue;
      expect(f32Bits(f) >>> 16).toBe(b);
      if (float32ToBfloat16Bits(f) !== b) throw new Error(`bf16 0x${b.toString(16)} does not round-trip`);
    }
  });
});

describe('element types', () => {
  it('names and sizes', () => {
    expect(dtypeName(DataType.FLOAT16)).toBe('f16');
    expect(dtypeName(DataType.BFLOAT16)).toBe('bf16');
    expect(dtypeName(99)).toBe('dtype99');
    expect(dtypeFromName('i64')).toBe(DataType.INT64);
    expect(dtypeFromName('dtype99')).toBe(99);
    expect(dtypeFromName('float')).toBeUndefined();
    expect(byteSizeOf(DataType.FLOAT16, 3)).toBe(6);
    expect(byteSizeOf(DataType.INT4, 3)).toBe(2); // packed, rounded up
    expect(byteSizeOf(DataType.BOOL, 5)).toBe(5);
  });
});

describe('Tensor', () => {
  it('builds f16 and bf16 tensors from float32 and reads them back', () => {
    const values = [0, 1, -2.5, 0.1, 65504, 3.14159];
    const h = Tensor.fromFloat32(values, [2, 3], DataType.FLOAT16);
    expect(h.byteLength).toBe(12);
    expect(Array.from(new Uint16Array(h.bytes().slice().buffer))).toEqual([0, 0x3c00, 0xc100, 0x2e66, 0x7bff, 0x4248]);
    expect(Array.from(h.toFloat32())).toEqual(values.map((v) => halfBitsToFloat32(float32ToHalfBits(v))));
    const b = Tensor.fromFloat32(values, [6], DataType.BFLOAT16);
    expect(Array.from(b.toFloat32())).toEqual(values.map((v) => bfloat16BitsToFloat32(float32ToBfloat16Bits(v))));
    expect(b.toFloat32()[5]).toBe(3.140625);
  });

  it('casts between float types', () => {
    const t = Tensor.fromFloat32([1.5, -0.1], [2]);
    expect(t.castTo(DataType.FLOAT)).toBe(t);
    const h = t.castTo(DataType.FLOAT16);
    expect(h.dtype).toBe(DataType.FLOAT16);
    expect(h.dims).toEqual([2]);
    expect(Array.from(h.toFloat32())).toEqual([1.5, halfBitsToFloat32(float32ToHalfBits(-0.1))]);
    expect(Array.from(h.castTo(DataType.DOUBLE).toFloat32())).toEqual(Array.from(h.toFloat32()));
  });

  it('reads int64 elements exactly below 2^53', () => {
    const t = Tensor.fromInt64([0, -1, 2 ** 53 - 1, -(2 ** 40)]);
    expect(t.dims).toEqual([4]);
    expect(t.toNumbers()).toEqual([0, -1, 2 ** 53 - 1, -(2 ** 40)]);
    expect(Array.from(t.toFloat32())).toEqual([0, -1, 2 ** 53, -(2 ** 40)]);
  });

  it('reads external bytes lazily, on every call', () => {
    let reads = 0;
    const backing = new Uint8Array(new Float32Array([7, 8, 9, 10]).buffer);
    const source: ByteSource = {
      description: 'fake',
      size: () => backing.length,
      read: (offset, length) => {
        reads++;
        return backing.slice(offset, offset + length);
      },
    };
    const t = new Tensor(DataType.FLOAT, [2], { kind: 'external', source, location: 'w.bin', offset: 8, length: 8, extraEntries: [] });
    expect(reads).toBe(0);
    expect(t.isExternal).toBe(true);
    expect(Array.from(t.toFloat32())).toEqual([9, 10]);
    expect(Array.from(t.toFloat32())).toEqual([9, 10]);
    expect(reads).toBe(2);
  });

  it('refuses to compute with elided or string data', () => {
    const elided = new Tensor(DataType.FLOAT, [2], { kind: 'elided', digest: 'sha256:0' });
    expect(() => elided.bytes()).toThrow(DeltacError);
    try {
      elided.bytes();
    } catch (e) {
      expect((e as DeltacError).code).toBe('DELTAC_E_TENSOR_DATA');
    }
    const strings = new Tensor(DataType.STRING, [1], { kind: 'strings', values: [new TextEncoder().encode('abc')] });
    expect(strings.byteLength).toBe(3);
    expect(() => strings.toNumbers()).toThrow(/holds strings/);
    expect(() => Tensor.fromFloat32([1], [1], DataType.INT32)).toThrow(/cannot produce i32/);
  });
});
