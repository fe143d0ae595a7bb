// Winograd F(4x4, 3x3) transforms (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
// a 3x3 stride-1 convolution computed on 4x4 output tiles as 36 element-wise products of transformed 6x6 input
// tiles and transformed filters, Y = A^T [(G g G^T) . (B^T d B)] A, with the interpolation points 0, +-1, +-2 and
// infinity. The 36 element-wise products over channels are batched GEMMs run by the packed micro-kernels; the
// transforms here are written once as plain loops over tiles that the compiler vectorises, and compiled per
// instruction set (variants.h). Tiles are read along one tile row at a time: the rows of the window are copied into
// a zero-padded buffer (borders and padding cost nothing in the loop), split into the four column phases
// (x = 4t + j), and transformed with unit-stride loads across tiles.
#include "CKernels.h"

#include <string.h>

#include "variants.h"

// MARK: - filter transform (scalar: M x C x 3x3 weights, once per call)

// G applied to three values, written to o[0], o[stride], ... o[5 * stride].
static inline void tk_g(float a, float b, float d, float *o, int stride) {
    const float sixth = 1.0f / 6.0f, twelfth = 1.0f / 12.0f, quarter_sixth = 1.0f / 24.0f;
    o[0] = 0.25f * a;
    o[stride] = -(a + b + d) * sixth;
    o[2 * stride] = -(a - b + d) * sixth;
    o[3 * stride] = a * quarter_sixth + b * twelfth + d * sixth;
    o[4 * stride] = a * quarter_sixth - b * twelfth + d * sixth;
    o[5 * stride] = d;
}

void tk_winograd_filter(const float *w, long ms, long cs, int rows, int channels, int flip, float *u, long xi_stride,
                        long ldu) {
    enum { B = 16 };  // channels per block: each point's values are written as one contiguous run
    float tmp[36][B];
    for (int m = 0; m < rows; m++) {
        for (int c0 = 0; c0 < channels; c0 += B) {
            const int n = channels - c0 < B ? channels - c0 : B;
            for (int cc = 0; cc < n; cc++) {
                const float *g = w + m * ms + (c0 + cc) * cs;
                float k[3][3];
                for (int t = 0; t < 9; t++) k[t / 3][t % 3] = g[flip ? 8 - t : t];
                // G k (6x3), then (G k) G^T (6x6).
                float gk[6][3];
                for (int j = 0; j < 3; j++) tk_g(k[0][j], k[1][j], k[2][j], &gk[0][j], 3);
                for (int i = 0; i < 6; i++) {
                    float row[6];
                    tk_g(gk[i][0], gk[i][1], gk[i][2], row, 1);
                    for (int j = 0; j < 6; j++) tmp[i * 6 + j][cc] = row[j];
                }
            }
            float *dst = u + (long)m * ldu + c0;
            for (int xi = 0; xi < 36; xi++) memcpy(dst + xi * xi_stride, tmp[xi], sizeof(float) * n);
        }
    }
}

// The run of tiles from `tile` on that stays in its tile row (at most `left`): its row, first column and length.
static inline int tk_tile_run(long tile, long tiles_x, long left, long *ty, long *tx0) {
    *ty = tile / tiles_x;
    *tx0 = tile % tiles_x;
    return (int)(tiles_x - *tx0 < left ? tiles_x - *tx0 : left);
}

// MARK: - 4-way (de)interleaving across tiles with portable vector shuffles (one shuffle form per instruction set)

typedef float tk_v8 __attribute__((vector_size(32), aligned(4)));

