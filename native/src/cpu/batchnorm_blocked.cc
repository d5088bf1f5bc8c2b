// Batch norm over [N, C, H, W] held in nChw{block}c (cpu/layout.h): the same statistics, affine
// and gradient as cpu/batchnorm.cc, with the channels in lanes of a block. One OpenMP task per
// (image, channel block) unit of S * block elements, so a unit of 8 or 16 lanes is read while it
// is in cache; a channels-last unit is a whole image. The padding lanes are
// never counted into a statistic and are written as zero. A half x is read widened element by
// element and y or dx rounded once on store (statistics in double, coefficients in float32, as
// for float32 input), so no float32 copy of the tensor is made.
#include <algorithm>
#include <cmath>
#include <type_traits>
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

// The per-lane sums of the statistics and the gradient, in double, over a unit's rows (`stride`
// elements apart). Summed row after row into one array, each add waited on the previous row's
// store of the same lanes, which held these kernels to a third of the memory bandwidth (bfloat16
// ResNet-18 training, Intel Xeon). Here a chunk of W lanes (a constant, so the accumulators stay
// in registers) is summed over a tile of rows, with R rows in flight in R accumulators added
// together at the end. The order is fixed by the source, so every SIMD clone gives the same bits.
// The helpers are forced inline: out of line they would be compiled for the baseline ISA instead
// of the caller's SIMD clone.
#define NG_INLINE __attribute__((always_inline)) inline
constexpr int kRows = 4;
// 64 lanes are already 16 independent vector chains a row: one accumulator row is enough.
template <int W>
constexpr int rowsOf = W >= 32 ? 1 : kRows;

// Calls f(k0, w) for the chunks of `lanes`: 64 lanes at a time (a channels-last row reads whole
// cache lines), then 16, then 8, then 1.
template <typename F>
NG_INLINE void laneChunks(int64_t lanes, F&& f) {
  int64_t k0 = 0;
  for (; k0 + 64 <= lanes; k0 += 64) f(k0, std::integral_constant<int, 64>());
  for (; k0 + 16 <= lanes; k0 += 16) f(k0, std::integral_constant<int, 16>());
  for (; k0 + 8 <= lanes; k0 += 8) f(k0, std::integral_constant<int, 8>());
  for (; k0 < lanes; k0++) f(k0, std::integral_constant<int, 1>());
}

// The R accumulators of lane k added in a fixed order.
template <int R, int W, typename A>
NG_INLINE A total(const A (&acc)[R][W], int k) {
  if constexpr (R == 1) return acc[0][k];
  else return (acc[0][k] + acc[1][k]) + (acc[2][k] + acc[3][k]);
}

// A half input's sums run in float32 over chunks of this many rows, each chunk's total then added
// in double: widening every element to double held the statistics to a third of the memory
// bandwidth (bfloat16 ResNet-50 training, Intel Xeon with AVX-512), while a float32 sum of 64
// products of 8-bit significands loses nothing a bfloat16 or float16 result could show.
// float32 input keeps double throughout.
constexpr int64_t kHalfChunk = 64;
// The accumulator type of sums over elements of type T.
template <typename T>
using SumOf = std::conditional_t<kHalf<T>, float, double>;

// Calls f(c0, n) for the chunks of S rows a sum runs over in its accumulator type A: kHalfChunk
// rows for float32 sums, all S for double ones.
template <typename A, typename F>
NG_INLINE void sumChunks(int64_t S, F&& f) {
  const int64_t step = std::is_same_v<A, float> ? kHalfChunk : S;
  for (int64_t c0 = 0; c0 < S; c0 += step) f(c0, std::min(step, S - c0));
}

// Calls f(i0, n) for the tiles of a unit's S rows of `lanes` elements, about `bytes` each: a
// one-pass sum reads 16 KiB tiles, so that a channels-last row of many lanes is summed chunk by
// chunk from L1 rather than memory; the statistics' two passes read 128 KiB tiles, the second
// from L2, since what each tile costs beyond its elements (combining its mean and deviations
// into the unit's, two divisions a lane) took as long as the elements in 16 KiB tiles of 1024
// channels (bfloat16 ResNet-50 training, Intel Xeon).
constexpr size_t kSumTile = 16384, kStatsTile = 131072;
template <typename F>
NG_INLINE void rowTiles(int64_t S, int64_t lanes, size_t elementBytes, size_t bytes, F&& f) {
  const int64_t rows = std::max<int64_t>(kRows, int64_t(bytes / (size_t(lanes) * elementBytes)));
  for (int64_t i0 = 0; i0 < S; i0 += rows) f(i0, std::min(rows, S - i0));
}

