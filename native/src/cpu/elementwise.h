// Elementwise float32 kernels over contiguous buffers, with PyTorch broadcasting.
#pragma once
#include "cpu/broadcast.h"

namespace nodegrad::cpu {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Relu, Sigmoid, Tanh };
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };

void unary(UnaryOp op, const float* x, float* y, int64_t n);
void binary(BinaryOp op, const float* a, const Shape& sa, const float* b, const Shape& sb, float* out, const Shape& so);
void where(const float* c, const Shape& sc, const float* a, const Shape& sa, const float* b, const Shape& sb,
           float* out, const Shape& so);
void clamp(const float* x, float* y, int64_t n, float lo, float hi);

}  // namespace nodegrad::cpu
