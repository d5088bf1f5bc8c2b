// softmax(x, axis, log): Softmax and LogSoftmax along one axis.
#include "bindings/buffer.h"
#include "bindings/kernels.h"
#include "cpu/reduce.h"

namespace nodegrad {
namespace {

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  bool log = info[2].As<Napi::Boolean>();
  const char* name = log ? "LogSoftmax" : "Softmax";
  NG_KERNEL(name, {
    TensorArg x = tensorArg(info, 0, name, "x");
    requireF32(x, name, "x");
    int64_t axis = info[1].As<Napi::Number>().Int64Value();
    if (axis < 0 || size_t(axis) >= x.shape.size()) throw std::runtime_error("axis out of range");
    Buffer* out;
    auto h = newHandle(info.Env(), x.numel(), DType::F32, &out);
    cpu::softmax(log, x.f32(), x.shape, axis, out->as<float>());
    return rawObject(info.Env(), h, x.shape, DType::F32);
  })
}

}  // namespace

void registerSoftmax(Napi::Env env, Napi::Object exports) {
  exports.Set("softmax", Napi::Function::New(env, Softmax));
}

}  // namespace nodegrad
