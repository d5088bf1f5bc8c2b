// The 'cpu' matmul and convolution kernels (KernelTable entries) on oneDNN (cpu/matmul.cc,
// cpu/conv.cc). An activation a convolution left blocked, seen under its own shape, goes to the
// next convolution as stored; anything else (a view of one included) is read plain. Results take
// the layout the primitive chose when buffers can carry it. Weights are read plain, with their
// reordered copies cached on the weight's buffer.
#include <optional>
#include <stdexcept>

#include "cpu/conv.h"
#include "cpu/device.h"
#include "cpu/matmul.h"
#include "cpu/operands.h"

namespace nodegrad::cpu {
namespace {

Act act(const Operand& o) { return {o.f32(), o.block()}; }

// A weight with its buffer's reorder cache (none for a temporary plain copy of a blocked buffer).
Weight weight(const Operand& w) { return {w.f32(), w.buf->generation, w.hold ? nullptr : &w.buf->derived}; }

// An activation result of logical shape `dims`, allocated once the kernel knows its layout.
struct ActResult {
  Shape dims;
  Tensor t;
  AllocAct alloc() {
    return [this](int block) {
      t = newBlocked(dims, block);
      return t.buf->as<float>();
    };
  }
};

Tensor batchMatMulKernel(const TensorRef& a, const TensorRef& b, bool ta, bool tb) {
  requireF32(a.dtype, "a");
  requireF32(b.dtype, "b");
  Operand ap = plain(a), bp = plain(b);
  MatmulDims d{a.shape[0], ta ? a.shape[2] : a.shape[1], ta ? a.shape[1] : a.shape[2], tb ? b.shape[1] : b.shape[2], ta, tb};
  Tensor c = newTensor({d.batch, d.m, d.n}, DType::F32);
  batchMatmul(d, ap.f32(), bp.f32(), c.buf->as<float>());
  return c;
}

Tensor conv2dKernel(const TensorRef& x, const TensorRef& w, const ConvParams& p) {
  requireF32(x.dtype, "x");
  requireF32(w.dtype, "w");
  auto g = convGeom(x.shape, w.shape, p);
  Operand xo = storedOrPlain(x), wo = plain(w);
  ActResult y{g.yShape(), {}};
  conv2dForward(g, act(xo), weight(wo), y.alloc());
  return std::move(y.t);
}

Tensor conv2dFusedKernel(const TensorRef& x, const TensorRef& w, const TensorRef* bias, const TensorRef* residual,
                         const ConvParams& p, bool relu) {
  requireF32(x.dtype, "x");
  requireF32(w.dtype, "w");
  auto g = convGeom(x.shape, w.shape, p);
  Operand xo = storedOrPlain(x), wo = plain(w);
  std::optional<Operand> bo, ro;
  if (bias) {
    requireF32(bias->dtype, "bias");
    if (bias->shape != Shape{g.o}) {
      throw std::runtime_error("bias of shape " + fmtShape(bias->shape) + " must have shape [" + std::to_string(g.o) + "]");
    }
    bo = plain(*bias);
  }
  Act r{};
  if (residual) {
    requireF32(residual->dtype, "residual");
    if (residual->shape != g.yShape()) {
      throw std::runtime_error("residual of shape " + fmtShape(residual->shape) + " must have the output's shape " +
                               fmtShape(g.yShape()));
    }
    ro = storedOrPlain(*residual);
    r = act(*ro);
  }
  ActResult y{g.yShape(), {}};
  conv2dForwardFused(g, act(xo), weight(wo), bo ? bo->f32() : nullptr, ro ? &r : nullptr, relu, y.alloc());
  return std::move(y.t);
}

Tensor conv2dBackpropInputKernel(const TensorRef& dy, const TensorRef& w, const Shape& xShape, const ConvParams& p) {
  requireF32(dy.dtype, "dy");
  requireF32(w.dtype, "w");
  auto g = convGeom(xShape, w.shape, p, &dy.shape);
  Operand dyo = storedOrPlain(dy), wo = plain(w);
  ActResult dx{g.xShape(), {}};
  conv2dBackwardData(g, act(dyo), weight(wo), dx.alloc());
  return std::move(dx.t);
}

Tensor conv2dBackpropFilterKernel(const TensorRef& x, const TensorRef& dy, const Shape& wShape, const ConvParams& p) {
  requireF32(x.dtype, "x");
  requireF32(dy.dtype, "dy");
  auto g = convGeom(x.shape, wShape, p, &dy.shape);
  Operand xo = storedOrPlain(x), dyo = storedOrPlain(dy);
  Tensor dw = newTensor({g.o, g.c / p.groups, g.kh, g.kw}, DType::F32);
  conv2dBackwardWeights(g, act(xo), act(dyo), dw.buf->as<float>());
  dw.shape = wShape;
  return dw;
}

}  // namespace

void addMatmulConvKernels(KernelTable& t) {
  t.batchMatMul = batchMatMulKernel;
  t.conv2d = conv2dKernel;
  t.conv2dFused = conv2dFusedKernel;
  t.conv2dBackpropInput = conv2dBackpropInputKernel;
  t.conv2dBackpropFilter = conv2dBackpropFilterKernel;
}

}  // namespace nodegrad::cpu
