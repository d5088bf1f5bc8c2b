#include "cpu/layout.h"

#include <cstring>
#include <string>

#include "cpu/onednn.h"

namespace nodegrad::cpu {

int64_t paddedChannels(int64_t c, int block) { return block == 0 ? c : (c + block - 1) / block * block; }

size_t blockedNumel(const std::vector<int64_t>& dims, int block) {
  return size_t(dims[0] * paddedChannels(dims[1], block) * dims[2] * dims[3]);
}

void zeroBlockPadding(const std::vector<int64_t>& dims, int block, size_t es, void* data) {
  const int64_t n = dims[0], c = dims[1], hw = dims[2] * dims[3];
  const int64_t cp = paddedChannels(c, block);
  if (cp == c || block == 0) return;
  const int64_t used = c - (cp - block);  // channels in the last block
  for (int64_t i = 0; i < n; i++) {
    auto* last = static_cast<char*>(data) + size_t((i * cp + cp - block) * hw) * es;  // image i's last block
    for (int64_t s = 0; s < hw; s++) std::memset(last + size_t(s * block + used) * es, 0, size_t(block - used) * es);
  }
}

#ifdef NODEGRAD_HAVE_ONEDNN
dnnl::memory::desc layoutDesc(const std::vector<int64_t>& dims, int block, DType dt) {
  using Tag = dnnl::memory::format_tag;
  const Tag t = block == 16 ? Tag::aBcd16b : block == 8 ? Tag::aBcd8b : block == 0 ? Tag::nchw : Tag::acdb;
  return dnnl::memory::desc(dims, onednn::dataType(dt), t);
}

namespace {

void reorder(const std::vector<int64_t>& dims, int block, DType dt, const void* src, void* dst, bool toPlain) {
  using dnnl::memory;
  const memory::desc plain = layoutDesc(dims, 0, dt), blocked = layoutDesc(dims, block, dt);
  std::string key = std::string(toPlain ? "layout_to_plain," : "layout_to_blocked,") + dtypeName(dt) + "," +
                    std::to_string(block);
  for (auto d : dims) key += "," + std::to_string(d);
  auto r = onednn::cached<onednn::Reorder>(key, [&] {
    return toPlain ? onednn::Reorder::toPlain(blocked, plain) : onednn::Reorder::toChosen(plain, blocked);
  });
  // Equal descriptors (a 1 x 1 image's nhwc is its nchw) make no reorder primitive: the bytes are the same.
  if (!r->needed) {
    std::memcpy(dst, src, plain.get_size());
    return;
  }
  onednn::applyThreads();
  memory from(toPlain ? blocked : plain, onednn::engine(), const_cast<void*>(src));  // only read
  memory to(toPlain ? plain : blocked, onednn::engine(), dst);
  r->step.run({{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

}  // namespace
#endif

void blockedToPlain(const std::vector<int64_t>& dims, int block, DType dt, const void* src, void* dst) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (blockedNumel(dims, block) > 0) reorder(dims, block, dt, src, dst, true);
#endif
  });
}

void plainToBlocked(const std::vector<int64_t>& dims, int block, DType dt, const void* src, void* dst) {
  withOnednn([&] {
#ifdef NODEGRAD_HAVE_ONEDNN
    if (blockedNumel(dims, block) > 0) reorder(dims, block, dt, src, dst, false);
#endif
  });
}

}  // namespace nodegrad::cpu
