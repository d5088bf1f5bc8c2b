/**
 * The framework-overhead cases of issue 17, as data shared by the orchestrator (bench/overhead.ts)
 * and the workers (bench/overhead_cases.ts for nodegrad, bench/overhead_torch.py for PyTorch), so
 * both sides build the same workload from one spec. All run on one thread: what is measured is the
 * host's cost per op, which threads do not shorten on tensors this small.
 */

export interface OverheadSpec {
  id: string;
  title: string;
  /**
   * 'chain': x (16 float32 elements, requiring grad) through `ops` alternating ops, y = y * 1.01
   * then y = y + 0.5, then y.sum().backward(); reported per op.
   * 'mlp': Linear(784, 128), ReLU, Linear(128, 10), batch 64, cross-entropy, Adam (lr 1e-3): one
   * training step (zero grad, forward, backward, step).
   * 'gradcheck': gradcheck of f(a, b) = tanh(a @ b) with a 4x5 and b 5x3 in float64 (nodegrad's
   * gradcheck against torch.autograd.gradcheck, both with their default tolerances).
   */
  kind: 'chain' | 'mlp' | 'gradcheck';
  /** nodegrad's device; PyTorch runs on its CPU device in every case. */
  device: 'ts' | 'cpu';
  /** Ops per iteration for 'chain' (the per-op time is the iteration's over this). */
  ops: number;
  /** Iterations per timed block: a block lasts ~0.1 s or more on this class of machine. */
  iters: number;
  /** nodegrad's speed over PyTorch's that issue 17 asks for (1.0: at least as fast). */
  target: number;
}

export const OVERHEAD_CASES: readonly OverheadSpec[] = [
  { id: 'O-chain-ts', title: 'chain of 1,000 scalar mul/add on 16 elements, forward + backward', kind: 'chain', device: 'ts', ops: 1000, iters: 20, target: 1 },
  { id: 'O-chain-cpu', title: 'chain of 1,000 scalar mul/add on 16 elements, forward + backward', kind: 'chain', device: 'cpu', ops: 1000, iters: 20, target: 1 },
  { id: 'O-mlp-cpu', title: 'MLP 784-128-10, batch 64, Adam, one training step', kind: 'mlp', device: 'cpu', ops: 0, iters: 100, target: 1 },
  { id: 'O-gradcheck-ts', title: 'gradcheck of tanh(a @ b), a 4x5, b 5x3, float64', kind: 'gradcheck', device: 'ts', ops: 0, iters: 10, target: 1 },
];
