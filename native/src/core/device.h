// A device as the bindings see it: its allocator, its memory functions and its kernel table. The
// bindings (bindings/*.cc) read a kernel's arguments once, for every device, and call the
// device's entry; the device computes, picks layouts and allocates its results. Entries mirror
// the Kernels interface of packages/autograd/src/backend.ts (one entry per family where the
// kernels differ only by an op enum). A null entry is a kernel the device lacks (the op layer
// composes it, e.g. Conv2DFused): its key is then absent from the device's JS kernels object.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/params.h"
#include "core/tensor.h"

namespace nodegrad {

// BatchNormBackwardReduce's per-channel results: sumDy, sumDyXmu = sum dy * (x - mean), and the
// affine parameters' gradients dweight = sumDyXmu * invstd and dbias = sumDy.
struct BatchNormReduce {
  Tensor sumDy, sumDyXmu, dweight, dbias;
};

// How BatchNormElemt's output ends: y = relu?(bn(x) + residual?), cuDNN's BN_ADD_ACTIVATION; the
// residual has x's shape and dtype.
struct BatchNormEpilogue {
  const TensorRef* residual = nullptr;
  bool relu = false;
};

// The forward's ReLU as the backward parts recompute it from x: dy counts only where the forward's
// x * scale + shift (weight and bias as BatchNormElemt took them) was not <= 0, which is where
// relu's backward from its output passes dy. `relu` false: no mask.
struct BatchNormReluMask {
  bool relu = false;
  const TensorRef* w = nullptr;
  const TensorRef* b = nullptr;
};

struct DeviceMemory {
  // A tensor holding a copy of `numel` host elements of dtype (fromArray: the only upload). Half
  // elements arrive as their bit patterns: the binding rounds JS's float32 values (core/half.h).
  Tensor (*upload)(const void* host, size_t numel, const Shape& shape, DType dtype) = nullptr;
  // Writes x's buffer's elements, plain row-major, into host memory (readSync); half ones as bits.
  void (*download)(const TensorRef& x, void* host) = nullptr;
  // dst's storage takes src's elements (same size and dtype; checked by the binding).
  void (*copyInto)(const TensorRef& dst, const TensorRef& src) = nullptr;
  // Blocks until every kernel queued so far has finished.
  void (*sync)() = nullptr;
  // Debug: the layout a buffer holds ('nchw', or the device's own, e.g. 'nChw16c').
  std::string (*layoutName)(const Buffer& b) = nullptr;
  // Makes the allocator's device the calling thread's current one before any of its kernels or
  // memory functions run (a CUDA GPU's; null for 'cpu', which has one).
  void (*activate)(Allocator& a) = nullptr;
};

// Shapes and parameters arrive checked as far as the binding can without the device: ranks, axes
// and pads in range, operands of one dtype; the device checks what depends on its data or layouts.
struct KernelTable {
  // Elementwise, with broadcasting; comparisons give 1 or 0 in the inputs' dtype.
  Tensor (*unary)(UnaryOp op, const TensorRef& x) = nullptr;
  Tensor (*binary)(BinaryOp op, const TensorRef& a, const TensorRef& b) = nullptr;
  // A half tensor x beside a float32 scalar s (one element, its rank at most x's): op(x, s), or
  // op(s, x) when scalarFirst, computed as a half pair is (HalfBinaryIn) with s as it is, and rounded
  // once: the op layer's number the half type cannot hold, with no float32 copy of x. s is read on
  // the device (no host round trip).
  Tensor (*binaryScalar)(BinaryOp op, const TensorRef& x, const TensorRef& s, bool scalarFirst) = nullptr;
  Tensor (*where)(const TensorRef& cond, const TensorRef& a, const TensorRef& b) = nullptr;
  Tensor (*clamp)(const TensorRef& x, double lo, double hi) = nullptr;
  Tensor (*activation)(ActivationOp op, const TensorRef& x, double a, double b) = nullptr;
  Tensor (*cast)(const TensorRef& x, DType to) = nullptr;

