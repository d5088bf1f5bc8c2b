#include "cpu/onednn.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "build_config.h"
#include "cpu/pool.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef NODEGRAD_HAVE_ONEDNN
#include <dnnl_debug.h>
#endif

namespace nodegrad::cpu {
namespace {

// 0: never set, OpenMP's own default (OMP_NUM_THREADS, else the core count) holds.
std::atomic<int> requestedThreads{0};
std::atomic<size_t> created{0};

// Entries past this are dropped all at once: shapes in training repeat, so a full cache means
// shapes that vary per call, where keeping old primitives only costs memory.
constexpr size_t kMaxEntries = 4096;

struct Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<void>> map;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: finalizers may still run at exit
  return *c;
}

}  // namespace

void setNumThreads(int n) {
  if (n < 1) throw std::runtime_error("the thread count must be at least 1, got " + std::to_string(n));
  if (created.load() > 0) {
    throw std::runtime_error("the thread count must be set before the first matmul or convolution: oneDNN primitives "
                             "already exist for " + std::to_string(numThreads()) +
                             " threads (set OMP_NUM_THREADS, or call setNumThreads first)");
  }
#ifdef _OPENMP
  requestedThreads = n;
  omp_set_num_threads(n);
#else
  throw std::runtime_error("the addon was built without OpenMP: kernels run on one thread");
#endif
}

int numThreads() {
#ifdef _OPENMP
  int n = requestedThreads.load();
  return n > 0 ? n : omp_get_max_threads();
#else
  return 1;
#endif
}

PrimitiveCacheStats primitiveCacheStats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.map.size(), created.load()};
}

void throwWithoutOnednn() {
  throw std::runtime_error(std::string("the 'cpu' backend was built without oneDNN (") + NODEGRAD_FEATURE_ONEDNN +
                           "); rebuild with libdnnl-dev installed, or use the 'ts' device");
}

void withOnednn(const std::function<void()>& body) {
#ifdef NODEGRAD_HAVE_ONEDNN
  try {
    body();
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string(e.what()) + " (oneDNN status: " + dnnl_status2str(e.status) + ")");
  }
#else
  (void)body;
  throwWithoutOnednn();
#endif
}

}  // namespace nodegrad::cpu

#ifdef NODEGRAD_HAVE_ONEDNN
namespace nodegrad::cpu::onednn {

dnnl::memory::data_type dataType(DType d) {
  switch (d) {
    case DType::BF16: return dnnl::memory::data_type::bf16;
    case DType::F16: return dnnl::memory::data_type::f16;
    case DType::F32: return dnnl::memory::data_type::f32;
    default: throw std::logic_error(std::string("no oneDNN kernels in ") + dtypeName(d));
  }
}

void throwNoFloat16(const char* what) {
  const dnnl_version_t* v = dnnl_version();
  throw std::runtime_error(std::string("float16 ") + what + " is not implemented by the linked oneDNN " +
                           std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
                           " on CPUs: it needs the AVX512-FP16 ISA through oneDNN's avx512_core_fp16 kernels, which this "
                           "version does not have (later releases add them); compute it in bfloat16 or float32");
}

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

void applyThreads() {
#ifdef _OPENMP
  int n = requestedThreads.load();
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
#endif
}

std::shared_ptr<void> cachedRaw(const std::string& key, const std::function<std::shared_ptr<void>()>& make) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.map.find(key);
  if (it != c.map.end()) return it->second;
  if (c.map.size() >= kMaxEntries) c.map.clear();  // callers hold shared_ptrs to entries in use
  // Counted before making: a thread count set now would no longer match what oneDNN sees.
  created++;
  applyThreads();
  auto v = make();
  c.map.emplace(key, v);
  return v;
}

dnnl::primitive_attr userScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

PoolBuffer::PoolBuffer(size_t bytes) : p_(poolAlloc(bytes == 0 ? 1 : bytes)), bytes_(bytes == 0 ? 1 : bytes) {}
PoolBuffer::~PoolBuffer() { poolFree(p_, bytes_); }

void Step::run(std::unordered_map<int, dnnl::memory> args) const {
  std::unique_ptr<PoolBuffer> pad;
  if (scratch.get_size() > 0) {
    pad = std::make_unique<PoolBuffer>(scratch.get_size());
    if (zeroScratch) std::memset(pad->data(), 0, scratch.get_size());
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratch, engine(), pad->data()));
  }
  prim.execute(stream(), args);
  stream().wait();
}

namespace {
Reorder makeReorder(const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen, bool toChosen) {
  Reorder r;
  r.plain = plain;
  r.chosen = chosen;
  r.needed = plain != chosen;
  if (r.needed) {
    const auto& from = toChosen ? plain : chosen;
    const auto& to = toChosen ? chosen : plain;
    dnnl::reorder::primitive_desc pd(engine(), from, engine(), to, userScratchpad());
    r.step = Step{dnnl::reorder(pd), pd.scratchpad_desc()};
  }
  return r;
}
}  // namespace

Reorder Reorder::toChosen(const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen) {
  return makeReorder(plain, chosen, true);
}

Reorder Reorder::toPlain(const dnnl::memory::desc& chosen, const dnnl::memory::desc& plain) {
  return makeReorder(plain, chosen, false);
}

dnnl::memory input(const Reorder& r, const void* user, std::unique_ptr<PoolBuffer>& hold) {
  // oneDNN takes a non-const handle; an input is only read.
  dnnl::memory u(r.plain, engine(), const_cast<void*>(user));
  if (!r.needed) return u;
  hold = std::make_unique<PoolBuffer>(r.chosen.get_size());
  dnnl::memory m(r.chosen, engine(), hold->data());
  r.step.run({{DNNL_ARG_FROM, u}, {DNNL_ARG_TO, m}});
  return m;
}

dnnl::memory output(const Reorder& r, void* user, std::unique_ptr<PoolBuffer>& hold) {
  if (!r.needed) return dnnl::memory(r.plain, engine(), user);
  hold = std::make_unique<PoolBuffer>(r.chosen.get_size());
  return dnnl::memory(r.chosen, engine(), hold->data());
}

void finish(const Reorder& r, const dnnl::memory& m, void* user) {
  if (!r.needed) return;
  r.step.run({{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, dnnl::memory(r.plain, engine(), user)}});
}

}  // namespace nodegrad::cpu::onednn
#endif
