// Elementwise kernels over contiguous buffers, with PyTorch broadcasting; T is float or double
// (double also holds int64, as on the 'ts' backend), or a half type (BFloat16, Float16): each
// element is widened, computed as the 'ts' reference computes it, and rounded once on store.
#pragma once
#include "core/half.h"
#include "core/params.h"
#include "cpu/broadcast.h"

namespace nodegrad::cpu {

template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n);
template <typename T>
void binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so);
// A half x (BFloat16, Float16) beside a float32 scalar s: op(x, s), or op(s, x) when scalarFirst,
// rounded once.
template <typename T>
void binaryScalar(BinaryOp op, const T* x, float s, bool scalarFirst, T* out, int64_t n);
// C is the condition's element type (any dtype: nonzero selects a).
template <typename C, typename T>
void where(const C* c, const Shape& sc, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so);
// lo and hi as given: a half x compares with them unrounded, as the 'ts' reference does.
template <typename T>
void clamp(const T* x, T* y, int64_t n, double lo, double hi);
// A half x computes in double, as the 'ts' reference computes every activation.
template <typename T>
void activation(ActivationOp op, const T* x, T* y, int64_t n, double a, double b);

}  // namespace nodegrad::cpu
