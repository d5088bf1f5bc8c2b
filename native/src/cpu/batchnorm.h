// Batch norm over dim 1 of an [N, C, *] float32 tensor, seen as N*C contiguous planes of S elements;
// one OpenMP task per (n, c) plane. Semantics are the 'ts' backend's
// (packages/autograd/src/backends/ts/norm.ts): statistics accumulated in double, biased variance.
#pragma once
#include <cstdint>
#include <vector>

namespace nodegrad::cpu {

struct BNLayout {
  int64_t N, C, S;
};

// Training statistics per channel, in double: the mean and invstd = 1/sqrt(biased var + eps).
void batchNormStats(const float* x, BNLayout l, double eps, std::vector<double>& mean, std::vector<double>& invstd);

// y = (x - mean) * invstd * w + b per channel, applied as y = x * scale + shift (PyTorch's CPU
// kernel does the same). w and b may be null (1 and 0).
void batchNormApply(const float* x, float* y, BNLayout l, const double* mean, const double* invstd,
                    const float* w, const float* b);

// The training-mode gradient from the saved statistics; with xhat = (x - mean) * invstd and M = N*S:
// dbias = sum dy, dweight = sum dy * xhat, dx = w * invstd / M * (M dy - dbias - xhat * dweight).
// w may be null (1).
void batchNormBackward(const float* dy, const float* x, BNLayout l, const float* w, const float* mean,
                       const float* invstd, float* dx, float* dweight, float* dbias);

// The same three over [N, C, H, W] held in nChw{block}c (cpu/layout.h; S = H * W, block 8 or
// 16): cpu/batchnorm_blocked.cc. y and dx come out in that layout with zero padding channels.
void batchNormStatsBlocked(const float* x, BNLayout l, int block, double eps, std::vector<double>& mean,
                           std::vector<double>& invstd);
void batchNormApplyBlocked(const float* x, float* y, BNLayout l, int block, const double* mean, const double* invstd,
                           const float* w, const float* b);
void batchNormBackwardBlocked(const float* dy, const float* x, BNLayout l, int block, const float* w,
                              const float* mean, const float* invstd, float* dx, float* dweight, float* dbias);

}  // namespace nodegrad::cpu
