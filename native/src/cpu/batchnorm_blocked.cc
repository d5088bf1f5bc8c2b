// Batch norm over [N, C, H, W] held in nChw{block}c (cpu/layout.h): the same statistics, affine
// and gradient as cpu/batchnorm.cc, with the channels in lanes of a block. One OpenMP task per
// (image, channel block) unit of S * block elements, so a unit of 8 or 16 lanes is read while it
// is in cache; a channels-last unit is a whole image. The padding lanes are
// never counted into a statistic and are written as zero. A half x is read widened element by
// element and y or dx rounded once on store (statistics in double, coefficients in float32, as
// for float32 input), so no float32 copy of the tensor is made.
#include <cmath>
#include <vector>

#include "core/half.h"
#include "core/simd_clones.h"
#include "cpu/batchnorm.h"
#include "cpu/layout.h"

namespace nodegrad::cpu {
namespace {

constexpr int64_t kParallelWork = 1 << 15;

struct Units {
  int64_t CB, P;  // channel blocks, units (N * CB)
};

Units unitsOf(BNLayout l, int block) {
  const int64_t CB = paddedChannels(l.C, block) / block;
  return {CB, l.N * CB};
}

// Per-lane vectors of a unit, by channel: padded lanes hold 0.
std::vector<float> padded(const std::vector<float>& v, int64_t C, int block) {
  std::vector<float> r(size_t(paddedChannels(C, block)), 0.f);
  for (int64_t c = 0; c < C; c++) r[size_t(c)] = v[size_t(c)];
  return r;
}

}  // namespace

template <typename T>
NG_SIMD_CLONES void batchNormStatsBlocked(const T* x, BNLayout l, int block, double eps, std::vector<double>& mean,
                           std::vector<double>& invstd) {
  const int64_t C = l.C, S = l.S, b = block;
  const Units u = unitsOf(l, block);
  // Per unit and lane: the sum and the squared deviations from the unit's own lane mean (two passes
  // over the unit), combined exactly across images as in batchNormStats (Chan et al. 1979).
  std::vector<double> sum(size_t(u.P * b)), sq(size_t(u.P * b));
#pragma omp parallel for schedule(static) if (u.P * S * b > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const T* a = x + p * S * b;
    double* s = sum.data() + p * b;
    double* r = sq.data() + p * b;
    std::vector<double> pm(static_cast<size_t>(b));
    for (int64_t i = 0; i < S; i++) {
#pragma omp simd
      for (int64_t k = 0; k < b; k++) s[k] += float(a[i * b + k]);
    }
    for (int64_t k = 0; k < b; k++) pm[size_t(k)] = s[k] / double(S);
    for (int64_t i = 0; i < S; i++) {
#pragma omp simd
      for (int64_t k = 0; k < b; k++) {
        const double d = float(a[i * b + k]) - pm[size_t(k)];
        r[k] += d * d;
      }
    }
  }
  const double M = double(l.N * S);
  mean.assign(size_t(C), 0.0);
  invstd.assign(size_t(C), 0.0);
  auto at = [&](int64_t n, int64_t c) { return size_t((n * u.CB + c / b) * b + c % b); };
  for (int64_t n = 0; n < l.N; n++) {
    for (int64_t c = 0; c < C; c++) mean[size_t(c)] += sum[at(n, c)];
  }
  for (int64_t c = 0; c < C; c++) mean[size_t(c)] /= M;
  for (int64_t n = 0; n < l.N; n++) {
    for (int64_t c = 0; c < C; c++) {
      const double d = sum[at(n, c)] / double(S) - mean[size_t(c)];
      invstd[size_t(c)] += sq[at(n, c)] + double(S) * d * d;
    }
  }
  for (int64_t c = 0; c < C; c++) invstd[size_t(c)] = 1.0 / std::sqrt(invstd[size_t(c)] / M + eps);
}

