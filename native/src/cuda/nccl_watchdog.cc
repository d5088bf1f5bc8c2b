#include "cuda/nccl_watchdog.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace nodegrad::cuda {
namespace {

using Clock = std::chrono::steady_clock;

struct Watched {
  cudaEvent_t done;
  int device;
  ncclComm_t comm;
  double timeoutMs;
  Clock::time_point start;
  std::string what;
};

class Watchdog {
 public:
  void watch(Watched w) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) {
      std::thread([this] { run(); }).detach();
      started_ = true;
    }
    pending_.push_back(std::move(w));
  }

  void forget(ncclComm_t comm) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Watched> keep;
    for (Watched& w : pending_) {
      if (w.comm == comm) cudaEventDestroy(w.done);
      else keep.push_back(std::move(w));
    }
    pending_.swap(keep);
  }

 private:
  // A tenth of a second between looks: the timeouts are seconds to minutes.
  [[noreturn]] void run() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::lock_guard<std::mutex> lock(mu_);
      std::vector<Watched> keep;
      for (Watched& w : pending_) {
        cudaSetDevice(w.device);
        const cudaError_t e = cudaEventQuery(w.done);
        if (e == cudaErrorNotReady) {
          cudaGetLastError();  // this thread's own: "not ready" is no error
          // A peer that died or a network failure shows here long before the timeout (as
          // PyTorch's watchdog polls it too).
          ncclResult_t async = ncclSuccess;
          if (ncclCommGetAsyncError(w.comm, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress) {
            fail(w, std::string("failed with NCCL's asynchronous error '") + ncclGetErrorString(async) + "'");
          }
          const double ms = std::chrono::duration<double, std::milli>(Clock::now() - w.start).count();
          if (ms > w.timeoutMs) {
            fail(w, "did not finish within " + std::to_string(long(w.timeoutMs)) +
                        " ms (the group's timeoutMs): another rank died or never issued it");
          }
          keep.push_back(std::move(w));
        } else {
          // Done, or failed: a failure is the stream's, reported to the thread that reads it.
          cudaGetLastError();
          cudaEventDestroy(w.done);
        }
      }
      pending_.swap(keep);
    }
  }

  [[noreturn]] static void fail(const Watched& w, const std::string& why) {
    std::fprintf(stderr, "[nodegrad] %s (NCCL, cuda:%d) %s; aborting the communicator and ending this process\n",
                 w.what.c_str(), w.device, why.c_str());
    std::fflush(stderr);
    // Aborting releases the GPU work queued behind the collective; it gets two seconds, since
    // the process ends either way.
    ncclComm_t comm = w.comm;
    std::thread([comm] { ncclCommAbort(comm); }).detach();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::_Exit(1);
  }

  std::mutex mu_;
  bool started_ = false;
  std::vector<Watched> pending_;
};

// Never destroyed: the thread runs until the process ends, past static destruction.
Watchdog& watchdog() {
  static Watchdog* w = new Watchdog();
  return *w;
}

}  // namespace

void watchCollective(cudaEvent_t done, int device, ncclComm_t comm, double timeoutMs, std::string what) {
  watchdog().watch(Watched{done, device, comm, timeoutMs, Clock::now(), std::move(what)});
}

void forgetCollectives(ncclComm_t comm) { watchdog().forget(comm); }

}  // namespace nodegrad::cuda
