#include "cpu/conv.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu/onednn.h"

namespace nodegrad::cpu {
namespace {

std::string fmt(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// PyTorch's output size, floor division included for a negative numerator, clamped at 0.
int64_t outSize(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  int64_t num = in + 2 * pad - dil * (k - 1) - 1;
  int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);
  return q + 1 > 0 ? q + 1 : 0;
}

}  // namespace

ConvGeom convGeom(const std::vector<int64_t>& xShape, const std::vector<int64_t>& wShape, const ConvParams& p,
                  const std::vector<int64_t>* yShape) {
  if (xShape.size() != 4 || wShape.size() != 4) {
    throw std::runtime_error("expected NCHW input and OIHW weight, got " + fmt(xShape) + " and " + fmt(wShape));
  }
  for (auto d : xShape) {
    if (d < 0) throw std::runtime_error("negative size in input shape " + fmt(xShape));
  }
  for (auto d : wShape) {
    if (d < 0) throw std::runtime_error("negative size in weight shape " + fmt(wShape));
  }
  if (p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0 || p.groups < 1) {
    throw std::runtime_error("stride and dilation must be >= 1, padding >= 0 and groups >= 1, got stride [" +
                             std::to_string(p.sh) + ", " + std::to_string(p.sw) + "], padding [" + std::to_string(p.ph) +
                             ", " + std::to_string(p.pw) + "], dilation [" + std::to_string(p.dh) + ", " +
                             std::to_string(p.dw) + "], groups " + std::to_string(p.groups));
  }
  ConvGeom g{xShape[0], xShape[1], xShape[2], xShape[3], wShape[0], wShape[2], wShape[3], 0, 0, p};
  if (wShape[1] * p.groups != g.c || g.o % p.groups != 0) {
    throw std::runtime_error("input " + fmt(xShape) + " and weight " + fmt(wShape) + " do not fit groups=" +
                             std::to_string(p.groups));
  }
  g.oh = outSize(g.h, g.kh, p.sh, p.ph, p.dh);
  g.ow = outSize(g.w, g.kw, p.sw, p.pw, p.dw);
  if (yShape && *yShape != g.yShape()) {
    throw std::runtime_error("output gradient " + fmt(*yShape) + " does not match the expected " + fmt(g.yShape()));
  }
  return g;
}

#ifdef NODEGRAD_HAVE_ONEDNN
namespace {

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// Convolution sums over an empty set when any operand is empty: the result is zeros, and oneDNN
// (which rejects zero-sized spatial dims) is not asked.
bool empty(const ConvGeom& g) {
  return numel(g.xShape()) == 0 || numel(g.wShape()) == 0 || numel(g.yShape()) == 0;
}

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

// The plain descriptors at the kernel boundary, the `any` ones oneDNN chooses from, and the
// geometry in oneDNN's terms (its dilation counts the gaps: PyTorch's dilation − 1).
struct Descs {
  memory::desc x, w, y, xAny, wAny, yAny;
  memory::dims strides, dilates, padL, padR;
};

Descs descs(const ConvGeom& g) {
  Descs d;
  const auto& p = g.p;
  memory::dims xd{g.n, g.c, g.h, g.w}, yd{g.n, g.o, g.oh, g.ow};
  // Grouped weights are [G, O/G, I, kh, kw]: the same bytes as OIHW, split along O.
  memory::dims wd = p.groups == 1 ? memory::dims{g.o, g.c, g.kh, g.kw}
                                  : memory::dims{p.groups, g.o / p.groups, g.c / p.groups, g.kh, g.kw};
  d.x = memory::desc(xd, kF32, Tag::nchw);
  d.y = memory::desc(yd, kF32, Tag::nchw);
  d.w = memory::desc(wd, kF32, p.groups == 1 ? Tag::oihw : Tag::goihw);
  d.xAny = memory::desc(xd, kF32, Tag::any);
  d.yAny = memory::desc(yd, kF32, Tag::any);
  d.wAny = memory::desc(wd, kF32, Tag::any);
  d.strides = {p.sh, p.sw};
  d.dilates = {p.dh - 1, p.dw - 1};
  d.padL = {p.ph, p.pw};
  // PyTorch pads symmetrically and floors; oneDNN accepts the same right padding because
  // (H + 2·pad − span) / stride + 1 floors identically when the output is non-empty.
  d.padR = {p.ph, p.pw};
  return d;
}

dnnl::convolution_forward::primitive_desc forwardPd(const Descs& d) {
  dnnl::convolution_forward::desc cd(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.xAny,
                                     d.wAny, d.yAny, d.strides, d.dilates, d.padL, d.padR);
  return dnnl::convolution_forward::primitive_desc(cd, onednn::userScratchpad(), onednn::engine());
}

std::string key(const char* dir, const ConvGeom& g) {
  std::string k = dir;
  for (int64_t v : {g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.p.sh, g.p.sw, g.p.ph, g.p.pw, g.p.dh, g.p.dw, g.p.groups}) {
    k += ',' + std::to_string(v);
  }
  return k;
}

// One direction: the convolution primitive and the reorders of its three operands (two inputs,
// one output), all made once per geometry.
struct ConvEntry {
  onednn::Step conv;
  onednn::Reorder in0, in1, out;
};

ConvEntry makeForward(const ConvGeom& g) {
  Descs d = descs(g);
  auto pd = forwardPd(d);
  return {onednn::Step{dnnl::convolution_forward(pd), pd.scratchpad_desc()},
          onednn::Reorder::toChosen(d.x, pd.src_desc()), onednn::Reorder::toChosen(d.w, pd.weights_desc()),
          onednn::Reorder::toPlain(pd.dst_desc(), d.y)};
}

ConvEntry makeBackwardData(const ConvGeom& g) {
  Descs d = descs(g);
  dnnl::convolution_backward_data::desc cd(dnnl::algorithm::convolution_direct, d.xAny, d.wAny, d.yAny, d.strides,
                                           d.dilates, d.padL, d.padR);
  dnnl::convolution_backward_data::primitive_desc pd(cd, onednn::userScratchpad(), onednn::engine(), forwardPd(d));
  return {onednn::Step{dnnl::convolution_backward_data(pd), pd.scratchpad_desc()},
          onednn::Reorder::toChosen(d.y, pd.diff_dst_desc()), onednn::Reorder::toChosen(d.w, pd.weights_desc()),
          onednn::Reorder::toPlain(pd.diff_src_desc(), d.x)};
}

ConvEntry makeBackwardWeights(const ConvGeom& g) {
  Descs d = descs(g);
  dnnl::convolution_backward_weights::desc cd(dnnl::algorithm::convolution_direct, d.xAny, d.wAny, d.yAny, d.strides,
                                              d.dilates, d.padL, d.padR);
  dnnl::convolution_backward_weights::primitive_desc pd(cd, onednn::userScratchpad(), onednn::engine(), forwardPd(d));
  return {onednn::Step{dnnl::convolution_backward_weights(pd), pd.scratchpad_desc()},
          onednn::Reorder::toChosen(d.x, pd.src_desc()), onednn::Reorder::toChosen(d.y, pd.diff_dst_desc()),
          onednn::Reorder::toPlain(pd.diff_weights_desc(), d.w)};
}

// Runs one direction: reorders the inputs in, executes, reorders the output out.
void run(const ConvEntry& e, int arg0, const float* in0, int arg1, const float* in1, int argOut, float* out) {
  onednn::applyThreads();
  std::unique_ptr<onednn::PoolBuffer> h0, h1, hOut;
  auto m0 = onednn::input(e.in0, in0, h0);
  auto m1 = onednn::input(e.in1, in1, h1);
  auto mOut = onednn::output(e.out, out, hOut);
  e.conv.run({{arg0, m0}, {arg1, m1}, {argOut, mOut}});
  onednn::finish(e.out, mOut, out);
}

// The inference convolution with its epilogue. oneDNN applies the bias inside the convolution,
// then the post-ops in order: sum (adds what dst holds before the call: the residual, written
// there in the chosen layout first), then eltwise relu.
struct FusedEntry {
  onednn::Step conv;
  onednn::Reorder x, w, bias, residual, y;
};

FusedEntry makeFused(const ConvGeom& g, bool bias, bool residual, bool relu) {
  Descs d = descs(g);
  memory::desc b({g.o}, kF32, Tag::x);
  dnnl::post_ops ops;
  if (residual) ops.append_sum(1.f);
  if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr = onednn::userScratchpad();
  attr.set_post_ops(ops);
  using Desc = dnnl::convolution_forward::desc;
  const auto inference = dnnl::prop_kind::forward_inference;
  const auto direct = dnnl::algorithm::convolution_direct;
  Desc cd = bias ? Desc(inference, direct, d.xAny, d.wAny, b, d.yAny, d.strides, d.dilates, d.padL, d.padR)
                 : Desc(inference, direct, d.xAny, d.wAny, d.yAny, d.strides, d.dilates, d.padL, d.padR);
  dnnl::convolution_forward::primitive_desc pd(cd, attr, onednn::engine());
  FusedEntry e{onednn::Step{dnnl::convolution_forward(pd), pd.scratchpad_desc()},
               onednn::Reorder::toChosen(d.x, pd.src_desc()),
               onednn::Reorder::toChosen(d.w, pd.weights_desc()),
               {},
               onednn::Reorder::toChosen(d.y, pd.dst_desc()),
               onednn::Reorder::toPlain(pd.dst_desc(), d.y)};
  if (bias) e.bias = onednn::Reorder::toChosen(b, pd.bias_desc());
  return e;
}

void runFused(const FusedEntry& e, const ConvGeom& g, const float* x, const float* w, const float* bias,
              const float* residual, float* y) {
  onednn::applyThreads();
  std::unique_ptr<onednn::PoolBuffer> hx, hw, hb, hy;
  std::unordered_map<int, memory> args;
  args.emplace(DNNL_ARG_SRC, onednn::input(e.x, x, hx));
  args.emplace(DNNL_ARG_WEIGHTS, onednn::input(e.w, w, hw));
  if (bias) args.emplace(DNNL_ARG_BIAS, onednn::input(e.bias, bias, hb));
  memory my = onednn::output(e.y, y, hy);
  if (residual && e.residual.needed) {
    memory r(e.residual.plain, onednn::engine(), const_cast<float*>(residual));  // only read
    e.residual.step.run({{DNNL_ARG_FROM, r}, {DNNL_ARG_TO, my}});
  } else if (residual) {
    std::memcpy(y, residual, size_t(numel(g.yShape())) * sizeof(float));
  }
  args.emplace(DNNL_ARG_DST, my);
  e.conv.run(args);
  onednn::finish(e.y, my, y);
}

// An empty input or weight leaves the epilogue alone: y = relu?(bias + residual).
void emptyFused(const ConvGeom& g, const float* bias, const float* residual, bool relu, float* y) {
  const int64_t plane = g.oh * g.ow;
  for (int64_t i = 0; i < numel(g.yShape()); i++) {
    float v = (bias ? bias[(i / plane) % g.o] : 0.f) + (residual ? residual[i] : 0.f);
    y[i] = relu && v < 0.f ? 0.f : v;
  }
}

}  // namespace
#endif

void conv2dForwardFused(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* residual,
                        bool relu, float* y) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (empty(g)) return emptyFused(g, bias, residual, relu, y);
    std::string k = key("fwd_fused", g) + (bias ? ",b" : "") + (residual ? ",r" : "") + (relu ? ",relu" : "");
    auto e = onednn::cached<FusedEntry>(k, [&] { return makeFused(g, bias != nullptr, residual != nullptr, relu); });
    runFused(*e, g, x, w, bias, residual, y);
#endif
  });
}

