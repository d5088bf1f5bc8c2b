// Data movement for any dtype (elements are copied as 4- or 8-byte words): transpose,
// broadcastTo, slice, pad, concat; and oneHot.
#include <cmath>
#include <cstring>

#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/reduce.h"

namespace nodegrad {
namespace {

std::vector<int64_t> stridesOf(const cpu::Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t a = 1;
  for (size_t d = s.size(); d-- > 0;) {
    st[d] = a;
    a *= s[d];
  }
  return st;
}

// Copies x into a new tensor of outShape reading x at base + idx . strides.
Napi::Value gather(const Napi::CallbackInfo& info, const TensorArg& x, int64_t base, const std::vector<int64_t>& strides,
                   const cpu::Shape& outShape) {
  Buffer* out;
  auto h = newHandle(info.Env(), size_t(cpu::numel(outShape)), x.dtype, &out);
  if (elementSize(x.dtype) == 4) cpu::gatherStrided(x.buf->as<uint32_t>(), base, strides, outShape, out->as<uint32_t>());
  else cpu::gatherStrided(x.buf->as<uint64_t>(), base, strides, outShape, out->as<uint64_t>());
  return rawObject(info.Env(), h, outShape, x.dtype);
}

Napi::Value Transpose(const Napi::CallbackInfo& info) {
  NG_KERNEL("Transpose", {
    TensorArg x = tensorArg(info, 0, "Transpose", "x");
    auto perm = shapeArg(info, 1, "Transpose", "perm");
    if (perm.size() != x.shape.size()) throw std::runtime_error("perm does not match the rank");
    auto st = stridesOf(x.shape);
    cpu::Shape outShape(perm.size());
    std::vector<int64_t> src(perm.size());
    for (size_t i = 0; i < perm.size(); i++) {
      outShape[i] = x.shape[size_t(perm[i])];
      src[i] = st[size_t(perm[i])];
    }
    return gather(info, x, 0, src, outShape);
  })
}

Napi::Value BroadcastTo(const Napi::CallbackInfo& info) {
  NG_KERNEL("BroadcastTo", {
    TensorArg x = tensorArg(info, 0, "BroadcastTo", "x");
    auto shape = shapeArg(info, 1, "BroadcastTo", "shape");
    return gather(info, x, 0, cpu::broadcastStrides(x.shape, shape), shape);
  })
}

Napi::Value Slice(const Napi::CallbackInfo& info) {
  NG_KERNEL("Slice", {
    TensorArg x = tensorArg(info, 0, "Slice", "x");
    auto begin = shapeArg(info, 1, "Slice", "begin");
    auto size = shapeArg(info, 2, "Slice", "size");
    auto step = shapeArg(info, 3, "Slice", "step");
    auto st = stridesOf(x.shape);
    int64_t base = 0;
    std::vector<int64_t> src(st.size());
    for (size_t d = 0; d < st.size(); d++) {
      if (size[d] > 0 && (begin[d] < 0 || begin[d] + (size[d] - 1) * step[d] >= x.shape[d])) {
        throw std::runtime_error("slice of dim " + std::to_string(d) + " is out of range");
      }
      base += begin[d] * st[d];
      src[d] = st[d] * step[d];
    }
    if (cpu::numel(size) == 0) base = 0;
    return gather(info, x, base, src, size);
  })
}

Napi::Value Pad(const Napi::CallbackInfo& info) {
  NG_KERNEL("Pad", {
    TensorArg x = tensorArg(info, 0, "Pad", "x");
    auto pads = info[1].As<Napi::Array>();
    double value = info[2].As<Napi::Number>().DoubleValue();
    size_t rank = x.shape.size();
    if (pads.Length() != rank) throw std::runtime_error("pads must list every dim");
    cpu::Shape outShape(rank);
    std::vector<int64_t> before(rank);
    for (size_t d = 0; d < rank; d++) {
      auto p = pads.Get(uint32_t(d)).As<Napi::Array>();
      before[d] = p.Get(0u).As<Napi::Number>().Int64Value();
      int64_t after = p.Get(1u).As<Napi::Number>().Int64Value();
      if (before[d] < 0 || after < 0) throw std::runtime_error("pads must be non-negative");
      outShape[d] = x.shape[d] + before[d] + after;
    }
    Buffer* out;
    auto h = newHandle(info.Env(), size_t(cpu::numel(outShape)), x.dtype, &out);
    auto ost = stridesOf(outShape);
    int64_t base = 0;
    for (size_t d = 0; d < rank; d++) base += before[d] * ost[d];
    auto fillCopy = [&](auto* o, auto fillValue) {
      std::fill(o, o + cpu::numel(outShape), fillValue);
      using T = std::remove_pointer_t<decltype(o)>;
      const T* src = x.buf->as<T>();
      auto xst = stridesOf(x.shape);
      cpu::forEachBroadcast(x.shape, xst, ost, [&](int64_t, int64_t ix, int64_t io) { o[base + io] = src[ix]; });
    };
    switch (x.dtype) {
      case DType::F32: fillCopy(out->as<float>(), float(value)); break;
      case DType::I32: fillCopy(out->as<int32_t>(), int32_t(value)); break;
      default: fillCopy(out->as<double>(), value); break;
    }
    return rawObject(info.Env(), h, outShape, x.dtype);
  })
}

Napi::Value Concat(const Napi::CallbackInfo& info) {
  NG_KERNEL("Concat", {
    auto list = info[0].As<Napi::Array>();
    int64_t axis = info[1].As<Napi::Number>().Int64Value();
    if (list.Length() == 0) throw std::runtime_error("needs at least one tensor");
    std::vector<TensorArg> xs;
    for (uint32_t i = 0; i < list.Length(); i++) xs.push_back(tensorFrom(list.Get(i), "Concat", "tensors"));
    cpu::Shape outShape = xs[0].shape;
    outShape[size_t(axis)] = 0;
    for (auto& t : xs) {
      if (t.dtype != xs[0].dtype || t.shape.size() != outShape.size()) throw std::runtime_error("tensors differ in dtype or rank");
      outShape[size_t(axis)] += t.shape[size_t(axis)];
    }
    // Each input is one block of (its size along axis) x inner per outer index.
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; d++) outer *= outShape[size_t(d)];
    for (size_t d = size_t(axis) + 1; d < outShape.size(); d++) inner *= outShape[d];
    size_t es = elementSize(xs[0].dtype);
    Buffer* out;
    auto h = newHandle(info.Env(), size_t(cpu::numel(outShape)), xs[0].dtype, &out);
    auto* o = static_cast<uint8_t*>(out->data);
    size_t rowOut = size_t(outShape[size_t(axis)] * inner) * es, off = 0;
    for (auto& t : xs) {
      size_t block = size_t(t.shape[size_t(axis)] * inner) * es;
      auto* src = static_cast<const uint8_t*>(t.buf->data);
      for (int64_t p = 0; p < outer; p++) std::memcpy(o + size_t(p) * rowOut + off, src + size_t(p) * block, block);
      off += block;
    }
    return rawObject(info.Env(), h, outShape, xs[0].dtype);
  })
}

// oneHot(indices (int32/int64), numClasses, dtype, ignoreIndex?): a trailing class dim of 0/1; an
// index equal to ignoreIndex gives a zero row.
Napi::Value OneHot(const Napi::CallbackInfo& info) {
  NG_KERNEL("OneHot", {
    TensorArg idx = tensorArg(info, 0, "OneHot", "indices");
    int64_t classes = info[1].As<Napi::Number>().Int64Value();
    DType dt = parseDType(info[2].As<Napi::String>(), "OneHot");
    if (idx.dtype != DType::I32 && idx.dtype != DType::I64) throw std::runtime_error("indices must be int32 or int64");
    bool hasIgnore = info.Length() > 3 && info[3].IsNumber();
    double ignore = hasIgnore ? info[3].As<Napi::Number>().DoubleValue() : 0;
    cpu::Shape outShape = idx.shape;
    outShape.push_back(classes);
    Buffer* out;
    auto h = newHandle(info.Env(), size_t(cpu::numel(outShape)), dt, &out);
    std::memset(out->data, 0, out->bytes);  // 0 is all-zero bits in every dtype
    for (size_t i = 0; i < idx.numel(); i++) {
      double v = idx.dtype == DType::I32 ? double(idx.buf->as<int32_t>()[i]) : idx.buf->as<double>()[i];
      if (hasIgnore && v == ignore) continue;
      if (!(v >= 0 && v < double(classes)) || v != std::floor(v)) {
        throw std::runtime_error("index " + std::to_string(int64_t(v)) + " at position " + std::to_string(i) +
                                 " is out of range for " + std::to_string(classes) + " classes");
      }
      size_t at = i * size_t(classes) + size_t(v);
      switch (dt) {
        case DType::F32: out->as<float>()[at] = 1.0f; break;
        case DType::I32: out->as<int32_t>()[at] = 1; break;
        default: out->as<double>()[at] = 1.0; break;
      }
    }
    return rawObject(info.Env(), h, outShape, dt);
  })
}

}  // namespace

void registerMovement(Napi::Env env, Napi::Object exports) {
  exports.Set("transpose", Napi::Function::New(env, Transpose));
  exports.Set("broadcastTo", Napi::Function::New(env, BroadcastTo));
  exports.Set("slice", Napi::Function::New(env, Slice));
  exports.Set("pad", Napi::Function::New(env, Pad));
  exports.Set("concat", Napi::Function::New(env, Concat));
  exports.Set("oneHot", Napi::Function::New(env, OneHot));
}

}  // namespace nodegrad
