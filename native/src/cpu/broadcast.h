// Broadcasting as in PyTorch: shapes align from the right; a size-1 dim repeats.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/shape.h"

namespace nodegrad::cpu {

using ::nodegrad::fmtShape;
using ::nodegrad::numel;
using ::nodegrad::Shape;

inline Shape broadcastShapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; i++) {
    int64_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    int64_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    if (da != db && da != 1 && db != 1) throw std::runtime_error("shapes cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Strides of `s` seen from `out` (0 on broadcast dims).
inline std::vector<int64_t> broadcastStrides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t acc = 1;
  size_t lead = out.size() - s.size();
  for (size_t i = s.size(); i-- > 0;) {
    st[i + lead] = s[i] == 1 ? 0 : acc;
    acc *= s[i];
  }
  return st;
}

// Calls f(o, ia, ib) for each output element with the two operands' offsets; inner dim as a plain loop.
template <typename F>
void forEachBroadcast(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, F f) {
  int64_t n = numel(out);
  if (n == 0) return;
  size_t rank = out.size();
  if (rank == 0) { f(0, 0, 0); return; }
  int64_t inner = out[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1];
  std::vector<int64_t> idx(rank, 0);
  int64_t offA = 0, offB = 0;
  for (int64_t o = 0; o < n; o += inner) {
    for (int64_t j = 0, a = offA, b = offB; j < inner; j++, a += ia, b += ib) f(o + j, a, b);
    for (size_t d = rank - 1; d-- > 0;) {
      idx[d]++;
      offA += sa[d];
      offB += sb[d];
      if (idx[d] < out[d]) break;
      offA -= sa[d] * out[d];
      offB -= sb[d] * out[d];
      idx[d] = 0;
    }
  }
}

}  // namespace nodegrad::cpu
