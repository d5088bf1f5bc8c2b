// A caching allocator for device memory whose system calls are slow and synchronizing
// (cudaMalloc / cudaFree): blocks are carved from large segments, kept when freed and reused,
// after the design of PyTorch's CUDACachingAllocator (sizes rounded to 512 bytes; blocks up to
// 1 MiB from 2 MiB segments, larger ones from 20 MiB segments or their own rounded to 2 MiB;
// best fit, split when the rest is worth keeping, merged with free neighbours on free).
//
// Plain C++ over a SystemMemory, so its bookkeeping is unit-tested on the CPU
// (native/test/cpp/caching_allocator_test.cc) with host memory standing in for the device. The
// device works on one stream, in order, so a freed block can be reused at once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "core/buffer.h"

namespace nodegrad {

// Where segments come from: the device's own allocation calls.
class SystemMemory {
 public:
  virtual ~SystemMemory() = default;
  // A segment of `bytes`, or nullptr when the device is out of memory (other failures throw).
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p, size_t bytes) = 0;
  // The device's free and total bytes, for the out-of-memory message.
  virtual void info(size_t* freeBytes, size_t* totalBytes) = 0;
};

// What an allocation that cannot be met throws: how much was asked, allocated and free.
class OutOfMemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CachingAllocator : public Allocator {
 public:
  struct Stats {
    size_t allocated = 0, reserved = 0, peakAllocated = 0, peakReserved = 0;
    // allocate() calls, those met by a cached block, and segments taken from / given back to the system.
    uint64_t allocations = 0, cacheHits = 0, segmentsAllocated = 0, segmentsReleased = 0;
  };

  static constexpr size_t kMinBlock = 512;
  static constexpr size_t kSmallSize = 1 << 20;
  static constexpr size_t kSmallSegment = 2 << 20;
  static constexpr size_t kLargeSegment = 20 << 20;
  static constexpr size_t kMinLargeAlloc = 10 << 20;
  static constexpr size_t kRoundLarge = 2 << 20;

  // `caching` false: each block a segment of its own, of the block's rounded size, given back when
  // freed, so that a memory checker sees every access past a tensor's allocation
  // (NODEGRAD_CUDA_NO_CACHING, as PyTorch's PYTORCH_NO_CUDA_MEMORY_CACHING). Slow; for checking only.
  CachingAllocator(std::string device, SystemMemory& system, bool caching = true)
      : Allocator(std::move(device)), system_(system), caching_(caching) {}
  ~CachingAllocator() override;

  void* allocate(size_t bytes) override;
  void deallocate(void* p, size_t bytes) override;
  // Gives every segment with nothing allocated in it back to the system (emptyCache()).
  void trim() override;
  // Whether the environment asks for no caching (NODEGRAD_CUDA_NO_CACHING=1), for the devices' allocators.
  static bool cachingByEnvironment();
  Held held() override;

  Stats stats();
  void resetPeak();

  // The size a request is served with, and the segment a request of that size would take.
  static size_t roundSize(size_t bytes);
  static size_t segmentSize(size_t rounded);

 private:
  struct Block {
    char* ptr;
    size_t size;
    bool allocated = false;
    bool small;
    Block* prev = nullptr;  // neighbours within the segment
    Block* next = nullptr;
  };
  struct BySize {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using Pool = std::set<Block*, BySize>;

  Block* takeFree(Pool& pool, size_t size);
  Block* newSegment(size_t size, bool small);
  void releaseFreeSegments();
  std::string outOfMemory(size_t asked);

  SystemMemory& system_;
  std::mutex mu_;
  Pool small_, large_;
  std::unordered_map<void*, Block*> live_;
  Stats stats_;
  const bool caching_;
};

// "1.50 MiB", for messages.
std::string formatBytes(size_t bytes);

}  // namespace nodegrad
