// How the 'cpu' kernels read their operands and make their results, layouts included: the
// layout policy of this device. A buffer may hold oneDNN's blocked nChw{8,16}c, or a half type's
// channels-last nChw{C}c (cpu/layout.h), as a convolution left it; a kernel with a blocked path reads it as stored, every other kernel reads
// through plain(), which reorders into a temporary, so no kernel reads blocked bytes by mistake.
#pragma once
#include <memory>
#include <type_traits>

#include "core/half.h"
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
// A plain argument of `like`'s logical shape and dtype, reordered into like's blocked layout: an
// operand beside a blocked one, so that the result can stay blocked.
Operand blockedLike(const TensorRef& t, const Buffer& like);
// An argument the kernel writes into: a blocked buffer becomes plain in place (live bytes kept
// exact), and the write is recorded (markWritten).
Buffer& writable(const TensorRef& t);

// The temporaries behind plain() and blockedLike(): a plain copy of a blocked buffer, and a copy
// of a plain buffer in like's blocked layout. Pool memory for one call, not tensors.
std::shared_ptr<Buffer> plainCopyOf(const Buffer& b);
std::shared_ptr<Buffer> blockedCopyOf(const Buffer& plainSrc, const Buffer& like);
// Converts a blocked buffer to plain in place; `keep` false skips the reorder (about to be overwritten).
void makePlain(Buffer& b, bool keep);

// A plain result of `shape` on the host.
Tensor newTensor(const Shape& shape, DType dtype);
// An [N, C, H, W] result in nChw{block}c (block 0: plain), its padding not yet zeroed.
Tensor newBlocked(const Shape& dims, int block, DType dtype = DType::F32);

// The half types beside kernels that compute in float32 (pooling, batch norm on plain data): a half
// operand's plain float32 copy (plain() of any other), and a float32 result rounded into a new tensor of
// dtype `to` (returned as it is when `to` is float32). Each conversion runs on OpenMP's threads.
Operand widened(const TensorRef& t);
Tensor narrowed(Tensor&& f, DType to);
// Bulk conversions between float32 and a half type, in parallel for large n.
void widen(DType from, const void* src, float* dst, size_t n);
void narrow(DType to, const float* src, void* dst, size_t n);

// Runs f(static_cast<T*>(nullptr)) with T the element type of float32 (float) or a half type
// (BFloat16, Float16): the kernels with a blocked path compute on any of the three as stored.
template <typename F>
void withFloatElement(DType dt, F f) {
  if (dt == DType::BF16) f(static_cast<BFloat16*>(nullptr));
  else if (dt == DType::F16) f(static_cast<Float16*>(nullptr));
  else f(static_cast<float*>(nullptr));
}
// The T of withFloatElement's argument.
template <typename P>
using ElementOf = std::remove_pointer_t<P>;

// The dtypes the 'cpu' kernels compute in (the TS declaration checks first; these guard direct
// calls of the addon). float32 and the half types: matmul, conv (float16 where oneDNN has it),
// pooling, softmax, batch norm.
void requireF32OrHalf(DType d, const char* name);
// float32, float64, int64 (held as double) or a half type: elementwise and reductions; int32
// holds indices only.
void requireReal(DType d, const char* name);
// b has a's dtype (operands of one kernel that the binding does not compare).
void requireSameDType(const TensorRef& a, const char* nameA, const TensorRef& b, const char* nameB);

}  // namespace nodegrad::cpu
