#include "cpu/conv_gemm.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/simd_clones.h"
#include "cpu/matmul.h"
#include "cpu/onednn.h"

namespace nodegrad::cpu {
namespace {

// A 1x1 kernel without padding: each output reads one input position, (oh * sh, ow * sw).
bool unpaddedOneTap(const ConvGeom& g) { return g.kh * g.kw == 1 && g.p.ph == 0 && g.p.pw == 0; }

}  // namespace

// Where the matmul beats oneDNN 2.6's AMX backward-weights primitive, timed here per ResNet-18 (batch
// 32, 32x32) and ResNet-50 (batch 8, 224x224) geometry (Intel Xeon with AMX, 2 threads; float32
// dw, the primitive's time first): 1x1 convolutions but the smallest (2.4 -> 1.4 ms for 64 -> 256
// on 56x56, 4.8 -> 0.9 ms for 512 -> 2048 on 7x7, 10.9 -> 2.2 ms for 1024 -> 2048 with stride
// 2); strided ones on a 16x16 output or smaller (4.4 -> 1.7 ms for 128 -> 256, 3x3, 16x16 -> 8x8;
// 4.0 -> 2.3 ms for 256 -> 256, 28x28 -> 14x14; but 2.6 against 3.4 ms for 128 -> 128, 56x56 ->
// 28x28); and stride-1 ones on an 8x8 output or smaller (12.0 -> 3.3 ms for 512 -> 512 on 4x4,
// 6.0 -> 3.6 ms on ResNet-50's 7x7, 4.0-4.4 -> 2.8-3.0 ms for 256 -> 256 on 8x8). Larger ones run
// the primitive, even on 14x14 (2.1-2.2 against 2.2-2.4 ms for 256 -> 256) and faster beyond
// (2.4-2.6 against 4.2 ms for 128 -> 128 on 16x16; 1.4 against 6.1 ms for 64 -> 64 on 56x56,
// where the gathered taps are 9 times x).
bool backwardWeightsByGemm(const ConvGeom& g, DType dt, Act x, Act dy) {
  if (dt != DType::BF16 || g.p.groups != 1 || x.block != g.c || dy.block != g.o) return false;
  if (g.kh * g.kw == 1) return g.c * g.o > 64 * 64;
  if (g.p.sh > 1 || g.p.sw > 1) return g.oh * g.ow <= 256;
  return g.oh * g.ow <= 64;
}

// Where the matmul beats oneDNN 2.6's AMX primitives, timed here (Intel Xeon with AMX, 2 threads;
// forward, then input gradient, the primitive's time first). Kernels of several taps, on a 7x7
// output or smaller: the small feature maps' per-image work is too little for the primitives.
// ResNet-18 with the small stem (batch 32): 512 -> 512 on 4x4, 5.4 -> 2.3 and 6.6 -> 2.4 ms;
// 256 -> 512 with stride 2, 8x8 -> 4x4, 2.1 -> 1.0 and 3.8 -> 1.1 ms. ResNet-50 (batch 8):
// 512 -> 512 with stride 2, 14x14 -> 7x7, 3.0 -> 2.0 and 4.3 -> 1.9 ms; on 7x7, 2.2 -> 2.1 and
// 2.6 -> 2.2 ms. On 8x8 outputs the primitive was the faster (256 -> 256, batch 32: 1.4 against
// 2.0 and 1.5 against 2.9 ms), more so on larger ones.
// Unpadded 1x1 ones (ResNet-50, batch 8): the forward on 7x7 outputs (1.0 -> 0.66 ms for 512 ->
// 2048, 1.25 -> 0.64 ms for 2048 -> 512) and strided (2.4 -> 1.4 ms for 1024 -> 2048, 14x14 ->
// 7x7; 2.2 -> 1.9 ms for 512 -> 1024, 28x28 -> 14x14), while on 14x14 outputs and larger at
// stride 1 the two were even or the primitive the faster (0.70 against 0.91 ms for 128 -> 512 on
// 28x28); the input gradient everywhere, from 1.6 -> 1.5 ms (256 -> 128 on 56x56) to 1.2 -> 0.8
// ms (512 -> 2048 on 7x7) at stride 1, and at stride 2, where the primitive is slowest, 5.1 ->
// 1.4 ms (256 -> 512, 56x56 -> 28x28) and 4.8 -> 2.8 ms (1024 -> 2048, 14x14 -> 7x7).
bool forwardByGemm(const ConvGeom& g, DType dt, Act x) {
  const auto& p = g.p;
  if (dt != DType::BF16 || p.groups != 1 || x.block != g.c) return false;
  if (g.kh * g.kw == 1 && !unpaddedOneTap(g)) return false;
  return g.oh * g.ow <= 49 || (unpaddedOneTap(g) && (p.sh > 1 || p.sw > 1));
}

bool backwardDataByGemm(const ConvGeom& g, DType dt, Act dy) {
  const auto& p = g.p;
  if (dt != DType::BF16 || p.groups != 1 || dy.block != g.o) return false;
  return unpaddedOneTap(g) || (g.kh * g.kw > 1 && g.oh * g.ow <= 49);
}

#ifdef NODEGRAD_HAVE_ONEDNN
namespace {

bool isPointwise(const ConvGeom& g) { return unpaddedOneTap(g) && g.p.sh == 1 && g.p.sw == 1; }

// cols [n * oh * ow, kh * kw * c] from channels-last x: each tap is a run of c contiguous elements
// copied whole, or zeros where the tap falls in the padding.
void im2col(const ConvGeom& g, size_t es, const char* x, char* cols) {
  const auto& p = g.p;
  const size_t run = size_t(g.c) * es, row = size_t(g.kh * g.kw) * run;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; n++) {
    for (int64_t oh = 0; oh < g.oh; oh++) {
      char* out = cols + size_t((n * g.oh + oh) * g.ow) * row;
      for (int64_t ow = 0; ow < g.ow; ow++, out += row) {
        for (int64_t i = 0; i < g.kh; i++) {
          const int64_t ih = oh * p.sh - p.ph + i * p.dh;
          for (int64_t j = 0; j < g.kw; j++) {
            const int64_t iw = ow * p.sw - p.pw + j * p.dw;
            char* tap = out + size_t(i * g.kw + j) * run;
            if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) std::memset(tap, 0, run);
            else std::memcpy(tap, x + size_t((n * g.h + ih) * g.w + iw) * run, run);
          }
        }
      }
    }
  }
}

