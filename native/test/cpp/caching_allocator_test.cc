// The caching allocator's bookkeeping (core/caching_allocator.h) on the CPU: host memory with a
// capacity stands in for a GPU's. Run by native/test/cpp_units.test.ts; prints one line per
// failed check and exits nonzero when any failed.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "core/caching_allocator.h"

using nodegrad::CachingAllocator;

namespace {

int failures = 0, checks = 0;
#define CHECK(cond)                                                        \
  do {                                                                     \
    checks++;                                                              \
    if (!(cond)) {                                                         \
      failures++;                                                          \
      std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
    }                                                                      \
  } while (0)

// malloc under a byte budget, counting what is outstanding.
class FakeDevice : public nodegrad::SystemMemory {
 public:
  explicit FakeDevice(size_t capacity) : capacity(capacity) {}
  void* allocate(size_t bytes) override {
    if (used + bytes > capacity) return nullptr;
    used += bytes;
    calls++;
    return std::malloc(bytes);
  }
  void release(void* p, size_t bytes) override {
    used -= bytes;
    std::free(p);
  }
  void info(size_t* freeBytes, size_t* total) override {
    *freeBytes = capacity - used;
    *total = capacity;
  }
  size_t capacity, used = 0, calls = 0;
};

constexpr size_t MiB = 1 << 20;

void sizeClasses() {
  CHECK(CachingAllocator::roundSize(0) == 512);
  CHECK(CachingAllocator::roundSize(1) == 512);
  CHECK(CachingAllocator::roundSize(512) == 512);
  CHECK(CachingAllocator::roundSize(513) == 1024);
  CHECK(CachingAllocator::segmentSize(512) == 2 * MiB);
  CHECK(CachingAllocator::segmentSize(MiB) == 2 * MiB);
  CHECK(CachingAllocator::segmentSize(MiB + 512) == 20 * MiB);
  CHECK(CachingAllocator::segmentSize(10 * MiB) == 10 * MiB);
  CHECK(CachingAllocator::segmentSize(11 * MiB + 1) == 12 * MiB);
}

void splitsAndMerges() {
  FakeDevice dev(1 << 30);
  CachingAllocator a("test:0", dev);
  // Small blocks are carved one after another from one 2 MiB segment.
  char* p = static_cast<char*>(a.allocate(1000));
  char* q = static_cast<char*>(a.allocate(0));
  char* r = static_cast<char*>(a.allocate(3000));
  CHECK(dev.calls == 1);
  CHECK(q == p + 1024);
  CHECK(r == q + 512);
  CHECK(p != q);  // a zero-byte request still gets a block of its own
  auto s = a.stats();
  CHECK(s.allocated == 1024 + 512 + 3072);
  CHECK(s.reserved == 2 * MiB);
  // Freed in the middle, then its neighbours: the segment becomes one free block again, which
  // trim() gives back.
  a.deallocate(q, 0);
  a.deallocate(p, 1000);
  a.trim();
  CHECK(dev.used == 2 * MiB);  // r still lives in it
  a.deallocate(r, 3000);
  CHECK(a.held().cachedBytes == 2 * MiB);
  a.trim();
  CHECK(dev.used == 0);
  CHECK(a.stats().reserved == 0);
  CHECK(a.stats().segmentsReleased == 1);
}

void largeBlocks() {
  FakeDevice dev(1 << 30);
  CachingAllocator a("test:0", dev);
  // 3 MiB takes a 20 MiB segment; the 17 MiB rest serves the next request.
  char* p = static_cast<char*>(a.allocate(3 * MiB));
  char* q = static_cast<char*>(a.allocate(5 * MiB));
  CHECK(dev.calls == 1);
  CHECK(q == p + 3 * MiB);
  // 30 MiB gets a segment of its own, 30 MiB exactly.
  void* big = a.allocate(30 * MiB);
  CHECK(dev.calls == 2);
  CHECK(a.stats().reserved == 50 * MiB);
  // Best fit: after the 3 MiB block is freed, a 2 MiB request takes it rather than the 12 MiB tail.
  a.deallocate(p, 3 * MiB);
  char* t = static_cast<char*>(a.allocate(2 * MiB));
  CHECK(t == p);  // 2 MiB fits the freed 3 MiB block best
  a.deallocate(t, 2 * MiB);
  a.deallocate(q, 5 * MiB);
  a.deallocate(big, 30 * MiB);
  CHECK(a.stats().allocated == 0);
  a.trim();
  CHECK(dev.used == 0);
}

// A training step's allocations, repeated: after the first step everything comes from the cache.
void reuseAcrossSteps() {
  FakeDevice dev(size_t(4) << 30);
  CachingAllocator a("test:0", dev);
  std::vector<size_t> sizes;
  for (int i = 0; i < 60; i++) sizes.push_back(size_t(1 + (i * 7919) % 4000) * 1024);
  size_t afterFirst = 0, reservedFirst = 0;
  for (int step = 0; step < 200; step++) {
    std::vector<void*> live;
    for (size_t i = 0; i < sizes.size(); i++) {
      live.push_back(a.allocate(sizes[i]));
      // Activations die in reverse during backward; some temporaries die at once.
      if (i % 3 == 2) {
        a.deallocate(live.back(), sizes[i]);
        live.back() = nullptr;
      }
    }
    for (size_t i = live.size(); i-- > 0;) if (live[i]) a.deallocate(live[i], sizes[i]);
    if (step == 0) {
      afterFirst = dev.calls;
      reservedFirst = a.stats().reserved;
    }
  }
  CHECK(dev.calls == afterFirst);
  CHECK(a.stats().reserved == reservedFirst);
  CHECK(a.stats().allocated == 0);
  CHECK(a.stats().cacheHits >= 199 * sizes.size());
  CHECK(a.stats().peakAllocated > 0 && a.stats().peakAllocated <= reservedFirst);
}

void outOfMemory() {
  FakeDevice dev(64 * MiB);
  CachingAllocator a("test:0", dev);
  std::string msg;
  try {
    a.allocate(100 * MiB);
  } catch (const nodegrad::OutOfMemoryError& e) {
    msg = e.what();
  }
  CHECK(msg.find("out of memory on test:0") != std::string::npos);
  CHECK(msg.find("tried to allocate 100.00 MiB") != std::string::npos);
  CHECK(msg.find("64.00 MiB free of 64.00 MiB") != std::string::npos);
  // A cached segment in the way is given back before giving up: 40 MiB cached, then 50 MiB fits.
  void* p = a.allocate(40 * MiB);
  a.deallocate(p, 40 * MiB);
  CHECK(a.held().cachedBytes == 40 * MiB);
  void* q = a.allocate(50 * MiB);
  CHECK(q != nullptr);
  CHECK(a.stats().reserved == 50 * MiB);
  // Allocated memory is never given back: the message counts it.
  msg.clear();
  try {
    a.allocate(20 * MiB);
  } catch (const nodegrad::OutOfMemoryError& e) {
    msg = e.what();
  }
  CHECK(msg.find("50.00 MiB allocated by nodegrad, 50.00 MiB reserved, 14.00 MiB free") != std::string::npos);
  a.deallocate(q, 50 * MiB);
}

void peaks() {
  FakeDevice dev(1 << 30);
  CachingAllocator a("test:0", dev);
  void* p = a.allocate(4 * MiB);
  void* q = a.allocate(4 * MiB);
  a.deallocate(p, 4 * MiB);
  CHECK(a.stats().peakAllocated == 8 * MiB);
  a.resetPeak();
  CHECK(a.stats().peakAllocated == 4 * MiB);
  a.deallocate(q, 4 * MiB);
  bool threw = false;
  try {
    a.deallocate(q, 4 * MiB);
  } catch (const std::logic_error&) {
    threw = true;
  }
  CHECK(threw);  // a double free is refused, not corrupting the pools
}

// Without caching, each block is a system allocation of its own rounded size, given back when
// freed: what lets a memory checker see an access past a tensor's end.
void withoutCaching() {
  FakeDevice dev(1 << 30);
  {
    CachingAllocator cached("test:1", dev);
    cached.deallocate(cached.allocate(1000), 1000);
    CHECK(cached.stats().reserved == 2 * MiB);  // with caching: a small segment, kept
  }
  CachingAllocator a("test:0", dev, /*caching=*/false);
  void* freed = a.allocate(1000);
  a.deallocate(freed, 1000);
  CHECK(a.stats().reserved == 0 && dev.used == 0);  // nothing cached: given back at once
  const size_t calls = dev.calls;
  void* p = a.allocate(1000);
  void* q = a.allocate(3 * MiB);
  CHECK(dev.calls == calls + 2 && dev.used == 1024 + 3 * MiB);  // no 2 MiB / 20 MiB segments
  CHECK(a.stats().reserved == 1024 + 3 * MiB && a.stats().allocated == 1024 + 3 * MiB);
  a.deallocate(p, 1000);
  CHECK(dev.used == 3 * MiB && a.stats().reserved == 3 * MiB);  // given back at once
  void* r = a.allocate(1000);
  CHECK(dev.calls == calls + 3);  // not served from a cache
  a.deallocate(r, 1000);
  a.deallocate(q, 3 * MiB);
  CHECK(dev.used == 0 && a.stats().reserved == 0 && a.stats().allocated == 0);
}

}  // namespace

int main() {
  sizeClasses();
  splitsAndMerges();
  largeBlocks();
  reuseAcrossSteps();
  outOfMemory();
  peaks();
  withoutCaching();
  std::printf("caching_allocator: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
