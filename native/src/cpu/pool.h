// A process-wide pool of aligned host buffers. A fresh allocation page-faults on first touch
// (measured at up to 25% of a conv's time), so freed buffers are kept per size class and reused,
// by their own class or by one up to half their size (a resident buffer costs no new memory).
#pragma once
#include <cstddef>

namespace nodegrad::cpu {

struct PoolStats {
  size_t liveBuffers;
  size_t liveBytes;
  size_t cachedBytes;
};

// Returns at least `bytes` bytes, 64-byte aligned. Never returns null (throws std::bad_alloc).
void* poolAlloc(size_t bytes);
// Gives a buffer from poolAlloc back for reuse.
void poolFree(void* p, size_t bytes);
// Releases every cached buffer to the system.
void poolTrim();
PoolStats poolStats();

}  // namespace nodegrad::cpu
