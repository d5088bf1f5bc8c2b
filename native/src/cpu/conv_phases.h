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

// The weight gradient of a strided convolution over few input channels (an image stem), with the
// phases as channels (space to depth): x padded and cut into sh x sw blocks, [n, c, h, w] ->
// [n, (r, s, c), h / sh, w / sw] with r = h mod sh, s = w mod sw, is the input of a stride-1
// convolution of ceil(kh / sh) x ceil(kw / sw) taps whose output is dy itself, and
//   dW[o, c, kh, kw] = dW'[o, (kh mod sh, kw mod sw, c), kh / sh, kw / sw].
// (The taps past kh and kw that the blocks add are computed and dropped.) oneDNN's AMX kernels
// block the input channels by 16 or 32, so three channels use a tenth of each tile; twelve use
// more of it: the stem of a ResNet-50 at batch 8 in bfloat16 took 6.4 against 1.9 ms (the
// primitives alone), and its Conv2DBackpropFilter 6.6 -> 3.3 ms with the blocks' gather and the
// reorders (Intel Xeon with AMX, 2 threads). The primitive rounds dW' to bfloat16 as it rounds dW.
// Where: a bfloat16 strided convolution without groups or dilation, of at most 4 input channels,
// with x plain or channels last and dy channels last.
bool backwardWeightsBySpaceToDepth(const ConvGeom& g, DType dt, Act x, Act dy);
// dw (plain OIHW, dt or float32) from x and dy; call only where backwardWeightsBySpaceToDepth holds.
void conv2dBackwardWeightsSpaceToDepth(const ConvGeom& g, DType dt, Act x, Act dy, void* dw, DType dwType);

}  // namespace nodegrad::cpu