// p_j[t] = row[4t + j] for t < n.
TK_INLINE void tk_deinterleave4(const float *row, long n, float *p0, float *p1, float *p2, float *p3) {
    long t = 0;
    for (; t + 8 <= n; t += 8) {
        tk_v8 r0, r1, r2, r3;
        memcpy(&r0, row + 4 * t, 32);
        memcpy(&r1, row + 4 * t + 8, 32);
        memcpy(&r2, row + 4 * t + 16, 32);
        memcpy(&r3, row + 4 * t + 24, 32);
        const tk_v8 a = __builtin_shufflevector(r0, r1, 0, 4, 8, 12, 1, 5, 9, 13);
        const tk_v8 b = __builtin_shufflevector(r0, r1, 2, 6, 10, 14, 3, 7, 11, 15);
        const tk_v8 c = __builtin_shufflevector(r2, r3, 0, 4, 8, 12, 1, 5, 9, 13);
        const tk_v8 d = __builtin_shufflevector(r2, r3, 2, 6, 10, 14, 3, 7, 11, 15);
        const tk_v8 q0 = __builtin_shufflevector(a, c, 0, 1, 2, 3, 8, 9, 10, 11);
        const tk_v8 q1 = __builtin_shufflevector(a, c, 4, 5, 6, 7, 12, 13, 14, 15);
        const tk_v8 q2 = __builtin_shufflevector(b, d, 0, 1, 2, 3, 8, 9, 10, 11);
        const tk_v8 q3 = __builtin_shufflevector(b, d, 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(p0 + t, &q0, 32);
        memcpy(p1 + t, &q1, 32);
        memcpy(p2 + t, &q2, 32);
        memcpy(p3 + t, &q3, 32);
    }
    for (; t < n; t++) {
        p0[t] = row[4 * t];
        p1[t] = row[4 * t + 1];
        p2[t] = row[4 * t + 2];
        p3[t] = row[4 * t + 3];
    }
}

// row[4t + j] = p_j[t] for t < n.
TK_INLINE void tk_interleave4(const float *p0, const float *p1, const float *p2, const float *p3, long n, float *row) {
    long t = 0;
    for (; t + 8 <= n; t += 8) {
        tk_v8 q0, q1, q2, q3;
        memcpy(&q0, p0 + t, 32);
        memcpy(&q1, p1 + t, 32);
        memcpy(&q2, p2 + t, 32);
        memcpy(&q3, p3 + t, 32);
        const tk_v8 a = __builtin_shufflevector(q0, q1, 0, 8, 1, 9, 2, 10, 3, 11);
        const tk_v8 b = __builtin_shufflevector(q0, q1, 4, 12, 5, 13, 6, 14, 7, 15);
        const tk_v8 c = __builtin_shufflevector(q2, q3, 0, 8, 1, 9, 2, 10, 3, 11);
        const tk_v8 d = __builtin_shufflevector(q2, q3, 4, 12, 5, 13, 6, 14, 7, 15);
        const tk_v8 o0 = __builtin_shufflevector(a, c, 0, 1, 8, 9, 2, 3, 10, 11);
        const tk_v8 o1 = __builtin_shufflevector(a, c, 4, 5, 12, 13, 6, 7, 14, 15);
        const tk_v8 o2 = __builtin_shufflevector(b, d, 0, 1, 8, 9, 2, 3, 10, 11);
        const tk_v8 o3 = __builtin_shufflevector(b, d, 4, 5, 12, 13, 6, 7, 14, 15);
        memcpy(row + 4 * t, &o0, 32);
        memcpy(row + 4 * t + 8, &o1, 32);
        memcpy(row + 4 * t + 16, &o2, 32);
        memcpy(row + 4 * t + 24, &o3, 32);
    }
    for (; t < n; t++) {
        row[4 * t] = p0[t];
        row[4 * t + 1] = p1[t];
        row[4 * t + 2] = p2[t];
        row[4 * t + 3] = p3[t];
    }
}

// MARK: - input transform: V = B^T d B per tile and channel

// B^T applied to six values.
#define TK_BT(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) \
    do {                                                      \
        o0 = 4.0f * d0 - 5.0f * d2 + d4;                      \
        o1 = -4.0f * (d1 + d2) + d3 + d4;                     \
        o2 = 4.0f * (d1 - d2) - d3 + d4;                      \
        o3 = -2.0f * (d1 - d3) - d2 + d4;                     \
        o4 = 2.0f * (d1 - d3) - d2 + d4;                      \
        o5 = 4.0f * d1 - 5.0f * d3 + d5;                      \
    } while (0)

// B^T over six rows of tiles: o_k[t] = (B^T (d_0[t] .. d_5[t]))_k; unit-stride loops across tiles vectorise.
TK_INLINE void tk_bt_rows(const float *restrict d0, const float *restrict d1, const float *restrict d2,
                          const float *restrict d3, const float *restrict d4, const float *restrict d5,
                          float *restrict o, long ostride, int len) {
    float *restrict o0 = o, *restrict o1 = o + ostride, *restrict o2 = o + 2 * ostride;
    float *restrict o3 = o + 3 * ostride, *restrict o4 = o + 4 * ostride, *restrict o5 = o + 5 * ostride;
    for (int t = 0; t < len; t++) {
        TK_BT(d0[t], d1[t], d2[t], d3[t], d4[t], d5[t], o0[t], o1[t], o2[t], o3[t], o4[t], o5[t]);
    }
}

// One run of `len` tiles of one tile row and one channel. ph[i][j][t] = window row i, column 4t + j (t <= len);
// h: 36 * len floats.
TK_INLINE void tk_winograd_input_run(float *const ph[6][4], int len, float *v, long xi_stride, float *h) {
    // Along rows: h[i][j] = B^T (row i of each tile).
    for (int i = 0; i < 6; i++)
        tk_bt_rows(ph[i][0], ph[i][1], ph[i][2], ph[i][3], ph[i][0] + 1, ph[i][1] + 1, h + i * 6 * len, len, len);
    // Down columns: v[k][j] = B^T (column j of h).
    for (int j = 0; j < 6; j++) {
        const float *c = h + j * len;
        tk_bt_rows(c, c + 6 * len, c + 12 * len, c + 18 * len, c + 24 * len, c + 30 * len, v + j * xi_stride,
                   6 * xi_stride, len);
    }
}

TK_INLINE void tk_winograd_input_body(const float *src, long plane, int ih, int iw, int channels, int pad_top,
                                      int pad_left, long tiles_x, long tile0, int count, float *v, long xi_stride,
                                      long ldv, float *scratch) {
    long done = 0;
    while (done < count) {
        long ty, tx0;
        const int len = tk_tile_run(tile0 + done, tiles_x, count - done, &ty, &tx0);
        const long width = 4L * (len + 1);  // columns 4 * tx0 - pad_left ..< + width
        float *phases = scratch + width;    // [6][4][len + 1]
        const long stride = len + 1;
        float *h = phases + 24 * stride;    // [6][6][len]
        float *ph[6][4];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 4; j++) ph[i][j] = phases + (i * 4 + j) * stride;
        const long x0 = 4 * tx0 - pad_left;
        for (int c = 0; c < channels; c++) {
            const float *plane_c = src + c * plane;
            for (int i = 0; i < 6; i++) {
                const long y = 4 * ty - pad_top + i;
                float *p0 = ph[i][0], *p1 = ph[i][1], *p2 = ph[i][2], *p3 = ph[i][3];
                if (y < 0 || y >= ih) {
                    memset(p0, 0, sizeof(float) * stride);
                    memset(p1, 0, sizeof(float) * stride);
                    memset(p2, 0, sizeof(float) * stride);
                    memset(p3, 0, sizeof(float) * stride);
                    continue;
                }
                const float *src_row = plane_c + y * iw;
                // Tiles [t_lo, t_hi) read four columns inside the row, in place; the others, column by column.
                long t_lo = x0 < 0 ? (-x0 + 3) / 4 : 0;
                long t_hi = iw - x0 >= 4 ? (iw - x0 - 4) / 4 + 1 : 0;
                if (t_lo > stride) t_lo = stride;
                if (t_hi > stride) t_hi = stride;
                if (t_hi < t_lo) t_hi = t_lo;
                for (long t = 0; t < stride; t++) {
                    if (t == t_lo && t_hi > t_lo) {
                        tk_deinterleave4(src_row + x0 + 4 * t_lo, t_hi - t_lo, p0 + t_lo, p1 + t_lo, p2 + t_lo,
                                         p3 + t_lo);
                        t = t_hi - 1;
                        continue;
                    }
                    float d[4];
                    for (int j = 0; j < 4; j++) {
                        const long x = x0 + 4 * t + j;
                        d[j] = x >= 0 && x < iw ? src_row[x] : 0.0f;
                    }
                    p0[t] = d[0];
                    p1[t] = d[1];
                    p2[t] = d[2];
                    p3[t] = d[3];
                }
            }
            tk_winograd_input_run(ph, len, v + c * ldv + done, xi_stride, h);
        }
        done += len;
    }
}
TK_VARIANTS(tk_winograd_input,
            (const float *src, long plane, int ih, int iw, int channels, int pad_top, int pad_left, long tiles_x,
             long tile0, int count, float *v, long xi_stride, long ldv, float *scratch),
            (src, plane, ih, iw, channels, pad_top, pad_left, tiles_x, tile0, count, v, xi_stride, ldv, scratch))