void conv2dForward(const ConvGeom& g, const float* x, const float* w, float* y) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (empty(g)) {
      std::memset(y, 0, size_t(numel(g.yShape())) * sizeof(float));
      return;
    }
    auto e = onednn::cached<ConvEntry>(key("fwd", g), [&] { return makeForward(g); });
    run(*e, DNNL_ARG_SRC, x, DNNL_ARG_WEIGHTS, w, DNNL_ARG_DST, y);
#endif
  });
}

void conv2dBackwardData(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (empty(g)) {
      std::memset(dx, 0, size_t(numel(g.xShape())) * sizeof(float));
      return;
    }
    auto e = onednn::cached<ConvEntry>(key("bwd_data", g), [&] { return makeBackwardData(g); });
    run(*e, DNNL_ARG_DIFF_DST, dy, DNNL_ARG_WEIGHTS, w, DNNL_ARG_DIFF_SRC, dx);
#endif
  });
}

void conv2dBackwardWeights(const ConvGeom& g, const float* x, const float* dy, float* dw) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (empty(g)) {
      std::memset(dw, 0, size_t(numel(g.wShape())) * sizeof(float));
      return;
    }
    auto e = onednn::cached<ConvEntry>(key("bwd_weights", g), [&] { return makeBackwardWeights(g); });
    run(*e, DNNL_ARG_SRC, x, DNNL_ARG_DIFF_DST, dy, DNNL_ARG_DIFF_WEIGHTS, dw);
#endif
  });
}

}  // namespace nodegrad::cpu
