// Data movement on the device for every dtype: elements move as 4- or 8-byte words (only OneHot
// writes values), as on 'cpu'. Transpose, BroadcastTo and Slice are one gather each, an output
// index mapped to a source offset; Pad fills, then scatters x into the interior; Concat writes
// each input's slab with its own pass. OneHot checks its indices on the device and reads back
// only the first bad position, so it throws what 'cpu' throws.
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/half.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace nodegrad::cuda {
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

// Offsets base + idx . strides over the indices of `shape`, size-1 dims dropped and a dim merged
// into the one outside it where the strides allow (a broadcast's repeated run, a slice's full rows).
StridedIndex stridedOver(const Shape& shape, const std::vector<int64_t>& strides, int64_t base) {
  StridedIndex idx;
  idx.base = base;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 1) continue;
    const int r = idx.rank;
    if (r > 0 && idx.stride[r - 1] == strides[d] * shape[d]) {
      idx.size[r - 1] *= shape[d];
      idx.stride[r - 1] = strides[d];
      continue;
    }
    if (r == kMaxDims) {
      throw std::runtime_error("the 'cuda' backend moves at most " + std::to_string(kMaxDims) +
                               " dims (after merging), got " + fmtShape(shape));
    }
    idx.size[r] = shape[d];
    idx.stride[r] = strides[d];
    idx.rank = r + 1;
  }
  return idx;
}

template <typename U>
void gatherOn(const void* src, void* dst, int64_t n, StridedIndex from) {
  const U* s = static_cast<const U*>(src);
  U* o = static_cast<U*>(dst);
  forEach(n, [=] NG_DEVICE(int64_t i) { o[i] = s[from.offset(i)]; }, "Gather");
}

// A new tensor of outShape reading x at base + idx . strides.
Tensor gather(const TensorRef& x, int64_t base, const std::vector<int64_t>& strides, const Shape& outShape) {
  Tensor out = empty(outShape, x.dtype);
  const int64_t n = numel(outShape);
  if (n == 0) return out;
  const StridedIndex from = stridedOver(outShape, strides, base);
  if (elementSize(x.dtype) == 2) gatherOn<uint16_t>(x.buf->data, out.buf->data, n, from);
  else if (elementSize(x.dtype) == 4) gatherOn<uint32_t>(x.buf->data, out.buf->data, n, from);
  else gatherOn<uint64_t>(x.buf->data, out.buf->data, n, from);
  return out;
}

Tensor transpose(const TensorRef& x, const std::vector<int64_t>& perm) {
  auto st = stridesOf(x.shape);
  Shape outShape(perm.size());
  std::vector<int64_t> src(perm.size());
  for (size_t i = 0; i < perm.size(); i++) {
    outShape[i] = x.shape[size_t(perm[i])];
    src[i] = st[size_t(perm[i])];
  }
  return gather(x, 0, src, outShape);
}

// PyTorch's rule, checked here because a device read past x's end would not fault as plainly.
Tensor broadcastTo(const TensorRef& x, const Shape& shape) {
  const size_t rank = shape.size();
  bool ok = x.shape.size() <= rank;
  for (size_t i = 0; ok && i < x.shape.size(); i++) {
    const int64_t d = x.shape[i], o = shape[i + rank - x.shape.size()];
    ok = d == o || d == 1;
  }
  if (!ok) throw std::runtime_error("cannot broadcast " + fmtShape(x.shape) + " to " + fmtShape(shape));
  std::vector<int64_t> st(rank, 0);
  int64_t acc = 1;
  for (size_t i = x.shape.size(); i-- > 0;) {
    st[i + rank - x.shape.size()] = x.shape[i] == 1 ? 0 : acc;
    acc *= x.shape[i];
  }
  return gather(x, 0, st, shape);
}

// Any step, negative included, whose elements all lie in x (the binding checks the upper end).
Tensor slice(const TensorRef& x, const Shape& begin, const Shape& size, const Shape& step) {
  auto st = stridesOf(x.shape);
  int64_t base = 0;
  std::vector<int64_t> src(st.size());
  for (size_t d = 0; d < st.size(); d++) {
    const int64_t last = begin[d] + (size[d] - 1) * step[d];
    if (size[d] > 0 && (begin[d] < 0 || begin[d] >= x.shape[d] || last < 0 || last >= x.shape[d])) {
      throw std::runtime_error("slice of dim " + std::to_string(d) + " is out of range");
    }
    base += begin[d] * st[d];
    src[d] = st[d] * step[d];
  }
  return gather(x, base, src, size);
}

