// A 3x3 stride-1 convolution with one output channel over a zero-padded row band (the input gradient of a gray
// image's first layer, a 1-class head): out[r][x] = sum_c sum_ky sum_kx w[c][ky][kx] band[c][r + ky][x + kx].
//
// As a one-row GEMM each multiply-add needs its own load of B (the band), so the pass is bound by loads at about a
// quarter of the FMA peak. Here a loaded source vector serves the (up to) three output rows it reaches: four output
// rows at a time, two vectors wide, make eight independent accumulators and two multiply-adds per load.
#include "CKernels.h"

#include <string.h>

#include "variants.h"

#define TK_SINGLE_ROW_BODY(NAME, VEC, LANES)                                                                         \
    typedef float NAME##_vec __attribute__((vector_size(4 * LANES), aligned(4)));                                    \
    TK_INLINE void NAME##_body(const float *band, long band_plane, long pw, int channels, const float *w, int rows,  \
                               int width, float *out, long ldo) {                                                     \
        enum { L = LANES, X = 2 * LANES };                                                                           \
        for (int r0 = 0; r0 < rows; r0 += 4) {                                                                       \
            const int rr = rows - r0 < 4 ? rows - r0 : 4;                                                            \
            for (int x0 = 0; x0 < width; x0 += X) {                                                                  \
                NAME##_vec acc[4][2];                                                                                \
                memset(acc, 0, sizeof(acc));                                                                         \
                if (rr == 4) {                                                                                       \
                    /* Constant trip counts, fully unrolled: the accumulators stay in registers. */                 \
                    for (int c = 0; c < channels; c++) {                                                             \
                        const float *plane = band + c * band_plane + r0 * pw + x0;                                   \
                        const float *wc = w + 9 * c;                                                                 \
                        _Pragma("clang loop unroll(full)") for (int j = 0; j < 6; j++) {                            \
                            _Pragma("clang loop unroll(full)") for (int kx = 0; kx < 3; kx++) {                     \
                                NAME##_vec s0, s1;                                                                   \
                                memcpy(&s0, plane + j * pw + kx, sizeof(s0));                                        \
                                memcpy(&s1, plane + j * pw + kx + L, sizeof(s1));                                    \
                                _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++) {                    \
                                    if (j - r >= 0 && j - r <= 2) {                                                  \
                                        const float wv = wc[3 * (j - r) + kx];                                       \
                                        acc[r][0] += wv * s0;                                                        \
                                        acc[r][1] += wv * s1;                                                        \
                                    }                                                                                \
                                }                                                                                    \
                            }                                                                                        \
                        }                                                                                            \
                    }                                                                                                \
                } else {                                                                                             \
                    for (int c = 0; c < channels; c++) {                                                             \
                        const float *plane = band + c * band_plane + r0 * pw + x0;                                   \
                        const float *wc = w + 9 * c;                                                                 \
                        for (int j = 0; j < rr + 2; j++) {                                                           \
                            const int lo = j - 2 > 0 ? j - 2 : 0, hi = j < rr - 1 ? j : rr - 1;                      \
                            for (int kx = 0; kx < 3; kx++) {                                                         \
                                NAME##_vec s0, s1;                                                                   \
                                memcpy(&s0, plane + j * pw + kx, sizeof(s0));                                        \
                                memcpy(&s1, plane + j * pw + kx + L, sizeof(s1));                                    \
                                for (int r = lo; r <= hi; r++) {                                                     \
                                    const float wv = wc[3 * (j - r) + kx];                                           \
                                    acc[r][0] += wv * s0;                                                            \
                                    acc[r][1] += wv * s1;                                                            \
                                }                                                                                    \
                            }                                                                                        \
                        }                                                                                            \
                    }                                                                                                \
                }                                                                                                    \
                const int n = width - x0 < X ? width - x0 : X;                                                       \
                for (int r = 0; r < rr; r++) {                                                                       \
                    float *dst = out + (long)(r0 + r) * ldo + x0;                                                    \
                    if (n == X) {                                                                                    \
                        memcpy(dst, &acc[r][0], sizeof(acc[r][0]));                                                  \
                        memcpy(dst + L, &acc[r][1], sizeof(acc[r][1]));                                              \
                    } else {                                                                                         \
                        float tmp[X];                                                                                \
                        memcpy(tmp, &acc[r][0], sizeof(acc[r][0]));                                                  \
                        memcpy(tmp + L, &acc[r][1], sizeof(acc[r][1]));                                              \
                        memcpy(dst, tmp, sizeof(float) * n);                                                         \
                    }                                                                                                \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
    }

#if defined(__x86_64__)
TK_SINGLE_ROW_BODY(tk_single_row16, zmm, 16)
TK_SINGLE_ROW_BODY(tk_single_row8, ymm, 8)
TK_TARGET_AVX512 static void tk_single_row_avx512(const float *band, long band_plane, long pw, int channels,
                                                  const float *w, int rows, int width, float *out, long ldo) {
    tk_single_row16_body(band, band_plane, pw, channels, w, rows, width, out, ldo);
}
TK_TARGET_AVX2 static void tk_single_row_avx2(const float *band, long band_plane, long pw, int channels,
                                              const float *w, int rows, int width, float *out, long ldo) {
    tk_single_row8_body(band, band_plane, pw, channels, w, rows, width, out, ldo);
}
#else
TK_SINGLE_ROW_BODY(tk_single_row8, vec, 8)
#endif
static void tk_single_row_portable(const float *band, long band_plane, long pw, int channels, const float *w,
                                   int rows, int width, float *out, long ldo) {
    tk_single_row8_body(band, band_plane, pw, channels, w, rows, width, out, ldo);
}

void tk_conv3x3_single_row_variant(const char *isa, const float *band, long band_plane, long pw, int channels,
                                   const float *w, int rows, int width, float *out, long ldo) {
#if defined(__x86_64__)
    if (strcmp(isa, "avx512") == 0) return tk_single_row_avx512(band, band_plane, pw, channels, w, rows, width, out, ldo);
    if (strcmp(isa, "avx2") == 0) return tk_single_row_avx2(band, band_plane, pw, channels, w, rows, width, out, ldo);
#endif
    tk_single_row_portable(band, band_plane, pw, channels, w, rows, width, out, ldo);
}

void tk_conv3x3_single_row(const float *band, long band_plane, long pw, int channels, const float *w, int rows,
                           int width, float *out, long ldo) {
    tk_conv3x3_single_row_variant(tk_kernel()->name, band, band_plane, pw, channels, w, rows, width, out, ldo);
}

long tk_conv3x3_single_row_overread(void) { return 2 * 16 + 2; }
