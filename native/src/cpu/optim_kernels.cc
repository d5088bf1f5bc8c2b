// The 'cpu' fused optimizer kernels (KernelTable entries): param and the state buffers are
// written in place (made plain first if a kernel left them blocked), the gradient read plain; the
// loops are in cpu/optim.cc.
#include "cpu/device.h"
#include "cpu/operands.h"
#include "cpu/optim.h"

namespace nodegrad::cpu {
namespace {

template <typename T>
T* written(const TensorRef* t) {
  return t ? writable(*t).as<T>() : nullptr;
}

void sgdStepKernel(const TensorRef& param, const TensorRef& grad, const TensorRef* momentumBuf, const SGDOptions& o) {
  Operand g = plain(grad);
  const auto n = int64_t(param.numel());
  NG_REAL_DISPATCH(param.dtype, sgdStep(written<T>(&param), g.data<T>(), written<T>(momentumBuf), n, o);)
}

void adamStepKernel(const TensorRef& param, const TensorRef& grad, const TensorRef& expAvg, const TensorRef& expAvgSq,
                    const TensorRef* maxExpAvgSq, const AdamOptions& o) {
  Operand g = plain(grad);
  const auto n = int64_t(param.numel());
  NG_REAL_DISPATCH(param.dtype, adamStep(written<T>(&param), g.data<T>(), written<T>(&expAvg), written<T>(&expAvgSq),
                                         written<T>(maxExpAvgSq), n, o);)
}

}  // namespace

void addOptimKernels(KernelTable& t) {
  t.sgdStep = sgdStepKernel;
  t.adamStep = adamStepKernel;
}

}  // namespace nodegrad::cpu
