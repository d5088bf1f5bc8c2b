#include "cpu/matmul.h"

#include <cstring>
#include <string>

#include "cpu/onednn.h"

namespace nodegrad::cpu {

#ifdef NODEGRAD_HAVE_ONEDNN
namespace {

using dnnl::memory;

struct MatmulEntry {
  onednn::Step step;
  memory::desc a, b, c;
};

// Row-major [batch, rows, cols], or its transpose read in place through swapped strides.
memory::desc matrix(int64_t batch, int64_t rows, int64_t cols, bool transposed, DType dt) {
  memory::dims strides = transposed ? memory::dims{rows * cols, 1, rows} : memory::dims{rows * cols, cols, 1};
  return memory::desc({batch, rows, cols}, onednn::dataType(dt), strides);
}

MatmulEntry makeMatmul(const MatmulDims& d, DType dt, DType cType) {
  MatmulEntry e;
  e.a = matrix(d.batch, d.m, d.k, d.transA, dt);
  e.b = matrix(d.batch, d.k, d.n, d.transB, dt);
  e.c = matrix(d.batch, d.m, d.n, false, cType);
  auto pd = onednn::describe(dt, "matmul", [&] {
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(e.a, e.b, e.c), onednn::userScratchpad(), onednn::engine());
  });
  e.step = onednn::Step{dnnl::matmul(pd), pd.scratchpad_desc()};
  return e;
}

}  // namespace
#endif

void batchMatmul(const MatmulDims& d, DType dt, const void* a, const void* b, void* c) {
  batchMatmul(d, dt, dt, a, b, c);
}

void batchMatmul(const MatmulDims& d, DType dt, DType cType, const void* a, const void* b, void* c) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (d.batch * d.m * d.n == 0) return;
    // An empty inner dim sums nothing: oneDNN rejects zero-sized K, the answer is zeros (all-zero
    // bits in every float dtype).
    if (d.k == 0) {
      std::memset(c, 0, size_t(d.batch * d.m * d.n) * elementSize(cType));
      return;
    }
    std::string key = "matmul:" + std::string(dtypeName(dt)) + ">" + dtypeName(cType) + "," + std::to_string(d.batch) + "," +
                      std::to_string(d.m) + "," + std::to_string(d.k) + "," + std::to_string(d.n) +
                      (d.transA ? "T" : "N") + (d.transB ? "T" : "N");
    auto e = onednn::cached<MatmulEntry>(key, [&] { return makeMatmul(d, dt, cType); });
    onednn::applyThreads();
    auto& eng = onednn::engine();
    e->step.run({{DNNL_ARG_SRC, memory(e->a, eng, const_cast<void*>(a))},
                 {DNNL_ARG_WEIGHTS, memory(e->b, eng, const_cast<void*>(b))},
                 {DNNL_ARG_DST, memory(e->c, eng, c)}});
#endif
  });
}

}  // namespace nodegrad::cpu
