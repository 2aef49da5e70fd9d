/** NaN/±Inf scan of float weights: every float format, aligned or not, counts and the first index. */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { assertFinite, scanNonFinite, unflattenIndex } from '../../src/weights/nonfinite.js';
import { codeOf } from '../helpers/cli.js';
import { encodeFloats } from '../helpers/safetensors-writer.js';

function f64Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float64Array.from(values).buffer);
}

describe('scanNonFinite', () => {
  const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e3);
  values[3] = Infinity;
  values[500] = NaN;
  values[501] = -Infinity;
  values[999] = NaN;

  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`${dtype}: counts NaN, +Inf and -Inf and finds the first`, () => {
      const type = { F32: DataType.FLOAT, F16: DataType.FLOAT16, BF16: DataType.BFLOAT16 }[dtype];
      const bytes = new Uint8Array(encodeFloats(values, dtype));
      expect(scanNonFinite(bytes, type)).toEqual({ count: 4, nan: 2, posInf: 1, negInf: 1, first: 3 });
      // the same bytes at an odd offset go through the scratch buffer
      const shifted = new Uint8Array(bytes.length + 1);
      shifted.set(bytes, 1);
      expect(scanNonFinite(shifted.subarray(1), type)).toEqual({ count: 4, nan: 2, posInf: 1, negInf: 1, first: 3 });
    });
  }

  it('finite data, the largest finite values and subnormals pass', () => {
    const ok = Float32Array.from([3.4028234e38, -3.4028234e38, 1e-45, 0, -0]);
    expect(scanNonFinite(new Uint8Array(ok.buffer), DataType.FLOAT)).toBeNull();
    // f16: 65504 is the largest finite half; 0x7bff / 0xfbff
    expect(scanNonFinite(new Uint8Array(new Uint16Array([0x7bff, 0xfbff, 0x0001]).buffer), DataType.FLOAT16)).toBeNull();
    expect(scanNonFinite(new Uint8Array(new Uint16Array([0x7c00]).buffer), DataType.FLOAT16)).toMatchObject({ posInf: 1 });
    // bf16: 0x7f7f is finite, 0x7f80 +Inf, 0xffc0 NaN
    expect(scanNonFinite(new Uint8Array(new Uint16Array([0x7f7f, 0x7f80, 0xffc0]).buffer), DataType.BFLOAT16)).toEqual({ count: 2, nan: 1, posInf: 1, negInf: 0, first: 1 });
  });

  it('f64 tells NaN with a mantissa only in the low word from Inf', () => {
    const bytes = f64Bytes([1, -Infinity, 2]);
    expect(scanNonFinite(bytes, DataType.DOUBLE)).toEqual({ count: 1, nan: 0, posInf: 0, negInf: 1, first: 1 });
    const nanLow = new Uint32Array([0, 0, 1, 0x7ff00000]); // [0.0, NaN whose mantissa is 1]
    expect(scanNonFinite(new Uint8Array(nanLow.buffer), DataType.DOUBLE)).toEqual({ count: 1, nan: 1, posInf: 0, negInf: 0, first: 1 });
  });

  it('a large unaligned tensor is scanned in pieces with the right first index', () => {
    const n = 100_000; // > one 64 KiB scratch chunk
    const data = new Float32Array(n);
    data[70_000] = NaN;
    data[99_999] = Infinity;
    const bytes = new Uint8Array(n * 4 + 2);
    bytes.set(new Uint8Array(data.buffer), 2);
    expect(scanNonFinite(bytes.subarray(2), DataType.FLOAT)).toEqual({ count: 2, nan: 1, posInf: 1, negInf: 0, first: 70_000 });
  });

  it('16-bit formats: every bit pattern, in either half of a 32-bit word, is flagged exactly when its exponent is all ones', () => {
    for (const [dtype, exp] of [[DataType.FLOAT16, 0x7c00], [DataType.BFLOAT16, 0x7f80]] as const) {
      let flagged = 0;
      for (let bits = 0; bits < 0x10000; bits++) {
        const nonFinite = (bits & exp) === exp;
        flagged += nonFinite ? 1 : 0;
        for (const at of [6, 7]) {
          const data = new Uint16Array(9).fill(0x3c00); // finite in both formats (1.0 in f16)
          data[at] = bits;
          const found = scanNonFinite(new Uint8Array(data.buffer), dtype);
          if ((found !== null) !== nonFinite) throw new Error(`dtype ${dtype}: pattern 0x${bits.toString(16)} at ${at} flagged ${found !== null}`);
          if (found) expect(found.first).toBe(at);
        }
      }
      expect(flagged).toBe(dtype === DataType.FLOAT16 ? 2048 : 256);
    }
  });

  it('integer tensors are never non-finite', () => {
    expect(scanNonFinite(new Uint8Array(new Int32Array([0x7f800000]).buffer), DataType.INT32)).toBeNull();
  });
});

describe('assertFinite', () => {
  it('names the tensor, the count and the first index in row-major coordinates', () => {
    const data = new Float32Array(6 * 5);
    data[17] = NaN;
    data[29] = NaN;
    const t = Tensor.fromFloat32(data, [6, 5]);
    expect(unflattenIndex(17, [6, 5])).toEqual([3, 2]);
    expect(codeOf(() => assertFinite(t, 'block.conv1.conv_up.weight', 'checkpoint "x.safetensors"', 're-download it'))).toBe(
      'DELTAC_E_WEIGHTS_NONFINITE: tensor "block.conv1.conv_up.weight" of checkpoint "x.safetensors" (f32[6, 5]) holds 2 NaN among 30 values, the first at index 17 ([3, 2]); re-download it',
    );
    expect(codeOf(() => assertFinite(Tensor.fromFloat32([1, 2], [2]), 'b', 'c', 'd'))).toBe('no error');
  });
});
