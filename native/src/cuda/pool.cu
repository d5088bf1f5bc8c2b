// Pooling on the device over the planes of [N, C, H, W] (or [C, H, W]), in float32 and the half
// types as on 'cpu' (a half element widened to float32, sums and scatters in float32 or double as
// there, each half result rounded once), with core/geometry.h's shapes and checks. Forward passes
// run one thread per output. The backward passes whose windows are known run one thread per input
// element, which gathers the gradients of the windows that reach it in the order cpu/pooling.cc
// adds them: no atomics, and the same float sums as 'cpu'. Only MaxPool2DScatter, whose indices may
// point anywhere in the plane, scatter-adds.
#include <limits>
#include <stdexcept>
#include <string>

#include "core/geometry.h"
#include "core/half.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace nodegrad::cuda {
namespace {

// std::min and friends are host-only constexpr functions under nvcc without relaxed constexpr.
NG_HD int64_t minHD(int64_t a, int64_t b) { return a < b ? a : b; }
NG_HD int64_t maxHD(int64_t a, int64_t b) { return a > b ? a : b; }
NG_HD int64_t floorDivHD(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
NG_HD int64_t ceilDivHD(int64_t a, int64_t b) { return -floorDivHD(-a, b); }

// The windows along one dim: input size n, output size o, kernel, stride, padding, dilation.
struct Win {
  int64_t n, o, k, s, p, d;
};

Win winH(const Planes& pl, int64_t oh, const Pool2D& p) {
  return {pl.H, oh, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0]};
}
Win winW(const Planes& pl, int64_t ow, const Pool2D& p) {
  return {pl.W, ow, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1]};
}

// Output i's window: the position of tap 0, and the taps [lo, hi) that land inside [0, n).
NG_HD void taps(const Win& a, int64_t i, int64_t& s0, int64_t& lo, int64_t& hi) {
  s0 = i * a.s - a.p;
  lo = s0 < 0 ? ceilDivHD(-s0, a.d) : 0;
  hi = minHD(a.k, ceilDivHD(a.n - s0, a.d));
}

// The outputs [lo, hi) whose max index can have position h along this dim: those with a tap on
// h and, for h < d, the windows starting in the padding, whose index starts at their first
// in-bounds tap (clamped to n - 1 when they miss the input), which lies below d.
NG_HD void maxCandidates(const Win& a, int64_t h, int64_t& lo, int64_t& hi) {
  lo = h < a.d ? 0 : maxHD(ceilDivHD(h + a.p - (a.k - 1) * a.d, a.s), 0);
  hi = minHD(floorDivHD(h + a.p, a.s) + 1, a.o);
}

// Average window i: clipped [lo, hi) in the input, and its length up to the padded border
// (PyTorch's pool_size, which counts padding).
NG_HD void avgWindow(const Win& a, int64_t i, int64_t& lo, int64_t& hi, int64_t& padded) {
  const int64_t s0 = i * a.s - a.p, e0 = minHD(s0 + a.k, a.n + a.p);
  padded = e0 - s0;
  lo = maxHD(s0, 0);
  hi = minHD(e0, a.n);
}

// The divisor of output (oh, ow). A window with no input element sums to 0; its divisor is 1 so
// that it averages to 0 rather than NaN.
NG_HD double avgDivisor(const Win& wh, const Win& ww, int64_t oh, int64_t ow, bool countIncludePad) {
  int64_t h0, h1, ph, w0, w1, pw;
  avgWindow(wh, oh, h0, h1, ph);
  avgWindow(ww, ow, w0, w1, pw);
  const int64_t eh = h1 - h0, ew = w1 - w0;
  return eh <= 0 || ew <= 0 ? 1.0 : double(countIncludePad ? ph * pw : eh * ew);
}

// PyTorch's adaptive bin i along one dim of n inputs and o outputs: [floor(i n / o), ceil((i + 1) n / o)).
NG_HD int64_t binLo(int64_t i, int64_t n, int64_t o) { return i * n / o; }
NG_HD int64_t binHi(int64_t i, int64_t n, int64_t o) { return ((i + 1) * n + o - 1) / o; }

