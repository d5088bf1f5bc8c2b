// Batch norm over dim 1 of an [N, C, *] float32 tensor, seen as N*C contiguous planes of S elements;
// one OpenMP task per (n, c) plane. Semantics are the 'ts' backend's
// (packages/autograd/src/backends/ts/norm.ts): statistics accumulated in double, biased variance.
#pragma once
#include <cstdint>
#include <type_traits>
#include <vector>

namespace nodegrad::cpu {

struct BNLayout {
  int64_t N, C, S;
};

// Training statistics per channel, in double: the mean and invstd = 1/sqrt(biased var + eps).
void batchNormStats(const float* x, BNLayout l, double eps, std::vector<double>& mean, std::vector<double>& invstd);

// y = (x - mean) * invstd * w + b per channel, applied as y = x * scale + shift (PyTorch's CPU
// kernel does the same), scale and shift formed in double and stored in float. w and b may be null
// (1 and 0). The backward parts form the same floats to recompute a fused ReLU's mask from x.
struct BNAffine {
  std::vector<float> scale, shift;
};
BNAffine batchNormAffine(int64_t C, const float* mean, const float* invstd, const float* w, const float* b);

// The fused ReLU: relu(v) as the Relu kernel (NaN passes), and whether dy passes it at v, as relu's
// backward from its output (threshold_backward: not where the output is <= 0).
inline float reluOf(float v) { return v < 0 ? 0.f : v; }
inline bool reluPasses(float v) { return !(v <= 0); }

// Calls f(bool_constant<a>, bool_constant<b>): a loop body with its two switches fixed, so that
// each variant vectorises without a branch per element. Forced inline, so that inside a SIMD
// clone (core/simd_clones.h) the body is compiled for the clone's instruction set.
template <typename F>
__attribute__((always_inline)) inline void withSwitches(bool a, bool b, F&& f) {
  using Y = std::true_type;
  using N = std::false_type;
  if (a) {
    if (b) f(Y(), Y());
    else f(Y(), N());
  } else {
    if (b) f(N(), Y());
    else f(N(), N());
  }
}

// y = relu?(x * scale + shift + residual?); residual (x's layout) may be null.
void batchNormApply(const float* x, float* y, BNLayout l, const BNAffine& a, const float* residual, bool relu);

// The parts of the training-mode gradient (PyTorch's batch_norm_backward_reduce and _elemt), with
// xhat = (x - mean) * invstd and `count` elements per channel (over every rank):
//   sumDy = sum dy, sumDyXmu = sum dy * (x - mean), accumulated in double;
//   dx = (dy - sumDy / count - (x - mean) * invstd^2 * sumDyXmu / count) * invstd * w.
// With `mask` (the forward's affine, for a batch norm whose ReLU was fused), dy is read as 0 where
// the ReLU passed nothing (reluPasses(x * scale + shift) false); null: dy as it is.
void batchNormBackwardReduce(const float* dy, const float* x, BNLayout l, const float* mean, const BNAffine* mask,
                             std::vector<double>& sumDy, std::vector<double>& sumDyXmu);
// dx's per-channel coefficients, formed in double: dx = (dy - meanDy - (x - mean) * k) * f.
struct BNGradCoefs {
  std::vector<float> meanDy, k, f;
};
BNGradCoefs batchNormGradCoefs(int64_t C, const float* invstd, const float* w, const float* sumDy,
                               const float* sumDyXmu, double count);
void batchNormBackwardElemt(const float* dy, const float* x, BNLayout l, const float* mean, const BNGradCoefs& k,
                            const BNAffine* mask, float* dx);

// In place: running = (1 - factor) running + factor batch, the batch variance recovered from invstd
// (1/invstd^2 - eps) and made unbiased by count / (count - 1), in double.
void batchNormUpdateRunning(float* runMean, float* runVar, int64_t C, const float* mean, const float* invstd,
                            double eps, double count, double factor);

// The same over [N, C, H, W] held in nChw{block}c (cpu/layout.h; S = H * W; block 8 or 16, or C
// for channels last): cpu/batchnorm_blocked.cc, for T = float, BFloat16 and Float16 (x, dy, y and
// dx; per-channel operands float32). y and dx come out in that layout with zero padding channels.
template <typename T>
void batchNormStatsBlocked(const T* x, BNLayout l, int block, double eps, std::vector<double>& mean,
                           std::vector<double>& invstd);
template <typename T>
void batchNormApplyBlocked(const T* x, T* y, BNLayout l, int block, const BNAffine& a, const T* residual, bool relu);
template <typename T>
void batchNormBackwardReduceBlocked(const T* dy, const T* x, BNLayout l, int block, const float* mean,
                                    const BNAffine* mask, std::vector<double>& sumDy, std::vector<double>& sumDyXmu);
template <typename T>
void batchNormBackwardElemtBlocked(const T* dy, const T* x, BNLayout l, int block, const float* mean,
                                   const BNGradCoefs& k, const BNAffine* mask, T* dx);

}  // namespace nodegrad::cpu
