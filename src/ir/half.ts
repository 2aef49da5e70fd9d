/** Conversions between float32 and the 16-bit float formats (IEEE half, bfloat16). */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE 754 half bits, round to nearest even. */
export function float32ToHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function halfBitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 → bfloat16 bits, round to nearest even (NaN stays NaN). */
export function float32ToBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bfloat16BitsToFloat32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/*
 * Whole-array conversions. The scalar functions above are the reference; these do
 * the same per element on integer views of the bits (no DataView, no call, no float
 * arithmetic), which is what makes an f16 checkpoint as cheap to bind as an f32 one.
 */

let halfTable: Uint32Array | undefined;

/** The float32 bits of every half value (256 KiB, built on first use). NaNs keep their sign and payload. */
function halfToFloat32Table(): Uint32Array {
  if (halfTable) return halfTable;
  const t = new Uint32Array(0x10000);
  for (let h = 0; h < 0x10000; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) t[h] = sign | 0x7f800000 | (mant << 13);
    else if (exp !== 0) t[h] = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant === 0) t[h] = sign;
    else {
      // subnormal: normalise the mantissa into the implicit bit
      let e = 113;
      let m = mant;
      while ((m & 0x400) === 0) {
        m <<= 1;
        e--;
      }
      t[h] = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
  }
  return (halfTable = t);
}

/** Half bits → float32, exact (NaNs keep sign and payload). `out` must hold `src.length` values. */
export function halfToFloat32Array(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const t = halfToFloat32Table();
  const o = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) o[i] = t[src[i]!]!;
  return out;
}

/**
 * float32 → half bits, round to nearest even, bit for bit what float32ToHalfBits
 * gives: subnormal halves rounded correctly, ±0 below half the least subnormal,
 * overflow (from 65520 up) to ±Inf, NaN to a quiet NaN of the same sign.
 */
export function float32ToHalfArray(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < s.length; i++) {
    const x = s[i]!;
    const sign = (x >>> 16) & 0x8000;
    const a = x & 0x7fffffff;
    if (a >= 0x38800000) {
      if (a >= 0x47800000) {
        // |x| ≥ 65536, Inf or NaN
        out[i] = a > 0x7f800000 ? sign | 0x7e00 : sign | 0x7c00;
      } else {
        // normal half: rebias the exponent, round the 13 dropped bits to nearest even;
        // a carry out of the mantissa bumps the exponent, up to 0x7c00 (Inf) from 65520
        out[i] = sign | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
      }
    } else if (a >= 0x33000000) {
      // subnormal half (2^-25 ≤ |x| < 2^-14); may round up to the least normal 0x0400
      const shift = 126 - (a >>> 23);
      const mant = (a & 0x7fffff) | 0x800000;
      let m = mant >>> shift;
      const rest = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rest > half || (rest === half && (m & 1) !== 0)) m++;
      out[i] = sign | m;
    } else {
      out[i] = sign;
    }
  }
  return out;
}

/** bfloat16 bits → float32, exact. */
export function bfloat16ToFloat32Array(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const o = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) o[i] = src[i]! << 16;
  return out;
}

/** float32 → bfloat16 bits, round to nearest even, bit for bit what float32ToBfloat16Bits gives. */
export function float32ToBfloat16Array(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < s.length; i++) {
    const x = s[i]!;
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}
