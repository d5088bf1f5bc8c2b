/**
 * 'cuda-emu': the 'cuda' kernel families compiled for the host (native/src/cuda/emu/addon.cc), a
 * test-only backend that runs the CUDA kernels' index arithmetic and checks through the parity
 * suites on machines without a GPU. Registered by vitest.setup.ts; never by importing the package.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { registerBackend, reportUnavailable, type DTypeSupport } from '@nodegrad/autograd';
import { CUDA_DTYPES, createBackend } from './backend.js';
import { buildDir } from './load.js';
import type { NativeDevice } from './native.js';

/** cuBLAS matmul and cuDNN convolution are not emulated: suites needing them skip, saying so. */
export const CUDA_EMU_DTYPES: DTypeSupport = { ...CUDA_DTYPES, matmul: [], conv: [] };

/** Registers 'cuda-emu', or reports it unavailable with the reason; returns the reason or null. */
export function registerCudaEmulation(): string | null {
  const file = join(buildDir(), 'Release', 'nodegrad_cuda_emu.node');
  let why: string;
  if (existsSync(file)) {
    try {
      const addon = createRequire(import.meta.url)(file) as Record<string, NativeDevice>;
      registerBackend(createBackend(addon['cuda-emu']!, CUDA_EMU_DTYPES));
      return null;
    } catch (e) {
      why = `the 'cuda-emu' addon failed to load: ${(e as Error).message}`;
    }
  } else {
    why = `the 'cuda-emu' addon was never built (no ${file}; run npm install)`;
  }
  reportUnavailable('cuda-emu', why);
  return why;
}
