// NG_HD marks the per-element math that every device runs: plain inline functions on the host
// (the 'cpu' kernels), __host__ __device__ under nvcc (the 'cuda' kernels). One definition per
// formula, so the 'cpu' parity tests against the 'ts' reference check the CUDA kernels' math too.
#pragma once

#ifdef __CUDACC__
#define NG_HD __host__ __device__ __forceinline__
#else
#define NG_HD inline
#endif
