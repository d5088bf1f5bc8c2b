#include "cpu/conv_widened.h"

#include <vector>

#include "core/half.h"
#include "cpu/layout.h"

namespace nodegrad::cpu {

bool forwardWidened(const ConvGeom& g, DType dt) {
  const auto& p = g.p;
  const int64_t extentH = (g.kh - 1) * p.dh + 1, extentW = (g.kw - 1) * p.dw + 1;
  return dt == DType::BF16 && g.kh * g.kw > 1 && (extentH < p.sh || extentW < p.sw);
}

bool backwardWeightsWidened(const ConvGeom& g, DType dt) {
  return dt == DType::BF16 && (g.p.dh > 1 || g.p.dw > 1);
}

namespace {

// Whether tap i of a kernel axis reads only padding: ih = o s - pad + i d for o < out, none in [0, in).
bool paddingOnly(int64_t i, int64_t in, int64_t out, int64_t s, int64_t pad, int64_t d) {
  const int64_t first = i * d - pad;
  const int64_t o = first >= 0 ? 0 : (-first + s - 1) / s;  // the first o with ih >= 0
  return o >= out || first + o * s >= in;
}

bool anyPaddingOnly(int64_t k, int64_t in, int64_t out, int64_t s, int64_t pad, int64_t d) {
  for (int64_t i = 0; i < k; i++) {
    if (paddingOnly(i, in, out, s, pad, d)) return true;
  }
  return false;
}

}  // namespace

bool zeroesScratch(const ConvGeom& g, DType dt) {
  const auto& p = g.p;
  return dt == DType::BF16 &&
         (anyPaddingOnly(g.kh, g.h, g.oh, p.sh, p.ph, p.dh) || anyPaddingOnly(g.kw, g.w, g.ow, p.sw, p.pw, p.dw));
}

namespace {

// An activation of dt in its layout as plain float32.
std::vector<float> widenedPlain(Act a, const Shape& dims, DType dt) {
  const size_t n = size_t(numel(dims));
  std::vector<uint16_t> plain;
  const void* src = a.data;
  if (a.block != 0) {
    plain.resize(n);
    blockedToPlain(dims, a.block, dt, a.data, plain.data());
    src = plain.data();
  }
  std::vector<float> out(n);
  halfToFloat(dt, src, out.data(), n);
  return out;
}

// A float32 result in the layout the primitive chose, rounded to dt into `to` (plain).
void narrowPlain(const std::vector<float>& r, int block, const Shape& dims, DType dt, void* to) {
  const size_t n = size_t(numel(dims));
  std::vector<float> plain;
  const float* src = r.data();
  if (block != 0) {
    plain.resize(n);
    blockedToPlain(dims, block, DType::F32, r.data(), plain.data());
    src = plain.data();
  }
  halfFromFloat(dt, src, to, n);
}

}  // namespace

void conv2dForwardWidened(const ConvGeom& g, DType dt, Act x, Weight w, const AllocAct& y) {
  const std::vector<float> xf = widenedPlain(x, g.xShape(), dt), wf = widenedPlain({w.data, 0}, g.wShape(), dt);
  std::vector<float> yf;
  int block = 0;
  conv2dForward(g, DType::F32, {xf.data(), 0}, {wf.data(), 0, nullptr}, [&](int b) -> void* {
    block = b;
    yf.resize(blockedNumel(g.yShape(), b));
    return yf.data();
  });
  narrowPlain(yf, block, g.yShape(), dt, y(0));
}

void conv2dBackwardWeightsWidened(const ConvGeom& g, DType dt, Act x, Act dy, void* dw, DType dwType) {
  const std::vector<float> xf = widenedPlain(x, g.xShape(), dt), dyf = widenedPlain(dy, g.yShape(), dt);
  if (dwType == DType::F32) return conv2dBackwardWeights(g, DType::F32, {xf.data(), 0}, {dyf.data(), 0}, dw, dwType);
  std::vector<float> dwf(size_t(numel(g.wShape())));
  conv2dBackwardWeights(g, DType::F32, {xf.data(), 0}, {dyf.data(), 0}, dwf.data(), DType::F32);
  narrowPlain(dwf, 0, g.wShape(), dwType, dw);
}

}  // namespace nodegrad::cpu
