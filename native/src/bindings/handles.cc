#include "bindings/handles.h"

#include <utility>
#include <vector>

namespace nodegrad {
namespace {

// V8 is told of the memory each device's allocator holds from the system (live + cached), not of
// each handle: a training step allocates and frees its maps from the pool every step, and
// reporting each of those made V8 run ~6 full collections per step for memory that was never new.
// One env per thread, so each thread keeps what it has reported to its own isolate.
thread_local std::vector<std::pair<const Allocator*, int64_t>> reported;

int64_t& reportedFor(const Allocator& a) {
  for (auto& [dev, bytes] : reported) {
    if (dev == &a) return bytes;
  }
  reported.emplace_back(&a, 0);
  return reported.back().second;
}

// A handle collected by the GC: its storage goes now unless free() released it already. It runs
// inside the collection (Node-API's experimental finalizers, native/CMakeLists.txt), where V8 must
// not be told of memory: the next handle made or freed reports the change (syncExternalMemory
// reports what the allocator holds, not a delta per handle).
void finalize(Buffer* b) {
  releaseStorage(*b);
  delete b;
}

// The thread's result scratch (one env per thread): a Float64Array JS reads after each call, kept
// alive by a reference while it is set.
thread_local double* scratch = nullptr;
thread_local size_t scratchLength = 0;
thread_local Napi::Reference<Napi::Float64Array>* scratchRef = nullptr;

}  // namespace

Napi::Value setResultScratch(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(info.Env(), "setResultScratch: the scratch must be a Float64Array");
  }
  auto a = info[0].As<Napi::Float64Array>();
  if (a.ElementLength() < 3) throw Napi::RangeError::New(info.Env(), "setResultScratch: the scratch needs 3 elements or more");
  if (a.Data() == scratch) return info.Env().Undefined();  // every device of the addon passes the same array
  delete scratchRef;  // releases the reference to the array set before
  scratchRef = new Napi::Reference<Napi::Float64Array>(Napi::Persistent(a));
  scratch = a.Data();
  scratchLength = a.ElementLength();
  return info.Env().Undefined();
}

Napi::Value result(const Napi::CallbackInfo& info, Tensor&& t) {
  if (!deviceOf(info).handleResults || scratch == nullptr || t.shape.size() + 2 > scratchLength) {
    return wrap(info.Env(), std::move(t));
  }
  scratch[0] = double(int(t.dtype));
  scratch[1] = double(t.shape.size());
  for (size_t k = 0; k < t.shape.size(); k++) scratch[2 + k] = double(t.shape[k]);
  return newHandle(info.Env(), std::move(t.buf));
}

void syncExternalMemory(Napi::Env env, Allocator& device) {
  auto h = device.held();
  const int64_t held = int64_t(h.liveBytes + h.cachedBytes);
  int64_t& told = reportedFor(device);
  if (held != told) {
    Napi::MemoryManagement::AdjustExternalMemory(env, held - told);
    told = held;
  }
}

Buffer* unwrap(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsExternal()) {
    throw Napi::TypeError::New(v.Env(), std::string(op) + ": argument '" + name + "' is not a native tensor handle");
  }
  Buffer* b = v.As<Napi::External<Buffer>>().Data();
  if (b->freed) throw Napi::Error::New(v.Env(), std::string(op) + ": argument '" + name + "' was disposed");
  return b;
}

namespace {

// A tensor argument's property names as JS strings made once per thread (one env each): looked
// up by a C string, each read internalized the name again, a tenth of a small kernel's call.
struct TensorKeys {
  Napi::Reference<Napi::String> buf, shape, dtype;
};
thread_local TensorKeys* tensorKeys = nullptr;

const TensorKeys& keysFor(Napi::Env env) {
  if (!tensorKeys) {
    tensorKeys = new TensorKeys{Napi::Persistent(Napi::String::New(env, "buf")), Napi::Persistent(Napi::String::New(env, "shape")),
                                Napi::Persistent(Napi::String::New(env, "dtype"))};
    for (auto* r : {&tensorKeys->buf, &tensorKeys->shape, &tensorKeys->dtype}) r->SuppressDestruct();
  }
  return *tensorKeys;
}

}  // namespace

