// Data movement for every dtype: Transpose (x, perm), BroadcastTo (x, shape), Slice (x, begin,
// size, step), Pad (x, pads, value), Concat (xs, axis), OneHot (indices, numClasses, dtype,
// ignoreIndex?).
#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

Napi::Value Transpose(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Transpose", "x");
  auto perm = shapeArg(info, 1, "Transpose", "perm");
  NG_KERNEL("Transpose", {
    if (perm.size() != x.shape.size()) throw std::runtime_error("perm does not match the rank");
    return result(info, deviceOf(info).kernels.transpose(x, perm));
  })
}

Napi::Value BroadcastTo(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "BroadcastTo", "x");
  auto shape = shapeArg(info, 1, "BroadcastTo", "shape");
  NG_KERNEL("BroadcastTo", return result(info, deviceOf(info).kernels.broadcastTo(x, shape));)
}

Napi::Value Slice(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Slice", "x");
  auto begin = shapeArg(info, 1, "Slice", "begin");
  auto size = shapeArg(info, 2, "Slice", "size");
  auto step = shapeArg(info, 3, "Slice", "step");
  NG_KERNEL("Slice", {
    const size_t rank = x.shape.size();
    if (begin.size() != rank || size.size() != rank || step.size() != rank) {
      throw std::runtime_error("begin, size and step must list every dim of " + fmtShape(x.shape));
    }
    for (size_t d = 0; d < rank; d++) {
      if (size[d] > 0 && (begin[d] < 0 || begin[d] + (size[d] - 1) * step[d] >= x.shape[d])) {
        throw std::runtime_error("slice of dim " + std::to_string(d) + " is out of range");
      }
    }
    return result(info, deviceOf(info).kernels.slice(x, begin, size, step));
  })
}

Napi::Value Pad(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Pad", "x");
  const double value = numberArg(info[2], "Pad", "value");
  NG_KERNEL("Pad", {
    if (!info[1].IsArray()) throw std::runtime_error("pads must be an array of [before, after] pairs");
    auto pads = info[1].As<Napi::Array>();
    const size_t rank = x.shape.size();
    if (pads.Length() != rank) throw std::runtime_error("pads must list every dim");
    Shape before(rank), after(rank);
    for (size_t d = 0; d < rank; d++) {
      auto p = shapeArg(pads.Get(uint32_t(d)), "Pad", "pads");
      if (p.size() != 2) throw std::runtime_error("pads must be [before, after] pairs");
      before[d] = p[0];
      after[d] = p[1];
      if (before[d] < 0 || after[d] < 0) throw std::runtime_error("pads must be non-negative");
    }
    return result(info, deviceOf(info).kernels.pad(x, before, after, value));
  })
}

Napi::Value Concat(const Napi::CallbackInfo& info) {
  NG_KERNEL("Concat", {
    if (!info[0].IsArray()) throw std::runtime_error("tensors must be an array");
    auto list = info[0].As<Napi::Array>();
    const auto axis = int64_t(numberArg(info[1], "Concat", "axis"));
    if (list.Length() == 0) throw std::runtime_error("needs at least one tensor");
    std::vector<TensorRef> xs;
    xs.reserve(list.Length());
    for (uint32_t i = 0; i < list.Length(); i++) {
      xs.push_back(readTensor(list.Get(i), "Concat", "tensors", deviceOf(info).allocator));
    }
    for (auto& t : xs) {
      if (t.dtype != xs[0].dtype || t.shape.size() != xs[0].shape.size()) {
        throw std::runtime_error("tensors differ in dtype or rank");
      }
    }
    if (axis < 0 || size_t(axis) >= xs[0].shape.size()) throw std::runtime_error("axis out of range");
    return result(info, deviceOf(info).kernels.concat(xs, axis));
  })
}

// An index equal to ignoreIndex (when given) gives a zero row.
Napi::Value OneHot(const Napi::CallbackInfo& info) {
  TensorRef idx = tensorAt(info, 0, "OneHot", "indices");
  const auto classes = int64_t(numberArg(info[1], "OneHot", "numClasses"));
  DType dt = dtypeArg(info[2], "OneHot");
  std::optional<double> ignore;
  if (info.Length() > 3 && info[3].IsNumber()) ignore = info[3].As<Napi::Number>().DoubleValue();
  NG_KERNEL("OneHot", {
    if (idx.dtype != DType::I32 && idx.dtype != DType::I64) throw std::runtime_error("indices must be int32 or int64");
    return result(info, deviceOf(info).kernels.oneHot(idx, classes, dt, ignore));
  })
}

}  // namespace

void bindMovement(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.transpose) defineKernel<Transpose>(env, k, "Transpose", d);
  if (d.kernels.broadcastTo) defineKernel<BroadcastTo>(env, k, "BroadcastTo", d);
  if (d.kernels.slice) defineKernel<Slice>(env, k, "Slice", d);
  if (d.kernels.pad) defineKernel<Pad>(env, k, "Pad", d);
  if (d.kernels.concat) defineKernel<Concat>(env, k, "Concat", d);
  if (d.kernels.oneHot) defineKernel<OneHot>(env, k, "OneHot", d);
}

}  // namespace nodegrad
