// 2-D convolution on oneDNN, NCHW input and OIHW weight (I = C / groups), in its three
// directions: forward, backward-data (Conv2DBackpropInput) and backward-weights
// (Conv2DBackpropFilter). oneDNN picks its own (blocked) layouts: activations arrive and leave in
// nChw{8,16}c or NHWC when that is the primitive's choice
// (cpu/layout.h), plain NCHW otherwise; weights arrive plain and their reordered copies are
// cached on the weight's buffer for one generation. Every operand is of dtype dt: float32, or
// bfloat16 (oneDNN's bf16 primitives, float32 accumulation, each result rounded once), or float16
// where the linked oneDNN has it (else an error saying what it needs).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/geometry.h"
#include "core/params.h"

namespace nodegrad::cpu {

// An activation operand: its data and layout (block 0: plain NCHW; else nChw{block}c, NHWC when
// block is C).
struct Act {
  const void* data;
  int block;
};
// A weight operand (plain OIHW). `cache`, when set, is a slot on the weight's buffer where its
// reordered copies live while `generation` (bumped by every write to the buffer) is unchanged.
struct Weight {
  const void* data;
  uint64_t generation;
  std::shared_ptr<void>* cache;
};
// Allocates an activation result once its layout (block, 0 for plain) is known; returns its data.
using AllocAct = std::function<void*(int block)>;

// A bias operand ([o], plain): its data (null: none) and dtype (dt, or float32 beside a half dt).
struct Bias {
  const void* data;
  DType dtype;
};

// y = conv(x, w).
void conv2dForward(const ConvGeom& g, DType dt, Act x, Weight w, const AllocAct& y);
// Inference only: y = relu?(conv(x, w) + bias + residual), one oneDNN primitive with the bias
// built in and sum / eltwise-relu post-ops. `residual` (y's shape) may be null.
void conv2dForwardFused(const ConvGeom& g, DType dt, Act x, Weight w, Bias bias, const Act* residual, bool relu,
                        const AllocAct& y);
// dx = the gradient of conv with respect to x, given dy.
void conv2dBackwardData(const ConvGeom& g, DType dt, Act dy, Weight w, const AllocAct& dx);
// dw (plain OIHW, dtype dwType: dt, or float32 for a half dt) = the gradient of conv with respect
// to w, given x and dy (summed over the batch). A float32 dw of half input holds the float32 sums
// unrounded where the matmul path runs (cpu/conv_gemm.h) or a float32 primitive stands in
// (cpu/conv_widened.h), and the half result widened where oneDNN's bfloat16 primitive does (2.6
// has no float32 diff_weights for bfloat16 input).
void conv2dBackwardWeights(const ConvGeom& g, DType dt, Act x, Act dy, void* dw, DType dwType);

}  // namespace nodegrad::cpu