void tk_winograd_input(const float *src, long plane, int ih, int iw, int channels, int pad_top, int pad_left,
                       long tiles_x, long tile0, int count, float *v, long xi_stride, long ldv, float *scratch) {
    tk_winograd_input_variant(tk_kernel()->name, src, plane, ih, iw, channels, pad_top, pad_left, tiles_x, tile0,
                              count, v, xi_stride, ldv, scratch);
}

long tk_winograd_input_scratch(long count) { return 28 * (count + 1) + 36 * count; }

// MARK: - output transform: Y = A^T M A per tile and output channel, then the epilogue

// A^T applied to six values.
#define TK_AT(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) \
    do {                                              \
        const float s12 = m1 + m2, d12 = m1 - m2;     \
        const float s34 = m3 + m4, d34 = m3 - m4;     \
        o0 = m0 + s12 + s34;                          \
        o1 = d12 + 2.0f * d34;                        \
        o2 = s12 + 4.0f * s34;                        \
        o3 = d12 + 8.0f * d34 + m5;                   \
    } while (0)

// A^T over six rows of tiles m_k[t] = m[k * mstride + t]: o_r[t] = (A^T m)_r at o + r * ostride.
TK_INLINE void tk_at_rows(const float *m, long mstride, float *o, long ostride, int len) {
    const float *restrict m0 = m, *restrict m1 = m + mstride, *restrict m2 = m + 2 * mstride;
    const float *restrict m3 = m + 3 * mstride, *restrict m4 = m + 4 * mstride, *restrict m5 = m + 5 * mstride;
    float *restrict o0 = o, *restrict o1 = o + ostride, *restrict o2 = o + 2 * ostride, *restrict o3 = o + 3 * ostride;
    for (int t = 0; t < len; t++) TK_AT(m0[t], m1[t], m2[t], m3[t], m4[t], m5[t], o0[t], o1[t], o2[t], o3[t]);
}

