#include "cpu/operands.h"

#include <stdexcept>
#include <string>

#include "cpu/host_allocator.h"
#include "cpu/layout.h"

namespace nodegrad::cpu {

bool blockedAsIs(const TensorRef& t) { return t.buf->block != 0 && t.shape == t.buf->dims; }

Operand asStored(const TensorRef& t) { return {t.buf, nullptr}; }

Operand plain(const TensorRef& t) {
  if (t.buf->block == 0) return asStored(t);
  auto c = plainCopyOf(*t.buf);
  return {c.get(), c};
}

Operand storedOrPlain(const TensorRef& t) { return blockedAsIs(t) ? asStored(t) : plain(t); }

Operand blockedLike(const TensorRef& t, const Buffer& like) {
  Operand p = plain(t);
  auto c = blockedCopyOf(*p.buf, like);
  return {c.get(), c};
}

Buffer& writable(const TensorRef& t) {
  makePlain(*t.buf, true);
  markWritten(*t.buf);
  return *t.buf;
}

std::shared_ptr<Buffer> plainCopyOf(const Buffer& b) {
  std::shared_ptr<Buffer> c = newBuffer(hostAllocator(), b.numel, b.dtype);
  blockedToPlain(b.dims, b.block, b.as<float>(), c->as<float>());
  return c;
}

std::shared_ptr<Buffer> blockedCopyOf(const Buffer& plainSrc, const Buffer& like) {
  std::shared_ptr<Buffer> c =
      newBuffer(hostAllocator(), plainSrc.numel, DType::F32, blockedNumel(like.dims, like.block) * sizeof(float));
  c->block = like.block;
  c->dims = like.dims;
  plainToBlocked(like.dims, like.block, plainSrc.as<float>(), c->as<float>());
  return c;
}

void makePlain(Buffer& b, bool keep) {
  if (b.block == 0) return;
  const size_t bytes = b.numel * elementSize(b.dtype);
  void* data = b.device->allocate(bytes);
  if (keep) blockedToPlain(b.dims, b.block, b.as<float>(), static_cast<float*>(data));
  replaceStorage(b, data, bytes);
  b.block = 0;
  b.dims.clear();
}

Tensor newTensor(const Shape& shape, DType dtype) {
  return {newBuffer(hostAllocator(), size_t(numel(shape)), dtype), shape, dtype};
}

Tensor newBlocked(const Shape& dims, int block) {
  if (block == 0) return newTensor(dims, DType::F32);
  BufferPtr b = newBuffer(hostAllocator(), size_t(numel(dims)), DType::F32, blockedNumel(dims, block) * sizeof(float));
  b->block = block;
  b->dims = dims;
  return {std::move(b), dims, DType::F32};
}

void requireF32(DType d, const char* name) {
  if (d != DType::F32) {
    throw std::runtime_error(std::string("argument '") + name + "' is " + dtypeName(d) +
                             "; the 'cpu' backend computes this kernel in float32 only (use .to('float32') or the 'ts' device)");
  }
}

void requireReal(DType d, const char* name) {
  if (d == DType::I32) {
    throw std::runtime_error(std::string("argument '") + name + "' is int32; the 'cpu' backend computes this kernel in " +
                             "float32, float64 and int64 (use .to('int64') or .to('float32'))");
  }
}

}  // namespace nodegrad::cpu
