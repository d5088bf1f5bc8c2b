// The 'cpu' data movement kernels (KernelTable entries), for every dtype: elements are copied as
// 2-, 4- or 8-byte words from plain operands. OneHot checks each index as it reads it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/half.h"
#include "cpu/device.h"
#include "cpu/operands.h"
#include "cpu/reduce.h"

namespace nodegrad::cpu {
namespace {

std::vector<int64_t> stridesOf(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t a = 1;
  for (size_t d = s.size(); d-- > 0;) {
    st[d] = a;
    a *= s[d];
  }
  return st;
}

// A new tensor of outShape reading x at base + idx . strides.
Tensor gather(const TensorRef& x, int64_t base, const std::vector<int64_t>& strides, const Shape& outShape) {
  Operand xp = plain(x);
  Tensor out = newTensor(outShape, x.dtype);
  switch (elementSize(x.dtype)) {
    case 2: gatherStrided(xp.data<uint16_t>(), base, strides, outShape, out.buf->as<uint16_t>()); break;
    case 4: gatherStrided(xp.data<uint32_t>(), base, strides, outShape, out.buf->as<uint32_t>()); break;
    default: gatherStrided(xp.data<uint64_t>(), base, strides, outShape, out.buf->as<uint64_t>()); break;
  }
  return out;
}

Tensor transposeKernel(const TensorRef& x, const std::vector<int64_t>& perm) {
  auto st = stridesOf(x.shape);
  Shape outShape(perm.size());
  std::vector<int64_t> src(perm.size());
  for (size_t i = 0; i < perm.size(); i++) {
    outShape[i] = x.shape[size_t(perm[i])];
    src[i] = st[size_t(perm[i])];
  }
  return gather(x, 0, src, outShape);
}

Tensor broadcastToKernel(const TensorRef& x, const Shape& shape) {
  return gather(x, 0, broadcastStrides(x.shape, shape), shape);
}

Tensor sliceKernel(const TensorRef& x, const Shape& begin, const Shape& size, const Shape& step) {
  auto st = stridesOf(x.shape);
  int64_t base = 0;
  std::vector<int64_t> src(st.size());
  for (size_t d = 0; d < st.size(); d++) {
    base += begin[d] * st[d];
    src[d] = st[d] * step[d];
  }
  if (numel(size) == 0) base = 0;
  return gather(x, base, src, size);
}

Tensor padKernel(const TensorRef& x, const Shape& before, const Shape& after, double value) {
  Operand xp = plain(x);
  const size_t rank = x.shape.size();
  Shape outShape(rank);
  for (size_t d = 0; d < rank; d++) outShape[d] = x.shape[d] + before[d] + after[d];
  Tensor out = newTensor(outShape, x.dtype);
  auto ost = stridesOf(outShape);
  int64_t base = 0;
  for (size_t d = 0; d < rank; d++) base += before[d] * ost[d];
  auto fillCopy = [&](auto* o, auto fillValue) {
    std::fill(o, o + numel(outShape), fillValue);
    using T = std::remove_pointer_t<decltype(o)>;
    const T* src = xp.data<T>();
    forEachBroadcast(x.shape, stridesOf(x.shape), ost, [&](int64_t, int64_t ix, int64_t io) { o[base + io] = src[ix]; });
  };
  switch (x.dtype) {
    case DType::F32: fillCopy(out.buf->as<float>(), float(value)); break;
    case DType::I32: fillCopy(out.buf->as<int32_t>(), int32_t(value)); break;
    case DType::BF16: fillCopy(out.buf->as<BFloat16>(), BFloat16(value)); break;
    case DType::F16: fillCopy(out.buf->as<Float16>(), Float16(value)); break;
    default: fillCopy(out.buf->as<double>(), value); break;
  }
  return out;
}

Tensor concatKernel(const std::vector<TensorRef>& xs, int64_t axis) {
  std::vector<Operand> ps;
  ps.reserve(xs.size());
  for (auto& t : xs) ps.push_back(plain(t));
  Shape outShape = xs[0].shape;
  outShape[size_t(axis)] = 0;
  for (auto& t : xs) outShape[size_t(axis)] += t.shape[size_t(axis)];
  // Each input is one block of (its size along axis) x inner per outer index.
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; d++) outer *= outShape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < outShape.size(); d++) inner *= outShape[d];
  const size_t es = elementSize(xs[0].dtype);
  Tensor out = newTensor(outShape, xs[0].dtype);
  auto* o = out.buf->as<uint8_t>();
  const size_t rowOut = size_t(outShape[size_t(axis)] * inner) * es;
  size_t off = 0;
  for (size_t k = 0; k < xs.size(); k++) {
    const size_t block = size_t(xs[k].shape[size_t(axis)] * inner) * es;
    const auto* src = ps[k].data<uint8_t>();
    for (int64_t p = 0; p < outer; p++) std::memcpy(o + size_t(p) * rowOut + off, src + size_t(p) * block, block);
    off += block;
  }
  return out;
}

// A trailing class dim of 0/1; an index equal to ignoreIndex gives a zero row.
Tensor oneHotKernel(const TensorRef& indices, int64_t classes, DType dtype, std::optional<double> ignore) {
  Operand idx = plain(indices);
  Shape outShape = indices.shape;
  outShape.push_back(classes);
  Tensor out = newTensor(outShape, dtype);
  std::memset(out.buf->data, 0, out.buf->bytes);  // 0 is all-zero bits in every dtype
  for (size_t i = 0; i < indices.numel(); i++) {
    const double v = indices.dtype == DType::I32 ? double(idx.data<int32_t>()[i]) : idx.data<double>()[i];
    if (ignore && v == *ignore) continue;
    if (!(v >= 0 && v < double(classes)) || v != std::floor(v)) {
      throw std::runtime_error("index " + std::to_string(int64_t(v)) + " at position " + std::to_string(i) +
                               " is out of range for " + std::to_string(classes) + " classes");
    }
    const size_t at = i * size_t(classes) + size_t(v);
    switch (dtype) {
      case DType::F32: out.buf->as<float>()[at] = 1.0f; break;
      case DType::I32: out.buf->as<int32_t>()[at] = 1; break;
      case DType::BF16: out.buf->as<BFloat16>()[at] = BFloat16(1.0); break;
      case DType::F16: out.buf->as<Float16>()[at] = Float16(1.0); break;
      default: out.buf->as<double>()[at] = 1.0; break;
    }
  }
  return out;
}

}  // namespace

void addMovementKernels(KernelTable& t) {
  t.transpose = transposeKernel;
  t.broadcastTo = broadcastToKernel;
  t.slice = sliceKernel;
  t.pad = padKernel;
  t.concat = concatKernel;
  t.oneHot = oneHotKernel;
}

}  // namespace nodegrad::cpu