TK_INLINE void tk_affine_rows(float *restrict y, long n, float s, float b, int relu) {
    if (relu) {
        for (long i = 0; i < n; i++) {
            const float v = y[i] * s + b;
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
        for (long i = 0; i < n; i++) y[i] = y[i] * s + b;
    }
}

TK_INLINE void tk_winograd_output_body(const float *mm, long xi_stride, long ldm, int rows, long tiles_x, long tile0,
                                       int count, float *out, long out_plane, int oh, int ow, const float *scale,
                                       const float *shift, int relu, float *scratch) {
    long done = 0;
    while (done < count) {
        long ty, tx0;
        const int len = tk_tile_run(tile0 + done, tiles_x, count - done, &ty, &tx0);
        float *q = scratch;  // [4][4][len]: output row r, column phase c
        float *line = scratch + 16L * len;
        float *h = line + 4L * len;  // [4][6][len]
        for (int m = 0; m < rows; m++) {
            const float *src = mm + m * ldm + done;
            const float s = scale ? scale[m] : 1.0f, b = shift ? shift[m] : 0.0f;
            // Down columns: h[r][j] = A^T (column j of the 6x6 product).
            for (int j = 0; j < 6; j++)
                tk_at_rows(src + j * xi_stride, 6 * xi_stride, h + j * len, 6L * len, len);
            // Along rows, then the epilogue: q[r][c] = act(s * (A^T (row r of h))_c + b).
            for (int r = 0; r < 4; r++) {
                float *qr = q + r * 4 * len;
                tk_at_rows(h + r * 6 * len, len, qr, len, len);
                tk_affine_rows(qr, 4L * len, s, b, relu);
            }
            float *plane = out + m * out_plane;
            const long x0 = 4 * tx0;
            const long valid = (ow - x0 < 4L * len) ? ow - x0 : 4L * len;
            for (int r = 0; r < 4; r++) {
                const long y = 4 * ty + r;
                if (y >= oh) break;
                const float *q0 = q + (r * 4 + 0) * len, *q1 = q + (r * 4 + 1) * len;
                const float *q2 = q + (r * 4 + 2) * len, *q3 = q + (r * 4 + 3) * len;
                // Whole tiles in place; a last partial tile column by column.
                float *dst = plane + y * ow + x0;
                const long whole = valid / 4;
                tk_interleave4(q0, q1, q2, q3, whole, dst);
                for (long t = whole; t < len; t++) {
                    const float v[4] = {q0[t], q1[t], q2[t], q3[t]};
                    for (int c = 0; c < 4 && 4 * t + c < valid; c++) dst[4 * t + c] = v[c];
                }
            }
        }
        done += len;
    }
}
TK_VARIANTS(tk_winograd_output,
            (const float *mm, long xi_stride, long ldm, int rows, long tiles_x, long tile0, int count, float *out,
             long out_plane, int oh, int ow, const float *scale, const float *shift, int relu, float *scratch),
            (mm, xi_stride, ldm, rows, tiles_x, tile0, count, out, out_plane, oh, ow, scale, shift, relu, scratch))

void tk_winograd_output(const float *mm, long xi_stride, long ldm, int rows, long tiles_x, long tile0, int count,
                        float *out, long out_plane, int oh, int ow, const float *scale, const float *shift, int relu,
                        float *scratch) {
    tk_winograd_output_variant(tk_kernel()->name, mm, xi_stride, ldm, rows, tiles_x, tile0, count, out, out_plane, oh,
                               ow, scale, shift, relu, scratch);
}

long tk_winograd_output_scratch(long count) { return 44 * count; }

// MARK: - weight gradient: dW = G^T [sum over tiles (A w A^T) . (B^T d B)] G
//
// By the transposition principle the forward's identity y = A^T [(G g) . (B^T d)] also gives the correlation of an
// input tile d with an output-gradient tile w: dW = G^T [(A w) . (B^T d)]. The input tiles take the forward's
// transform; output-gradient tiles take A (4 -> 6); the sum over tiles is a product per point xi.

// A applied to four values.
#define TK_A(w0, w1, w2, w3, o0, o1, o2, o3, o4, o5) \
    do {                                             \
        const float s02 = w0 + w2, s13 = w1 + w3;    \
        const float f02 = w0 + 4.0f * w2, f13 = 2.0f * w1 + 8.0f * w3; \
        o0 = w0;                                     \
        o1 = s02 + s13;                              \
        o2 = s02 - s13;                              \
        o3 = f02 + f13;                              \
        o4 = f02 - f13;                              \
        o5 = w3;                                     \
    } while (0)

TK_INLINE void tk_a_rows(const float *restrict w0, const float *restrict w1, const float *restrict w2,
                         const float *restrict w3, float *restrict o, long ostride, int len) {
    float *restrict o0 = o, *restrict o1 = o + ostride, *restrict o2 = o + 2 * ostride;
    float *restrict o3 = o + 3 * ostride, *restrict o4 = o + 4 * ostride, *restrict o5 = o + 5 * ostride;
    for (int t = 0; t < len; t++) TK_A(w0[t], w1[t], w2[t], w3[t], o0[t], o1[t], o2[t], o3[t], o4[t], o5[t]);
}

TK_INLINE void tk_winograd_gradient_body(const float *g, long plane, int oh, int ow, int rows, long tiles_x,
                                         long tile0, int count, float *w, long xi_stride, long ldw, float *scratch) {
    long done = 0;
    while (done < count) {
        long ty, tx0;
        const int len = tk_tile_run(tile0 + done, tiles_x, count - done, &ty, &tx0);
        const long width = 4L * len, x0 = 4 * tx0;
        const long valid = ow - x0 < width ? ow - x0 : width;
        float *line = scratch;           // one zero-extended row of 4 len
        float *ph = line + width;        // [4 rows][4 phases][len]
        float *h = ph + 16L * len;       // [4 rows][6][len]
        for (int m = 0; m < rows; m++) {
            const float *plane_m = g + m * plane;
            for (int r = 0; r < 4; r++) {
                const long y = 4 * ty + r;
                const float *from = line;
                if (y >= oh) {
                    memset(line, 0, sizeof(float) * width);
                } else if (valid == width) {
                    from = plane_m + y * ow + x0;
                } else {
                    memcpy(line, plane_m + y * ow + x0, sizeof(float) * valid);
                    memset(line + valid, 0, sizeof(float) * (width - valid));
                }
                float *p = ph + r * 4 * len;
                tk_deinterleave4(from, len, p, p + len, p + 2 * len, p + 3 * len);
                // Along the row: h[r][eta] = A (row r of each tile).
                tk_a_rows(p, p + len, p + 2 * len, p + 3 * len, h + r * 6 * len, len, len);
            }
            // Down the columns: w[xi][eta] = A (column eta of h).
            for (int eta = 0; eta < 6; eta++) {
                const float *c = h + eta * len;
                tk_a_rows(c, c + 6 * len, c + 12 * len, c + 18 * len, w + m * ldw + done + eta * xi_stride,
                          6 * xi_stride, len);
            }
        }
        done += len;
    }
}
TK_VARIANTS(tk_winograd_gradient,
            (const float *g, long plane, int oh, int ow, int rows, long tiles_x, long tile0, int count, float *w,
             long xi_stride, long ldw, float *scratch),
            (g, plane, oh, ow, rows, tiles_x, tile0, count, w, xi_stride, ldw, scratch))

void tk_winograd_gradient(const float *g, long plane, int oh, int ow, int rows, long tiles_x, long tile0, int count,
                          float *w, long xi_stride, long ldw, float *scratch) {
    tk_winograd_gradient_variant(tk_kernel()->name, g, plane, oh, ow, rows, tiles_x, tile0, count, w, xi_stride, ldw,
                                 scratch);
}

long tk_winograd_gradient_scratch(long count) { return 44 * count; }

// G^T applied to six values.
static inline void tk_gt(const float *s, long stride, float *o, int ostride) {
    const float sixth = 1.0f / 6.0f, twelfth = 1.0f / 12.0f, quarter_sixth = 1.0f / 24.0f;
    const float s0 = s[0], s1 = s[stride], s2 = s[2 * stride], s3 = s[3 * stride], s4 = s[4 * stride],
                s5 = s[5 * stride];
    o[0] = 0.25f * s0 - (s1 + s2) * sixth + (s3 + s4) * quarter_sixth;
    o[ostride] = (s2 - s1) * sixth + (s3 - s4) * twelfth;
    o[2 * ostride] = (s3 + s4 - s1 - s2) * sixth + s5;
}

void tk_winograd_filter_gradient(const float *s, long xi_stride, long lds, int rows, int channels, float *dw, long ms,
                                 long cs) {
    for (int m = 0; m < rows; m++) {
        for (int c = 0; c < channels; c++) {
            const float *p = s + (long)m * lds + c;
            float t[3][6];  // G^T S: rows k, columns eta
            for (int eta = 0; eta < 6; eta++) tk_gt(p + eta * xi_stride, 6 * xi_stride, &t[0][eta], 6);
            float *dst = dw + m * ms + c * cs;
            for (int k = 0; k < 3; k++) tk_gt(t[k], 1, dst + 3 * k, 1);
        }
    }
}
