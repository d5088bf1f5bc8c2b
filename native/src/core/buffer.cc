#include "core/buffer.h"

namespace nodegrad {

void BufferDeleter::operator()(Buffer* b) const {
  releaseStorage(*b);
  delete b;
}

BufferPtr newBuffer(Allocator& device, size_t numel, DType dtype, size_t bytes) {
  BufferPtr b(new Buffer());
  b->device = &device;
  b->numel = numel;
  b->dtype = dtype;
  b->data = device.allocate(bytes);
  b->bytes = bytes;
  return b;
}

void adopt(Buffer& b) {
  if (b.adopted) return;
  b.adopted = true;
  b.device->liveTensors++;
  b.device->liveTensorBytes += int64_t(b.bytes);
}

void replaceStorage(Buffer& b, void* data, size_t bytes) {
  b.device->deallocate(b.data, b.bytes);
  if (b.adopted) b.device->liveTensorBytes += int64_t(bytes) - int64_t(b.bytes);
  b.data = data;
  b.bytes = bytes;
}

void releaseStorage(Buffer& b) {
  if (b.freed) return;
  b.freed = true;
  b.derived.reset();
  b.device->deallocate(b.data, b.bytes);
  if (b.adopted) {
    b.device->liveTensors--;
    b.device->liveTensorBytes -= int64_t(b.bytes);
  }
}

void markWritten(Buffer& b) {
  b.generation++;
  b.derived.reset();
}

}  // namespace nodegrad
