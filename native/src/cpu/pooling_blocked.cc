// Max pooling over float32 [N, C, H, W] held in nChw{block}c (cpu/layout.h), so that a ResNet's
// stem max-pool neither converts the stem's output to plain nor hands plain data to layer 1. The
// windows, the scan order (rows, then columns: the first maximum wins, a NaN wins), the -inf of a
// window that misses the input and PyTorch's flat h*W+w plane indices are those of maxPool2d in
// cpu/pooling.cc; only the addressing differs, with the block's lanes in the inner loop.
#include <algorithm>
#include <cstring>
#include <limits>

#include "cpu/layout.h"
#include "cpu/pooling.h"

namespace nodegrad::cpu {
namespace {

constexpr int64_t kParallelWork = 1 << 15;

int64_t ceilDiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// The in-bounds taps [lo, hi) of output o along one dim, and its first input position.
struct Window {
  int64_t start, lo, hi;
  Window(int64_t o, int64_t n, int64_t k, int64_t s, int64_t p, int64_t d) {
    start = o * s - p;
    lo = start < 0 ? ceilDiv(-start, d) : 0;
    hi = std::min(k, ceilDiv(n - start, d));
  }
};

}  // namespace

void maxPool2dBlocked(const float* x, float* y, double* indices, const Shape& dims, int block, int64_t OH, int64_t OW,
                      const Pool2D& p) {
  const int64_t N = dims[0], C = dims[1], H = dims[2], W = dims[3], b = block;
  const int64_t CB = paddedChannels(C, block) / b;
  const int64_t dh = p.dilation[0], dw = p.dilation[1];
#pragma omp parallel for schedule(static) if (N * CB * OH * OW * p.kernel[0] * p.kernel[1] * b > kParallelWork)
  for (int64_t u = 0; u < N * CB; u++) {
    const float* a = x + u * H * W * b;
    float* o = y + u * OH * OW * b;
    const int64_t c0 = (u % CB) * b, lanes = std::min(b, C - c0);
    double* io = indices + ((u / CB) * C + c0) * OH * OW;  // plain [N, C, OH, OW]
    for (int64_t oh = 0; oh < OH; oh++) {
      const Window wh(oh, H, p.kernel[0], p.stride[0], p.padding[0], dh);
      for (int64_t ow = 0; ow < OW; ow++) {
        const Window ww(ow, W, p.kernel[1], p.stride[1], p.padding[1], dw);
        float best[16];
        int64_t at[16];
        const int64_t first = std::min(wh.start + wh.lo * dh, H - 1) * W + std::min(ww.start + ww.lo * dw, W - 1);
        for (int64_t k = 0; k < b; k++) {
          best[k] = -std::numeric_limits<float>::infinity();
          at[k] = first;
        }
        for (int64_t i = wh.lo; i < wh.hi; i++) {
          for (int64_t j = ww.lo; j < ww.hi; j++) {
            const int64_t hw = (wh.start + i * dh) * W + ww.start + j * dw;
            const float* v = a + hw * b;
#pragma omp simd
            for (int64_t k = 0; k < b; k++) {
              const bool take = v[k] > best[k] || v[k] != v[k];
              best[k] = take ? v[k] : best[k];
              at[k] = take ? hw : at[k];
            }
          }
        }
        float* ob = o + (oh * OW + ow) * b;
        for (int64_t k = 0; k < b; k++) ob[k] = k < lanes ? best[k] : 0.f;
        for (int64_t k = 0; k < lanes; k++) io[k * OH * OW + oh * OW + ow] = double(at[k]);
      }
    }
  }
}

template <typename I>
bool maxPool2dBackwardBlocked(const float* dy, const I* indices, float* dx, const Shape& xDims, int block, int64_t OH,
                              int64_t OW) {
  const int64_t N = xDims[0], C = xDims[1], HW = xDims[2] * xDims[3], L = OH * OW, b = block;
  const int64_t CB = paddedChannels(C, block) / b;
  bool ok = true;
  // As maxPool2dBackward: each output adds into its own plane, in output order.
#pragma omp parallel for schedule(static) reduction(&& : ok) if (N * CB * (HW + L) * b > kParallelWork)
  for (int64_t u = 0; u < N * CB; u++) {
    float* d = dx + u * HW * b;
    std::memset(d, 0, size_t(HW * b) * sizeof(float));
    const float* g = dy + u * L * b;
    const int64_t c0 = (u % CB) * b, lanes = std::min(b, C - c0);
    const I* id = indices + ((u / CB) * C + c0) * L;
    for (int64_t k = 0; k < lanes; k++) {
      for (int64_t i = 0; i < L; i++) {
        const double at = double(id[k * L + i]);
        if (!(at >= 0 && at < double(HW))) {
          ok = false;
          continue;
        }
        d[int64_t(at) * b + k] += g[i * b + k];
      }
    }
  }
  return ok;
}

template bool maxPool2dBackwardBlocked<double>(const float*, const double*, float*, const Shape&, int, int64_t, int64_t);
template bool maxPool2dBackwardBlocked<int32_t>(const float*, const int32_t*, float*, const Shape&, int, int64_t,
                                                int64_t);

}  // namespace nodegrad::cpu
