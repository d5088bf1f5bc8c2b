// oneDNN plumbing shared by the matmul and conv kernels: the engine, a stream per thread, the
// thread count, and a cache of primitives keyed by shapes and parameters, so that each primitive
// (and the reorders around it) is created once per shape. oneDNN picks its blocking for the thread
// count it sees at creation, so the count is fixed before the first primitive exists (issue #4).
// Without NODEGRAD_HAVE_ONEDNN only the declarations above the #ifdef exist, and the kernels throw
// 'built without oneDNN' (no silent fallback to slow loops).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace nodegrad::cpu {

// Sets the thread count of the oneDNN and OpenMP kernels. Throws once a primitive exists: oneDNN
// fixed its work split for the old count. Never called, OpenMP's default holds (OMP_NUM_THREADS).
void setNumThreads(int n);
// The thread count kernels run with.
int numThreads();

struct PrimitiveCacheStats {
  size_t entries;  // cached now
  size_t created;  // made since load; a repeated shape must not add to it
};
PrimitiveCacheStats primitiveCacheStats();

// Throws the 'built without oneDNN' error, with the reason CMake recorded at configure time.
[[noreturn]] void throwWithoutOnednn();

// Runs the oneDNN part of a kernel. A dnnl::error becomes a runtime_error carrying oneDNN's status
// text (STYLE.md 13), which NG_KERNEL turns into a JS error naming the kernel. Built without
// oneDNN, it throws the 'built without oneDNN' error instead of running `body`.
void withOnednn(const std::function<void()>& body);

}  // namespace nodegrad::cpu

#ifdef NODEGRAD_HAVE_ONEDNN
#include <dnnl.hpp>
#include <unordered_map>

#include "core/dtype.h"

namespace nodegrad::cpu::onednn {

// oneDNN's data type for float32, bfloat16 and float16.
dnnl::memory::data_type dataType(DType d);
// Throws the error for a float16 primitive oneDNN has no implementation of: what it needs.
[[noreturn]] void throwNoFloat16(const char* what);
// make() (a primitive descriptor); oneDNN's 'unimplemented' for a float16 one becomes
// throwNoFloat16's error instead of "could not create a primitive descriptor iterator".
template <typename F>
auto describe(DType d, const char* what, F make) -> decltype(make()) {
  try {
    return make();
  } catch (const dnnl::error& e) {
    if (d == DType::F16 && e.status == dnnl_unimplemented) throwNoFloat16(what);
    throw;
  }
}

dnnl::engine& engine();
// One stream per thread: worker_threads may run kernels concurrently.
dnnl::stream& stream();
// Applies the thread count to the calling thread: each worker thread has its own OpenMP settings.
void applyThreads();

// The object cached under `key`, made once (under the cache lock) by `make`.
std::shared_ptr<void> cachedRaw(const std::string& key, const std::function<std::shared_ptr<void>()>& make);
template <typename T, typename F>
std::shared_ptr<T> cached(const std::string& key, F make) {
  return std::static_pointer_cast<T>(cachedRaw(key, [&] { return std::shared_ptr<void>(std::make_shared<T>(make())); }));
}

// Every primitive uses a user-managed scratchpad, taken from the buffer pool per call: oneDNN's
// library-managed one is shared and not safe for concurrent calls from worker threads.
dnnl::primitive_attr userScratchpad();

// A pool buffer held for the length of one call.
class PoolBuffer {
 public:
  explicit PoolBuffer(size_t bytes);
  ~PoolBuffer();
  PoolBuffer(const PoolBuffer&) = delete;
  PoolBuffer& operator=(const PoolBuffer&) = delete;
  void* data() const { return p_; }

 private:
  void* p_;
  size_t bytes_;
};

// A primitive and the scratchpad it needs.
struct Step {
  dnnl::primitive prim;
  dnnl::memory::desc scratch;
  // Zero the scratchpad before each run (cpu/conv_widened.h, zeroesScratch: a primitive that reads
  // parts of it it never wrote, as if they were fresh pages).
  bool zeroScratch = false;
  // Executes on this thread's stream; args gets the scratchpad added.
  void run(std::unordered_map<int, dnnl::memory> args) const;
};

// Between the plain layout at the kernel boundary (nchw, oihw) and the layout a primitive chose
// with format_tag::any; a no-op when they agree. Keeping blocked layouts between ops (conv, BN,
// ReLU, pooling) instead of converting at every boundary is future work (issue #4).
struct Reorder {
  bool needed = false;
  dnnl::memory::desc plain, chosen;
  Step step;
  // For an input: plain -> chosen, run by input().
  static Reorder toChosen(const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen);
  // For an output: chosen -> plain, run by finish().
  static Reorder toPlain(const dnnl::memory::desc& chosen, const dnnl::memory::desc& plain);
};

// Memory for an input in the chosen layout: the user buffer itself, or a pool buffer (held by
// `hold`) filled by the reorder.
dnnl::memory input(const Reorder& r, const void* user, std::unique_ptr<PoolBuffer>& hold);
// Memory a primitive writes its output into: the user buffer, or a pool buffer for finish().
dnnl::memory output(const Reorder& r, void* user, std::unique_ptr<PoolBuffer>& hold);
// Copies an output written by a primitive in the chosen layout back into the plain user buffer.
void finish(const Reorder& r, const dnnl::memory& m, void* user);

}  // namespace nodegrad::cpu::onednn
#endif
