// Conversions to the integer dtypes, shared by the 'cpu' and 'cuda' kernels (int64 is held as a
// double). As PyTorch on x86: a float truncates toward zero, and NaN, the infinities and values
// outside the type's range become its minimum (the "integer indefinite" cvttsd2si writes); an
// int64 narrowed to int32 wraps modulo 2^32.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/hd.h"

namespace nodegrad {

NG_HD double floatToInt64(double v) {
  using std::trunc;  // under nvcc, the device overload
  return (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? trunc(v) + 0.0 : -9223372036854775808.0;
}

NG_HD int32_t floatToInt32(double v) {
  return (v > -2147483649.0 && v < 2147483648.0) ? int32_t(v) : INT32_MIN;
}

NG_HD int32_t int64ToInt32(double v) {
  return int32_t(uint32_t(uint64_t(int64_t(v))));
}

}  // namespace nodegrad
