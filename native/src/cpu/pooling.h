// 2-D pooling over the last two dims of [N, C, H, W] (or [C, H, W]), float32, one OpenMP task per
// (n, c) plane. Semantics are the 'ts' backend's (packages/autograd/src/backends/ts/pool.ts), which
// are PyTorch's: output sizes with the ceil-mode rule, the avg divisor rule, adaptive bins, and max
// indices as flat h*W+w per plane.
#pragma once
#include <cstdint>
#include <string>

#include "core/params.h"
#include "cpu/broadcast.h"

namespace nodegrad::cpu {

// The planes of a [N, C, H, W] or [C, H, W] shape; throws std::invalid_argument naming `shape` otherwise.
struct Planes {
  Shape lead;
  int64_t planes, H, W;
};
Planes planesOf(const Shape& shape);


// PyTorch's pooling output size: floor((n + 2p - d(k-1) - 1 + (ceil ? s-1 : 0)) / s) + 1, and in
// ceil mode a last window that would start inside the right padding is dropped.
int64_t poolOutSize(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil);
// Checks the window parameters against the input shape and returns [OH, OW]; `avg` also requires dilation 1.
void poolOutShape(const Shape& x, const Pool2D& p, bool avg, int64_t* oh, int64_t* ow);

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

// maxPool2d and its backward over [N, C, H, W] (dims) held in nChw{block}c (cpu/layout.h):
// y and dx in that layout (padding zero), indices plain [N, C, OH, OW] with the same values.
void maxPool2dBlocked(const float* x, float* y, double* indices, const Shape& dims, int block, int64_t OH, int64_t OW,
                      const Pool2D& p);
template <typename I>
bool maxPool2dBackwardBlocked(const float* dy, const I* indices, float* dx, const Shape& xDims, int block, int64_t OH,
                              int64_t OW);

void avgPool2d(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
               const Pool2D& p);
void avgPool2dBackward(const float* dy, float* dx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                       int64_t OW, const Pool2D& p);

// Bins [floor(i n / o), ceil((i + 1) n / o)) along each dim, as PyTorch's adaptive_avg_pool2d.
void adaptiveAvgPool2d(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW);
void adaptiveAvgPool2dBackward(const float* dy, float* dx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                               int64_t OW);

}  // namespace nodegrad::cpu
