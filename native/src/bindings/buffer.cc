#include "bindings/buffer.h"

#include <atomic>
#include <cstring>

#include "cpu/layout.h"
#include "cpu/pool.h"

namespace nodegrad {
namespace {

std::atomic<int64_t> liveHandles{0};
std::atomic<int64_t> liveBytes{0};

// V8 is told of the memory the buffer pool holds from the system (live + cached), not of each
// handle: a training step allocates and frees its maps from the pool every step, and reporting
// each of those made V8 run ~6 full collections per step for memory that was never new. A leak
// (handles left to finalizers) still grows the pool, and V8 then collects. One env per thread,
// so each thread keeps what it has reported to its own isolate.
thread_local int64_t reportedBytes = 0;

void syncExternalMemory(Napi::Env env) {
  auto s = cpu::poolStats();
  int64_t held = int64_t(s.liveBytes + s.cachedBytes);
  if (held != reportedBytes) {
    Napi::MemoryManagement::AdjustExternalMemory(env, held - reportedBytes);
    reportedBytes = held;
  }
}

void release(Napi::Env env, Buffer* b) {
  if (b->freed) return;
  b->freed = true;
  b->derived.reset();
  cpu::poolFree(b->data, b->bytes);
  liveHandles--;
  liveBytes -= int64_t(b->bytes);
  syncExternalMemory(env);
}

Buffer* unwrap(Napi::Value v, const char* op, const char* name) {
  if (!v.IsExternal()) {
    throw Napi::TypeError::New(v.Env(), std::string(op) + ": argument '" + name + "' is not a native tensor handle");
  }
  Buffer* b = v.As<Napi::External<Buffer>>().Data();
  if (b->freed) {
    throw Napi::Error::New(v.Env(), std::string(op) + ": argument '" + name + "' was disposed");
  }
  return b;
}

// A plain pool copy of a blocked buffer, freed with the last TensorArg holding it. Not a handle:
// it lives for one kernel call, like a oneDNN scratchpad, and is not counted in liveBytes.
std::shared_ptr<Buffer> plainCopyOf(Buffer* b) {
  auto* c = new Buffer();
  c->numel = b->numel;
  c->dtype = b->dtype;
  c->bytes = b->numel * elementSize(b->dtype);
  c->data = cpu::poolAlloc(c->bytes == 0 ? 1 : c->bytes);
  cpu::blockedToPlain(b->dims, b->block, b->as<float>(), c->as<float>());
  return std::shared_ptr<Buffer>(c, [](Buffer* p) {
    cpu::poolFree(p->data, p->bytes == 0 ? 1 : p->bytes);
    delete p;
  });
}

// Gives the handle's buffer new storage of `bytes` (plain unless block is set afterwards), keeping
// the live-byte accounting exact.
void replaceStorage(Napi::Env env, Buffer* b, void* data, size_t bytes) {
  cpu::poolFree(b->data, b->bytes == 0 ? 1 : b->bytes);
  liveBytes += int64_t(bytes) - int64_t(b->bytes);
  syncExternalMemory(env);
  b->data = data;
  b->bytes = bytes;
}

// Converts a blocked buffer to plain in place; `keep` false skips the reorder (about to be overwritten).
void makePlain(Napi::Env env, Buffer* b, bool keep) {
  if (b->block == 0) return;
  size_t bytes = b->numel * elementSize(b->dtype);
  void* data = cpu::poolAlloc(bytes == 0 ? 1 : bytes);
  if (keep) cpu::blockedToPlain(b->dims, b->block, b->as<float>(), static_cast<float*>(data));
  replaceStorage(env, b, data, bytes);
  b->block = 0;
  b->dims.clear();
}

}  // namespace

size_t elementSize(DType d) { return d == DType::F32 || d == DType::I32 ? 4 : 8; }

DType parseDType(const std::string& s, const char* op) {
  if (s == "float32") return DType::F32;
  if (s == "float64") return DType::F64;
  if (s == "int32") return DType::I32;
  if (s == "int64") return DType::I64;
  throw std::runtime_error(std::string(op) + ": unknown dtype '" + s + "'");
}

const char* dtypeName(DType d) {
  switch (d) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
  }
  return "?";
}

size_t TensorArg::numel() const {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  return n;
}

Napi::Value newHandle(Napi::Env env, size_t numel, DType dtype, Buffer** out) {
  auto* b = new Buffer();
  b->numel = numel;
  b->dtype = dtype;
  b->bytes = numel * elementSize(dtype);
  b->data = cpu::poolAlloc(b->bytes == 0 ? 1 : b->bytes);
  liveHandles++;
  liveBytes += int64_t(b->bytes);
  syncExternalMemory(env);
  if (out) *out = b;
  return Napi::External<Buffer>::New(env, b, [](Napi::Env e, Buffer* p) {
    release(e, p);
    delete p;
  });
}

