// The argument helpers of the bindings from before the kernel table, kept for one user only:
// bindings/norm.cc (batch norm), which reads its arguments with them, picks layouts itself and is
// exported beside the table. They are 'cpu'-only (bindings/buffer.cc, linked into nodegrad.node,
// not into the shared core) and go away once batch norm's kernels join the table: every other
// binding reads TensorRefs (bindings/handles.h) and leaves layouts to the device.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings/handles.h"
#include "core/tensor.h"

namespace nodegrad {

// A kernel argument read by the helpers below.
struct TensorArg {
  Buffer* buf;
  std::vector<int64_t> shape;
  DType dtype;
  // The temporary copy `buf` points to once the argument was converted (plainView, blockedView).
  std::shared_ptr<Buffer> converted;
  size_t numel() const;
  float* f32() const { return buf->as<float>(); }
  // Blocked, and seen under its own NCHW shape.
  bool blockedAsIs() const { return buf->block != 0 && shape == buf->dims; }
};

// A plain 'cpu' result handle of numel elements; *out gets its buffer.
Napi::Value newHandle(Napi::Env env, size_t numel, DType dtype, Buffer** out);
// A float32 'cpu' result handle for an [N, C, H, W] result in nChw{block}c (block 0: plain).
Napi::Value newBlockedHandle(Napi::Env env, const std::vector<int64_t>& dims, int block, Buffer** out);
// Argument `i` read plain: a blocked buffer is reordered into a temporary copy (plainView).
TensorArg tensorArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
TensorArg tensorFrom(Napi::Value v, const char* op, const char* name);
// Argument `i` in whatever layout its buffer holds.
TensorArg tensorArgAnyLayout(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
// Makes `t` plain through a temporary copy.
void plainView(TensorArg& t);
// Makes a plain float32 `t` of like->dims blocked as `like` is, through a temporary copy.
void blockedView(TensorArg& t, const Buffer* like);
// Argument `i` for a kernel that writes into it: made plain in place, the write recorded.
TensorArg writableArg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
inline void markWritten(Buffer* b) { markWritten(*b); }
// Throws unless the argument is float32, naming op and argument.
void requireF32(const TensorArg& t, const char* op, const char* name);

}  // namespace nodegrad
