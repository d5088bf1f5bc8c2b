// How the 'cuda' kernels run: most are a per-index body (a functor over i in [0, n)) launched by
// forEach as a grid-stride loop on the current device's stream. Kept to this one shape so that a
// kernel's index arithmetic reads as plainly as the 'cpu' loop it mirrors.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/hd.h"
#include "cuda/check.h"
#include "cuda/context.h"

namespace nodegrad::cuda {

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

// Up to this many dims a shape's sizes and strides travel by value into a kernel.
constexpr int kMaxDims = 8;

// A row-major index's coordinates mapped to element offsets of another array (broadcast, permuted
// or sliced): offset(i) = base + sum_d coord_d(i) * stride[d], with coordinates of `size`.
struct StridedIndex {
  int rank = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
  int64_t base = 0;
  NG_HD int64_t offset(int64_t i) const {
    int64_t off = base;
    for (int d = rank - 1; d >= 0; d--) {
      const int64_t q = i / size[d];
      off += (i - q * size[d]) * stride[d];
      i = q;
    }
    return off;
  }
};

}  // namespace nodegrad::cuda
