// Batch norm on the device over dim 1 of a [N, C, *] tensor, seen as [N, C, S], with the 'cpu'
// kernels' formulas (cpu/batchnorm.cc, plain layout): statistics and gradient sums in double, the
// biased variance for normalizing, the unbiased one for the running variance. A half x gives
// 'cpu''s plain half path's values (cpu/norm_kernels.cc: x, dy and the residual widened to
// float32, the float32 kernel, y or dx rounded once to x's type), but widens each element as it
// is loaded rather than through float32 copies, which would triple the bytes of a half batch norm;
// a half per-channel operand is widened, per-channel results are float32, and half running
// statistics are updated in place.
//
// A channel's sums reduce its N * S elements, far more than there are channels, so without
// shared memory they run as lines (cuda/lines.h): pass 1 splits each channel's elements into chunks
// (one thread each) writing double partials, which reduce again as lines of their own until one
// chunk per channel is left. The mean is summed first and the squared deviations from it second,
// two passes over x that keep the variance free of cancellation.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/half.h"
#include "cuda/device.h"
#include "cuda/launch.h"
#include "cuda/lines.h"

namespace nodegrad::cuda {
namespace {

// x [N, C, S] by channel: channel c's elements n * C * S + c * S + s.
struct Layout {
  int64_t N;
  Extent C, S;
  Lines channels() const {
    Lines g;
    g.outN = C;
    g.R = N * S;
    g.out.rank = 1;
    g.out.size[0] = C;
    g.out.stride[0] = S;
    g.red.rank = 2;
    g.red.size[0] = N;
    g.red.stride[0] = C * S;
    g.red.size[1] = S;
    g.red.stride[1] = 1;
    return g;
  }
  NG_HD int64_t channel(int64_t i) const {
    const int64_t plane = S.divide(i);
    return plane - C.divide(plane) * C.n;
  }
};

// x is [N, C, *] (checked by the binding).
Layout layoutOf(const TensorRef& x) {
  int64_t S = 1;
  for (size_t i = 2; i < x.shape.size(); i++) S *= x.shape[i];
  return {x.shape[0], x.shape[1], S};
}

// Two sums at once (the backward's sum dy and sum dy (x - mean); the statistics use one).
struct Sums {
  double a, b;
};

// What an element of channel o adds, by its offset.
// The loads read x and dy in their own type T (float, or a half type widened on load).
template <typename T>
struct Values {
  const T* x;
  NG_HD Sums operator()(int64_t, int64_t off) const { return {double(float(x[off])), 0}; }
};
template <typename T>
struct SquaredDeviations {
  const T* x;
  const double* mean;
  NG_HD Sums operator()(int64_t o, int64_t off) const {
    const double d = double(float(x[off])) - mean[o];
    return {d * d, 0};
  }
};
// With scale set (a fused ReLU's mask recomputed from x), dy counts only where the forward's
// x * scale + shift was not <= 0, as relu's backward from its output passes it.
template <typename T>
struct GradSums {
  const T *dy, *x;
  const float *mean, *scale, *shift;
  NG_HD Sums operator()(int64_t o, int64_t off) const {
    const float xv = float(x[off]);
    const double g = scale && xv * scale[o] + shift[o] <= 0 ? 0.f : float(dy[off]);
    return {g, g * (double(xv) - double(mean[o]))};
  }
};
struct Partials {
  const double *a, *b;
  NG_HD Sums operator()(int64_t, int64_t off) const { return {a[off], b[off]}; }
};

// outA[o], outB[o] = the sums of load over line o (outB may be null).
template <typename Load>
void sumLines(Load load, const Lines& g, double* outA, double* outB) {
  const Split s = splitOf(g);
  const StridedIndex os = g.out, rs = g.red;
  Tensor partA, partB;
  double *pa = outA, *pb = outB;
  if (s.K > 1) {
    partA = empty({s.outN * s.K}, DType::F64);
    partB = empty({s.outN * s.K}, DType::F64);
    pa = partA.buf->as<double>();
    pb = partB.buf->as<double>();
  }
  forEach(
      s.outN * s.K,
      [=] NG_DEVICE(int64_t i) {
        const Chunk c = s.at(i);
        const int64_t base = os.offset(c.o);
        Sums acc{0, 0};
        NG_UNROLL_LOADS
        for (int64_t r = c.r0; r < c.r1; r += c.step) {
          const Sums v = load(c.o, base + rs.offset(r));
          acc.a += v.a;
          acc.b += v.b;
        }
        pa[i] = acc.a;
        if (pb) pb[i] = acc.b;
      },
      "BatchNormSums");
  if (s.K > 1) sumLines(Partials{pa, pb}, s.partials(), outA, outB);
}

// x, and with it dy, the residual and y or dx (the binding checks that they share x's dtype): the
// entries dispatch on it (NG_FLOAT_DISPATCH) once it is checked. Also the running statistics.
void requireElement(DType d, const char* name = "x") {
  if (d != DType::F32 && !isHalf(d)) {
    throw std::runtime_error(std::string("argument '") + name + "' is " + dtypeName(d) +
                             "; the 'cuda' backend computes batch norm in float32, bfloat16 and float16 only "
                             "(use .to('float32'))");
  }
}

const float* dataOf(const TensorRef* t) { return t ? t->buf->as<float>() : nullptr; }

Tensor doubles(int64_t n) { return empty({n}, DType::F64); }

template <typename T>
std::pair<Tensor, Tensor> statsOf(const TensorRef& x, double eps) {
  const Layout l = layoutOf(x);
  const Lines g = l.channels();
  const T* xd = x.buf->as<T>();
  Tensor sumT = doubles(l.C), sqT = doubles(l.C);
  double *sum = sumT.buf->as<double>(), *sq = sqT.buf->as<double>();
  const double M = double(l.N * l.S);
  sumLines(Values<T>{xd}, g, sum, nullptr);
  // The mean in place of the sum, for the second pass to read.
  forEach(l.C, [=] NG_DEVICE(int64_t c) { sum[c] /= M; }, "BatchNormStats");
  sumLines(SquaredDeviations<T>{xd, sum}, g, sq, nullptr);
  Tensor mean = empty({l.C}, DType::F32), invstd = empty({l.C}, DType::F32);
  float *m = mean.buf->as<float>(), *is = invstd.buf->as<float>();
  forEach(
      l.C,
      [=] NG_DEVICE(int64_t c) {
        using std::sqrt;
        m[c] = float(sum[c]);
        // Biased variance, as PyTorch normalizes with.
        is[c] = float(1.0 / sqrt(sq[c] / M + eps));
      },
      "BatchNormStats");
  return {std::move(mean), std::move(invstd)};
}

// The per-channel scale and shift of y = x * scale + shift, formed in double and stored in float as
// cpu/batchnorm.cc's batchNormAffine does: coefs[0, C) and coefs[C, 2C).
Tensor affineOf(int64_t C, const TensorRef* w, const TensorRef* b, const TensorRef& mean, const TensorRef& invstd) {
  Tensor coefs = empty({2 * C}, DType::F32);
  float *scale = coefs.buf->as<float>(), *shift = scale + C;
  const float *wd = dataOf(w), *bd = dataOf(b), *md = mean.buf->as<float>(), *isd = invstd.buf->as<float>();
  forEach(
      C,
      [=] NG_DEVICE(int64_t c) {
        const double sc = double(isd[c]) * (wd ? double(wd[c]) : 1.0);
        scale[c] = float(sc);
        shift[c] = float((bd ? double(bd[c]) : 0.0) - double(md[c]) * sc);
      },
      "BatchNormAffine");
  return coefs;
}

// y = relu?(x * scale + shift + residual?); relu as the Relu kernel (v < 0 ? 0 : v, NaN passes).
// y in x's type T, rounded once from the float32 result.
template <typename T>
Tensor elemtOf(const TensorRef& x, const TensorRef* w, const TensorRef* b, const TensorRef& mean,
               const TensorRef& invstd, const BatchNormEpilogue& e) {
  const Layout l = layoutOf(x);
  Tensor coefs = affineOf(l.C, w, b, mean, invstd);
  const float *scale = coefs.buf->as<float>(), *shift = scale + l.C;
  Tensor y = empty(x.shape, x.dtype);
  const T* xd = x.buf->as<T>();
  const T* rd = e.residual ? e.residual->buf->as<T>() : nullptr;
  const bool relu = e.relu;
  T* yd = y.buf->as<T>();
  forEach(
      int64_t(x.numel()),
      [=] NG_DEVICE(int64_t i) {
        const int64_t c = l.channel(i);
        float v = float(xd[i]) * scale[c] + shift[c];
        if (rd) v = v + float(rd[i]);
        yd[i] = T(relu && v < 0 ? 0.f : v);
      },
      "BatchNormElemt");
  return y;
}

Tensor invstd32(const TensorRef& runVar, double eps) {
  requireElement(runVar.dtype, "runVar");  // widened, when half, by invstdOf
  const auto C = int64_t(runVar.numel());
  Tensor out = empty({C}, DType::F32);
  const float* v = runVar.buf->as<float>();
  float* is = out.buf->as<float>();
  forEach(
      C,
      [=] NG_DEVICE(int64_t c) {
        using std::sqrt;
        is[c] = float(1.0 / sqrt(double(v[c]) + eps));
      },
      "BatchNormInvstd");
  return out;
}

// A fused ReLU's mask as (scale, shift) of the forward's affine, or an empty tensor without one.
Tensor maskOf(const BatchNormReluMask& m, int64_t C, const TensorRef& mean, const TensorRef& invstd) {
  return m.relu ? affineOf(C, m.w, m.b, mean, invstd) : Tensor{};
}

template <typename T>
BatchNormReduce backwardReduceOf(const TensorRef& dy, const TensorRef& x, const TensorRef& mean,
                                 const TensorRef& invstd, const BatchNormReluMask& m) {
  const Layout l = layoutOf(x);
  Tensor sT = doubles(l.C), tT = doubles(l.C);
  double *s = sT.buf->as<double>(), *t = tT.buf->as<double>();
  Tensor mask = maskOf(m, l.C, mean, invstd);
  const float* scale = m.relu ? mask.buf->as<float>() : nullptr;
  sumLines(GradSums<T>{dy.buf->as<T>(), x.buf->as<T>(), mean.buf->as<float>(), scale, scale ? scale + l.C : nullptr},
           l.channels(), s, t);
  BatchNormReduce r;
  for (Tensor* o : {&r.sumDy, &r.sumDyXmu, &r.dweight, &r.dbias}) *o = empty({l.C}, DType::F32);
  float *sumDy = r.sumDy.buf->as<float>(), *sumDyXmu = r.sumDyXmu.buf->as<float>();
  float *dw = r.dweight.buf->as<float>(), *db = r.dbias.buf->as<float>();
  const float* isd = invstd.buf->as<float>();
  forEach(
      l.C,
      [=] NG_DEVICE(int64_t c) {
        sumDy[c] = db[c] = float(s[c]);
        sumDyXmu[c] = float(t[c]);
        dw[c] = float(t[c] * double(isd[c]));
      },
      "BatchNormBackwardReduce");
  return r;
}

// dx = (dy - meanDy - (x - mean) k) f with cpu/batchnorm.cc's batchNormGradCoefs, formed in double
// and stored in float; x - mean first, so an offset input keeps its float32 digits.
template <typename T>
Tensor backwardElemtOf(const TensorRef& dy, const TensorRef& x, const TensorRef& mean, const TensorRef& invstd,
                       const TensorRef* w, const TensorRef& sumDy, const TensorRef& sumDyXmu, double count,
                       const BatchNormReluMask& m) {
  const Layout l = layoutOf(x);
  Tensor coefs = empty({3 * l.C}, DType::F32);
  float *meanDy = coefs.buf->as<float>(), *k = meanDy + l.C, *f = k + l.C;
  const float *isd = invstd.buf->as<float>(), *wd = dataOf(w);
  const float *sd = sumDy.buf->as<float>(), *td = sumDyXmu.buf->as<float>();
  forEach(
      l.C,
      [=] NG_DEVICE(int64_t c) {
        const double is = isd[c];
        meanDy[c] = float(double(sd[c]) / count);
        k[c] = float(double(td[c]) * is * is / count);
        f[c] = float(is * (wd ? double(wd[c]) : 1.0));
      },
      "BatchNormBackwardElemt");
  Tensor mask = maskOf(m, l.C, mean, invstd);
  const float* scale = m.relu ? mask.buf->as<float>() : nullptr;
  const float* shift = scale ? scale + l.C : nullptr;
  Tensor dx = empty(x.shape, x.dtype);
  const T *g = dy.buf->as<T>(), *xd = x.buf->as<T>();
  const float* md = mean.buf->as<float>();
  T* d = dx.buf->as<T>();
  forEach(
      int64_t(x.numel()),
      [=] NG_DEVICE(int64_t i) {
        const int64_t c = l.channel(i);
        const float xv = float(xd[i]);
        const float gi = scale && xv * scale[c] + shift[c] <= 0 ? 0.f : float(g[i]);
        d[i] = T((gi - meanDy[c] - (xv - md[c]) * k[c]) * f[c]);
      },
      "BatchNormBackwardElemt");
  return dx;
}

// A half operand widened to float32 (held here), or the operand itself.
struct Wide {
  Tensor hold;
  TensorRef ref;
};
Wide wide(const TensorRef& t) {
  if (!isHalf(t.dtype)) return {Tensor{}, t};
  Tensor w = castTo(t, DType::F32);
  const TensorRef r{w.buf.get(), w.shape, w.dtype};
  return {std::move(w), r};
}
// An optional operand widened; null stays null. `hold` keeps the widened copy alive.
const TensorRef* wideOpt(const TensorRef* t, Wide& hold) {
  if (!t) return nullptr;
  hold = wide(*t);
  return &hold.ref;
}
template <typename T>
void updateRunningOf(T* rm, T* rv, int64_t C, const float* md, const float* isd, const BatchNormUpdate& p) {
  const double eps = p.eps, factor = p.factor, unbias = p.count / (p.count - 1);
  forEach(
      C,
      [=] NG_DEVICE(int64_t c) {
        const double is = isd[c], var = (1.0 / (is * is) - eps) * unbias;
        rm[c] = T(float((1 - factor) * double(float(rm[c])) + factor * double(md[c])));
        rv[c] = T(float((1 - factor) * double(float(rv[c])) + factor * var));
      },
      "BatchNormUpdateRunning");
}

// In place: running = (1 - factor) running + factor batch, the batch variance recovered from
// invstd (1 / invstd^2 - eps) and made unbiased by count / (count - 1), in double.
void updateRunning(const TensorRef& runMean, const TensorRef& runVar, const TensorRef* counter, const TensorRef& mean,
                   const TensorRef& invstd, const BatchNormUpdate& p) {
  // runVar, mean and invstd have runMean's dtype (checked by the binding); nothing is written
  // before this check.
  requireElement(runMean.dtype, "runMean");
  Wide mw = wide(mean), iw = wide(invstd);
  const float *md = mw.ref.buf->as<float>(), *isd = iw.ref.buf->as<float>();
  markWritten(*runMean.buf);
  markWritten(*runVar.buf);
  NG_FLOAT_DISPATCH(runMean.dtype, updateRunningOf(runMean.buf->as<T>(), runVar.buf->as<T>(), int64_t(runMean.numel()),
                                                   md, isd, p);)
  if (!counter) return;
  // int64 is held as double: the counter advances where it lives, unread.
  markWritten(*counter->buf);
  double* n = counter->buf->as<double>();
  forEach(1, [=] NG_DEVICE(int64_t) { n[0] += 1; }, "BatchNormUpdateRunning");
}

// The entries: per-channel operands (C elements) are widened when half; x, dy and the residual are
// read in their own type and y or dx written in it, so a half batch norm moves half the bytes.
std::pair<Tensor, Tensor> stats(const TensorRef& x, double eps) {
  requireElement(x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, return statsOf<T>(x, eps);)
}

Tensor elemt(const TensorRef& x, const TensorRef* w, const TensorRef* b, const TensorRef& mean,
             const TensorRef& invstd, const BatchNormEpilogue& e) {
  requireElement(x.dtype);
  Wide hw, hb;
  const Wide mw = wide(mean), iw = wide(invstd);
  NG_FLOAT_DISPATCH(x.dtype, return elemtOf<T>(x, wideOpt(w, hw), wideOpt(b, hb), mw.ref, iw.ref, e);)
}

Tensor invstdOf(const TensorRef& runVar, double eps) {
  const Wide vw = wide(runVar);
  return invstd32(vw.ref, eps);
}

BatchNormReduce backwardReduce(const TensorRef& dy, const TensorRef& x, const TensorRef& mean,
                               const TensorRef& invstd, const BatchNormReluMask& m) {
  requireElement(x.dtype);
  Wide hw, hb;
  const Wide mw = wide(mean), iw = wide(invstd);
  const BatchNormReluMask mask{m.relu, wideOpt(m.w, hw), wideOpt(m.b, hb)};
  NG_FLOAT_DISPATCH(x.dtype, return backwardReduceOf<T>(dy, x, mw.ref, iw.ref, mask);)
}

Tensor backwardElemt(const TensorRef& dy, const TensorRef& x, const TensorRef& mean, const TensorRef& invstd,
                     const TensorRef* w, const TensorRef& sumDy, const TensorRef& sumDyXmu, double count,
                     const BatchNormReluMask& m) {
  requireElement(x.dtype);
  Wide hw, hmw, hmb;
  const Wide mw = wide(mean), iw = wide(invstd), sw = wide(sumDy), tw = wide(sumDyXmu);
  const BatchNormReluMask mask{m.relu, wideOpt(m.w, hmw), wideOpt(m.b, hmb)};
  NG_FLOAT_DISPATCH(x.dtype,
                   return backwardElemtOf<T>(dy, x, mw.ref, iw.ref, wideOpt(w, hw), sw.ref, tw.ref, count, mask);)
}

}  // namespace

void addNormKernels(KernelTable& t) {
  t.batchNormStats = stats;
  t.batchNormElemt = elemt;
  t.batchNormInvstd = invstdOf;
  t.batchNormBackwardReduce = backwardReduce;
  t.batchNormBackwardElemt = backwardElemt;
  t.batchNormUpdateRunning = updateRunning;
}

}  // namespace nodegrad::cuda
