#include "cpu/optim.h"

#include "core/optim_math.h"
#include "core/simd_clones.h"

namespace nodegrad::cpu {

// Below this many elements the OpenMP fork costs more than the loop (as in elementwise.cc).
constexpr int64_t kParallelMin = 65536;

// The per-element updates are core/optim_math.h's, shared with the 'cuda' kernels.
// The loop with SGD's switches fixed (core/optim_math.h), vectorised; the update is computed in
// double and each stored value rounded once (half types through float, as the 'ts' backend does).
template <typename T>
struct SgdLoop {
  T* p;
  const T* grad;
  T* buf;
  int64_t n;
  const math::SgdScalars& s;
  template <bool Wd, bool Buf, bool Nesterov, bool First, bool Max>
  NG_SIMD_CLONES void run() {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      if constexpr (kHalf<T>) {
        float pi = p[i], bi = Buf ? float(buf[i]) : 0.f;
        math::sgdElementFixed<Wd, Buf, Nesterov, First, Max>(pi, float(grad[i]), &bi, s);
        p[i] = T(pi);
        if constexpr (Buf) buf[i] = T(bi);
      } else {
        math::sgdElementFixed<Wd, Buf, Nesterov, First, Max>(p[i], grad[i], Buf ? buf + i : nullptr, s);
      }
    }
  }
};

template <typename T>
void sgdStep(T* p, const T* grad, T* buf, int64_t n, const SGDOptions& o) {
  const math::SgdScalars s = math::sgdScalars(o, buf != nullptr);
  bool flags[5];
  math::sgdFlags(s, flags);
  SgdLoop<T> loop{p, grad, buf, n, s};
  math::withFlags(flags, loop);
}

// The float32/float64 loop with Adam's switches fixed (core/optim_math.h): vectorised, in float
// for float32 (16 AVX-512 lanes), as PyTorch's CPU Adam computes.
template <typename T>
struct AdamLoop {
  T* p;
  const T* grad;
  T *m, *v, *vmax;
  int64_t n;
  const math::AdamScalars& s;
  template <bool Shrink, bool L2, bool Ams, bool Max>
  NG_SIMD_CLONES void run() {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      math::adamElementFixed<Shrink, L2, Ams, Max>(p[i], grad[i], m[i], v[i], Ams ? vmax + i : nullptr, s);
    }
  }
};

template <typename T>
NG_SIMD_CLONES void adamStep(T* p, const T* grad, T* m, T* v, T* vmax, int64_t n, const AdamOptions& o) {
  const math::AdamScalars s = math::adamScalars(o);
  if constexpr (kHalf<T>) {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      float pi = p[i], mi = m[i], vi = v[i], wi = s.amsgrad ? float(vmax[i]) : 0.f;
      // In double, rounded to float per state value and to T once: the 'ts' backend's half path.
      math::adamElement<float, double>(pi, float(grad[i]), mi, vi, s.amsgrad ? &wi : nullptr, s);
      p[i] = T(pi);
      m[i] = T(mi);
      v[i] = T(vi);
      if (s.amsgrad) vmax[i] = T(wi);
    }
  } else {
    AdamLoop<T> loop{p, grad, m, v, vmax, n, s};
    math::withAdamFlags(s, loop);
  }
}

template <typename T>
NG_SIMD_CLONES bool nonFiniteCheckAndUnscale(T* g, int64_t n, float inv) {
  int bad = 0;
#pragma omp parallel for reduction(| : bad) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) bad |= math::unscaleElement(g[i], inv);
  return bad != 0;
}

template void sgdStep<float>(float*, const float*, float*, int64_t, const SGDOptions&);
template void sgdStep<double>(double*, const double*, double*, int64_t, const SGDOptions&);
template void adamStep<float>(float*, const float*, float*, float*, float*, int64_t, const AdamOptions&);
template void adamStep<double>(double*, const double*, double*, double*, double*, int64_t, const AdamOptions&);
template void sgdStep<BFloat16>(BFloat16*, const BFloat16*, BFloat16*, int64_t, const SGDOptions&);
template void sgdStep<Float16>(Float16*, const Float16*, Float16*, int64_t, const SGDOptions&);
template void adamStep<BFloat16>(BFloat16*, const BFloat16*, BFloat16*, BFloat16*, BFloat16*, int64_t,
                                 const AdamOptions&);
template void adamStep<Float16>(Float16*, const Float16*, Float16*, Float16*, Float16*, int64_t, const AdamOptions&);
template bool nonFiniteCheckAndUnscale<float>(float*, int64_t, float);
template bool nonFiniteCheckAndUnscale<double>(double*, int64_t, float);
template bool nonFiniteCheckAndUnscale<BFloat16>(BFloat16*, int64_t, float);
template bool nonFiniteCheckAndUnscale<Float16>(Float16*, int64_t, float);

}  // namespace nodegrad::cpu
