// Elementwise kernels over contiguous buffers, with PyTorch broadcasting; T is float or double
// (double also holds int64, as on the 'ts' backend).
#pragma once
#include "cpu/broadcast.h"

namespace nodegrad::cpu {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Relu, Sigmoid, Tanh };
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };

template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n);
template <typename T>
void binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so);
// C is the condition's element type (any dtype: nonzero selects a).
template <typename C, typename T>
void where(const C* c, const Shape& sc, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so);
template <typename T>
void clamp(const T* x, T* y, int64_t n, T lo, T hi);

}  // namespace nodegrad::cpu
