#include "cpu/batchnorm.h"

#include <algorithm>
#include <cmath>

namespace nodegrad::cpu {
namespace {

// Below this many elements a pass runs on one thread (a parallel region costs microseconds).
constexpr int64_t kParallelWork = 1 << 15;

// With S == 1 ([N, C] input) a plane is one element, so the per-plane passes would spend their
// time on loop overhead: there the channel sums are column sums of an [N, C] matrix instead, over
// blocks of channels in parallel, rows in order (so each channel sums in the 'ts' backend's order).
template <typename F>
void overChannelBlocks(int64_t N, int64_t C, F f) {
  const int64_t B = 256, nb = (C + B - 1) / B;
#pragma omp parallel for schedule(static) if (N * C > kParallelWork)
  for (int64_t b = 0; b < nb; b++) f(b * B, std::min(C, b * B + B));
}

// Per-channel scale and shift in float: y = relu?(x * scale + shift + residual?).
template <bool Res, bool Relu>
void applyAffine(const float* x, float* y, BNLayout l, const float* scale, const float* shift, const float* res) {
  const int64_t N = l.N, C = l.C, S = l.S;
#pragma omp parallel for collapse(2) schedule(static) if (N * C * S > kParallelWork)
  for (int64_t n = 0; n < N; n++) {
    for (int64_t c = 0; c < C; c++) {
      const float k = scale[c], t = shift[c];
      const int64_t off = (n * C + c) * S;
      const float* a = x + off;
      float* o = y + off;
#pragma omp simd
      for (int64_t i = 0; i < S; i++) {
        float v = a[i] * k + t;
        if constexpr (Res) v = v + res[off + i];
        o[i] = Relu ? reluOf(v) : v;
      }
    }
  }
}

// dy, or 0 where the fused ReLU passed nothing (the mask recomputed from x).
template <bool Mask>
inline float maskedGrad(float g, float a, float k, float t) {
  if constexpr (Mask) return reluPasses(a * k + t) ? g : 0.f;
  else return g;
}

}  // namespace

void batchNormStats(const float* x, BNLayout l, double eps, std::vector<double>& mean, std::vector<double>& invstd) {
  const int64_t N = l.N, C = l.C, S = l.S;
  const double M = double(N * S);
  mean.assign(size_t(C), 0.0);
  invstd.assign(size_t(C), 0.0);
  double* m = mean.data();
  double* q = invstd.data();  // the sum of squared deviations until the end
  if (S == 1) {
    // Two passes over the [N, C] matrix: the mean, then squared deviations, as the 'ts' backend.
    overChannelBlocks(N, C, [&](int64_t c0, int64_t c1) {
      for (int64_t n = 0; n < N; n++) {
        for (int64_t c = c0; c < c1; c++) m[c] += x[n * C + c];
      }
      for (int64_t c = c0; c < c1; c++) m[c] /= M;
      for (int64_t n = 0; n < N; n++) {
        for (int64_t c = c0; c < c1; c++) {
          const double d = x[n * C + c] - m[c];
          q[c] += d * d;
        }
      }
    });
  } else {
    // Each plane's sum and sum of squared deviations from its own mean, by two passes over the
    // plane while it is in cache; the planes then combine exactly (Chan et al. 1979):
    // M2 = sum_p [ q_p + S (mean_p - mean)^2 ]. As free of cancellation as two passes over the
    // channel, with one read of x from memory.
    const int64_t P = N * C;
    std::vector<double> sum(static_cast<size_t>(P)), sq(static_cast<size_t>(P));
#pragma omp parallel for schedule(static) if (P * S > kParallelWork)
    for (int64_t p = 0; p < P; p++) {
      const float* a = x + p * S;
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < S; i++) s += a[i];
      const double pm = s / double(S);
      double r = 0;
#pragma omp simd reduction(+ : r)
      for (int64_t i = 0; i < S; i++) {
        const double d = a[i] - pm;
        r += d * d;
      }
      sum[size_t(p)] = s;
      sq[size_t(p)] = r;
    }
    for (int64_t n = 0; n < N; n++) {
      for (int64_t c = 0; c < C; c++) m[c] += sum[size_t(n * C + c)];
    }
    for (int64_t c = 0; c < C; c++) m[c] /= M;
    for (int64_t n = 0; n < N; n++) {
      for (int64_t c = 0; c < C; c++) {
        const double d = sum[size_t(n * C + c)] / double(S) - m[c];
        q[c] += sq[size_t(n * C + c)] + double(S) * d * d;
      }
    }
  }
  // Biased variance, as PyTorch normalizes with.
  for (int64_t c = 0; c < C; c++) q[c] = 1.0 / std::sqrt(q[c] / M + eps);
}

BNAffine batchNormAffine(int64_t C, const float* mean, const float* invstd, const float* w, const float* b) {
  BNAffine a{std::vector<float>(size_t(C)), std::vector<float>(size_t(C))};
  for (int64_t c = 0; c < C; c++) {
    const double sc = double(invstd[c]) * (w ? double(w[c]) : 1.0);
    a.scale[size_t(c)] = float(sc);
    a.shift[size_t(c)] = float((b ? double(b[c]) : 0.0) - double(mean[c]) * sc);
  }
  return a;
}

void batchNormApply(const float* x, float* y, BNLayout l, const BNAffine& a, const float* residual, bool relu) {
  withSwitches(residual != nullptr, relu, [&](auto res, auto act) {
    applyAffine<res, act>(x, y, l, a.scale.data(), a.shift.data(), residual);
  });
}

