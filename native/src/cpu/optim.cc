#include "cpu/optim.h"

#include "core/optim_math.h"

namespace nodegrad::cpu {

// Below this many elements the OpenMP fork costs more than the loop (as in elementwise.cc).
constexpr int64_t kParallelMin = 65536;

// The per-element updates are core/optim_math.h's, shared with the 'cuda' kernels.
template <typename T>
void sgdStep(T* p, const T* grad, T* buf, int64_t n, const SGDOptions& o) {
  const math::SgdScalars s = math::sgdScalars(o, buf != nullptr);
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) math::sgdElement(p[i], grad[i], s.useBuf ? buf + i : nullptr, s);
}

template <typename T>
void adamStep(T* p, const T* grad, T* m, T* v, T* vmax, int64_t n, const AdamOptions& o) {
  const math::AdamScalars s = math::adamScalars(o);
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) math::adamElement(p[i], grad[i], m[i], v[i], s.amsgrad ? vmax + i : nullptr, s);
}

template void sgdStep<float>(float*, const float*, float*, int64_t, const SGDOptions&);
template void sgdStep<double>(double*, const double*, double*, int64_t, const SGDOptions&);
template void adamStep<float>(float*, const float*, float*, float*, float*, int64_t, const AdamOptions&);
template void adamStep<double>(double*, const double*, double*, double*, double*, int64_t, const AdamOptions&);

}  // namespace nodegrad::cpu
