// exports.mpi: the MPI process group (mpi/comm.h) on host tensors ('cpu' and 'ts'). The
// collectives take Raw tensors, work in place or into an output made by JS, and return a work
// handle at once; wait(work, timeoutMs), done(work) and whenDone(work) (a Promise) follow it. The
// JS side keeps the tensors alive until the work is done, and checks counts and dtypes.
#include "mpi/bindings.h"

#include <climits>
#include <stdexcept>
#include <string>

#include "bindings/handles.h"
#include "cpu/device.h"
#include "cpu/operands.h"
#include "mpi/comm.h"

namespace nodegrad::mpi {
namespace {

// A tensor's host memory: a 'cpu' tensor's buffer (plain; made plain in place when written), or
// a 'ts' tensor's typed array, whose backing store V8 never moves.
struct Host {
  void* data;
  size_t count;
  DType dtype;
  Keep keep;  // a plain copy read in place of a blocked buffer
};

// MPI has no bfloat16 or float16 datatype to reduce in: half tensors are refused before anything is
// read or written ('ts' holds them as float32 arrays, 'cpu' as 2-byte elements).
void refuseHalf(DType d, const char* name) {
  if (isHalf(d)) {
    throw std::invalid_argument(std::string("'") + name + "' is " + dtypeName(d) +
                                "; the MPI collectives take float32, float64, int32 and int64 tensors (cast it first)");
  }
}

Host hostTensor(const Napi::Value& v, const char* op, const char* name, bool written) {
  Host h{};
  if (v.IsObject() && v.As<Napi::Object>().Get("buf").IsTypedArray()) {
    auto o = v.As<Napi::Object>();
    auto a = o.Get("buf").As<Napi::TypedArray>();
    h.data = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    h.count = a.ElementLength();
    h.dtype = parseDType(o.Get("dtype").ToString().Utf8Value(), op);
    refuseHalf(h.dtype, name);
    if (a.ElementLength() * elementSize(h.dtype) != a.ByteLength()) {
      throw std::invalid_argument(std::string("'") + name + "' has a typed array that does not match its dtype");
    }
  } else {
    TensorRef t = readTensor(v, op, name, cpu::device().allocator);
    h.count = t.numel();
    h.dtype = t.dtype;
    refuseHalf(h.dtype, name);
    if (written) {
      h.data = cpu::writable(t).data;
    } else {
      cpu::Operand src = cpu::plain(t);
      h.data = src.buf->data;
      h.keep = src.hold;
    }
  }
  if (h.count > size_t(INT_MAX)) {
    throw std::invalid_argument(std::string("'") + name + "' has " + std::to_string(h.count) +
                                " elements; MPI counts are int, at most " + std::to_string(INT_MAX));
  }
  return h;
}

ReduceOp reduceOp(const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "sum") return ReduceOp::Sum;
  if (s == "avg") return ReduceOp::Avg;
  if (s == "max") return ReduceOp::Max;
  if (s == "min") return ReduceOp::Min;
  throw std::invalid_argument("op must be 'sum', 'avg', 'max' or 'min', got '" + s + "'");
}

Napi::Value handle(Napi::Env env, WorkPtr w) {
  return Napi::External<WorkPtr>::New(env, new WorkPtr(std::move(w)), [](Napi::Env, WorkPtr* p) { delete p; });
}

WorkPtr& workOf(const Napi::Value& v) {
  if (!v.IsExternal()) throw std::invalid_argument("expected a work handle");
  return *v.As<Napi::External<WorkPtr>>().Data();
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  NG_CALL("mpi.init", {
    WorldInfo w = init();
    auto o = Napi::Object::New(info.Env());
    o.Set("rank", w.rank);
    o.Set("size", w.size);
    o.Set("threadLevel", w.threadLevel);
    o.Set("library", w.library);
    return o;
  })
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  NG_CALL("mpi.finalize", {
    finalize(info[0].ToBoolean(), info[1].ToBoolean());
    return info.Env().Undefined();
  })
}

Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  NG_CALL("allReduce", {
    Host t = hostTensor(info[0], "allReduce", "tensor", true);
    return handle(info.Env(), allReduce(t.data, t.count, t.dtype, reduceOp(info[1])));
  })
}

// A list of host tensors of one dtype, as the coalesced collectives take them (written in place).
Parts partsOf(const Napi::Value& v, const char* op, DType* dtype) {
  if (!v.IsArray()) throw std::invalid_argument("'tensors' must be an array");
  auto list = v.As<Napi::Array>();
  Parts parts;
  size_t total = 0;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Host t = hostTensor(list.Get(i), op, "tensors", true);
    if (i > 0 && t.dtype != *dtype) throw std::invalid_argument("the tensors must share one dtype");
    *dtype = t.dtype;
    parts.emplace_back(t.data, t.count);
    total += t.count;
  }
  // They travel packed as one MPI message, whose count must fit an int too.
  if (total > size_t(INT_MAX)) {
    throw std::invalid_argument("'tensors' hold " + std::to_string(total) +
                                " elements together; MPI counts are int, at most " + std::to_string(INT_MAX));
  }
  return parts;
}

