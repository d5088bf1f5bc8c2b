// The legacy argument helpers of bindings/buffer.h over the 'cpu' device's layout policy
// (cpu/operands.h).
#include "bindings/buffer.h"

#include <stdexcept>

#include "cpu/host_allocator.h"
#include "cpu/operands.h"

namespace nodegrad {
namespace {

TensorArg fromRef(const TensorRef& r) { return {r.buf, r.shape, r.dtype, nullptr}; }

}  // namespace

size_t TensorArg::numel() const {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  return n;
}

Napi::Value newHandle(Napi::Env env, size_t numel, DType dtype, Buffer** out) {
  BufferPtr b = newBuffer(cpu::hostAllocator(), numel, dtype);
  if (out) *out = b.get();
  return newHandle(env, std::move(b));
}

Napi::Value newBlockedHandle(Napi::Env env, const std::vector<int64_t>& dims, int block, Buffer** out) {
  Tensor t = cpu::newBlocked(dims, block);
  if (out) *out = t.buf.get();
  return newHandle(env, std::move(t.buf));
}

void plainView(TensorArg& t) {
  if (t.buf->block == 0) return;
  t.converted = cpu::plainCopyOf(*t.buf);
  t.buf = t.converted.get();
}

void blockedView(TensorArg& t, const Buffer* like) {
  plainView(t);
  t.converted = cpu::blockedCopyOf(*t.buf, *like);
  t.buf = t.converted.get();
}

TensorArg tensorFrom(Napi::Value v, const char* op, const char* name) {
  TensorArg t = fromRef(readTensor(v, op, name, &cpu::hostAllocator()));
  plainView(t);
  return t;
}

TensorArg tensorArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  return tensorFrom(info[i], op, name);
}

TensorArg tensorArgAnyLayout(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  return fromRef(readTensor(info[i], op, name, &cpu::hostAllocator()));
}

TensorArg writableArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  TensorRef r = readTensor(info[i], op, name, &cpu::hostAllocator());
  cpu::writable(r);
  return fromRef(r);
}

void requireF32(const TensorArg& t, const char* op, const char* name) {
  if (t.dtype != DType::F32) {
    throw std::runtime_error(std::string("argument '") + name + "' is " + dtypeName(t.dtype) +
                             "; the 'cpu' backend computes " + op + " in float32 only (use .to('float32') or the 'ts' device)");
  }
}

}  // namespace nodegrad
