// What a kernel takes and gives: a TensorRef is an argument (a live buffer seen under the Raw's
// shape and dtype, in whatever layout the buffer holds: the device's kernels decide what to do
// with a layout), a Tensor a result (a new buffer, owned until the binding hands it to JS).
#pragma once
#include "core/buffer.h"

namespace nodegrad {

struct TensorRef {
  Buffer* buf;
  Shape shape;
  DType dtype;
  size_t numel() const { return size_t(nodegrad::numel(shape)); }
};

struct Tensor {
  BufferPtr buf;
  Shape shape;
  DType dtype;
};

}  // namespace nodegrad
