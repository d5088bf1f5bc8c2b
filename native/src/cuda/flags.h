// Process-wide switches of the 'cuda' backend, PyTorch's defaults: cuDNN picks convolution
// algorithms by heuristics (benchmark off) and may use nondeterministic ones; TF32 is off for
// matmul (torch.backends.cuda.matmul.allow_tf32) and on for cuDNN convolutions
// (torch.backends.cudnn.allow_tf32).
#pragma once
#include <atomic>

namespace nodegrad::cuda {

struct Flags {
  std::atomic<bool> cudnnBenchmark{false};
  std::atomic<bool> deterministic{false};
  std::atomic<bool> tf32Matmul{false};
  std::atomic<bool> tf32Cudnn{true};
};

Flags& flags();

}  // namespace nodegrad::cuda
