// The 'cpu' device's memory functions (DeviceMemory): uploads and reads are copies in host
// memory, a read of a blocked buffer reorders straight into the caller's array, and every kernel
// has finished when it returns, so there is nothing to wait for.
#include <cstring>
#include <string>

#include "cpu/device.h"
#include "cpu/host_allocator.h"
#include "cpu/layout.h"
#include "cpu/operands.h"

namespace nodegrad::cpu {
namespace {

Tensor upload(const void* host, size_t numel, const Shape& shape, DType dtype) {
  Tensor t{newBuffer(hostAllocator(), numel, dtype), shape, dtype};
  if (t.buf->bytes) std::memcpy(t.buf->data, host, t.buf->bytes);
  return t;
}

void download(const TensorRef& x, void* host) {
  const Buffer& b = *x.buf;
  if (b.block != 0) return blockedToPlain(b.dims, b.block, b.dtype, b.data, host);
  if (b.bytes) std::memcpy(host, b.data, b.numel * elementSize(b.dtype));
}

// A blocked source keeps its layout when dst is seen under the same logical shape; otherwise both
// are plain. dst's old contents are never read.
void copyInto(const TensorRef& dst, const TensorRef& src) {
  Buffer& d = *dst.buf;
  markWritten(d);
  Operand s = asStored(src);
  if (src.buf->block != 0 && dst.shape == src.buf->dims && &d != src.buf) {
    if (d.block != src.buf->block || d.dims != src.buf->dims) {
      replaceStorage(d, d.device->allocate(src.buf->bytes), src.buf->bytes);
      d.block = src.buf->block;
      d.dims = src.buf->dims;
    }
  } else {
    makePlain(d, &d == src.buf);
    s = plain(src);
  }
  if (d.bytes && &d != s.buf) std::memmove(d.data, s.buf->data, d.bytes);
}

void sync() {}

// A block of all C channels is NHWC; with C = 8 or 16 it is both, and named by its block.
std::string layoutName(const Buffer& b) {
  if (b.block == 0) return "nchw";
  return b.block == 8 || b.block == 16 ? "nChw" + std::to_string(b.block) + "c" : "nhwc";
}

}  // namespace

DeviceMemory memoryFunctions() { return {upload, download, copyInto, sync, layoutName}; }

}  // namespace nodegrad::cpu
