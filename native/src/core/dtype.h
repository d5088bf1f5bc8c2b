// Element types as every device stores them. int64 is held as double, like the 'ts' backend's
// Float64Array: exact below 2^53, and read back without a conversion.
#pragma once
#include <cstddef>
#include <string>

namespace nodegrad {

enum class DType { F32, F64, I32, I64 };

size_t elementSize(DType d);
// Throws std::runtime_error naming `op` for a name that is not a dtype.
DType parseDType(const std::string& s, const char* op);
const char* dtypeName(DType d);

}  // namespace nodegrad

// Runs body with T = float for float32 tensors, T = double for float64 and int64 ones.
#define NG_REAL_DISPATCH(dtype, ...)           \
  if ((dtype) == ::nodegrad::DType::F32) {     \
    using T = float;                           \
    __VA_ARGS__                                \
  } else {                                     \
    using T = double;                          \
    __VA_ARGS__                                \
  }
