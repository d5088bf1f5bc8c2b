#include "cpu/host_allocator.h"

#include "cpu/pool.h"

namespace nodegrad::cpu {
namespace {

class HostAllocator final : public Allocator {
 public:
  HostAllocator() : Allocator("cpu") {}
  // A zero-byte request still gets a block of its own: every buffer has a distinct address.
  void* allocate(size_t bytes) override { return poolAlloc(bytes == 0 ? 1 : bytes); }
  void deallocate(void* p, size_t bytes) override { poolFree(p, bytes == 0 ? 1 : bytes); }
  void trim() override { poolTrim(); }
  Held held() override {
    auto s = poolStats();
    return {s.liveBytes, s.cachedBytes};
  }
};

}  // namespace

Allocator& hostAllocator() {
  static auto* a = new HostAllocator();
  return *a;
}

}  // namespace nodegrad::cpu