template <typename U>
void padOn(const void* src, void* dst, int64_t nOut, int64_t nIn, U fill, StridedIndex into) {
  const U* s = static_cast<const U*>(src);
  U* o = static_cast<U*>(dst);
  forEach(nOut, [=] NG_DEVICE(int64_t i) { o[i] = fill; }, "PadFill");
  forEach(nIn, [=] NG_DEVICE(int64_t i) { o[into.offset(i)] = s[i]; }, "Pad");
}

// The bits of `value` in dtype d, as a word of d's size (a half type in 2 bytes, rounded through
// float32 as Fill rounds; float32 or int32 in 4).
template <typename U>
U wordOf(double value, DType d) {
  U w = 0;
  if constexpr (sizeof(U) == sizeof(double)) {
    std::memcpy(&w, &value, sizeof w);
  } else if constexpr (sizeof(U) == 2) {
    w = d == DType::BF16 ? BFloat16(value).bits : Float16(value).bits;
  } else if (d == DType::F32) {
    const float f = float(value);
    std::memcpy(&w, &f, sizeof w);
  } else {
    const int32_t v = int32_t(value);
    std::memcpy(&w, &v, sizeof w);
  }
  return w;
}

// Non-negative pads (the binding checks them).
Tensor pad(const TensorRef& x, const Shape& before, const Shape& after, double value) {
  const size_t rank = x.shape.size();
  Shape outShape(rank);
  for (size_t d = 0; d < rank; d++) outShape[d] = x.shape[d] + before[d] + after[d];
  Tensor out = empty(outShape, x.dtype);
  const auto ost = stridesOf(outShape);
  int64_t base = 0;
  for (size_t d = 0; d < rank; d++) base += before[d] * ost[d];
  const int64_t nOut = numel(outShape), nIn = numel(x.shape);
  if (nOut == 0) return out;
  const StridedIndex into = stridedOver(x.shape, ost, base);
  if (elementSize(x.dtype) == 2) padOn(x.buf->data, out.buf->data, nOut, nIn, wordOf<uint16_t>(value, x.dtype), into);
  else if (elementSize(x.dtype) == 4) padOn(x.buf->data, out.buf->data, nOut, nIn, wordOf<uint32_t>(value, x.dtype), into);
  else padOn(x.buf->data, out.buf->data, nOut, nIn, wordOf<uint64_t>(value, x.dtype), into);
  return out;
}

// One input's `outer` blocks of `block` words, each at `off` in an output row of `row` words.
template <typename U>
void concatOn(const void* src, void* dst, int64_t outer, int64_t block, int64_t row, int64_t off) {
  const U* s = static_cast<const U*>(src);
  U* o = static_cast<U*>(dst);
  forEach(outer * block, [=] NG_DEVICE(int64_t i) {
    const int64_t p = i / block;
    o[p * row + off + (i - p * block)] = s[i];
  }, "Concat");
}

Tensor concat(const std::vector<TensorRef>& xs, int64_t axis) {
  const size_t a = size_t(axis);
  Shape outShape = xs[0].shape;
  outShape[a] = 0;
  for (size_t k = 0; k < xs.size(); k++) {
    for (size_t d = 0; d < outShape.size(); d++) {
      if (d != a && xs[k].shape[d] != xs[0].shape[d]) {
        throw std::runtime_error("tensor " + std::to_string(k) + " of shape " + fmtShape(xs[k].shape) +
                                 " does not match tensor 0 of shape " + fmtShape(xs[0].shape) + " outside axis " +
                                 std::to_string(axis));
      }
    }
    outShape[a] += xs[k].shape[a];
  }
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < a; d++) outer *= outShape[d];
  for (size_t d = a + 1; d < outShape.size(); d++) inner *= outShape[d];
  Tensor out = empty(outShape, xs[0].dtype);
  const int64_t row = outShape[a] * inner;
  int64_t off = 0;
  for (auto& x : xs) {
    const int64_t block = x.shape[a] * inner;
    if (elementSize(x.dtype) == 2) concatOn<uint16_t>(x.buf->data, out.buf->data, outer, block, row, off);
    else if (elementSize(x.dtype) == 4) concatOn<uint32_t>(x.buf->data, out.buf->data, outer, block, row, off);
    else concatOn<uint64_t>(x.buf->data, out.buf->data, outer, block, row, off);
    off += block;
  }
  return out;
}

// 'cpu''s test of one index: neither ignored nor a class.
NG_HD bool badIndex(double v, double classes, bool hasIgnore, double ignore) {
  using std::floor;
  return !(hasIgnore && v == ignore) && (!(v >= 0 && v < classes) || v != floor(v));
}

