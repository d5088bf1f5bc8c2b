#include "core/half.h"

#include <stdexcept>
#include <string>

#include "core/simd_clones.h"

#if defined(__x86_64__) && !defined(__CUDACC__)
#include <immintrin.h>
#define NG_HAVE_F16C_PATH 1
#endif

namespace nodegrad {
namespace {

void requireHalf(DType d) {
  if (!isHalf(d)) throw std::logic_error(std::string("a half conversion got ") + dtypeName(d));
}

#ifdef NG_HAVE_F16C_PATH
// x86's F16C converts 8 elements an instruction, to nearest even with subnormals, as
// f16FromFloat does (MXCSR's DAZ is off in Node). It quiets signalling NaNs, which the scalar
// functions keep bit for bit: 8 elements holding a NaN, and the tail, take the scalar path.
__attribute__((target("avx,f16c"))) void f16FromFloatF16C(const float* src, uint16_t* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
      for (size_t j = i; j < i + 8; j++) dst[j] = f16FromFloat(src[j]);
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; i++) dst[i] = f16FromFloat(src[i]);
}

__attribute__((target("avx,f16c"))) void f16ToFloatF16C(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  const __m128i magnitude = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    if (_mm_movemask_epi8(_mm_cmpgt_epi16(_mm_and_si128(h, magnitude), inf))) {  // a NaN among the 8
      for (size_t j = i; j < i + 8; j++) dst[j] = f16ToFloat(src[j]);
      continue;
    }
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; i++) dst[i] = f16ToFloat(src[i]);
}

bool hasF16C() {
  static const bool yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return yes;
}
#endif

// Integer ops the compiler vectorizes, in the widest vectors the CPU has.
NG_SIMD_CLONES void bf16FromFloats(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = bf16FromFloat(src[i]);
}

NG_SIMD_CLONES void bf16ToFloats(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = bf16ToFloat(src[i]);
}

}  // namespace

void halfFromFloat(DType to, const float* src, void* dst, size_t n) {
  requireHalf(to);
  auto* d = static_cast<uint16_t*>(dst);
  if (to == DType::BF16) return bf16FromFloats(src, d, n);
#ifdef NG_HAVE_F16C_PATH
  if (hasF16C()) return f16FromFloatF16C(src, d, n);
#endif
  for (size_t i = 0; i < n; i++) d[i] = f16FromFloat(src[i]);
}

void halfToFloat(DType from, const void* src, float* dst, size_t n) {
  requireHalf(from);
  const auto* s = static_cast<const uint16_t*>(src);
  if (from == DType::BF16) return bf16ToFloats(s, dst, n);
#ifdef NG_HAVE_F16C_PATH
  if (hasF16C()) return f16ToFloatF16C(s, dst, n);
#endif
  for (size_t i = 0; i < n; i++) dst[i] = f16ToFloat(s[i]);
}

}  // namespace nodegrad
