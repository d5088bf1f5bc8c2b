#include "cuda/check.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <stdexcept>
#include <string>

namespace nodegrad::cuda {

void checkCuda(int status, const char* call) {
  if (status == cudaSuccess) return;
  auto e = cudaError_t(status);
  // A sticky error (an illegal address in a kernel) stays with the context: say so, since every
  // later call will fail too.
  throw std::runtime_error(std::string(call) + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ", " +
                           std::to_string(status) + ")");
}

void checkCudnn(int status, const char* call) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(call) + ": " + cudnnGetErrorString(cudnnStatus_t(status)) + " (" +
                           std::to_string(status) + ")");
}

void checkCublas(int status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(call) + ": " + cublasGetStatusString(cublasStatus_t(status)) + " (" +
                           cublasGetStatusName(cublasStatus_t(status)) + ")");
}

void checkLaunch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) checkCuda(int(e), (std::string("launching ") + kernel).c_str());
}

}  // namespace nodegrad::cuda
