// cuda/extent.h's division by multiply-high and shift, on the host (its device path differs only
// in computing mulhi with __umulhi), against plain 64-bit division: every divisor below 70,000,
// the powers of two and their neighbours, random 32-bit divisors, each at the dividends where a
// quotient steps and at the top of the 32-bit range; every dividend below 2^26 for a few divisors;
// and sizes and indices outside 32 bits, which divide plainly. Run by native/test/cpp_units.test.ts.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "cuda/extent.h"

using nodegrad::cuda::Extent;

namespace {

int64_t failures = 0, checks = 0;

void check(const Extent& e, int64_t i) {
  checks++;
  const int64_t want = i / e.n, got = e.divide(i);
  if (got != want && failures++ < 10) {
    std::printf("FAIL %lld / %lld: %lld, want %lld\n", (long long)i, (long long)e.n, (long long)got, (long long)want);
  }
}

// xorshift64: our own generator, so the cases never depend on the library's.
uint64_t state = 0x9e3779b97f4a7c15ull;
uint64_t next() {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

void around(int64_t d) {
  const Extent e(d);
  const int64_t top = 0xffffffffll;
  for (int64_t i : {int64_t(0), int64_t(1), d - 1, d, d + 1, 2 * d - 1, 2 * d, top, top - 1, top / d * d, top / d * d - 1}) {
    if (i >= 0 && i <= top) check(e, i);
  }
  for (int k = 0; k < 16; k++) check(e, int64_t(next() & uint64_t(top)));
}

}  // namespace

int main() {
  for (int64_t d = 1; d < 70000; d++) around(d);
  for (int s = 1; s < 32; s++) {
    for (int64_t d : {(int64_t(1) << s) - 1, int64_t(1) << s, (int64_t(1) << s) + 1}) around(d);
  }
  around(0xffffffffll);
  for (int k = 0; k < 20000; k++) around(std::max<int64_t>(int64_t(next() >> 32), 1));
  for (int64_t d : {3, 7, 10, 641, 3136, 65535}) {
    const Extent e(d);
    for (int64_t i = 0; i < (int64_t(1) << 26); i++) check(e, i);
  }
  // Outside 32 bits: indices of a large tensor, and sizes of 2^32 and over.
  for (int64_t d : {int64_t(3), int64_t(50176), int64_t(1) << 32, (int64_t(1) << 33) + 5}) {
    const Extent e(d);
    checks++;
    if (e.fast != (d < (int64_t(1) << 32))) failures++;
    for (int64_t i : {int64_t(1) << 32, (int64_t(1) << 40) + 12345, (int64_t(1) << 62) - 1}) check(e, i);
  }
  std::printf("extent: %lld checks, %lld failed\n", (long long)checks, (long long)failures);
  return failures ? 1 : 0;
}
