// The shape arithmetic of convolution and pooling, PyTorch's formulas, with the checks that name
// the shapes when they do not fit: the same for every device, so every device refuses the same
// calls with the same words.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/params.h"
#include "core/shape.h"

namespace nodegrad {

// One convolution call's geometry, derived once from the shapes and params.
struct ConvGeom {
  int64_t n, c, h, w, o, kh, kw, oh, ow;
  ConvParams p;
  Shape xShape() const { return {n, c, h, w}; }
  Shape wShape() const { return {o, c / p.groups, kh, kw}; }
  Shape yShape() const { return {n, o, oh, ow}; }
};

// Checks the shapes and params and derives the output size by PyTorch's formula
// floor((H + 2·pad − dil·(k − 1) − 1) / stride) + 1 (clamped at 0); when `yShape` is given (the
// backward directions) it must match. Throws runtime_error naming the shapes.
ConvGeom convGeom(const Shape& xShape, const Shape& wShape, const ConvParams& p, const Shape* yShape = nullptr);

// The planes of a [N, C, H, W] or [C, H, W] shape; throws std::invalid_argument naming `shape` otherwise.
struct Planes {
  Shape lead;
  int64_t planes, H, W;
};
Planes planesOf(const Shape& shape);

// Checks the window parameters against the input shape and returns [OH, OW]; `avg` also requires dilation 1.
void poolOutShape(const Shape& x, const Pool2D& p, bool avg, int64_t* oh, int64_t* ow);

// MaxPool2DScatter's operands: int32 or int64 indices of dy's shape, dy holding the planes of
// xShape. Returns the outputs per plane; throws std::invalid_argument naming the shapes.
int64_t scatterOutputsPerPlane(const Shape& dy, const Shape& indices, DType indicesType, const Shape& xShape);
// MaxPool2DGather's: int32 or int64 indices of x's rank and planes. Returns the outputs per plane.
int64_t gatherOutputsPerPlane(const Shape& x, const Shape& indices, DType indicesType);

}  // namespace nodegrad
