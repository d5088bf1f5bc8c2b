// exports.nccl:
//   uniqueId() -> Uint8Array(128)             ncclGetUniqueId, on the rank that makes the group
//   init(device, rank, size, id, timeoutMs?) -> comm
//                                             ncclCommInitRank on GPU `device`, with its own stream;
//                                             a collective pending past timeoutMs (default 30 min)
//                                             ends the process (nccl_watchdog.h)
//   allReduce(comm, t, op), allReduceCoalesced(comm, ts, op), broadcast(comm, t, root),
//   broadcastCoalesced(comm, ts, root), allGather(comm, in, out), reduceScatter(comm, in, out, op)
//                                  -> work    queued on the comm's stream after everything the
//                                             compute stream holds so far (an event between them)
//   wait(work)                                the compute stream waits for the collective (no host block)
//   done(work), synchronize(work)             poll / block the host
//   destroy(comm)
//   stallForTesting(comm, ms)                 holds the comm's stream for ms (a host function on it):
//                                             what a rank that never joins looks like, for the watchdog's test
// A tensor's memory must stay alive until its work is waited for: the JS side holds the tensors.
#include "cuda/nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bindings/handles.h"
#include "cuda/check.h"
#include "cuda/context.h"
#include "cuda/nccl_watchdog.h"