template <typename T>
NG_SIMD_CLONES void batchNormApplyBlocked(const T* x, T* y, BNLayout l, int block, const double* mean, const double* invstd,
                           const float* w, const float* b) {
  std::vector<float> scale(static_cast<size_t>(l.C)), shift(static_cast<size_t>(l.C));
  for (int64_t c = 0; c < l.C; c++) {
    const double sc = invstd[c] * (w ? double(w[c]) : 1.0);
    scale[size_t(c)] = float(sc);
    shift[size_t(c)] = float((b ? double(b[c]) : 0.0) - mean[c] * sc);
  }
  const auto k = padded(scale, l.C, block), t = padded(shift, l.C, block);
  const Units u = unitsOf(l, block);
  const int64_t S = l.S, bl = block;
#pragma omp parallel for schedule(static) if (u.P * S * bl > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const int64_t c0 = (p % u.CB) * bl;
    const T* a = x + p * S * bl;
    T* o = y + p * S * bl;
    for (int64_t i = 0; i < S; i++) {
      for (int64_t j = 0; j < bl; j++) o[i * bl + j] = T(float(a[i * bl + j]) * k[size_t(c0 + j)] + t[size_t(c0 + j)]);
    }
  }
  zeroBlockPadding({l.N, l.C, l.S, 1}, block, sizeof(T), y);  // 0 * a NaN in padding would not be 0
}

template <typename T>
NG_SIMD_CLONES void batchNormBackwardReduceBlocked(const T* dy, const T* x, BNLayout l, int block, const float* mean,
                                    std::vector<double>& sumDy, std::vector<double>& sumDyXmu) {
  const int64_t C = l.C, S = l.S, bl = block;
  const Units u = unitsOf(l, block);
  const auto m = padded(std::vector<float>(mean, mean + C), C, block);
  std::vector<double> ps(size_t(u.P * bl)), pt(size_t(u.P * bl));
#pragma omp parallel for schedule(static) if (u.P * S * bl > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const int64_t c0 = (p % u.CB) * bl;
    const T* g = dy + p * S * bl;
    const T* a = x + p * S * bl;
    double* s = ps.data() + p * bl;
    double* v = pt.data() + p * bl;
    for (int64_t i = 0; i < S; i++) {
#pragma omp simd
      for (int64_t j = 0; j < bl; j++) {
        const double gj = float(g[i * bl + j]);
        s[j] += gj;
        v[j] += gj * (float(a[i * bl + j]) - double(m[size_t(c0 + j)]));
      }
    }
  }
  sumDy.assign(size_t(C), 0.0);
  sumDyXmu.assign(size_t(C), 0.0);
  for (int64_t n = 0; n < l.N; n++) {
    for (int64_t c = 0; c < C; c++) {
      const size_t at = size_t((n * u.CB + c / bl) * bl + c % bl);
      sumDy[size_t(c)] += ps[at];
      sumDyXmu[size_t(c)] += pt[at];
    }
  }
}

template <typename T>
NG_SIMD_CLONES void batchNormBackwardElemtBlocked(const T* dy, const T* x, BNLayout l, int block, const float* mean,
                                   const BNGradCoefs& k, T* dx) {
  // As batchNormBackwardElemt, with the per-channel coefficients laid out by lane.
  const int64_t C = l.C, S = l.S, bl = block;
  const Units u = unitsOf(l, block);
  const auto m = padded(std::vector<float>(mean, mean + C), C, block);
  const auto gmp = padded(k.meanDy, C, block), kp = padded(k.k, C, block), fp = padded(k.f, C, block);
#pragma omp parallel for schedule(static) if (u.P * S * bl > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const int64_t c0 = (p % u.CB) * bl;
    const T* g = dy + p * S * bl;
    const T* a = x + p * S * bl;
    T* d = dx + p * S * bl;
    for (int64_t i = 0; i < S; i++) {
      for (int64_t j = 0; j < bl; j++) {
        const size_t c = size_t(c0 + j);
        d[i * bl + j] = T((float(g[i * bl + j]) - gmp[c] - (float(a[i * bl + j]) - m[c]) * kp[c]) * fp[c]);
      }
    }
  }
  zeroBlockPadding({l.N, l.C, l.S, 1}, block, sizeof(T), dx);
}

#define NG_BN_BLOCKED(T)                                                                                            \
  template void batchNormStatsBlocked<T>(const T*, BNLayout, int, double, std::vector<double>&,                     \
                                         std::vector<double>&);                                                    \
  template void batchNormApplyBlocked<T>(const T*, T*, BNLayout, int, const double*, const double*, const float*,   \
                                         const float*);                                                            \
  template void batchNormBackwardReduceBlocked<T>(const T*, const T*, BNLayout, int, const float*,                  \
                                                  std::vector<double>&, std::vector<double>&);                     \
  template void batchNormBackwardElemtBlocked<T>(const T*, const T*, BNLayout, int, const float*, const BNGradCoefs&, \
                                                 T*);
NG_BN_BLOCKED(float)
NG_BN_BLOCKED(BFloat16)
NG_BN_BLOCKED(Float16)
#undef NG_BN_BLOCKED

}  // namespace nodegrad::cpu
