// The 'cpu' batch norm kernels (KernelTable entries): the loops of cpu/batchnorm.cc over plain
// (n, c) planes, or of cpu/batchnorm_blocked.cc when x is an activation a convolution left in
// oneDNN's blocked layout (channels last included): y and dx then keep that layout
// for the next conv or its backward, and a blocked half x is read as stored. Statistics are
// accumulated in double; per-channel results are float32. A plain half x (and dy) is widened to
// float32; y or dx is rounded once to x's type. Per-channel operands may be float32 or of x's type
// (oneDNN's contract for a bf16 src: f32 scale, shift, mean and variance).
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "cpu/batchnorm.h"
#include "cpu/device.h"
#include "cpu/operands.h"

namespace nodegrad::cpu {
namespace {

// x is [N, C, *] (checked by the binding), seen as N * C planes of S elements.
BNLayout layoutOf(const TensorRef& x) {
  int64_t S = 1;
  for (size_t i = 2; i < x.shape.size(); i++) S *= x.shape[i];
  return {x.shape[0], x.shape[1], S};
}

// A per-channel operand read plain as float32 (a [C] view of a blocked [1, C, 1, 1] buffer is
// reordered, a half one widened), or nothing when absent.
Operand perChannel(const TensorRef* t) { return t ? widened(*t) : Operand{nullptr, nullptr}; }
Operand perChannel(const TensorRef& t) { return widened(t); }

// x as the statistics and the forward read it: as stored when blocked, else plain and widened.
Operand input(const TensorRef& x) { return blockedAsIs(x) ? asStored(x) : widened(x); }
const float* dataOf(const Operand& o) { return o.buf ? o.f32() : nullptr; }

// A float32 [C] result holding v (float or double).
template <typename T>
Tensor channelVector(const T* v, int64_t C) {
  Tensor t = newTensor({C}, DType::F32);
  float* out = t.buf->as<float>();
  for (int64_t c = 0; c < C; c++) out[c] = float(v[c]);
  return t;
}

// dy and x for the backward parts, in one layout: blocked as stored when x is (the saved conv
// output), with a dy of another layout blocked to match as the elementwise kernels do, so that dx
// stays blocked for the conv's backward; otherwise both plain and widened.
std::pair<Operand, Operand> gradOperands(const TensorRef& dy, const TensorRef& x) {
  if (blockedAsIs(x) && dy.shape == x.shape && dy.dtype == x.dtype) {
    const bool same = blockedAsIs(dy) && dy.buf->block == x.buf->block;
    return {same ? asStored(dy) : blockedLike(dy, *x.buf), asStored(x)};
  }
  return {widened(dy), widened(x)};
}

std::pair<Tensor, Tensor> statsKernel(const TensorRef& x, double eps) {
  requireF32OrHalf(x.dtype, "x");
  Operand xo = input(x);
  const BNLayout l = layoutOf(x);
  std::vector<double> mean, invstd;
  if (!xo.block()) batchNormStats(xo.f32(), l, eps, mean, invstd);
  else withFloatElement(xo.buf->dtype, [&](auto* t) {
    batchNormStatsBlocked(xo.data<ElementOf<decltype(t)>>(), l, xo.block(), eps, mean, invstd);
  });
  return {channelVector(mean.data(), l.C), channelVector(invstd.data(), l.C)};
}

// The residual in x's operand layout: blocked as x is stored (reordered if it is not), else plain.
Operand residualLike(const TensorRef& r, const Operand& xo, const TensorRef& x) {
  if (!xo.block()) return widened(r);
  return blockedAsIs(r) && r.buf->block == x.buf->block ? asStored(r) : blockedLike(r, *x.buf);
}

Tensor elemtKernel(const TensorRef& x, const TensorRef* w, const TensorRef* b, const TensorRef& mean,
                   const TensorRef& invstd, const BatchNormEpilogue& e) {
  requireF32OrHalf(x.dtype, "x");
  Operand xo = input(x), wo = perChannel(w), bo = perChannel(b);
  Operand mo = perChannel(mean), io = perChannel(invstd);
  Operand ro = e.residual ? residualLike(*e.residual, xo, x) : Operand{nullptr, nullptr};
  const BNLayout l = layoutOf(x);
  const BNAffine a = batchNormAffine(l.C, mo.f32(), io.f32(), dataOf(wo), dataOf(bo));
  if (!xo.block()) {
    Tensor y = newTensor(x.shape, DType::F32);
    batchNormApply(xo.f32(), y.buf->as<float>(), l, a, dataOf(ro), e.relu);
    return narrowed(std::move(y), x.dtype);
  }
  Tensor y = newBlocked(x.shape, xo.block(), x.dtype);
  withFloatElement(xo.buf->dtype, [&](auto* t) {
    using T = ElementOf<decltype(t)>;
    batchNormApplyBlocked(xo.data<T>(), y.buf->as<T>(), l, xo.block(), a, ro.buf ? ro.data<T>() : nullptr, e.relu);
  });
  return y;
}

// The forward's affine when the backward recomputes a fused ReLU's mask, else nothing.
std::optional<BNAffine> maskOf(const BatchNormReluMask& m, const Operand& mean, const Operand& invstd, int64_t C) {
  if (!m.relu) return std::nullopt;
  Operand wo = perChannel(m.w), bo = perChannel(m.b);
  return batchNormAffine(C, mean.f32(), invstd.f32(), dataOf(wo), dataOf(bo));
}

Tensor invstdKernel(const TensorRef& runVar, double eps) {
  requireF32OrHalf(runVar.dtype, "runVar");
  Operand v = perChannel(runVar);
  const size_t C = runVar.numel();
  std::vector<double> is(C);
  for (size_t c = 0; c < C; c++) is[c] = 1.0 / std::sqrt(double(v.f32()[c]) + eps);
  return channelVector(is.data(), int64_t(C));
}

BatchNormReduce backwardReduceKernel(const TensorRef& dy, const TensorRef& x, const TensorRef& mean,
                                     const TensorRef& invstd, const BatchNormReluMask& m) {
  requireF32OrHalf(x.dtype, "x");
  auto [dyo, xo] = gradOperands(dy, x);
  Operand mo = perChannel(mean), io = perChannel(invstd);
  const BNLayout l = layoutOf(x);
  const std::optional<BNAffine> mask = maskOf(m, mo, io, l.C);
  const BNAffine* mp = mask ? &*mask : nullptr;
  std::vector<double> s, t;
  if (!xo.block()) batchNormBackwardReduce(dyo.f32(), xo.f32(), l, mo.f32(), mp, s, t);
  else withFloatElement(xo.buf->dtype, [&](auto* e) {
    using T = ElementOf<decltype(e)>;
    batchNormBackwardReduceBlocked(dyo.data<T>(), xo.data<T>(), l, xo.block(), mo.f32(), mp, s, t);
  });
  std::vector<double> dw(size_t(l.C));
  for (int64_t c = 0; c < l.C; c++) dw[size_t(c)] = t[size_t(c)] * io.f32()[c];
  return {channelVector(s.data(), l.C), channelVector(t.data(), l.C), channelVector(dw.data(), l.C),
          channelVector(s.data(), l.C)};
}

Tensor backwardElemtKernel(const TensorRef& dy, const TensorRef& x, const TensorRef& mean, const TensorRef& invstd,
                           const TensorRef* w, const TensorRef& sumDy, const TensorRef& sumDyXmu, double count,
                           const BatchNormReluMask& m) {
  requireF32OrHalf(x.dtype, "x");
  auto [dyo, xo] = gradOperands(dy, x);
  Operand mo = perChannel(mean), io = perChannel(invstd), wo = perChannel(w), so = perChannel(sumDy),
          to = perChannel(sumDyXmu);
  const BNLayout l = layoutOf(x);
  const BNGradCoefs k = batchNormGradCoefs(l.C, io.f32(), dataOf(wo), so.f32(), to.f32(), count);
  const std::optional<BNAffine> mask = maskOf(m, mo, io, l.C);
  const BNAffine* mp = mask ? &*mask : nullptr;
  if (!xo.block()) {
    Tensor dx = newTensor(x.shape, DType::F32);
    batchNormBackwardElemt(dyo.f32(), xo.f32(), l, mo.f32(), k, mp, dx.buf->as<float>());
    return narrowed(std::move(dx), x.dtype);
  }
  Tensor dx = newBlocked(x.shape, xo.block(), x.dtype);
  withFloatElement(xo.buf->dtype, [&](auto* e) {
    using T = ElementOf<decltype(e)>;
    batchNormBackwardElemtBlocked(dyo.data<T>(), xo.data<T>(), l, xo.block(), mo.f32(), k, mp, dx.buf->as<T>());
  });
  return dx;
}

void updateRunningKernel(const TensorRef& runMean, const TensorRef& runVar, const TensorRef* counter,
                         const TensorRef& mean, const TensorRef& invstd, const BatchNormUpdate& p) {
  // runVar has runMean's dtype, mean and invstd too or float32 beside half running statistics
  // (checked by the binding); nothing is written before this check.
  requireF32OrHalf(runMean.dtype, "runMean");
  Operand mo = perChannel(mean), io = perChannel(invstd);
  const int64_t C = int64_t(runMean.numel());
  Buffer &rm = writable(runMean), &rv = writable(runVar);
  if (runMean.dtype == DType::F32) {
    batchNormUpdateRunning(rm.as<float>(), rv.as<float>(), C, mo.f32(), io.f32(), p.eps, p.count, p.factor);
  } else {
    // Half running statistics: updated in float32, each rounded once on store.
    std::vector<float> m(static_cast<size_t>(C)), v(static_cast<size_t>(C));
    widen(runMean.dtype, rm.data, m.data(), size_t(C));
    widen(runVar.dtype, rv.data, v.data(), size_t(C));
    batchNormUpdateRunning(m.data(), v.data(), C, mo.f32(), io.f32(), p.eps, p.count, p.factor);
    narrow(runMean.dtype, m.data(), rm.data, size_t(C));
    narrow(runVar.dtype, v.data(), rv.data, size_t(C));
  }
  // int64 is held as double on this device: the counter advances where it lives, unread.
  if (counter) writable(*counter).as<double>()[0] += 1;
}

}  // namespace

void addNormKernels(KernelTable& t) {
  t.batchNormStats = statsKernel;
  t.batchNormElemt = elemtKernel;
  t.batchNormInvstd = invstdKernel;
  t.batchNormBackwardReduce = backwardReduceKernel;
  t.batchNormBackwardElemt = backwardElemtKernel;
  t.batchNormUpdateRunning = updateRunningKernel;
}

}  // namespace nodegrad::cpu
