#include "cuda/context.h"

#include <cublas_v2.h>
#include <cudnn.h>

#include <mutex>
#include <stdexcept>
#include <vector>

#include "cuda/check.h"

namespace nodegrad::cuda {
namespace {

// Makes a device current for a scope and then the one that was: calls for another device (its
// memory, its first start) must not leave it current under the context that activate() recorded.
class OnDevice {
 public:
  explicit OnDevice(int index) {
    NG_CUDA(cudaGetDevice(&previous_));
    if (previous_ != index) NG_CUDA(cudaSetDevice(index));
  }
  ~OnDevice() { cudaSetDevice(previous_); }
  OnDevice(const OnDevice&) = delete;
  OnDevice& operator=(const OnDevice&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace

void* GpuMemory::allocate(size_t bytes) {
  OnDevice on(index_);
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it: out of memory is not sticky, and the allocator may retry
    return nullptr;
  }
  NG_CUDA(e);
  return p;
}

void GpuMemory::release(void* p, size_t) {
  OnDevice on(index_);
  NG_CUDA(cudaFree(p));
}

void GpuMemory::info(size_t* freeBytes, size_t* totalBytes) {
  *freeBytes = *totalBytes = 0;
  int previous = 0;  // best effort, as statistics are: zeros rather than an error
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(index_) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  cudaMemGetInfo(freeBytes, totalBytes);
  cudaSetDevice(previous);
}

Context::Context(int i)
    : index(i), system(i), allocator("cuda:" + std::to_string(i), system, CachingAllocator::cachingByEnvironment()) {}

void Context::start() {
  if (stream) return;
  OnDevice on(index);
  NG_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (Staging* s : {&upload[0], &upload[1], &download}) NG_CUDA(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming));
}

int probeDevices(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ", " +
           std::to_string(int(e)) + ")";
    return -1;
  }
  if (n == 0) *why = "cudaGetDeviceCount found no GPU";
  return n;
}

namespace {

std::mutex contextsMu;
// Never destroyed: at process exit the CUDA runtime may already be torn down, and freeing device
// memory then would fail (the driver frees it with the process anyway).
std::vector<std::unique_ptr<Context>>& contexts() {
  static auto* v = new std::vector<std::unique_ptr<Context>>();
  return *v;
}
thread_local Context* currentContext = nullptr;

}  // namespace

Context& context(int index) {
  std::lock_guard<std::mutex> lock(contextsMu);
  auto& v = contexts();
  if (v.size() <= size_t(index)) v.resize(size_t(index) + 1);
  if (!v[size_t(index)]) v[size_t(index)] = std::make_unique<Context>(index);
  return *v[size_t(index)];
}

Context& current() {
  if (!currentContext) {
    Context& c = context(0);
    c.start();
    currentContext = &c;
  }
  return *currentContext;
}

void activate(Allocator& a) {
  if (currentContext && &currentContext->allocator == &a) return;
  Context* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(contextsMu);
    for (auto& ctx : contexts()) {
      if (ctx && &ctx->allocator == &a) c = ctx.get();
    }
  }
  if (!c) throw std::logic_error("activate: not a CUDA device's allocator");
  NG_CUDA(cudaSetDevice(c->index));
  c->start();
  currentContext = c;
}

Tensor empty(const Shape& shape, DType dtype) {
  return Tensor{newBuffer(current().allocator, size_t(numel(shape)), dtype), shape, dtype};
}

cudnnContext* cudnnHandle() {
  Context& c = current();
  if (!c.cudnn) {
    NG_CUDNN(cudnnCreate(&c.cudnn));
    NG_CUDNN(cudnnSetStream(c.cudnn, c.stream));
  }
  return c.cudnn;
}

cublasContext* cublasHandle() {
  Context& c = current();
  if (!c.cublas) {
    NG_CUBLAS(cublasCreate(&c.cublas));
    NG_CUBLAS(cublasSetStream(c.cublas, c.stream));
    // Half products accumulate in float32 to the end and round once, as on 'cpu': without this,
    // cuBLAS may sum split-K partial results in the half type.
    NG_CUBLAS(cublasSetMathMode(c.cublas, cublasMath_t(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  }
  return c.cublas;
}

}  // namespace nodegrad::cuda
