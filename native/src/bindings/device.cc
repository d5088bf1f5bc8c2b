// A device's memory functions, and the kernels object its family bindings fill.
#include <cstring>
#include <vector>

#include "bindings/handles.h"
#include "bindings/kernels.h"
#include "core/half.h"

namespace nodegrad {
namespace {

// fromArray(typedArray, shape, dtype) -> Raw: copies host data in (the only upload). The array
// type must be the dtype's (Float64Array for int64, Float32Array for the half types, whose values
// are rounded to the type here): bits are never reinterpreted.
Napi::Value FromArray(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const Device& d = deviceOf(info);
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "fromArray: data must be a typed array");
  auto arr = info[0].As<Napi::TypedArray>();
  auto shape = shapeArg(info, 1, "fromArray", "shape");
  DType dt = dtypeArg(info[2], "fromArray");
  const bool f32 = dt == DType::F32 || isHalf(dt);
  napi_typedarray_type want = f32 ? napi_float32_array : dt == DType::I32 ? napi_int32_array : napi_float64_array;
  if (arr.TypedArrayType() != want) {
    throw Napi::TypeError::New(env, std::string("fromArray: ") + dtypeName(dt) + " data must be a " +
                                        (f32 ? "Float32Array" : dt == DType::I32 ? "Int32Array" : "Float64Array"));
  }
  const auto* src = static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  const size_t n = arr.ElementLength();
  std::vector<uint16_t> bits;
  if (isHalf(dt)) {
    bits.resize(n);
    halfFromFloat(dt, reinterpret_cast<const float*>(src), bits.data(), n);
    src = reinterpret_cast<const uint8_t*>(bits.data());
  }
  NG_KERNEL("fromArray", return result(info, d.memory.upload(src, n, shape, dt));)
}

// readSync(raw) -> a TypedArray copy, plain row-major (Float64Array for int64, Float32Array for
// the half types).
Napi::Value ReadSync(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  TensorRef t = tensorAt(info, 0, "readSync", "x");
  const size_t n = t.buf->numel;
  if (isHalf(t.dtype)) {
    std::vector<uint16_t> bits(n);
    NG_KERNEL("readSync", deviceOf(info).memory.download(t, bits.data());)
    auto out = Napi::Float32Array::New(env, n);
    halfToFloat(t.dtype, bits.data(), out.Data(), n);
    return out;
  }
  auto ab = Napi::ArrayBuffer::New(env, n * elementSize(t.dtype));
  NG_KERNEL("readSync", deviceOf(info).memory.download(t, ab.Data());)
  switch (t.dtype) {
    case DType::F32: return Napi::Float32Array::New(env, n, ab, 0);
    case DType::I32: return Napi::Int32Array::New(env, n, ab, 0);
    default: return Napi::Float64Array::New(env, n, ab, 0);
  }
}

// copyInto(dst, src): dst's storage takes src's elements.
Napi::Value CopyInto(const Napi::CallbackInfo& info) {
  TensorRef dst = tensorAt(info, 0, "copyInto", "dst");
  TensorRef src = tensorAt(info, 1, "copyInto", "src");
  if (dst.buf->numel != src.buf->numel || dst.dtype != src.dtype) {
    throw Napi::Error::New(info.Env(), "copyInto: source and destination differ in size or dtype");
  }
  NG_KERNEL("copyInto", deviceOf(info).memory.copyInto(dst, src);)
  syncExternalMemory(info.Env(), *deviceOf(info).allocator);
  return info.Env().Undefined();
}

// free(handle): the storage itself (a Raw's buf), not a Raw.
Napi::Value Free(const Napi::CallbackInfo& info) {
  freeHandle(info.Env(), info[0]);
  return info.Env().Undefined();
}

// collectable(handle): the garbage collector frees it when it finds it dead (handle_table.h).
Napi::Value Collectable(const Napi::CallbackInfo& info) {
  makeCollectable(info.Env(), info[0]);
  return info.Env().Undefined();
}

Napi::Value Sync(const Napi::CallbackInfo& info) {
  NG_KERNEL("sync", deviceOf(info).memory.sync();)
  return info.Env().Undefined();
}

// Live tensors (handles) and their bytes, and what the allocator keeps for reuse.
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Allocator& a = *deviceOf(info).allocator;
  auto o = Napi::Object::New(info.Env());
  o.Set("liveHandles", double(a.liveTensors.load()));
  o.Set("liveBytes", double(a.liveTensorBytes.load()));
  o.Set("poolCachedBytes", double(a.held().cachedBytes));
  return o;
}

Napi::Value TrimPool(const Napi::CallbackInfo& info) {
  Allocator& a = *deviceOf(info).allocator;
  NG_KERNEL("trimPool", a.trim();)
  syncExternalMemory(info.Env(), a);
  return info.Env().Undefined();
}

// layoutOf(raw) -> the layout its buffer holds ('nchw', 'nChw8c', ...): a debug query for tests.
Napi::Value LayoutOf(const Napi::CallbackInfo& info) {
  TensorRef t = tensorAt(info, 0, "layoutOf", "x");
  return Napi::String::New(info.Env(), deviceOf(info).memory.layoutName(*t.buf));
}

Napi::Object kernelsOf(Napi::Env env, const Device& device) {
  auto kernels = Napi::Object::New(env);
  bindElementwise(env, kernels, device);
  bindReduce(env, kernels, device);
  bindMovement(env, kernels, device);
  bindCreation(env, kernels, device);
  bindMatmulConv(env, kernels, device);
  bindPool(env, kernels, device);
  bindOptim(env, kernels, device);
  bindNorm(env, kernels, device);
  return kernels;
}

}  // namespace

void registerDevice(Napi::Env env, Napi::Object exports, const Device& device) {
  const std::string& name = device.allocator->device();
  auto o = Napi::Object::New(env);
  void* data = const_cast<Device*>(&device);
  o.Set("name", name);
  o.Set("fromArray", Napi::Function::New<FromArray>(env, "fromArray", data));
  o.Set("readSync", Napi::Function::New<ReadSync>(env, "readSync", data));
  o.Set("copyInto", Napi::Function::New<CopyInto>(env, "copyInto", data));
  o.Set("free", Napi::Function::New<Free>(env, "free", data));
  o.Set("collectable", Napi::Function::New<Collectable>(env, "collectable", data));
  o.Set("sync", Napi::Function::New<Sync>(env, "sync", data));
  o.Set("memoryStats", Napi::Function::New<MemoryStats>(env, "memoryStats", data));
  o.Set("trimPool", Napi::Function::New<TrimPool>(env, "trimPool", data));
  o.Set("layoutOf", Napi::Function::New<LayoutOf>(env, "layoutOf", data));
  o.Set("kernels", kernelsOf(env, device));
  // The same functions returning bare handles (handles.h, result), for the JS backend: one copy of
  // the device per env, alive as long as the process (a few words per thread).
  auto* handles = new Device(device);
  handles->handleResults = true;
  o.Set("handleKernels", kernelsOf(env, *handles));
  o.Set("fromArrayHandle", Napi::Function::New<FromArray>(env, "fromArray", handles));
  o.Set("setResultScratch", Napi::Function::New<setResultScratch>(env, "setResultScratch"));
  exports.Set(name, o);
}

}  // namespace nodegrad
