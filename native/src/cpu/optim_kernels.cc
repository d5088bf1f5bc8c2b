// The 'cpu' fused optimizer kernels (KernelTable entries): each param and its state buffers are
// written in place (made plain first if a kernel left them blocked), the gradient read plain; the
// loops are in cpu/optim.cc, one parameter after another. GradScaler's unscale writes its
// gradients and foundInf the same way.
#include "core/optim_math.h"
#include "cpu/device.h"
#include "cpu/operands.h"
#include "cpu/optim.h"

namespace nodegrad::cpu {
namespace {

using Tensors = std::vector<TensorRef>;

template <typename T>
T* written(const Tensors* ts, size_t i) {
  return ts ? writable((*ts)[i]).as<T>() : nullptr;
}

void sgdStepKernel(const Tensors& params, const Tensors& grads, const Tensors* momentumBufs, const SGDOptions& o) {
  for (size_t i = 0; i < params.size(); i++) {
    Operand g = plain(grads[i]);
    const auto n = int64_t(params[i].numel());
    NG_FLOAT_DISPATCH(params[i].dtype, sgdStep(written<T>(&params, i), g.data<T>(), written<T>(momentumBufs, i), n, o);)
  }
}

void adamStepKernel(const Tensors& params, const Tensors& grads, const Tensors& expAvgs, const Tensors& expAvgSqs,
                    const Tensors* maxExpAvgSqs, const AdamOptions& o) {
  for (size_t i = 0; i < params.size(); i++) {
    Operand g = plain(grads[i]);
    const auto n = int64_t(params[i].numel());
    NG_FLOAT_DISPATCH(params[i].dtype, adamStep(written<T>(&params, i), g.data<T>(), written<T>(&expAvgs, i),
                                               written<T>(&expAvgSqs, i), written<T>(maxExpAvgSqs, i), n, o);)
  }
}

void unscaleKernel(const Tensors& grads, const TensorRef& found, double invScale) {
  const float inv = math::invScaleFloat(invScale);
  bool bad = false;
  for (const TensorRef& g : grads) {
    const auto n = int64_t(g.numel());
    NG_FLOAT_DISPATCH(g.dtype, bad |= nonFiniteCheckAndUnscale(writable(g).as<T>(), n, inv);)
  }
  if (bad) *writable(found).as<float>() = 1.f;
}

}  // namespace

void addOptimKernels(KernelTable& t) {
  t.sgdStep = sgdStepKernel;
  t.adamStep = adamStepKernel;
  t.nonFiniteCheckAndUnscale = unscaleKernel;
}

}  // namespace nodegrad::cpu
