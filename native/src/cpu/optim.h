// Fused optimizer updates over contiguous buffers of n elements, in place: PyTorch 1.13's SGD
// and Adam/AdamW (torch/optim/sgd.py, adam.py, adamw.py, single-tensor path), each element
// computed in double in PyTorch's operation order and stored in T (float or double), as the
// 'ts' backend's kernels do (packages/autograd/src/backends/ts/optim.ts). A half T (BFloat16,
// Float16) runs the float32 update, state values fed on as float32 as the 'ts' emulation feeds
// them, and rounds each buffer's new value once on store.
#pragma once
#include <cstdint>

#include "core/half.h"
#include "core/params.h"

namespace nodegrad::cpu {

// g = ±grad + wd p; buf = firstStep ? g : momentum buf + (1 - dampening) g;
// p -= lr (nesterov ? g + momentum buf : buf). buf may be null when momentum is 0 (then p -= lr g).
template <typename T>
void sgdStep(T* p, const T* grad, T* buf, int64_t n, const SGDOptions& o);

// g = ±grad (+ wd p, or p *= 1 - lr wd when decoupled); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g;
// p -= lr / (1 - b1^t) m / (sqrt(amsgrad ? vmax = max(vmax, v) : v) / sqrt(1 - b2^t) + eps).
template <typename T>
void adamStep(T* p, const T* grad, T* m, T* v, T* vmax, int64_t n, const AdamOptions& o);

// GradScaler's unscale: g = g * inv in float32 (float64 for double), rounded to T; returns whether
// a value was inf or NaN before scaling (PyTorch checks the scaled gradient as it was read).
template <typename T>
bool nonFiniteCheckAndUnscale(T* g, int64_t n, float inv);

}  // namespace nodegrad::cpu
