#include "bindings/handles.h"

#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "bindings/handle_table.h"

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

// This thread's handles (handle_table.h). Made with the thread's env, which frees at its teardown
// what no finalizer will: the handles tidy scopes still held.
thread_local HandleTable* handleTable = nullptr;

HandleTable& tableOf(napi_env env) {
  if (!handleTable) {
    handleTable = new HandleTable();
    napi_add_env_cleanup_hook(env, [](void* t) { static_cast<HandleTable*>(t)->releaseAll(); }, handleTable);
  }
  return *handleTable;
}

// A tensor argument's property names as JS strings made once per thread (one env each): looked
// up by a C string, each read internalized the name again, a tenth of a small kernel's call.
struct TensorKeys {
  Napi::Reference<Napi::String> buf, shape, dtype, id;
};
thread_local TensorKeys* tensorKeys = nullptr;

const TensorKeys& keysFor(Napi::Env env) {
  if (!tensorKeys) {
    auto key = [&](const char* k) { return Napi::Persistent(Napi::String::New(env, k)); };
    tensorKeys = new TensorKeys{key("buf"), key("shape"), key("dtype"), key("id")};
    for (auto* r : {&tensorKeys->buf, &tensorKeys->shape, &tensorKeys->dtype, &tensorKeys->id}) r->SuppressDestruct();
  }
  return *tensorKeys;
}

// The code a handle value of JS type `type` carries (handle_table.h): an External's data, a JS
// handle object's `id`, or (`number`: where JS passes the code itself) a number; none otherwise.
std::optional<uint64_t> codeOf(const Napi::Value& v, napi_valuetype type, bool number) {
  if (type == napi_external) return uint64_t(reinterpret_cast<uintptr_t>(v.As<Napi::External<void>>().Data()));
  if (type == napi_object) {
    Napi::Value id = v.As<Napi::Object>().Get(keysFor(v.Env()).id.Value());
    return id.IsNumber() ? codeOf(id, napi_number, true) : std::nullopt;
  }
  if (type != napi_number || !number) return std::nullopt;
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= 0 && x < 9007199254740992.0) || x != std::floor(x)) return std::nullopt;
  return uint64_t(x);
}

napi_valuetype typeOf(const Napi::Value& v) {
  napi_valuetype type;
  NAPI_THROW_IF_FAILED(v.Env(), napi_typeof(v.Env(), v, &type), napi_undefined);
  return type;
}

std::optional<uint64_t> codeOf(const Napi::Value& v, bool number) { return codeOf(v, typeOf(v), number); }

// The buffer of a handle's code; throws a JS error naming op and argument when there is no code,
// or its handle was disposed.
Buffer* bufferOf(Napi::Env env, std::optional<uint64_t> code, const char* op, const char* name) {
  if (!code) throw Napi::TypeError::New(env, std::string(op) + ": argument '" + name + "' is not a native tensor handle");
  Buffer* b = tableOf(env).find(*code);
  if (!b) throw Napi::Error::New(env, std::string(op) + ": argument '" + name + "' was disposed");
  return b;
}

// A new handle's code: the buffer counted as a tensor JS holds, its bytes told to V8.
uint64_t newCode(Napi::Env env, BufferPtr buf) {
  Buffer* b = buf.release();
  adopt(*b);
  syncExternalMemory(env, *b->device);
  try {
    return tableOf(env).add(b);
  } catch (...) {
    releaseStorage(*b);
    delete b;
    throw;
  }
}

// A handle the GC owns, collected: its storage goes now unless free() released it already (then
// its slot's generation moved on). It runs inside the collection (Node-API's experimental
// finalizers, native/CMakeLists.txt), where V8 must not be told of memory: the next handle made or
// freed reports the change (syncExternalMemory reports what the allocator holds, not a delta per
// handle). A plain function, so no per-handle closure is allocated.
void finalizeHandle(napi_env, void* data, void*) {
  const auto code = uint64_t(reinterpret_cast<uintptr_t>(data));
  if (handleTable && handleTable->find(code)) handleTable->release(code);
}

// The thread's scratch arrays (one env per thread), kept alive by a reference while set: the result
// scratch JS reads after each call, and the argument scratch it writes before one.
struct Scratch {
  double* data = nullptr;
  size_t length = 0;
  Napi::Reference<Napi::Float64Array>* ref = nullptr;
};
thread_local Scratch results, args;

// Sets `s` to the Float64Array `v` of at least `minLength` elements.
void setScratch(Scratch& s, const Napi::Value& v, size_t minLength, const char* which) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(v.Env(), std::string("setResultScratch: the ") + which + " scratch must be a Float64Array");
  }
  auto a = v.As<Napi::Float64Array>();
  if (a.ElementLength() < minLength) {
    throw Napi::RangeError::New(v.Env(), std::string("setResultScratch: the ") + which + " scratch needs " +
                                             std::to_string(minLength) + " elements or more");
  }
  if (a.Data() == s.data) return;  // every device of the addon passes the same arrays
  delete s.ref;  // releases the reference to the array set before
  s.ref = new Napi::Reference<Napi::Float64Array>(Napi::Persistent(a));
  s.data = a.Data();
  s.length = a.ElementLength();
}

}  // namespace

Napi::Value setResultScratch(const Napi::CallbackInfo& info) {
  setScratch(results, info[0], 3, "result");
  if (!info[1].IsUndefined()) setScratch(args, info[1], kArgSlots * kArgSlot, "argument");
  return info.Env().Undefined();
}

