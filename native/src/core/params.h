// The parameters of the kernels (the Kernels interface of packages/autograd/src/backend.ts) in
// C++ terms, shared by the bindings that read them and every device that computes with them.
#pragma once
#include <cstdint>

namespace nodegrad {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Relu, Sigmoid, Tanh, Log1p, Expm1, Sin, Cos, Erf };
// ReluGrad is relu's backward (PyTorch's threshold_backward at 0): (dy, y) -> y <= 0 ? 0 : dy.
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, ReluGrad };
enum class ReduceOp { Sum, Max, Min };
// Activations with up to two parameters a, b: Softplus (beta, threshold), Elu (alpha), LeakyRelu
// (negative slope), Hardtanh (min, max); the others take none.
enum class ActivationOp { Softplus, Gelu, GeluTanh, Silu, Elu, LeakyRelu, Hardtanh };

// Conv2DParams: stride, padding and dilation as (h, w) pairs, and groups.
struct ConvParams {
  int64_t sh, sw, ph, pw, dh, dw, groups;
};

// Pool2DParams.
struct Pool2D {
  int64_t kernel[2], stride[2], padding[2], dilation[2];
  bool ceilMode = false;
  bool countIncludePad = true;
};

// SGDStepParams (torch.optim.SGD's hyperparameters).
struct SGDOptions {
  double lr, momentum, dampening, weightDecay;
  bool nesterov, maximize, firstStep;
};

// AdamStepParams (torch.optim.Adam's and AdamW's); step is t, counted from 1.
struct AdamOptions {
  double lr, beta1, beta2, eps, weightDecay;
  bool decoupled, amsgrad, maximize;
  int64_t step;
};

// BatchNormUpdateParams: the running statistics' update from a batch of `count` elements per
// channel over every rank (the unbiased variance divides by count - 1), momentum `factor`.
struct BatchNormUpdate {
  double eps, count, factor;
};

}  // namespace nodegrad
