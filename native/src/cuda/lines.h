// Reductions as lines, for every kernel that reduces on the device (reduce.cu, norm.cu): output o
// reduces the R elements at out.offset(o) + red.offset(r). Without shared memory (launch.h) a line
// is reduced by one thread, so where few outputs reduce long lines, pass 1 splits each line into
// chunks (one thread each) that write double partials, and the partials are reduced again as
// lines of their own until one chunk per output is left.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cuda/launch.h"

namespace nodegrad::cuda {

// Pass 1 aims at this many threads with chunks of at least kMinChunk: about two waves of an H100's
// 270K resident threads, since a line's loads are what keep memory busy (at 2^16 threads, a
// quarter of the GPU, the bytes in flight cover about a tenth of its bandwidth-latency product,
// and batch norm's sums, four reads of every activation per step, would run at that tenth).
constexpr int64_t kPass1Threads = 1 << 19;
constexpr int64_t kMinChunk = 64;

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Lines {
  StridedIndex out, red;
  int64_t outN = 1, R = 1;
};

// A line's chunk: elements r0, r0 + step, ... below r1 of output o.
struct Chunk {
  int64_t o, r0, r1, step;
};

// How pass 1 covers the lines: K chunks per output, thread i taking one. Where the reduced elements
// are the innermost (interleaved), chunk k of output o takes every K-th element from k, thread
// o * K + k; otherwise it takes the k-th run of L elements, thread k * outN + o. Either way
// neighbouring threads read neighbouring elements.
struct Split {
  int64_t outN, R, K, L;
  bool interleaved;
  NG_HD Chunk at(int64_t i) const {
    if (interleaved) {
      const int64_t o = i / K;
      return {o, i - o * K, R, K};
    }
    const int64_t k = i / outN, r0 = k * L;
    return {i - k * outN, r0, r0 + L < R ? r0 + L : R, 1};
  }
  // The partials as lines of their own.
  Lines partials() const {
    Lines g;
    g.out.rank = g.red.rank = 1;
    g.out.size[0] = g.outN = outN;
    g.red.size[0] = g.R = K;
    g.out.stride[0] = interleaved ? K : 1;
    g.red.stride[0] = interleaved ? 1 : outN;
    return g;
  }
};

// One chunk per output (a plain forEach over outputs) when there are outputs enough or lines short.
inline Split splitOf(const Lines& g) {
  if (g.outN == 0 || g.outN >= kPass1Threads || g.R < 2 * kMinChunk) return {g.outN, g.R, 1, g.R, false};
  const int last = g.red.rank - 1;
  const bool interleaved = last >= 0 && g.red.size[last] > 1 && g.red.stride[last] == 1;
  int64_t K = std::min(ceilDiv(kPass1Threads, g.outN), g.R / kMinChunk);
  const int64_t L = ceilDiv(g.R, K);
  if (!interleaved) K = ceilDiv(g.R, L);
  return {g.outN, g.R, K, L, interleaved};
}

}  // namespace nodegrad::cuda
