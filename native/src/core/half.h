// The half types as every device stores them: bfloat16 and float16 bit patterns, with conversions
// to and from float32 that round to nearest even, bit for bit those of the 'ts' reference
// (packages/autograd/src/dtype.ts, roundBFloat16 and roundFloat16). Kernels widen each element to
// float (or double), compute, and round once on store: BFloat16(x) and Float16(x) take a double
// through float32 first, as a float32 value handed to a half kernel would be.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/dtype.h"
#include "core/hd.h"

namespace nodegrad {

NG_HD uint32_t floatBits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

NG_HD float bitsFloat(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// float32's top 16 bits, rounded to nearest even. A NaN the type can hold (its low 16 bits zero)
// keeps its bits, so a checkpoint's NaN payloads survive; any other NaN becomes the quiet NaN
// 0x7fc0, as c10 converts (packages/autograd/src/dtype.ts, roundInPlace).
NG_HD uint16_t bf16FromFloat(float f) {
  const uint32_t b = floatBits(f);
  // The rounding add cannot carry out of a NaN whose low 16 bits are zero, so it keeps those bits
  // itself: one select remains, which vectorizes as a compare and a blend.
  const bool quiet = ((b & 0x7fffffffu) > 0x7f800000u) & ((b & 0xffffu) != 0u);
  return uint16_t(quiet ? 0x7fc0u : (b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

NG_HD float bf16ToFloat(uint16_t h) { return bitsFloat(uint32_t(h) << 16); }

// IEEE binary16, to nearest even: subnormals below 2^-14, +-Infinity from 65520 up (F. Giesen's
// float_to_half_fast3_rtne: the subnormal case lets a float32 addition do the rounding). A NaN the
// type can hold (its low 13 bits zero) keeps its bits; any other becomes the signed quiet NaN.
NG_HD uint16_t f16FromFloat(float f) {
  const uint32_t x = floatBits(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | ((a & 0x1fffu) ? 0x7e00u : 0x7c00u | ((a >> 13) & 0x3ffu)));
  if (a >= 0x47800000u) return uint16_t(sign | 0x7c00u);  // 2^16 and up, infinity
  if (a < 0x38800000u) {  // below 2^-14: 2^-1 added aligns the 10 kept bits at the bottom of the significand
    const float magic = bitsFloat(0x3f000000u);
    return uint16_t(sign | (floatBits(bitsFloat(a) + magic) - 0x3f000000u));
  }
  const uint32_t odd = (a >> 13) & 1u;
  return uint16_t(sign | ((a + 0xc8000fffu + odd) >> 13));  // rebias the exponent (-112 << 23), round
}

NG_HD float f16ToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return bitsFloat(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    const float v = float(m) * 5.9604644775390625e-8f;  // m * 2^-24
    return sign ? -v : v;
  }
  return bitsFloat(sign | ((e + 112) << 23) | (m << 13));
}

// A stored element: converts to float implicitly (so comparisons and `double v = x[i]` read it),
// and is made from a number explicitly, rounding once.
struct BFloat16 {
  uint16_t bits;
  BFloat16() = default;
  // A float rounds directly: through double it would be a convert pair the compiler must keep
  // (it quiets a signaling NaN), which made a bf16 store five times slower in vectorized loops.
  NG_HD explicit BFloat16(float v) : bits(bf16FromFloat(v)) {}
  template <typename V>
  NG_HD explicit BFloat16(V v) : bits(bf16FromFloat(float(double(v)))) {}
  NG_HD operator float() const { return bf16ToFloat(bits); }
};

struct Float16 {
  uint16_t bits;
  Float16() = default;
  NG_HD explicit Float16(float v) : bits(f16FromFloat(v)) {}  // as BFloat16(float)
  template <typename V>
  NG_HD explicit Float16(V v) : bits(f16FromFloat(float(double(v)))) {}
  NG_HD operator float() const { return f16ToFloat(bits); }
};

// Whether T is one of the half types: kernels templated on the element type widen it to compute.
template <typename T>
constexpr bool kHalf = std::is_same_v<T, BFloat16> || std::is_same_v<T, Float16>;

// Whole arrays, on the host: float32 -> the half type `to` (rounded) and back.
void halfFromFloat(DType to, const float* src, void* dst, size_t n);
void halfToFloat(DType from, const void* src, float* dst, size_t n);

}  // namespace nodegrad

// Runs body with T = the element type of a float32 (float), bfloat16 (BFloat16), float16
// (Float16), or float64 and int64 (double) tensor.
#define NG_FLOAT_DISPATCH(dtype, ...)                  \
  if ((dtype) == ::nodegrad::DType::F32) {             \
    using T = float;                                   \
    __VA_ARGS__                                        \
  } else if ((dtype) == ::nodegrad::DType::BF16) {     \
    using T = ::nodegrad::BFloat16;                    \
    __VA_ARGS__                                        \
  } else if ((dtype) == ::nodegrad::DType::F16) {      \
    using T = ::nodegrad::Float16;                     \
    __VA_ARGS__                                        \
  } else {                                             \
    using T = double;                                  \
    __VA_ARGS__                                        \
  }
