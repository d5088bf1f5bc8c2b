#include "core/caching_allocator.h"

#include <cstdio>
#include <cstdlib>

namespace nodegrad {

std::string formatBytes(size_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  char s[48];
  if (u == 0) snprintf(s, sizeof s, "%zu bytes", bytes);
  else snprintf(s, sizeof s, "%.2f %s", v, units[u]);
  return s;
}

size_t CachingAllocator::roundSize(size_t bytes) {
  if (bytes < kMinBlock) return kMinBlock;
  return (bytes + kMinBlock - 1) / kMinBlock * kMinBlock;
}

size_t CachingAllocator::segmentSize(size_t rounded) {
  if (rounded <= kSmallSize) return kSmallSegment;
  if (rounded < kMinLargeAlloc) return kLargeSegment;
  return (rounded + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
}

CachingAllocator::~CachingAllocator() {
  // Blocks still allocated belong to buffers that outlive the allocator only at process exit.
  releaseFreeSegments();
}

void* CachingAllocator::allocate(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t size = roundSize(bytes);
  const bool small = size <= kSmallSize;
  Pool& pool = small ? small_ : large_;
  stats_.allocations++;
  Block* b = caching_ ? takeFree(pool, size) : nullptr;
  if (b) {
    stats_.cacheHits++;
  } else {
    b = newSegment(size, small);
    if (!b) {
      // Cached segments may be what stands in the way: give them back and try once more.
      releaseFreeSegments();
      b = newSegment(size, small);
    }
    if (!b) throw OutOfMemoryError(outOfMemory(bytes));
  }
  // Split off the rest when it is worth keeping: any 512 bytes of a small segment, more than
  // 1 MiB of a large one (smaller slivers of large segments would only fragment them).
  const size_t rest = b->size - size;
  if (small ? rest >= kMinBlock : rest > kSmallSize) {
    auto* r = new Block{b->ptr + size, rest, false, small, b, b->next};
    if (b->next) b->next->prev = r;
    b->next = r;
    b->size = size;
    pool.insert(r);
  }
  b->allocated = true;
  live_[b->ptr] = b;
  stats_.allocated += b->size;
  if (stats_.allocated > stats_.peakAllocated) stats_.peakAllocated = stats_.allocated;
  return b->ptr;
}

CachingAllocator::Block* CachingAllocator::takeFree(Pool& pool, size_t size) {
  Block key{nullptr, size, false, false};
  auto it = pool.lower_bound(&key);
  if (it == pool.end()) return nullptr;
  Block* b = *it;
  pool.erase(it);
  return b;
}

CachingAllocator::Block* CachingAllocator::newSegment(size_t size, bool small) {
  const size_t seg = caching_ ? segmentSize(size) : size;
  void* p = system_.allocate(seg);
  if (!p) return nullptr;
  stats_.segmentsAllocated++;
  stats_.reserved += seg;
  if (stats_.reserved > stats_.peakReserved) stats_.peakReserved = stats_.reserved;
  return new Block{static_cast<char*>(p), seg, false, small};
}

void CachingAllocator::deallocate(void* p, size_t) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) throw std::logic_error("CachingAllocator: freeing a pointer it did not allocate");
  Block* b = it->second;
  live_.erase(it);
  b->allocated = false;
  stats_.allocated -= b->size;
  Pool& pool = b->small ? small_ : large_;
  // Merge with free neighbours, so a whole segment becomes one block again.
  for (Block* n : {b->prev, b->next}) {
    if (!n || n->allocated) continue;
    pool.erase(n);
    if (n == b->prev) {
      n->size += b->size;
      n->next = b->next;
      if (b->next) b->next->prev = n;
      delete b;
      b = n;
    } else {
      b->size += n->size;
      b->next = n->next;
      if (n->next) n->next->prev = b;
      delete n;
    }
  }
  pool.insert(b);
  if (!caching_) releaseFreeSegments();
}

void CachingAllocator::releaseFreeSegments() {
  for (Pool* pool : {&small_, &large_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (b->prev || b->next) {
        ++it;
        continue;
      }
      system_.release(b->ptr, b->size);
      stats_.reserved -= b->size;
      stats_.segmentsReleased++;
      delete b;
      it = pool->erase(it);
    }
  }
}

void CachingAllocator::trim() {
  std::lock_guard<std::mutex> lock(mu_);
  releaseFreeSegments();
}

bool CachingAllocator::cachingByEnvironment() {
  const char* v = std::getenv("NODEGRAD_CUDA_NO_CACHING");
  return !(v && std::string(v) == "1");
}

Allocator::Held CachingAllocator::held() {
  std::lock_guard<std::mutex> lock(mu_);
  return {stats_.allocated, stats_.reserved - stats_.allocated};
}

CachingAllocator::Stats CachingAllocator::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::resetPeak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peakAllocated = stats_.allocated;
  stats_.peakReserved = stats_.reserved;
}

std::string CachingAllocator::outOfMemory(size_t asked) {
  size_t freeBytes = 0, total = 0;
  system_.info(&freeBytes, &total);
  return "out of memory on " + device() + ": tried to allocate " + formatBytes(asked) + "; " +
         formatBytes(stats_.allocated) + " allocated by nodegrad, " + formatBytes(stats_.reserved) +
         " reserved, " + formatBytes(freeBytes) + " free of " + formatBytes(total) + " on the device";
}

}  // namespace nodegrad
