#include "cpu/operands.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/half.h"
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
  blockedToPlain(b.dims, b.block, b.dtype, b.data, c->data);
  return c;
}

std::shared_ptr<Buffer> blockedCopyOf(const Buffer& plainSrc, const Buffer& like) {
  std::shared_ptr<Buffer> c = newBlocked(like.dims, like.block, like.dtype).buf;
  plainToBlocked(like.dims, like.block, like.dtype, plainSrc.data, c->data);
  return c;
}

void makePlain(Buffer& b, bool keep) {
  if (b.block == 0) return;
  const size_t bytes = b.numel * elementSize(b.dtype);
  void* data = b.device->allocate(bytes);
  if (keep) blockedToPlain(b.dims, b.block, b.dtype, b.data, data);
  replaceStorage(b, data, bytes);
  b.block = 0;
  b.dims.clear();
}

Tensor newTensor(const Shape& shape, DType dtype) {
  return {newBuffer(hostAllocator(), size_t(numel(shape)), dtype), shape, dtype};
}

Tensor newBlocked(const Shape& dims, int block, DType dtype) {
  if (block == 0) return newTensor(dims, dtype);
  BufferPtr b = newBuffer(hostAllocator(), size_t(numel(dims)), dtype, blockedNumel(dims, block) * elementSize(dtype));
  b->block = block;
  b->dims = dims;
  return {std::move(b), dims, dtype};
}

void widen(DType from, const void* src, float* dst, size_t n) {
  constexpr size_t kChunk = 1 << 16;
  const auto* s = static_cast<const uint16_t*>(src);
#pragma omp parallel for schedule(static) if (n > 2 * kChunk)
  for (size_t i = 0; i < n; i += kChunk) halfToFloat(from, s + i, dst + i, std::min(kChunk, n - i));
}

void narrow(DType to, const float* src, void* dst, size_t n) {
  constexpr size_t kChunk = 1 << 16;
  auto* d = static_cast<uint16_t*>(dst);
#pragma omp parallel for schedule(static) if (n > 2 * kChunk)
  for (size_t i = 0; i < n; i += kChunk) halfFromFloat(to, src + i, d + i, std::min(kChunk, n - i));
}

Operand widened(const TensorRef& t) {
  Operand p = plain(t);
  if (!isHalf(t.dtype)) return p;
  std::shared_ptr<Buffer> c = newBuffer(hostAllocator(), t.buf->numel, DType::F32);
  widen(t.dtype, p.buf->data, c->as<float>(), t.buf->numel);
  return {c.get(), c};
}

Tensor narrowed(Tensor&& f, DType to) {
  if (to == DType::F32) return std::move(f);
  Tensor h = newTensor(f.shape, to);
  narrow(to, f.buf->as<float>(), h.buf->data, f.buf->numel);
  return h;
}

void requireF32OrHalf(DType d, const char* name) {
  if (d != DType::F32 && !isHalf(d)) {
    throw std::runtime_error(std::string("argument '") + name + "' is " + dtypeName(d) +
                             "; the 'cpu' backend computes this kernel in float32, bfloat16 and float16 only " +
                             "(use .to('float32') or the 'ts' device)");
  }
}

void requireReal(DType d, const char* name) {
  if (d == DType::I32) {
    throw std::runtime_error(std::string("argument '") + name + "' is int32; the 'cpu' backend computes this kernel in " +
                             "float32, float64, int64 and the half types (use .to('int64') or .to('float32'))");
  }
}

void requireSameDType(const TensorRef& a, const char* nameA, const TensorRef& b, const char* nameB) {
  if (a.dtype != b.dtype) {
    throw std::runtime_error(std::string("argument '") + nameB + "' is " + dtypeName(b.dtype) + " but '" + nameA +
                             "' is " + dtypeName(a.dtype) + "; convert one");
  }
}

}  // namespace nodegrad::cpu
