// Batch norm over float32 [N, C, H, W] held in nChw{block}c (cpu/layout.h): the same statistics,
// affine and gradient as cpu/batchnorm.cc, with the channels in lanes of a block. One OpenMP task
// per (image, channel block) unit of S * block floats, so each unit is read while it is in cache;
// the padding lanes are never counted into a statistic and are written as zero.
#include <cmath>
#include <vector>

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

void batchNormStatsBlocked(const float* x, BNLayout l, int block, double eps, std::vector<double>& mean,
                           std::vector<double>& invstd) {
  const int64_t C = l.C, S = l.S, b = block;
  const Units u = unitsOf(l, block);
  // Per unit and lane: the sum and the squared deviations from the unit's own lane mean (two passes
  // in cache), combined exactly across images as in batchNormStats (Chan et al. 1979).
  std::vector<double> sum(size_t(u.P * b)), sq(size_t(u.P * b));
#pragma omp parallel for schedule(static) if (u.P * S * b > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const float* a = x + p * S * b;
    double s[16] = {0}, r[16] = {0}, pm[16];
    for (int64_t i = 0; i < S; i++) {
#pragma omp simd
      for (int64_t k = 0; k < b; k++) s[k] += a[i * b + k];
    }
    for (int64_t k = 0; k < b; k++) pm[k] = s[k] / double(S);
    for (int64_t i = 0; i < S; i++) {
#pragma omp simd
      for (int64_t k = 0; k < b; k++) {
        const double d = a[i * b + k] - pm[k];
        r[k] += d * d;
      }
    }
    for (int64_t k = 0; k < b; k++) {
      sum[size_t(p * b + k)] = s[k];
      sq[size_t(p * b + k)] = r[k];
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

void batchNormApplyBlocked(const float* x, float* y, BNLayout l, int block, const double* mean, const double* invstd,
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
    const float* a = x + p * S * bl;
    float* o = y + p * S * bl;
    for (int64_t i = 0; i < S; i++) {
#pragma omp simd
      for (int64_t j = 0; j < bl; j++) o[i * bl + j] = a[i * bl + j] * k[size_t(c0 + j)] + t[size_t(c0 + j)];
    }
  }
  zeroBlockPadding({l.N, l.C, l.S, 1}, block, y);  // 0 * a NaN in padding would not be 0
}

void batchNormBackwardReduceBlocked(const float* dy, const float* x, BNLayout l, int block, const float* mean,
                                    std::vector<double>& sumDy, std::vector<double>& sumDyXmu) {
  const int64_t C = l.C, S = l.S, bl = block;
  const Units u = unitsOf(l, block);
  const auto m = padded(std::vector<float>(mean, mean + C), C, block);
  std::vector<double> ps(size_t(u.P * bl)), pt(size_t(u.P * bl));
#pragma omp parallel for schedule(static) if (u.P * S * bl > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const int64_t c0 = (p % u.CB) * bl;
    const float* g = dy + p * S * bl;
    const float* a = x + p * S * bl;
    double s[16] = {0}, v[16] = {0};
    for (int64_t i = 0; i < S; i++) {
#pragma omp simd
      for (int64_t j = 0; j < bl; j++) {
        s[j] += g[i * bl + j];
        v[j] += double(g[i * bl + j]) * (a[i * bl + j] - double(m[size_t(c0 + j)]));
      }
    }
    for (int64_t j = 0; j < bl; j++) {
      ps[size_t(p * bl + j)] = s[j];
      pt[size_t(p * bl + j)] = v[j];
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

void batchNormBackwardElemtBlocked(const float* dy, const float* x, BNLayout l, int block, const float* mean,
                                   const BNGradCoefs& k, float* dx) {
  // As batchNormBackwardElemt, with the per-channel coefficients laid out by lane.
  const int64_t C = l.C, S = l.S, bl = block;
  const Units u = unitsOf(l, block);
  const auto m = padded(std::vector<float>(mean, mean + C), C, block);
  const auto gmp = padded(k.meanDy, C, block), kp = padded(k.k, C, block), fp = padded(k.f, C, block);
#pragma omp parallel for schedule(static) if (u.P * S * bl > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const int64_t c0 = (p % u.CB) * bl;
    const float* g = dy + p * S * bl;
    const float* a = x + p * S * bl;
    float* d = dx + p * S * bl;
    for (int64_t i = 0; i < S; i++) {
#pragma omp simd
      for (int64_t j = 0; j < bl; j++) {
        const size_t c = size_t(c0 + j);
        d[i * bl + j] = (g[i * bl + j] - gmp[c] - (a[i * bl + j] - m[c]) * kp[c]) * fp[c];
      }
    }
  }
  zeroBlockPadding({l.N, l.C, l.S, 1}, block, dx);
}

}  // namespace nodegrad::cpu
