// Register-tiled SGEMM micro-kernels over packed panels, one per instruction set, chosen at run time.
#include "CKernels.h"

#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <string.h>

// Copies (or adds) an m x n corner of a full tile computed into tmp (leading dimension nr).
static void tk_store_partial(const float *tmp, int nr, float *c, long ldc, int m, int n, int accumulate) {
    for (int i = 0; i < m; i++) {
        float *ci = c + (long)i * ldc;
        const float *ti = tmp + (long)i * nr;
        if (accumulate) {
            for (int j = 0; j < n; j++) ci[j] += ti[j];
        } else {
            memcpy(ci, ti, sizeof(float) * (size_t)n);
        }
    }
}

// MARK: - scalar (portable fallback), 4 x 16

#define SC_MR 4
#define SC_NR 16
static void kernel_scalar(long kc, const float *a, const float *b, const long *boff, float *c, long ldc, int m, int n, int accumulate) {
    float acc[SC_MR][SC_NR];
    memset(acc, 0, sizeof(acc));
    for (long k = 0; k < kc; k++) {
        const float *ak = a + k * SC_MR;
        const float *bk = b + boff[k];
        for (int i = 0; i < SC_MR; i++) {
            float av = ak[i];
            for (int j = 0; j < SC_NR; j++) acc[i][j] += av * bk[j];
        }
    }
    tk_store_partial(&acc[0][0], SC_NR, c, ldc, m, n, accumulate);
}

// One row of A at a time (layers with 1-3 output rows: a first layer's input gradient, a 2-class head), where
// the 4-8 row tiles above would spend most of their multiply-adds on padding rows.
#define SN_NR 16
static void kernel_narrow_scalar(long kc, const float *a, const float *b, const long *boff, float *c, long ldc, int m,
                                 int n, int accumulate) {
    (void)m;
    float acc[SN_NR] = {0};
    for (long k = 0; k < kc; k++) {
        const float *bk = b + boff[k];
        for (int j = 0; j < SN_NR; j++) acc[j] += a[k] * bk[j];
    }
    tk_store_partial(acc, SN_NR, c, ldc, 1, n, accumulate);
}

#if defined(__x86_64__)
// MARK: - AVX2 + FMA, 6 x 16

#define A2_MR 6
#define A2_NR 16
// The tile for the first `rows` rows only (a compile-time constant in each instantiation below): a product with
// 1-4 rows (a first layer's input gradient has 1 or 3) would otherwise spend most multiply-adds on padding rows.
// A stays packed A2_MR rows apart.
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void
tile_avx2(const int rows, long kc, const float *a, const float *b0p, const long *boff, float *c, long ldc, int m,
          int n, int accumulate) {
    __m256 acc[A2_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (long k = 0; k < kc; k++) {
        const float *b = b0p + boff[k];
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) {
            const __m256 av = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
        a += A2_MR;
    }
    if (m == rows && n == A2_NR) {
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) {
            float *ci = c + (long)i * ldc;
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
                acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, acc[i][0]);
            _mm256_storeu_ps(ci + 8, acc[i][1]);
        }
        return;
    }
    float tmp[A2_MR * A2_NR];
    for (int i = 0; i < rows; i++) {
        _mm256_storeu_ps(tmp + i * A2_NR, acc[i][0]);
        _mm256_storeu_ps(tmp + i * A2_NR + 8, acc[i][1]);
    }
    tk_store_partial(tmp, A2_NR, c, ldc, m, n, accumulate);
}