// The matmul operand [n * oh * ow, kh * kw * c] of x: x itself for a pointwise convolution, else
// its im2col, held by `hold`.
const void* colsOf(const ConvGeom& g, size_t es, Act x, std::unique_ptr<onednn::PoolBuffer>& hold) {
  if (isPointwise(g)) return x.data;
  hold = std::make_unique<onednn::PoolBuffer>(size_t(g.n * g.oh * g.ow * g.kh * g.kw * g.c) * es);
  im2col(g, es, static_cast<const char*>(x.data), static_cast<char*>(hold->data()));
  return hold->data();
}

// dx rows (n, ih, iw) of c elements from the matmul's rows (n, oh, ow): a copy where ih = oh * sh
// and iw = ow * sw, zeros elsewhere (rows past the last output's reach included).
void scatterStrided(const ConvGeom& g, size_t es, const char* rows, char* dx) {
  const auto& p = g.p;
  const size_t run = size_t(g.c) * es;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; n++) {
    for (int64_t ih = 0; ih < g.h; ih++) {
      char* out = dx + size_t((n * g.h + ih) * g.w) * run;
      const int64_t oh = ih / p.sh;
      if (ih % p.sh != 0 || oh >= g.oh) {
        std::memset(out, 0, size_t(g.w) * run);
        continue;
      }
      const char* in = rows + size_t((n * g.oh + oh) * g.ow) * run;
      for (int64_t iw = 0; iw < g.w; iw++, out += run) {
        const int64_t ow = iw / p.sw;
        if (iw % p.sw == 0 && ow < g.ow) std::memcpy(out, in + size_t(ow) * run, run);
        else std::memset(out, 0, run);
      }
    }
  }
}

