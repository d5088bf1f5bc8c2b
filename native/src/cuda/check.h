// Every CUDA, cuDNN and cuBLAS status is checked and turned into an exception naming the call and
// the library's status string; the bindings make it a JS error naming the kernel (NG_KERNEL).
#pragma once

namespace nodegrad::cuda {

// Throw std::runtime_error("<call>: <status string> (<name or code>)") unless the status is success.
void checkCuda(int status, const char* call);
void checkCudnn(int status, const char* call);
void checkCublas(int status, const char* call);
// After a kernel launch: the launch's own error (bad configuration, no kernel image for the GPU).
void checkLaunch(const char* kernel);

}  // namespace nodegrad::cuda

#define NG_CUDA(call) ::nodegrad::cuda::checkCuda(int(call), #call)
#define NG_CUDNN(call) ::nodegrad::cuda::checkCudnn(int(call), #call)
#define NG_CUBLAS(call) ::nodegrad::cuda::checkCublas(int(call), #call)
