// Elementwise kernels on the device: Unary, Binary (PyTorch broadcasting), Where, Clamp and Cast,
// with the 'cpu' kernels' semantics and core/elementwise_math.h's per-element math, one
// instantiation per op. A half element is widened to what the 'cpu' kernels compute it in
// (math::HalfUnaryIn / HalfBinaryIn: float, or double for the transcendental ops) and the result
// rounded once on store, so both devices give the 'ts' reference's bits. Operands of the result's
// size are read by index; a single element is read in place; anything else maps each output index
// to its operands' offsets (stride 0 on a broadcast dim), dims merged first where every operand
// steps through them as through one.
#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/elementwise_math.h"
#include "core/half.h"
#include "core/int_cast.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace nodegrad::cuda {
namespace {

// The dtypes these kernels compute in, as on 'cpu': int32 holds indices only.
void requireReal(DType d, const char* name) {
  if (d == DType::I32) {
    throw std::runtime_error(std::string("argument '") + name + "' is int32; the 'cuda' backend computes this kernel " +
                             "in float32, float64 and int64 (use .to('int64') or .to('float32'))");
  }
}

// Broadcasting as in PyTorch: shapes align from the right; a size-1 dim repeats.
Shape broadcastShapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; i++) {
    const int64_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    const int64_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    if (da != db && da != 1 && db != 1) throw std::runtime_error("shapes cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Strides of `s` seen from `out` (0 on broadcast dims).
std::vector<int64_t> broadcastStrides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t acc = 1;
  const size_t lead = out.size() - s.size();
  for (size_t i = s.size(); i-- > 0;) {
    st[i + lead] = s[i] == 1 ? 0 : acc;
    acc *= s[i];
  }
  return st;
}

// Each operand's offsets over `out`'s indices. Size-1 dims are dropped and a dim is merged into
// the one outside it when every operand's outer stride is the inner one times the inner size, so
// that [N, C, H, W] + [1, C, 1, 1] walks three dims, not four.
template <size_t N>
std::array<StridedIndex, N> stridedOperands(const Shape& out, const std::array<const Shape*, N>& in) {
  std::array<std::vector<int64_t>, N> st;
  for (size_t k = 0; k < N; k++) st[k] = broadcastStrides(*in[k], out);
  Shape size;
  std::vector<std::array<int64_t, N>> stride;
  for (size_t d = 0; d < out.size(); d++) {
    if (out[d] == 1) continue;
    bool merge = !size.empty();
    for (size_t k = 0; k < N && merge; k++) merge = stride.back()[k] == st[k][d] * out[d];
    std::array<int64_t, N> s;
    for (size_t k = 0; k < N; k++) s[k] = st[k][d];
    if (merge) {
      size.back() *= out[d];
      stride.back() = s;
    } else {
      size.push_back(out[d]);
      stride.push_back(s);
    }
  }
  if (size.size() > size_t(kMaxDims)) {
    throw std::runtime_error("the 'cuda' backend broadcasts over at most " + std::to_string(kMaxDims) +
                             " dims (after merging), got output " + fmtShape(out));
  }
  std::array<StridedIndex, N> idx;
  for (size_t k = 0; k < N; k++) {
    idx[k].rank = int(size.size());
    for (size_t d = 0; d < size.size(); d++) {
      idx[k].size[d] = size[d];
      idx[k].stride[d] = stride[d][k];
    }
  }
  return idx;
}

template <UnaryOp OP, typename T>
void unaryOn(const T* x, T* y, int64_t n) {
  if constexpr (kHalf<T>) {
    using C = math::HalfUnaryIn<OP>;
    forEach(n, [=] NG_DEVICE(int64_t i) { y[i] = T(math::unary<OP>(C(float(x[i])))); }, "Unary");
  } else {
    forEach(n, [=] NG_DEVICE(int64_t i) { y[i] = math::unary<OP>(x[i]); }, "Unary");
  }
}

template <typename T>
void unaryAs(UnaryOp op, const T* x, T* y, int64_t n) {
#define NG_UNARY_ON(OP) unaryOn<OP>(x, y, n)
  NG_UNARY_SWITCH(op, NG_UNARY_ON)
#undef NG_UNARY_ON
}

Tensor unary(UnaryOp op, const TensorRef& x) {
  requireReal(x.dtype, "x");
  Tensor y = empty(x.shape, x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, unaryAs(op, x.buf->as<T>(), y.buf->as<T>(), numel(x.shape));)
  return y;
}

// op(x, y) for one element pair, a half pair in HalfBinaryIn and rounded once.
template <BinaryOp OP, typename T>
NG_HD T binaryOf(T x, T y) {
  if constexpr (kHalf<T>) {
    using C = math::HalfBinaryIn<OP>;
    return T(math::binary<OP>(C(float(x)), C(float(y))));
  } else {
    return math::binary<OP>(x, y);
  }
}

template <BinaryOp OP, typename T>
void binaryOn(const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so) {
  const int64_t n = numel(so), na = numel(sa), nb = numel(sb);
  if (na == n && nb == n) {
    forEach(n, [=] NG_DEVICE(int64_t i) { out[i] = binaryOf<OP>(a[i], b[i]); }, "Binary");
  } else if (nb == 1 && na == n) {
    forEach(n, [=] NG_DEVICE(int64_t i) { out[i] = binaryOf<OP>(a[i], b[0]); }, "BinaryScalar");
  } else if (na == 1 && nb == n) {
    forEach(n, [=] NG_DEVICE(int64_t i) { out[i] = binaryOf<OP>(a[0], b[i]); }, "BinaryScalar");
  } else {
    const auto idx = stridedOperands<2>(so, {&sa, &sb});
    const StridedIndex ia = idx[0], ib = idx[1];
    forEach(n, [=] NG_DEVICE(int64_t i) { out[i] = binaryOf<OP>(a[ia.offset(i)], b[ib.offset(i)]); },
            "BinaryBroadcast");
  }
}

template <typename T>
void binaryAs(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so) {
#define NG_BINARY_ON(OP) binaryOn<OP>(a, sa, b, sb, out, so)
  NG_BINARY_SWITCH(op, NG_BINARY_ON)
#undef NG_BINARY_ON
}

Tensor binary(BinaryOp op, const TensorRef& a, const TensorRef& b) {
  requireReal(a.dtype, "a");
  const Shape so = broadcastShapes(a.shape, b.shape);
  Tensor out = empty(so, a.dtype);
  NG_FLOAT_DISPATCH(a.dtype, binaryAs(op, a.buf->as<T>(), a.shape, b.buf->as<T>(), b.shape, out.buf->as<T>(), so);)
  return out;
}

// A half x beside a float32 scalar read on the device: op(x, s) or op(s, x), rounded once.
template <BinaryOp OP, typename T>
void binaryScalarOn(const T* x, const float* s, bool scalarFirst, T* out, int64_t n) {
  using C = math::HalfBinaryIn<OP>;
  if (scalarFirst) {
    forEach(n, [=] NG_DEVICE(int64_t i) { out[i] = T(math::binary<OP>(C(s[0]), C(float(x[i])))); }, "BinaryScalar");
  } else {
    forEach(n, [=] NG_DEVICE(int64_t i) { out[i] = T(math::binary<OP>(C(float(x[i])), C(s[0]))); }, "BinaryScalar");
  }
}

template <typename T>
void binaryScalarAs(BinaryOp op, const T* x, const float* s, bool scalarFirst, T* out, int64_t n) {
#define NG_BINARY_SCALAR_ON(OP) binaryScalarOn<OP>(x, s, scalarFirst, out, n)
  NG_BINARY_SWITCH(op, NG_BINARY_SCALAR_ON)
#undef NG_BINARY_SCALAR_ON
}

Tensor binaryScalar(BinaryOp op, const TensorRef& x, const TensorRef& s, bool scalarFirst) {
  Tensor out = empty(x.shape, x.dtype);
  const float* sv = s.buf->as<float>();
  const int64_t n = numel(x.shape);
  if (x.dtype == DType::BF16) binaryScalarAs(op, x.buf->as<BFloat16>(), sv, scalarFirst, out.buf->as<BFloat16>(), n);
  else binaryScalarAs(op, x.buf->as<Float16>(), sv, scalarFirst, out.buf->as<Float16>(), n);
  return out;
}

// C is the condition's element type (any dtype: nonzero selects a).
template <typename C, typename T>
void whereOn(const C* c, const Shape& sc, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out,
             const Shape& so) {
  const int64_t n = numel(so);
  if (numel(sc) == n && numel(sa) == n && numel(sb) == n) {
    forEach(n, [=] NG_DEVICE(int64_t i) { out[i] = c[i] != 0 ? a[i] : b[i]; }, "Where");
  } else {
    const auto idx = stridedOperands<3>(so, {&sc, &sa, &sb});
    const StridedIndex ic = idx[0], ia = idx[1], ib = idx[2];
    forEach(n, [=] NG_DEVICE(int64_t i) { out[i] = c[ic.offset(i)] != 0 ? a[ia.offset(i)] : b[ib.offset(i)]; },
            "WhereBroadcast");
  }
}

Tensor where(const TensorRef& c, const TensorRef& a, const TensorRef& b) {
  requireReal(a.dtype, "a");
  const Shape so = broadcastShapes(broadcastShapes(c.shape, a.shape), b.shape);
  Tensor out = empty(so, a.dtype);
  NG_FLOAT_DISPATCH(a.dtype, {
    const T *pa = a.buf->as<T>(), *pb = b.buf->as<T>();
    T* o = out.buf->as<T>();
    if (c.dtype == DType::F32) whereOn(c.buf->as<float>(), c.shape, pa, a.shape, pb, b.shape, o, so);
    else if (c.dtype == DType::I32) whereOn(c.buf->as<int32_t>(), c.shape, pa, a.shape, pb, b.shape, o, so);
    else if (c.dtype == DType::BF16) whereOn(c.buf->as<BFloat16>(), c.shape, pa, a.shape, pb, b.shape, o, so);
    else if (c.dtype == DType::F16) whereOn(c.buf->as<Float16>(), c.shape, pa, a.shape, pb, b.shape, o, so);
    else whereOn(c.buf->as<double>(), c.shape, pa, a.shape, pb, b.shape, o, so);
  })
  return out;
}

// A half element computes in double here with the bounds and parameters as given (as on 'cpu').
template <typename T>
using ParamOf = std::conditional_t<kHalf<T>, double, T>;

template <typename T>
void clampOn(const T* x, T* y, int64_t n, ParamOf<T> lo, ParamOf<T> hi) {
  forEach(n, [=] NG_DEVICE(int64_t i) { y[i] = T(math::clamp(ParamOf<T>(x[i]), lo, hi)); }, "Clamp");
}

Tensor clamp(const TensorRef& x, double lo, double hi) {
  requireReal(x.dtype, "x");
  Tensor y = empty(x.shape, x.dtype);
  NG_FLOAT_DISPATCH(x.dtype, clampOn(x.buf->as<T>(), y.buf->as<T>(), numel(x.shape), ParamOf<T>(lo), ParamOf<T>(hi));)
  return y;
}

template <ActivationOp OP, typename T>
void activationOn(const T* x, T* y, int64_t n, ParamOf<T> a, ParamOf<T> b) {
  forEach(n, [=] NG_DEVICE(int64_t i) { y[i] = T(math::activation<OP>(ParamOf<T>(x[i]), a, b)); }, "Activation");
}

Tensor activation(ActivationOp op, const TensorRef& x, double a, double b) {
  requireReal(x.dtype, "x");
  Tensor y = empty(x.shape, x.dtype);
#define NG_ACTIVATION_ON(OP) activationOn<OP>(x.buf->as<T>(), y.buf->as<T>(), numel(x.shape), ParamOf<T>(a), ParamOf<T>(b))
  NG_FLOAT_DISPATCH(x.dtype, NG_ACTIVATION_SWITCH(op, NG_ACTIVATION_ON))
#undef NG_ACTIVATION_ON
  return y;
}

// The 'cpu' conversion: to an integer as PyTorch (core/int_cast.h: toward zero; NaN, inf and out
// of range the type's minimum; int64 -> int32 wraps); a half type is made from a float32 directly
// and from any other type through float32 (core/half.h).
enum class ToInt { No, Int64, Int32, Int32Wrap };

template <typename D, typename S>
NG_HD D convert(S v, ToInt mode) {
  double w;
  if constexpr (kHalf<S>) w = double(float(v));
  else w = double(v);
  if constexpr (std::is_same_v<D, int32_t>) return mode == ToInt::Int32Wrap ? int64ToInt32(w) : floatToInt32(w);
  else if constexpr (std::is_same_v<D, double>) return mode == ToInt::Int64 ? floatToInt64(w) : w;
  else if constexpr (kHalf<S>) return D(float(v));
  else return D(v);
}

template <typename S, typename D>
void castOn(const void* src, void* dst, int64_t n, ToInt mode) {
  const S* s = static_cast<const S*>(src);
  D* d = static_cast<D*>(dst);
  forEach(n, [=] NG_DEVICE(int64_t i) { d[i] = convert<D>(s[i], mode); }, "Cast");
}

template <typename S>
void castFrom(const void* src, void* dst, int64_t n, DType from, DType to) {
  switch (to) {
    case DType::F32: castOn<S, float>(src, dst, n, ToInt::No); break;
    case DType::F64: castOn<S, double>(src, dst, n, ToInt::No); break;
    case DType::I64: castOn<S, double>(src, dst, n, ToInt::Int64); break;
    case DType::I32: castOn<S, int32_t>(src, dst, n, from == DType::I64 ? ToInt::Int32Wrap : ToInt::Int32); break;
    case DType::BF16: castOn<S, BFloat16>(src, dst, n, ToInt::No); break;
    case DType::F16: castOn<S, Float16>(src, dst, n, ToInt::No); break;
  }
}

// Any dtype to any dtype.
Tensor cast(const TensorRef& x, DType to) {
  Tensor y = empty(x.shape, to);
  const int64_t n = numel(x.shape);
  switch (x.dtype) {
    case DType::F32: castFrom<float>(x.buf->data, y.buf->data, n, x.dtype, to); break;
    case DType::F64: case DType::I64: castFrom<double>(x.buf->data, y.buf->data, n, x.dtype, to); break;
    case DType::I32: castFrom<int32_t>(x.buf->data, y.buf->data, n, x.dtype, to); break;
    case DType::BF16: castFrom<BFloat16>(x.buf->data, y.buf->data, n, x.dtype, to); break;
    case DType::F16: castFrom<Float16>(x.buf->data, y.buf->data, n, x.dtype, to); break;
  }
  return y;
}

}  // namespace

Tensor castTo(const TensorRef& x, DType to) { return cast(x, to); }

void addElementwiseKernels(KernelTable& t) {
  t.unary = unary;
  t.binary = binary;
  t.binaryScalar = binaryScalar;
  t.where = where;
  t.clamp = clamp;
  t.activation = activation;
  t.cast = cast;
}

}  // namespace nodegrad::cuda
