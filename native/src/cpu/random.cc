#include "cpu/random.h"

#include <cmath>

namespace nodegrad::cpu {
namespace {

struct Block {
  uint32_t w[4];
};

Block philox(uint64_t counter, uint64_t seed) {
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

double u53(uint32_t a, uint32_t b) { return (double(a >> 5) * 67108864.0 + double(b >> 6)) / 9007199254740992.0; }

}  // namespace

template <typename T>
void randomFill(RandomKind kind, T* out, size_t n, uint64_t seed, uint64_t offset, double p, double value) {
  const double pi = 3.14159265358979323846;
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < int64_t(n); i++) {
    Block b = philox(offset + uint64_t(i), seed);
    double v = 0;
    switch (kind) {
      case RandomKind::Uniform24: v = double(b.w[0] >> 8) / 16777216.0; break;
      case RandomKind::Uniform53: v = u53(b.w[0], b.w[1]); break;
      case RandomKind::Normal:
        v = std::sqrt(-2.0 * std::log(1.0 - u53(b.w[0], b.w[1]))) * std::cos(2.0 * pi * u53(b.w[2], b.w[3]));
        break;
      case RandomKind::Bernoulli: v = u53(b.w[0], b.w[1]) < p ? value : 0.0; break;
    }
    out[i] = T(v);
  }
}

template void randomFill<float>(RandomKind, float*, size_t, uint64_t, uint64_t, double, double);
template void randomFill<double>(RandomKind, double*, size_t, uint64_t, uint64_t, double, double);

}  // namespace nodegrad::cpu
