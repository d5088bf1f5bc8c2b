#include "cpu/reduce.h"

#include <cmath>
#include <limits>

namespace nodegrad::cpu {
namespace {

// [outer, len, inner] around one axis.
void split(const Shape& s, int64_t axis, int64_t* outer, int64_t* len, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int64_t d = 0; d < axis; d++) *outer *= s[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < s.size(); d++) *inner *= s[d];
  *len = s[size_t(axis)];
}

// Calls f(base, len, inner) for each line along axis (elements base + k * inner, k < len), the
// lines in parallel when there is enough work.
template <typename F>
void forEachLine(const Shape& shape, int64_t axis, F f) {
  int64_t outer, len, inner;
  split(shape, axis, &outer, &len, &inner);
#pragma omp parallel for if (outer * len * inner > 65536)
  for (int64_t p = 0; p < outer; p++) {
    for (int64_t q = 0; q < inner; q++) f(p * len * inner + q, len, inner);
  }
}

// Calls f(ix, io) for every input element: its offset, and its output's (0 strides on reduced dims).
template <typename F>
void forEachReduced(const Shape& shape, const std::vector<int64_t>& axes, F f) {
  const Shape outShape = keptShape(shape, axes);
  std::vector<int64_t> os(shape.size(), 0), xs(shape.size(), 0);
  int64_t a = 1;
  for (size_t d = outShape.size(); d-- > 0;) {
    os[d] = outShape[d] == 1 ? 0 : a;
    a *= outShape[d];
  }
  int64_t b = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    xs[d] = b;
    b *= shape[d];
  }
  forEachBroadcast(shape, xs, os, [&](int64_t, int64_t ix, int64_t io) { f(ix, io); });
}

}  // namespace

template <typename T>
void reduce(ReduceOp op, const T* x, const Shape& shape, const std::vector<int64_t>& axes, T* out) {
  const Shape outShape = keptShape(shape, axes);
  int64_t n = numel(outShape);
  // Accumulate in double: float32 sums of many terms lose digits the ts reference keeps.
  std::vector<double> acc(size_t(n), op == ReduceOp::Sum ? 0.0 : op == ReduceOp::Max ? -INFINITY : INFINITY);
  forEachReduced(shape, axes, [&](int64_t ix, int64_t io) {
    double v = x[ix];
    double& r = acc[size_t(io)];
    if (op == ReduceOp::Sum) r += v;
    else if (r != r) return;  // NaN already won
    else if (op == ReduceOp::Max) r = (v > r || v != v) ? v : r;
    else r = (v < r || v != v) ? v : r;
  });
  for (int64_t i = 0; i < n; i++) out[i] = T(acc[size_t(i)]);
}

template <typename T>
void argReduce(bool isMax, const T* x, const Shape& shape, int64_t axis, double* out) {
  int64_t outer, len, inner;
  split(shape, axis, &outer, &len, &inner);
  for (int64_t p = 0; p < outer; p++) {
    for (int64_t q = 0; q < inner; q++) {
      const T* base = x + p * len * inner + q;
      T best = base[0];
      int64_t at = 0;
      for (int64_t k = 1; k < len && best == best; k++) {
        T v = base[k * inner];
        if ((isMax ? v > best : v < best) || v != v) {
          best = v;
          at = k;
        }
      }
      out[p * inner + q] = double(at);
    }
  }
}

template <typename T>
void logSumExp(const T* x, const Shape& shape, const std::vector<int64_t>& axes, T* out) {
  const Shape outShape = keptShape(shape, axes);
  const size_t n = size_t(numel(outShape));
  std::vector<double> m(n, -INFINITY), s(n, 0.0);
  forEachReduced(shape, axes, [&](int64_t ix, int64_t io) {
    const double v = x[ix];
    double& r = m[size_t(io)];
    if (r == r) r = (v > r || v != v) ? v : r;  // NaN wins
  });
  for (auto& v : m) v = std::isinf(v) ? 0.0 : v;  // inf - inf would be NaN
  forEachReduced(shape, axes, [&](int64_t ix, int64_t io) { s[size_t(io)] += std::exp(double(x[ix]) - m[size_t(io)]); });
  for (size_t i = 0; i < n; i++) out[i] = T(std::log(s[i]) + m[i]);
}

template <typename T>
void norm(const T* x, const Shape& shape, double ord, const std::vector<int64_t>& axes, T* out) {
  const Shape outShape = keptShape(shape, axes);
  const size_t n = size_t(numel(outShape));
  const bool extreme = std::isinf(ord);
  std::vector<double> acc(n, extreme ? (ord > 0 ? 0.0 : INFINITY) : 0.0);
  forEachReduced(shape, axes, [&](int64_t ix, int64_t io) {
    const double v = std::fabs(double(x[ix]));
    double& r = acc[size_t(io)];
    if (r != r) return;  // NaN already won
    if (v != v) r = v;
    else if (extreme) r = ord > 0 ? std::max(r, v) : std::min(r, v);
    else r += ord == 2 ? v * v : ord == 1 ? v : std::pow(v, ord);
  });
  for (size_t i = 0; i < n; i++) {
    const double r = acc[i];
    out[i] = T(extreme || ord == 1 ? r : ord == 2 ? std::sqrt(r) : std::pow(r, 1 / ord));
  }
}

template <typename T>
void cumsum(const T* x, const Shape& shape, int64_t axis, bool reverse, T* out) {
  forEachLine(shape, axis, [=](int64_t base, int64_t len, int64_t inner) {
    double acc = 0;
    for (int64_t j = 0; j < len; j++) {
      const int64_t k = base + (reverse ? len - 1 - j : j) * inner;
      acc += double(x[k]);
      out[k] = T(acc);
    }
  });
}

template <typename T>
void softmax(bool log, const T* x, const Shape& shape, int64_t axis, T* out) {
  forEachLine(shape, axis, [=](int64_t base, int64_t len, int64_t inner) {
    const T* xb = x + base;
    T* ob = out + base;
    // Subtract the max for stability; sums in double.
    double m = -INFINITY;
    for (int64_t k = 0; k < len; k++) m = std::max(m, double(xb[k * inner]));
    double s = 0;
    for (int64_t k = 0; k < len; k++) s += std::exp(double(xb[k * inner]) - m);
    double ls = std::log(s);
    for (int64_t k = 0; k < len; k++) {
      double z = double(xb[k * inner]) - m;
      ob[k * inner] = T(log ? z - ls : std::exp(z) / s);
    }
  });
}

#define NG_REDUCE(T)                                                                    \
  template void reduce<T>(ReduceOp, const T*, const Shape&, const std::vector<int64_t>&, T*); \
  template void argReduce<T>(bool, const T*, const Shape&, int64_t, double*);                 \
  template void cumsum<T>(const T*, const Shape&, int64_t, bool, T*);                            \
  template void logSumExp<T>(const T*, const Shape&, const std::vector<int64_t>&, T*);            \
  template void norm<T>(const T*, const Shape&, double, const std::vector<int64_t>&, T*);
NG_REDUCE(float)
NG_REDUCE(double)
NG_REDUCE(BFloat16)
NG_REDUCE(Float16)
#undef NG_REDUCE
template void softmax<float>(bool, const float*, const Shape&, int64_t, float*);
template void softmax<double>(bool, const double*, const Shape&, int64_t, double*);
template void softmax<BFloat16>(bool, const BFloat16*, const Shape&, int64_t, BFloat16*);
template void softmax<Float16>(bool, const Float16*, const Shape&, int64_t, Float16*);

}  // namespace nodegrad::cpu