__attribute__((target("avx2,fma")))
static void kernel_avx2(long kc, const float *a, const float *b0p, const long *boff, float *c, long ldc, int m, int n, int accumulate) {
    switch (m) {
    case 1: tile_avx2(1, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    case 2: tile_avx2(2, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    case 3: tile_avx2(3, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    case 4: tile_avx2(4, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    default: tile_avx2(A2_MR, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    }
}

// One row x 32 columns: four accumulators, a load of B per multiply-add.
#define N2_NR 32
__attribute__((target("avx2,fma")))
static void kernel_narrow_avx2(long kc, const float *a, const float *b0p, const long *boff, float *c, long ldc, int m,
                               int n, int accumulate) {
    (void)m;
    __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
    for (long k = 0; k < kc; k++) {
        const float *b = b0p + boff[k];
        __m256 av = _mm256_broadcast_ss(a + k);
        c0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b), c0);
        c1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 8), c1);
        c2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 16), c2);
        c3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 24), c3);
    }
    if (n == N2_NR) {
        if (accumulate) {
            c0 = _mm256_add_ps(c0, _mm256_loadu_ps(c));
            c1 = _mm256_add_ps(c1, _mm256_loadu_ps(c + 8));
            c2 = _mm256_add_ps(c2, _mm256_loadu_ps(c + 16));
            c3 = _mm256_add_ps(c3, _mm256_loadu_ps(c + 24));
        }
        _mm256_storeu_ps(c, c0);
        _mm256_storeu_ps(c + 8, c1);
        _mm256_storeu_ps(c + 16, c2);
        _mm256_storeu_ps(c + 24, c3);
        return;
    }
    float tmp[N2_NR];
    _mm256_storeu_ps(tmp, c0);
    _mm256_storeu_ps(tmp + 8, c1);
    _mm256_storeu_ps(tmp + 16, c2);
    _mm256_storeu_ps(tmp + 24, c3);
    tk_store_partial(tmp, N2_NR, c, ldc, 1, n, accumulate);
}

// MARK: - AVX-512, 8 x 48

#define A5_MR 8
#define A5_NR 48
// As tile_avx2: the first `rows` rows only, A packed A5_MR rows apart.
__attribute__((target("avx512f,fma"))) static inline __attribute__((always_inline)) void
tile_avx512(const int rows, long kc, const float *a, const float *b0p, const long *boff, float *c, long ldc, int m,
            int n, int accumulate) {
    __m512 acc[A5_MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++) acc[i][0] = acc[i][1] = acc[i][2] = _mm512_setzero_ps();
    for (long k = 0; k < kc; k++) {
        const float *b = b0p + boff[k];
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32);
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++) {
            const __m512 av = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(av, b2, acc[i][2]);
        }
        a += A5_MR;
    }
    if (m == rows && n == A5_NR) {
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++) {
            float *ci = c + (long)i * ldc;
            if (accumulate) {
                acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(ci));
                acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(ci + 16));
                acc[i][2] = _mm512_add_ps(acc[i][2], _mm512_loadu_ps(ci + 32));
            }
            _mm512_storeu_ps(ci, acc[i][0]);
            _mm512_storeu_ps(ci + 16, acc[i][1]);
            _mm512_storeu_ps(ci + 32, acc[i][2]);
        }
        return;
    }
    float tmp[A5_MR * A5_NR];
    for (int i = 0; i < rows; i++) {
        _mm512_storeu_ps(tmp + i * A5_NR, acc[i][0]);
        _mm512_storeu_ps(tmp + i * A5_NR + 16, acc[i][1]);
        _mm512_storeu_ps(tmp + i * A5_NR + 32, acc[i][2]);
    }
    tk_store_partial(tmp, A5_NR, c, ldc, m, n, accumulate);
}

