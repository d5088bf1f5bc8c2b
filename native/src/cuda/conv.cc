// Convolution on cuDNN's legacy API (still in cuDNN 9): NCHW input, OIHW weight, float32, float64,
// bfloat16 and float16 (half data with float32 compute on tensor cores, as PyTorch's AMP runs it),
// with core/geometry.h's shapes and checks as on 'cpu'. Descriptors are made per call and
// owned. Algorithms are picked as PyTorch picks them: by cuDNN's heuristics, the first whose
// workspace the device's caching allocator can give; in benchmark mode by cudnnFind*AlgorithmEx,
// once per key, ranking kept; in deterministic mode only among those cuDNN marks deterministic.
// float32 may use TF32 tensor cores when cuDNN TF32 is on (PyTorch's default), FMA math otherwise.
#include "cuda/conv.h"

#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/caching_allocator.h"
#include "core/geometry.h"
#include "cuda/check.h"
#include "cuda/context.h"
#include "cuda/device.h"
#include "cuda/flags.h"

namespace nodegrad::cuda {
namespace {

template <typename T>
using Owned = std::unique_ptr<std::remove_pointer_t<T>, cudnnStatus_t (*)(T)>;

int dim(int64_t v, const Shape& s) {
  if (v > INT_MAX) throw std::runtime_error("size " + std::to_string(v) + " of " + fmtShape(s) + " exceeds cuDNN's int range");
  return int(v);
}

// A tensor's or filter's descriptor strides are ints too: the whole operand must stay below 2^31
// elements.
void checkElements(const Shape& s) {
  if (numel(s) > INT_MAX) {
    throw std::runtime_error(fmtShape(s) + " holds " + std::to_string(numel(s)) +
                             " elements; cuDNN's convolution descriptors index with int, at most " + std::to_string(INT_MAX));
  }
}

Owned<cudnnTensorDescriptor_t> tensorDesc(cudnnDataType_t type, const Shape& s) {
  cudnnTensorDescriptor_t d = nullptr;
  NG_CUDNN(cudnnCreateTensorDescriptor(&d));
  Owned<cudnnTensorDescriptor_t> owned(d, cudnnDestroyTensorDescriptor);
  checkElements(s);
  NG_CUDNN(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, type, dim(s[0], s), dim(s[1], s), dim(s[2], s), dim(s[3], s)));
  return owned;
}

Owned<cudnnFilterDescriptor_t> filterDesc(cudnnDataType_t type, const Shape& s) {
  cudnnFilterDescriptor_t d = nullptr;
  NG_CUDNN(cudnnCreateFilterDescriptor(&d));
  Owned<cudnnFilterDescriptor_t> owned(d, cudnnDestroyFilterDescriptor);
  checkElements(s);
  NG_CUDNN(cudnnSetFilter4dDescriptor(d, type, CUDNN_TENSOR_NCHW, dim(s[0], s), dim(s[1], s), dim(s[2], s), dim(s[3], s)));
  return owned;
}

// type: the compute type (float32 for half data).
Owned<cudnnConvolutionDescriptor_t> convDesc(cudnnDataType_t type, const ConvParams& p, cudnnMathType_t math) {
  cudnnConvolutionDescriptor_t d = nullptr;
  NG_CUDNN(cudnnCreateConvolutionDescriptor(&d));
  Owned<cudnnConvolutionDescriptor_t> owned(d, cudnnDestroyConvolutionDescriptor);
  const Shape ps{p.ph, p.pw, p.sh, p.sw, p.dh, p.dw, p.groups};
  NG_CUDNN(cudnnSetConvolution2dDescriptor(d, dim(p.ph, ps), dim(p.pw, ps), dim(p.sh, ps), dim(p.sw, ps), dim(p.dh, ps),
                                           dim(p.dw, ps), CUDNN_CROSS_CORRELATION, type));
  NG_CUDNN(cudnnSetConvolutionGroupCount(d, dim(p.groups, ps)));
  NG_CUDNN(cudnnSetConvolutionMathType(d, math));
  return owned;
}

cudnnDataType_t dataType(DType d) {
  switch (d) {
    case DType::F64: return CUDNN_DATA_DOUBLE;
    case DType::BF16: return CUDNN_DATA_BFLOAT16;
    case DType::F16: return CUDNN_DATA_HALF;
    default: return CUDNN_DATA_FLOAT;
  }
}

// One call: its geometry, dtype, math type and descriptors, and its operands (in0 and in1 read,
// out written: x, w, y forward; w, dy, dx backward-data; x, dy, dw backward-filter).
struct Call {
  Call(const ConvGeom& g, DType dtype, const void* in0, const void* in1, void* out)
      : g(g),
        dtype(dtype),
        type(dataType(dtype)),
        math(dtype == DType::F32 && !flags().tf32Cudnn ? CUDNN_FMA_MATH
             : isHalf(dtype)                          ? CUDNN_TENSOR_OP_MATH
                                                      : CUDNN_DEFAULT_MATH),
        x(tensorDesc(type, g.xShape())),
        y(tensorDesc(type, g.yShape())),
        w(filterDesc(type, g.wShape())),
        conv(convDesc(dtype == DType::F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT, g.p, math)),
        in0(in0),
        in1(in1),
        out(out) {}
  // cuDNN's alpha and beta: in double for double data, float otherwise (half data included).
  const void* one() const { return dtype == DType::F64 ? static_cast<const void*>(&oneD) : &oneF; }
  const void* zero() const { return dtype == DType::F64 ? static_cast<const void*>(&zeroD) : &zeroF; }

