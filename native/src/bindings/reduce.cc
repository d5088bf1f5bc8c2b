// Reductions and the softmax family: Sum, Max, Min, LogSumExp (x, axes), Norm (x, ord, axes), ArgMax, ArgMin (x, axis),
// CumSum (x, axis, reverse), Softmax, LogSoftmax (x, axis).
#include <cmath>

#include "bindings/handles.h"
#include "bindings/kernels.h"

namespace nodegrad {
namespace {

int64_t axisArg(const Napi::Value& v, size_t rank, const char* op) {
  const auto axis = int64_t(numberArg(v, op, "axis"));
  if (axis < 0 || size_t(axis) >= rank) throw std::runtime_error("axis out of range");
  return axis;
}

template <ReduceOp op>
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  constexpr const char* name = op == ReduceOp::Sum ? "Sum" : op == ReduceOp::Max ? "Max" : "Min";
  TensorRef x = tensorAt(info, 0, name, "x");
  auto axes = shapeArg(info, 1, name, "axes");
  NG_KERNEL(name, {
    for (auto a : axes) {
      if (a < 0 || size_t(a) >= x.shape.size()) throw std::runtime_error("axis " + std::to_string(a) + " is out of range");
    }
    return result(info, deviceOf(info).kernels.reduce(op, x, axes));
  })
}

template <bool isMax>
Napi::Value ArgReduce(const Napi::CallbackInfo& info) {
  constexpr const char* name = isMax ? "ArgMax" : "ArgMin";
  TensorRef x = tensorAt(info, 0, name, "x");
  NG_KERNEL(name, {
    const int64_t axis = axisArg(info[1], x.shape.size(), name);
    return result(info, deviceOf(info).kernels.argReduce(isMax, x, axis));
  })
}

Napi::Value LogSumExp(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "LogSumExp", "x");
  auto axes = shapeArg(info, 1, "LogSumExp", "axes");
  NG_KERNEL("LogSumExp", {
    for (auto a : axes) {
      if (a < 0 || size_t(a) >= x.shape.size()) throw std::runtime_error("axis " + std::to_string(a) + " is out of range");
    }
    return result(info, deviceOf(info).kernels.logSumExp(x, axes));
  })
}

Napi::Value Norm(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "Norm", "x");
  const double ord = numberArg(info[1], "Norm", "ord");
  auto axes = shapeArg(info, 2, "Norm", "axes");
  NG_KERNEL("Norm", {
    if (!(ord > 0) && !std::isinf(ord)) throw std::runtime_error("ord must be positive or infinite");
    for (auto a : axes) {
      if (a < 0 || size_t(a) >= x.shape.size()) throw std::runtime_error("axis " + std::to_string(a) + " is out of range");
    }
    return result(info, deviceOf(info).kernels.norm(x, ord, axes));
  })
}

Napi::Value CumSum(const Napi::CallbackInfo& info) {
  TensorRef x = tensorAt(info, 0, "CumSum", "x");
  NG_KERNEL("CumSum", {
    const int64_t axis = axisArg(info[1], x.shape.size(), "CumSum");
    return result(info, deviceOf(info).kernels.cumsum(x, axis, info[2].ToBoolean().Value()));
  })
}

template <bool log>
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  constexpr const char* name = log ? "LogSoftmax" : "Softmax";
  TensorRef x = tensorAt(info, 0, name, "x");
  NG_KERNEL(name, {
    const int64_t axis = axisArg(info[1], x.shape.size(), name);
    return result(info, deviceOf(info).kernels.softmax(x, axis, log));
  })
}

}  // namespace

void bindReduce(Napi::Env env, Napi::Object k, const Device& d) {
  if (d.kernels.reduce) {
    defineKernel<Reduce<ReduceOp::Sum>>(env, k, "Sum", d);
    defineKernel<Reduce<ReduceOp::Max>>(env, k, "Max", d);
    defineKernel<Reduce<ReduceOp::Min>>(env, k, "Min", d);
  }
  if (d.kernels.argReduce) {
    defineKernel<ArgReduce<true>>(env, k, "ArgMax", d);
    defineKernel<ArgReduce<false>>(env, k, "ArgMin", d);
  }
  if (d.kernels.cumsum) defineKernel<CumSum>(env, k, "CumSum", d);
  if (d.kernels.logSumExp) defineKernel<LogSumExp>(env, k, "LogSumExp", d);
  if (d.kernels.norm) defineKernel<Norm>(env, k, "Norm", d);
  if (d.kernels.softmax) {
    defineKernel<Softmax<false>>(env, k, "Softmax", d);
    defineKernel<Softmax<true>>(env, k, "LogSoftmax", d);
  }
}

}  // namespace nodegrad
