// BatchMatMul on cuBLAS, float32 and float64. cuBLAS is column-major: a row-major [M, N] product
// C = op(A) · op(B) is the column-major [N, M] product C^T = op(B)^T · op(A)^T, so the operands go
// in swapped and each is read in place (a transpose is cuBLAS's op flag, never a copy). float32
// uses TF32 tensor cores only when cuda.matmul TF32 is on (PyTorch's default is off).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "cuda/check.h"
#include "cuda/context.h"
#include "cuda/device.h"
#include "cuda/flags.h"

namespace nodegrad::cuda {
namespace {

int asInt(int64_t v, const char* what, const TensorRef& a, const TensorRef& b) {
  if (v > INT_MAX) {
    throw std::runtime_error(std::string(what) + " " + std::to_string(v) + " of " + fmtShape(a.shape) + " x " +
                             fmtShape(b.shape) + " exceeds cuBLAS's int range");
  }
  return int(v);
}

Tensor batchMatMul(const TensorRef& a, const TensorRef& b, bool ta, bool tb) {
  if (a.dtype != b.dtype || (a.dtype != DType::F32 && a.dtype != DType::F64)) {
    throw std::runtime_error(std::string("operands are ") + dtypeName(a.dtype) + " and " + dtypeName(b.dtype) +
                             "; the 'cuda' backend computes this kernel in float32 or float64");
  }
  const int64_t batch = a.shape[0], m = ta ? a.shape[2] : a.shape[1], k = ta ? a.shape[1] : a.shape[2];
  const int64_t n = tb ? b.shape[1] : b.shape[2];
  Tensor c = empty({batch, m, n}, a.dtype);
  if (batch == 0 || m == 0 || n == 0) return c;
  if (k == 0) {
    NG_CUDA(cudaMemsetAsync(c.buf->data, 0, c.buf->bytes, current().stream));
    return c;
  }
  const int M = asInt(m, "M", a, b), N = asInt(n, "N", a, b), K = asInt(k, "K", a, b);
  const int B = asInt(batch, "batch", a, b);
  // Column-major views: b as [N, K] (ld N) or, transposed, [K, N] (ld K); a as [K, M] (ld K) or [M, K] (ld M).
  const cublasOperation_t opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldb = tb ? K : N, lda = ta ? M : K;
  const long long strideA = m * k, strideB = k * n, strideC = m * n;
  cublasHandle_t h = cublasHandle();
  if (a.dtype == DType::F32) {
    const float one = 1, zero = 0;
    const cublasComputeType_t compute = flags().tf32Matmul ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    NG_CUBLAS(cublasGemmStridedBatchedEx(h, opB, opA, N, M, K, &one, b.buf->data, CUDA_R_32F, ldb, strideB,
                                         a.buf->data, CUDA_R_32F, lda, strideA, &zero, c.buf->data, CUDA_R_32F, N,
                                         strideC, B, compute, CUBLAS_GEMM_DEFAULT));
  } else {
    const double one = 1, zero = 0;
    NG_CUBLAS(cublasGemmStridedBatchedEx(h, opB, opA, N, M, K, &one, b.buf->data, CUDA_R_64F, ldb, strideB,
                                         a.buf->data, CUDA_R_64F, lda, strideA, &zero, c.buf->data, CUDA_R_64F, N,
                                         strideC, B, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT));
  }
  return c;
}

}  // namespace

void addMatmulKernels(KernelTable& t) { t.batchMatMul = batchMatMul; }

}  // namespace nodegrad::cuda
