// Reductions: reduce(kernel, x, axes) for Sum/Max/Min, argReduce(kernel, x, axis) for ArgMax/ArgMin.
#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/reduce.h"

namespace nodegrad {
namespace {

std::vector<int64_t> axesArg(const Napi::CallbackInfo& info, size_t i, size_t rank) {
  auto axes = shapeArg(info, i, "reduce", "axes");
  for (auto a : axes) {
    if (a < 0 || size_t(a) >= rank) throw std::runtime_error("axis " + std::to_string(a) + " is out of range");
  }
  return axes;
}

Napi::Value Reduce(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  NG_KERNEL(name, {
    TensorArg x = tensorArg(info, 1, name.c_str(), "x");
    requireReal(x, name.c_str(), "x");
    auto axes = axesArg(info, 2, x.shape.size());
    auto op = name == "Sum" ? cpu::ReduceOp::Sum : name == "Max" ? cpu::ReduceOp::Max : cpu::ReduceOp::Min;
    auto outShape = x.shape;
    for (auto a : axes) outShape[size_t(a)] = 1;
    Buffer* out;
    auto h = newHandle(info.Env(), size_t(cpu::numel(outShape)), x.dtype, &out);
    NG_REAL_DISPATCH(x.dtype, cpu::reduce(op, x.buf->as<T>(), x.shape, axes, out->as<T>());)
    return rawObject(info.Env(), h, outShape, x.dtype);
  })
}

Napi::Value ArgReduce(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  NG_KERNEL(name, {
    TensorArg x = tensorArg(info, 1, name.c_str(), "x");
    requireReal(x, name.c_str(), "x");
    int64_t axis = info[2].As<Napi::Number>().Int64Value();
    if (axis < 0 || size_t(axis) >= x.shape.size()) throw std::runtime_error("axis out of range");
    auto outShape = x.shape;
    outShape[size_t(axis)] = 1;
    Buffer* out;
    auto h = newHandle(info.Env(), size_t(cpu::numel(outShape)), DType::I64, &out);
    NG_REAL_DISPATCH(x.dtype, cpu::argReduce(name == "ArgMax", x.buf->as<T>(), x.shape, axis, out->as<double>());)
    return rawObject(info.Env(), h, outShape, DType::I64);
  })
}

}  // namespace

void registerReduce(Napi::Env env, Napi::Object exports) {
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("argReduce", Napi::Function::New(env, ArgReduce));
}

}  // namespace nodegrad