namespace nodegrad::cuda {
namespace {

void checkNccl(ncclResult_t r, const char* call) {
  if (r == ncclSuccess) return;
  std::string detail = ncclGetLastError(nullptr) ? ncclGetLastError(nullptr) : "";
  throw std::runtime_error(std::string(call) + ": " + ncclGetErrorString(r) + " (" + std::to_string(int(r)) + ")" +
                           (detail.empty() ? "" : "; " + detail));
}
#define NG_NCCL(call) checkNccl((call), #call)

struct Comm {
  ncclComm_t comm = nullptr;
  int device = 0, rank = 0, size = 1;
  double timeoutMs = 30 * 60 * 1000.0;
  cudaStream_t stream = nullptr;
};

struct Work {
  cudaEvent_t done = nullptr;
  int device = 0;
  ~Work() {
    if (done) cudaEventDestroy(done);
  }
};

Comm& commOf(const Napi::Value& v) {
  if (!v.IsExternal()) throw std::invalid_argument("expected an NCCL communicator");
  Comm* c = v.As<Napi::External<Comm>>().Data();
  if (!c->comm) throw std::invalid_argument("the NCCL communicator was destroyed");
  return *c;
}

Work& workOf(const Napi::Value& v) {
  if (!v.IsExternal()) throw std::invalid_argument("expected an NCCL work handle");
  return *v.As<Napi::External<Work>>().Data();
}

ncclDataType_t ncclType(DType d) {
  switch (d) {
    case DType::F32: return ncclFloat32;
    case DType::I32: return ncclInt32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::F64:
    case DType::I64: return ncclFloat64;  // int64 too: the devices hold it as doubles
  }
  throw std::invalid_argument("NCCL: unknown dtype");
}

// One NCCL group call over `issue`, which launches a collective per tensor: the group is ended
// even when one of them throws, since a thread left inside a group only queues what follows.
template <typename F>
void grouped(F issue) {
  NG_NCCL(ncclGroupStart());
  try {
    issue();
  } catch (...) {
    ncclGroupEnd();
    throw;
  }
  NG_NCCL(ncclGroupEnd());
}

ncclRedOp_t ncclOp(const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "sum") return ncclSum;
  if (s == "avg") return ncclAvg;
  if (s == "max") return ncclMax;
  if (s == "min") return ncclMin;
  throw std::invalid_argument("op must be 'sum', 'avg', 'max' or 'min', got '" + s + "'");
}

// A tensor of the communicator's GPU.
TensorRef onComm(const Napi::Value& v, const Comm& c, const char* op, const char* name) {
  TensorRef t = readTensor(v, op, name);
  const std::string want = "cuda:" + std::to_string(c.device);
  if (t.buf->device->device() != want) {
    throw std::invalid_argument(std::string("'") + name + "' is on " + t.buf->device->device() +
                                " but the communicator is on " + want);
  }
  return t;
}

// Makes GPU `device` current, as the kernels' bindings do (so they and these calls agree on it).
Context& use(int device) {
  Context& ctx = context(device);
  activate(ctx.allocator);
  return ctx;
}

// `whole` holds the world's blocks of `part`'s size and dtype (allGather's output, reduceScatter's input).
void checkBlocks(const TensorRef& whole, const TensorRef& part, const Comm& c, const char* wholeName,
                 const char* partName) {
  if (whole.numel() != part.numel() * size_t(c.size) || whole.dtype != part.dtype) {
    throw std::invalid_argument(std::string("'") + wholeName + "' must hold world size x " + partName +
                                "'s elements, of its dtype");
  }
}

// Makes the comm's stream wait for the compute stream, runs `enqueue` on it, and returns the
// event that marks the collective's end; a second one at the same point goes to the watchdog.
template <typename F>
Napi::Value collective(Napi::Env env, const Comm& c, const char* op, F enqueue) {
  Context& ctx = use(c.device);
  cudaEvent_t ready;
  NG_CUDA(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  NG_CUDA(cudaEventRecord(ready, ctx.stream));
  NG_CUDA(cudaStreamWaitEvent(c.stream, ready, 0));
  NG_CUDA(cudaEventDestroy(ready));  // released once the wait is satisfied
  enqueue();
  auto* w = new Work();
  w->device = c.device;
  NG_CUDA(cudaEventCreateWithFlags(&w->done, cudaEventDisableTiming));
  NG_CUDA(cudaEventRecord(w->done, c.stream));
  cudaEvent_t watched;
  NG_CUDA(cudaEventCreateWithFlags(&watched, cudaEventDisableTiming));
  NG_CUDA(cudaEventRecord(watched, c.stream));
  watchCollective(watched, c.device, c.comm, c.timeoutMs, std::string(op) + " on rank " + std::to_string(c.rank));
  return Napi::External<Work>::New(env, w, [](Napi::Env, Work* p) { delete p; });
}

Napi::Value UniqueId(const Napi::CallbackInfo& info) {
  NG_CALL("nccl.uniqueId", {
    ncclUniqueId id;
    NG_NCCL(ncclGetUniqueId(&id));
    auto out = Napi::Uint8Array::New(info.Env(), sizeof(id.internal));
    std::memcpy(out.Data(), id.internal, sizeof(id.internal));
    return out;
  })
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  NG_CALL("nccl.init", {
    auto* c = new Comm();
    try {
      c->device = int(numberArg(info[0], "nccl.init", "device"));
      c->rank = int(numberArg(info[1], "nccl.init", "rank"));
      c->size = int(numberArg(info[2], "nccl.init", "size"));
      if (!info[3].IsTypedArray() || info[3].As<Napi::Uint8Array>().ByteLength() != sizeof(ncclUniqueId::internal)) {
        throw std::invalid_argument("id must be the 128-byte Uint8Array of uniqueId()");
      }
      ncclUniqueId id;
      std::memcpy(id.internal, info[3].As<Napi::Uint8Array>().Data(), sizeof(id.internal));
      if (info.Length() > 4 && !info[4].IsUndefined()) {
        c->timeoutMs = numberArg(info[4], "nccl.init", "timeoutMs");
        if (!(c->timeoutMs > 0)) throw std::invalid_argument("timeoutMs must be a positive number of milliseconds");
      }
      int gpus = 0;
      NG_CUDA(cudaGetDeviceCount(&gpus));
      if (c->device < 0 || c->device >= gpus) {
        throw std::invalid_argument("device " + std::to_string(c->device) + " (the rank's local rank) is not a GPU of this " +
                                    "machine, which has " + std::to_string(gpus) + ": NCCL takes one GPU per rank; " +
                                    "ranks that share a GPU use the 'mpi' group");
      }
      use(c->device);
      NG_CUDA(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
      NG_NCCL(ncclCommInitRank(&c->comm, c->size, id, c->rank));
    } catch (...) {
      if (c->stream) cudaStreamDestroy(c->stream);
      delete c;
      throw;
    }
    return Napi::External<Comm>::New(info.Env(), c);
  })
}

Napi::Value Destroy(const Napi::CallbackInfo& info) {
  NG_CALL("nccl.destroy", {
    Comm& c = commOf(info[0]);
    forgetCollectives(c.comm);
    NG_NCCL(ncclCommDestroy(c.comm));
    c.comm = nullptr;
    NG_CUDA(cudaStreamDestroy(c.stream));
    return info.Env().Undefined();
  })
}

Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  NG_CALL("allReduce", {
    const Comm& c = commOf(info[0]);
    TensorRef t = onComm(info[1], c, "allReduce", "tensor");
    const ncclRedOp_t op = ncclOp(info[2]);
    markWritten(*t.buf);
    return collective(info.Env(), c, "allReduce", [&] {
      NG_NCCL(ncclAllReduce(t.buf->data, t.buf->data, t.numel(), ncclType(t.dtype), op, c.comm, c.stream));
    });
  })
}

// Tensors of the communicator's GPU, as the coalesced collectives take them (written in place).
std::vector<TensorRef> tensorsOn(const Napi::Value& v, const Comm& c, const char* op) {
  if (!v.IsArray()) throw std::invalid_argument("'tensors' must be an array");
  auto list = v.As<Napi::Array>();
  std::vector<TensorRef> ts;
  for (uint32_t i = 0; i < list.Length(); i++) ts.push_back(onComm(list.Get(i), c, op, "tensors"));
  for (const TensorRef& t : ts) markWritten(*t.buf);
  return ts;
}

// Several tensors in one NCCL group call: one launch, no packing.
Napi::Value AllReduceCoalesced(const Napi::CallbackInfo& info) {
  NG_CALL("allReduceCoalesced", {
    const Comm& c = commOf(info[0]);
    const std::vector<TensorRef> ts = tensorsOn(info[1], c, "allReduceCoalesced");
    const ncclRedOp_t op = ncclOp(info[2]);
    return collective(info.Env(), c, "allReduceCoalesced", [&] {
      grouped([&] {
        for (const TensorRef& t : ts) {
          NG_NCCL(ncclAllReduce(t.buf->data, t.buf->data, t.numel(), ncclType(t.dtype), op, c.comm, c.stream));
        }
      });
    });
  })
}

Napi::Value BroadcastCoalesced(const Napi::CallbackInfo& info) {
  NG_CALL("broadcastCoalesced", {
    const Comm& c = commOf(info[0]);
    const std::vector<TensorRef> ts = tensorsOn(info[1], c, "broadcastCoalesced");
    const int root = int(numberArg(info[2], "broadcastCoalesced", "src"));
    return collective(info.Env(), c, "broadcastCoalesced", [&] {
      grouped([&] {
        for (const TensorRef& t : ts) {
          NG_NCCL(ncclBroadcast(t.buf->data, t.buf->data, t.numel(), ncclType(t.dtype), root, c.comm, c.stream));
        }
      });
    });
  })
}

Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  NG_CALL("broadcast", {
    const Comm& c = commOf(info[0]);
    TensorRef t = onComm(info[1], c, "broadcast", "tensor");
    const int root = int(numberArg(info[2], "broadcast", "src"));
    markWritten(*t.buf);
    return collective(info.Env(), c, "broadcast", [&] {
      NG_NCCL(ncclBroadcast(t.buf->data, t.buf->data, t.numel(), ncclType(t.dtype), root, c.comm, c.stream));
    });
  })
}

// Equal sizes: out holds size * in's elements, rank r's block r.
Napi::Value AllGather(const Napi::CallbackInfo& info) {
  NG_CALL("allGather", {
    const Comm& c = commOf(info[0]);
    TensorRef in = onComm(info[1], c, "allGather", "tensor");
    TensorRef out = onComm(info[2], c, "allGather", "output");
    checkBlocks(out, in, c, "output", "the tensor");
    markWritten(*out.buf);
    return collective(info.Env(), c, "allGather", [&] {
      NG_NCCL(ncclAllGather(in.buf->data, out.buf->data, in.numel(), ncclType(in.dtype), c.comm, c.stream));
    });
  })
}

Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
  NG_CALL("reduceScatter", {
    const Comm& c = commOf(info[0]);
    TensorRef in = onComm(info[1], c, "reduceScatter", "input");
    TensorRef out = onComm(info[2], c, "reduceScatter", "output");
    const ncclRedOp_t op = ncclOp(info[3]);
    checkBlocks(in, out, c, "input", "the output");
    markWritten(*out.buf);
    return collective(info.Env(), c, "reduceScatter", [&] {
      NG_NCCL(ncclReduceScatter(in.buf->data, out.buf->data, out.numel(), ncclType(in.dtype), op, c.comm, c.stream));
    });
  })
}

