// The handles JS holds to native tensors. A handle is a code: a slot of this thread's table and the
// slot's generation, (generation << 24) | slot, below 2^53 so that a JS number holds it exactly.
// It crosses as a JS object { id: code } the JS backend makes (native/lib/backend.ts), or, for
// results the bindings wrap themselves, as an External whose data is the code. free() retires the
// slot at once (its Buffer deleted, its generation bumped), so a handle used after it reads as
// disposed, never as the tensor that took its slot over.
//
// Why not a Buffer* with a finalizer on every handle: each finalizer is a weak global handle that
// every scavenge of V8's young generation visits and whose callback it runs; for an op chain of
// small tensors, where tidy frees nearly every handle long before the collector finds it dead,
// that was half of the garbage collection (issue 17). Only a handle the garbage collector owns
// (one made outside a tidy, or that left every tidy) gets a finalizer, when JS says so.
//
// Handles do not cross threads (an External cannot be posted), so each thread keeps its table
// and needs no lock; the table is never destroyed, since finalizers may run at the env's teardown.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "core/buffer.h"

namespace nodegrad {

class HandleTable {
 public:
  static constexpr uint64_t kSlotBits = 24, kSlotMask = (uint64_t(1) << kSlotBits) - 1;
  static constexpr uint32_t kGenerations = uint32_t(1) << 29;  // 24 + 29 bits: a double's integers

  // Takes b and returns its handle's code.
  uint64_t add(Buffer* b) {
    uint32_t i;
    if (free_.empty()) {
      if (slots_.size() > kSlotMask) throw std::length_error("more than 2^24 native tensors are alive on this thread");
      i = uint32_t(slots_.size());
      slots_.push_back(Slot{});
    } else {
      i = free_.back();
      free_.pop_back();
    }
    slots_[i].buf = b;
    return codeOf(i);
  }
  // The buffer of a live handle; null for one retired (disposed) or not from this table.
  Buffer* find(uint64_t code) const {
    const uint64_t i = code & kSlotMask, generation = code >> kSlotBits;
    if (i >= slots_.size() || slots_[i].generation != generation) return nullptr;
    return slots_[i].buf;
  }
  // Whether the live handle `code` has a finalizer; marks it as having one.
  bool markCollectable(uint64_t code) {
    Slot& s = slots_[code & kSlotMask];
    const bool was = s.collectable;
    s.collectable = true;
    return was;
  }
  // Frees the live handle's storage and Buffer, and retires its slot.
  void release(uint64_t code) {
    const uint32_t i = uint32_t(code & kSlotMask);
    Slot& s = slots_[i];
    releaseStorage(*s.buf);
    delete s.buf;
    s = Slot{nullptr, s.generation + 1 == kGenerations ? 1 : s.generation + 1, false};
    free_.push_back(i);
  }
  // Frees every live handle's storage (the env's teardown: no JS runs after it).
  void releaseAll() {
    for (uint32_t i = 0; i < slots_.size(); i++) {
      if (slots_[i].buf) release(codeOf(i));
    }
  }

 private:
  uint64_t codeOf(uint32_t i) const { return (uint64_t(slots_[i].generation) << kSlotBits) | i; }

  struct Slot {
    Buffer* buf = nullptr;
    uint32_t generation = 1;  // never 0: no code is 0, a null External's data
    bool collectable = false;
  };
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
};

}  // namespace nodegrad