// Each check thread scans this many indices (then minima): few passes, and little to read back.
constexpr int64_t kChunk = 64;

// The position of the first bad index, or n: first bad position per chunk of indices, then the
// minimum per chunk of those until one is left, read back (positions below 2^53, held as double).
template <typename I>
int64_t firstBadIndex(const I* idx, int64_t n, double classes, bool hasIgnore, double ignore) {
  int64_t m = (n + kChunk - 1) / kChunk;
  Tensor part = empty({m}, DType::F64);
  double* p = part.buf->as<double>();
  forEach(m, [=] NG_DEVICE(int64_t c) {
    const int64_t end = c * kChunk + kChunk < n ? c * kChunk + kChunk : n;
    double first = double(n);
    for (int64_t i = c * kChunk; i < end; i++) {
      if (badIndex(double(idx[i]), classes, hasIgnore, ignore)) {
        first = double(i);
        break;
      }
    }
    p[c] = first;
  }, "OneHotCheck");
  while (m > 1) {
    const int64_t k = (m + kChunk - 1) / kChunk, len = m;
    Tensor next = empty({k}, DType::F64);
    const double* q = p;
    double* r = next.buf->as<double>();
    forEach(k, [=] NG_DEVICE(int64_t c) {
      const int64_t end = c * kChunk + kChunk < len ? c * kChunk + kChunk : len;
      double lo = q[c * kChunk];
      for (int64_t j = c * kChunk + 1; j < end; j++) lo = q[j] < lo ? q[j] : lo;
      r[c] = lo;
    }, "OneHotCheck");
    part = std::move(next);
    p = r;
    m = k;
  }
  double first = 0;
  copyToHost(&first, p, sizeof first);
  return int64_t(first);
}

template <typename I, typename O>
void oneHotOn(const I* idx, O* out, int64_t n, int64_t classes, bool hasIgnore, double ignore) {
  forEach(n * classes, [=] NG_DEVICE(int64_t i) {
    const int64_t row = i / classes;
    const double v = double(idx[row]);
    out[i] = O(!(hasIgnore && v == ignore) && v == double(i - row * classes));
  }, "OneHot");
}

template <typename I>
Tensor oneHotFrom(const TensorRef& indices, int64_t classes, DType dtype, std::optional<double> ignore) {
  const I* idx = indices.buf->as<I>();
  const int64_t n = numel(indices.shape);
  const bool hasIgnore = ignore.has_value();
  const double ig = ignore.value_or(0);
  const int64_t bad = n ? firstBadIndex(idx, n, double(classes), hasIgnore, ig) : n;
  if (bad < n) {
    I v;
    copyToHost(&v, idx + bad, sizeof v);
    throw std::runtime_error("index " + std::to_string(int64_t(double(v))) + " at position " + std::to_string(bad) +
                             " is out of range for " + std::to_string(classes) + " classes");
  }
  Shape outShape = indices.shape;
  outShape.push_back(classes);
  Tensor out = empty(outShape, dtype);
  switch (dtype) {
    case DType::F32: oneHotOn(idx, out.buf->as<float>(), n, classes, hasIgnore, ig); break;
    case DType::I32: oneHotOn(idx, out.buf->as<int32_t>(), n, classes, hasIgnore, ig); break;
    case DType::BF16: oneHotOn(idx, out.buf->as<BFloat16>(), n, classes, hasIgnore, ig); break;
    case DType::F16: oneHotOn(idx, out.buf->as<Float16>(), n, classes, hasIgnore, ig); break;
    default: oneHotOn(idx, out.buf->as<double>(), n, classes, hasIgnore, ig); break;
  }
  return out;
}

// A trailing class dim of 0/1; an index equal to ignoreIndex gives a zero row.
Tensor oneHot(const TensorRef& indices, int64_t classes, DType dtype, std::optional<double> ignore) {
  if (classes < 0) throw std::runtime_error("numClasses must be non-negative, got " + std::to_string(classes));
  if (indices.dtype == DType::I32) return oneHotFrom<int32_t>(indices, classes, dtype, ignore);
  return oneHotFrom<double>(indices, classes, dtype, ignore);
}

}  // namespace

void addMovementKernels(KernelTable& t) {
  t.transpose = transpose;
  t.broadcastTo = broadcastTo;
  t.slice = slice;
  t.pad = pad;
  t.concat = concat;
  t.oneHot = oneHot;
}

}  // namespace nodegrad::cuda