Napi::Value newBlockedHandle(Napi::Env env, const std::vector<int64_t>& dims, int block, Buffer** out) {
  size_t logical = size_t(dims[0] * dims[1] * dims[2] * dims[3]);
  if (block == 0) return newHandle(env, logical, DType::F32, out);
  Buffer* b;
  auto h = newHandle(env, cpu::blockedNumel(dims, block), DType::F32, &b);
  b->numel = logical;
  b->block = block;
  b->dims = dims;
  if (out) *out = b;
  return h;
}

void markWritten(Buffer* b) {
  b->generation++;
  b->derived.reset();
}

void plainView(TensorArg& t) {
  if (t.buf->block == 0) return;
  t.converted = plainCopyOf(t.buf);
  t.buf = t.converted.get();
}

void blockedView(TensorArg& t, const Buffer* like) {
  plainView(t);
  auto* c = new Buffer();
  c->numel = t.buf->numel;
  c->dtype = DType::F32;
  c->block = like->block;
  c->dims = like->dims;
  c->bytes = cpu::blockedNumel(like->dims, like->block) * sizeof(float);
  c->data = cpu::poolAlloc(c->bytes == 0 ? 1 : c->bytes);
  cpu::plainToBlocked(like->dims, like->block, t.buf->as<float>(), c->as<float>());
  t.converted = std::shared_ptr<Buffer>(c, [](Buffer* p) {
    cpu::poolFree(p->data, p->bytes == 0 ? 1 : p->bytes);
    delete p;
  });
  t.buf = c;
}

std::vector<int64_t> shapeArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (!info[i].IsArray()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": '" + name + "' must be an array of sizes");
  auto a = info[i].As<Napi::Array>();
  std::vector<int64_t> s(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) s[k] = a.Get(k).As<Napi::Number>().Int64Value();
  return s;
}

namespace {

// The argument in whatever layout its buffer holds.
TensorArg readArg(Napi::Value v, const char* op, const char* name) {
  auto env = v.Env();
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(op) + ": argument '" + name + "' must be a tensor");
  auto o = v.As<Napi::Object>();
  TensorArg t;
  t.buf = unwrap(o.Get("buf"), op, name);
  auto a = o.Get("shape").As<Napi::Array>();
  t.shape.resize(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) t.shape[k] = a.Get(k).As<Napi::Number>().Int64Value();
  t.dtype = parseDType(o.Get("dtype").As<Napi::String>().Utf8Value(), op);
  if (t.numel() != t.buf->numel) {
    throw Napi::Error::New(env, std::string(op) + ": argument '" + name + "' has a shape that does not match its buffer");
  }
  return t;
}

}  // namespace

TensorArg tensorFrom(Napi::Value v, const char* op, const char* name) {
  TensorArg t = readArg(v, op, name);
  plainView(t);
  return t;
}

TensorArg tensorArgAnyLayout(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  return readArg(info[i], op, name);
}

TensorArg tensorArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  return tensorFrom(info[i], op, name);
}

TensorArg writableArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  TensorArg t = readArg(info[i], op, name);
  makePlain(info.Env(), t.buf, true);
  markWritten(t.buf);
  return t;
}

void requireF32(const TensorArg& t, const char* op, const char* name) {
  if (t.dtype != DType::F32) {
    throw std::runtime_error(std::string("argument '") + name + "' is " + dtypeName(t.dtype) +
                             "; the 'cpu' backend computes " + op + " in float32 only (use .to('float32') or the 'ts' device)");
  }
}

void requireReal(const TensorArg& t, const char* op, const char* name) {
  if (t.dtype == DType::I32) {
    throw std::runtime_error(std::string("argument '") + name + "' is int32; the 'cpu' backend computes " + op +
                             " in float32, float64 and int64 (use .to('int64') or .to('float32'))");
  }
}

void requireSameDType(const TensorArg& a, const TensorArg& b, const char* op) {
  if (a.dtype != b.dtype) {
    throw std::runtime_error(std::string(op) + ": arguments have dtypes " + dtypeName(a.dtype) + " and " +
                             dtypeName(b.dtype) + "; convert one");
  }
}

Napi::Object rawObject(Napi::Env env, Napi::Value handle, const std::vector<int64_t>& shape, DType dtype) {
  auto o = Napi::Object::New(env);
  auto s = Napi::Array::New(env, shape.size());
  for (size_t k = 0; k < shape.size(); k++) s.Set(uint32_t(k), Napi::Number::New(env, double(shape[k])));
  o.Set("buf", handle);
  o.Set("shape", s);
  o.Set("dtype", dtypeName(dtype));
  return o;
}

