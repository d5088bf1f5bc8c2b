// The 'cpu' elementwise kernels (KernelTable entries): the layout each result takes, then the loops
// of cpu/elementwise.cc. They keep oneDNN's blocked layout when they can compute on the buffers as
// stored: the operands of the result's shape share one blocked layout, and the others are single
// elements broadcast over it. A plain float32 operand of that shape beside a blocked one is
// blocked to match (one reorder either way, and the result stays blocked for the next conv; a
// ResNet's identity shortcut after a plain max-pool is such a case). Otherwise every operand is
// read plain. Kept results get their padding zeroed again. The same holds for the half types, and
// for channels-last layouts.
#include <cmath>
#include <type_traits>

#include "core/int_cast.h"
#include "cpu/device.h"
#include "cpu/elementwise.h"
#include "cpu/layout.h"
#include "cpu/operands.h"

namespace nodegrad::cpu {
namespace {

// Fills ops[i] with args[i] as the kernel computes on it; returns the blocked layout's buffer, or
// null when every operand is read plain (always for a result of another dtype than that buffer's).
template <size_t N>
const Buffer* keptLayout(const TensorRef* const (&args)[N], DType out, Operand (&ops)[N]) {
  const Buffer* ref = nullptr;
  for (auto* t : args) {
    if (blockedAsIs(*t) && !ref) ref = t->buf;
  }
  auto same = [&](const TensorRef& t) { return blockedAsIs(t) && t.buf->block == ref->block && t.buf->dims == ref->dims; };
  bool ok = ref != nullptr && out == ref->dtype;
  for (auto* t : args) {
    if (!ok) break;
    const bool blockable = t->buf->block == 0 && t->dtype == ref->dtype && t->shape == ref->dims;
    ok = same(*t) || blockable || (t->numel() == 1 && t->shape.size() <= 4);
  }
  for (size_t i = 0; i < N; i++) {
    const TensorRef& t = *args[i];
    ops[i] = ok && same(t) ? asStored(t) : ok && t.numel() != 1 ? blockedLike(t, *ref) : plain(t);
  }
  return ok ? ref : nullptr;
}

// The shape a kept operand is computed under: the whole stored buffer, or one element.
Shape storedShape(const Operand& t, DType dtype) { return {t.buf->block ? int64_t(t.buf->bytes / elementSize(dtype)) : 1}; }

// A result in `ref`'s layout (null: plain), seen under `shape`.
Tensor result(const Buffer* ref, const Shape& shape, DType dtype) {
  if (!ref) return newTensor(shape, dtype);
  Tensor t = newBlocked(ref->dims, ref->block, dtype);
  t.shape = shape;
  return t;
}

// Elements the loops run over: the stored buffer's, padding included, when kept.
int64_t storedNumel(const Tensor& t) { return int64_t(t.buf->bytes / elementSize(t.dtype)); }

void finishKept(const Buffer* ref, Tensor& out) {
  if (ref) zeroBlockPadding(ref->dims, ref->block, elementSize(out.dtype), out.buf->data);
}

Tensor unaryKernel(UnaryOp op, const TensorRef& x) {
  requireReal(x.dtype, "x");
  Operand ops[1];
  const Buffer* ref = keptLayout({&x}, x.dtype, ops);
  Tensor y = result(ref, x.shape, x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, unary(op, ops[0].data<T>(), y.buf->as<T>(), storedNumel(y));)
  finishKept(ref, y);
  return y;
}

Tensor binaryKernel(BinaryOp op, const TensorRef& a, const TensorRef& b) {
  requireReal(a.dtype, "a");
  const Shape so = broadcastShapes(a.shape, b.shape);
  Operand ops[2];
  const Buffer* ref = keptLayout({&a, &b}, a.dtype, ops);
  Tensor out = result(ref, so, a.dtype);
  const Shape sa = ref ? storedShape(ops[0], a.dtype) : a.shape, sb = ref ? storedShape(ops[1], b.dtype) : b.shape;
  const Shape sOut = ref ? Shape{storedNumel(out)} : so;
  NG_FLOAT_DISPATCH(a.dtype, binary(op, ops[0].data<T>(), sa, ops[1].data<T>(), sb, out.buf->as<T>(), sOut);)
  finishKept(ref, out);
  return out;
}

Tensor binaryScalarKernel(BinaryOp op, const TensorRef& x, const TensorRef& s, bool scalarFirst) {
  Operand ops[1];
  const Buffer* ref = keptLayout({&x}, x.dtype, ops);
  Tensor out = result(ref, x.shape, x.dtype);
  const float v = plain(s).f32()[0];
  const int64_t n = storedNumel(out);
  // x is half (the binding's check).
  if (x.dtype == DType::BF16) binaryScalar(op, ops[0].data<BFloat16>(), v, scalarFirst, out.buf->as<BFloat16>(), n);
  else binaryScalar(op, ops[0].data<Float16>(), v, scalarFirst, out.buf->as<Float16>(), n);
  finishKept(ref, out);
  return out;
}

Tensor whereKernel(const TensorRef& c, const TensorRef& a, const TensorRef& b) {
  requireReal(a.dtype, "a");
  const Shape so = broadcastShapes(broadcastShapes(c.shape, a.shape), b.shape);
  Operand ops[3];
  const Buffer* ref = keptLayout({&c, &a, &b}, a.dtype, ops);
  Tensor out = result(ref, so, a.dtype);
  const Shape sc = ref ? storedShape(ops[0], c.dtype) : c.shape, sa = ref ? storedShape(ops[1], a.dtype) : a.shape,
              sb = ref ? storedShape(ops[2], b.dtype) : b.shape;
  const Shape sOut = ref ? Shape{storedNumel(out)} : so;
  NG_FLOAT_DISPATCH(a.dtype, {
    const T *pa = ops[1].data<T>(), *pb = ops[2].data<T>();
    T* o = out.buf->as<T>();
    auto pick = [&](const auto* cond) { where(cond, sc, pa, sa, pb, sb, o, sOut); };
    switch (c.dtype) {
      case DType::F32: pick(ops[0].data<float>()); break;
      case DType::I32: pick(ops[0].data<int32_t>()); break;
      case DType::BF16: pick(ops[0].data<BFloat16>()); break;
      case DType::F16: pick(ops[0].data<Float16>()); break;
      default: pick(ops[0].data<double>()); break;
    }
  })
  finishKept(ref, out);
  return out;
}

Tensor clampKernel(const TensorRef& x, double lo, double hi) {
  requireReal(x.dtype, "x");
  Operand ops[1];
  const Buffer* ref = keptLayout({&x}, x.dtype, ops);
  Tensor y = result(ref, x.shape, x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, clamp(ops[0].data<T>(), y.buf->as<T>(), storedNumel(y), lo, hi);)
  finishKept(ref, y);
  return y;
}

Tensor activationKernel(ActivationOp op, const TensorRef& x, double a, double b) {
  requireReal(x.dtype, "x");
  Operand ops[1];
  const Buffer* ref = keptLayout({&x}, x.dtype, ops);
  Tensor y = result(ref, x.shape, x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, activation(op, ops[0].data<T>(), y.buf->as<T>(), storedNumel(y), a, b);)
  finishKept(ref, y);
  return y;
}

template <typename S, typename D>
void convert(const void* src, void* dst, size_t n) {
  auto* s = static_cast<const S*>(src);
  auto* d = static_cast<D*>(dst);
  for (size_t i = 0; i < n; i++) d[i] = D(s[i]);
}

// To an integer dtype, each value through f (core/int_cast.h), from its double.
template <typename S, typename D, typename F>
void convertInt(const void* src, void* dst, size_t n, F f) {
  auto* s = static_cast<const S*>(src);
  auto* d = static_cast<D*>(dst);
  for (size_t i = 0; i < n; i++) d[i] = f(double(s[i]));
}

// Any dtype to any dtype; to an integer as PyTorch (core/int_cast.h), as the 'ts' backend. A half
// result is the value rounded to float32, then to the type (float64 -> bfloat16 rounds twice, as
// the 'ts' backend's Float32Array does).
Tensor castKernel(const TensorRef& x, DType to) {
  Operand xp = plain(x);
  Tensor y = newTensor(x.shape, to);
  const size_t n = x.numel();
  const void* s = xp.buf->data;
  void* d = y.buf->data;
  if (x.dtype == DType::F32 && isHalf(to)) {
    narrow(to, static_cast<const float*>(s), d, n);
    return y;
  }
  if (isHalf(x.dtype) && to == DType::F32) {
    widen(x.dtype, s, static_cast<float*>(d), n);
    return y;
  }
  auto from = [&](auto* tag) {
    using S = std::remove_pointer_t<decltype(tag)>;
    switch (to) {
      case DType::F32: convert<S, float>(s, d, n); break;
      case DType::F64: convert<S, double>(s, d, n); break;
      case DType::I64: convertInt<S, double>(s, d, n, floatToInt64); break;
      case DType::I32:
        if (x.dtype == DType::I64) convertInt<S, int32_t>(s, d, n, int64ToInt32);
        else convertInt<S, int32_t>(s, d, n, floatToInt32);
        break;
      case DType::BF16: convert<S, BFloat16>(s, d, n); break;
      case DType::F16: convert<S, Float16>(s, d, n); break;
    }
  };
  switch (x.dtype) {
    case DType::F32: from(static_cast<float*>(nullptr)); break;
    case DType::F64: case DType::I64: from(static_cast<double*>(nullptr)); break;
    case DType::I32: from(static_cast<int32_t*>(nullptr)); break;
    case DType::BF16: from(static_cast<BFloat16*>(nullptr)); break;
    case DType::F16: from(static_cast<Float16*>(nullptr)); break;
  }
  return y;
}

}  // namespace

void addElementwiseKernels(KernelTable& t) {
  t.unary = unaryKernel;
  t.binary = binaryKernel;
  t.binaryScalar = binaryScalarKernel;
  t.where = whereKernel;
  t.clamp = clampKernel;
  t.activation = activationKernel;
  t.cast = castKernel;
}

}  // namespace nodegrad::cpu
