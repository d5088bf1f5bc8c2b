// Reductions on the device: Sum, Max, Min over axes, ArgMax, ArgMin along one, and (Log)Softmax,
// with the 'cpu' kernels' semantics (cpu/reduce.cc): accumulation in double, NaN winning a max or
// min, the first index winning a tie, empty reductions giving 0, -inf and +inf. A half element is
// read widened and a half result rounded once from the double.
// Every reduction here is a set of lines (cuda/lines.h).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/half.h"
#include "cuda/device.h"
#include "cuda/launch.h"
#include "cuda/lines.h"

namespace nodegrad::cuda {
namespace {

// The kept and the reduced dims of a row-major shape, each group's adjacent dims merged and
// size-1 dims dropped, so that a high rank rarely exceeds kMaxDims.
Lines linesOf(const Shape& shape, const std::vector<int64_t>& axes, const char* op) {
  std::vector<bool> reduced(shape.size(), false);
  for (auto a : axes) reduced[size_t(a)] = true;
  std::vector<int64_t> stride(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1, s = 1; d >= 0; d--) {
    stride[size_t(d)] = s;
    s *= shape[size_t(d)];
  }
  Lines g;
  int last = -1;  // the group of the last dim kept in a StridedIndex
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 1) continue;
    const int group = reduced[d] ? 1 : 0;
    StridedIndex& s = group ? g.red : g.out;
    (group ? g.R : g.outN) *= shape[d];
    if (group == last) {
      s.size[s.rank - 1] *= shape[d];
      s.stride[s.rank - 1] = stride[d];
      continue;
    }
    if (s.rank == kMaxDims) {
      throw std::runtime_error(std::string(op) + ": the 'cuda' backend reduces tensors of up to " +
                               std::to_string(kMaxDims) + " non-adjacent dims, got " + fmtShape(shape));
    }
    s.size[s.rank] = shape[d];
    s.stride[s.rank] = stride[d];
    s.rank++;
    last = group;
  }
  return g;
}

NG_HD double identity(ReduceOp op) { return op == ReduceOp::Sum ? 0.0 : op == ReduceOp::Max ? -INFINITY : INFINITY; }

// cpu/reduce.cc's step: once NaN, a max or min stays NaN.
NG_HD void fold(ReduceOp op, double& r, double v) {
  if (op == ReduceOp::Sum) r += v;
  else if (r != r) return;
  else if (op == ReduceOp::Max) r = (v > r || v != v) ? v : r;
  else r = (v < r || v != v) ? v : r;
}

// What a line's element contributes: the element, or (softmax's and logsumexp's sum) exp(x - max).
template <typename T>
struct Plain {
  const T* x;
  NG_HD double operator()(int64_t, int64_t off) const { return double(x[off]); }
};
template <typename T>
struct ExpShifted {
  const T* x;
  const double* max;
  NG_HD double operator()(int64_t o, int64_t off) const {
    using std::exp;
    return exp(double(x[off]) - max[o]);
  }
};

// out[o] = the reduction of load over line o.
template <typename Load, typename Out>
void reduceLines(ReduceOp op, Load load, const Lines& g, Out* out) {
  const Split s = splitOf(g);
  const StridedIndex os = g.out, rs = g.red;
  Tensor part;
  double* p = nullptr;
  if (s.K > 1) {
    part = empty({s.outN * s.K}, DType::F64);
    p = part.buf->as<double>();
  }
  forEach(
      s.outN * s.K,
      [=] NG_DEVICE(int64_t i) {
        const Chunk c = s.at(i);
        const int64_t base = os.offset(c.o);
        double acc = identity(op);
        NG_UNROLL_LOADS
        for (int64_t r = c.r0; r < c.r1; r += c.step) fold(op, acc, load(c.o, base + rs.offset(r)));
        if (p) p[i] = acc;
        else out[i] = Out(acc);
      },
      "Reduce");
  if (p) reduceLines(op, Plain<double>{p}, s.partials(), out);
}

// ArgMax / ArgMin: the best (value, index) of a line; at < 0 before the first element.
struct Best {
  double v, at;
};

// Whether (v, at) wins over b: the first NaN, else the largest (smallest), ties to the first index.
// Within a chunk indices rise; across chunks the index decides ties, so any split gives cpu's answer.
NG_HD bool wins(bool isMax, double v, double at, const Best& b) {
  if (b.at < 0) return true;
  if (b.v != b.v) return v != v && at < b.at;
  if (v != v) return true;
  if (v == b.v) return at < b.at;
  return isMax ? v > b.v : v < b.v;
}

