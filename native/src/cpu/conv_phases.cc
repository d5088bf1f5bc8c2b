#include "cpu/conv_phases.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/half.h"
#include "cpu/onednn.h"

namespace nodegrad::cpu {
namespace {

// One phase along one dimension (input positions s·a + phase): the taps it receives, k ≡ phase +
// pad (mod s), from `first` up in steps of s; the positions it has; and the padding of dy that
// makes the stride-1 correlation over those taps produce exactly them.
struct PhaseAxis {
  int64_t first, taps, out, padL, padR;
};

PhaseAxis phaseAxis(int64_t phase, int64_t in, int64_t dyLen, int64_t k, int64_t s, int64_t pad) {
  PhaseAxis a;
  a.first = (phase + pad) % s;
  const int64_t base = (phase + pad) / s;  // tap `first` reads dy at position + base
  a.taps = a.first < k ? (k - a.first + s - 1) / s : 0;
  a.out = phase < in ? (in - phase + s - 1) / s : 0;
  a.padL = a.taps - 1 - base;
  a.padR = a.out - dyLen - a.padL + a.taps - 1;
  return a;
}

// A phase that computes anything: some taps over some positions.
bool active(const PhaseAxis& h, const PhaseAxis& w) { return h.taps > 0 && h.out > 0 && w.taps > 0 && w.out > 0; }

}  // namespace

// Timed here (Intel Xeon with AMX, 2 threads, bfloat16; oneDNN's backward-data primitive, then the
// phases with their weight gather, reorders and interleave), 3x3 with stride 2 and padding 1:
// ResNet-50 at batch 8, 128 -> 128 on 56x56 -> 28x28, 2.5 -> 1.6 ms; 256 -> 256 on 28x28 -> 14x14,
// 2.6 -> 1.7 ms. ResNet-18 with the small stem at batch 32: 64 -> 128 on 32x32, 1.6 -> 1.2 ms;
// 128 -> 256 on 16x16, 1.6 -> 1.2 ms. On 7x7 outputs and smaller the matmul path (conv_gemm.cc) takes
// the input gradient, and is the faster there: 512 -> 512 on 14x14, 1.7 against 3.4 ms; 256 -> 512 on
// 8x8 at batch 32, 1.0 against 2.1 ms (the weight's gather and reorders weigh more beside the small
// maps). In float32 the phases ran no faster than the primitive (6.4 against 6.5 ms, 128 -> 128).
bool backwardDataByPhases(const ConvGeom& g, DType dt, Act dy) {
  const auto& p = g.p;
  if (dt != DType::BF16 || p.groups != 1 || p.dh != 1 || p.dw != 1 || dy.block != g.o) return false;
  if ((p.sh == 1 && p.sw == 1) || g.kh * g.kw == 1) return false;
  for (int64_t ph = 0; ph < p.sh; ph++) {
    for (int64_t pw = 0; pw < p.sw; pw++) {
      const PhaseAxis h = phaseAxis(ph, g.h, g.oh, g.kh, p.sh, p.ph), w = phaseAxis(pw, g.w, g.ow, g.kw, p.sw, p.pw);
      if (active(h, w) && (h.padL < 0 || h.padR < 0 || w.padL < 0 || w.padR < 0)) return false;
    }
  }
  return true;
}

bool backwardWeightsBySpaceToDepth(const ConvGeom& g, DType dt, Act x, Act dy) {
  const auto& p = g.p;
  if (dt != DType::BF16 || p.groups != 1 || p.dh != 1 || p.dw != 1 || dy.block != g.o) return false;
  return (p.sh > 1 || p.sw > 1) && g.c <= 4 && (x.block == 0 || x.block == g.c);
}

#ifdef NODEGRAD_HAVE_ONEDNN
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

// The phase's weight, [o, c, t, u] in memory (oneDNN's iohw for the correlation, whose output
// channels are c): W[o, c, kh, kw] at the phase's taps, flipped, so that tap t of the correlation
// reads dy where the input gradient's tap kh = first + s·(taps − 1 − t) does. Read and written in
// W's order, each (o, c) through a list of its taps: gathered by c first and tap by tap, it took
// longer than the phase's convolution (512 -> 512 channels, 3x3).
void gatherTaps(const ConvGeom& g, const PhaseAxis& h, const PhaseAxis& w, const uint16_t* W, uint16_t* out) {
  const auto& p = g.p;
  std::vector<int64_t> from;
  for (int64_t t = 0; t < h.taps; t++) {
    for (int64_t u = 0; u < w.taps; u++) {
      from.push_back((h.first + p.sh * (h.taps - 1 - t)) * g.kw + w.first + p.sw * (w.taps - 1 - u));
    }
  }
  const int64_t taps = int64_t(from.size()), k = g.kh * g.kw, pairs = g.o * g.c;
  const int64_t* f = from.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < pairs; i++) {
    for (int64_t j = 0; j < taps; j++) out[i * taps + j] = W[i * k + f[j]];
  }
}

}  // namespace

