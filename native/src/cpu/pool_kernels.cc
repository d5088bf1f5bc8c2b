// The 'cpu' pooling kernels (KernelTable entries): the loops of cpu/pooling.cc over plain planes,
// or of cpu/pooling_blocked.cc when max pooling meets an activation a convolution left blocked
// (the stem's conv, batch norm and ReLU): y, and dx in the backward, then keep that layout, and a
// blocked half operand is read as stored. The loops compute in float32: a plain half operand is
// widened, and each half result rounded once (a max is exact; sums and scatters accumulate in
// float32, as the 'ts' emulation does).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cpu/device.h"
#include "cpu/operands.h"
#include "cpu/pooling.h"

namespace nodegrad::cpu {
namespace {

Shape withHW(const Shape& lead, int64_t oh, int64_t ow) {
  Shape s = lead;
  s.push_back(oh);
  s.push_back(ow);
  return s;
}

// Calls f with the indices' data as double* (int64) or int32_t*.
template <typename F>
bool withIndices(const Operand& idx, DType dtype, F f) {
  if (dtype == DType::I32) return f(idx.data<int32_t>());
  return f(idx.data<double>());
}

[[noreturn]] void badIndex(const Planes& pl) {
  throw std::out_of_range("an index lies outside its input plane of " + std::to_string(pl.H * pl.W) + " elements");
}

std::pair<Tensor, Tensor> maxPool2dWithIndicesKernel(const TensorRef& x, const Pool2D& p) {
  requireF32OrHalf(x.dtype, "x");
  Operand xo = blockedAsIs(x) ? asStored(x) : widened(x);
  int64_t OH, OW;
  poolOutShape(x.shape, p, false, &OH, &OW);
  Planes pl = planesOf(x.shape);
  const Shape ys = withHW(pl.lead, OH, OW);
  const int block = xo.block();
  Tensor idx = newTensor(ys, DType::I64);
  if (!block) {
    Tensor y = newTensor(ys, DType::F32);
    maxPool2d(xo.f32(), y.buf->as<float>(), idx.buf->as<double>(), pl.planes, pl.H, pl.W, OH, OW, p);
    return {narrowed(std::move(y), x.dtype), std::move(idx)};
  }
  Tensor y = newBlocked(ys, block, x.dtype);
  withFloatElement(x.dtype, [&](auto* e) {
    using T = ElementOf<decltype(e)>;
    maxPool2dBlocked(xo.data<T>(), y.buf->as<T>(), idx.buf->as<double>(), x.shape, block, OH, OW, p);
  });
  return {std::move(y), std::move(idx)};
}

// Training's forward: a blocked x writes no indices (the backward finds the argmax again from x).
Tensor maxPool2dKernel(const TensorRef& x, const Pool2D& p) {
  if (!blockedAsIs(x) || x.shape.size() != 4) return maxPool2dWithIndicesKernel(x, p).first;
  requireF32OrHalf(x.dtype, "x");
  Operand xo = asStored(x);
  int64_t OH, OW;
  poolOutShape(x.shape, p, false, &OH, &OW);
  Tensor y = newBlocked(withHW({x.shape[0], x.shape[1]}, OH, OW), xo.block(), x.dtype);
  withFloatElement(x.dtype, [&](auto* e) {
    using T = ElementOf<decltype(e)>;
    maxPool2dBlocked(xo.data<T>(), y.buf->as<T>(), nullptr, x.shape, xo.block(), OH, OW, p);
  });
  return y;
}

// A blocked dy (layer 1's gradient) gives a blocked dx; the indices are always plain.
Tensor maxPool2dScatterKernel(const TensorRef& dy, const TensorRef& indices, const Shape& xs) {
  const bool sameLead = xs.size() == 4 && dy.shape.size() == 4 && xs[0] == dy.shape[0] && xs[1] == dy.shape[1];
  const int block = blockedAsIs(dy) && sameLead ? dy.buf->block : 0;
  requireF32OrHalf(dy.dtype, "dy");
  Operand dyo = block ? asStored(dy) : widened(dy);
  Operand idx = plain(indices);
  Planes pl = planesOf(xs);
  const int64_t L = scatterOutputsPerPlane(dy.shape, indices.shape, indices.dtype, xs);
  Tensor dx = block ? newBlocked(xs, block, dy.dtype) : newTensor(xs, DType::F32);
  bool ok = true;
  if (block) {
    withFloatElement(dy.dtype, [&](auto* e) {
      using T = ElementOf<decltype(e)>;
      ok = withIndices(idx, indices.dtype, [&](auto* id) {
        return maxPool2dBackwardBlocked(dyo.data<T>(), id, dx.buf->as<T>(), xs, block, dy.shape[2], dy.shape[3]);
      });
    });
  } else {
    ok = withIndices(idx, indices.dtype, [&](auto* id) {
      return maxPool2dBackward(dyo.f32(), id, dx.buf->as<float>(), pl.planes, pl.H * pl.W, L);
    });
  }
  if (!ok) badIndex(pl);
  return block ? std::move(dx) : narrowed(std::move(dx), dy.dtype);
}

// The argmax is found again from x (the first maximum in scan order, a NaN wins), so nothing is
// kept between forward and backward; y is not needed here. When x and dy share a blocked layout
// (the stem's pool in training), each window's argmax is found and its gradient added in one pass.
Tensor maxPool2dBackwardKernel(const TensorRef& dy, const TensorRef& x, const TensorRef& /*y*/, const Pool2D& p) {
  int64_t OH, OW;
  poolOutShape(x.shape, p, false, &OH, &OW);
  Planes pl = planesOf(x.shape);
  const Shape ys = withHW(pl.lead, OH, OW);
  if (dy.shape != ys) {
    throw std::invalid_argument("dy " + fmtShape(dy.shape) + " is not the output shape " + fmtShape(ys) + " of x " +
                                fmtShape(x.shape));
  }
  if (x.shape.size() == 4 && dy.dtype == x.dtype && blockedAsIs(x) && blockedAsIs(dy) &&
      dy.buf->block == x.buf->block) {
    requireF32OrHalf(x.dtype, "x");
    Operand xo = asStored(x), dyo = asStored(dy);
    Tensor dx = newBlocked(x.shape, xo.block(), x.dtype);
    withFloatElement(x.dtype, [&](auto* e) {
      using T = ElementOf<decltype(e)>;
      maxPool2dBackwardFromInputBlocked(dyo.data<T>(), xo.data<T>(), dx.buf->as<T>(), x.shape, xo.block(), OH, OW, p);
    });
    return dx;
  }
  auto [y, idx] = maxPool2dWithIndicesKernel(x, p);
  return maxPool2dScatterKernel(dy, TensorRef{idx.buf.get(), idx.shape, idx.dtype}, x.shape);
}

Tensor maxPool2dGatherKernel(const TensorRef& x, const TensorRef& indices) {
  requireF32OrHalf(x.dtype, "x");
  Operand xo = widened(x), idx = plain(indices);
  Planes pl = planesOf(x.shape);
  const Shape& is = indices.shape;
  const int64_t L = gatherOutputsPerPlane(x.shape, is, indices.dtype);
  Tensor y = newTensor(is, DType::F32);
  const bool ok = withIndices(idx, indices.dtype, [&](auto* id) {
    return maxPool2dGather(xo.f32(), id, y.buf->as<float>(), pl.planes, pl.H * pl.W, L);
  });
  if (!ok) badIndex(pl);
  return narrowed(std::move(y), x.dtype);
}

Tensor avgPool2dKernel(const TensorRef& x, const Pool2D& p) {
  requireF32OrHalf(x.dtype, "x");
  Operand xo = widened(x);
  int64_t OH, OW;
  poolOutShape(x.shape, p, true, &OH, &OW);
  Planes pl = planesOf(x.shape);
  Tensor y = newTensor(withHW(pl.lead, OH, OW), DType::F32);
  avgPool2d(xo.f32(), y.buf->as<float>(), pl.planes, pl.H, pl.W, OH, OW, p);
  return narrowed(std::move(y), x.dtype);
}

Tensor avgPool2dBackwardKernel(const TensorRef& dy, const Shape& xs, const Pool2D& p) {
  requireF32OrHalf(dy.dtype, "dy");
  Operand dyo = widened(dy);
  int64_t OH, OW;
  poolOutShape(xs, p, true, &OH, &OW);
  Planes pl = planesOf(xs);
  const Shape want = withHW(pl.lead, OH, OW);
  if (dy.shape != want) {
    throw std::invalid_argument("dy " + fmtShape(dy.shape) + " should be " + fmtShape(want) + " for input " + fmtShape(xs));
  }
  Tensor dx = newTensor(xs, DType::F32);
  avgPool2dBackward(dyo.f32(), dx.buf->as<float>(), pl.planes, pl.H, pl.W, OH, OW, p);
  return narrowed(std::move(dx), dy.dtype);
}

Tensor adaptiveAvgPool2dKernel(const TensorRef& x, int64_t oh, int64_t ow) {
  requireF32OrHalf(x.dtype, "x");
  Operand xo = widened(x);
  Planes pl = planesOf(x.shape);
  Tensor y = newTensor(withHW(pl.lead, oh, ow), DType::F32);
  adaptiveAvgPool2d(xo.f32(), y.buf->as<float>(), pl.planes, pl.H, pl.W, oh, ow);
  return narrowed(std::move(y), x.dtype);
}

Tensor adaptiveAvgPool2dBackwardKernel(const TensorRef& dy, const Shape& xs) {
  requireF32OrHalf(dy.dtype, "dy");
  Operand dyo = widened(dy);
  const Shape& ds = dy.shape;
  const int64_t OH = ds[ds.size() - 2], OW = ds[ds.size() - 1];
  Planes pl = planesOf(xs);
  Tensor dx = newTensor(xs, DType::F32);
  adaptiveAvgPool2dBackward(dyo.f32(), dx.buf->as<float>(), pl.planes, pl.H, pl.W, OH, OW);
  return narrowed(std::move(dx), dy.dtype);
}

}  // namespace

void addPoolKernels(KernelTable& t) {
  t.maxPool2d = maxPool2dKernel;
  t.maxPool2dBackward = maxPool2dBackwardKernel;
  t.maxPool2dWithIndices = maxPool2dWithIndicesKernel;
  t.maxPool2dScatter = maxPool2dScatterKernel;
  t.maxPool2dGather = maxPool2dGatherKernel;
  t.avgPool2d = avgPool2dKernel;
  t.avgPool2dBackward = avgPool2dBackwardKernel;
  t.adaptiveAvgPool2d = adaptiveAvgPool2dKernel;
  t.adaptiveAvgPool2dBackward = adaptiveAvgPool2dBackwardKernel;
}

}  // namespace nodegrad::cpu