__attribute__((target("avx512f,fma")))
static void kernel_avx512(long kc, const float *a, const float *b0p, const long *boff, float *c, long ldc, int m, int n, int accumulate) {
    switch (m) {
    case 1: tile_avx512(1, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    case 2: tile_avx512(2, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    case 3: tile_avx512(3, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    case 4: tile_avx512(4, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    default: tile_avx512(A5_MR, kc, a, b0p, boff, c, ldc, m, n, accumulate); break;
    }
}

// One row x 64 columns.
#define N5_NR 64
__attribute__((target("avx512f,fma")))
static void kernel_narrow_avx512(long kc, const float *a, const float *b0p, const long *boff, float *c, long ldc,
                                 int m, int n, int accumulate) {
    (void)m;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (long k = 0; k < kc; k++) {
        const float *b = b0p + boff[k];
        __m512 av = _mm512_set1_ps(a[k]);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[j] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 16 * j), acc[j]);
    }
    float tmp[N5_NR];
    float *dst = n == N5_NR && !accumulate ? c : tmp;
    for (int j = 0; j < 4; j++) _mm512_storeu_ps(dst + 16 * j, acc[j]);
    if (dst == tmp) tk_store_partial(tmp, N5_NR, c, ldc, 1, n, accumulate);
}

#endif  // __x86_64__

// MARK: - reduction-along-rows GEMM (weight gradients)

// Portable: 8 independent lanes per (row, column) pair, so the compiler vectorises the loop (SSE on a baseline
// x86-64 build, NEON on aarch64) without reassociating a float sum.
#define DOTP_LANES 8
#define DOTP_MR 2
#define DOTP_NR 1
static void dot_tile_portable(int m, int n, long len, const float *a, long lda, const float *b, const long *boff,
                              float *c, long ldc, int accumulate) {
    (void)n;
    const float *a0 = a, *a1 = a + (long)(m - 1) * lda, *bj = b + boff[0];
    float l0[DOTP_LANES] = {0}, l1[DOTP_LANES] = {0};
    long q = 0;
    for (; q + DOTP_LANES <= len; q += DOTP_LANES) {
        for (int l = 0; l < DOTP_LANES; l++) {
            l0[l] += a0[q + l] * bj[q + l];
            l1[l] += a1[q + l] * bj[q + l];
        }
    }
    for (; q < len; q++) {
        l0[0] += a0[q] * bj[q];
        l1[0] += a1[q] * bj[q];
    }
    float s0 = 0, s1 = 0;
    for (int l = 0; l < DOTP_LANES; l++) { s0 += l0[l]; s1 += l1[l]; }
    c[0] = accumulate ? c[0] + s0 : s0;
    if (m == 2) c[ldc] = accumulate ? c[ldc] + s1 : s1;
}

#if defined(__x86_64__)
#define DOT_MR 4
#define DOT_NR 6
__attribute__((target("avx512f,fma")))
static void dot_tile_avx512(int m, int n, long len, const float *a, long lda, const float *b, const long *boff,
                            float *c, long ldc, int accumulate) {
    __m512 acc[DOT_MR][DOT_NR];
    const float *ar[DOT_MR], *br[DOT_NR];
    for (int i = 0; i < DOT_MR; i++) ar[i] = a + (long)(i < m ? i : 0) * lda;
    for (int j = 0; j < DOT_NR; j++) br[j] = b + boff[j < n ? j : 0];
#pragma GCC unroll 4
    for (int i = 0; i < DOT_MR; i++)
#pragma GCC unroll 6
        for (int j = 0; j < DOT_NR; j++) acc[i][j] = _mm512_setzero_ps();
    long q = 0;
    for (; q + 16 <= len; q += 16) {
        __m512 bv[DOT_NR];
#pragma GCC unroll 6
        for (int j = 0; j < DOT_NR; j++) bv[j] = _mm512_loadu_ps(br[j] + q);
#pragma GCC unroll 4
        for (int i = 0; i < DOT_MR; i++) {
            __m512 av = _mm512_loadu_ps(ar[i] + q);
#pragma GCC unroll 6
            for (int j = 0; j < DOT_NR; j++) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    if (q < len) {
        __mmask16 mask = (__mmask16)((1u << (len - q)) - 1);
        __m512 bv[DOT_NR];
        for (int j = 0; j < DOT_NR; j++) bv[j] = _mm512_maskz_loadu_ps(mask, br[j] + q);
        for (int i = 0; i < DOT_MR; i++) {
            __m512 av = _mm512_maskz_loadu_ps(mask, ar[i] + q);
            for (int j = 0; j < DOT_NR; j++) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float v = _mm512_reduce_add_ps(acc[i][j]);
            float *cij = c + (long)i * ldc + j;
            *cij = accumulate ? *cij + v : v;
        }
    }
}

#define DOT2_MR 4
#define DOT2_NR 3
// Lane masks for the last partial 8-float step: entry r of tk_dot_masks + 8 - r enables r lanes.
static const int tk_dot_masks[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

__attribute__((target("avx2,fma")))
static inline float tk_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// A 4 x 3 tile: 12 accumulators, 3 B rows and one A row in registers (16 ymm); 12 FMAs per 7 loads.
__attribute__((target("avx2,fma")))
static void dot_tile_avx2(int m, int n, long len, const float *a, long lda, const float *b, const long *boff,
                          float *c, long ldc, int accumulate) {
    __m256 acc[DOT2_MR][DOT2_NR];
    const float *ar[DOT2_MR], *br[DOT2_NR];
    for (int i = 0; i < DOT2_MR; i++) ar[i] = a + (long)(i < m ? i : 0) * lda;
    for (int j = 0; j < DOT2_NR; j++) br[j] = b + boff[j < n ? j : 0];
#pragma GCC unroll 4
    for (int i = 0; i < DOT2_MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < DOT2_NR; j++) acc[i][j] = _mm256_setzero_ps();
    long q = 0;
    for (; q + 8 <= len; q += 8) {
        __m256 b0 = _mm256_loadu_ps(br[0] + q), b1 = _mm256_loadu_ps(br[1] + q), b2 = _mm256_loadu_ps(br[2] + q);
#pragma GCC unroll 4
        for (int i = 0; i < DOT2_MR; i++) {
            __m256 av = _mm256_loadu_ps(ar[i] + q);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
            acc[i][2] = _mm256_fmadd_ps(av, b2, acc[i][2]);
        }
    }
    if (q < len) {
        // Masked loads never touch the lanes past `len`, so a row ending at a page boundary is safe.
        __m256i mask = _mm256_loadu_si256((const __m256i *)(tk_dot_masks + 8 - (len - q)));
        __m256 bv[DOT2_NR];
        for (int j = 0; j < DOT2_NR; j++) bv[j] = _mm256_maskload_ps(br[j] + q, mask);
        for (int i = 0; i < DOT2_MR; i++) {
            __m256 av = _mm256_maskload_ps(ar[i] + q, mask);
            for (int j = 0; j < DOT2_NR; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float v = tk_hsum256(acc[i][j]);
            float *cij = c + (long)i * ldc + j;
            *cij = accumulate ? *cij + v : v;
        }
    }
}

#endif  // __x86_64__

// Floats of all rows of one length chunk: 256 KB, so the rows a chunk's tiles re-read stay in L2. Without
// chunks, each 4 x 3 tile streams its seven rows end to end (one call over a band of 128 rows of a 512-wide image
// has rows of 263 KB), and A and B come from L3 once per tile.
#define DOT_CHUNK_FLOATS (64 * 1024)

// One register tile of the row reduction: C[i][j] (=|+=) A row i . B row j for i < m <= mr, j < n <= nr.
typedef void (*tk_dot_tile_fn)(int m, int n, long len, const float *a, long lda, const float *b, const long *boff,
                               float *c, long ldc, int accumulate);

void tk_gemm_dot_variant(const char *isa, int m, int n, long len, const float *a, long lda, const float *b,
                         const long *boff, float *c, long ldc, int accumulate) {
    tk_dot_tile_fn tile = dot_tile_portable;
    int mr = DOTP_MR, nr = DOTP_NR;
#if defined(__x86_64__)
    if (strcmp(isa, "avx512") == 0) { tile = dot_tile_avx512; mr = DOT_MR; nr = DOT_NR; }
    else if (strcmp(isa, "avx2") == 0) { tile = dot_tile_avx2; mr = DOT2_MR; nr = DOT2_NR; }
#else
    (void)isa;
#endif
    long chunk = DOT_CHUNK_FLOATS / (m + n);
    chunk = chunk < 256 ? 256 : chunk > 8192 ? 8192 : chunk;
    chunk = chunk / 16 * 16;
    long q0 = 0;
    do {
        long here = len - q0 < chunk ? len - q0 : chunk;
        int acc = q0 > 0 || accumulate;
        // B rows of one column tile stay in L1 while every row tile of A streams past them.
        for (int j0 = 0; j0 < n; j0 += nr) {
            int nn = n - j0 < nr ? n - j0 : nr;
            for (int i0 = 0; i0 < m; i0 += mr) {
                int mm = m - i0 < mr ? m - i0 : mr;
                tile(mm, nn, here, a + (long)i0 * lda + q0, lda, b + q0, boff + j0, c + (long)i0 * ldc + j0, ldc, acc);
            }
        }
        q0 += here;
    } while (q0 < len);
}

void tk_gemm_dot(int m, int n, long len, const float *a, long lda, const float *b, const long *boff,
                 float *c, long ldc, int accumulate) {
    tk_gemm_dot_variant(tk_kernel()->name, m, n, len, a, lda, b, boff, c, ldc, accumulate);
}

// MARK: - dispatch

// Best first. Elsewhere than x86-64 (aarch64: NEON) the portable kernels are the compiler's vectorisation.
static const tk_kernel_info tk_variants[] = {
#if defined(__x86_64__)
    {"avx512", A5_MR, A5_NR, kernel_avx512},
    {"avx2", A2_MR, A2_NR, kernel_avx2},
#endif
    {"scalar", SC_MR, SC_NR, kernel_scalar},
};
// The one-row kernels, in the same order.
static const tk_kernel_info tk_narrow_variants[] = {
#if defined(__x86_64__)
    {"avx512", 1, N5_NR, kernel_narrow_avx512},
    {"avx2", 1, N2_NR, kernel_narrow_avx2},
#endif
    {"scalar", 1, SN_NR, kernel_narrow_scalar},
};

static int tk_supported(const tk_kernel_info *info) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(info->name, "avx512") == 0) return __builtin_cpu_supports("avx512f");
    if (strcmp(info->name, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 1;
}

const tk_kernel_info *tk_kernel_named(const char *name) {
    for (size_t i = 0; i < sizeof(tk_variants) / sizeof(tk_variants[0]); i++) {
        if (strcmp(tk_variants[i].name, name) == 0) return tk_supported(&tk_variants[i]) ? &tk_variants[i] : NULL;
    }
    return NULL;
}

const tk_kernel_info *tk_kernel(void) {
    static const tk_kernel_info *chosen = NULL;
    if (chosen) return chosen;
    const char *forced = getenv("TESSERA_ISA");
    const tk_kernel_info *pick = forced ? tk_kernel_named(forced) : NULL;
    if (!pick) {
        for (size_t i = 0; i < sizeof(tk_variants) / sizeof(tk_variants[0]); i++) {
            if (tk_supported(&tk_variants[i])) { pick = &tk_variants[i]; break; }
        }
    }
    chosen = pick;
    return chosen;
}

const tk_kernel_info *tk_narrow_kernel_named(const char *name) {
    const tk_kernel_info *wide = tk_kernel_named(name);
    if (!wide) return NULL;
    for (size_t i = 0; i < sizeof(tk_narrow_variants) / sizeof(tk_narrow_variants[0]); i++) {
        if (strcmp(tk_narrow_variants[i].name, name) == 0) return &tk_narrow_variants[i];
    }
    return NULL;
}

const tk_kernel_info *tk_narrow_kernel(void) { return tk_narrow_kernel_named(tk_kernel()->name); }
