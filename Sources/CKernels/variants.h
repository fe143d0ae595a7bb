// Instruction-set variants of C loops (private to CKernels): one body, compiled for AVX-512, AVX2 + FMA and
// portable, dispatched on the active variant (TESSERA_ISA or the CPU's best), unlike `target_clones`, which
// always picks by CPU.
#ifndef TESSERA_CKERNELS_VARIANTS_H
#define TESSERA_CKERNELS_VARIANTS_H

#include <string.h>

// Instruction-set variants of one loop: BODY is an always-inline function; NAME##_avx512 / _avx2 / _portable call it
// under their target, so each copy is vectorised for its own registers.
#if defined(__x86_64__)
#define TK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TK_TARGET_AVX512 __attribute__((target("avx512f,fma")))  // what tk_kernel_named("avx512") checks
#define TK_VARIANTS(NAME, PARAMS, ARGS)                                                                    \
    TK_TARGET_AVX512 static void NAME##_avx512 PARAMS { NAME##_body ARGS; }                                \
    TK_TARGET_AVX2 static void NAME##_avx2 PARAMS { NAME##_body ARGS; }                                    \
    static void NAME##_portable PARAMS { NAME##_body ARGS; }                                               \
    void NAME##_variant(const char *isa, TK_UNPAREN PARAMS) {                                              \
        if (strcmp(isa, "avx512") == 0) NAME##_avx512 ARGS;                                                \
        else if (strcmp(isa, "avx2") == 0) NAME##_avx2 ARGS;                                               \
        else NAME##_portable ARGS;                                                                         \
    }
#else
#define TK_VARIANTS(NAME, PARAMS, ARGS)                                                                    \
    static void NAME##_portable PARAMS { NAME##_body ARGS; }                                               \
    void NAME##_variant(const char *isa, TK_UNPAREN PARAMS) { (void)isa; NAME##_portable ARGS; }
#endif
#define TK_UNPAREN(...) __VA_ARGS__
#define TK_INLINE static inline __attribute__((always_inline))

#endif