Napi::Value StallForTesting(const Napi::CallbackInfo& info) {
  NG_CALL("nccl.stallForTesting", {
    const Comm& c = commOf(info[0]);
    auto ms = std::make_unique<double>(numberArg(info[1], "nccl.stallForTesting", "ms"));
    use(c.device);
    NG_CUDA(cudaLaunchHostFunc(
        c.stream,
        [](void* p) {
          std::unique_ptr<double> ms(static_cast<double*>(p));
          std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(*ms));
        },
        ms.get()));
    ms.release();  // the host function owns it now
    return info.Env().Undefined();
  })
}

Napi::Value Wait(const Napi::CallbackInfo& info) {
  NG_CALL("wait", {
    Work& w = workOf(info[0]);
    NG_CUDA(cudaStreamWaitEvent(use(w.device).stream, w.done, 0));
    return info.Env().Undefined();
  })
}

Napi::Value Done(const Napi::CallbackInfo& info) {
  NG_CALL("done", {
    const cudaError_t e = cudaEventQuery(workOf(info[0]).done);
    // "Not ready" is no error, but the runtime may keep it as the last error, which the next
    // kernel launch's check would then report as its own (PyTorch clears it the same way).
    if (e == cudaErrorNotReady) (void)cudaGetLastError();
    else NG_CUDA(e);
    return Napi::Boolean::New(info.Env(), e == cudaSuccess);
  })
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  NG_CALL("synchronize", {
    NG_CUDA(cudaEventSynchronize(workOf(info[0]).done));
    return info.Env().Undefined();
  })
}

}  // namespace