TensorRef readTensor(const Napi::Value& v, const char* op, const char* name, const Allocator* on) {
  auto env = v.Env();
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(op) + ": argument '" + name + "' must be a tensor");
  auto o = v.As<Napi::Object>();
  const TensorKeys& k = keysFor(env);
  TensorRef t{unwrap(o.Get(k.buf.Value()), op, name), shapeArg(o.Get(k.shape.Value()), op, name), DType::F32};
  t.dtype = dtypeArg(o.Get(k.dtype.Value()), op);
  if (t.numel() != t.buf->numel) {
    throw Napi::Error::New(env, std::string(op) + ": argument '" + name + "' has a shape that does not match its buffer");
  }
  if (on && t.buf->device != on) {
    throw Napi::Error::New(env, std::string(op) + ": argument '" + name + "' is on device '" + t.buf->device->device() +
                                    "', the kernel runs on '" + on->device() + "'");
  }
  return t;
}

std::optional<TensorRef> optionalTensorAt(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return tensorAt(info, i, op, name);
}

Shape shapeArg(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(op) + ": '" + name + "' must be an array of sizes");
  auto a = v.As<Napi::Array>();
  Shape s(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) s[k] = a.Get(k).As<Napi::Number>().Int64Value();
  return s;
}

double numberArg(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(op) + ": '" + name + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

DType dtypeArg(const Napi::Value& v, const char* op) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(op) + ": a dtype must be a string");
  try {
    return parseDType(v.As<Napi::String>().Utf8Value(), op);
  } catch (const std::exception& e) {
    throw Napi::Error::New(v.Env(), e.what());
  }
}

DType newDTypeArg(const Napi::CallbackInfo& info, const Napi::Value& v, const char* op) {
  const DType d = dtypeArg(v, op);
  const Device& dev = deviceOf(info);
  if (isHalf(d) && !dev.halfTypes) {
    throw Napi::Error::New(info.Env(), std::string(op) + ": the '" + dev.allocator->device() + "' device does not compute in " +
                                           dtypeName(d) + " (the half types are computed on 'cpu' and 'ts')");
  }
  return d;
}

// The finalizer as Node-API calls it: a plain function, so no per-handle closure is allocated
// (node-addon-api's External::New with a finalizer allocates and frees one per handle).
static void finalizeHandle(napi_env, void* data, void*) { finalize(static_cast<Buffer*>(data)); }

Napi::Value newHandle(Napi::Env env, BufferPtr buf) {
  Buffer* b = buf.release();
  adopt(*b);
  syncExternalMemory(env, *b->device);
  napi_value v;
  const napi_status st = napi_create_external(env, b, finalizeHandle, nullptr, &v);
  if (st != napi_ok) {
    finalize(b);
    NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  }
  return Napi::Value(env, v);
}

Napi::Object rawObject(Napi::Env env, Napi::Value handle, const Shape& shape, DType dtype) {
  auto o = Napi::Object::New(env);
  auto s = Napi::Array::New(env, shape.size());
  for (size_t k = 0; k < shape.size(); k++) s.Set(uint32_t(k), Napi::Number::New(env, double(shape[k])));
  o.Set("buf", handle);
  o.Set("shape", s);
  o.Set("dtype", dtypeName(dtype));
  return o;
}

void freeHandle(Napi::Env env, const Napi::Value& v) {
  if (!v.IsExternal()) throw Napi::TypeError::New(env, "free: not a native tensor handle");
  Buffer* b = v.As<Napi::External<Buffer>>().Data();
  releaseStorage(*b);
  syncExternalMemory(env, *b->device);
}

}  // namespace nodegrad
