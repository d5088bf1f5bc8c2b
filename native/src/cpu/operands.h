// How the 'cpu' kernels read their operands and make their results, layouts included: the
// layout policy of this device. A buffer may hold oneDNN's blocked nChw{8,16}c (cpu/layout.h), as
// a convolution left it; a kernel with a blocked path reads it as stored, every other kernel reads
// through plain(), which reorders into a temporary, so no kernel reads blocked bytes by mistake.
#pragma once
#include <memory>

#include "core/tensor.h"

namespace nodegrad::cpu {

// An operand as a kernel reads it: the buffer to read (the argument's own, or a temporary copy in
// another layout that `hold` keeps for the call); its shape and dtype are the argument's.
struct Operand {
  const Buffer* buf;
  std::shared_ptr<Buffer> hold;
  int block() const { return buf->block; }
  template <typename T>
  const T* data() const {
    return buf->as<T>();
  }
  const float* f32() const { return buf->as<float>(); }
};

// Blocked, and seen under its own NCHW shape: what the layout-keeping kernels compute on as stored.
bool blockedAsIs(const TensorRef& t);
// The argument as stored, whatever its layout.
Operand asStored(const TensorRef& t);
// The argument plain row-major.
Operand plain(const TensorRef& t);
// As stored when blockedAsIs (a view of a blocked buffer under another shape is read plain).
Operand storedOrPlain(const TensorRef& t);
// A plain float32 argument of `like`'s logical shape, reordered into like's blocked layout: an
// operand beside a blocked one, so that the result can stay blocked.
Operand blockedLike(const TensorRef& t, const Buffer& like);
// An argument the kernel writes into: a blocked buffer becomes plain in place (live bytes kept
// exact), and the write is recorded (markWritten).
Buffer& writable(const TensorRef& t);

// The temporaries behind plain() and blockedLike(): a plain copy of a blocked buffer, and a copy
// of a plain float32 buffer in like's blocked layout. Pool memory for one call, not tensors.
std::shared_ptr<Buffer> plainCopyOf(const Buffer& b);
std::shared_ptr<Buffer> blockedCopyOf(const Buffer& plainSrc, const Buffer& like);
// Converts a blocked buffer to plain in place; `keep` false skips the reorder (about to be overwritten).
void makePlain(Buffer& b, bool keep);

// A plain result of `shape` on the host.
Tensor newTensor(const Shape& shape, DType dtype);
// A float32 [N, C, H, W] result in nChw{block}c (block 0: plain), its padding not yet zeroed.
Tensor newBlocked(const Shape& dims, int block);

// The dtypes the 'cpu' kernels compute in (the TS declaration checks first; these guard direct
// calls of the addon). float32 only: matmul, conv, pooling, softmax.
void requireF32(DType d, const char* name);
// float32, float64 or int64 (held as double): elementwise and reductions; int32 holds indices only.
void requireReal(DType d, const char* name);

}  // namespace nodegrad::cpu