// The first maximum of each window in scan order; NaN beats every number (a later NaN takes the
// index, as on 'cpu'). A window that misses the input gives -inf with its first tap's position
// clamped into the plane, so a backward stays inside it. y may be null (the backward's pass).
template <typename T>
void maxWindows(const T* x, T* y, double* idx, int64_t planes, Win wh, Win ww) {
  const float ninf = -std::numeric_limits<float>::infinity();
  forEach(planes * wh.o * ww.o, [=] NG_DEVICE(int64_t i) {
    const int64_t ow = i % ww.o, oh = i / ww.o % wh.o, W = ww.n;
    const T* a = x + i / (ww.o * wh.o) * wh.n * W;
    int64_t h0, hLo, hHi, w0, wLo, wHi;
    taps(wh, oh, h0, hLo, hHi);
    taps(ww, ow, w0, wLo, wHi);
    float best = ninf;
    int64_t at = minHD(h0 + hLo * wh.d, wh.n - 1) * W + minHD(w0 + wLo * ww.d, W - 1);
    for (int64_t ih = hLo; ih < hHi; ih++) {
      const int64_t row = (h0 + ih * wh.d) * W;
      for (int64_t jw = wLo; jw < wHi; jw++) {
        const int64_t pos = row + w0 + jw * ww.d;
        const float v = float(a[pos]);
        if (v > best || v != v) {
          best = v;
          at = pos;
        }
      }
    }
    if (y) y[i] = T(best);
    idx[i] = double(at);
  }, "MaxPool2D");
}

Shape withHW(const Shape& lead, int64_t oh, int64_t ow) {
  Shape s = lead;
  s.push_back(oh);
  s.push_back(ow);
  return s;
}

void requireF32OrHalf(DType d, const char* name) {
  if (d != DType::F32 && !isHalf(d)) {
    throw std::runtime_error(std::string("argument '") + name + "' is " + dtypeName(d) +
                             "; the 'cuda' backend computes this kernel in float32 and the half types only (use .to('float32'))");
  }
}

void requireSameType(DType x, DType dy) {
  if (x != dy) throw std::runtime_error(std::string("dy is ") + dtypeName(dy) + " but x is " + dtypeName(x));
}

[[noreturn]] void badIndex(int64_t hw) {
  throw std::out_of_range("an index lies outside its input plane of " + std::to_string(hw) + " elements");
}

// A device flag that kernels raise (set to 1), and its value read back, which waits for them.
Tensor newFlag() {
  Tensor f = empty({1}, DType::I32);
  int32_t* p = f.buf->as<int32_t>();
  forEach(1, [=] NG_DEVICE(int64_t) { *p = 0; }, "Flag");
  return f;
}
bool raised(const Tensor& flag) {
  int32_t v = 0;
  copyToHost(&v, flag.buf->data, sizeof v);
  return v != 0;
}

std::pair<Tensor, Tensor> maxPool2dWithIndices(const TensorRef& x, const Pool2D& p) {
  int64_t OH, OW;
  poolOutShape(x.shape, p, false, &OH, &OW);
  requireF32OrHalf(x.dtype, "x");
  const Planes pl = planesOf(x.shape);
  const Shape ys = withHW(pl.lead, OH, OW);
  Tensor y = empty(ys, x.dtype), idx = empty(ys, DType::I64);
  NG_FLOAT_DISPATCH(x.dtype, maxWindows(x.buf->as<T>(), y.buf->as<T>(), idx.buf->as<double>(), pl.planes, winH(pl, OH, p),
                                       winW(pl, OW, p));)
  return {std::move(y), std::move(idx)};
}

Tensor maxPool2d(const TensorRef& x, const Pool2D& p) { return maxPool2dWithIndices(x, p).first; }

// Each input element gathers the gradients of the windows whose index is its own, in float32.
template <typename T>
void maxBackwardFrom(const T* g, const double* id, T* d, int64_t n, Win wh, Win ww) {
  forEach(n, [=] NG_DEVICE(int64_t i) {
    const int64_t W = ww.n, w = i % W, h = i / W % wh.n, base = i / (W * wh.n) * wh.o * ww.o;
    int64_t ohLo, ohHi, owLo, owHi;
    maxCandidates(wh, h, ohLo, ohHi);
    maxCandidates(ww, w, owLo, owHi);
    const double self = double(h * W + w);
    float s = 0;
    for (int64_t oh = ohLo; oh < ohHi; oh++) {
      for (int64_t ow = owLo; ow < owHi; ow++) {
        const int64_t j = base + oh * ww.o + ow;
        if (id[j] == self) s += float(g[j]);
      }
    }
    d[i] = T(s);
  }, "MaxPool2DBackward");
}