// allReduceCoalesced(tensors, op) and broadcastCoalesced(tensors, src): one collective over
// several tensors of one dtype.
Napi::Value AllReduceCoalesced(const Napi::CallbackInfo& info) {
  NG_CALL("allReduceCoalesced", {
    DType dtype = DType::F32;
    Parts parts = partsOf(info[0], "allReduceCoalesced", &dtype);
    return handle(info.Env(), allReduceCoalesced(std::move(parts), dtype, reduceOp(info[1])));
  })
}

Napi::Value BroadcastCoalesced(const Napi::CallbackInfo& info) {
  NG_CALL("broadcastCoalesced", {
    DType dtype = DType::F32;
    Parts parts = partsOf(info[0], "broadcastCoalesced", &dtype);
    const int root = int(numberArg(info[1], "broadcastCoalesced", "src"));
    return handle(info.Env(), broadcastCoalesced(std::move(parts), dtype, root));
  })
}

Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  NG_CALL("broadcast", {
    Host t = hostTensor(info[0], "broadcast", "tensor", true);
    const int root = int(numberArg(info[1], "broadcast", "src"));
    return handle(info.Env(), broadcast(t.data, t.count, t.dtype, root));
  })
}

// allGather(input, output, counts): counts[r] elements from rank r, in rank order.
Napi::Value AllGather(const Napi::CallbackInfo& info) {
  NG_CALL("allGather", {
    Host in = hostTensor(info[0], "allGather", "tensor", false);
    Host out = hostTensor(info[1], "allGather", "output", true);
    Shape counts = shapeArg(info[2], "allGather", "counts");
    // The displacements are int prefix sums over counts: they must add up to the output (at most
    // INT_MAX elements, checked above), or MPI would write past it.
    size_t total = 0;
    for (int64_t c : counts) total += size_t(c);
    if (total != out.count) {
      throw std::invalid_argument("the counts add up to " + std::to_string(total) + " elements, the output has " +
                                  std::to_string(out.count));
    }
    return handle(info.Env(), allGather(in.data, out.data, std::vector<int>(counts.begin(), counts.end()), in.dtype,
                                        in.keep));
  })
}

// reduceScatter(input, output, op): input holds worldSize blocks of output's size.
Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
  NG_CALL("reduceScatter", {
    Host in = hostTensor(info[0], "reduceScatter", "input", false);
    Host out = hostTensor(info[1], "reduceScatter", "output", true);
    return handle(info.Env(), reduceScatter(in.data, out.data, out.count, in.dtype, reduceOp(info[2]), in.keep));
  })
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  NG_CALL("barrier", { return handle(info.Env(), barrier()); })
}

// wait(work, timeoutMs): true when done (throwing the collective's error), false on timeout.
Napi::Value Wait(const Napi::CallbackInfo& info) {
  NG_CALL("mpi.wait", {
    WorkPtr w = workOf(info[0]);
    const double ms = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
    return Napi::Boolean::New(info.Env(), w->wait(std::chrono::milliseconds(int64_t(ms))));
  })
}

Napi::Value Done(const Napi::CallbackInfo& info) {
  NG_CALL("mpi.done", { return Napi::Boolean::New(info.Env(), workOf(info[0])->done()); })
}

// The Promise of whenDone: waits on a libuv pool thread.
class Waiter : public Napi::AsyncWorker {
 public:
  Waiter(Napi::Env env, WorkPtr w) : Napi::AsyncWorker(env), work_(std::move(w)), deferred_(env) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      work_->wait(std::chrono::milliseconds(0));
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  WorkPtr work_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value WhenDone(const Napi::CallbackInfo& info) {
  NG_CALL("mpi.whenDone", {
    auto* waiter = new Waiter(info.Env(), workOf(info[0]));
    Napi::Promise p = waiter->promise();
    waiter->Queue();
    return p;
  })
}

}  // namespace

void bindMpi(Napi::Env env, Napi::Object exports) {
  auto m = Napi::Object::New(env);
  m.Set("init", Napi::Function::New<Init>(env, "init"));
  m.Set("finalize", Napi::Function::New<Finalize>(env, "finalize"));
  m.Set("allReduce", Napi::Function::New<AllReduce>(env, "allReduce"));
  m.Set("allReduceCoalesced", Napi::Function::New<AllReduceCoalesced>(env, "allReduceCoalesced"));
  m.Set("broadcast", Napi::Function::New<Broadcast>(env, "broadcast"));
  m.Set("broadcastCoalesced", Napi::Function::New<BroadcastCoalesced>(env, "broadcastCoalesced"));
  m.Set("allGather", Napi::Function::New<AllGather>(env, "allGather"));
  m.Set("reduceScatter", Napi::Function::New<ReduceScatter>(env, "reduceScatter"));
  m.Set("barrier", Napi::Function::New<Barrier>(env, "barrier"));
  m.Set("wait", Napi::Function::New<Wait>(env, "wait"));
  m.Set("done", Napi::Function::New<Done>(env, "done"));
  m.Set("whenDone", Napi::Function::New<WhenDone>(env, "whenDone"));
  exports.Set("mpi", m);
}

}  // namespace nodegrad::mpi
