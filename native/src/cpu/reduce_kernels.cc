// The 'cpu' reductions and softmax (KernelTable entries): operands read plain, the loops in
// cpu/reduce.cc, for every float dtype but float64 softmax.
#include "cpu/device.h"
#include "cpu/operands.h"
#include "cpu/reduce.h"

namespace nodegrad::cpu {
namespace {

Tensor reduceKernel(ReduceOp op, const TensorRef& x, const std::vector<int64_t>& axes) {
  requireReal(x.dtype, "x");
  Operand xp = plain(x);
  Tensor out = newTensor(keptShape(x.shape, axes), x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, reduce(op, xp.data<T>(), x.shape, axes, out.buf->as<T>());)
  return out;
}

Tensor argReduceKernel(bool isMax, const TensorRef& x, int64_t axis) {
  requireReal(x.dtype, "x");
  Operand xp = plain(x);
  Shape outShape = x.shape;
  outShape[size_t(axis)] = 1;
  Tensor out = newTensor(outShape, DType::I64);
  NG_FLOAT_DISPATCH(x.dtype, argReduce(isMax, xp.data<T>(), x.shape, axis, out.buf->as<double>());)
  return out;
}

Tensor logSumExpKernel(const TensorRef& x, const std::vector<int64_t>& axes) {
  requireReal(x.dtype, "x");
  Operand xp = plain(x);
  Tensor out = newTensor(keptShape(x.shape, axes), x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, logSumExp(xp.data<T>(), x.shape, axes, out.buf->as<T>());)
  return out;
}

Tensor normKernel(const TensorRef& x, double ord, const std::vector<int64_t>& axes) {
  requireReal(x.dtype, "x");
  Operand xp = plain(x);
  Tensor out = newTensor(keptShape(x.shape, axes), x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, norm(xp.data<T>(), x.shape, ord, axes, out.buf->as<T>());)
  return out;
}

Tensor cumsumKernel(const TensorRef& x, int64_t axis, bool reverse) {
  requireReal(x.dtype, "x");
  Operand xp = plain(x);
  Tensor out = newTensor(x.shape, x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, cumsum(xp.data<T>(), x.shape, axis, reverse, out.buf->as<T>());)
  return out;
}

Tensor softmaxKernel(const TensorRef& x, int64_t axis, bool log) {
  requireF32OrHalf(x.dtype, "x");
  Operand xp = plain(x);
  Tensor out = newTensor(x.shape, x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, softmax(log, xp.data<T>(), x.shape, axis, out.buf->as<T>());)
  return out;
}

}  // namespace

void addReduceKernels(KernelTable& t) {
  t.reduce = reduceKernel;
  t.argReduce = argReduceKernel;
  t.cumsum = cumsumKernel;
  t.logSumExp = logSumExpKernel;
  t.norm = normKernel;
  t.softmax = softmaxKernel;
}

}  // namespace nodegrad::cpu
