// Shapes as every device sees them: row-major sizes, outermost first.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nodegrad {

using Shape = std::vector<int64_t>;

inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// "[1, 2, 3]", for error messages that name shapes as the 'ts' backend's do.
inline std::string fmtShape(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace nodegrad
