// Random fills on the host: every element's draw is core/philox.h's, shared with 'cuda'.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/half.h"
#include "core/philox.h"

namespace nodegrad::cpu {

using math::RandomKind;

// out[i] = math::randomValue(kind, offset + i, seed, p, value), rounded to T (a half type through
// float32, as the 'ts' backend rounds).
template <typename T>
void randomFill(math::RandomKind kind, T* out, size_t n, uint64_t seed, uint64_t offset, double p, double value);

}  // namespace nodegrad::cpu
