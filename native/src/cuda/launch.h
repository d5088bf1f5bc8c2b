// How the 'cuda' kernels run. Every kernel of the families compiled by nvcc (*.cu) is a
// per-index body, a lambda over i in [0, n) marked NG_DEVICE, launched by forEach as a
// grid-stride loop on the current device's stream; device memory is touched only through
// empty(), copyOnDevice(), atomicAddHD() and copyToHost(). Kept to that one shape for two
// reasons: a kernel's index arithmetic reads as plainly as the 'cpu' loop it mirrors, and the
// same files compile for the host (NODEGRAD_CUDA_EMULATION, src/cuda/emu: forEach is a loop,
// memory is host memory), so CI without a GPU runs them through the whole parity suite as the
// 'cuda-emu' backend.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/hd.h"
#include "core/tensor.h"
#include "cuda/extent.h"

#ifdef NODEGRAD_CUDA_EMULATION
#define NG_DEVICE
#else
#include <cuda_runtime.h>

#include "cuda/check.h"
#include "cuda/context.h"
#define NG_DEVICE __device__
#endif

// Before a loop over a chunk of a line: unrolled, a thread has that many independent loads in
// flight (the sum still adds in order). Nothing on the host.
#ifdef __CUDACC__
#define NG_UNROLL_LOADS _Pragma("unroll 4")
#else
#define NG_UNROLL_LOADS
#endif

namespace nodegrad::cuda {

#ifdef NODEGRAD_CUDA_EMULATION

// A new tensor on the emulated device (host memory, uninitialized).
Tensor empty(const Shape& shape, DType dtype);

template <typename F>
void forEach(int64_t n, F f, const char*) {
  for (int64_t i = 0; i < n; i++) f(i);
}
inline void copyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);
}
template <typename T>
inline void atomicAddHD(T* p, T v) {
  *p += v;
}
inline void copyToHost(void* host, const void* dev, size_t bytes) {
  if (bytes) std::memcpy(host, dev, bytes);
}

#else

constexpr int kThreads = 256;

template <typename F>
__global__ void forEachKernel(int64_t n, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) f(i);
}

// f(i) for every i in [0, n), queued on the current device's stream. `name` names the kernel in
// a launch error.
template <typename F>
void forEach(int64_t n, F f, const char* name) {
  if (n <= 0) return;
  // Enough blocks to fill any current GPU several times over; the loop strides past the rest.
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 65536);
  forEachKernel<<<unsigned(blocks), kThreads, 0, current().stream>>>(n, f);
  checkLaunch(name);
}

// A device-to-device copy queued on the current stream.
inline void copyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) NG_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, current().stream));
}

template <typename T>
__device__ __forceinline__ void atomicAddHD(T* p, T v) {
  atomicAdd(p, v);
}

// Device bytes into host memory, after everything queued before them: a read that waits for the
// GPU, for the few kernels whose host-side result depends on the data (OneHot's index check).
inline void copyToHost(void* host, const void* dev, size_t bytes) {
  if (!bytes) return;
  NG_CUDA(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, current().stream));
  NG_CUDA(cudaStreamSynchronize(current().stream));
}

#endif

// Up to this many dims a shape's sizes and strides travel by value into a kernel.
constexpr int kMaxDims = 8;

// A row-major index's coordinates mapped to element offsets of another array (broadcast, permuted
// or sliced): offset(i) = base + sum_d coord_d(i) * stride[d], with coordinates of `size`.
// i < the product of the sizes, so the outermost coordinate is the quotient left after the others.
struct StridedIndex {
  int rank = 0;
  Extent size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
  int64_t base = 0;
  NG_HD int64_t offset(int64_t i) const {
    if (rank == 0) return base;
    int64_t off = base;
    for (int d = rank - 1; d > 0; d--) {
      const int64_t q = size[d].divide(i);
      off += (i - q * size[d].n) * stride[d];
      i = q;
    }
    return off + i * stride[0];
  }
};

}  // namespace nodegrad::cuda
