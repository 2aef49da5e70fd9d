// CPU emulation of cuda_fp16.h: IEEE half storage, conversions round to nearest even.
#pragma once
#include "cuda_runtime.h"
#include <cstdint>
#include <cstring>

struct __half { uint16_t bits; };
struct __half2 { __half x, y; };

inline float __half2float(__half h) {
  const uint32_t sign = (h.bits & 0x8000u) << 16, exp = (h.bits >> 10) & 0x1f, mant = h.bits & 0x3ff;
  uint32_t out;
  if (exp == 0) {
    if (mant == 0) out = sign;
    else {  // subnormal
      float f = static_cast<float>(mant) * 5.9604644775390625e-8f;
      std::memcpy(&out, &f, 4);
      out |= sign;
    }
  } else if (exp == 31) out = sign | 0x7f800000u | (mant << 13);
  else out = sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &out, 4);
  return f;
}

inline __half __float2half_rn(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int exp = static_cast<int>((x >> 23) & 0xff);
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return {static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u))};
  int e = exp - 112;
  if (e >= 0x1f) return {static_cast<uint16_t>(sign | 0x7c00u)};
  if (e <= 0) {
    if (e < -10) return {static_cast<uint16_t>(sign)};
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t m = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (m & 1))) ++m;
    return {static_cast<uint16_t>(sign | m)};
  }
  uint32_t m = mant >> 13;
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (m & 1))) {
    if (++m == 0x400u) { m = 0; if (++e >= 0x1f) return {static_cast<uint16_t>(sign | 0x7c00u)}; }
  }
  return {static_cast<uint16_t>(sign | (static_cast<uint32_t>(e) << 10) | m)};
}

inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
