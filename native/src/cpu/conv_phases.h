// A strided convolution's input gradient as stride-1 forward convolutions, one per phase of the
// input. With stride s, the input rows ih = s·a + p of one phase p receive the taps kh ≡ p + pad
// (mod s) only, each from the output row a + (p + pad − kh) / s:
//   dx[n, s·a + p, s·b + q, c] = Σ over those taps (kh, kw) and o of dy[n, oh, ow, o] · W[o, c, kh, kw],
// a stride-1 correlation of dy with the phase's taps, transposed to [c, o] and flipped. oneDNN 2.6's
// AMX backward-data primitive is slowest at stride 2; its forward primitive on the phases, with the
// weight gathered and reordered per call, takes a third less time on ResNet shapes (conv_phases.cc
// has the figures). Each output sums its taps in float32 and rounds once, as the primitive does;
// only the order of the sums differs.
#pragma once
#include "core/dtype.h"
#include "core/geometry.h"
#include "cpu/conv.h"

namespace nodegrad::cpu {

// Whether to take the path: a bfloat16 strided convolution of several taps, without groups or
// dilation, whose dy is held channels last, and whose phases need no negative padding. conv.cc
// asks the matmul path (cpu/conv_gemm.h) first: it is the faster on small outputs.
bool backwardDataByPhases(const ConvGeom& g, DType dt, Act dy);
// dx, allocated channels last, from dy and the plain OIHW weight; call only where backwardDataByPhases holds.
void conv2dBackwardDataPhases(const ConvGeom& g, DType dt, Act dy, const void* wOihw, const AllocAct& dx);

}  // namespace nodegrad::cpu
