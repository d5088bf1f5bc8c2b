// Storage that knows its device: a Buffer is the bytes of one tensor (views share it), the
// allocator of the device that holds and frees them, their dtype and their layout. Every device
// allocates through the Allocator interface: the host pool for 'cpu' (cpu/host_allocator.h), a
// device pool for CUDA. No napi here: the addons of every device share this core.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace nodegrad {

// A device's memory. Besides allocating, it keeps the count of the tensors JS holds on the device
// and their bytes (memoryStats): exact, because only adopt(), replaceStorage() and
// releaseStorage() below change them.
class Allocator {
 public:
  // Bytes held from the system: for live allocations (rounded up to the allocator's size
  // classes), and kept for reuse.
  struct Held {
    size_t liveBytes;
    size_t cachedBytes;
  };

  explicit Allocator(std::string device) : device_(std::move(device)) {}
  virtual ~Allocator() = default;
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // The device's name as JS knows it: 'cpu', 'cuda:0', ...
  const std::string& device() const { return device_; }
  // At least `bytes` bytes (a distinct block even for 0); throws std::bad_alloc.
  virtual void* allocate(size_t bytes) = 0;
  // Gives back a block from allocate() with the same `bytes`.
  virtual void deallocate(void* p, size_t bytes) = 0;
  // Returns what is kept for reuse to the system.
  virtual void trim() = 0;
  virtual Held held() = 0;

  std::atomic<int64_t> liveTensors{0};
  std::atomic<int64_t> liveTensorBytes{0};

 private:
  std::string device_;
};

struct Buffer {
  Allocator* device = nullptr;
  void* data = nullptr;
  // Allocated bytes (a blocked layout's padding included) and logical elements.
  size_t bytes = 0;
  size_t numel = 0;
  DType dtype = DType::F32;
  // The layout. 0: plain row-major. 8 or 16, or C (channels last): an
  // [N, C, H, W] tensor held in oneDNN's nChw{block}c (cpu/layout.h), as a 'cpu' convolution
  // produced it; `dims` is then its logical NCHW shape (a view's Raw may carry another shape over
  // the same buffer). Only the device's own kernels look at it: reads and every other kernel see
  // plain data.
  int block = 0;
  Shape dims;
  // Bumped by every write into an existing buffer (copyInto, the optimizer steps); `derived`
  // (a conv weight reordered into a primitive's layout, cpu/conv.cc) is valid for one generation.
  uint64_t generation = 0;
  mutable std::shared_ptr<void> derived;
  bool freed = false;
  // JS holds a handle to it: counted in its device's live tensors.
  bool adopted = false;
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Frees a buffer's storage (unless already freed) and the Buffer itself.
struct BufferDeleter {
  void operator()(Buffer* b) const;
};
using BufferPtr = std::unique_ptr<Buffer, BufferDeleter>;

// A new buffer on `device` holding `numel` elements of `dtype` in `bytes` bytes (more than
// numel elements when a layout pads).
BufferPtr newBuffer(Allocator& device, size_t numel, DType dtype, size_t bytes);
inline BufferPtr newBuffer(Allocator& device, size_t numel, DType dtype) {
  return newBuffer(device, numel, dtype, numel * elementSize(dtype));
}
// Counts the buffer as a tensor JS holds (its handle was just made).
void adopt(Buffer& b);
// Gives the buffer new storage of `bytes` from its device (a layout change in place), freeing the
// old one and keeping the live byte count exact.
void replaceStorage(Buffer& b, void* data, size_t bytes);
// Frees the storage now (dispose); the Buffer object lives until its handle is collected.
void releaseStorage(Buffer& b);
// Records a write into an existing buffer: bumps its generation and drops what was derived from it.
void markWritten(Buffer& b);

}  // namespace nodegrad
