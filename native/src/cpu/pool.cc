#include "cpu/pool.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace nodegrad::cpu {
namespace {

// Size classes: multiples of 4 KiB up to 1 MiB, then eight classes per power of two, so a
// training loop's repeating sizes reuse buffers while rounding wastes at most 12.5% (whole powers
// of two wasted up to half, which showed as peak RSS).
size_t sizeClass(size_t bytes) {
  if (bytes <= 4096) return 4096;
  if (bytes <= (1u << 20)) return (bytes + 4095) & ~size_t(4095);
  size_t p = size_t(1) << 20;
  while (p * 2 <= bytes) p <<= 1;
  size_t step = p / 8;
  return (bytes + step - 1) / step * step;
}

struct Pool {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free;
  // Buffers handed out for a smaller class than their own, with their own class.
  std::unordered_map<void*, size_t> lent;
  size_t liveBuffers = 0, liveBytes = 0, cachedBytes = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: buffers may be freed by finalizers at exit
  return *p;
}

}  // namespace

void* poolAlloc(size_t bytes) {
  size_t c = sizeClass(bytes);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.liveBuffers++;
    p.liveBytes += c;
    // The smallest cached buffer of this class or a larger one up to twice its size: a cached
    // buffer is already resident, a new one adds to the resident set.
    for (auto it = p.free.lower_bound(c); it != p.free.end() && it->first <= 2 * c; ++it) {
      if (it->second.empty()) continue;
      void* ptr = it->second.back();
      it->second.pop_back();
      p.cachedBytes -= it->first;
      if (it->first != c) {
        p.lent[ptr] = it->first;
        p.liveBytes += it->first - c;
      }
      return ptr;
    }
  }
  void* ptr = std::aligned_alloc(64, c);
  if (!ptr) {
    std::lock_guard<std::mutex> lock(p.mu);
    p.liveBuffers--;
    p.liveBytes -= c;
    throw std::bad_alloc();
  }
  return ptr;
}

void poolFree(void* ptr, size_t bytes) {
  if (!ptr) return;
  size_t c = sizeClass(bytes);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  if (!p.lent.empty()) {
    auto it = p.lent.find(ptr);
    if (it != p.lent.end()) {
      c = it->second;
      p.lent.erase(it);
    }
  }
  p.liveBuffers--;
  p.liveBytes -= c;
  p.free[c].push_back(ptr);
  p.cachedBytes += c;
}

void poolTrim() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  for (auto& [c, list] : p.free) {
    for (void* ptr : list) std::free(ptr);
    list.clear();
  }
  p.cachedBytes = 0;
}

PoolStats poolStats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return {p.liveBuffers, p.liveBytes, p.cachedBytes};
}

}  // namespace nodegrad::cpu
