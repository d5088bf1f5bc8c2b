// Counter-based random draws (Philox4x32-10, Salmon et al. SC 2011) with the element mapping of
// packages/autograd/src/philox.ts: element i uses the block of counter offset + i under key seed,
// so every device draws exactly the numbers the 'ts' backend draws (core/hd.h).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/hd.h"

namespace nodegrad::math {

// Uniform8 and Uniform11: bfloat16's and float16's significand bits (philox.ts uniformHalf), so
// every draw is exact in the type.
enum class RandomKind { Uniform24, Uniform53, Uniform8, Uniform11, Normal, Bernoulli };

struct PhiloxBlock {
  uint32_t w[4];
};

NG_HD PhiloxBlock philox(uint64_t counter, uint64_t seed) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// A uniform in [0, 1) from 53 bits of two words.
NG_HD double u53(uint32_t a, uint32_t b) { return (double(a >> 5) * 67108864.0 + double(b >> 6)) / 9007199254740992.0; }

// The draw for one counter: a uniform in [0, 1) (24, 53, 8 or 11 random bits), a standard normal
// (Box-Muller in double), or `value` with probability p (else 0).
NG_HD double randomValue(RandomKind kind, uint64_t counter, uint64_t seed, double p, double value) {
  using std::cos;
  using std::log;
  using std::sqrt;
  const PhiloxBlock b = philox(counter, seed);
  switch (kind) {
    case RandomKind::Uniform24: return double(b.w[0] >> 8) / 16777216.0;
    case RandomKind::Uniform53: return u53(b.w[0], b.w[1]);
    case RandomKind::Uniform8: return double(b.w[0] >> 24) / 256.0;
    case RandomKind::Uniform11: return double(b.w[0] >> 21) / 2048.0;
    case RandomKind::Normal:
      return sqrt(-2.0 * log(1.0 - u53(b.w[0], b.w[1]))) * cos(6.283185307179586 * u53(b.w[2], b.w[3]));
    case RandomKind::Bernoulli: return u53(b.w[0], b.w[1]) < p ? value : 0.0;
  }
  return 0;
}

}  // namespace nodegrad::math
