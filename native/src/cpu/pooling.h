// 2-D pooling over the last two dims of [N, C, H, W] (or [C, H, W]), float32, one OpenMP task per
// (n, c) plane. Semantics are the 'ts' backend's (packages/autograd/src/backends/ts/pool.ts), which
// are PyTorch's: output sizes with the ceil-mode rule, the avg divisor rule, adaptive bins, and max
// indices as flat h*W+w per plane.
#pragma once
#include <cstdint>
#include <string>

#include "core/geometry.h"
#include "core/params.h"
#include "cpu/broadcast.h"

namespace nodegrad::cpu {

// Max over each window: the first maximum wins, NaN beats every number; indices are flat h*W+w
// in the plane. A window that misses the input (dilation) gives -inf with a clamped index.
void maxPool2d(const float* x, float* y, double* indices, int64_t planes, int64_t H, int64_t W,
               int64_t OH, int64_t OW, const Pool2D& p);
// dx (zeroed here) += dy at the saved plane indices (each plane's L outputs). Returns false
// when an index lies outside [0, H*W) (nothing is written out of bounds).
template <typename I>
bool maxPool2dBackward(const float* dy, const I* indices, float* dx, int64_t planes, int64_t HW, int64_t L);
// y = x at the saved plane indices: the adjoint of maxPool2dBackward. Returns false on a bad index.
template <typename I>
bool maxPool2dGather(const float* x, const I* indices, float* y, int64_t planes, int64_t HW, int64_t L);

// maxPool2d and its backward over [N, C, H, W] (dims) held in nChw{block}c (cpu/layout.h), for
// T = float, BFloat16 and Float16: y and dx in that layout (padding zero), indices plain
// [N, C, OH, OW] with the same values (none written when null).
template <typename T>
void maxPool2dBlocked(const T* x, T* y, double* indices, const Shape& dims, int block, int64_t OH, int64_t OW,
                      const Pool2D& p);
template <typename T, typename I>
bool maxPool2dBackwardBlocked(const T* dy, const I* indices, T* dx, const Shape& xDims, int block, int64_t OH,
                              int64_t OW);
// The same dx from x itself: each window's argmax found again as maxPool2dBlocked finds it, then
// dy added there, output by output in float32 and rounded once.
template <typename T>
void maxPool2dBackwardFromInputBlocked(const T* dy, const T* x, T* dx, const Shape& xDims, int block, int64_t OH,
                                       int64_t OW, const Pool2D& p);

void avgPool2d(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
               const Pool2D& p);
void avgPool2dBackward(const float* dy, float* dx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                       int64_t OW, const Pool2D& p);

// Bins [floor(i n / o), ceil((i + 1) n / o)) along each dim, as PyTorch's adaptive_avg_pool2d.
void adaptiveAvgPool2d(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW);
void adaptiveAvgPool2dBackward(const float* dy, float* dx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                               int64_t OW);

}  // namespace nodegrad::cpu