// The argmax found again from x (y is not needed), then each input element gathers the gradients
// of the windows whose index is its own.
Tensor maxPool2dBackward(const TensorRef& dy, const TensorRef& x, const TensorRef& /*y*/, const Pool2D& p) {
  int64_t OH, OW;
  poolOutShape(x.shape, p, false, &OH, &OW);
  requireF32OrHalf(x.dtype, "x");
  const Planes pl = planesOf(x.shape);
  const Shape ys = withHW(pl.lead, OH, OW);
  if (dy.shape != ys) {
    throw std::invalid_argument("dy " + fmtShape(dy.shape) + " is not the output shape " + fmtShape(ys) + " of x " +
                                fmtShape(x.shape));
  }
  requireF32OrHalf(dy.dtype, "dy");
  requireSameType(x.dtype, dy.dtype);
  const Win wh = winH(pl, OH, p), ww = winW(pl, OW, p);
  Tensor idx = empty(ys, DType::I64);
  Tensor dx = empty(x.shape, x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, {
    maxWindows(x.buf->as<T>(), static_cast<T*>(nullptr), idx.buf->as<double>(), pl.planes, wh, ww);
    maxBackwardFrom(dy.buf->as<T>(), idx.buf->as<double>(), dx.buf->as<T>(), pl.planes * pl.H * pl.W, wh, ww);
  })
  return dx;
}


template <typename T, typename I>
void scatterInto(const T* g, const I* id, float* d, int64_t n, int64_t L, int64_t HW, int32_t* bad) {
  forEach(n, [=] NG_DEVICE(int64_t i) {
    const double k = double(id[i]);
    if (!(k >= 0 && k < double(HW))) *bad = 1;
    else atomicAddHD(d + i / L * HW + int64_t(k), float(g[i]));
  }, "MaxPool2DScatter");
}

template <typename T, typename I>
void gatherFrom(const T* x, const I* id, T* y, int64_t n, int64_t L, int64_t HW, int32_t* bad) {
  const T nan = T(std::numeric_limits<float>::quiet_NaN());
  forEach(n, [=] NG_DEVICE(int64_t i) {
    const double k = double(id[i]);
    const bool ok = k >= 0 && k < double(HW);
    if (!ok) *bad = 1;
    y[i] = ok ? x[i / L * HW + int64_t(k)] : nan;
  }, "MaxPool2DGather");
}

// y = T(x) elementwise: a float32 accumulation rounded once into a half result.
template <typename T>
void narrowInto(const float* x, T* y, int64_t n) {
  forEach(n, [=] NG_DEVICE(int64_t i) { y[i] = T(x[i]); }, "Narrow");
}

Tensor maxPool2dScatter(const TensorRef& dy, const TensorRef& indices, const Shape& xs) {
  const Planes pl = planesOf(xs);
  const int64_t L = scatterOutputsPerPlane(dy.shape, indices.shape, indices.dtype, xs);
  requireF32OrHalf(dy.dtype, "dy");
  // Sums in float32 (atomics), so a half dy scatters into a float32 dx that is then rounded.
  Tensor dx = empty(xs, DType::F32);
  float* d = dx.buf->as<float>();
  forEach(numel(xs), [=] NG_DEVICE(int64_t i) { d[i] = 0; }, "MaxPool2DScatter");
  const int64_t HW = pl.H * pl.W, n = int64_t(dy.numel());
  Tensor bad = newFlag();
  int32_t* b = bad.buf->as<int32_t>();
  NG_FLOAT_DISPATCH(dy.dtype, {
    const T* g = dy.buf->as<T>();
    if (indices.dtype == DType::I32) scatterInto(g, indices.buf->as<int32_t>(), d, n, L, HW, b);
    else scatterInto(g, indices.buf->as<double>(), d, n, L, HW, b);
  })
  if (raised(bad)) badIndex(HW);
  if (dy.dtype == DType::F32) return dx;
  Tensor out = empty(xs, dy.dtype);
  NG_FLOAT_DISPATCH(dy.dtype, narrowInto(d, out.buf->as<T>(), numel(xs));)
  return out;
}

