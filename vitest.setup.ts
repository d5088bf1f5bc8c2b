/**
 * Runs before every test file: registers the native 'cpu' backend (or records why it is
 * unavailable), so `backends()` and `describeBackends` see it in every suite, not only in files
 * that happen to import '@nodegrad/native' (DESIGN.md: one suite runs on every available backend).
 */
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
