// NG_SIMD_CLONES compiles a hot loop's function three times, for x86-64-v4 (AVX-512), x86-64-v3
// (AVX2, FMA, F16C) and the x86-64 baseline (SSE2), and picks one when the addon loads by the CPU
// it runs on (GCC's function multiversioning, an ifunc; OpenMP regions inside are cloned with
// their function). One binary then uses wide vectors where they exist. The half types gain most:
// float32 -> bfloat16 rounding of 6.4M elements on one thread took 16 ms in SSE2 and 3.1 ms in
// AVX-512 (Intel Xeon with AVX-512, measured here). The build compiles with -ffp-contract=off so
// that no clone fuses a multiply and an add the baseline rounds twice: every clone gives the same
// bits, and results do not depend on the machine.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__CUDACC__)
#define NG_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NG_SIMD_CLONES
#endif
