#include "core/dtype.h"

#include <stdexcept>

namespace nodegrad {

size_t elementSize(DType d) {
  if (isHalf(d)) return 2;
  return d == DType::F32 || d == DType::I32 ? 4 : 8;
}

DType parseDType(const std::string& s, const char* op) {
  if (s == "float32") return DType::F32;
  if (s == "float64") return DType::F64;
  if (s == "int32") return DType::I32;
  if (s == "int64") return DType::I64;
  if (s == "bfloat16") return DType::BF16;
  if (s == "float16") return DType::F16;
  throw std::runtime_error(std::string(op) + ": unknown dtype '" + s + "'");
}

const char* dtypeName(DType d) {
  switch (d) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::BF16: return "bfloat16";
    case DType::F16: return "float16";
  }
  return "?";
}

}  // namespace nodegrad
