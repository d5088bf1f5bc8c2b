// Creation on the device: Copy, Fill and the Philox draws (RandomUniform, RandomNormal,
// Bernoulli), each element's value core/philox.h's, so 'cuda' draws what every backend draws.
#include <cmath>

#include "core/half.h"
#include "core/philox.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace nodegrad::cuda {
namespace {

Tensor copy(const TensorRef& x) {
  Tensor y = empty(x.shape, x.dtype);
  copyOnDevice(y.buf->data, x.buf->data, x.numel() * elementSize(x.dtype));
  return y;
}

template <typename T>
void fillWith(T* y, int64_t n, T v) {
  forEach(n, [=] NG_DEVICE(int64_t i) { y[i] = v; }, "Fill");
}

Tensor fill(const Shape& shape, double value, DType dtype) {
  Tensor y = empty(shape, dtype);
  const int64_t n = numel(shape);
  if (dtype == DType::I32) fillWith(y.buf->as<int32_t>(), n, int32_t(value));
  // int64 is held as double and truncates, as torch.full does.
  else if (dtype == DType::I64) fillWith(y.buf->as<double>(), n, std::trunc(value));
  // A half value through float32, as the 'ts' backend and 'cpu' make it.
  else NG_FLOAT_DISPATCH(dtype, fillWith(y.buf->as<T>(), n, T(value));)
  return y;
}

template <typename T>
void drawInto(T* y, int64_t n, math::RandomKind kind, uint64_t seed, uint64_t offset, double p, double value) {
  forEach(n, [=] NG_DEVICE(int64_t i) { y[i] = T(math::randomValue(kind, offset + uint64_t(i), seed, p, value)); },
          "Random");
}

Tensor draw(math::RandomKind kind, const Shape& shape, DType dtype, uint64_t seed, uint64_t offset, double p,
            double value) {
  Tensor y = empty(shape, dtype);
  NG_FLOAT_DISPATCH(dtype, drawInto(y.buf->as<T>(), numel(shape), kind, seed, offset, p, value);)
  return y;
}

// 24 random bits for float32, 53 for float64, 8 for bfloat16 and 11 for float16, as every backend
// draws (packages/autograd/src/philox.ts).
Tensor randomUniform(const Shape& shape, DType dtype, uint64_t seed, uint64_t offset) {
  const auto kind = dtype == DType::F32    ? math::RandomKind::Uniform24
                    : dtype == DType::BF16 ? math::RandomKind::Uniform8
                    : dtype == DType::F16  ? math::RandomKind::Uniform11
                                           : math::RandomKind::Uniform53;
  return draw(kind, shape, dtype, seed, offset, 0, 0);
}

Tensor randomNormal(const Shape& shape, DType dtype, uint64_t seed, uint64_t offset) {
  return draw(math::RandomKind::Normal, shape, dtype, seed, offset, 0, 0);
}

Tensor bernoulli(const Shape& shape, double p, double value, DType dtype, uint64_t seed, uint64_t offset) {
  return draw(math::RandomKind::Bernoulli, shape, dtype, seed, offset, p, value);
}

}  // namespace

void addCreationKernels(KernelTable& t) {
  t.copy = copy;
  t.fill = fill;
  t.randomUniform = randomUniform;
  t.randomNormal = randomNormal;
  t.bernoulli = bernoulli;
}

}  // namespace nodegrad::cuda
