#include "cpu/optim.h"

#include <cmath>

namespace nodegrad::cpu {

// Below this many elements the OpenMP fork costs more than the loop (as in elementwise.cc).
constexpr int64_t kParallelMin = 65536;

// PyTorch's x.add(y, alpha=a) is x + a*y, addcmul(t1, t2, value=c) is x + c*t1*t2 and
// addcdiv(t1, t2, value=c) is x + c*t1/t2: the expressions below keep that order.
template <typename T>
void sgdStep(T* p, const T* grad, T* buf, int64_t n, const SGDOptions& o) {
  const double lr = -o.lr, mom = o.momentum, damp = 1 - o.dampening, wd = o.weightDecay;
  const bool useBuf = buf != nullptr && mom != 0;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const double pi = p[i];
    double d = o.maximize ? -double(grad[i]) : double(grad[i]);
    if (wd != 0) d = d + wd * pi;
    if (useBuf) {
      // Stored first so that a float buffer feeds its rounded value on, as in PyTorch.
      buf[i] = T(o.firstStep ? d : double(buf[i]) * mom + damp * d);
      const double b = buf[i];
      d = o.nesterov ? d + mom * b : b;
    }
    p[i] = T(pi + lr * d);
  }
}

template <typename T>
void adamStep(T* p, const T* grad, T* m, T* v, T* vmax, int64_t n, const AdamOptions& o) {
  // The scalars in double, as PyTorch computes them in Python.
  const double t = double(o.step);
  const double negStepSize = -(o.lr / (1 - std::pow(o.beta1, t)));
  const double bc2Sqrt = std::sqrt(1 - std::pow(o.beta2, t));
  const double b1 = o.beta1, b2 = o.beta2, c1 = 1 - o.beta1, c2 = 1 - o.beta2, eps = o.eps, wd = o.weightDecay;
  const double decay = 1 - o.lr * wd;
  const bool l2 = wd != 0 && !o.decoupled, shrink = wd != 0 && o.decoupled;
  T* vm = o.amsgrad ? vmax : nullptr;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    if (shrink) p[i] = T(double(p[i]) * decay);
    double g = o.maximize ? -double(grad[i]) : double(grad[i]);
    if (l2) g = g + wd * double(p[i]);
    m[i] = T(double(m[i]) * b1 + c1 * g);
    v[i] = T(double(v[i]) * b2 + c2 * g * g);
    double vi = v[i];
    if (vm) {
      // torch.maximum propagates NaN.
      const double mx = vm[i];
      vm[i] = T(std::isnan(mx) || std::isnan(vi) ? NAN : (mx > vi ? mx : vi));
      vi = vm[i];
    }
    const double denom = std::sqrt(vi) / bc2Sqrt + eps;
    p[i] = T(double(p[i]) + negStepSize * double(m[i]) / denom);
  }
}

template void sgdStep<float>(float*, const float*, float*, int64_t, const SGDOptions&);
template void sgdStep<double>(double*, const double*, double*, int64_t, const SGDOptions&);
template void adamStep<float>(float*, const float*, float*, float*, float*, int64_t, const AdamOptions&);
template void adamStep<double>(double*, const double*, double*, double*, double*, int64_t, const AdamOptions&);

}  // namespace nodegrad::cpu
