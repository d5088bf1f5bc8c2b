#include "cpu/pooling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

namespace nodegrad::cpu {
namespace {

// Below this many inner-loop steps a kernel runs on one thread: a parallel region costs a few
// microseconds, more than a small pool takes.
constexpr int64_t kParallelWork = 1 << 15;

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
int64_t ceilDiv(int64_t a, int64_t b) { return -floorDiv(-a, b); }

// Along one dim, per output position: the input position of tap 0, and the first tap and the tap
// bound that land inside [0, n).
struct Taps {
  std::vector<int64_t> start, lo, hi;
  Taps(int64_t n, int64_t o, int64_t k, int64_t s, int64_t p, int64_t d) : start(o), lo(o), hi(o) {
    for (int64_t i = 0; i < o; i++) {
      int64_t s0 = i * s - p;
      start[i] = s0;
      lo[i] = s0 < 0 ? ceilDiv(-s0, d) : 0;
      hi[i] = std::min(k, ceilDiv(n - s0, d));
    }
  }
};

// Along the W dim, per tap j: the outputs [lo, hi) whose tap j reads input position
// o * s + off inside [0, n). Looping taps outside and outputs inside keeps each output's taps in
// the 'ts' backend's order (so the same first maximum, the same double sums) while the inner loop
// is branch-free over a row of outputs, which the compiler vectorizes.
struct TapSpans {
  std::vector<int64_t> lo, hi, off;
  TapSpans(int64_t n, int64_t o, int64_t k, int64_t s, int64_t p, int64_t d) : lo(k), hi(k), off(k) {
    for (int64_t j = 0; j < k; j++) {
      off[j] = j * d - p;
      lo[j] = std::min(o, std::max<int64_t>(0, ceilDiv(-off[j], s)));
      hi[j] = std::max(lo[j], std::min(o, floorDiv(n - 1 - off[j], s) + 1));
    }
  }
};

// Average-pool windows along one dim: clipped [lo, hi) in the input, and the window length
// counted up to the padded border (PyTorch's pool_size, which includes padding).
struct AvgWindows {
  std::vector<int64_t> lo, hi, padded;
  AvgWindows(int64_t n, int64_t o, int64_t k, int64_t s, int64_t p) : lo(o), hi(o), padded(o) {
    for (int64_t i = 0; i < o; i++) {
      int64_t s0 = i * s - p, e0 = std::min(s0 + k, n + p);
      padded[i] = e0 - s0;
      lo[i] = std::max<int64_t>(s0, 0);
      hi[i] = std::min(e0, n);
    }
  }
};

// The divisor of every output element (the same for each plane). A window with no input element
// sums to 0; its divisor is 1 so that it averages to 0 rather than NaN.
std::vector<double> avgDivisors(const AvgWindows& wh, const AvgWindows& ww, bool countIncludePad) {
  size_t OH = wh.lo.size(), OW = ww.lo.size();
  std::vector<double> div(OH * OW);
  for (size_t oh = 0; oh < OH; oh++) {
    for (size_t ow = 0; ow < OW; ow++) {
      int64_t eh = wh.hi[oh] - wh.lo[oh], ew = ww.hi[ow] - ww.lo[ow];
      const int64_t n = countIncludePad ? wh.padded[oh] * ww.padded[ow] : eh * ew;
      div[oh * OW + ow] = eh <= 0 || ew <= 0 ? 1.0 : double(n);
    }
  }
  return div;
}

// PyTorch's adaptive bins along one dim: [floor(i n / o), ceil((i + 1) n / o)).
void adaptiveBins(int64_t n, int64_t o, std::vector<int64_t>& lo, std::vector<int64_t>& hi) {
  lo.resize(o);
  hi.resize(o);
  for (int64_t i = 0; i < o; i++) {
    lo[i] = (i * n) / o;
    hi[i] = ((i + 1) * n + o - 1) / o;
  }
}

}  // namespace

namespace {

// One tap of one row of max-pool windows: outputs [lo, hi) read row[ow * stride + off]. The first
// maximum wins; NaN beats every number, as in PyTorch and the 'ts' backend. A compile-time stride
// S (1 or 2, the common ones) and int32 indices let the compiler vectorize this branch-free
// loop; S = 0 takes the stride at run time.
template <int S, typename I>
void maxTap(const float* row, float* best, I* at, int64_t lo, int64_t hi, int64_t off, int64_t hW, int64_t stride) {
  const int64_t st = S > 0 ? S : stride;
#pragma omp simd
  for (int64_t ow = lo; ow < hi; ow++) {
    const int64_t w = ow * st + off;
    const float v = row[w];
    const bool take = v > best[ow] || v != v;
    best[ow] = take ? v : best[ow];
    at[ow] = take ? I(hW + w) : at[ow];
  }
}

// One tap of one row of average-pool windows: s[ow] += row[ow * stride + off] (forward), or
// row[ow * stride + off] += v[ow] (backward); stride templated as in maxTap.
template <int S>
void sumTap(const float* row, double* s, int64_t lo, int64_t hi, int64_t off, int64_t stride) {
  const int64_t st = S > 0 ? S : stride;
#pragma omp simd
  for (int64_t ow = lo; ow < hi; ow++) s[ow] += row[ow * st + off];
}
template <int S>
void spreadTap(float* row, const float* v, int64_t lo, int64_t hi, int64_t off, int64_t stride) {
  const int64_t st = S > 0 ? S : stride;
  // Distinct outputs of one tap hit distinct columns (stride >= 1): no conflicts within the loop.
#pragma omp simd
  for (int64_t ow = lo; ow < hi; ow++) row[ow * st + off] += v[ow];
}

// I holds a plane index while the windows are scanned: int32 where the plane fits (the fast path).
template <typename I>
void maxPool2dImpl(const float* x, float* y, double* indices, int64_t planes, int64_t H, int64_t W,
                   int64_t OH, int64_t OW, const Pool2D& p) {
  const int64_t dh = p.dilation[0], dw = p.dilation[1], sw = p.stride[1], kw = p.kernel[1];
  const Taps th(H, OH, p.kernel[0], p.stride[0], p.padding[0], dh);
  const Taps tw(W, OW, kw, sw, p.padding[1], dw);
  const TapSpans sp(W, OW, kw, sw, p.padding[1], dw);
  const int64_t work = planes * OH * OW * p.kernel[0] * kw;
#pragma omp parallel if (work > kParallelWork)
  {
    std::vector<I> at(static_cast<size_t>(OW));
#pragma omp for schedule(static)
    for (int64_t c = 0; c < planes; c++) {
      const float* a = x + c * H * W;
      for (int64_t oh = 0; oh < OH; oh++) {
        const int64_t h0 = th.start[oh], hLo = th.lo[oh], hHi = th.hi[oh];
        float* best = y + (c * OH + oh) * OW;
        // The index starts at the first in-bounds tap, as PyTorch's; a window that misses the
        // input entirely keeps -inf and an index clamped into the plane, so backward stays inside it.
        const int64_t hFirst = std::min(h0 + hLo * dh, H - 1) * W;
        for (int64_t ow = 0; ow < OW; ow++) {
          best[ow] = -std::numeric_limits<float>::infinity();
          at[size_t(ow)] = I(hFirst + std::min(tw.start[ow] + tw.lo[ow] * dw, W - 1));
        }
        for (int64_t i = hLo; i < hHi; i++) {
          const int64_t hW = (h0 + i * dh) * W;
          for (int64_t j = 0; j < kw; j++) {
            const auto tap = sw == 1 ? maxTap<1, I> : sw == 2 ? maxTap<2, I> : maxTap<0, I>;
            tap(a + hW, best, at.data(), sp.lo[j], sp.hi[j], sp.off[j], hW, sw);
          }
        }
        double* io = indices + (c * OH + oh) * OW;
        for (int64_t ow = 0; ow < OW; ow++) io[ow] = double(at[size_t(ow)]);
      }
    }
  }
}

}  // namespace

void maxPool2d(const float* x, float* y, double* indices, int64_t planes, int64_t H, int64_t W,
               int64_t OH, int64_t OW, const Pool2D& p) {
  if (H * W <= std::numeric_limits<int32_t>::max()) {
    maxPool2dImpl<int32_t>(x, y, indices, planes, H, W, OH, OW, p);
  } else {
    maxPool2dImpl<int64_t>(x, y, indices, planes, H, W, OH, OW, p);
  }
}

template <typename I>
bool maxPool2dBackward(const float* dy, const I* indices, float* dx, int64_t planes, int64_t HW, int64_t L) {
  bool ok = true;
  // Indices stay within their own plane, so planes are independent and scatter without races.
#pragma omp parallel for schedule(static) reduction(&& : ok) if (planes * (HW + L) > kParallelWork)
  for (int64_t c = 0; c < planes; c++) {
    float* d = dx + c * HW;
    std::memset(d, 0, size_t(HW) * sizeof(float));
    const float* g = dy + c * L;
    const I* id = indices + c * L;
    for (int64_t i = 0; i < L; i++) {
      const double k = double(id[i]);
      if (!(k >= 0 && k < double(HW))) {
        ok = false;
        continue;
      }
      d[int64_t(k)] += g[i];
    }
  }
  return ok;
}

template <typename I>
bool maxPool2dGather(const float* x, const I* indices, float* y, int64_t planes, int64_t HW, int64_t L) {
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (planes * L > kParallelWork)
  for (int64_t c = 0; c < planes; c++) {
    const float* a = x + c * HW;
    float* o = y + c * L;
    const I* id = indices + c * L;
    for (int64_t i = 0; i < L; i++) {
      const double k = double(id[i]);
      if (!(k >= 0 && k < double(HW))) {
        ok = false;
        o[i] = NAN;
        continue;
      }
      o[i] = a[int64_t(k)];
    }
  }
  return ok;
}

template bool maxPool2dBackward<double>(const float*, const double*, float*, int64_t, int64_t, int64_t);
template bool maxPool2dBackward<int32_t>(const float*, const int32_t*, float*, int64_t, int64_t, int64_t);
template bool maxPool2dGather<double>(const float*, const double*, float*, int64_t, int64_t, int64_t);
template bool maxPool2dGather<int32_t>(const float*, const int32_t*, float*, int64_t, int64_t, int64_t);

void avgPool2d(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
               const Pool2D& p) {
  const AvgWindows wh(H, OH, p.kernel[0], p.stride[0], p.padding[0]);
  const AvgWindows ww(W, OW, p.kernel[1], p.stride[1], p.padding[1]);
  // With dilation 1, tap j of a window is inside the input exactly when it is inside the clipped window.
  const TapSpans sp(W, OW, p.kernel[1], p.stride[1], p.padding[1], 1);
  const std::vector<double> div = avgDivisors(wh, ww, p.countIncludePad);
  const int64_t sw = p.stride[1], kw = p.kernel[1];
  const int64_t work = planes * OH * OW * p.kernel[0] * kw;
#pragma omp parallel if (work > kParallelWork)
  {
    // Sums in double whatever the input's precision, each in the 'ts' backend's order (rows, then columns).
    std::vector<double> acc(static_cast<size_t>(OW));
#pragma omp for schedule(static)
    for (int64_t c = 0; c < planes; c++) {
      const float* a = x + c * H * W;
      for (int64_t oh = 0; oh < OH; oh++) {
        double* s = acc.data();
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t h = wh.lo[oh]; h < wh.hi[oh]; h++) {
          const float* row = a + h * W;
          for (int64_t j = 0; j < kw; j++) {
            const auto tap = sw == 1 ? sumTap<1> : sw == 2 ? sumTap<2> : sumTap<0>;
            tap(row, s, sp.lo[j], sp.hi[j], sp.off[j], sw);
          }
        }
        float* o = y + (c * OH + oh) * OW;
        const double* dv = div.data() + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) o[ow] = float(s[ow] / dv[ow]);
      }
    }
  }
}