// Calls row(i, r) for each of S rows, row i + r of every R going to accumulator r.
template <int R, typename F>
NG_INLINE void forRows(int64_t S, F&& row) {
  int64_t i = 0;
  for (; i + R <= S; i += R) {
    for (int r = 0; r < R; r++) row(i + r, r);
  }
  for (; i < S; i++) row(i, 0);
}

// s[k] += sum_i a[i][k].
template <int W, typename T>
NG_INLINE void sumLanes(const T* a, int64_t S, int64_t stride, double* s) {
  constexpr int R = rowsOf<W>;
  using A = SumOf<T>;
  sumChunks<A>(S, [&](int64_t c0, int64_t n) __attribute__((always_inline)) {
    A acc[R][W] = {};
    const T* t = a + c0 * stride;
    forRows<R>(n, [&](int64_t i, int r) __attribute__((always_inline)) {
#pragma omp simd
      for (int k = 0; k < W; k++) acc[r][k] += float(t[i * stride + k]);
    });
    for (int k = 0; k < W; k++) s[k] += total(acc, k);
  });
}

// q[k] += sum_i (a[i][k] - center[k])^2, center[k] in the accumulator's type.
template <int W, typename T, typename A>
NG_INLINE void squaredDeviationLanes(const T* a, int64_t S, int64_t stride, const A* center, double* q) {
  constexpr int R = rowsOf<W>;
  sumChunks<A>(S, [&](int64_t c0, int64_t n) __attribute__((always_inline)) {
    A acc[R][W] = {};
    const T* t = a + c0 * stride;
    forRows<R>(n, [&](int64_t i, int r) __attribute__((always_inline)) {
#pragma omp simd
      for (int k = 0; k < W; k++) {
        const A d = A(float(t[i * stride + k])) - center[k];
        acc[r][k] += d * d;
      }
    });
    for (int k = 0; k < W; k++) q[k] += total(acc, k);
  });
}

// s[k] += sum_i g[i][k] and v[k] += sum_i g[i][k] * (a[i][k] - m[k]); with Mask, g[i][k] counts
// only where the fused ReLU passed it (reluPasses(a * ks[k] + ts[k])).
template <int W, bool Mask, typename T>
NG_INLINE void gradSumLanes(const T* g, const T* a, int64_t S, int64_t stride, const float* m, const float* ks,
                            const float* ts, double* s, double* v) {
  constexpr int R = rowsOf<W>;
  using A = SumOf<T>;
  A md[W];
  float kk[W], tt[W];
  for (int k = 0; k < W; k++) {
    md[k] = m[k];
    kk[k] = Mask ? ks[k] : 0.f;
    tt[k] = Mask ? ts[k] : 0.f;
  }
  sumChunks<A>(S, [&](int64_t c0, int64_t n) __attribute__((always_inline)) {
    A as[R][W] = {}, av[R][W] = {};
    forRows<R>(n, [&](int64_t i, int r) __attribute__((always_inline)) {
      const T* gi = g + (c0 + i) * stride;
      const T* ai = a + (c0 + i) * stride;
      float gm[Mask ? W : 1];
      if constexpr (Mask) {
        // The masked row first, on its own: selected inside the sums' loop, the vectoriser left
        // that loop scalar (15x slower).
#pragma omp simd
        for (int k = 0; k < W; k++) gm[k] = reluPasses(float(ai[k]) * kk[k] + tt[k]) ? float(gi[k]) : 0.f;
      }
#pragma omp simd
      for (int k = 0; k < W; k++) {
        const A gk = Mask ? gm[k] : float(gi[k]);
        as[r][k] += gk;
        av[r][k] += gk * (A(float(ai[k])) - md[k]);
      }
    });
    for (int k = 0; k < W; k++) {
      s[k] += total(as, k);
      v[k] += total(av, k);
    }
  });
}

}  // namespace