Napi::Value result(const Napi::CallbackInfo& info, Tensor&& t) {
  if (!deviceOf(info).handleResults || results.data == nullptr || t.shape.size() + 3 > results.length) {
    return wrap(info.Env(), std::move(t));
  }
  double* r = results.data;
  r[2] = double(newCode(info.Env(), std::move(t.buf)));
  r[0] = double(int(t.dtype));
  r[1] = double(t.shape.size());
  for (size_t k = 0; k < t.shape.size(); k++) r[3 + k] = double(t.shape[k]);
  return info.Env().Undefined();
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

Buffer* unwrap(const Napi::Value& v, const char* op, const char* name) { return bufferOf(v.Env(), codeOf(v, false), op, name); }

namespace {

// Throws when t's shape does not match its buffer or (`on` given) its storage is on another device.
void checkTensor(Napi::Env env, const TensorRef& t, const char* op, const char* name, const Allocator* on) {
  if (t.numel() != t.buf->numel) {
    throw Napi::Error::New(env, std::string(op) + ": argument '" + name + "' has a shape that does not match its buffer");
  }
  if (on && t.buf->device != on) {
    throw Napi::Error::New(env, std::string(op) + ": argument '" + name + "' is on device '" + t.buf->device->device() +
                                    "', the kernel runs on '" + on->device() + "'");
  }
}

// A handle passed as argument i, its code as a number (or an External; `type`), with its dtype and
// shape in slot i of the argument scratch. Reading a slot marks it used (rank -1), so a handle
// passed without its slot written is refused.
TensorRef slotTensor(const Napi::Value& v, napi_valuetype type, size_t i, const char* op, const char* name, const Allocator* on) {
  double* s = args.data + i * kArgSlot;
  const double dtype = s[0], rank = s[1];
  if (!(rank >= 0 && rank <= double(kArgSlot - 2)) || !(dtype >= 0 && dtype <= double(int(DType::F16)))) {
    throw Napi::TypeError::New(v.Env(), std::string(op) + ": argument '" + name +
                                            "' must be a tensor (a bare handle crosses with its shape and dtype in the argument scratch)");
  }
  s[1] = -1;
  TensorRef t{bufferOf(v.Env(), codeOf(v, type, true), op, name), Shape(size_t(rank)), DType(int(dtype))};
  for (size_t k = 0; k < t.shape.size(); k++) t.shape[k] = int64_t(s[2 + k]);
  checkTensor(v.Env(), t, op, name, on);
  return t;
}

}  // namespace

TensorRef readTensor(const Napi::Value& v, const char* op, const char* name, const Allocator* on) {
  auto env = v.Env();
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(op) + ": argument '" + name + "' must be a tensor");
  auto o = v.As<Napi::Object>();
  const TensorKeys& k = keysFor(env);
  TensorRef t{unwrap(o.Get(k.buf.Value()), op, name), shapeArg(o.Get(k.shape.Value()), op, name), DType::F32};
  t.dtype = dtypeArg(o.Get(k.dtype.Value()), op);
  checkTensor(env, t, op, name, on);
  return t;
}

TensorRef tensorAt(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const Device& d = deviceOf(info);
  const Napi::Value v = info[i];
  if (d.handleResults && args.data != nullptr && i < kArgSlots) {
    const napi_valuetype type = typeOf(v);
    if (type == napi_number || type == napi_external) return slotTensor(v, type, i, op, name, d.allocator);
  }
  return readTensor(v, op, name, d.allocator);
}

std::optional<TensorRef> optionalTensorAt(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return tensorAt(info, i, op, name);
}

Shape shapeArg(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(op) + ": '" + name + "' must be an array of sizes");
  auto a = v.As<Napi::Array>();
  Shape s(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    // A negative size would wrap to a huge element count (a kernel then ran for ever).
    const Napi::Value d = a.Get(k);
    const double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0) || x != double(int64_t(x))) {
      throw Napi::RangeError::New(v.Env(), std::string(op) + ": '" + name + "' must hold integer sizes >= 0");
    }
    s[k] = int64_t(x);
  }
  return s;
}

void requireSameDType(const char* an, const TensorRef& a, const char* bn, const TensorRef& b) {
  if (a.dtype != b.dtype) {
    throw std::runtime_error(std::string("'") + an + "' is " + dtypeName(a.dtype) + " " + fmtShape(a.shape) + " but '" + bn +
                             "' is " + dtypeName(b.dtype) + " " + fmtShape(b.shape) + "; both operands must have one dtype");
  }
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

Napi::Value newHandle(Napi::Env env, BufferPtr buf) {
  const uint64_t code = newCode(env, std::move(buf));
  HandleTable& table = tableOf(env);
  table.markCollectable(code);
  napi_value v;
  const napi_status st = napi_create_external(env, reinterpret_cast<void*>(uintptr_t(code)), finalizeHandle, nullptr, &v);
  if (st != napi_ok) {
    table.release(code);
    NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  }
  return Napi::Value(env, v);
}

void makeCollectable(Napi::Env env, const Napi::Value& v) {
  const std::optional<uint64_t> code = codeOf(v, false);
  if (!code) throw Napi::TypeError::New(env, "collectable: not a native tensor handle");
  HandleTable& table = tableOf(env);
  if (!table.find(*code) || table.markCollectable(*code)) return;  // disposed, or collectable already
  NAPI_THROW_IF_FAILED_VOID(env, napi_add_finalizer(env, v, reinterpret_cast<void*>(uintptr_t(*code)), finalizeHandle, nullptr, nullptr));
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
  const std::optional<uint64_t> code = codeOf(v, true);
  if (!code) throw Napi::TypeError::New(env, "free: not a native tensor handle");
  HandleTable& table = tableOf(env);
  Buffer* b = table.find(*code);
  if (!b) return;  // freed already
  Allocator& device = *b->device;
  table.release(*code);
  syncExternalMemory(env, device);
}

}  // namespace nodegrad
