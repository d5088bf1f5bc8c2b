#include "cpu/conv.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/half.h"
#include "cpu/conv_gemm.h"
#include "cpu/conv_phases.h"
#include "cpu/conv_widened.h"
#include "cpu/layout.h"
#include "cpu/onednn.h"

namespace nodegrad::cpu {
#ifdef NODEGRAD_HAVE_ONEDNN
namespace {

// Convolution sums over an empty set when any operand is empty: the result is zeros, and oneDNN
// (which rejects zero-sized spatial dims) is not asked.
bool empty(const ConvGeom& g) {
  return numel(g.xShape()) == 0 || numel(g.wShape()) == 0 || numel(g.yShape()) == 0;
}

using dnnl::memory;
using Tag = memory::format_tag;

// The plain descriptors at the kernel boundary, the `any` ones oneDNN chooses from, and the
// geometry in oneDNN's terms (its dilation counts the gaps: PyTorch's dilation − 1).
struct Descs {
  memory::desc x, w, y, xAny, wAny, yAny;
  memory::dims strides, dilates, padL, padR;
};

Descs descs(const ConvGeom& g, DType dt) {
  const auto type = onednn::dataType(dt);
  Descs d;
  const auto& p = g.p;
  memory::dims xd{g.n, g.c, g.h, g.w}, yd{g.n, g.o, g.oh, g.ow};
  // Grouped weights are [G, O/G, I, kh, kw]: the same bytes as OIHW, split along O.
  memory::dims wd = p.groups == 1 ? memory::dims{g.o, g.c, g.kh, g.kw}
                                  : memory::dims{p.groups, g.o / p.groups, g.c / p.groups, g.kh, g.kw};
  d.x = memory::desc(xd, type, Tag::nchw);
  d.y = memory::desc(yd, type, Tag::nchw);
  d.w = memory::desc(wd, type, p.groups == 1 ? Tag::oihw : Tag::goihw);
  d.xAny = memory::desc(xd, type, Tag::any);
  d.yAny = memory::desc(yd, type, Tag::any);
  d.wAny = memory::desc(wd, type, Tag::any);
  d.strides = {p.sh, p.sw};
  d.dilates = {p.dh - 1, p.dw - 1};
  d.padL = {p.ph, p.pw};
  // PyTorch pads symmetrically and floors; oneDNN accepts the same right padding because
  // (H + 2·pad − span) / stride + 1 floors identically when the output is non-empty.
  d.padR = {p.ph, p.pw};
  return d;
}

// convolution_auto lets oneDNN choose Winograd F(4x4, 3x3) where it is faster (3x3 stride-1
// convolutions: a ResNet-18 training step measured 908 -> 579 ms) and direct convolution
// elsewhere. Winograd rounds differently; its float32 error on the ResNet goldens (3.3e-6 of the
// largest value) stays below PyTorch's own float32 error on the same gradients (6.4e-6). bfloat16
// has no Winograd kernels: it runs direct (AMX where the CPU has it).
constexpr auto kAlgorithm = dnnl::algorithm::convolution_auto;

dnnl::convolution_forward::primitive_desc forwardPd(const Descs& d, DType dt) {
  dnnl::convolution_forward::desc cd(dnnl::prop_kind::forward_training, kAlgorithm, d.xAny,
                                     d.wAny, d.yAny, d.strides, d.dilates, d.padL, d.padR);
  return onednn::describe(dt, "convolution", [&] {
    return dnnl::convolution_forward::primitive_desc(cd, onednn::userScratchpad(), onednn::engine());
  });
}

std::string key(const char* dir, const ConvGeom& g, DType dt) {
  std::string k = std::string(dir) + "," + dtypeName(dt);
  for (int64_t v : {g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.p.sh, g.p.sw, g.p.ph, g.p.pw, g.p.dh, g.p.dw, g.p.groups}) {
    k += ',' + std::to_string(v);
  }
  return k;
}

// The block of `chosen` when it is a layout buffers can carry (nChw16c, nChw8c, nchw, and nhwc as
// block C: what oneDNN's brgemm kernels pick, AMX bf16 ones and float32 inference), else -1.
int carriedBlock(const memory::desc& chosen, const memory::dims& dims, DType dt) {
  for (int b : {16, 8, 0}) {
    if (chosen == layoutDesc(dims, b, dt)) return b;
  }
  return chosen == memory::desc(dims, onednn::dataType(dt), Tag::acdb) ? int(dims[1]) : -1;
}

// An activation input in the primitive's layout: itself when it already is (a conv output kept
// blocked), else a pool copy made by a reorder from its layout, created once per layout pair.
memory actInput(const std::string& key, const memory::desc& chosen, const memory::dims& dims, DType dt, Act a,
                std::unique_ptr<onednn::PoolBuffer>& hold) {
  auto r = onednn::cached<onednn::Reorder>(key + ",from" + std::to_string(a.block),
                                           [&] { return onednn::Reorder::toChosen(layoutDesc(dims, a.block, dt), chosen); });
  return onednn::input(*r, a.data, hold);
}

// An activation output: written straight into the result when the primitive's layout is one the
// buffers carry, else into a pool buffer that finish() reorders into a plain result.
struct ActOutput {
  memory mem;
  void* user = nullptr;
  std::shared_ptr<onednn::Reorder> toPlain;
  std::unique_ptr<onednn::PoolBuffer> hold;
};

ActOutput actOutput(const std::string& key, const memory::desc& chosen, const memory::dims& dims, DType dt,
                    const AllocAct& alloc) {
  ActOutput o;
  int block = carriedBlock(chosen, dims, dt);
  o.user = alloc(block < 0 ? 0 : block);
  if (block >= 0) {
    o.mem = memory(chosen, onednn::engine(), o.user);
    return o;
  }
  o.toPlain =
      onednn::cached<onednn::Reorder>(key + ",toPlain", [&] { return onednn::Reorder::toPlain(chosen, layoutDesc(dims, 0, dt)); });
  o.mem = onednn::output(*o.toPlain, o.user, o.hold);
  return o;
}

void finish(const ActOutput& o) {
  if (o.toPlain) onednn::finish(*o.toPlain, o.mem, o.user);
}

// The reordered copies of one weight buffer, valid for one generation of its contents. Forward
// and backward-data may choose different blockings, hence a short list.
struct WeightCopies {
  uint64_t generation;
  std::vector<std::pair<memory::desc, std::unique_ptr<onednn::PoolBuffer>>> copies;
};

// The weight in the inference primitive's layout: reordered once per generation and kept on its
// buffer, so repeated inference reuses it until any write changes the weight.
memory weightInput(const onednn::Reorder& r, const Weight& w, std::unique_ptr<onednn::PoolBuffer>& hold) {
  if (!r.needed || !w.cache) return onednn::input(r, w.data, hold);
  auto c = std::static_pointer_cast<WeightCopies>(*w.cache);
  if (!c || c->generation != w.generation) {
    c = std::make_shared<WeightCopies>();
    c->generation = w.generation;
    *w.cache = c;
  }
  for (auto& [desc, buf] : c->copies) {
    if (desc == r.chosen) return memory(desc, onednn::engine(), buf->data());
  }
  auto buf = std::make_unique<onednn::PoolBuffer>(r.chosen.get_size());
  memory m(r.chosen, onednn::engine(), buf->data());
  memory u(r.plain, onednn::engine(), const_cast<void*>(w.data));  // only read
  r.step.run({{DNNL_ARG_FROM, u}, {DNNL_ARG_TO, m}});
  c->copies.emplace_back(r.chosen, std::move(buf));
  return m;
}

// The weight as OHWI ([o, (kh, kw, c)] row-major) for the matmul paths (cpu/conv_gemm.h): OIHW
// itself for a 1x1 kernel, else a copy reordered by oneDNN and kept on the weight's buffer for its
// generation, so that a training step's forward and input gradient reorder it once.
const void* ohwiWeight(const ConvGeom& g, DType dt, const Weight& w, std::unique_ptr<onednn::PoolBuffer>& hold) {
  if (g.kh * g.kw == 1) return w.data;
  const memory::desc ohwi(memory::dims{g.o, g.c, g.kh, g.kw}, onednn::dataType(dt), Tag::acdb);
  auto r = onednn::cached<onednn::Reorder>(key("ohwi", g, dt), [&] { return onednn::Reorder::toChosen(descs(g, dt).w, ohwi); });
  return weightInput(*r, w, hold).get_data_handle();
}

// One direction: the convolution primitive, the layouts it chose for its two inputs and its
// output, and the reorder of its weight operand (into the chosen layout, or out of it for dw).
struct ConvEntry {
  onednn::Step conv;
  memory::desc in0, in1, out;
  onednn::Reorder weight;
};

ConvEntry makeForward(const ConvGeom& g, DType dt) {
  Descs d = descs(g, dt);
  auto pd = forwardPd(d, dt);
  return {onednn::Step{dnnl::convolution_forward(pd), pd.scratchpad_desc()}, pd.src_desc(), pd.weights_desc(),
          pd.dst_desc(), onednn::Reorder::toChosen(d.w, pd.weights_desc())};
}

ConvEntry makeBackwardData(const ConvGeom& g, DType dt) {
  Descs d = descs(g, dt);
  dnnl::convolution_backward_data::desc cd(kAlgorithm, d.xAny, d.wAny, d.yAny, d.strides,
                                           d.dilates, d.padL, d.padR);
  dnnl::convolution_backward_data::primitive_desc pd(cd, onednn::userScratchpad(), onednn::engine(), forwardPd(d, dt));
  return {onednn::Step{dnnl::convolution_backward_data(pd), pd.scratchpad_desc()}, pd.diff_dst_desc(),
          pd.weights_desc(), pd.diff_src_desc(), onednn::Reorder::toChosen(d.w, pd.weights_desc())};
}

ConvEntry makeBackwardWeights(const ConvGeom& g, DType dt) {
  Descs d = descs(g, dt);
  dnnl::convolution_backward_weights::desc cd(kAlgorithm, d.xAny, d.wAny, d.yAny, d.strides,
                                              d.dilates, d.padL, d.padR);
  dnnl::convolution_backward_weights::primitive_desc pd(cd, onednn::userScratchpad(), onednn::engine(),
                                                        forwardPd(d, dt));
  return {onednn::Step{dnnl::convolution_backward_weights(pd), pd.scratchpad_desc(), zeroesScratch(g, dt)}, pd.src_desc(),
          pd.diff_dst_desc(), pd.diff_weights_desc(), onednn::Reorder::toPlain(pd.diff_weights_desc(), d.w)};
}

// The inference convolution with its epilogue. oneDNN applies the bias inside the convolution,
// then the post-ops in order: sum (adds what dst holds before the call: the residual, written
// there in the chosen layout first), then eltwise relu.
struct FusedEntry {
  onednn::Step conv;
  memory::desc x, y;
  onednn::Reorder w, bias;
};

FusedEntry makeFused(const ConvGeom& g, DType dt, DType biasDt, bool bias, bool residual, bool relu) {
  Descs d = descs(g, dt);
  memory::desc b({g.o}, onednn::dataType(biasDt), Tag::x);
  dnnl::post_ops ops;
  if (residual) ops.append_sum(1.f);
  if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr = onednn::userScratchpad();
  attr.set_post_ops(ops);
  using Desc = dnnl::convolution_forward::desc;
  const auto inference = dnnl::prop_kind::forward_inference;
  Desc cd = bias ? Desc(inference, kAlgorithm, d.xAny, d.wAny, b, d.yAny, d.strides, d.dilates, d.padL, d.padR)
                 : Desc(inference, kAlgorithm, d.xAny, d.wAny, d.yAny, d.strides, d.dilates, d.padL, d.padR);
  auto pd = onednn::describe(dt, "convolution", [&] { return dnnl::convolution_forward::primitive_desc(cd, attr, onednn::engine()); });
  FusedEntry e{onednn::Step{dnnl::convolution_forward(pd), pd.scratchpad_desc()}, pd.src_desc(), pd.dst_desc(),
               onednn::Reorder::toChosen(d.w, pd.weights_desc()), {}};
  if (bias) e.bias = onednn::Reorder::toChosen(b, pd.bias_desc());
  return e;
}

// A large copy split over the kernel threads: ResNet-50's residual copies (batch 8) took 14 ms
// per inference step in one thread and 8 ms in two (Intel Xeon model 207).
void copyParallel(void* dst, const void* src, size_t bytes) {
  constexpr size_t kChunk = size_t(1) << 20;
  const int64_t chunks = int64_t((bytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; c++) {
    const size_t off = size_t(c) * kChunk;
    std::memcpy(static_cast<char*>(dst) + off, static_cast<const char*>(src) + off, std::min(kChunk, bytes - off));
  }
}

// An empty input or weight leaves the epilogue alone: y = relu?(bias + residual), plain, in float
// and rounded once to dt.
std::vector<float> floats(DType d, const void* p, size_t n) {
  std::vector<float> v(n);
  if (isHalf(d)) halfToFloat(d, p, v.data(), n);
  else if (n) std::memcpy(v.data(), p, n * sizeof(float));
  return v;
}

void emptyFused(const ConvGeom& g, DType dt, Bias bias, const void* residual, bool relu, void* y) {
  const size_t n = size_t(numel(g.yShape())), plane = size_t(g.oh * g.ow);
  const std::vector<float> b = bias.data ? floats(bias.dtype, bias.data, size_t(g.o)) : std::vector<float>();
  const std::vector<float> r = residual ? floats(dt, residual, n) : std::vector<float>();
  std::vector<float> out(n);
  for (size_t i = 0; i < n; i++) {
    const float v = (b.empty() ? 0.f : b[(i / plane) % size_t(g.o)]) + (r.empty() ? 0.f : r[i]);
    out[i] = relu && v < 0.f ? 0.f : v;
  }
  if (isHalf(dt)) halfFromFloat(dt, out.data(), y, n);
  else if (n) std::memcpy(y, out.data(), n * sizeof(float));
}

}  // namespace
#endif

void conv2dForwardFused(const ConvGeom& g, DType dt, Act x, Weight w, Bias bias, const Act* residual, bool relu,
                        const AllocAct& y) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (empty(g)) {
      std::vector<char> plain;
      if (residual && residual->block != 0) {
        plain.resize(size_t(numel(g.yShape())) * elementSize(dt));
        blockedToPlain(g.yShape(), residual->block, dt, residual->data, plain.data());
      }
      const void* r = residual ? (plain.empty() ? residual->data : plain.data()) : nullptr;
      return emptyFused(g, dt, bias, r, relu, y(0));
    }
    std::string k = key("fwd_fused", g, dt) + (bias.data ? std::string(",b") + dtypeName(bias.dtype) : "") +
                    (residual ? ",r" : "") + (relu ? ",relu" : "");
    auto e = onednn::cached<FusedEntry>(
        k, [&] { return makeFused(g, dt, bias.dtype, bias.data != nullptr, residual != nullptr, relu); });
    onednn::applyThreads();
    std::unique_ptr<onednn::PoolBuffer> hx, hw, hb, hr;
    std::unordered_map<int, memory> args;
    args.emplace(DNNL_ARG_SRC, actInput(k + ",x", e->x, g.xShape(), dt, x, hx));
    args.emplace(DNNL_ARG_WEIGHTS, weightInput(e->w, w, hw));
    if (bias.data) args.emplace(DNNL_ARG_BIAS, onednn::input(e->bias, bias.data, hb));
    ActOutput out = actOutput(k + ",y", e->y, g.yShape(), dt, y);
    if (residual) {
      // The sum post-op reads dst: the residual goes there first, in dst's layout. (oneDNN 2.6's
      // brgconv has no binary-add post-op reading a tensor of dst's shape: asking for one gives gemm.)
      memory r = actInput(k + ",r", e->y, g.yShape(), dt, *residual, hr);
      copyParallel(out.mem.get_data_handle(), r.get_data_handle(), e->y.get_size());
    }
    args.emplace(DNNL_ARG_DST, out.mem);
    e->conv.run(args);
    finish(out);
#endif
  });
}

