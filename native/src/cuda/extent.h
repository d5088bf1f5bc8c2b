// A size that divides fast: the index arithmetic of the 'cuda' kernels (StridedIndex, batch norm's
// channel of an element) divides every element's index by sizes known at launch. A GPU has no
// integer divider, and its 64-bit division is a long software routine; a fixed divisor d can be
// applied as a multiply-high and a shift instead (Granlund and Montgomery, "Division by invariant
// integers using multiplication", 1994, section 4): for 1 <= d < 2^32 and 0 <= i < 2^32,
//   i / d = (mulhi(i, m) + i) >> s,  s = ceil(log2 d),  m = floor(2^32 (2^s - d) / d) + 1,
// m < 2^32 since d > 2^(s-1), and the sum taken in 64 bits. Other sizes and indices divide plainly.
#pragma once
#include <cstdint>

#include "core/hd.h"

namespace nodegrad::cuda {

struct Extent {
  int64_t n = 0;
  uint32_t magic = 0, shift = 0;
  bool fast = false;

  Extent() = default;
  // Implicit, so that a size is assigned and read as the int64_t it holds.
  NG_HD Extent(int64_t v) : n(v), fast(v >= 1 && v <= int64_t(0xffffffff)) {
    if (!fast) return;
    while ((uint64_t(1) << shift) < uint64_t(v)) shift++;
    magic = uint32_t((uint64_t(1) << 32) * ((uint64_t(1) << shift) - uint64_t(v)) / uint64_t(v) + 1);
  }
  NG_HD operator int64_t() const { return n; }
  NG_HD Extent& operator*=(int64_t v) { return *this = Extent(n * v); }

  // i / n, for 0 <= i.
  NG_HD int64_t divide(int64_t i) const {
    if (!fast || (uint64_t(i) >> 32) != 0) return i / n;
    const auto j = uint32_t(i);
#ifdef __CUDA_ARCH__
    const uint32_t t = __umulhi(j, magic);
#else
    const auto t = uint32_t((uint64_t(j) * magic) >> 32);
#endif
    return int64_t((uint64_t(t) + j) >> shift);
  }
};

}  // namespace nodegrad::cuda