  // Reductions over sorted, distinct axes (kept with size 1); ArgMax/ArgMin along one, as int64.
  Tensor (*reduce)(ReduceOp op, const TensorRef& x, const std::vector<int64_t>& axes) = nullptr;
  Tensor (*argReduce)(bool isMax, const TensorRef& x, int64_t axis) = nullptr;
  // Running sums along one axis, from its end when reverse (cumsum's gradient); accumulated in double.
  Tensor (*cumsum)(const TensorRef& x, int64_t axis, bool reverse) = nullptr;
  // log(sum(exp(x))) over sorted axes (kept with size 1), shifted by the max (0 where that is
  // infinite, as torch.logsumexp); in double.
  Tensor (*logSumExp)(const TensorRef& x, const std::vector<int64_t>& axes) = nullptr;
  // The vector p-norm over sorted axes (kept with size 1): ord 2 (sqrt of the sum of squares),
  // +-inf (largest / smallest |x|), any other p > 0 ((sum |x|^p)^(1/p)); in double.
  Tensor (*norm)(const TensorRef& x, double ord, const std::vector<int64_t>& axes) = nullptr;
  Tensor (*softmax)(const TensorRef& x, int64_t axis, bool log) = nullptr;

  // Data movement.
  Tensor (*transpose)(const TensorRef& x, const std::vector<int64_t>& perm) = nullptr;
  Tensor (*broadcastTo)(const TensorRef& x, const Shape& shape) = nullptr;
  Tensor (*slice)(const TensorRef& x, const Shape& begin, const Shape& size, const Shape& step) = nullptr;
  Tensor (*pad)(const TensorRef& x, const Shape& before, const Shape& after, double value) = nullptr;
  Tensor (*concat)(const std::vector<TensorRef>& xs, int64_t axis) = nullptr;
  Tensor (*oneHot)(const TensorRef& indices, int64_t classes, DType dtype, std::optional<double> ignoreIndex) = nullptr;

  // Creation on the device.
  Tensor (*copy)(const TensorRef& x) = nullptr;
  Tensor (*fill)(const Shape& shape, double value, DType dtype) = nullptr;
  Tensor (*randomUniform)(const Shape& shape, DType dtype, uint64_t seed, uint64_t offset) = nullptr;
  Tensor (*randomNormal)(const Shape& shape, DType dtype, uint64_t seed, uint64_t offset) = nullptr;
  Tensor (*bernoulli)(const Shape& shape, double p, double value, DType dtype, uint64_t seed, uint64_t offset) = nullptr;

  // [B, M, K] x [B, K, N] -> [B, M, N], transposes of the last two dims read in place.
  Tensor (*batchMatMul)(const TensorRef& a, const TensorRef& b, bool transA, bool transB) = nullptr;

  // Convolution, NCHW input and OIHW weight; bias and residual of Conv2DFused may be null.
  Tensor (*conv2d)(const TensorRef& x, const TensorRef& w, const ConvParams& p) = nullptr;
  Tensor (*conv2dBackpropInput)(const TensorRef& dy, const TensorRef& w, const Shape& xShape,
                                const ConvParams& p) = nullptr;
  // dw in dwType: x's dtype, or float32 for a half x (an autocast weight's gradient, made without
  // a Cast kernel of its own; the binding checks which).
  Tensor (*conv2dBackpropFilter)(const TensorRef& x, const TensorRef& dy, const Shape& wShape,
                                 const ConvParams& p, DType dwType) = nullptr;
  Tensor (*conv2dFused)(const TensorRef& x, const TensorRef& w, const TensorRef* bias, const TensorRef* residual,
                        const ConvParams& p, bool relu) = nullptr;