template <typename T>
NG_SIMD_CLONES void batchNormStatsBlocked(const T* x, BNLayout l, int block, double eps, std::vector<double>& mean,
                           std::vector<double>& invstd) {
  const int64_t C = l.C, S = l.S, b = block;
  const Units u = unitsOf(l, block);
  // Per unit and lane: the mean and the squared deviations from it, combined
  // exactly across images as in batchNormStats (Chan et al. 1979). Within a unit the same holds
  // tile by tile: two passes over a tile (its sum, then its squared deviations from its own mean)
  // while it is in cache, folded into the unit's running mean and deviations.
  std::vector<double> means(size_t(u.P * b)), sq(size_t(u.P * b));
#pragma omp parallel for schedule(static) if (u.P * S * b > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const T* a = x + p * S * b;
    double* um = means.data() + p * b;
    double* r = sq.data() + p * b;
    const size_t nb = static_cast<size_t>(b);
    using A = SumOf<T>;
    std::vector<double> ts(nb), tm(nb), tq(nb);
    std::vector<A> center(nb);
    int64_t done = 0;
    rowTiles(S, b, sizeof(T), kStatsTile, [&](int64_t i0, int64_t n) __attribute__((always_inline)) {
      std::fill(ts.begin(), ts.end(), 0.0);
      std::fill(tq.begin(), tq.end(), 0.0);
      const T* t = a + i0 * b;
      laneChunks(b, [&](int64_t k0, auto w) __attribute__((always_inline)) {
        sumLanes<decltype(w)::value>(t + k0, n, b, ts.data() + k0);
      });
      for (int64_t k = 0; k < b; k++) {
        tm[size_t(k)] = ts[size_t(k)] / double(n);
        center[size_t(k)] = A(tm[size_t(k)]);
      }
      laneChunks(b, [&](int64_t k0, auto w) __attribute__((always_inline)) {
        squaredDeviationLanes<decltype(w)::value>(t + k0, n, b, center.data() + k0, tq.data() + k0);
      });
      const double total = double(done + n);
      for (int64_t k = 0; k < b; k++) {
        // Deviations from a center other than the tile's mean exceed those from the mean by
        // n (mean - center)^2 (0 when the center is the mean itself, in double).
        const double off = tm[size_t(k)] - double(center[size_t(k)]);
        tq[size_t(k)] -= double(n) * off * off;
        const double d = tm[size_t(k)] - um[k];
        r[k] += tq[size_t(k)] + d * d * double(done) * double(n) / total;
        um[k] += d * double(n) / total;
      }
      done += n;
    });
  }
  const double M = double(l.N * S);
  mean.assign(size_t(C), 0.0);
  invstd.assign(size_t(C), 0.0);
  auto at = [&](int64_t n, int64_t c) { return size_t((n * u.CB + c / b) * b + c % b); };
  for (int64_t n = 0; n < l.N; n++) {
    for (int64_t c = 0; c < C; c++) mean[size_t(c)] += means[at(n, c)];
  }
  for (int64_t c = 0; c < C; c++) mean[size_t(c)] /= double(l.N);  // every unit holds S values
  for (int64_t n = 0; n < l.N; n++) {
    for (int64_t c = 0; c < C; c++) {
      const double d = means[at(n, c)] - mean[size_t(c)];
      invstd[size_t(c)] += sq[at(n, c)] + double(S) * d * d;
    }
  }
  for (int64_t c = 0; c < C; c++) invstd[size_t(c)] = 1.0 / std::sqrt(invstd[size_t(c)] / M + eps);
}

template <typename T>
NG_SIMD_CLONES void batchNormApplyBlocked(const T* x, T* y, BNLayout l, int block, const BNAffine& a, const T* residual,
                                          bool relu) {
  const auto k = padded(a.scale, l.C, block), t = padded(a.shift, l.C, block);
  const Units u = unitsOf(l, block);
  const int64_t S = l.S, bl = block;
#pragma omp parallel for schedule(static) if (u.P * S * bl > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const int64_t c0 = (p % u.CB) * bl;
    const T* src = x + p * S * bl;
    const T* r = residual ? residual + p * S * bl : nullptr;
    T* o = y + p * S * bl;
    // Written out per switch so that each loop vectorises without a branch per element.
    auto rows = [&](auto res, auto act) __attribute__((always_inline)) {
      for (int64_t i = 0; i < S; i++) {
        for (int64_t j = 0; j < bl; j++) {
          float v = float(src[i * bl + j]) * k[size_t(c0 + j)] + t[size_t(c0 + j)];
          if constexpr (decltype(res)::value) v = v + float(r[i * bl + j]);
          o[i * bl + j] = T(decltype(act)::value ? reluOf(v) : v);
        }
      }
    };
    withSwitches(r != nullptr, relu, rows);
  }
  zeroBlockPadding({l.N, l.C, l.S, 1}, block, sizeof(T), y);  // 0 * a NaN in padding would not be 0
}

