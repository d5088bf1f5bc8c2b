// The MPI process group of the 'cpu' addon (no napi). Every MPI call, MPI_Init_thread included,
// runs on one communication thread, in the order the collectives were issued: JS keeps computing
// while a collective is in flight (DistributedDataParallel overlaps backward with it), the calls
// need no more than MPI_THREAD_FUNNELED, and one rank's collectives are issued in the same order
// on every rank, which MPI requires. PyTorch's MPI process group works the same way.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace nodegrad::mpi {

enum class ReduceOp { Sum, Avg, Max, Min };

// One queued collective: done once it ran, with an error message if it failed.
class Work {
 public:
  explicit Work(std::string what) : what_(std::move(what)) {}
  const std::string& what() const { return what_; }
  void finish(std::string error);
  bool done();
  // Waits up to `timeout` (forever when zero); false on timeout. Throws the collective's error.
  bool wait(std::chrono::milliseconds timeout);

 private:
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::string error_;
};
using WorkPtr = std::shared_ptr<Work>;

struct WorldInfo {
  int rank = 0;
  int size = 1;
  // MPI_THREAD_* level granted, and the library's version string.
  int threadLevel = 0;
  std::string library;
};

// Starts the communication thread and MPI on it, once per process; later calls return the same.
// Throws with MPI's message when MPI_Init_thread fails.
WorldInfo init();
// MPI_Finalize on the communication thread after everything queued, then joins it. Idempotent;
// also run at process exit if JS did not call it. `exiting`: the process is about to exit, and a
// collective still running (a peer died, or JS stopped waiting) is left behind instead of waited
// for, so the process exits rather than hang in MPI. `failed`: it exits with an error, and leaves
// without MPI_Finalize (which waits for the other ranks), so that mpirun ends the job.
void finalize(bool exiting, bool failed = false);

// The collectives, queued: each names itself and the rank in its error. Buffers are host memory
// that must stay alive until the work is done (JS holds the tensors); `keep` holds a temporary
// that an input is read from (a plain copy of a blocked buffer).
using Keep = std::shared_ptr<void>;
WorkPtr allReduce(void* data, size_t count, DType dtype, ReduceOp op);
WorkPtr broadcast(void* data, size_t count, DType dtype, int root);
// Several tensors of one dtype as one collective: the communication thread packs them into one
// buffer, all-reduces or broadcasts it, and writes each back (DDP's buckets and buffers, without a
// copy on the JS thread).
using Parts = std::vector<std::pair<void*, size_t>>;
WorkPtr allReduceCoalesced(Parts parts, DType dtype, ReduceOp op);
WorkPtr broadcastCoalesced(Parts parts, DType dtype, int root);
// Rank r's `counts[r]` elements, in rank order, into `out` (sum of counts elements).
WorkPtr allGather(const void* in, void* out, const std::vector<int>& counts, DType dtype, Keep keep);
// The reduction of `in` (size * count elements) over ranks; rank r keeps block r in `out`.
WorkPtr reduceScatter(const void* in, void* out, size_t count, DType dtype, ReduceOp op, Keep keep);
WorkPtr barrier();

}  // namespace nodegrad::mpi
