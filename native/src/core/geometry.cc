#include "core/geometry.h"

#include <stdexcept>
#include <string>

namespace nodegrad {
namespace {

// PyTorch's output size, floor division included for a negative numerator, clamped at 0.
int64_t outSize(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  int64_t num = in + 2 * pad - dil * (k - 1) - 1;
  int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);
  return q + 1 > 0 ? q + 1 : 0;
}

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// PyTorch's pooling output size: floor((n + 2p - d(k-1) - 1 + (ceil ? s-1 : 0)) / s) + 1, and in
// ceil mode a last window that would start inside the right padding is dropped.
int64_t poolOutSize(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil) {
  int64_t o = floorDiv(n + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0), s) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

std::string fmt2(const int64_t* v) { return fmtShape({v[0], v[1]}); }

}  // namespace

ConvGeom convGeom(const Shape& xShape, const Shape& wShape, const ConvParams& p, const Shape* yShape) {
  if (xShape.size() != 4 || wShape.size() != 4) {
    throw std::runtime_error("expected NCHW input and OIHW weight, got " + fmtShape(xShape) + " and " + fmtShape(wShape));
  }
  for (auto d : xShape) {
    if (d < 0) throw std::runtime_error("negative size in input shape " + fmtShape(xShape));
  }
  for (auto d : wShape) {
    if (d < 0) throw std::runtime_error("negative size in weight shape " + fmtShape(wShape));
  }
  if (p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0 || p.groups < 1) {
    throw std::runtime_error("stride and dilation must be >= 1, padding >= 0 and groups >= 1, got stride [" +
                             std::to_string(p.sh) + ", " + std::to_string(p.sw) + "], padding [" + std::to_string(p.ph) +
                             ", " + std::to_string(p.pw) + "], dilation [" + std::to_string(p.dh) + ", " +
                             std::to_string(p.dw) + "], groups " + std::to_string(p.groups));
  }
  ConvGeom g{xShape[0], xShape[1], xShape[2], xShape[3], wShape[0], wShape[2], wShape[3], 0, 0, p};
  if (wShape[1] * p.groups != g.c || g.o % p.groups != 0) {
    throw std::runtime_error("input " + fmtShape(xShape) + " and weight " + fmtShape(wShape) + " do not fit groups=" +
                             std::to_string(p.groups));
  }
  g.oh = outSize(g.h, g.kh, p.sh, p.ph, p.dh);
  g.ow = outSize(g.w, g.kw, p.sw, p.pw, p.dw);
  if (yShape && *yShape != g.yShape()) {
    throw std::runtime_error("output gradient " + fmtShape(*yShape) + " does not match the expected " + fmtShape(g.yShape()));
  }
  return g;
}

Planes planesOf(const Shape& shape) {
  if (shape.size() != 3 && shape.size() != 4) {
    throw std::invalid_argument("expected input of shape [N, C, H, W] or [C, H, W], got " + fmtShape(shape));
  }
  Planes pl;
  pl.lead.assign(shape.begin(), shape.end() - 2);
  pl.planes = numel(pl.lead);
  pl.H = shape[shape.size() - 2];
  pl.W = shape[shape.size() - 1];
  return pl;
}


void poolOutShape(const Shape& x, const Pool2D& p, bool avg, int64_t* oh, int64_t* ow) {
  if (avg && (p.dilation[0] != 1 || p.dilation[1] != 1)) {
    throw std::invalid_argument("dilation must be [1, 1], got " + fmt2(p.dilation) + " for input " + fmtShape(x));
  }
  Planes pl = planesOf(x);
  for (int i = 0; i < 2; i++) {
    int64_t eff = p.dilation[i] * (p.kernel[i] - 1) + 1;
    if (!(p.kernel[i] >= 1 && p.stride[i] >= 1 && p.dilation[i] >= 1 && p.padding[i] >= 0 && 2 * p.padding[i] <= eff)) {
      throw std::invalid_argument("kernel " + fmt2(p.kernel) + ", stride " + fmt2(p.stride) + ", dilation " +
                                  fmt2(p.dilation) + " must be positive and padding " + fmt2(p.padding) +
                                  " at most half the effective kernel, for input " + fmtShape(x));
    }
  }
  *oh = poolOutSize(pl.H, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceilMode);
  *ow = poolOutSize(pl.W, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceilMode);
  if (*oh < 1 || *ow < 1) {
    throw std::invalid_argument("output size " + fmtShape({*oh, *ow}) + " is too small for input " + fmtShape(x) +
                                " with kernel " + fmt2(p.kernel) + ", stride " + fmt2(p.stride) + ", padding " +
                                fmt2(p.padding) + ", dilation " + fmt2(p.dilation));
  }
}

namespace {
bool isIndex(DType d) { return d == DType::I64 || d == DType::I32; }
int64_t lastTwo(const Shape& s) { return s.size() < 2 ? 0 : s[s.size() - 2] * s[s.size() - 1]; }
}  // namespace

int64_t scatterOutputsPerPlane(const Shape& dy, const Shape& indices, DType indicesType, const Shape& xShape) {
  const Planes pl = planesOf(xShape);
  if (indices != dy || !isIndex(indicesType)) {
    throw std::invalid_argument("indices " + fmtShape(indices) + " (" + dtypeName(indicesType) +
                                ") must be int64 with the shape of dy " + fmtShape(dy));
  }
  const int64_t L = lastTwo(dy);
  if (numel(dy) != pl.planes * L) {
    throw std::invalid_argument("dy " + fmtShape(dy) + " does not have the planes of input " + fmtShape(xShape));
  }
  return L;
}

int64_t gatherOutputsPerPlane(const Shape& x, const Shape& indices, DType indicesType) {
  const Planes pl = planesOf(x);
  const int64_t L = lastTwo(indices);
  if (indices.size() != x.size() || numel(indices) != pl.planes * L || !isIndex(indicesType)) {
    throw std::invalid_argument("indices " + fmtShape(indices) + " (" + dtypeName(indicesType) +
                                ") do not match the planes of x " + fmtShape(x));
  }
  return L;
}

}  // namespace nodegrad
