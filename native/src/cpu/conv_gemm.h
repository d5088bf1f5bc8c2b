// Convolutions over channels-last half activations as matmuls, where oneDNN 2.6's AMX
// convolution primitives run below its own matmul (conv_gemm.cc says where, with the figures).
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

// The forward and the input gradient through the same gathered taps, with W as OHWI ([o, (kh, kw,
// c)] row-major: OIHW itself for a 1x1 kernel, else a reordered copy kept on the weight for both
// directions, see conv.cc):
//   y[(n, oh, ow), o] = sum over (kh, kw, c) of cols[(n, oh, ow), (kh, kw, c)] * W[o, (kh, kw, c)],
//   dx = col2im(dy · W): each input position sums, in float32, the products of the taps over it,
//   rounded once (an unpadded 1x1 convolution's is dy · W itself at the strided positions, and 0
//   at the positions no output reads).
// Where to take them: a bfloat16 convolution without groups whose x (forward) or dy (input
// gradient) is held channels last, of a geometry where the matmul is the faster.
bool forwardByGemm(const ConvGeom& g, DType dt, Act x);
bool backwardDataByGemm(const ConvGeom& g, DType dt, Act dy);
// y, allocated channels last, from x and the OHWI weight; call only where forwardByGemm holds.
void conv2dForwardGemm(const ConvGeom& g, DType dt, Act x, const void* wOhwi, const AllocAct& y);
// dx, allocated channels last, from dy and the OHWI weight; call only where backwardDataByGemm holds.
void conv2dBackwardDataGemm(const ConvGeom& g, DType dt, Act dy, const void* wOhwi, const AllocAct& dx);

}  // namespace nodegrad::cpu