void avgPool2dBackward(const float* dy, float* dx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                       int64_t OW, const Pool2D& p) {
  const AvgWindows wh(H, OH, p.kernel[0], p.stride[0], p.padding[0]);
  const AvgWindows ww(W, OW, p.kernel[1], p.stride[1], p.padding[1]);
  const TapSpans sp(W, OW, p.kernel[1], p.stride[1], p.padding[1], 1);
  const std::vector<double> div = avgDivisors(wh, ww, p.countIncludePad);
  const int64_t sw = p.stride[1], kw = p.kernel[1];
  const int64_t work = planes * (H * W + OH * OW * p.kernel[0] * kw);
#pragma omp parallel if (work > kParallelWork)
  {
    std::vector<float> v(static_cast<size_t>(OW));
#pragma omp for schedule(static)
    for (int64_t c = 0; c < planes; c++) {
      float* d = dx + c * H * W;
      std::memset(d, 0, size_t(H * W) * sizeof(float));
      for (int64_t oh = 0; oh < OH; oh++) {
        const float* g = dy + (c * OH + oh) * OW;
        const double* dv = div.data() + oh * OW;
        float* vp = v.data();
        for (int64_t ow = 0; ow < OW; ow++) vp[ow] = float(g[ow] / dv[ow]);
        for (int64_t h = wh.lo[oh]; h < wh.hi[oh]; h++) {
          float* row = d + h * W;
          for (int64_t j = 0; j < kw; j++) {
            const auto tap = sw == 1 ? spreadTap<1> : sw == 2 ? spreadTap<2> : spreadTap<0>;
            tap(row, vp, sp.lo[j], sp.hi[j], sp.off[j], sw);
          }
        }
      }
    }
  }
}

