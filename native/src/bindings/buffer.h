// Tensors cross the N-API boundary as opaque handles (Napi::External<Buffer>) owned by JS: freed
// by dispose() or by the finalizer, and counted as external memory so V8's GC sees the pressure.
#pragma once
#include <napi.h>

#include <cstddef>
#include <string>
#include <vector>

namespace nodegrad {

// int64 is stored as double, like the 'ts' backend's Float64Array: exact below 2^53.
enum class DType { F32, F64, I32, I64 };

size_t elementSize(DType d);
DType parseDType(const std::string& s, const char* op);
const char* dtypeName(DType d);

struct Buffer {
  void* data = nullptr;
  size_t bytes = 0;
  size_t numel = 0;
  DType dtype = DType::F32;
  bool freed = false;
  template <typename T> T* as() { return static_cast<T*>(data); }
};

// A kernel argument: the Raw object { buf, shape, dtype } the TS side passes.
struct TensorArg {
  Buffer* buf;
  std::vector<int64_t> shape;
  DType dtype;
  size_t numel() const;
  float* f32() const { return buf->as<float>(); }
};

// Allocates from the pool and wraps as a handle.
Napi::Value newHandle(Napi::Env env, size_t numel, DType dtype, Buffer** out);
// Reads argument `i` (a Raw object); throws a JS error naming op and argument when it is not a live handle.
TensorArg tensorArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
TensorArg tensorFrom(Napi::Value v, const char* op, const char* name);
// The Raw object for a result: { buf, shape, dtype }.
Napi::Object rawObject(Napi::Env env, Napi::Value handle, const std::vector<int64_t>& shape, DType dtype);
std::vector<int64_t> shapeArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
// Throws unless the argument is float32: the 'cpu' backend's kernels are float32 (issue #4).
void requireF32(const TensorArg& t, const char* op, const char* name);
// float32, float64 or int64 (held as double): what the elementwise and reduction kernels take.
void requireReal(const TensorArg& t, const char* op, const char* name);
void requireSameDType(const TensorArg& a, const TensorArg& b, const char* op);

// Runs body with T = float for float32 tensors, T = double for float64 and int64 ones.
#define NG_REAL_DISPATCH(dtype, ...)     \
  if ((dtype) == DType::F32) {           \
    using T = float;                     \
    __VA_ARGS__                          \
  } else {                               \
    using T = double;                    \
    __VA_ARGS__                          \
  }

// Exports: fromArray, toArray, copyInto, free, memoryStats, trimPool.
void registerBuffer(Napi::Env env, Napi::Object exports);

}  // namespace nodegrad

// Turns C++ exceptions from plain kernels into JS errors naming the call.
#define NG_KERNEL(op, ...)                                                    \
  try {                                                                       \
    __VA_ARGS__                                                               \
  } catch (const Napi::Error&) {                                              \
    throw;                                                                    \
  } catch (const std::exception& e) {                                         \
    throw Napi::Error::New(info.Env(), std::string(op) + ": " + e.what());    \
  }
