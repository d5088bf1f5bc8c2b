// Tensors cross the N-API boundary as opaque handles (Napi::External<Buffer>) owned by JS: freed
// by dispose() or by the finalizer, and counted as external memory so V8's GC sees the pressure.
#pragma once
#include <napi.h>

#include <cstddef>
#include <memory>
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
  // 0: plain row-major. 8 or 16: a float32 [N, C, H, W] tensor held in oneDNN's nChw{block}c
  // (cpu/layout.h), as a convolution produced it; `dims` is then its logical NCHW shape (a view's
  // Raw may carry another shape over the same buffer). Invisible to TS except through layoutOf.
  int block = 0;
  std::vector<int64_t> dims;
  // Bumped by every write into an existing buffer (copyInto, the optimizer steps); `derived`
  // (a conv weight reordered into a primitive's layout, cpu/conv.cc) is valid for one generation.
  uint64_t generation = 0;
  std::shared_ptr<void> derived;
  template <typename T> T* as() { return static_cast<T*>(data); }
};

// A kernel argument: the Raw object { buf, shape, dtype } the TS side passes.
struct TensorArg {
  Buffer* buf;
  std::vector<int64_t> shape;
  DType dtype;
  // The temporary copy `buf` points to once the argument was converted (plainView, blockedView).
  std::shared_ptr<Buffer> converted;
  size_t numel() const;
  float* f32() const { return buf->as<float>(); }
  // Blocked, and seen under its own NCHW shape: what the layout-keeping kernels operate on.
  bool blockedAsIs() const { return buf->block != 0 && shape == buf->dims; }
};

// Allocates from the pool and wraps as a handle.
Napi::Value newHandle(Napi::Env env, size_t numel, DType dtype, Buffer** out);
// A float32 handle for an [N, C, H, W] result in nChw{block}c (block 0: plain).
Napi::Value newBlockedHandle(Napi::Env env, const std::vector<int64_t>& dims, int block, Buffer** out);
// Reads argument `i` (a Raw object) as plain row-major data: a blocked buffer is reordered into a
// temporary copy (plainView), so no kernel can read blocked bytes by mistake. Throws a JS error
// naming op and argument when it is not a live handle.
TensorArg tensorArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
TensorArg tensorFrom(Napi::Value v, const char* op, const char* name);
// Reads argument `i` in whatever layout its buffer holds: only for kernels that handle blocked data.
TensorArg tensorArgAnyLayout(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
// Makes `t` plain: a blocked buffer is reordered into a temporary copy that `t` then points to.
void plainView(TensorArg& t);
// Makes a plain float32 `t` of shape like->dims blocked as `like` is, through a temporary copy: an
// elementwise operand beside a blocked one of the same shape, so the result can stay blocked.
void blockedView(TensorArg& t, const Buffer* like);
// Reads argument `i` for a kernel that writes into it: a blocked buffer is converted to plain in
// place, and the write is recorded (markWritten). Read-only arguments never use this.
TensorArg writableArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
// Records a write into an existing buffer: bumps its generation and drops what was derived from it.
void markWritten(Buffer* b);
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

// Exports: fromArray, toArray, copyInto, free, memoryStats, trimPool, layoutOf.
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
