// Convolution gradients over channels-last half activations as matmuls, where oneDNN 2.6's AMX
// backward primitives run below its own matmul (conv_gemm.cc says where, with the figures).
//
// The weight gradient as one matmul (im2col):
//   dW[o, (kh, kw, c)] = sum over (n, oh, ow) of dy[(n, oh, ow), o] * cols[(n, oh, ow), (kh, kw, c)],
// where row (n, oh, ow) of cols holds the input taps under that output (zero off the input), and a
// 1x1, stride-1, unpadded convolution's cols is x itself. oneDNN 2.6's AMX backward-weights
// convolution runs far below its own matmul on ResNet shapes (measured here, bfloat16, 2 threads:
// 512 -> 512 channels, 3x3 on 4x4, batch 32: 10.8 ms against 1.2 ms for the matmul), so
// conv2dBackwardWeights takes this path where it is the faster (conv_gemm.cc says where). The
// matmul accumulates in float32 and rounds once to the dtype, as the convolution does; only the
// order of the sums differs.
#pragma once
#include "core/dtype.h"
#include "core/geometry.h"
#include "cpu/conv.h"

namespace nodegrad::cpu {

// Whether to take the path: a bfloat16 convolution without groups whose x and dy are both held
// channels last (block C and block O: cpu/layout.h), of a geometry where it is the faster.
bool backwardWeightsByGemm(const ConvGeom& g, DType dt, Act x, Act dy);
// dw (plain OIHW, dtype dwType: dt or float32) from x and dy; call only where backwardWeightsByGemm holds.
void conv2dBackwardWeightsGemm(const ConvGeom& g, DType dt, Act x, Act dy, void* dw, DType dwType);

// The forward of an unpadded 1x1 convolution: y[(n, oh, ow), o] = sum over c of
// x[(n, oh * sh, ow * sw), c] * W[o, c], W in OIHW being [o, c] row-major (the matmul's transposed
// right operand). Where to take it: a bfloat16 1x1 convolution without groups or padding, x held
// channels last, strided or on a 7x7 output or smaller.
bool forwardByGemm(const ConvGeom& g, DType dt, Act x);
// y, allocated channels last, from x and w; call only where forwardByGemm holds.
void conv2dForwardGemm(const ConvGeom& g, DType dt, Act x, const void* w, const AllocAct& y);

// The input gradient of an unpadded 1x1 convolution: dx[(n, ih, iw), c] = sum over o of
// dy[(n, oh, ow), o] * W[o, c] at ih = oh * sh, iw = ow * sw, and 0 at the positions no output
// reads (stride > 1). W in OIHW is [o, c] row-major, the matmul's right operand as it is.
// Whether to take the path: a bfloat16 1x1 convolution without groups or padding, dy held channels last.
bool backwardDataByGemm(const ConvGeom& g, DType dt, Act dy);
// dx, allocated channels last, from dy and w; call only where backwardDataByGemm holds.
void conv2dBackwardDataGemm(const ConvGeom& g, DType dt, Act dy, const void* w, const AllocAct& dx);

}  // namespace nodegrad::cpu
