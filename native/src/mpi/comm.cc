#include "mpi/comm.h"

#include <dlfcn.h>
#include <mpi.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <stdexcept>
#include <thread>

namespace nodegrad::mpi {

void Work::finish(std::string error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    error_ = std::move(error);
  }
  cv_.notify_all();
}

bool Work::done() {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

bool Work::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (timeout.count() > 0) {
    if (!cv_.wait_for(lock, timeout, [&] { return done_; })) return false;
  } else {
    cv_.wait(lock, [&] { return done_; });
  }
  if (!error_.empty()) throw std::runtime_error(error_);
  return true;
}

namespace {

// MPI's own words for a status code.
std::string statusText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, size_t(len));
}

MPI_Datatype mpiType(DType d) {
  switch (d) {
    case DType::F32: return MPI_FLOAT;
    case DType::I32: return MPI_INT;
    default: return MPI_DOUBLE;  // float64, and int64, which the devices hold as doubles
  }
}

// Max and min of floating-point values as NCCL takes them (fmaxf and fminf; __hmax for its half
// types): a NaN loses to a number, so the result does not depend on the order MPI combines the
// ranks in, and a host group agrees with a GPU one. MPI_MAX compares with >, which keeps whichever
// operand came first. Made once MPI is up (MPI_Op_create needs it), on the communication thread.
template <typename T>
void fMinMax(const void* in, void* inout, int n, bool max) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < n; i++) b[i] = max ? std::fmax(a[i], b[i]) : std::fmin(a[i], b[i]);
}
template <bool kMax>
void floatMinMax(void* in, void* inout, int* len, MPI_Datatype* type) {
  if (*type == MPI_FLOAT) fMinMax<float>(in, inout, *len, kMax);
  else fMinMax<double>(in, inout, *len, kMax);
}
MPI_Op fMax = MPI_OP_NULL, fMin = MPI_OP_NULL;

MPI_Op mpiOp(ReduceOp op, DType d) {
  const bool floating = d == DType::F32 || d == DType::F64;
  switch (op) {
    case ReduceOp::Max: return floating ? fMax : MPI_MAX;
    case ReduceOp::Min: return floating ? fMin : MPI_MIN;
    default: return MPI_SUM;  // Avg: the sum, divided by the world size after
  }
}

// A mean of integers truncates, as torch's ReduceOp.AVG is not defined for them: here int32 and
// int64 divide and truncate toward zero.
void divide(void* data, size_t count, DType d, int size) {
  if (d == DType::F32) {
    for (size_t i = 0; i < count; i++) static_cast<float*>(data)[i] /= float(size);
  } else if (d == DType::I32) {
    for (size_t i = 0; i < count; i++) static_cast<int32_t*>(data)[i] /= size;
  } else {
    const bool trunc = d == DType::I64;
    for (size_t i = 0; i < count; i++) {
      double& v = static_cast<double*>(data)[i];
      v = trunc ? std::trunc(v / size) : v / size;
    }
  }
}

// The communication thread and its queue; the state of the one MPI world of the process.
class Thread {
 public:
  WorldInfo start() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!thread_.joinable()) {
      if (finalized_) throw std::runtime_error("the MPI process group was destroyed; MPI cannot start twice in a process");
      thread_ = std::thread([this] { loop(); });
      ready_.wait(lock, [&] { return started_; });
    }
    if (!initError_.empty()) throw std::runtime_error(initError_);
    return info_;
  }

  // Queues a call; its error message is prefixed with `what` and the rank.
  WorkPtr submit(std::string what, std::function<int()> call) {
    auto work = std::make_shared<Work>(what);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!started_ || finalized_ || !initError_.empty()) {
        throw std::runtime_error(what + ": the MPI process group is not initialized (initProcessGroup)");
      }
      queue_.push_back({work, std::move(call)});
    }
    wake_.notify_one();
    return work;
  }

  void stop(bool atExit, bool failed = false) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!thread_.joinable()) return;
      // A failing process leaves without MPI_Finalize, which would wait for its peers (still in
      // a collective with it): mpirun sees a rank end unfinalized and stops the job.
      if (atExit && (failed || busy_ || !queue_.empty())) {
        thread_.detach();
        return;
      }
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  int size() const { return info_.size; }
  int rank() const { return info_.rank; }

 private:
  struct Job {
    WorkPtr work;
    std::function<int()> call;
  };

  void loop() {
    initOnThisThread();
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping, with everything done
        job = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      const int code = job.call();
      {
        std::lock_guard<std::mutex> lock(mu_);
        busy_ = false;
      }
      job.work->finish(code == MPI_SUCCESS ? ""
                                           : job.work->what() + " on rank " + std::to_string(info_.rank) + ": " +
                                                 statusText(code));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (initError_.empty()) MPI_Finalize();
    finalized_ = true;
  }

  void initOnThisThread() {
    std::string error;
    WorldInfo info;
    // Open MPI loads its components with dlopen and they resolve symbols of libmpi, which Node
    // loaded with this addon privately (RTLD_LOCAL): make them global first.
    if (!dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    int provided = 0;
    int code = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (code != MPI_SUCCESS) {
      error = "MPI_Init_thread: " + statusText(code);
    } else {
      MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
      MPI_Op_create(&floatMinMax<true>, 1, &fMax);
      MPI_Op_create(&floatMinMax<false>, 1, &fMin);
      MPI_Comm_rank(MPI_COMM_WORLD, &info.rank);
      MPI_Comm_size(MPI_COMM_WORLD, &info.size);
      info.threadLevel = provided;
      char version[MPI_MAX_LIBRARY_VERSION_STRING];
      int len = 0;
      MPI_Get_library_version(version, &len);
      info.library = std::string(version, size_t(len));
      while (!info.library.empty() && (info.library.back() == '\n' || info.library.back() == '\0')) info.library.pop_back();
    }
    std::lock_guard<std::mutex> lock(mu_);
    info_ = info;
    initError_ = error;
    started_ = true;
    ready_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable ready_, wake_;
  std::thread thread_;
  std::deque<Job> queue_;
  bool started_ = false, stopping_ = false, finalized_ = false, busy_ = false;
  std::string initError_;
  WorldInfo info_;
};

Thread& comm() {
  // Never destroyed: finalize() (JS, or the exit handler below) stops the thread first.
  static Thread* t = [] {
    auto* p = new Thread();
    std::atexit([] { comm().stop(true); });
    return p;
  }();
  return *t;
}

}  // namespace

