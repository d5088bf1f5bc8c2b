// The 'cpu' matmul and convolution kernels (KernelTable entries) on oneDNN (cpu/matmul.cc,
// cpu/conv.cc), in float32 and the half types. An activation a convolution left blocked, seen
// under its own shape, goes to the next convolution as stored; anything else (a view of one
// included) is read plain. Results take the layout the primitive chose when buffers can carry it
// (cpu/layout.h). Weights are read plain, with their reordered copies
// cached on the weight's buffer.
#include <optional>
#include <stdexcept>

#include "cpu/conv.h"
#include "cpu/device.h"
#include "cpu/matmul.h"
#include "cpu/operands.h"

namespace nodegrad::cpu {
namespace {

Act act(const Operand& o) { return {o.buf->data, o.block()}; }

// A weight with its buffer's reorder cache (none for a temporary plain copy of a blocked buffer).
Weight weight(const Operand& w) { return {w.buf->data, w.buf->generation, w.hold ? nullptr : &w.buf->derived}; }

// An activation result of logical shape `dims` and dtype dt, allocated once the kernel knows its
// layout.
struct ActResult {
  Shape dims;
  DType dt;
  Tensor t;
  AllocAct alloc() {
    return [this](int block) {
      t = newBlocked(dims, block, dt);
      return t.buf->data;
    };
  }
};

// The dtype a matmul or convolution computes in: a's (its binding checked that b shares it).
DType computeDType(const TensorRef& a, const char* nameA) {
  requireF32OrHalf(a.dtype, nameA);
  return a.dtype;
}

Tensor batchMatMulKernel(const TensorRef& a, const TensorRef& b, bool ta, bool tb) {
  const DType dt = computeDType(a, "a");
  Operand ap = plain(a), bp = plain(b);
  MatmulDims d{a.shape[0], ta ? a.shape[2] : a.shape[1], ta ? a.shape[1] : a.shape[2], tb ? b.shape[1] : b.shape[2], ta, tb};
  Tensor c = newTensor({d.batch, d.m, d.n}, dt);
  batchMatmul(d, dt, ap.buf->data, bp.buf->data, c.buf->data);
  return c;
}

Tensor conv2dKernel(const TensorRef& x, const TensorRef& w, const ConvParams& p) {
  const DType dt = computeDType(x, "x");
  auto g = convGeom(x.shape, w.shape, p);
  Operand xo = storedOrPlain(x), wo = plain(w);
  ActResult y{g.yShape(), dt, {}};
  conv2dForward(g, dt, act(xo), weight(wo), y.alloc());
  return std::move(y.t);
}

Tensor conv2dFusedKernel(const TensorRef& x, const TensorRef& w, const TensorRef* bias, const TensorRef* residual,
                         const ConvParams& p, bool relu) {
  const DType dt = computeDType(x, "x");
  auto g = convGeom(x.shape, w.shape, p);
  Operand xo = storedOrPlain(x), wo = plain(w);
  std::optional<Operand> bo, ro;
  if (bias) {
    if (bias->dtype != dt && bias->dtype != DType::F32) requireSameDType(x, "x", *bias, "bias");
    if (bias->shape != Shape{g.o}) {
      throw std::runtime_error("bias of shape " + fmtShape(bias->shape) + " must have shape [" + std::to_string(g.o) + "]");
    }
    bo = plain(*bias);
  }
  Act r{};
  if (residual) {
    requireSameDType(x, "x", *residual, "residual");
    if (residual->shape != g.yShape()) {
      throw std::runtime_error("residual of shape " + fmtShape(residual->shape) + " must have the output's shape " +
                               fmtShape(g.yShape()));
    }
    ro = storedOrPlain(*residual);
    r = act(*ro);
  }
  ActResult y{g.yShape(), dt, {}};
  const Bias b{bo ? bo->buf->data : nullptr, bias ? bias->dtype : dt};
  conv2dForwardFused(g, dt, act(xo), weight(wo), b, ro ? &r : nullptr, relu, y.alloc());
  return std::move(y.t);
}

Tensor conv2dBackpropInputKernel(const TensorRef& dy, const TensorRef& w, const Shape& xShape, const ConvParams& p) {
  const DType dt = computeDType(dy, "dy");
  auto g = convGeom(xShape, w.shape, p, &dy.shape);
  Operand dyo = storedOrPlain(dy), wo = plain(w);
  ActResult dx{g.xShape(), dt, {}};
  conv2dBackwardData(g, dt, act(dyo), weight(wo), dx.alloc());
  return std::move(dx.t);
}

Tensor conv2dBackpropFilterKernel(const TensorRef& x, const TensorRef& dy, const Shape& wShape, const ConvParams& p,
                                  DType dwType) {
  const DType dt = computeDType(x, "x");
  auto g = convGeom(x.shape, wShape, p, &dy.shape);
  Operand xo = storedOrPlain(x), dyo = storedOrPlain(dy);
  Tensor dw = newTensor({g.o, g.c / p.groups, g.kh, g.kw}, dwType);
  conv2dBackwardWeights(g, dt, act(xo), act(dyo), dw.buf->data, dwType);
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
