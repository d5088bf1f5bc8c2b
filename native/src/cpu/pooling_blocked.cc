// Max pooling over [N, C, H, W] held in nChw{block}c (cpu/layout.h; float32 or a half type, whose
// values a max copies exactly), so that a ResNet's stem max-pool neither converts the stem's output
// to plain nor hands plain data to layer 1. The windows, the scan order (rows, then columns: the
// first maximum wins, a NaN wins), the -inf of a window that misses the input and PyTorch's flat
// h*W+w plane indices are those of maxPool2d in cpu/pooling.cc; only the addressing differs, with
// the block's lanes in the inner loop. The backward accumulates in float32 and rounds once.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/half.h"
#include "core/simd_clones.h"
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

// Scans one output's window over a unit (rows of b lanes, W columns): best[k] becomes the lane's
// maximum and at[k] pos(h, w) of where it is (one number per tap, so no lane divides a flat index
// back into a row and column). A window that misses the input keeps -inf and its clamped first
// position, as maxPool2d does.
#define NG_INLINE __attribute__((always_inline)) inline
template <typename T, typename Pos>
NG_INLINE void scanWindow(const T* a, int64_t H, int64_t W, int64_t b, const Window& wh, const Window& ww, int64_t dh,
                          int64_t dw, Pos&& pos, float* best, int64_t* at) {
  const int64_t first = pos(std::min(wh.start + wh.lo * dh, H - 1), std::min(ww.start + ww.lo * dw, W - 1));
  for (int64_t k = 0; k < b; k++) {
    best[k] = -std::numeric_limits<float>::infinity();
    at[k] = first;
  }
  for (int64_t i = wh.lo; i < wh.hi; i++) {
    for (int64_t j = ww.lo; j < ww.hi; j++) {
      const int64_t h = wh.start + i * dh, w = ww.start + j * dw, here = pos(h, w);
      const T* v = a + (h * W + w) * b;
#pragma omp simd
      for (int64_t k = 0; k < b; k++) {
        const float vk = float(v[k]);
        const bool take = vk > best[k] || vk != vk;
        best[k] = take ? vk : best[k];
        at[k] = take ? here : at[k];
      }
    }
  }
}

}  // namespace

template <typename T>
NG_SIMD_CLONES void maxPool2dBlocked(const T* x, T* y, double* indices, const Shape& dims, int block, int64_t OH,
                                     int64_t OW, const Pool2D& p) {
  const int64_t N = dims[0], C = dims[1], H = dims[2], W = dims[3], b = block;
  const int64_t CB = paddedChannels(C, block) / b;
  const int64_t dh = p.dilation[0], dw = p.dilation[1];
#pragma omp parallel for schedule(static) if (N * CB * OH * OW * p.kernel[0] * p.kernel[1] * b > kParallelWork)
  for (int64_t u = 0; u < N * CB; u++) {
    const T* a = x + u * H * W * b;
    T* o = y + u * OH * OW * b;
    const int64_t c0 = (u % CB) * b, lanes = std::min(b, C - c0);
    double* io = indices ? indices + ((u / CB) * C + c0) * OH * OW : nullptr;  // plain [N, C, OH, OW]
    std::vector<float> bestLanes(static_cast<size_t>(b));
    std::vector<int64_t> atLanes(static_cast<size_t>(b));
    float* best = bestLanes.data();
    int64_t* at = atLanes.data();
    for (int64_t oh = 0; oh < OH; oh++) {
      const Window wh(oh, H, p.kernel[0], p.stride[0], p.padding[0], dh);
      for (int64_t ow = 0; ow < OW; ow++) {
        const Window ww(ow, W, p.kernel[1], p.stride[1], p.padding[1], dw);
        scanWindow(a, H, W, b, wh, ww, dh, dw, [W](int64_t h, int64_t w) { return h * W + w; }, best, at);
        T* ob = o + (oh * OW + ow) * b;
        for (int64_t k = 0; k < b; k++) ob[k] = T(k < lanes ? best[k] : 0.f);
        if (io) {
          for (int64_t k = 0; k < lanes; k++) io[k * OH * OW + oh * OW + ow] = double(at[k]);
        }
      }
    }
  }
}