// dx from the matmul's float32 rows (n, oh, ow) of taps (kh, kw, c): each input position sums the
// taps over it in a float32 image (zero where none reaches), rounded once into dx. One image a task.
NG_SIMD_CLONES void col2im(const ConvGeom& g, DType dt, const float* rows, void* dx) {
  const auto& p = g.p;
  const int64_t image = g.h * g.w * g.c, row = g.kh * g.kw * g.c;
#pragma omp parallel
  {
    std::vector<float> acc(static_cast<size_t>(image));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.n; n++) {
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t oh = 0; oh < g.oh; oh++) {
        for (int64_t ow = 0; ow < g.ow; ow++) {
          const float* taps = rows + ((n * g.oh + oh) * g.ow + ow) * row;
          for (int64_t i = 0; i < g.kh; i++) {
            const int64_t ih = oh * p.sh - p.ph + i * p.dh;
            if (ih < 0 || ih >= g.h) continue;
            for (int64_t j = 0; j < g.kw; j++) {
              const int64_t iw = ow * p.sw - p.pw + j * p.dw;
              if (iw < 0 || iw >= g.w) continue;
              float* out = acc.data() + (ih * g.w + iw) * g.c;
              const float* in = taps + (i * g.kw + j) * g.c;
              for (int64_t c = 0; c < g.c; c++) out[c] += in[c];
            }
          }
        }
      }
      halfFromFloat(dt, acc.data(), static_cast<char*>(dx) + size_t(n * image) * elementSize(dt), size_t(image));
    }
  }
}

}  // namespace

void conv2dBackwardWeightsGemm(const ConvGeom& g, DType dt, Act x, Act dy, void* dw, DType dwType) {
  const int64_t rows = g.n * g.oh * g.ow, taps = g.kh * g.kw * g.c;
  std::unique_ptr<onednn::PoolBuffer> cols, ohwi;
  const void* b = colsOf(g, elementSize(dt), x, cols);
  // dy held channels last is [rows, o] row-major: the transposed A of dW = dy^T · cols.
  if (g.kh * g.kw == 1) return batchMatmul({1, g.o, rows, taps, true, false}, dt, dwType, dy.data, b, dw);
  // The product is OHWI; oneDNN's reorder makes it OIHW.
  using Tag = dnnl::memory::format_tag;
  const dnnl::memory::dims dims{g.o, g.c, g.kh, g.kw};
  const auto type = onednn::dataType(dwType);
  std::string key = std::string("ohwi>oihw,") + dtypeName(dwType);
  for (int64_t v : dims) key += ',' + std::to_string(v);
  auto r = onednn::cached<onednn::Reorder>(key, [&] {
    return onednn::Reorder::toPlain(dnnl::memory::desc(dims, type, Tag::acdb), dnnl::memory::desc(dims, type, Tag::oihw));
  });
  dnnl::memory m = onednn::output(*r, dw, ohwi);
  batchMatmul({1, g.o, rows, taps, true, false}, dt, dwType, dy.data, b, m.get_data_handle());
  onednn::finish(*r, m, dw);
}

void conv2dForwardGemm(const ConvGeom& g, DType dt, Act x, const void* wOhwi, const AllocAct& y) {
  std::unique_ptr<onednn::PoolBuffer> cols;
  const void* a = colsOf(g, elementSize(dt), x, cols);
  batchMatmul({1, g.n * g.oh * g.ow, g.kh * g.kw * g.c, g.o, false, true}, dt, a, wOhwi, y(int(g.o)));
}

void conv2dBackwardDataGemm(const ConvGeom& g, DType dt, Act dy, const void* wOhwi, const AllocAct& dx) {
  const size_t es = elementSize(dt);
  void* out = dx(int(g.c));
  const int64_t rows = g.n * g.oh * g.ow, taps = g.kh * g.kw * g.c;
  const auto& p = g.p;
  if (unpaddedOneTap(g)) {
    // One tap per input position: the product rounded once is dx there.
    const bool strided = p.sh > 1 || p.sw > 1;
    std::unique_ptr<onednn::PoolBuffer> dense;
    if (strided) dense = std::make_unique<onednn::PoolBuffer>(size_t(rows * g.c) * es);
    void* c = strided ? dense->data() : out;
    batchMatmul({1, rows, g.o, g.c, false, false}, dt, dy.data, wOhwi, c);
    if (strided) scatterStrided(g, es, static_cast<const char*>(c), static_cast<char*>(out));
    return;
  }
  onednn::PoolBuffer products(size_t(rows * taps) * sizeof(float));
  batchMatmul({1, rows, g.o, taps, false, false}, dt, DType::F32, dy.data, wOhwi, products.data());
  col2im(g, dt, static_cast<const float*>(products.data()), out);
}
#else
void conv2dBackwardWeightsGemm(const ConvGeom&, DType, Act, Act, void*, DType) { throwWithoutOnednn(); }
void conv2dForwardGemm(const ConvGeom&, DType, Act, const void*, const AllocAct&) { throwWithoutOnednn(); }
void conv2dBackwardDataGemm(const ConvGeom&, DType, Act, const void*, const AllocAct&) { throwWithoutOnednn(); }
#endif

}  // namespace nodegrad::cpu
