// The 'cpu' creation kernels (KernelTable entries): a copy in the source's own layout (a blocked
// activation stays blocked), fills, and the Philox draws of cpu/random.cc.
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "cpu/device.h"
#include "cpu/host_allocator.h"
#include "cpu/operands.h"
#include "cpu/random.h"

namespace nodegrad::cpu {
namespace {

Tensor copyKernel(const TensorRef& x) {
  const Buffer& b = *x.buf;
  BufferPtr out = b.block != 0 ? std::move(newBlocked(b.dims, b.block, b.dtype).buf) : newBuffer(hostAllocator(), b.numel, b.dtype);
  if (out->bytes) std::memcpy(out->data, b.data, out->bytes);
  return {std::move(out), x.shape, x.dtype};
}

template <typename T>
void fillAll(Buffer& b, T v) {
  T* p = b.as<T>();
  for (size_t i = 0; i < b.numel; i++) p[i] = v;
}

Tensor fillKernel(const Shape& shape, double value, DType dtype) {
  Tensor out = newTensor(shape, dtype);
  switch (dtype) {
    case DType::F32: fillAll(*out.buf, float(value)); break;
    case DType::I32: fillAll(*out.buf, int32_t(value)); break;
    case DType::I64: fillAll(*out.buf, std::trunc(value)); break;  // held as double; truncates as torch.full
    case DType::BF16: fillAll(*out.buf, BFloat16(value)); break;  // through float32, as the 'ts' backend
    case DType::F16: fillAll(*out.buf, Float16(value)); break;
    default: fillAll(*out.buf, value); break;
  }
  return out;
}

Tensor draw(RandomKind kind, const Shape& shape, DType dtype, uint64_t seed, uint64_t offset, double p, double value) {
  Tensor out = newTensor(shape, dtype);
  NG_FLOAT_DISPATCH(dtype, randomFill<T>(kind, out.buf->as<T>(), out.buf->numel, seed, offset, p, value);)
  return out;
}

// 24 random bits for float32, 53 for float64, 8 for bfloat16 and 11 for float16
// (packages/autograd/src/philox.ts).
Tensor uniformKernel(const Shape& shape, DType dtype, uint64_t seed, uint64_t offset) {
  const RandomKind kind = dtype == DType::F32    ? RandomKind::Uniform24
                          : dtype == DType::BF16 ? RandomKind::Uniform8
                          : dtype == DType::F16  ? RandomKind::Uniform11
                                                 : RandomKind::Uniform53;
  return draw(kind, shape, dtype, seed, offset, 0, 0);
}

Tensor normalKernel(const Shape& shape, DType dtype, uint64_t seed, uint64_t offset) {
  return draw(RandomKind::Normal, shape, dtype, seed, offset, 0, 0);
}

Tensor bernoulliKernel(const Shape& shape, double p, double value, DType dtype, uint64_t seed, uint64_t offset) {
  return draw(RandomKind::Bernoulli, shape, dtype, seed, offset, p, value);
}

}  // namespace

void addCreationKernels(KernelTable& t) {
  t.copy = copyKernel;
  t.fill = fillKernel;
  t.randomUniform = uniformKernel;
  t.randomNormal = normalKernel;
  t.bernoulli = bernoulliKernel;
}

}  // namespace nodegrad::cpu
