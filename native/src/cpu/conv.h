// 2-D convolution on oneDNN, NCHW input and OIHW weight (I = C / groups), in its three
// directions: forward, backward-data (Conv2DBackpropInput) and backward-weights
// (Conv2DBackpropFilter). oneDNN picks its own (blocked) layouts: activations arrive and leave in
// nChw{8,16}c when that is the primitive's choice (cpu/layout.h), plain NCHW otherwise; weights
// arrive plain and their reordered copies are cached on the weight's buffer for one generation.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/geometry.h"
#include "core/params.h"

namespace nodegrad::cpu {

// An activation operand: its data and layout (block 0: plain NCHW; 8 or 16: nChw{block}c).
struct Act {
  const float* data;
  int block;
};
// A weight operand (plain OIHW). `cache`, when set, is a slot on the weight's buffer where its
// reordered copies live while `generation` (bumped by every write to the buffer) is unchanged.
struct Weight {
  const float* data;
  uint64_t generation;
  std::shared_ptr<void>* cache;
};
// Allocates an activation result once its layout (block, 0 for plain) is known; returns its data.
using AllocAct = std::function<float*(int block)>;

// y = conv(x, w).
void conv2dForward(const ConvGeom& g, Act x, Weight w, const AllocAct& y);
// Inference only: y = relu?(conv(x, w) + bias + residual), one oneDNN primitive with the bias
// built in and sum / eltwise-relu post-ops. `bias` ([o], plain) and `residual` (y's shape) may be null.
void conv2dForwardFused(const ConvGeom& g, Act x, Weight w, const float* bias, const Act* residual, bool relu,
                        const AllocAct& y);
// dx = the gradient of conv with respect to x, given dy.
void conv2dBackwardData(const ConvGeom& g, Act dy, Weight w, const AllocAct& dx);
// dw (plain OIHW) = the gradient of conv with respect to w, given x and dy (summed over the batch).
void conv2dBackwardWeights(const ConvGeom& g, Act x, Act dy, float* dw);

}  // namespace nodegrad::cpu
