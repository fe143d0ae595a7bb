// Register-only FMA loops: the machine's arithmetic peak per instruction set, the ceiling every kernel's
// GFLOP/s is stated against (`tessera bench --peak`).
#include "CKernels.h"

#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Twelve independent accumulator chains: enough to cover an FMA latency of 4-6 cycles on two ports.
#define PEAK_CHAINS 12

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static double peak_avx2(long iterations) {
    __m256 acc[PEAK_CHAINS];
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i * 1e-3f);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iterations; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        __asm__ volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]), "+x"(acc[4]), "+x"(acc[5]),
                         "+x"(acc[6]), "+x"(acc[7]), "+x"(acc[8]), "+x"(acc[9]), "+x"(acc[10]), "+x"(acc[11]));
    }
    float out[8];
    __m256 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(out, s);
    return (double)iterations * PEAK_CHAINS * 8 * 2 + (out[0] > 1e30f ? 1 : 0);
}

__attribute__((target("avx512f")))
static double peak_avx512(long iterations) {
    __m512 acc[PEAK_CHAINS];
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iterations; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                         "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
    }
    return (double)iterations * PEAK_CHAINS * 16 * 2 + (_mm512_reduce_add_ps(acc[0]) > 1e30f ? 1 : 0);
}
#endif

// Portable: 4-lane chains the compiler keeps in vector registers (SSE2 on baseline x86-64, NEON on aarch64).
static double peak_portable(long iterations) {
    float acc[PEAK_CHAINS][4];
    for (int i = 0; i < PEAK_CHAINS; i++)
        for (int l = 0; l < 4; l++) acc[i][l] = (float)(i + l) * 1e-3f;
    for (long it = 0; it < iterations; it++) {
        for (int i = 0; i < PEAK_CHAINS; i++)
            for (int l = 0; l < 4; l++) acc[i][l] = acc[i][l] * 0.999999f + 1e-7f;
    }
    return (double)iterations * PEAK_CHAINS * 4 * 2 + (acc[0][0] > 1e30f ? 1 : 0);
}

double tk_fma_peak_loop(const char *isa, long iterations) {
#if defined(__x86_64__)
    if (strcmp(isa, "avx512") == 0) return peak_avx512(iterations);
    if (strcmp(isa, "avx2") == 0) return peak_avx2(iterations);
#endif
    return peak_portable(iterations);
}