  ConvGeom g;
  DType dtype;
  cudnnDataType_t type;
  cudnnMathType_t math;
  Owned<cudnnTensorDescriptor_t> x, y;
  Owned<cudnnFilterDescriptor_t> w;
  Owned<cudnnConvolutionDescriptor_t> conv;
  const void *in0, *in1;
  void* out;
  float oneF = 1, zeroF = 0;
  double oneD = 1, zeroD = 0;
};

// The three directions' cuDNN calls behind one shape, for convolve().
struct Fwd {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  static constexpr int kDir = 0, kAlgos = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static constexpr const char* kName = "forward";
  static void heuristics(cudnnHandle_t h, const Call& c, int n, int* got, Perf* p) {
    NG_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(h, c.x.get(), c.w.get(), c.conv.get(), c.y.get(), n, got, p));
  }
  static void find(cudnnHandle_t h, const Call& c, int n, int* got, Perf* p, void* ws, size_t bytes) {
    NG_CUDNN(cudnnFindConvolutionForwardAlgorithmEx(h, c.x.get(), c.in0, c.w.get(), c.in1, c.conv.get(), c.y.get(),
                                                    c.out, n, got, p, ws, bytes));
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Call& c, int algo, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, c.x.get(), c.w.get(), c.conv.get(), c.y.get(),
                                                   cudnnConvolutionFwdAlgo_t(algo), bytes);
  }
  static void run(cudnnHandle_t h, const Call& c, int algo, void* ws, size_t bytes) {
    NG_CUDNN(cudnnConvolutionForward(h, c.one(), c.x.get(), c.in0, c.w.get(), c.in1, c.conv.get(),
                                     cudnnConvolutionFwdAlgo_t(algo), ws, bytes, c.zero(), c.y.get(), c.out));
  }
  static bool nondeterministic(int) { return false; }
};

struct BwdData {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  static constexpr int kDir = 1, kAlgos = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static constexpr const char* kName = "backward-data";
  static void heuristics(cudnnHandle_t h, const Call& c, int n, int* got, Perf* p) {
    NG_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, c.w.get(), c.y.get(), c.conv.get(), c.x.get(), n, got, p));
  }
  static void find(cudnnHandle_t h, const Call& c, int n, int* got, Perf* p, void* ws, size_t bytes) {
    NG_CUDNN(cudnnFindConvolutionBackwardDataAlgorithmEx(h, c.w.get(), c.in0, c.y.get(), c.in1, c.conv.get(), c.x.get(),
                                                         c.out, n, got, p, ws, bytes));
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Call& c, int algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, c.w.get(), c.y.get(), c.conv.get(), c.x.get(),
                                                        cudnnConvolutionBwdDataAlgo_t(algo), bytes);
  }
  static void run(cudnnHandle_t h, const Call& c, int algo, void* ws, size_t bytes) {
    NG_CUDNN(cudnnConvolutionBackwardData(h, c.one(), c.w.get(), c.in0, c.y.get(), c.in1, c.conv.get(),
                                          cudnnConvolutionBwdDataAlgo_t(algo), ws, bytes, c.zero(), c.x.get(), c.out));
  }
  static bool nondeterministic(int algo) { return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0; }
};

struct BwdFilter {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  static constexpr int kDir = 2, kAlgos = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static constexpr const char* kName = "backward-filter";
  static void heuristics(cudnnHandle_t h, const Call& c, int n, int* got, Perf* p) {
    NG_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, c.x.get(), c.y.get(), c.conv.get(), c.w.get(), n, got, p));
  }
  static void find(cudnnHandle_t h, const Call& c, int n, int* got, Perf* p, void* ws, size_t bytes) {
    NG_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, c.x.get(), c.in0, c.y.get(), c.in1, c.conv.get(),
                                                           c.w.get(), c.out, n, got, p, ws, bytes));
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Call& c, int algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, c.x.get(), c.y.get(), c.conv.get(), c.w.get(),
                                                          cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
  }
  static void run(cudnnHandle_t h, const Call& c, int algo, void* ws, size_t bytes) {
    NG_CUDNN(cudnnConvolutionBackwardFilter(h, c.one(), c.x.get(), c.in0, c.y.get(), c.in1, c.conv.get(),
                                            cudnnConvolutionBwdFilterAlgo_t(algo), ws, bytes, c.zero(), c.w.get(),
                                            c.out));
  }
  static bool nondeterministic(int algo) {
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
};

