// 2-D convolution on oneDNN, NCHW input and OIHW weight (I = C / groups), in its three
// directions: forward, backward-data (Conv2DBackpropInput) and backward-weights
// (Conv2DBackpropFilter). Buffers at the boundary are plain row-major; inside, oneDNN picks its
// own (blocked) layouts and the kernels reorder into and out of them.
#pragma once
#include <cstdint>
#include <vector>

namespace nodegrad::cpu {

struct ConvParams {
  int64_t sh, sw, ph, pw, dh, dw, groups;
};

// One call's geometry, derived once from the shapes and params.
struct ConvGeom {
  int64_t n, c, h, w, o, kh, kw, oh, ow;
  ConvParams p;
  std::vector<int64_t> xShape() const { return {n, c, h, w}; }
  std::vector<int64_t> wShape() const { return {o, c / p.groups, kh, kw}; }
  std::vector<int64_t> yShape() const { return {n, o, oh, ow}; }
};

// Checks the shapes and params and derives the output size by PyTorch's formula
// floor((H + 2·pad − dil·(k − 1) − 1) / stride) + 1 (clamped at 0); when `yShape` is given (the
// backward directions) it must match. Throws runtime_error naming the shapes.
ConvGeom convGeom(const std::vector<int64_t>& xShape, const std::vector<int64_t>& wShape, const ConvParams& p,
                  const std::vector<int64_t>* yShape = nullptr);

// y = conv(x, w).
void conv2dForward(const ConvGeom& g, const float* x, const float* w, float* y);
// Inference only: y = relu?(conv(x, w) + bias + residual), one oneDNN primitive with the bias
// built in and sum / eltwise-relu post-ops. `bias` ([o]) and `residual` (y's shape) may be null.
void conv2dForwardFused(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* residual,
                        bool relu, float* y);
// dx = the gradient of conv with respect to x, given dy.
void conv2dBackwardData(const ConvGeom& g, const float* dy, const float* w, float* dx);
// dw = the gradient of conv with respect to w, given x and dy (summed over the batch).
void conv2dBackwardWeights(const ConvGeom& g, const float* x, const float* dy, float* dw);

}  // namespace nodegrad::cpu
