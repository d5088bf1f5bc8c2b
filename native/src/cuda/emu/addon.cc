// nodegrad_cuda_emu.node: the 'cuda' kernel families (src/cuda/*.cu) compiled for the host, as
// the 'cuda-emu' device, so that CI without a GPU runs their index arithmetic, dtype dispatch and
// checks through the whole parity suite against the 'ts' reference. forEach is a loop and device
// memory is host memory from the caching allocator (launch.h, NODEGRAD_CUDA_EMULATION); cuBLAS
// and cuDNN kernels (matmul.cc, conv.cc) are not emulated, so their table entries stay empty.
// Only tests load it (vitest.setup.ts); it is not a product backend.
#include <napi.h>

#include <cstdlib>
#include <cstring>

#include "bindings/kernels.h"
#include "core/caching_allocator.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace nodegrad::cuda {
namespace {

class HostMemory : public SystemMemory {
 public:
  void* allocate(size_t bytes) override { return std::malloc(bytes); }
  void release(void* p, size_t) override { std::free(p); }
  void info(size_t* freeBytes, size_t* totalBytes) override { *freeBytes = *totalBytes = 0; }
};

CachingAllocator& allocator() {
  static HostMemory memory;
  // NODEGRAD_CUDA_NO_CACHING=1 as on 'cuda:N': a tensor its own malloc, so a host memory checker
  // (ASan, valgrind) run over the emulated kernels sees an access past its end.
  static CachingAllocator a("cuda-emu", memory, CachingAllocator::cachingByEnvironment());
  return a;
}

Tensor upload(const void* host, size_t numel, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  if (numel) std::memcpy(t.buf->data, host, numel * elementSize(dtype));
  return t;
}

void download(const TensorRef& x, void* host) {
  if (x.buf->numel) std::memcpy(host, x.buf->data, x.buf->numel * elementSize(x.buf->dtype));
}

void copyInto(const TensorRef& dst, const TensorRef& src) {
  markWritten(*dst.buf);
  if (dst.buf != src.buf) copyOnDevice(dst.buf->data, src.buf->data, src.buf->numel * elementSize(src.buf->dtype));
}

void sync() {}

std::string layoutName(const Buffer&) { return "nchw"; }

const Device& emulatedDevice() {
  static const Device d = [] {
    Device dev{&allocator(), {upload, download, copyInto, sync, layoutName, nullptr}, {}};
    addElementwiseKernels(dev.kernels);
    addReduceKernels(dev.kernels);
    addMovementKernels(dev.kernels);
    addCreationKernels(dev.kernels);
    addPoolKernels(dev.kernels);
    addOptimKernels(dev.kernels);
    addNormKernels(dev.kernels);
    return dev;
  }();
  return d;
}

}  // namespace

Tensor empty(const Shape& shape, DType dtype) {
  return Tensor{newBuffer(allocator(), size_t(numel(shape)), dtype), shape, dtype};
}

}  // namespace nodegrad::cuda

static Napi::Object InitEmulation(Napi::Env env, Napi::Object exports) {
  nodegrad::registerDevice(env, exports, nodegrad::cuda::emulatedDevice());
  return exports;
}
NODE_API_MODULE(nodegrad_cuda_emu, InitEmulation)