void bindNccl(Napi::Env env, Napi::Object exports) {
  auto n = Napi::Object::New(env);
  n.Set("uniqueId", Napi::Function::New<UniqueId>(env, "uniqueId"));
  n.Set("init", Napi::Function::New<Init>(env, "init"));
  n.Set("destroy", Napi::Function::New<Destroy>(env, "destroy"));
  n.Set("allReduce", Napi::Function::New<AllReduce>(env, "allReduce"));
  n.Set("allReduceCoalesced", Napi::Function::New<AllReduceCoalesced>(env, "allReduceCoalesced"));
  n.Set("broadcast", Napi::Function::New<Broadcast>(env, "broadcast"));
  n.Set("broadcastCoalesced", Napi::Function::New<BroadcastCoalesced>(env, "broadcastCoalesced"));
  n.Set("allGather", Napi::Function::New<AllGather>(env, "allGather"));
  n.Set("reduceScatter", Napi::Function::New<ReduceScatter>(env, "reduceScatter"));
  n.Set("wait", Napi::Function::New<Wait>(env, "wait"));
  n.Set("done", Napi::Function::New<Done>(env, "done"));
  n.Set("synchronize", Napi::Function::New<Synchronize>(env, "synchronize"));
  n.Set("stallForTesting", Napi::Function::New<StallForTesting>(env, "stallForTesting"));
  exports.Set("nccl", n);
}

}  // namespace nodegrad::cuda
