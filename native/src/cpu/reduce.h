// Reductions, data movement and softmax over contiguous buffers; reductions take T = float, double
// (which also holds int64) or a half type (BFloat16, Float16), softmax float or a half type. Sums
// accumulate in double; a half result is rounded once.
#pragma once
#include <vector>

#include "core/half.h"
#include "core/params.h"
#include "cpu/broadcast.h"

namespace nodegrad::cpu {

// The shape of a reduction's result: the reduced axes kept with size 1.
inline Shape keptShape(Shape shape, const std::vector<int64_t>& axes) {
  for (auto a : axes) shape[size_t(a)] = 1;
  return shape;
}

// Reduces over sorted, distinct axes; the output keeps them with size 1.
template <typename T>
void reduce(ReduceOp op, const T* x, const Shape& shape, const std::vector<int64_t>& axes, T* out);
// Running sums along one axis (from its end when reverse), accumulated in double as PyTorch's CPU
// cumsum accumulates a float, each output rounded once.
template <typename T>
void cumsum(const T* x, const Shape& shape, int64_t axis, bool reverse, T* out);
// log(sum(exp(x - m))) + m over the axes (kept with size 1), m the max, or 0 where that is +-inf.
template <typename T>
void logSumExp(const T* x, const Shape& shape, const std::vector<int64_t>& axes, T* out);
// The vector norm of order ord (2, 1, +-inf or any p > 0) over the axes, kept with size 1.
template <typename T>
void norm(const T* x, const Shape& shape, double ord, const std::vector<int64_t>& axes, T* out);
// Index of the first max (or min) along one axis, as double; NaN wins as in PyTorch.
template <typename T>
void argReduce(bool isMax, const T* x, const Shape& shape, int64_t axis, double* out);

// out[i] = src[base + sum_d idx_d * strides[d]] over outShape: transpose, broadcast and slice.
template <typename T>
void gatherStrided(const T* src, int64_t base, const std::vector<int64_t>& strides, const Shape& outShape, T* out) {
  forEachBroadcast(outShape, strides, strides, [&](int64_t o, int64_t is, int64_t) { out[o] = src[base + is]; });
}

template <typename T>
void softmax(bool log, const T* x, const Shape& shape, int64_t axis, T* out);

}  // namespace nodegrad::cpu
