// Batched matrix multiply on oneDNN's matmul primitive: C[b] = op(A[b]) · op(B[b]), row-major,
// where op transposes the last two dims when asked. Transposes are strides, never copies.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace nodegrad::cpu {

struct MatmulDims {
  int64_t batch, m, k, n;
  bool transA, transB;
};

// a is [batch, m, k] ([batch, k, m] when transA), b is [batch, k, n] ([batch, n, k] when transB),
// c is [batch, m, n], all of dtype dt: float32, or bfloat16 (oneDNN's bf16 matmul: float32
// accumulation, c rounded once), or float16 where the linked oneDNN has it (else an error saying
// what it needs). Throws 'built without oneDNN' when oneDNN is not linked. cType, when given, is
// c's dtype instead (float32 c from half a and b: the accumulation, unrounded).
void batchMatmul(const MatmulDims& d, DType dt, const void* a, const void* b, void* c);
void batchMatmul(const MatmulDims& d, DType dt, DType cType, const void* a, const void* b, void* c);

}  // namespace nodegrad::cpu
