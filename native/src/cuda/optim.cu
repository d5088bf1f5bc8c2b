// The fused optimizer steps on the device, over lists of parameters: the tensors of up to
// kListMax parameters go into one launch as kernel arguments (as PyTorch's multi-tensor apply
// does), one thread per element of their concatenation, so a ResNet-50's 161 parameters take 4
// launches, not 161. Each element's update is core/optim_math.h's (PyTorch's SGD and Adam/AdamW),
// so 'cuda' steps as 'cpu' does. Params and state buffers are written in place, and every buffer
// given is recorded as written, as the 'cpu' kernels do, even a momentum buffer that momentum 0
// leaves unread. GradScaler's unscale goes over its list of gradients the same way.
#include <vector>

#include "core/half.h"
#include "core/optim_math.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace nodegrad::cuda {
namespace {

using Tensors = std::vector<TensorRef>;

// Parameters per launch: with Adam's five pointers each (param, grad, m, v, max v) the chunk is
// ~2.3 KB, inside the 4 KB of kernel arguments every supported GPU takes.
constexpr int kListMax = 48;

// Up to kListMax entries of the lists: ptr[a][k] is list a's tensor k; end[k] counts the elements
// of tensors 0..k, so element i of the concatenation is element i - end[k-1] of the tensor k
// whose end first exceeds i (an empty tensor is never that one: the next one ends at the same i).
template <typename T, int kLists>
struct Chunk {
  int count = 0;
  int64_t end[kListMax] = {};
  T* ptr[kLists][kListMax] = {};

  struct Where {
    int k;
    int64_t j;
  };
  NG_HD Where locate(int64_t i) const {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (end[mid] > i) hi = mid;
      else lo = mid + 1;
    }
    return {lo, i - (lo ? end[lo - 1] : 0)};
  }
  int64_t total() const { return count ? end[count - 1] : 0; }
};

// The lists cut into chunks; a null list (an absent state buffer) gives null pointers.
template <typename T, int kLists>
std::vector<Chunk<T, kLists>> chunks(const Tensors* const (&lists)[kLists]) {
  std::vector<Chunk<T, kLists>> out;
  const Tensors& params = *lists[0];
  for (size_t i = 0; i < params.size(); i++) {
    if (out.empty() || out.back().count == kListMax) out.emplace_back();
    Chunk<T, kLists>& c = out.back();
    for (int a = 0; a < kLists; a++) c.ptr[a][c.count] = lists[a] ? (*lists[a])[i].buf->template as<T>() : nullptr;
    c.end[c.count] = (c.count ? c.end[c.count - 1] : 0) + int64_t(params[i].numel());
    c.count++;
  }
  return out;
}

void markAll(const Tensors* ts) {
  if (ts) for (const TensorRef& t : *ts) markWritten(*t.buf);
}

template <typename T>
void sgd(const Tensors& params, const Tensors& grads, const Tensors* bufs, const SGDOptions& o) {
  const math::SgdScalars s = math::sgdScalars(o, bufs != nullptr);
  for (const auto& c : chunks<T, 3>({&params, &grads, bufs})) {
    forEach(
        c.total(),
        [=] NG_DEVICE(int64_t i) {
          const auto at = c.locate(i);
          T* buf = s.useBuf ? c.ptr[2][at.k] + at.j : nullptr;
          T& p = c.ptr[0][at.k][at.j];
          if constexpr (kHalf<T>) {
            // In float, each stored value rounded to T once, as 'cpu' steps a half parameter.
            float pi = float(p), bi = buf ? float(*buf) : 0.f;
            math::sgdElement(pi, float(c.ptr[1][at.k][at.j]), buf ? &bi : nullptr, s);
            p = T(pi);
            if (buf) *buf = T(bi);
          } else {
            math::sgdElement(p, c.ptr[1][at.k][at.j], buf, s);
          }
        },
        "SGDStep");
  }
}

template <typename T>
void adam(const Tensors& params, const Tensors& grads, const Tensors& ms, const Tensors& vs, const Tensors* vmaxs,
          const AdamOptions& o) {
  const math::AdamScalars s = math::adamScalars(o);
  for (const auto& c : chunks<T, 5>({&params, &grads, &ms, &vs, vmaxs})) {
    forEach(
        c.total(),
        [=] NG_DEVICE(int64_t i) {
          const auto at = c.locate(i);
          const int k = at.k;
          const int64_t j = at.j;
          T* vmax = s.amsgrad ? c.ptr[4][k] + j : nullptr;
          if constexpr (kHalf<T>) {
            // In double, rounded to float per state value and to T once: 'cpu''s and 'ts''s half path.
            float pi = float(c.ptr[0][k][j]), mi = float(c.ptr[2][k][j]), vi = float(c.ptr[3][k][j]);
            float wi = vmax ? float(*vmax) : 0.f;
            math::adamElement<float, double>(pi, float(c.ptr[1][k][j]), mi, vi, vmax ? &wi : nullptr, s);
            c.ptr[0][k][j] = T(pi);
            c.ptr[2][k][j] = T(mi);
            c.ptr[3][k][j] = T(vi);
            if (vmax) *vmax = T(wi);
          } else {
            math::adamElement(c.ptr[0][k][j], c.ptr[1][k][j], c.ptr[2][k][j], c.ptr[3][k][j], vmax, s);
          }
        },
        "AdamStep");
  }
}

// found is set by every thread that reads an inf or NaN: the same value, so which store lands
// does not matter, and no thread clears it.
template <typename T>
void unscale(const Tensors& grads, const TensorRef& found, double invScale) {
  const float inv = math::invScaleFloat(invScale);
  float* bad = found.buf->as<float>();
  for (const auto& c : chunks<T, 1>({&grads})) {
    forEach(
        c.total(),
        [=] NG_DEVICE(int64_t i) {
          const auto at = c.locate(i);
          if (math::unscaleElement(c.ptr[0][at.k][at.j], inv)) *bad = 1.f;
        },
        "NonFiniteCheckAndUnscale");
  }
}

void sgdStep(const Tensors& params, const Tensors& grads, const Tensors* momentumBufs, const SGDOptions& o) {
  markAll(&params);
  markAll(momentumBufs);
  NG_FLOAT_DISPATCH(params[0].dtype, sgd<T>(params, grads, momentumBufs, o);)
}

void adamStep(const Tensors& params, const Tensors& grads, const Tensors& expAvgs, const Tensors& expAvgSqs,
              const Tensors* maxExpAvgSqs, const AdamOptions& o) {
  for (const Tensors* ts : {&params, &expAvgs, &expAvgSqs, maxExpAvgSqs}) markAll(ts);
  NG_FLOAT_DISPATCH(params[0].dtype, adam<T>(params, grads, expAvgs, expAvgSqs, maxExpAvgSqs, o);)
}

void nonFiniteCheckAndUnscale(const Tensors& grads, const TensorRef& found, double invScale) {
  markAll(&grads);
  markWritten(*found.buf);
  NG_FLOAT_DISPATCH(grads[0].dtype, unscale<T>(grads, found, invScale);)
}

}  // namespace

void addOptimKernels(KernelTable& t) {
  t.sgdStep = sgdStep;
  t.adamStep = adamStep;
  t.nonFiniteCheckAndUnscale = nonFiniteCheckAndUnscale;
}

}  // namespace nodegrad::cuda
