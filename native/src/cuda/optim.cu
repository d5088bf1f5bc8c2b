// The fused optimizer steps on the device: one thread per element, each element's update
// core/optim_math.h's (PyTorch's SGD and Adam/AdamW), so 'cuda' steps as 'cpu' does. param and
// the state buffers are written in place, and every buffer given is recorded as written, as the
// 'cpu' kernels do (cpu/optim_kernels.cc), even a momentum buffer that momentum 0 leaves unread.
#include "core/optim_math.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace nodegrad::cuda {
namespace {

template <typename T>
T* written(const TensorRef* t) {
  if (!t) return nullptr;
  markWritten(*t->buf);
  return t->buf->as<T>();
}

template <typename T>
void sgd(T* p, const T* g, T* buf, int64_t n, const SGDOptions& o) {
  const math::SgdScalars s = math::sgdScalars(o, buf != nullptr);
  forEach(
      n, [=] NG_DEVICE(int64_t i) { math::sgdElement(p[i], g[i], s.useBuf ? buf + i : nullptr, s); }, "SGDStep");
}

template <typename T>
void adam(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamOptions& o) {
  const math::AdamScalars s = math::adamScalars(o);
  forEach(
      n, [=] NG_DEVICE(int64_t i) { math::adamElement(p[i], g[i], m[i], v[i], s.amsgrad ? vmax + i : nullptr, s); },
      "AdamStep");
}

void sgdStep(const TensorRef& param, const TensorRef& grad, const TensorRef* momentumBuf, const SGDOptions& o) {
  const auto n = int64_t(param.numel());
  NG_REAL_DISPATCH(param.dtype, sgd(written<T>(&param), grad.buf->as<T>(), written<T>(momentumBuf), n, o);)
}

void adamStep(const TensorRef& param, const TensorRef& grad, const TensorRef& expAvg, const TensorRef& expAvgSq,
              const TensorRef* maxExpAvgSq, const AdamOptions& o) {
  const auto n = int64_t(param.numel());
  NG_REAL_DISPATCH(param.dtype, adam(written<T>(&param), grad.buf->as<T>(), written<T>(&expAvg),
                                     written<T>(&expAvgSq), written<T>(maxExpAvgSq), n, o);)
}

}  // namespace

void addOptimKernels(KernelTable& t) {
  t.sgdStep = sgdStep;
  t.adamStep = adamStep;
}

}  // namespace nodegrad::cuda