template <typename T>
NG_SIMD_CLONES void batchNormBackwardReduceBlocked(const T* dy, const T* x, BNLayout l, int block, const float* mean,
                                                   const BNAffine* mask, std::vector<double>& sumDy,
                                                   std::vector<double>& sumDyXmu) {
  const int64_t C = l.C, S = l.S, bl = block;
  const Units u = unitsOf(l, block);
  const auto m = padded(std::vector<float>(mean, mean + C), C, block);
  const std::vector<float> ks = mask ? padded(mask->scale, C, block) : std::vector<float>();
  const std::vector<float> ts = mask ? padded(mask->shift, C, block) : std::vector<float>();
  std::vector<double> ps(size_t(u.P * bl)), pt(size_t(u.P * bl));
#pragma omp parallel for schedule(static) if (u.P * S * bl > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const int64_t c0 = (p % u.CB) * bl;
    const T* g = dy + p * S * bl;
    const T* a = x + p * S * bl;
    double* s = ps.data() + p * bl;
    double* v = pt.data() + p * bl;
    rowTiles(S, bl, sizeof(T), kSumTile, [&](int64_t i0, int64_t n) __attribute__((always_inline)) {
      laneChunks(bl, [&](int64_t k0, auto w) __attribute__((always_inline)) {
        constexpr int W = decltype(w)::value;
        const int64_t at = i0 * bl + k0, c = c0 + k0;
        if (mask) gradSumLanes<W, true>(g + at, a + at, n, bl, m.data() + c, ks.data() + c, ts.data() + c, s + k0, v + k0);
        else gradSumLanes<W, false>(g + at, a + at, n, bl, m.data() + c, nullptr, nullptr, s + k0, v + k0);
      });
    });
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
                                                  const BNGradCoefs& k, const BNAffine* mask, T* dx) {
  // As batchNormBackwardElemt, with the per-channel coefficients laid out by lane.
  const int64_t C = l.C, S = l.S, bl = block;
  const Units u = unitsOf(l, block);
  const auto m = padded(std::vector<float>(mean, mean + C), C, block);
  const auto gmp = padded(k.meanDy, C, block), kp = padded(k.k, C, block), fp = padded(k.f, C, block);
  const std::vector<float> ks = mask ? padded(mask->scale, C, block) : std::vector<float>();
  const std::vector<float> ts = mask ? padded(mask->shift, C, block) : std::vector<float>();
#pragma omp parallel for schedule(static) if (u.P * S * bl > kParallelWork)
  for (int64_t p = 0; p < u.P; p++) {
    const int64_t c0 = (p % u.CB) * bl;
    const T* g = dy + p * S * bl;
    const T* a = x + p * S * bl;
    T* d = dx + p * S * bl;
    auto rows = [&](auto masked) __attribute__((always_inline)) {
      for (int64_t i = 0; i < S; i++) {
        for (int64_t j = 0; j < bl; j++) {
          const size_t c = size_t(c0 + j);
          const float ai = float(a[i * bl + j]);
          float gi = float(g[i * bl + j]);
          if constexpr (decltype(masked)::value) gi = reluPasses(ai * ks[c] + ts[c]) ? gi : 0.f;
          d[i * bl + j] = T((gi - gmp[c] - (ai - m[c]) * kp[c]) * fp[c]);
        }
      }
    };
    if (mask) rows(std::true_type());
    else rows(std::false_type());
  }
  zeroBlockPadding({l.N, l.C, l.S, 1}, block, sizeof(T), dx);
}

#define NG_BN_BLOCKED(T)                                                                                            \
  template void batchNormStatsBlocked<T>(const T*, BNLayout, int, double, std::vector<double>&,                     \
                                         std::vector<double>&);                                                    \
  template void batchNormApplyBlocked<T>(const T*, T*, BNLayout, int, const BNAffine&, const T*, bool);            \
  template void batchNormBackwardReduceBlocked<T>(const T*, const T*, BNLayout, int, const float*, const BNAffine*, \
                                                  std::vector<double>&, std::vector<double>&);                     \
  template void batchNormBackwardElemtBlocked<T>(const T*, const T*, BNLayout, int, const float*, const BNGradCoefs&, \
                                                 const BNAffine*, T*);
NG_BN_BLOCKED(float)
NG_BN_BLOCKED(BFloat16)
NG_BN_BLOCKED(Float16)
#undef NG_BN_BLOCKED

}  // namespace nodegrad::cpu
