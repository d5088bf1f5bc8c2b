// The 'cuda' addon's entry point (nodegrad_cuda.node, built apart from nodegrad.node so that a
// machine without the CUDA libraries still loads 'cpu'). It probes the driver once: with GPUs it
// registers 'cuda:0'.. through the bindings every device shares; without, it says why, and the JS
// side reports 'cuda' unavailable with that reason.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <napi.h>
#include <nccl.h>

#include "bindings/handles.h"
#include "bindings/kernels.h"
#include "cuda/check.h"
#include "cuda/context.h"
#include "cuda/conv.h"
#include "cuda/device.h"
#include "cuda/flags.h"
#include "cuda/nccl.h"

namespace nodegrad::cuda {

Flags& flags() {
  static Flags f;
  return f;
}

namespace {

int deviceCount = -1;
std::string unavailableReason;

int indexArg(const Napi::CallbackInfo& info, size_t i) {
  const int idx = info[i].IsNumber() ? info[i].As<Napi::Number>().Int32Value() : 0;
  if (idx < 0 || idx >= deviceCount) {
    throw Napi::RangeError::New(info.Env(), "cuda: device index " + std::to_string(idx) + " is out of range (" +
                                                std::to_string(deviceCount < 0 ? 0 : deviceCount) + " GPUs)");
  }
  return idx;
}

// Library versions as the libraries report them at run time (what was loaded, not what was
// compiled against); the driver's and runtime's as CUDA's 1000 * major + 10 * minor.
Napi::Value Versions(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  int driver = 0, runtime = 0, nccl = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess) o.Set("driver", driver);
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) o.Set("runtime", runtime);
  o.Set("cudnn", double(cudnnGetVersion()));
  int major = 0, minor = 0, patch = 0;
  cublasGetProperty(MAJOR_VERSION, &major);
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  o.Set("cublas", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch));
  if (ncclGetVersion(&nccl) == ncclSuccess) o.Set("nccl", nccl);
  return o;
}

Napi::Value DeviceProperties(const Napi::CallbackInfo& info) {
  const int idx = indexArg(info, 0);
  cudaDeviceProp p{};
  NG_CALL("deviceProperties", NG_CUDA(cudaGetDeviceProperties(&p, idx));)
  auto o = Napi::Object::New(info.Env());
  o.Set("name", p.name);
  o.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
  o.Set("totalMemory", double(p.totalGlobalMem));
  o.Set("multiProcessors", p.multiProcessorCount);
  return o;
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  const int idx = indexArg(info, 0);
  NG_CALL("synchronize", {
    Context& c = context(idx);
    c.start();
    NG_CUDA(cudaStreamSynchronize(c.stream));
  })
  return info.Env().Undefined();
}

// The caching allocator's counters for one GPU (PyTorch's torch.cuda.memory_stats, in part).
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  const auto s = context(indexArg(info, 0)).allocator.stats();
  auto o = Napi::Object::New(info.Env());
  o.Set("allocated", double(s.allocated));
  o.Set("reserved", double(s.reserved));
  o.Set("peakAllocated", double(s.peakAllocated));
  o.Set("peakReserved", double(s.peakReserved));
  o.Set("allocations", double(s.allocations));
  o.Set("cacheHits", double(s.cacheHits));
  o.Set("segmentsAllocated", double(s.segmentsAllocated));
  o.Set("segmentsReleased", double(s.segmentsReleased));
  return o;
}

Napi::Value ResetPeakMemoryStats(const Napi::CallbackInfo& info) {
  context(indexArg(info, 0)).allocator.resetPeak();
  return info.Env().Undefined();
}

// setFlags({ cudnnBenchmark?, deterministic?, tf32Matmul?, tf32Cudnn? }) -> the flags now.
Napi::Value SetFlags(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  Flags& f = flags();
  if (info[0].IsObject()) {
    auto o = info[0].As<Napi::Object>();
    auto set = [&](const char* name, std::atomic<bool>& flag) {
      if (o.Has(name)) flag = o.Get(name).ToBoolean().Value();
    };
    set("cudnnBenchmark", f.cudnnBenchmark);
    set("deterministic", f.deterministic);
    set("tf32Matmul", f.tf32Matmul);
    set("tf32Cudnn", f.tf32Cudnn);
  }
  auto r = Napi::Object::New(env);
  r.Set("cudnnBenchmark", f.cudnnBenchmark.load());
  r.Set("deterministic", f.deterministic.load());
  r.Set("tf32Matmul", f.tf32Matmul.load());
  r.Set("tf32Cudnn", f.tf32Cudnn.load());
  return r;
}

Napi::Value CudnnAlgorithmCacheSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(cudnnBenchmarkCacheSize()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  deviceCount = probeDevices(&unavailableReason);
  exports.Set("available", deviceCount > 0);
  exports.Set("deviceCount", deviceCount < 0 ? 0 : deviceCount);
  if (deviceCount <= 0) exports.Set("reason", unavailableReason);
  auto devs = Napi::Object::New(env);
  if (deviceCount > 0) {
    for (const Device& d : devices(deviceCount)) registerDevice(env, devs, d);
  }
  exports.Set("devices", devs);
  exports.Set("versions", Napi::Function::New<Versions>(env, "versions"));
  exports.Set("deviceProperties", Napi::Function::New<DeviceProperties>(env, "deviceProperties"));
  exports.Set("synchronize", Napi::Function::New<Synchronize>(env, "synchronize"));
  exports.Set("memoryStats", Napi::Function::New<MemoryStats>(env, "memoryStats"));
  exports.Set("resetPeakMemoryStats", Napi::Function::New<ResetPeakMemoryStats>(env, "resetPeakMemoryStats"));
  exports.Set("setFlags", Napi::Function::New<SetFlags>(env, "setFlags"));
  exports.Set("cudnnAlgorithmCacheSize", Napi::Function::New<CudnnAlgorithmCacheSize>(env, "cudnnAlgorithmCacheSize"));
  bindNccl(env, exports);
  return exports;
}

}  // namespace
}  // namespace nodegrad::cuda

static Napi::Object InitCuda(Napi::Env env, Napi::Object exports) { return nodegrad::cuda::Init(env, exports); }
NODE_API_MODULE(nodegrad_cuda, InitCuda)
