// The fused optimizer steps' per-element updates (torch.optim.SGD, Adam, AdamW), for every device
// (core/hd.h). Scalars are computed in double, as PyTorch computes them in Python; each stored
// state value is rounded to T before it feeds on, as in PyTorch.
#pragma once
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "core/hd.h"
#include "core/params.h"

namespace nodegrad::math {

// PyTorch's x.add(y, alpha=a) is x + a*y, addcmul(t1, t2, value=c) is x + c*t1*t2 and
// addcdiv(t1, t2, value=c) is x + c*t1/t2: the expressions below keep that order.
struct SgdScalars {
  double negLr, momentum, dampKeep, weightDecay;
  bool useBuf, nesterov, maximize, firstStep;
};

inline SgdScalars sgdScalars(const SGDOptions& o, bool hasBuf) {
  return {-o.lr, o.momentum, 1 - o.dampening, o.weightDecay, hasBuf && o.momentum != 0, o.nesterov, o.maximize, o.firstStep};
}

// GradScaler's inv_scale as the float32 PyTorch keeps it: the nearest float, or an infinity past
// float's range (a plain float() of such a double is undefined behaviour).
inline float invScaleFloat(double inv) {
  constexpr double kRoundsToInf = 0x1.ffffffp127;  // FLT_MAX plus half its last unit: a tie, to even
  if (std::fabs(inv) >= kRoundsToInf) return inv > 0 ? INFINITY : -INFINITY;
  return float(inv);
}

// GradScaler's unscale of one gradient value, in float32 (float64 for double): whether it was inf
// or NaN as read (PyTorch checks before scaling; |v| <= max is false for both and, unlike
// std::isfinite, vectorises), then g = g * inv unless inv is 1, rounded to T once.
template <typename T>
NG_HD bool unscaleElement(T& g, float inv) {
  using Op = std::conditional_t<std::is_same_v<T, double>, double, float>;
  Op largest;
  if constexpr (std::is_same_v<Op, double>) largest = DBL_MAX;
  else largest = FLT_MAX;
  const Op v = Op(g);
  const bool bad = !((v < Op(0) ? -v : v) <= largest);
  if (inv != 1.f) g = T(v * Op(inv));
  return bad;
}

// Calls f.template run<B...>() with flags[0..N) as compile-time bools: a loop inside run() has
// no per-element branches, and the CPU compiler vectorises it (core/simd_clones.h); read per
// element, the switches kept the loops scalar. The arithmetic is the same either way, bit for bit.
template <size_t N, typename F, bool... Fixed>
NG_HD void withFlags(const bool (&flags)[N], F& f) {
  if constexpr (sizeof...(Fixed) == N) {
    f.template run<Fixed...>();
  } else if (flags[sizeof...(Fixed)]) {
    withFlags<N, F, Fixed..., true>(flags, f);
  } else {
    withFlags<N, F, Fixed..., false>(flags, f);
  }
}

// SGD's switches fixed: weight decay, momentum buffer, nesterov, first step, maximize.
template <bool Wd, bool Buf, bool Nesterov, bool First, bool Max, typename T>
NG_HD void sgdElementFixed(T& p, T g, T* buf, const SgdScalars& s) {
  const double pi = p;
  double d = Max ? -double(g) : double(g);
  if constexpr (Wd) d = d + s.weightDecay * pi;
  if constexpr (Buf) {
    *buf = T(First ? d : double(*buf) * s.momentum + s.dampKeep * d);
    const double b = *buf;
    d = Nesterov ? d + s.momentum * b : b;
  }
  p = T(pi + s.negLr * d);
}

NG_HD void sgdFlags(const SgdScalars& s, bool (&flags)[5]) {
  flags[0] = s.weightDecay != 0;
  flags[1] = s.useBuf;
  flags[2] = s.useBuf && s.nesterov;
  flags[3] = s.useBuf && s.firstStep;
  flags[4] = s.maximize;
}

template <typename T>
struct SgdElementCall {
  T& p;
  T g;
  T* buf;
  const SgdScalars& s;
  template <bool... Flags>
  NG_HD void run() { sgdElementFixed<Flags..., T>(p, g, buf, s); }
};

// One element with the switches read at run time (the 'cuda' kernels).
template <typename T>
NG_HD void sgdElement(T& p, T g, T* buf, const SgdScalars& s) {
  bool flags[5];
  sgdFlags(s, flags);
  SgdElementCall<T> call{p, g, buf, s};
  withFlags(flags, call);
}

struct AdamScalars {
  double negStepSize, bc2Sqrt, b1, b2, c1, c2, eps, wd, decay;
  bool l2, shrink, amsgrad, maximize;
};

inline AdamScalars adamScalars(const AdamOptions& o) {
  const double t = double(o.step);
  const double wd = o.weightDecay;
  return {-(o.lr / (1 - std::pow(o.beta1, t))), std::sqrt(1 - std::pow(o.beta2, t)), o.beta1, o.beta2, 1 - o.beta1,
          1 - o.beta2, o.eps, wd, 1 - o.lr * wd, wd != 0 && !o.decoupled, wd != 0 && o.decoupled, o.amsgrad, o.maximize};
}

// Adam's four switches (shrink, l2, amsgrad, maximize) fixed at compile time (withFlags).
// The arithmetic type of one element's update: float for float32 and the half types, double for
// float64, as PyTorch's CPU and CUDA optimizers compute (opmath_t); float32 also lets the CPU
// loop take 16 lanes of AVX-512 for the square root and the division instead of 8.
template <typename T>
using AdamMath = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <bool Shrink, bool L2, bool Ams, bool Max, typename T, typename C = AdamMath<T>>
NG_HD void adamElementFixed(T& p, T grad, T& m, T& v, T* vmax, const AdamScalars& s) {
  using std::sqrt;
  if constexpr (Shrink) p = T(C(p) * C(s.decay));
  C g = Max ? -C(grad) : C(grad);
  if constexpr (L2) g = g + C(s.wd) * C(p);
  m = T(C(m) * C(s.b1) + C(s.c1) * g);
  v = T(C(v) * C(s.b2) + C(s.c2) * g * g);
  C vi = C(v);
  if constexpr (Ams) {
    // torch.maximum propagates NaN.
    const C mx = C(*vmax);
    *vmax = T(mx != mx || vi != vi ? mx + vi : (mx > vi ? mx : vi));
    vi = C(*vmax);
  }
  const C denom = sqrt(vi) / C(s.bc2Sqrt) + C(s.eps);
  p = T(C(p) + C(s.negStepSize) * C(m) / denom);
}

// Calls f.template run<Shrink, L2, Ams, Max>() with the flags of s as template arguments.
template <typename F>
NG_HD void withAdamFlags(const AdamScalars& s, F& f) {
  const bool flags[4] = {s.shrink, s.l2, s.amsgrad, s.maximize};
  withFlags(flags, f);
}

template <typename T, typename C>
struct AdamElementCall {
  T& p;
  T grad;
  T& m;
  T& v;
  T* vmax;
  const AdamScalars& s;
  template <bool... Flags>
  NG_HD void run() { adamElementFixed<Flags..., T, C>(p, grad, m, v, vmax, s); }
};

// One element with the switches read at run time (the 'cuda' kernels, the half types), computed in C.
template <typename T, typename C = AdamMath<T>>
NG_HD void adamElement(T& p, T grad, T& m, T& v, T* vmax, const AdamScalars& s) {
  AdamElementCall<T, C> call{p, grad, m, v, vmax, s};
  withAdamFlags(s, call);
}

}  // namespace nodegrad::math