template <bool Mask>
void backwardReduce(const float* dy, const float* x, BNLayout l, const float* mean, const float* ks, const float* ts,
                    double* s, double* t) {
  const int64_t N = l.N, C = l.C, S = l.S;
  if (S == 1) {
    overChannelBlocks(N, C, [&](int64_t c0, int64_t c1) {
      for (int64_t n = 0; n < N; n++) {
        for (int64_t c = c0; c < c1; c++) {
          const float a = x[n * C + c];
          const double g = maskedGrad<Mask>(dy[n * C + c], a, Mask ? ks[c] : 0.f, Mask ? ts[c] : 0.f);
          s[c] += g;
          t[c] += g * (a - double(mean[c]));
        }
      }
    });
    return;
  }
  const int64_t P = N * C;
  std::vector<double> ps(static_cast<size_t>(P)), pt(static_cast<size_t>(P));
#pragma omp parallel for schedule(static) if (P * S > kParallelWork)
  for (int64_t p = 0; p < P; p++) {
    const float* g = dy + p * S;
    const float* a = x + p * S;
    const int64_t c = p % C;
    const double m = mean[c];
    double u = 0, v = 0;
    if constexpr (Mask) {
      // The masked gradient a chunk at a time, apart from the sums: selected inside the sums'
      // loop, the vectoriser left that loop scalar (5x slower).
      constexpr int64_t kChunk = 1024;
      float gm[kChunk];
      for (int64_t i0 = 0; i0 < S; i0 += kChunk) {
        const int64_t n = std::min(kChunk, S - i0);
#pragma omp simd
        for (int64_t i = 0; i < n; i++) gm[i] = maskedGrad<true>(g[i0 + i], a[i0 + i], ks[c], ts[c]);
#pragma omp simd reduction(+ : u, v)
        for (int64_t i = 0; i < n; i++) {
          const double gi = gm[i];
          u += gi;
          v += gi * (a[i0 + i] - m);
        }
      }
    } else {
#pragma omp simd reduction(+ : u, v)
      for (int64_t i = 0; i < S; i++) {
        const double gi = g[i];
        u += gi;
        v += gi * (a[i] - m);
      }
    }
    ps[size_t(p)] = u;
    pt[size_t(p)] = v;
  }
  for (int64_t n = 0; n < N; n++) {
    for (int64_t c = 0; c < C; c++) {
      s[c] += ps[size_t(n * C + c)];
      t[c] += pt[size_t(n * C + c)];
    }
  }
}

void batchNormBackwardReduce(const float* dy, const float* x, BNLayout l, const float* mean, const BNAffine* mask,
                             std::vector<double>& sumDy, std::vector<double>& sumDyXmu) {
  sumDy.assign(size_t(l.C), 0.0);
  sumDyXmu.assign(size_t(l.C), 0.0);
  if (mask) backwardReduce<true>(dy, x, l, mean, mask->scale.data(), mask->shift.data(), sumDy.data(), sumDyXmu.data());
  else backwardReduce<false>(dy, x, l, mean, nullptr, nullptr, sumDy.data(), sumDyXmu.data());
}

BNGradCoefs batchNormGradCoefs(int64_t C, const float* invstd, const float* w, const float* sumDy,
                               const float* sumDyXmu, double count) {
  BNGradCoefs r{std::vector<float>(size_t(C)), std::vector<float>(size_t(C)), std::vector<float>(size_t(C))};
  for (int64_t c = 0; c < C; c++) {
    const double is = invstd[c];
    r.meanDy[size_t(c)] = float(sumDy[c] / count);
    r.k[size_t(c)] = float(sumDyXmu[c] * is * is / count);
    r.f[size_t(c)] = float(is * (w ? double(w[c]) : 1.0));
  }
  return r;
}

template <bool Mask>
void backwardElemt(const float* dy, const float* x, BNLayout l, const float* mean, const BNGradCoefs& k,
                   const float* ks, const float* ts, float* dx) {
  const int64_t N = l.N, C = l.C, S = l.S;
  // x - mean is formed first so that an offset input does not cancel away float32 digits.
#pragma omp parallel for collapse(2) schedule(static) if (N * C * S > kParallelWork)
  for (int64_t n = 0; n < N; n++) {
    for (int64_t c = 0; c < C; c++) {
      const float m = mean[c], gmc = k.meanDy[size_t(c)], kc = k.k[size_t(c)], fc = k.f[size_t(c)];
      const float sc = Mask ? ks[c] : 0.f, sh = Mask ? ts[c] : 0.f;
      const float* g = dy + (n * C + c) * S;
      const float* a = x + (n * C + c) * S;
      float* d = dx + (n * C + c) * S;
#pragma omp simd
      for (int64_t i = 0; i < S; i++) d[i] = (maskedGrad<Mask>(g[i], a[i], sc, sh) - gmc - (a[i] - m) * kc) * fc;
    }
  }
}

void batchNormBackwardElemt(const float* dy, const float* x, BNLayout l, const float* mean, const BNGradCoefs& k,
                            const BNAffine* mask, float* dx) {
  if (mask) backwardElemt<true>(dy, x, l, mean, k, mask->scale.data(), mask->shift.data(), dx);
  else backwardElemt<false>(dy, x, l, mean, k, nullptr, nullptr, dx);
}

void batchNormUpdateRunning(float* runMean, float* runVar, int64_t C, const float* mean, const float* invstd,
                            double eps, double count, double factor) {
  const double unbias = count / (count - 1);
  for (int64_t c = 0; c < C; c++) {
    const double is = invstd[c], var = (1.0 / (is * is) - eps) * unbias;
    runMean[c] = float((1 - factor) * runMean[c] + factor * mean[c]);
    runVar[c] = float((1 - factor) * runVar[c] + factor * var);
  }
}

}  // namespace nodegrad::cpu