Tensor maxPool2dGather(const TensorRef& x, const TensorRef& indices) {
  const Planes pl = planesOf(x.shape);
  const Shape& is = indices.shape;
  const int64_t L = gatherOutputsPerPlane(x.shape, is, indices.dtype);
  requireF32OrHalf(x.dtype, "x");
  Tensor y = empty(is, x.dtype);
  const int64_t HW = pl.H * pl.W, n = int64_t(indices.numel());
  Tensor bad = newFlag();
  int32_t* b = bad.buf->as<int32_t>();
  NG_FLOAT_DISPATCH(x.dtype, {
    const T* a = x.buf->as<T>();
    if (indices.dtype == DType::I32) gatherFrom(a, indices.buf->as<int32_t>(), y.buf->as<T>(), n, L, HW, b);
    else gatherFrom(a, indices.buf->as<double>(), y.buf->as<T>(), n, L, HW, b);
  })
  if (raised(bad)) badIndex(HW);
  return y;
}

// Sums in double in the 'cpu' order (rows, then columns), rounded to float32 (then to a half type).
template <typename T>
void avgWindows(const T* a, T* o, int64_t planes, Win wh, Win ww, bool cip) {
  forEach(planes * wh.o * ww.o, [=] NG_DEVICE(int64_t i) {
    const int64_t ow = i % ww.o, oh = i / ww.o % wh.o, W = ww.n;
    const T* plane = a + i / (ww.o * wh.o) * wh.n * W;
    int64_t h0, h1, ph, w0, w1, pw;
    avgWindow(wh, oh, h0, h1, ph);
    avgWindow(ww, ow, w0, w1, pw);
    double s = 0;
    for (int64_t h = h0; h < h1; h++) {
      for (int64_t w = w0; w < w1; w++) s += double(float(plane[h * W + w]));
    }
    o[i] = T(float(s / avgDivisor(wh, ww, oh, ow, cip)));
  }, "AvgPool2D");
}

Tensor avgPool2d(const TensorRef& x, const Pool2D& p) {
  int64_t OH, OW;
  poolOutShape(x.shape, p, true, &OH, &OW);
  requireF32OrHalf(x.dtype, "x");
  const Planes pl = planesOf(x.shape);
  Tensor y = empty(withHW(pl.lead, OH, OW), x.dtype);
  const Win wh = winH(pl, OH, p), ww = winW(pl, OW, p);
  NG_FLOAT_DISPATCH(x.dtype, avgWindows(x.buf->as<T>(), y.buf->as<T>(), pl.planes, wh, ww, p.countIncludePad);)
  return y;
}

// Each input element gathers float(dy / divisor) over its windows, adding them in the order
// 'cpu' does (rows of outputs in turn, each row's outputs from the last to the first).
template <typename T>
void avgBackwardInto(const T* g, T* d, int64_t n, Win wh, Win ww, bool cip) {
  forEach(n, [=] NG_DEVICE(int64_t i) {
    const int64_t W = ww.n, w = i % W, h = i / W % wh.n;
    const T* gp = g + i / (W * wh.n) * wh.o * ww.o;
    // Windows [s0, s0 + k) holding h: s0 <= h < s0 + k (the clip at n + p never cuts h < n).
    const int64_t ohLo = maxHD(floorDivHD(h + wh.p - wh.k, wh.s) + 1, 0), ohHi = minHD(floorDivHD(h + wh.p, wh.s) + 1, wh.o);
    const int64_t owLo = maxHD(floorDivHD(w + ww.p - ww.k, ww.s) + 1, 0), owHi = minHD(floorDivHD(w + ww.p, ww.s) + 1, ww.o);
    float s = 0;
    for (int64_t oh = ohLo; oh < ohHi; oh++) {
      for (int64_t ow = owHi - 1; ow >= owLo; ow--) s += float(double(float(gp[oh * ww.o + ow])) / avgDivisor(wh, ww, oh, ow, cip));
    }
    d[i] = T(s);
  }, "AvgPool2DBackward");
}