void conv2dBackwardDataPhases(const ConvGeom& g, DType dt, Act dy, const void* wOihw, const AllocAct& dx) {
  const auto& p = g.p;
  const auto type = onednn::dataType(dt);
  const size_t es = elementSize(dt), run = size_t(g.c) * es;
  char* out = static_cast<char*>(dx(int(g.c)));
  std::string geom;
  for (int64_t v : {g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, p.sh, p.sw, p.ph, p.pw}) geom += ',' + std::to_string(v);
  onednn::applyThreads();
  const memory::desc dyDesc({g.n, g.o, g.oh, g.ow}, type, Tag::nhwc);
  memory dyMem(dyDesc, onednn::engine(), const_cast<void*>(dy.data));  // only read
  // Each phase's positions, dense [n, a, b, c]; null where the phase receives no tap.
  std::vector<std::unique_ptr<onednn::PoolBuffer>> phases(size_t(p.sh * p.sw));
  for (int64_t ph = 0; ph < p.sh; ph++) {
    for (int64_t pw = 0; pw < p.sw; pw++) {
      const PhaseAxis h = phaseAxis(ph, g.h, g.oh, g.kh, p.sh, p.ph), w = phaseAxis(pw, g.w, g.ow, g.kw, p.sw, p.pw);
      if (!active(h, w)) continue;
      const memory::dims wd{g.c, g.o, h.taps, w.taps}, yd{g.n, g.c, h.out, w.out};
      struct Entry {
        onednn::Step conv;
        onednn::Reorder weight;
      };
      const std::string key = "bwd_data_phase," + std::to_string(ph) + ',' + std::to_string(pw) + geom;
      auto e = onednn::cached<Entry>(key, [&] {
        dnnl::convolution_forward::desc cd(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, dyDesc,
                                           memory::desc(wd, type, Tag::any), memory::desc(yd, type, Tag::nhwc),
                                           {1, 1}, {h.padL, w.padL}, {h.padR, w.padR});
        dnnl::convolution_forward::primitive_desc pd(cd, onednn::userScratchpad(), onednn::engine());
        return Entry{{dnnl::convolution_forward(pd), pd.scratchpad_desc()},
                     onednn::Reorder::toChosen(memory::desc(wd, type, Tag::iohw), pd.weights_desc())};
      });
      onednn::PoolBuffer taps(size_t(g.c * g.o * h.taps * w.taps) * es);
      gatherTaps(g, h, w, static_cast<const uint16_t*>(wOihw), static_cast<uint16_t*>(taps.data()));
      std::unique_ptr<onednn::PoolBuffer> hold;
      memory mw = onednn::input(e->weight, taps.data(), hold);
      auto& dst = phases[size_t(ph * p.sw + pw)];
      dst = std::make_unique<onednn::PoolBuffer>(size_t(g.n * h.out * w.out) * run);
      e->conv.run({{DNNL_ARG_SRC, dyMem}, {DNNL_ARG_WEIGHTS, mw},
                   {DNNL_ARG_DST, memory(memory::desc(yd, type, Tag::nhwc), onednn::engine(), dst->data())}});
    }
  }
  // Interleave: input position (ih, iw) is position (ih / sh, iw / sw) of phase (ih % sh, iw % sw).
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; n++) {
    for (int64_t ih = 0; ih < g.h; ih++) {
      const int64_t ph = ih % p.sh, a = ih / p.sh;
      const int64_t rows = phaseAxis(ph, g.h, g.oh, g.kh, p.sh, p.ph).out;
      char* o = out + size_t((n * g.h + ih) * g.w) * run;
      for (int64_t iw = 0; iw < g.w; iw++, o += run) {
        const int64_t pw = iw % p.sw, b = iw / p.sw;
        const auto& src = phases[size_t(ph * p.sw + pw)];
        if (!src) {
          std::memset(o, 0, run);
          continue;
        }
        const int64_t cols = phaseAxis(pw, g.w, g.ow, g.kw, p.sw, p.pw).out;
        std::memcpy(o, static_cast<const char*>(src->data()) + size_t((n * rows + a) * cols + b) * run, run);
      }
    }
  }
}
void conv2dBackwardWeightsSpaceToDepth(const ConvGeom& g, DType dt, Act x, Act dy, void* dw, DType dwType) {
  const auto& p = g.p;
  const auto type = onednn::dataType(dt);
  // The blocks: kb taps of the stride-1 convolution whose output is dy's oh rows, over hb rows of
  // blocks (the padded input, zero past its end).
  const int64_t kbh = (g.kh + p.sh - 1) / p.sh, kbw = (g.kw + p.sw - 1) / p.sw;
  const int64_t hb = g.oh + kbh - 1, wb = g.ow + kbw - 1, cb = p.sh * p.sw * g.c;
  onednn::PoolBuffer blocks(size_t(g.n * hb * wb * cb) * sizeof(uint16_t));
  const auto* xs = static_cast<const uint16_t*>(x.data);
  auto* xb = static_cast<uint16_t*>(blocks.data());
  // A plain x reads along its rows, a channels-last one every c-th element; each (r, s, c) fills one
  // strided column of the blocks (element by element with its bounds tested, the gather took as
  // long as the primitive).
  const bool plain = x.block == 0;
  const int64_t step = plain ? 1 : g.c;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; n++) {
    for (int64_t bh = 0; bh < hb; bh++) {
      uint16_t* row = xb + (n * hb + bh) * wb * cb;
      std::fill(row, row + wb * cb, uint16_t(0));
      for (int64_t r = 0; r < p.sh; r++) {
        const int64_t ih = bh * p.sh + r - p.ph;
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t s = 0; s < p.sw; s++) {
          // The blocks whose column iw = bw * sw + s - pw lies in x.
          const int64_t bw0 = std::max<int64_t>(0, (p.pw - s + p.sw - 1) / p.sw);
          const int64_t last = g.w - 1 + p.pw - s;  // below 0: no block (C++ division truncates)
          const int64_t bw1 = last < 0 ? 0 : std::min<int64_t>(wb, last / p.sw + 1);
          for (int64_t c = 0; c < g.c; c++) {
            const uint16_t* src = plain ? xs + ((n * g.c + c) * g.h + ih) * g.w : xs + (n * g.h + ih) * g.w * g.c + c;
            uint16_t* dst = row + (r * p.sw + s) * g.c + c;
            for (int64_t bw = bw0; bw < bw1; bw++) dst[bw * cb] = src[(bw * p.sw + s - p.pw) * step];
          }
        }
      }
    }
  }
  const memory::desc xd({g.n, cb, hb, wb}, type, Tag::nhwc), yd({g.n, g.o, g.oh, g.ow}, type, Tag::nhwc);
  const memory::dims wd{g.o, cb, kbh, kbw};
  struct Entry {
    onednn::Step conv;
    onednn::Reorder toPlain;
  };
  std::string key = "bwd_weights_s2d";
  for (int64_t v : {g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, p.sh, p.sw, p.ph, p.pw}) key += ',' + std::to_string(v);
  auto e = onednn::cached<Entry>(key, [&] {
    const memory::desc wAny(wd, type, Tag::any);
    dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, xd, wAny, yd,
                                       {1, 1}, {0, 0}, {0, 0});
    dnnl::convolution_forward::primitive_desc fpd(fd, onednn::userScratchpad(), onednn::engine());
    dnnl::convolution_backward_weights::desc bd(dnnl::algorithm::convolution_direct, xd, wAny, yd, {1, 1}, {0, 0}, {0, 0});
    dnnl::convolution_backward_weights::primitive_desc pd(bd, onednn::userScratchpad(), onednn::engine(), fpd);
    return Entry{{dnnl::convolution_backward_weights(pd), pd.scratchpad_desc()},
                 onednn::Reorder::toPlain(pd.diff_weights_desc(), memory::desc(wd, type, Tag::oihw))};
  });
  onednn::applyThreads();
  onednn::PoolBuffer grad(size_t(g.o * cb * kbh * kbw) * sizeof(uint16_t));
  std::unique_ptr<onednn::PoolBuffer> hold;
  memory mw = onednn::output(e->toPlain, grad.data(), hold);
  e->conv.run({{DNNL_ARG_SRC, memory(xd, onednn::engine(), xb)},
               {DNNL_ARG_DIFF_DST, memory(yd, onednn::engine(), const_cast<void*>(dy.data))},  // only read
               {DNNL_ARG_DIFF_WEIGHTS, mw}});
  onednn::finish(e->toPlain, mw, grad.data());
  // dW[o, c, kh, kw] from the blocks' gradient, widened (exactly) where dw is float32.
  const auto* gb = static_cast<const uint16_t*>(grad.data());
  for (int64_t o = 0; o < g.o; o++) {
    for (int64_t c = 0; c < g.c; c++) {
      for (int64_t kh = 0; kh < g.kh; kh++) {
        for (int64_t kw = 0; kw < g.kw; kw++) {
          const int64_t ch = ((kh % p.sh) * p.sw + kw % p.sw) * g.c + c;
          const uint16_t v = gb[((o * cb + ch) * kbh + kh / p.sh) * kbw + kw / p.sw];
          const int64_t at = ((o * g.c + c) * g.kh + kh) * g.kw + kw;
          if (dwType == DType::F32) static_cast<float*>(dw)[at] = bf16ToFloat(v);
          else static_cast<uint16_t*>(dw)[at] = v;
        }
      }
    }
  }
}
#else
void conv2dBackwardDataPhases(const ConvGeom&, DType, Act, const void*, const AllocAct&) { throwWithoutOnednn(); }
void conv2dBackwardWeightsSpaceToDepth(const ConvGeom&, DType, Act, Act, void*, DType) { throwWithoutOnednn(); }
#endif

}  // namespace nodegrad::cpu
