/**
 * Runs before every test file: registers the native 'cpu' backend (or records why it is
 * unavailable), so `backends()` and `describeBackends` see it in every suite, not only in files
 * that happen to import '@nodegrad/native' (DESIGN.md: one suite runs on every available backend).
 */
import { afterEach } from 'vitest';
import { setDefaultDevice } from '@nodegrad/autograd';
import { registerCudaEmulation } from '@nodegrad/native';

// 'cuda-emu' (the CUDA kernels compiled for the host, native/lib/emulation.ts) joins every
// describeBackends suite, so CI without a GPU checks the 'cuda' kernels against 'ts'
// (NODEGRAD_CUDA_EMU=0 leaves it out).
if (process.env.NODEGRAD_CUDA_EMU !== '0') registerCudaEmulation();

// Importing the addon makes 'cpu' the default device when it is built with oneDNN. Tests keep
// 'ts': the reference suites create float64 tensors on the default device, and 'cpu' is
// float32-only; a test that wants another device names it (describeBackends passes it in).
setDefaultDevice('ts');

// vitest's worker reports each finished test to the main process over RPC and gives up on a reply
// after 60 s; it reads replies only when its event loop turns. A file of long synchronous tests
// (goldens, whole ResNets) can run past 60 s without a turn, and the run then fails with "Timeout
// calling onTaskUpdate" although every test passed. One macrotask turn after each test reads the
// replies in time.
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
