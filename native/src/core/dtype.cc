#include "core/dtype.h"

#include <stdexcept>

namespace nodegrad {

size_t elementSize(DType d) { return d == DType::F32 || d == DType::I32 ? 4 : 8; }

DType parseDType(const std::string& s, const char* op) {
  if (s == "float32") return DType::F32;
  if (s == "float64") return DType::F64;
  if (s == "int32") return DType::I32;
  if (s == "int64") return DType::I64;
  throw std::runtime_error(std::string(op) + ": unknown dtype '" + s + "'");
}

const char* dtypeName(DType d) {
  switch (d) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
  }
  return "?";
}

}  // namespace nodegrad
