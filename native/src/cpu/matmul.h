// Batched matrix multiply on oneDNN's matmul primitive: C[b] = op(A[b]) · op(B[b]), row-major,
// where op transposes the last two dims when asked. Transposes are strides, never copies.
#pragma once
#include <cstdint>

namespace nodegrad::cpu {

struct MatmulDims {
  int64_t batch, m, k, n;
  bool transA, transB;
};

// a is [batch, m, k] ([batch, k, m] when transA), b is [batch, k, n] ([batch, n, k] when transB),
// c is [batch, m, n]. Throws 'built without oneDNN' when oneDNN is not linked.
void batchMatmul(const MatmulDims& d, const float* a, const float* b, float* c);

}  // namespace nodegrad::cpu
