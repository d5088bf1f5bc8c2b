// The blocked activation layouts oneDNN's convolutions compute in, and the conversions to and from
// plain NCHW. nChw{block}c holds channels in blocks of `block` (the last block zero-padded): 8 or
// 16, or block == C, where oneDNN's brgemm convolutions (AMX bfloat16, float32 inference with
// AVX-512) compute in channels-last: nChw{C}c is exactly NHWC, with no padding. Buffers keep the
// layout between conv, batch norm, elementwise ops and pooling, so a ResNet step does not reorder
// around every conv (issues 4, 12, 13); every other kernel sees plain data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace nodegrad::cpu {

// Channels padded to a multiple of `block` (block 0: plain, no padding).
int64_t paddedChannels(int64_t c, int block);
// Elements of an [n, c, h, w] tensor held in nChw{block}c, padding included.
size_t blockedNumel(const std::vector<int64_t>& dims, int block);
// nChw{block}c -> NCHW; dims is the logical shape, dt the element type of both.
void blockedToPlain(const std::vector<int64_t>& dims, int block, DType dt, const void* src, void* dst);
// NCHW -> nChw{block}c, the padding channels zeroed.
void plainToBlocked(const std::vector<int64_t>& dims, int block, DType dt, const void* src, void* dst);
// Zeroes the padding channels of a blocked buffer: kept-layout kernels call it so that padding
// is always zero (oneDNN's convolutions read it, and zero times a padded weight must stay zero).
// `elementBytes`: the size of one element (all-zero bits are +0 in every float type).
void zeroBlockPadding(const std::vector<int64_t>& dims, int block, size_t elementBytes, void* data);

}  // namespace nodegrad::cpu

#ifdef NODEGRAD_HAVE_ONEDNN
#include <dnnl.hpp>

namespace nodegrad::cpu {
// A buffer's layout as a oneDNN descriptor: block 0 nchw, 8 or 16 nChw{block}c, C nhwc.
dnnl::memory::desc layoutDesc(const std::vector<int64_t>& dims, int block, DType dt);
}  // namespace nodegrad::cpu
#endif