// An algorithm to try and the math type to run it with.
struct Choice {
  int algo;
  cudnnMathType_t math;
};

using Key = std::array<int64_t, 19>;
std::mutex cacheMu;
std::map<Key, std::vector<Choice>> benchmarkCache;

Key keyOf(int dir, const Call& c) {
  const ConvGeom& g = c.g;
  return {dir, current().index, int64_t(c.dtype), int64_t(c.math), flags().deterministic ? 1 : 0, g.n, g.c, g.h, g.w,
          g.o, g.kh, g.kw, g.p.sh, g.p.sw, g.p.ph, g.p.pw, g.p.dh, g.p.dw, g.p.groups};
}

// cuDNN's ranking (heuristic or timed) without failed entries and, in deterministic mode, without
// nondeterministic algorithms. float32 without TF32 stays on FMA math whatever an entry says.
template <class D>
std::vector<Choice> usable(const Call& c, const std::vector<typename D::Perf>& perf, int got) {
  const bool deterministic = flags().deterministic;
  std::vector<Choice> v;
  for (int i = 0; i < got; i++) {
    const auto& p = perf[size_t(i)];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    if (deterministic && (p.determinism != CUDNN_DETERMINISTIC || D::nondeterministic(int(p.algo)))) continue;
    v.push_back({int(p.algo), c.math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : p.mathType});
  }
  return v;
}

// What cuDNN ranked, one entry per algorithm, for the error when none could run: its number,
// status, determinism (as usable() judges it), math type and workspace.
template <class D>
std::string ranked(const std::vector<typename D::Perf>& perf, int got) {
  if (got == 0) return "cuDNN ranked no algorithm";
  std::string s = "cuDNN ranked:";
  for (int i = 0; i < got; i++) {
    const auto& p = perf[size_t(i)];
    const bool det = p.determinism == CUDNN_DETERMINISTIC && !D::nondeterministic(int(p.algo));
    s += std::string(i ? ";" : "") + " algo " + std::to_string(int(p.algo)) + " " + cudnnGetErrorString(p.status) +
         (det ? " deterministic" : " nondeterministic") + " math " + std::to_string(int(p.mathType)) + " workspace " +
         std::to_string(p.memory) + " bytes";
  }
  return s;
}