// Line o's best: the element's own index r, or (partials) the index stored beside its value.
template <typename T>
void argLines(bool isMax, const T* x, const double* xAt, const Lines& g, double* outV, double* outAt) {
  const Split s = splitOf(g);
  const StridedIndex os = g.out, rs = g.red;
  Tensor partV, partAt;
  double *pv = outV, *pa = outAt;
  if (s.K > 1) {
    partV = empty({s.outN * s.K}, DType::F64);
    partAt = empty({s.outN * s.K}, DType::F64);
    pv = partV.buf->as<double>();
    pa = partAt.buf->as<double>();
  }
  forEach(
      s.outN * s.K,
      [=] NG_DEVICE(int64_t i) {
        const Chunk c = s.at(i);
        const int64_t base = os.offset(c.o);
        Best b{0, -1};
        for (int64_t r = c.r0; r < c.r1; r += c.step) {
          const int64_t off = base + rs.offset(r);
          const double v = double(x[off]), at = xAt ? xAt[off] : double(r);
          if (wins(isMax, v, at, b)) b = {v, at};
        }
        if (pv) pv[i] = b.v;
        // An empty axis gives index 0, as the 'ts' and 'cpu' kernels do.
        pa[i] = b.at < 0 ? 0 : b.at;
      },
      "ArgReduce");
  if (s.K > 1) argLines(isMax, pv, pa, s.partials(), outV, outAt);
}

void requireReal(DType d, const char* name) {
  if (d == DType::I32) {
    throw std::runtime_error(std::string("argument '") + name + "' is int32; the 'cuda' backend computes this kernel " +
                             "in float32, float64 and int64 (use .to('int64') or .to('float32'))");
  }
}

Tensor reduceKernel(ReduceOp op, const TensorRef& x, const std::vector<int64_t>& axes) {
  requireReal(x.dtype, "x");
  const char* name = op == ReduceOp::Sum ? "Sum" : op == ReduceOp::Max ? "Max" : "Min";
  Shape outShape = x.shape;
  for (auto a : axes) outShape[size_t(a)] = 1;
  Tensor out = empty(outShape, x.dtype);
  const Lines g = linesOf(x.shape, axes, name);
  NG_FLOAT_DISPATCH(x.dtype, reduceLines(op, Plain<T>{x.buf->as<T>()}, g, out.buf->as<T>());)
  return out;
}

Tensor argReduceKernel(bool isMax, const TensorRef& x, int64_t axis) {
  requireReal(x.dtype, "x");
  Shape outShape = x.shape;
  outShape[size_t(axis)] = 1;
  Tensor out = empty(outShape, DType::I64);
  const Lines g = linesOf(x.shape, {axis}, isMax ? "ArgMax" : "ArgMin");
  NG_FLOAT_DISPATCH(x.dtype, argLines<T>(isMax, x.buf->as<T>(), nullptr, g, nullptr, out.buf->as<double>());)
  return out;
}

// |x|^p (|x| itself for p = 1 or an infinite p, x^2 for p = 2): what a norm's line folds.
template <typename T>
struct AbsPow {
  const T* x;
  double p;
  NG_HD double operator()(int64_t, int64_t off) const {
    using std::fabs;
    using std::isinf;
    using std::pow;
    const double v = fabs(double(x[off]));
    return p == 1 || isinf(p) ? v : p == 2 ? v * v : pow(v, p);
  }
};

template <typename T>
void normOn(const T* x, double ord, const Lines& g, T* out) {
  using std::isinf;
  if (isinf(ord)) {
    reduceLines(ord > 0 ? ReduceOp::Max : ReduceOp::Min, AbsPow<T>{x, ord}, g, out);
    return;
  }
  Tensor sumT = empty({g.outN}, DType::F64);
  double* sum = sumT.buf->as<double>();
  reduceLines(ReduceOp::Sum, AbsPow<T>{x, ord}, g, sum);
  forEach(
      g.outN,
      [=] NG_DEVICE(int64_t o) {
        using std::pow;
        using std::sqrt;
        out[o] = T(ord == 1 ? sum[o] : ord == 2 ? sqrt(sum[o]) : pow(sum[o], 1 / ord));
      },
      "Norm");
}

Tensor normKernel(const TensorRef& x, double ord, const std::vector<int64_t>& axes) {
  requireReal(x.dtype, "x");
  Shape outShape = x.shape;
  for (auto a : axes) outShape[size_t(a)] = 1;
  Tensor out = empty(outShape, x.dtype);
  const Lines g = linesOf(x.shape, axes, "Norm");
  NG_FLOAT_DISPATCH(x.dtype, normOn(x.buf->as<T>(), ord, g, out.buf->as<T>());)
  return out;
}

