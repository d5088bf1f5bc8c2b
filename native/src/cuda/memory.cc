// The 'cuda:N' memory functions (DeviceMemory): uploads through pinned staging buffers, reads that
// wait for the stream, device-to-device copies on it.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "cuda/check.h"
#include "cuda/context.h"
#include "cuda/device.h"

namespace nodegrad::cuda {
namespace {

// Makes s hold at least `bytes`, once the copy that last used it has finished.
void reserve(Staging& s, size_t bytes) {
  NG_CUDA(cudaEventSynchronize(s.done));
  if (s.bytes >= bytes) return;
  // Grown by at least half again, so a slowly growing batch does not reallocate every time.
  const size_t want = std::max(bytes, s.bytes + s.bytes / 2);
  if (s.host) NG_CUDA(cudaFreeHost(s.host));
  s.host = nullptr;
  s.bytes = 0;
  NG_CUDA(cudaHostAlloc(&s.host, want, cudaHostAllocDefault));
  s.bytes = want;
}

// The host array is copied into a pinned buffer at once (the caller may reuse it), and from there
// to the device asynchronously; the next upload through the same buffer waits for that copy.
Tensor upload(const void* host, size_t numel, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  const size_t bytes = numel * elementSize(dtype);
  if (!bytes) return t;
  Context& c = current();
  Staging& s = c.upload[c.nextUpload];
  c.nextUpload ^= 1;
  reserve(s, bytes);
  std::memcpy(s.host, host, bytes);
  NG_CUDA(cudaMemcpyAsync(t.buf->data, s.host, bytes, cudaMemcpyHostToDevice, c.stream));
  NG_CUDA(cudaEventRecord(s.done, c.stream));
  return t;
}

void download(const TensorRef& x, void* host) {
  const size_t bytes = x.buf->numel * elementSize(x.buf->dtype);
  if (!bytes) return;
  Context& c = current();
  reserve(c.download, bytes);
  NG_CUDA(cudaMemcpyAsync(c.download.host, x.buf->data, bytes, cudaMemcpyDeviceToHost, c.stream));
  NG_CUDA(cudaEventRecord(c.download.done, c.stream));
  NG_CUDA(cudaEventSynchronize(c.download.done));
  std::memcpy(host, c.download.host, bytes);
}

void copyInto(const TensorRef& dst, const TensorRef& src) {
  markWritten(*dst.buf);
  const size_t bytes = src.buf->numel * elementSize(src.buf->dtype);
  if (bytes && dst.buf != src.buf) {
    NG_CUDA(cudaMemcpyAsync(dst.buf->data, src.buf->data, bytes, cudaMemcpyDeviceToDevice, current().stream));
  }
}

void sync() { NG_CUDA(cudaStreamSynchronize(current().stream)); }

std::string layoutName(const Buffer&) { return "nchw"; }

}  // namespace

DeviceMemory memoryFunctions() { return {upload, download, copyInto, sync, layoutName, activate}; }

}  // namespace nodegrad::cuda