void conv2dForward(const ConvGeom& g, DType dt, Act x, Weight w, const AllocAct& y) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (empty(g)) {
      std::memset(y(0), 0, size_t(numel(g.yShape())) * elementSize(dt));
      return;
    }
    if (forwardByGemm(g, dt, x)) {
      std::unique_ptr<onednn::PoolBuffer> hold;
      return conv2dForwardGemm(g, dt, x, ohwiWeight(g, dt, w, hold), y);
    }
    if (forwardWidened(g, dt)) return conv2dForwardWidened(g, dt, x, w, y);
    std::string k = key("fwd", g, dt);
    auto e = onednn::cached<ConvEntry>(k, [&] { return makeForward(g, dt); });
    onednn::applyThreads();
    std::unique_ptr<onednn::PoolBuffer> hx, hw;
    memory mx = actInput(k + ",x", e->in0, g.xShape(), dt, x, hx);
    // Training reorders its weight per call: forward and backward-data choose different blockings
    // and the optimizer changes every weight each step, so a kept copy would only cost memory.
    memory mw = onednn::input(e->weight, w.data, hw);
    ActOutput out = actOutput(k + ",y", e->out, g.yShape(), dt, y);
    e->conv.run({{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, out.mem}});
    finish(out);
#endif
  });
}