  // Pooling, NCHW. Max pooling trains through maxPool2d and maxPool2dBackward (cuDNN's arguments:
  // dy, x, y); the index kernels use flat positions in each input plane, as int64.
  Tensor (*maxPool2d)(const TensorRef& x, const Pool2D& p) = nullptr;
  Tensor (*maxPool2dBackward)(const TensorRef& dy, const TensorRef& x, const TensorRef& y, const Pool2D& p) = nullptr;
  std::pair<Tensor, Tensor> (*maxPool2dWithIndices)(const TensorRef& x, const Pool2D& p) = nullptr;
  Tensor (*maxPool2dScatter)(const TensorRef& dy, const TensorRef& indices, const Shape& xShape) = nullptr;
  Tensor (*maxPool2dGather)(const TensorRef& x, const TensorRef& indices) = nullptr;
  Tensor (*avgPool2d)(const TensorRef& x, const Pool2D& p) = nullptr;
  Tensor (*avgPool2dBackward)(const TensorRef& dy, const Shape& xShape, const Pool2D& p) = nullptr;
  Tensor (*adaptiveAvgPool2d)(const TensorRef& x, int64_t oh, int64_t ow) = nullptr;
  Tensor (*adaptiveAvgPool2dBackward)(const TensorRef& dy, const Shape& xShape) = nullptr;

  // Fused optimizer updates over lists of parameters, in place on each param and its state
  // buffers: entry i of every list has params[i]'s shape, all lists one dtype and length.
  void (*sgdStep)(const std::vector<TensorRef>& params, const std::vector<TensorRef>& grads,
                  const std::vector<TensorRef>* momentumBufs, const SGDOptions& o) = nullptr;
  void (*adamStep)(const std::vector<TensorRef>& params, const std::vector<TensorRef>& grads,
                   const std::vector<TensorRef>& expAvgs, const std::vector<TensorRef>& expAvgSqs,
                   const std::vector<TensorRef>* maxExpAvgSqs, const AdamOptions& o) = nullptr;
  // GradScaler's unscale, in place over grads of one float dtype: found (float32, one element) set
  // to 1 where a value is not finite before scaling, never cleared; g = g * inv in float32 (float64
  // for float64), inv the float32 nearest invScale.
  void (*nonFiniteCheckAndUnscale)(const std::vector<TensorRef>& grads, const TensorRef& found,
                                   double invScale) = nullptr;

  // Batch norm over dim 1 of [N, C, *], split as PyTorch's CUDA path; per-channel operands are [C]
  // in x's dtype (or float32 for a half x), w, b and counter may be null. Stats and BackwardReduce
  // give [C] results (float32 for a half x), Elemt and BackwardElemt x's shape; UpdateRunning writes
  // runMean, runVar and counter in place (half running stats may take float32 mean and invstd).
  std::pair<Tensor, Tensor> (*batchNormStats)(const TensorRef& x, double eps) = nullptr;
  Tensor (*batchNormElemt)(const TensorRef& x, const TensorRef* w, const TensorRef* b, const TensorRef& mean,
                           const TensorRef& invstd, const BatchNormEpilogue& e) = nullptr;
  Tensor (*batchNormInvstd)(const TensorRef& runVar, double eps) = nullptr;
  BatchNormReduce (*batchNormBackwardReduce)(const TensorRef& dy, const TensorRef& x, const TensorRef& mean,
                                             const TensorRef& invstd, const BatchNormReluMask& mask) = nullptr;
  Tensor (*batchNormBackwardElemt)(const TensorRef& dy, const TensorRef& x, const TensorRef& mean,
                                   const TensorRef& invstd, const TensorRef* w, const TensorRef& sumDy,
                                   const TensorRef& sumDyXmu, double count, const BatchNormReluMask& mask) = nullptr;
  void (*batchNormUpdateRunning)(const TensorRef& runMean, const TensorRef& runVar, const TensorRef* counter,
                                 const TensorRef& mean, const TensorRef& invstd, const BatchNormUpdate& p) = nullptr;
};

struct Device {
  Allocator* allocator;
  DeviceMemory memory;
  KernelTable kernels;
  // The bindings' business (bindings/handles.h, result): this copy of the device's functions returns
  // a kernel's single result as its bare handle, its shape and dtype written to the thread's result
  // scratch, and JS builds the Raw object, several times cheaper than N-API property sets.
  bool handleResults = false;
};

}  // namespace nodegrad