// A workspace from the current device's caching allocator (freed when `ws` goes: stream order
// keeps it alive for the call); false when the allocator cannot give `bytes`.
bool workspace(size_t bytes, BufferPtr& ws) {
  if (!bytes) return true;
  try {
    ws = newBuffer(current().allocator, (bytes + 3) / 4, DType::F32, bytes);
    return true;
  } catch (const OutOfMemoryError&) {
    return false;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

// Times every algorithm with as much workspace as the hungriest one asks, halved until it fits.
template <class D>
std::vector<Choice> benchmark(cudnnHandle_t h, const Call& c, std::vector<typename D::Perf>& perf, int& got) {
  size_t most = 0;
  for (int algo = 0; algo < D::kAlgos; algo++) {
    size_t bytes = 0;
    if (D::workspace(h, c, algo, &bytes) == CUDNN_STATUS_SUCCESS && bytes > most) most = bytes;
  }
  BufferPtr ws;
  while (!workspace(most, ws)) most /= 2;
  D::find(h, c, int(perf.size()), &got, perf.data(), ws ? ws->data : nullptr, most);
  return usable<D>(c, perf, got);
}

template <class D>
void convolve(const Call& c) {
  cudnnHandle_t h = cudnnHandle();
  std::vector<typename D::Perf> perf(size_t(D::kAlgos));
  std::vector<Choice> choices;
  int got = -1;  // -1: the choices came from the benchmark cache, cuDNN's ranking is not at hand
  if (flags().cudnnBenchmark) {
    const Key key = keyOf(D::kDir, c);
    {
      std::lock_guard<std::mutex> lock(cacheMu);
      auto it = benchmarkCache.find(key);
      if (it != benchmarkCache.end()) choices = it->second;
    }
    if (choices.empty()) {
      got = 0;
      choices = benchmark<D>(h, c, perf, got);
      std::lock_guard<std::mutex> lock(cacheMu);
      benchmarkCache[key] = choices;
    }
  } else {
    got = 0;
    D::heuristics(h, c, int(perf.size()), &got, perf.data());
    choices = usable<D>(c, perf, got);
  }
  // What became of each choice, for the error: a workspace query cuDNN refused is not a memory problem.
  std::string tried;
  for (const Choice& ch : choices) {
    NG_CUDNN(cudnnSetConvolutionMathType(c.conv.get(), ch.math));
    size_t bytes = 0;
    BufferPtr ws;
    const cudnnStatus_t st = D::workspace(h, c, ch.algo, &bytes);
    if (st == CUDNN_STATUS_SUCCESS && workspace(bytes, ws)) {
      D::run(h, c, ch.algo, ws ? ws->data : nullptr, bytes);
      return;
    }
    tried += std::string(tried.empty() ? "" : "; ") + "algo " + std::to_string(int(ch.algo)) + ": " +
             (st != CUDNN_STATUS_SUCCESS ? std::string("workspace query ") + cudnnGetErrorString(st)
                                         : "a workspace of " + std::to_string(bytes) + " bytes could not be allocated");
  }
  // Which of the three reasons it was, then cuDNN's ranking: the first GPU runs are short, and a
  // refusal that reads as a memory problem when it is not would cost one of them.
  const std::string why = !choices.empty()   ? "no algorithm could run (" + tried + ")"
                          : flags().deterministic ? "no deterministic algorithm"
                                                  : "no algorithm cuDNN could run";
  throw std::runtime_error(std::string("cuDNN ") + D::kName + " convolution: " + why + " for input " +
                           fmtShape(c.g.xShape()) + ", weight " + fmtShape(c.g.wShape()) + ", " + dtypeName(c.dtype) +
                           " (" + (got < 0 ? std::string("choices from the benchmark cache") : ranked<D>(perf, got)) + ")");
}

DType convDtype(const TensorRef& a, const char* an, const TensorRef& b, const char* bn) {
  if (a.dtype != b.dtype || a.dtype == DType::I32 || a.dtype == DType::I64) {
    throw std::runtime_error(std::string("arguments '") + an + "' and '" + bn + "' are " + dtypeName(a.dtype) + " and " +
                             dtypeName(b.dtype) + "; the 'cuda' backend convolves float operands of one dtype");
  }
  return a.dtype;
}

// A sum over an empty set when any operand is empty (cuDNN refuses zero sizes): zeros, as on 'cpu'.
bool emptyConv(const ConvGeom& g) {
  return numel(g.xShape()) == 0 || numel(g.wShape()) == 0 || numel(g.yShape()) == 0;
}
void zero(const Tensor& t) {
  if (t.buf->bytes) NG_CUDA(cudaMemsetAsync(t.buf->data, 0, t.buf->bytes, current().stream));
}

Tensor conv2d(const TensorRef& x, const TensorRef& w, const ConvParams& p) {
  const DType dt = convDtype(x, "x", w, "w");
  const ConvGeom g = convGeom(x.shape, w.shape, p);
  Tensor y = empty(g.yShape(), dt);
  if (emptyConv(g)) zero(y);
  else convolve<Fwd>(Call(g, dt, x.buf->data, w.buf->data, y.buf->data));
  return y;
}

Tensor conv2dBackpropInput(const TensorRef& dy, const TensorRef& w, const Shape& xShape, const ConvParams& p) {
  const DType dt = convDtype(dy, "dy", w, "w");
  const ConvGeom g = convGeom(xShape, w.shape, p, &dy.shape);
  Tensor dx = empty(g.xShape(), dt);
  if (emptyConv(g)) zero(dx);
  else convolve<BwdData>(Call(g, dt, w.buf->data, dy.buf->data, dx.buf->data));
  return dx;
}

// dwType is x's, or float32 for a half x (the binding checks): cuDNN's legacy call writes dw in the
// type of x and dy, so that dw is made in x's type and widened.
Tensor conv2dBackpropFilter(const TensorRef& x, const TensorRef& dy, const Shape& wShape, const ConvParams& p,
                            DType dwType) {
  const DType dt = convDtype(x, "x", dy, "dy");
  const ConvGeom g = convGeom(x.shape, wShape, p, &dy.shape);
  Tensor dw = empty(g.wShape(), dt);
  if (emptyConv(g)) zero(dw);
  else convolve<BwdFilter>(Call(g, dt, x.buf->data, dy.buf->data, dw.buf->data));
  if (dwType == dt) return dw;
  return castTo(TensorRef{dw.buf.get(), dw.shape, dw.dtype}, dwType);
}

}  // namespace

size_t cudnnBenchmarkCacheSize() {
  std::lock_guard<std::mutex> lock(cacheMu);
  return benchmarkCache.size();
}

void addConvKernels(KernelTable& t) {
  t.conv2d = conv2d;
  t.conv2dBackpropInput = conv2dBackpropInput;
  t.conv2dBackpropFilter = conv2dBackpropFilter;
}

}  // namespace nodegrad::cuda