void conv2dBackwardData(const ConvGeom& g, DType dt, Act dy, Weight w, const AllocAct& dx) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (empty(g)) {
      std::memset(dx(0), 0, size_t(numel(g.xShape())) * elementSize(dt));
      return;
    }
    if (backwardDataByGemm(g, dt, dy)) {
      std::unique_ptr<onednn::PoolBuffer> hold;
      return conv2dBackwardDataGemm(g, dt, dy, ohwiWeight(g, dt, w, hold), dx);
    }
    if (backwardDataByPhases(g, dt, dy)) return conv2dBackwardDataPhases(g, dt, dy, w.data, dx);
    std::string k = key("bwd_data", g, dt);
    auto e = onednn::cached<ConvEntry>(k, [&] { return makeBackwardData(g, dt); });
    onednn::applyThreads();
    std::unique_ptr<onednn::PoolBuffer> hy, hw;
    memory my = actInput(k + ",dy", e->in0, g.yShape(), dt, dy, hy);
    memory mw = onednn::input(e->weight, w.data, hw);
    ActOutput out = actOutput(k + ",dx", e->out, g.xShape(), dt, dx);
    e->conv.run({{DNNL_ARG_DIFF_DST, my}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, out.mem}});
    finish(out);
#endif
  });
}

void conv2dBackwardWeights(const ConvGeom& g, DType dt, Act x, Act dy, void* dw, DType dwType) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (empty(g)) {
      std::memset(dw, 0, size_t(numel(g.wShape())) * elementSize(dwType));
      return;
    }
    if (backwardWeightsByGemm(g, dt, x, dy)) return conv2dBackwardWeightsGemm(g, dt, x, dy, dw, dwType);
    if (backwardWeightsBySpaceToDepth(g, dt, x, dy)) return conv2dBackwardWeightsSpaceToDepth(g, dt, x, dy, dw, dwType);
    if (backwardWeightsWidened(g, dt)) return conv2dBackwardWeightsWidened(g, dt, x, dy, dw, dwType);
    std::string k = key("bwd_weights", g, dt);
    auto e = onednn::cached<ConvEntry>(k, [&] { return makeBackwardWeights(g, dt); });
    onednn::applyThreads();
    std::unique_ptr<onednn::PoolBuffer> hx, hy, hw, inDt;
    // oneDNN 2.6 has no bfloat16 backward-weights primitive with a float32 diff_weights: the
    // gradient is made in dt and widened (exactly) into dw.
    const size_t n = size_t(numel(g.wShape()));
    if (dwType != dt) inDt = std::make_unique<onednn::PoolBuffer>(n * elementSize(dt));
    void* out = inDt ? inDt->data() : dw;
    memory mx = actInput(k + ",x", e->in0, g.xShape(), dt, x, hx);
    memory my = actInput(k + ",dy", e->in1, g.yShape(), dt, dy, hy);
    memory mw = onednn::output(e->weight, out, hw);
    e->conv.run({{DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_DST, my}, {DNNL_ARG_DIFF_WEIGHTS, mw}});
    onednn::finish(e->weight, mw, out);
    if (inDt) halfToFloat(dt, out, static_cast<float*>(dw), n);
#endif
  });
}

}  // namespace nodegrad::cpu
