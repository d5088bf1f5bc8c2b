// How the bindings read a kernel's arguments and write its results, for every device. A tensor
// crosses as a Raw object { buf, shape, dtype } whose buf is an opaque handle (handle_table.h)
// owned by JS: freed by free() (dispose), by its tidy, or by its finalizer, and its device's memory
// is told to V8 so that GC pressure is real. Arguments are read as they are
// stored: what a layout means is the device's business (core/device.h).
#pragma once
#include <napi.h>

#include <optional>
#include <string>

#include "core/device.h"

namespace nodegrad {

// The device whose table a kernel function was made for (its data pointer).
inline const Device& deviceOf(const Napi::CallbackInfo& info) { return *static_cast<const Device*>(info.Data()); }

// A live handle's buffer (an External, or a JS handle object); throws a JS error naming op and
// argument when it is not one.
Buffer* unwrap(const Napi::Value& v, const char* op, const char* name);
// A Raw argument: its handle's buffer under its shape and dtype. Throws a JS error naming op and
// argument when it is not a live tensor, its shape does not match its buffer, or (`on` given) its
// storage lives on another device than the kernel's.
TensorRef readTensor(const Napi::Value& v, const char* op, const char* name, const Allocator* on = nullptr);
// Argument i of a kernel of the function's device: a Raw object, or, for the handle-returning copy
// of the device, a bare handle whose dtype and shape JS wrote to slot i of the argument scratch.
TensorRef tensorAt(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
// An optional tensor argument: null or undefined is absent.
std::optional<TensorRef> optionalTensorAt(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
// An optional argument as the kernel table's nullable pointer.
inline const TensorRef* ptr(const std::optional<TensorRef>& t) { return t ? &*t : nullptr; }
// An array of sizes (a shape, axes, a permutation).
Shape shapeArg(const Napi::Value& v, const char* op, const char* name);
inline Shape shapeArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  return shapeArg(info[i], op, name);
}
double numberArg(const Napi::Value& v, const char* op, const char* name);
// Two operands a kernel reads as one element type: another dtype would be read at the wrong
// element size, past the end of its buffer. Thrown inside NG_KERNEL, which names the kernel.
void requireSameDType(const char* an, const TensorRef& a, const char* bn, const TensorRef& b);
DType dtypeArg(const Napi::Value& v, const char* op);

// Makes the buffer a handle JS owns (counted in its device's live tensors): an External with a
// finalizer (handle_table.h).
Napi::Value newHandle(Napi::Env env, BufferPtr buf);
// Gives a live handle to the garbage collector: freed when it is collected, unless free() comes
// first. A JS handle object gets a finalizer here; an External has one from birth.
void makeCollectable(Napi::Env env, const Napi::Value& v);
// The Raw object { buf: handle, shape, dtype }.
Napi::Object rawObject(Napi::Env env, Napi::Value handle, const Shape& shape, DType dtype);
// A kernel's result as a Raw object JS owns, collectable.
inline Napi::Object wrap(Napi::Env env, Tensor&& t) {
  return rawObject(env, newHandle(env, std::move(t.buf)), t.shape, t.dtype);
}
// A kernel's single result: the Raw object, or, for the device copy with handleResults and a result
// scratch set on this thread, undefined, with [dtype index, rank, handle code, dims...] in the
// scratch: the JS backend makes the handle object, which has no finalizer until it is made
// collectable (scope.ts).
Napi::Value result(const Napi::CallbackInfo& info, Tensor&& t);
// setResultScratch(results: Float64Array, args?: Float64Array): the thread's result scratch and
// argument scratch (kArgSlots slots of kArgSlot: [dtype index, rank, dims...]; a tensor argument
// with a slot crosses as its handle's code; bindings/device.cc).
constexpr size_t kArgSlots = 8, kArgSlot = 10;
Napi::Value setResultScratch(const Napi::CallbackInfo& info);
// Frees a handle's storage now (free(buf)).
void freeHandle(Napi::Env env, const Napi::Value& v);
// Tells V8 what the device's allocator holds from the system (live and cached): a leak (handles
// left to finalizers) grows it, and V8 then collects.
void syncExternalMemory(Napi::Env env, Allocator& device);

// Sets kernels[name] to a function running `cb` on `device`.
template <Napi::Function::Callback cb>
void defineKernel(Napi::Env env, Napi::Object kernels, const char* name, const Device& device) {
  kernels.Set(name, Napi::Function::New<cb>(env, name, const_cast<Device*>(&device)));
}

}  // namespace nodegrad

namespace nodegrad {
// Makes the kernel's device current (DeviceMemory::activate).
inline void activate(const Device& d) {
  if (d.memory.activate) d.memory.activate(*d.allocator);
}
}  // namespace nodegrad

// Runs a call, turning C++ exceptions into JS errors naming it.
#define NG_CALL(op, ...)                                                      \
  try {                                                                       \
    __VA_ARGS__                                                               \
  } catch (const Napi::Error&) {                                              \
    throw;                                                                    \
  } catch (const std::exception& e) {                                         \
    throw Napi::Error::New(info.Env(), std::string(op) + ": " + e.what());    \
  }

// Runs a kernel or memory function of a device binding (info.Data() is its Device) with the
// device made current, turning C++ exceptions into JS errors naming the call.
#define NG_KERNEL(op, ...) NG_CALL(op, ::nodegrad::activate(::nodegrad::deviceOf(info)); __VA_ARGS__)
