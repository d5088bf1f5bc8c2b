// BatchMatMul on cuBLAS: [B, M, K] x [B, K, N] -> [B, M, N] in float32, float64, bfloat16 or
// float16 (half operands and result, float32 accumulation: tensor cores; C rounded once, as on
// 'cpu'), row-major, the transposes of the last two dims read in place. cuBLAS is column-major, and a row-major matrix
// read column-major is its transpose, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T:
// the operands swap places and keep their own op. TF32 follows flags().tf32Matmul (off by
// default, as torch.backends.cuda.matmul.allow_tf32).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/check.h"
#include "cuda/context.h"
#include "cuda/device.h"
#include "cuda/flags.h"

namespace nodegrad::cuda {
namespace {

Tensor batchMatMul(const TensorRef& a, const TensorRef& b, bool transA, bool transB) {
  if (a.dtype == DType::I32 || a.dtype == DType::I64) {
    throw std::runtime_error(std::string("'cuda' computes matmul in the float types, not ") + dtypeName(a.dtype));
  }
  const int64_t batch = a.shape[0];
  const int64_t m = transA ? a.shape[2] : a.shape[1], k = transA ? a.shape[1] : a.shape[2];
  const int64_t n = transB ? b.shape[1] : b.shape[2];
  Tensor c = empty({batch, m, n}, a.dtype);
  if (batch == 0 || m == 0 || n == 0) return c;
  const size_t bytes = size_t(batch * m * n) * elementSize(a.dtype);
  if (k == 0) {
    NG_CUDA(cudaMemsetAsync(c.buf->data, 0, bytes, current().stream));
    return c;
  }
  // cuBLAS takes sizes and leading dimensions as int.
  for (int64_t d : {batch, m, n, k, a.shape[2], b.shape[2]}) {
    if (d > INT32_MAX) throw std::invalid_argument("matmul on 'cuda': a dimension of " + std::to_string(d) + " is over cuBLAS's int limit");
  }
  // Leading dimensions of the stored (row-major) matrices: their row lengths.
  const int lda = int(a.shape[2]), ldb = int(b.shape[2]), ldc = int(n);
  const cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N, opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasHandle_t h = cublasHandle();
  if (a.dtype == DType::F32) {
    const float one = 1, zero = 0;
    const cublasComputeType_t compute = flags().tf32Matmul ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    NG_CUBLAS(cublasGemmStridedBatchedEx(h, opB, opA, int(n), int(m), int(k), &one, b.buf->data, CUDA_R_32F, ldb, k * n,
                                         a.buf->data, CUDA_R_32F, lda, m * k, &zero, c.buf->data, CUDA_R_32F, ldc, m * n,
                                         int(batch), compute, CUBLAS_GEMM_DEFAULT));
  } else if (isHalf(a.dtype)) {
    const float one = 1, zero = 0;
    const cudaDataType_t t = a.dtype == DType::BF16 ? CUDA_R_16BF : CUDA_R_16F;
    NG_CUBLAS(cublasGemmStridedBatchedEx(h, opB, opA, int(n), int(m), int(k), &one, b.buf->data, t, ldb, k * n,
                                         a.buf->data, t, lda, m * k, &zero, c.buf->data, t, ldc, m * n, int(batch),
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } else {
    const double one = 1, zero = 0;
    NG_CUBLAS(cublasGemmStridedBatchedEx(h, opB, opA, int(n), int(m), int(k), &one, b.buf->data, CUDA_R_64F, ldb, k * n,
                                         a.buf->data, CUDA_R_64F, lda, m * k, &zero, c.buf->data, CUDA_R_64F, ldc, m * n,
                                         int(batch), CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT));
  }
  return c;
}

}  // namespace

void addMatmulKernels(KernelTable& t) { t.batchMatMul = batchMatMul; }

}  // namespace nodegrad::cuda