void registerBuffer(Napi::Env env, Napi::Object exports) {
  // fromArray(typedArray, shape, dtype) -> Raw: copies host data in (the only upload).
  exports.Set("fromArray", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto env = info.Env();
    auto arr = info[0].As<Napi::TypedArray>();
    auto shape = shapeArg(info, 1, "fromArray", "shape");
    DType dt = parseDType(info[2].As<Napi::String>().Utf8Value(), "fromArray");
    // The array type must be the dtype's (Float64Array for int64): never reinterpret bits.
    napi_typedarray_type want = dt == DType::F32 ? napi_float32_array : dt == DType::I32 ? napi_int32_array : napi_float64_array;
    if (arr.TypedArrayType() != want) {
      throw Napi::TypeError::New(env, std::string("fromArray: ") + dtypeName(dt) + " data must be a " +
                                          (dt == DType::F32 ? "Float32Array" : dt == DType::I32 ? "Int32Array" : "Float64Array"));
    }
    Buffer* b;
    auto h = newHandle(env, arr.ElementLength(), dt, &b);
    auto ab = arr.ArrayBuffer();
    const uint8_t* src = static_cast<const uint8_t*>(ab.Data()) + arr.ByteOffset();
    if (arr.ByteLength() != b->bytes) throw Napi::Error::New(env, "fromArray: typed array does not match dtype");
    if (b->bytes) std::memcpy(b->data, src, b->bytes);
    return rawObject(env, h, shape, dt);
  }));
  // toArray(raw) -> TypedArray copy (Float64Array for int64).
  exports.Set("toArray", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto env = info.Env();
    TensorArg t = tensorArg(info, 0, "toArray", "x");
    auto ab = Napi::ArrayBuffer::New(env, t.buf->bytes);
    if (t.buf->bytes) std::memcpy(ab.Data(), t.buf->data, t.buf->bytes);
    switch (t.dtype) {
      case DType::F32: return Napi::Float32Array::New(env, t.buf->numel, ab, 0);
      case DType::I32: return Napi::Int32Array::New(env, t.buf->numel, ab, 0);
      default: return Napi::Float64Array::New(env, t.buf->numel, ab, 0);
    }
  }));
  // copyInto(dst, src): a blocked source keeps its layout when dst has the same logical shape;
  // dst's old contents are never read.
  exports.Set("copyInto", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    TensorArg dst = tensorArgAnyLayout(info, 0, "copyInto", "dst");
    TensorArg src = tensorArgAnyLayout(info, 1, "copyInto", "src");
    if (dst.buf->numel != src.buf->numel || dst.dtype != src.dtype) {
      throw Napi::Error::New(info.Env(), "copyInto: source and destination differ in size or dtype");
    }
    Buffer* d = dst.buf;
    markWritten(d);
    if (src.buf->block != 0 && dst.shape == src.buf->dims && d != src.buf) {
      if (d->block != src.buf->block || d->dims != src.buf->dims) {
        replaceStorage(info.Env(), d, cpu::poolAlloc(src.buf->bytes == 0 ? 1 : src.buf->bytes), src.buf->bytes);
        d->block = src.buf->block;
        d->dims = src.buf->dims;
      }
    } else {
      makePlain(info.Env(), d, d == src.buf);
      plainView(src);
    }
    if (d->bytes && d != src.buf) std::memmove(d->data, src.buf->data, d->bytes);
  }));
  // free(handle): the storage itself (a Raw's buf), not a Raw.
  exports.Set("free", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    auto v = info[0];
    if (!v.IsExternal()) throw Napi::TypeError::New(info.Env(), "free: not a native tensor handle");
    release(info.Env(), v.As<Napi::External<Buffer>>().Data());
  }));
  exports.Set("memoryStats", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto env = info.Env();
    auto s = cpu::poolStats();
    auto o = Napi::Object::New(env);
    o.Set("liveHandles", double(liveHandles.load()));
    o.Set("liveBytes", double(liveBytes.load()));
    o.Set("poolCachedBytes", double(s.cachedBytes));
    return o;
  }));
  exports.Set("trimPool", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    cpu::poolTrim();
    syncExternalMemory(info.Env());
  }));
  // layoutOf(raw) -> 'nchw' (plain) | 'nChw8c' | 'nChw16c': a debug query for tests.
  exports.Set("layoutOf", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    TensorArg t = tensorArgAnyLayout(info, 0, "layoutOf", "x");
    return Napi::String::New(info.Env(), t.buf->block == 0 ? "nchw" : "nChw" + std::to_string(t.buf->block) + "c");
  }));
}

}  // namespace nodegrad
