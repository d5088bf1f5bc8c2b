// The blocked activation layout oneDNN's convolutions compute in, nChw8c / nChw16c (channels in
// blocks of 8 or 16, the last block zero-padded), and the conversions to and from plain NCHW.
// Buffers keep it between conv, batch norm, elementwise ops and pooling, so a ResNet step no
// longer reorders around every conv (issue 4 §2); every other kernel sees plain data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nodegrad::cpu {

// Channels padded to a multiple of `block` (block 0: plain, no padding).
int64_t paddedChannels(int64_t c, int block);
// Elements of a float32 [n, c, h, w] tensor held in nChw{block}c, padding included.
size_t blockedNumel(const std::vector<int64_t>& dims, int block);
// nChw{block}c -> NCHW; dims is the logical shape.
void blockedToPlain(const std::vector<int64_t>& dims, int block, const float* src, float* dst);
// NCHW -> nChw{block}c, the padding channels zeroed.
void plainToBlocked(const std::vector<int64_t>& dims, int block, const float* src, float* dst);
// Zeroes the padding channels of a blocked buffer: kept-layout kernels call it so that padding
// is always zero (oneDNN's convolutions read it, and zero times a padded weight must stay zero).
void zeroBlockPadding(const std::vector<int64_t>& dims, int block, float* data);

}  // namespace nodegrad::cpu
