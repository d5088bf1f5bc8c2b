#include "cpu/random.h"

namespace nodegrad::cpu {

template <typename T>
void randomFill(math::RandomKind kind, T* out, size_t n, uint64_t seed, uint64_t offset, double p, double value) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < int64_t(n); i++) out[i] = T(math::randomValue(kind, offset + uint64_t(i), seed, p, value));
}

template void randomFill<float>(math::RandomKind, float*, size_t, uint64_t, uint64_t, double, double);
template void randomFill<double>(math::RandomKind, double*, size_t, uint64_t, uint64_t, double, double);
template void randomFill<BFloat16>(math::RandomKind, BFloat16*, size_t, uint64_t, uint64_t, double, double);
template void randomFill<Float16>(math::RandomKind, Float16*, size_t, uint64_t, uint64_t, double, double);

}  // namespace nodegrad::cpu