void adaptiveAvgPool2d(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  std::vector<int64_t> h0, h1, w0, w1;
  adaptiveBins(H, OH, h0, h1);
  adaptiveBins(W, OW, w0, w1);
  // Each bin is at most ceil(H/OH)+1 rows, so the work is about one read of x plus the outputs.
  const int64_t work = planes * (H * W + OH * OW);
#pragma omp parallel for schedule(static) if (work > kParallelWork)
  for (int64_t c = 0; c < planes; c++) {
    const float* a = x + c * H * W;
    float* o = y + c * OH * OW;
    for (int64_t oh = 0; oh < OH; oh++) {
      for (int64_t ow = 0; ow < OW; ow++) {
        double s = 0;  // in double whatever the input's precision
        for (int64_t h = h0[oh]; h < h1[oh]; h++) {
          for (int64_t w = w0[ow]; w < w1[ow]; w++) s += a[h * W + w];
        }
        o[oh * OW + ow] = float(s / double((h1[oh] - h0[oh]) * (w1[ow] - w0[ow])));
      }
    }
  }
}

void adaptiveAvgPool2dBackward(const float* dy, float* dx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                               int64_t OW) {
  std::vector<int64_t> h0, h1, w0, w1;
  adaptiveBins(H, OH, h0, h1);
  adaptiveBins(W, OW, w0, w1);
  const int64_t work = planes * (H * W + OH * OW);
#pragma omp parallel for schedule(static) if (work > kParallelWork)
  for (int64_t c = 0; c < planes; c++) {
    float* d = dx + c * H * W;
    std::memset(d, 0, size_t(H * W) * sizeof(float));
    const float* g = dy + c * OH * OW;
    for (int64_t oh = 0; oh < OH; oh++) {
      for (int64_t ow = 0; ow < OW; ow++) {
        const float v = float(g[oh * OW + ow] / double((h1[oh] - h0[oh]) * (w1[ow] - w0[ow])));
        for (int64_t h = h0[oh]; h < h1[oh]; h++) {
          for (int64_t w = w0[ow]; w < w1[ow]; w++) d[h * W + w] += v;
        }
      }
    }
  }
}

}  // namespace nodegrad::cpu
