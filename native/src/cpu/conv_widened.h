// Convolutions that oneDNN 2.6's bfloat16 primitives (AMX) compute wrongly, found by a sweep
// against the 'ts' backend (native/test/conv_bf16_amx.test.ts). Most run here as float32
// primitives on widened operands instead: a bfloat16 value is exact in float32, both accumulate in
// float32, and the result is rounded to its type once. Slower (float32 kernels, and copies), but
// none of these geometries is in a ResNet.
#pragma once
#include "core/dtype.h"
#include "core/geometry.h"
#include "cpu/conv.h"

namespace nodegrad::cpu {

// The forward primitive on a kernel of several taps whose dilated extent is below its stride in
// a dimension (3x1 with stride 4, 2x2 with stride 3): a few percent of outputs wrong, varying from
// call to call with 2 threads.
bool forwardWidened(const ConvGeom& g, DType dt);
// The backward-weights primitive on a dilated kernel with 33 or 40 input channels: gradients off
// by more than their size, every time.
bool backwardWeightsWidened(const ConvGeom& g, DType dt);

// The backward-weights primitive where a tap sees only padding (a 3x3, stride 2 kernel on a 1x1
// or 2x2 image: a ResNet stage's first conv at the smallest inputs) reads scratchpad memory it
// never wrote, as if fresh pages: the pool's reused blocks put NaN and 1e21 where the gradient is
// 0. Its scratchpad is zeroed first. (Zeroing every backward-weights scratchpad cost 2-4% of a
// ResNet-50 bfloat16 training step, batch 8, on the Xeon with AMX.)
bool zeroesScratch(const ConvGeom& g, DType dt);

void conv2dForwardWidened(const ConvGeom& g, DType dt, Act x, Weight w, const AllocAct& y);
void conv2dBackwardWeightsWidened(const ConvGeom& g, DType dt, Act x, Act dy, void* dw, DType dwType);

}  // namespace nodegrad::cpu
