// Element types as every device stores them. int64 is held as double, like the 'ts' backend's
// Float64Array: exact below 2^53, and read back without a conversion. bfloat16 and float16 are held
// as their 2-byte bit patterns (core/half.h); JS hands them in and reads them back as float32.
#pragma once
#include <cstddef>
#include <string>

namespace nodegrad {

enum class DType { F32, F64, I32, I64, BF16, F16 };

size_t elementSize(DType d);
// Throws std::runtime_error naming `op` for a name that is not a dtype.
DType parseDType(const std::string& s, const char* op);
const char* dtypeName(DType d);
inline bool isHalf(DType d) { return d == DType::BF16 || d == DType::F16; }

}  // namespace nodegrad

// Runs body with T = float for float32 tensors, T = double for float64 and int64 ones. Not for the
// half types: NG_FLOAT_DISPATCH (core/half.h) covers them.
#define NG_REAL_DISPATCH(dtype, ...)           \
  if ((dtype) == ::nodegrad::DType::F32) {     \
    using T = float;                           \
    __VA_ARGS__                                \
  } else {                                     \
    using T = double;                          \
    __VA_ARGS__                                \
  }