Tensor avgPool2dBackward(const TensorRef& dy, const Shape& xs, const Pool2D& p) {
  int64_t OH, OW;
  poolOutShape(xs, p, true, &OH, &OW);
  const Planes pl = planesOf(xs);
  const Shape want = withHW(pl.lead, OH, OW);
  if (dy.shape != want) {
    throw std::invalid_argument("dy " + fmtShape(dy.shape) + " should be " + fmtShape(want) + " for input " + fmtShape(xs));
  }
  requireF32OrHalf(dy.dtype, "dy");
  Tensor dx = empty(xs, dy.dtype);
  const Win wh = winH(pl, OH, p), ww = winW(pl, OW, p);
  NG_FLOAT_DISPATCH(dy.dtype, avgBackwardInto(dy.buf->as<T>(), dx.buf->as<T>(), pl.planes * pl.H * pl.W, wh, ww,
                                             p.countIncludePad);)
  return dx;
}


template <typename T>
void adaptiveWindows(const T* a, T* o, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  forEach(planes * OH * OW, [=] NG_DEVICE(int64_t i) {
    const int64_t ow = i % OW, oh = i / OW % OH;
    const T* plane = a + i / (OW * OH) * H * W;
    const int64_t h0 = binLo(oh, H, OH), h1 = binHi(oh, H, OH), w0 = binLo(ow, W, OW), w1 = binHi(ow, W, OW);
    double s = 0;
    for (int64_t h = h0; h < h1; h++) {
      for (int64_t w = w0; w < w1; w++) s += double(float(plane[h * W + w]));
    }
    o[i] = T(float(s / double((h1 - h0) * (w1 - w0))));
  }, "AdaptiveAvgPool2D");
}

Tensor adaptiveAvgPool2d(const TensorRef& x, int64_t OH, int64_t OW) {
  const Planes pl = planesOf(x.shape);
  requireF32OrHalf(x.dtype, "x");
  Tensor y = empty(withHW(pl.lead, OH, OW), x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, adaptiveWindows(x.buf->as<T>(), y.buf->as<T>(), pl.planes, pl.H, pl.W, OH, OW);)
  return y;
}

// Input h lies in bins [floor(h o / n), ceil((h + 1) o / n)), the inverse of the bin bounds.
template <typename T>
void adaptiveBackwardInto(const T* g, T* d, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  forEach(planes * H * W, [=] NG_DEVICE(int64_t i) {
    const int64_t w = i % W, h = i / W % H;
    const T* gp = g + i / (W * H) * OH * OW;
    float s = 0;
    for (int64_t oh = binLo(h, OH, H); oh < binHi(h, OH, H); oh++) {
      const int64_t hn = binHi(oh, H, OH) - binLo(oh, H, OH);
      for (int64_t ow = binLo(w, OW, W); ow < binHi(w, OW, W); ow++) {
        s += float(double(float(gp[oh * OW + ow])) / double(hn * (binHi(ow, W, OW) - binLo(ow, W, OW))));
      }
    }
    d[i] = T(s);
  }, "AdaptiveAvgPool2DBackward");
}

Tensor adaptiveAvgPool2dBackward(const TensorRef& dy, const Shape& xs) {
  const Shape& ds = dy.shape;
  const int64_t OH = ds[ds.size() - 2], OW = ds[ds.size() - 1];
  const Planes pl = planesOf(xs);
  requireF32OrHalf(dy.dtype, "dy");
  Tensor dx = empty(xs, dy.dtype);
  NG_FLOAT_DISPATCH(dy.dtype, adaptiveBackwardInto(dy.buf->as<T>(), dx.buf->as<T>(), pl.planes, pl.H, pl.W, OH, OW);)
  return dx;
}

}  // namespace

void addPoolKernels(KernelTable& t) {
  t.maxPool2d = maxPool2d;
  t.maxPool2dBackward = maxPool2dBackward;
  t.maxPool2dWithIndices = maxPool2dWithIndices;
  t.maxPool2dScatter = maxPool2dScatter;
  t.maxPool2dGather = maxPool2dGather;
  t.avgPool2d = avgPool2d;
  t.avgPool2dBackward = avgPool2dBackward;
  t.adaptiveAvgPool2d = adaptiveAvgPool2d;
  t.adaptiveAvgPool2dBackward = adaptiveAvgPool2dBackward;
}

}  // namespace nodegrad::cuda