template <typename T>
void logSumExpOn(const T* x, const Lines& g, T* out) {
  Tensor maxT = empty({g.outN}, DType::F64), sumT = empty({g.outN}, DType::F64);
  double *mx = maxT.buf->as<double>(), *sum = sumT.buf->as<double>();
  reduceLines(ReduceOp::Max, Plain<T>{x}, g, mx);
  forEach(
      g.outN,
      [=] NG_DEVICE(int64_t o) {
        using std::isinf;
        if (isinf(mx[o])) mx[o] = 0;  // inf - inf would be NaN
      },
      "LogSumExp");
  reduceLines(ReduceOp::Sum, ExpShifted<T>{x, mx}, g, sum);
  forEach(
      g.outN,
      [=] NG_DEVICE(int64_t o) {
        using std::log;
        out[o] = T(log(sum[o]) + mx[o]);
      },
      "LogSumExp");
}

Tensor logSumExpKernel(const TensorRef& x, const std::vector<int64_t>& axes) {
  requireReal(x.dtype, "x");
  Shape outShape = x.shape;
  for (auto a : axes) outShape[size_t(a)] = 1;
  Tensor out = empty(outShape, x.dtype);
  const Lines g = linesOf(x.shape, axes, "LogSumExp");
  NG_FLOAT_DISPATCH(x.dtype, logSumExpOn(x.buf->as<T>(), g, out.buf->as<T>());)
  return out;
}

// One thread a line, summing in double as the 'cpu' kernel does (a parallel scan would round
// otherwise; lines are many where cumsum is used, in batches of sequences).
template <typename T>
void cumsumOn(const T* x, T* y, int64_t lines, int64_t len, int64_t inner, bool reverse) {
  forEach(
      lines,
      [=] NG_DEVICE(int64_t line) {
        const int64_t base = line / inner * len * inner + line % inner;
        double acc = 0;
        for (int64_t j = 0; j < len; j++) {
          const int64_t k = base + (reverse ? len - 1 - j : j) * inner;
          acc += double(x[k]);
          y[k] = T(acc);
        }
      },
      "CumSum");
}

Tensor cumsumKernel(const TensorRef& x, int64_t axis, bool reverse) {
  requireReal(x.dtype, "x");
  Tensor out = empty(x.shape, x.dtype);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; d++) outer *= x.shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < x.shape.size(); d++) inner *= x.shape[d];
  const int64_t len = x.shape[size_t(axis)];
  NG_FLOAT_DISPATCH(x.dtype, cumsumOn(x.buf->as<T>(), out.buf->as<T>(), outer * inner, len, inner, reverse);)
  return out;
}

// Max-subtracted as cpu/reduce.cc: z = x - max, softmax = exp(z) / sum exp(z), log-softmax =
// z - log(sum exp(z)), in double; a half result is rounded once. cpu's max skips NaN where this
// one keeps it, but a NaN in a line makes the sum, and so every output of the line, NaN either way.
template <typename T>
void softmaxOn(const T* xd, T* y, const Lines& g, int64_t numel, int64_t len, int64_t inner, bool takeLog,
               const char* name) {
  Tensor maxT = empty({g.outN}, DType::F64), sumT = empty({g.outN}, DType::F64);
  double *mx = maxT.buf->as<double>(), *sum = sumT.buf->as<double>();
  reduceLines(ReduceOp::Max, Plain<T>{xd}, g, mx);
  reduceLines(ReduceOp::Sum, ExpShifted<T>{xd, mx}, g, sum);
  forEach(
      numel,
      [=] NG_DEVICE(int64_t i) {
        using std::exp;
        // The line of element i: its index over [outer, inner], the axis taken out.
        const int64_t line = i / (len * inner) * inner + i % inner;
        const double z = double(xd[i]) - mx[line], s = sum[line];
        y[i] = T(float(takeLog ? z - std::log(s) : exp(z) / s));
      },
      name);
}

Tensor softmaxKernel(const TensorRef& x, int64_t axis, bool log) {
  if (x.dtype != DType::F32 && !isHalf(x.dtype)) {
    throw std::runtime_error(std::string("argument 'x' is ") + dtypeName(x.dtype) +
                             "; the 'cuda' backend computes this kernel in float32 and the half types only (use .to('float32'))");
  }
  const char* name = log ? "LogSoftmax" : "Softmax";
  const Lines g = linesOf(x.shape, {axis}, name);
  Tensor out = empty(x.shape, x.dtype);
  int64_t len = x.shape[size_t(axis)], inner = 1;
  for (size_t d = size_t(axis) + 1; d < x.shape.size(); d++) inner *= x.shape[d];
  NG_FLOAT_DISPATCH(x.dtype, softmaxOn(x.buf->as<T>(), out.buf->as<T>(), g, int64_t(x.numel()), len, inner, log, name);)
  return out;
}

}  // namespace

void addReduceKernels(KernelTable& t) {
  t.reduce = reduceKernel;
  t.argReduce = argReduceKernel;
  t.cumsum = cumsumKernel;
  t.logSumExp = logSumExpKernel;
  t.norm = normKernel;
  t.softmax = softmaxKernel;
}

}  // namespace nodegrad::cuda