template <typename T, typename I>
NG_SIMD_CLONES bool maxPool2dBackwardBlocked(const T* dy, const I* indices, T* dx, const Shape& xDims, int block,
                                             int64_t OH, int64_t OW) {
  const int64_t N = xDims[0], C = xDims[1], HW = xDims[2] * xDims[3], L = OH * OW, b = block;
  const int64_t CB = paddedChannels(C, block) / b;
  bool ok = true;
  // As maxPool2dBackward: each output adds into its own plane, in output order, in float32.
#pragma omp parallel for schedule(static) reduction(&& : ok) if (N * CB * (HW + L) * b > kParallelWork)
  for (int64_t u = 0; u < N * CB; u++) {
    // float32 sums straight into dx; a half dx from a float32 scratch plane, rounded at the end.
    std::vector<float> scratch(std::is_same_v<T, float> ? 0 : static_cast<size_t>(HW * b));
    float* d = scratch.data();
    if constexpr (std::is_same_v<T, float>) d = dx + u * HW * b;
    std::memset(d, 0, size_t(HW * b) * sizeof(float));
    const T* g = dy + u * L * b;
    const int64_t c0 = (u % CB) * b, lanes = std::min(b, C - c0);
    const I* id = indices + ((u / CB) * C + c0) * L;
    // Output by output, its lanes inside: dy's row and the window's rows of d are read whole
    // (lane by lane over every output, a channels-last unit of 64 lanes took 15 ms for the stem's
    // pool of a ResNet-50 at batch 8). Each lane still adds in output order.
    for (int64_t i = 0; i < L; i++) {
      for (int64_t k = 0; k < lanes; k++) {
        const double at = double(id[k * L + i]);
        if (!(at >= 0 && at < double(HW))) {
          ok = false;
          continue;
        }
        d[int64_t(at) * b + k] += float(g[i * b + k]);
      }
    }
    if constexpr (!std::is_same_v<T, float>) {
      T* out = dx + u * HW * b;
      for (int64_t i = 0; i < HW * b; i++) out[i] = T(d[i]);
    }
  }
  return ok;
}

template <typename T>
NG_SIMD_CLONES void maxPool2dBackwardFromInputBlocked(const T* dy, const T* x, T* dx, const Shape& xDims, int block,
                                                      int64_t OH, int64_t OW, const Pool2D& p) {
  const int64_t N = xDims[0], C = xDims[1], H = xDims[2], W = xDims[3], b = block;
  const int64_t CB = paddedChannels(C, block) / b;
  const int64_t dh = p.dilation[0], dw = p.dilation[1];
  // A window's rows lie in [start, start + span); starts only grow with the output row.
  const int64_t span = (p.kernel[0] - 1) * dh + 1, row = W * b;
#pragma omp parallel for schedule(static) if (N * CB * OH * OW * p.kernel[0] * p.kernel[1] * b > kParallelWork)
  for (int64_t u = 0; u < N * CB; u++) {
    const T* a = x + u * H * W * b;
    const T* g = dy + u * OH * OW * b;
    T* out = dx + u * H * W * b;
    const int64_t lanes = std::min(b, C - (u % CB) * b);
    // float32 sums of input rows [flushed, flushed + span), row h at ring slot h % span: a row is
    // rounded into dx once no later window can reach it (it lies above the next window's start),
    // so the sums stay in cache (a whole float32 plane of the stem's pool is 3 MiB an image).
    std::vector<float> ring(static_cast<size_t>(span * row), 0.f);
    std::vector<float> bestLanes(static_cast<size_t>(b));
    std::vector<int64_t> atLanes(static_cast<size_t>(b));
    float* best = bestLanes.data();
    int64_t* at = atLanes.data();
    int64_t flushed = 0;
    auto flushTo = [&](int64_t end) __attribute__((always_inline)) {
      for (; flushed < end; flushed++) {
        float* __restrict r = ring.data() + (flushed % span) * row;
        T* __restrict o = out + flushed * row;
        // Not `omp simd`: GCC makes each lane's half-type temporary an array element there, copied
        // as a whole, and leaves the loop scalar (half of the backward's time for the stem's pool).
        for (int64_t i = 0; i < row; i++) {
          o[i] = T(r[i]);
          r[i] = 0.f;
        }
      }
    };
    for (int64_t oh = 0; oh < OH; oh++) {
      const Window wh(oh, H, p.kernel[0], p.stride[0], p.padding[0], dh);
      flushTo(std::min(std::max<int64_t>(wh.start, 0), H - 1));
      for (int64_t ow = 0; ow < OW; ow++) {
        const Window ww(ow, W, p.kernel[1], p.stride[1], p.padding[1], dw);
        // at[k]: where the maximum's row of lanes starts in the ring.
        scanWindow(a, H, W, b, wh, ww, dh, dw, [=](int64_t h, int64_t w) { return (h % span) * row + w * b; }, best, at);
        // Each lane adds in output order, as maxPool2dBackward over saved indices does.
        const T* gr = g + (oh * OW + ow) * b;
        for (int64_t k = 0; k < lanes; k++) ring[size_t(at[k] + k)] += float(gr[k]);
      }
    }
    flushTo(H);
  }
}

#define NG_POOL_BLOCKED(T)                                                                                           \
  template void maxPool2dBlocked<T>(const T*, T*, double*, const Shape&, int, int64_t, int64_t, const Pool2D&);      \
  template bool maxPool2dBackwardBlocked<T, double>(const T*, const double*, T*, const Shape&, int, int64_t, int64_t); \
  template bool maxPool2dBackwardBlocked<T, int32_t>(const T*, const int32_t*, T*, const Shape&, int, int64_t, int64_t); \
  template void maxPool2dBackwardFromInputBlocked<T>(const T*, const T*, T*, const Shape&, int, int64_t, int64_t,      \
                                                     const Pool2D&);
NG_POOL_BLOCKED(float)
NG_POOL_BLOCKED(BFloat16)
NG_POOL_BLOCKED(Float16)
#undef NG_POOL_BLOCKED

}  // namespace nodegrad::cpu
