// Counter-based random draws (Philox4x32-10, Salmon et al. SC 2011) with the element mapping of
// packages/autograd/src/philox.ts: element i uses the block of counter offset + i under key
// seed, so 'cpu' draws exactly the numbers every other backend draws.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nodegrad::cpu {

enum class RandomKind { Uniform24, Uniform53, Normal, Bernoulli };

// out[i] = the draw for counter offset + i: a uniform in [0, 1) (24 or 53 random bits), a
// standard normal (Box-Muller in double), or `value` with probability p (else 0).
template <typename T>
void randomFill(RandomKind kind, T* out, size_t n, uint64_t seed, uint64_t offset, double p, double value);

}  // namespace nodegrad::cpu