WorldInfo init() { return comm().start(); }
void finalize(bool exiting, bool failed) { comm().stop(exiting, failed); }

WorkPtr allReduce(void* data, size_t count, DType dtype, ReduceOp op) {
  Thread& t = comm();
  return t.submit("allReduce", [=, &t] {
    int code = MPI_Allreduce(MPI_IN_PLACE, data, int(count), mpiType(dtype), mpiOp(op, dtype), MPI_COMM_WORLD);
    if (code == MPI_SUCCESS && op == ReduceOp::Avg) divide(data, count, dtype, t.size());
    return code;
  });
}

// Packs `parts` into one buffer, runs `call` on it, and writes the parts back from it.
static int packed(const Parts& parts, DType dtype, const std::function<int(void* data, int count)>& call) {
  const size_t elem = elementSize(dtype);
  size_t count = 0;
  for (const auto& [p, n] : parts) count += n;
  if (count > size_t(INT_MAX)) return int(MPI_ERR_COUNT);
  std::vector<char> buf(count * elem);
  size_t at = 0;
  for (const auto& [p, n] : parts) {
    std::memcpy(buf.data() + at, p, n * elem);
    at += n * elem;
  }
  const int code = call(buf.data(), int(count));
  if (code != MPI_SUCCESS) return code;
  at = 0;
  for (const auto& [p, n] : parts) {
    std::memcpy(p, buf.data() + at, n * elem);
    at += n * elem;
  }
  return code;
}

WorkPtr allReduceCoalesced(Parts parts, DType dtype, ReduceOp op) {
  Thread& t = comm();
  return t.submit("allReduceCoalesced", [=, &t, parts = std::move(parts)] {
    return packed(parts, dtype, [&](void* data, int count) {
      const int code = MPI_Allreduce(MPI_IN_PLACE, data, count, mpiType(dtype), mpiOp(op, dtype), MPI_COMM_WORLD);
      if (code == MPI_SUCCESS && op == ReduceOp::Avg) divide(data, size_t(count), dtype, t.size());
      return code;
    });
  });
}

WorkPtr broadcastCoalesced(Parts parts, DType dtype, int root) {
  return comm().submit("broadcastCoalesced", [=, parts = std::move(parts)] {
    return packed(parts, dtype,
                  [&](void* data, int count) { return MPI_Bcast(data, count, mpiType(dtype), root, MPI_COMM_WORLD); });
  });
}

WorkPtr broadcast(void* data, size_t count, DType dtype, int root) {
  return comm().submit("broadcast", [=] {
    return MPI_Bcast(data, int(count), mpiType(dtype), root, MPI_COMM_WORLD);
  });
}

WorkPtr allGather(const void* in, void* out, const std::vector<int>& counts, DType dtype, Keep keep) {
  Thread& t = comm();
  // MPI reads one count per rank.
  if (counts.size() != size_t(t.size())) {
    throw std::invalid_argument(std::to_string(counts.size()) + " counts for a world of " +
                                std::to_string(t.size()) + " ranks");
  }
  std::vector<int> displs(counts.size());
  for (size_t r = 1; r < counts.size(); r++) displs[r] = displs[r - 1] + counts[r - 1];
  return t.submit("allGather", [=, &t, keep = std::move(keep)] {
    return MPI_Allgatherv(in, counts[size_t(t.rank())], mpiType(dtype), out, counts.data(), displs.data(),
                          mpiType(dtype), MPI_COMM_WORLD);
  });
}

WorkPtr reduceScatter(const void* in, void* out, size_t count, DType dtype, ReduceOp op, Keep keep) {
  Thread& t = comm();
  return t.submit("reduceScatter", [=, &t, keep = std::move(keep)] {
    int code = MPI_Reduce_scatter_block(in, out, int(count), mpiType(dtype), mpiOp(op, dtype), MPI_COMM_WORLD);
    if (code == MPI_SUCCESS && op == ReduceOp::Avg) divide(out, count, dtype, t.size());
    return code;
  });
}

WorkPtr barrier() {
  return comm().submit("barrier", [] { return MPI_Barrier(MPI_COMM_WORLD); });
}

}  // namespace nodegrad::mpi
