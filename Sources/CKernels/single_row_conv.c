// A 3x3 stride-1 convolution with one output channel (the input gradient of a gray image's first layer, a 1-class
// head), read straight from the source planes: out[y][x] = sum_c sum_ky sum_kx w[c][ky][kx] src_c[y + r0 + ky][x + c0
// + kx], zero outside the planes.
//
// As a one-row GEMM each multiply-add needs its own load of B, so the pass is bound by loads at about a quarter of
// the FMA peak. Here a loaded source vector serves the (up to) three output rows it reaches: four output rows at a
// time, two vectors wide, make eight accumulators and two multiply-adds per load.
//
// The pass is bound by reading the source (16 planes of 1 MB for the gray 512 x 512 first layer, against one plane
// written), so nothing is copied: channels are the outer loop, each reading six consecutive rows of one plane while
// the four output rows accumulate in L1, and the next channel's rows are prefetched meanwhile. The earlier version
// copied a zero-padded band of all channels first, and copy and products each took about 70% of the pass; reading
// all channels' rows per block instead (96 row streams) was slower still.
#include "CKernels.h"

#include <string.h>

#include "variants.h"

#define TK_SINGLE_ROW_BODY(NAME, LANES)                                                                              \
    typedef float NAME##_vec __attribute__((vector_size(4 * LANES), aligned(4)));                                    \
    /* acc[r] += the block's taps over rows src[j] (NULL: a row outside the plane), from column x of each row. */    \
    TK_INLINE void NAME##_block(const float *const *src, long x, const float *wc, int rr, NAME##_vec acc[4][2]) {    \
        enum { L = LANES };                                                                                          \
        if (rr == 4) {                                                                                               \
            /* Constant trip counts, fully unrolled: the accumulators stay in registers. */                          \
            _Pragma("clang loop unroll(full)") for (int j = 0; j < 6; j++) {                                         \
                if (!src[j]) continue;                                                                               \
                _Pragma("clang loop unroll(full)") for (int kx = 0; kx < 3; kx++) {                                  \
                    NAME##_vec s0, s1;                                                                               \
                    memcpy(&s0, src[j] + x + kx, sizeof(s0));                                                        \
                    memcpy(&s1, src[j] + x + kx + L, sizeof(s1));                                                    \
                    _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++) {                                 \
                        if (j - r >= 0 && j - r <= 2) {                                                              \
                            const float wv = wc[3 * (j - r) + kx];                                                   \
                            acc[r][0] += wv * s0;                                                                    \
                            acc[r][1] += wv * s1;                                                                    \
                        }                                                                                            \
                    }                                                                                                \
                }                                                                                                    \
            }                                                                                                        \
            return;                                                                                                  \
        }                                                                                                            \
        for (int j = 0; j < rr + 2; j++) {                                                                           \
            if (!src[j]) continue;                                                                                   \
            const int lo = j - 2 > 0 ? j - 2 : 0, hi = j < rr - 1 ? j : rr - 1;                                      \
            for (int kx = 0; kx < 3; kx++) {                                                                         \
                NAME##_vec s0, s1;                                                                                   \
                memcpy(&s0, src[j] + x + kx, sizeof(s0));                                                            \
                memcpy(&s1, src[j] + x + kx + L, sizeof(s1));                                                        \
                for (int r = lo; r <= hi; r++) {                                                                     \
                    const float wv = wc[3 * (j - r) + kx];                                                           \
                    acc[r][0] += wv * s0;                                                                            \
                    acc[r][1] += wv * s1;                                                                            \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
    }                                                                                                                \
    /* One block of X columns of rr (<= 4) output rows, channel c: out += its taps (out = them for c = 0). */        \
    TK_INLINE void NAME##_step(const float *const *src, const float *const *next, const float *wc, int c, int x0,    \
                               int c0, int rr, int width, int out_width, float *out, long ldo) {                     \
        enum { X = 2 * LANES };                                                                                      \
        const int n = out_width - x0 < X ? out_width - x0 : X;                                                       \
        NAME##_vec acc[4][2];                                                                                        \
        float tmp[X];                                                                                                \
        for (int r = 0; r < rr; r++) {                                                                               \
            if (c == 0) {                                                                                            \
                memset(acc[r], 0, sizeof(acc[r]));                                                                   \
            } else if (n == X) {                                                                                     \
                memcpy(acc[r], out + r * ldo + x0, sizeof(acc[r]));                                                  \
            } else {                                                                                                 \
                memset(tmp, 0, sizeof(tmp));                                                                         \
                memcpy(tmp, out + r * ldo + x0, sizeof(float) * n);                                                  \
                memcpy(acc[r], tmp, sizeof(acc[r]));                                                                 \
            }                                                                                                        \
        }                                                                                                            \
        const long sx = (long)x0 + c0;                                                                               \
        if (sx >= 0 && sx + X + 2 <= width) {                                                                        \
            NAME##_block(src, sx, wc, rr, acc);                                                                      \
        } else {                                                                                                     \
            /* At the plane's left and right edges: the block's columns with zeros outside. */                       \
            float tile[6][X + 2];                                                                                    \
            const float *rowsOfTile[6];                                                                              \
            for (int j = 0; j < 6; j++) {                                                                            \
                rowsOfTile[j] = src[j] ? tile[j] : NULL;                                                             \
                if (!src[j]) continue;                                                                               \
                for (int i = 0; i < X + 2; i++) {                                                                    \
                    const long col = sx + i;                                                                         \
                    tile[j][i] = col >= 0 && col < width ? src[j][col] : 0.0f;                                       \
                }                                                                                                    \
            }                                                                                                        \
            NAME##_block(rowsOfTile, 0, wc, rr, acc);                                                                \
        }                                                                                                            \
        for (int j = 0; j < 6; j++) {                                                                                \
            if (next[j] && sx + X <= width && sx >= 0) {                                                             \
                for (int q = 0; q < X; q += 16) __builtin_prefetch(next[j] + sx + q, 0, 3);                          \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < rr; r++) {                                                                               \
            float *dst = out + r * ldo + x0;                                                                         \
            if (n == X) {                                                                                            \
                memcpy(dst, acc[r], sizeof(acc[r]));                                                                 \
            } else {                                                                                                 \
                memcpy(tmp, acc[r], sizeof(acc[r]));                                                                 \
                memcpy(dst, tmp, sizeof(float) * n);                                                                 \
            }                                                                                                        \
        }                                                                                                            \
    }                                                                                                                \
    TK_INLINE void NAME##_body(const float *const *planes, int channels, int height, int width, int r0, int c0,      \
                               const float *w, int first, int rows, int out_width, float *out, long ldo) {           \
        enum { X = 2 * LANES };                                                                                      \
        for (int y0 = 0; y0 < rows; y0 += 4) {                                                                       \
            const int rr = rows - y0 < 4 ? rows - y0 : 4;                                                            \
            for (int c = 0; c < channels; c++) {                                                                     \
                /* Rows of this channel, and those the next pass reads (next channel, or channel 0 four rows on). */ \
                const float *src[6], *next[6];                                                                       \
                const int nc = c + 1 < channels ? c + 1 : 0, ny = c + 1 < channels ? y0 : y0 + 4;                    \
                for (int j = 0; j < 6; j++) {                                                                        \
                    const long y = (long)first + y0 + r0 + j, yn = (long)first + ny + r0 + j;                        \
                    src[j] = j < rr + 2 && y >= 0 && y < height ? planes[c] + y * width : NULL;                      \
                    next[j] = ny < rows && yn >= 0 && yn < height ? planes[nc] + yn * width : NULL;                  \
                }                                                                                                    \
                const float *wc = w + 9 * c;                                                                         \
                for (int x0 = 0; x0 < out_width; x0 += X) {                                                          \
                    /* A constant row count lets the accumulators live in registers. */                              \
                    if (rr == 4) NAME##_step(src, next, wc, c, x0, c0, 4, width, out_width, out + y0 * ldo, ldo);    \
                    else NAME##_step(src, next, wc, c, x0, c0, rr, width, out_width, out + y0 * ldo, ldo);           \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
    }

#define TK_SINGLE_ROW_PARAMS                                                                                         \
    (const float *const *planes, int channels, int height, int width, int r0, int c0, const float *w, int first,     \
     int rows, int out_width, float *out, long ldo)
#define TK_SINGLE_ROW_ARGS (planes, channels, height, width, r0, c0, w, first, rows, out_width, out, ldo)

#if defined(__x86_64__)
TK_SINGLE_ROW_BODY(tk_single_row16, 16)
TK_SINGLE_ROW_BODY(tk_single_row8, 8)
TK_TARGET_AVX512 static void tk_single_row_avx512 TK_SINGLE_ROW_PARAMS { tk_single_row16_body TK_SINGLE_ROW_ARGS; }
TK_TARGET_AVX2 static void tk_single_row_avx2 TK_SINGLE_ROW_PARAMS { tk_single_row8_body TK_SINGLE_ROW_ARGS; }
#else
TK_SINGLE_ROW_BODY(tk_single_row8, 8)
#endif
static void tk_single_row_portable TK_SINGLE_ROW_PARAMS { tk_single_row8_body TK_SINGLE_ROW_ARGS; }

void tk_conv3x3_single_row_variant(const char *isa, const float *const *planes, int channels, int height, int width,
                                   int r0, int c0, const float *w, int first, int rows, int out_width, float *out,
                                   long ldo) {
#if defined(__x86_64__)
    if (strcmp(isa, "avx512") == 0) return tk_single_row_avx512 TK_SINGLE_ROW_ARGS;
    if (strcmp(isa, "avx2") == 0) return tk_single_row_avx2 TK_SINGLE_ROW_ARGS;
#endif
    tk_single_row_portable TK_SINGLE_ROW_ARGS;
}

void tk_conv3x3_single_row(const float *const *planes, int channels, int height, int width, int r0, int c0,
                           const float *w, int first, int rows, int out_width, float *out, long ldo) {
    tk_conv3x3_single_row_variant(tk_kernel()->name, planes, channels, height, width, r0, c0, w, first, rows,
                                  out_width, out, ldo);
}
