// The 'cuda' convolutions' algorithm cache: in cuDNN benchmark mode each (direction, shapes,
// params, dtype, math) key is timed once by cudnnFind*AlgorithmEx and its ranking kept.
#pragma once
#include <cstddef>

namespace nodegrad::cuda {

// The number of keys the benchmark cache holds (all GPUs together).
size_t cudnnBenchmarkCacheSize();

}  // namespace nodegrad::cuda
