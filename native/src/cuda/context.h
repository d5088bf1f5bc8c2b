// One CUDA GPU as nodegrad uses it: its compute stream (every kernel and copy of the device is
// queued on it, in order), its caching allocator over cudaMalloc, pinned staging for host
// transfers, and its cuDNN and cuBLAS handles (made on first use). The bindings make a device
// current before its kernels run (DeviceMemory::activate), and the kernels ask for current().
#pragma once
#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "core/caching_allocator.h"
#include "core/tensor.h"

struct cudnnContext;
struct cublasContext;

namespace nodegrad::cuda {

// cudaMalloc / cudaFree on one GPU, for the caching allocator.
class GpuMemory : public SystemMemory {
 public:
  explicit GpuMemory(int index) : index_(index) {}
  void* allocate(size_t bytes) override;
  void release(void* p, size_t bytes) override;
  void info(size_t* freeBytes, size_t* totalBytes) override;

 private:
  int index_;
};

// A page-locked host buffer that grows, and the event after the last copy that used it.
struct Staging {
  void* host = nullptr;
  size_t bytes = 0;
  cudaEvent_t done = nullptr;
};

// Made without touching the GPU (registering 'cuda:N' costs nothing); start() makes the stream
// and events when the device is first activated, as PyTorch initializes CUDA lazily.
struct Context {
  explicit Context(int index);
  void start();
  int index;
  cudaStream_t stream = nullptr;
  GpuMemory system;
  CachingAllocator allocator;
  // Two upload buffers used in turn (an upload waits only for the copy before the previous one),
  // and one download buffer.
  Staging upload[2], download;
  int nextUpload = 0;
  cudnnContext* cudnn = nullptr;
  cublasContext* cublas = nullptr;
};

// The number of GPUs, or -1 with `why` set to the runtime's reason (no driver, no device).
int probeDevices(std::string* why);
// The context of GPU `index` (made on first use).
Context& context(int index);
// The calling thread's current device (the last activated; GPU 0 before any).
Context& current();
// DeviceMemory::activate: makes the allocator's GPU current for the calling thread.
void activate(Allocator& a);

// A new tensor on the current device (uninitialized).
Tensor empty(const Shape& shape, DType dtype);
// The cuDNN / cuBLAS handle of the current device, bound to its stream.
cudnnContext* cudnnHandle();
cublasContext* cublasHandle();

}  // namespace nodegrad::cuda
