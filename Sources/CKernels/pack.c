// Operand packing for the GEMM micro-kernels: plain matrices, im2col of convolutions, fused epilogues.
#include "CKernels.h"

#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void tk_pack_a(const float *src, long rs, long cs, int mc, int kc, int mr, float *dst) {
    for (int m0 = 0; m0 < mc; m0 += mr) {
        int rows = mc - m0 < mr ? mc - m0 : mr;
        if (cs == 1) {
            for (int i = 0; i < rows; i++) {
                const float *s = src + (long)(m0 + i) * rs;
                for (int k = 0; k < kc; k++) dst[(long)k * mr + i] = s[k];
            }
        } else {
            for (int k = 0; k < kc; k++) {
                for (int i = 0; i < rows; i++) dst[(long)k * mr + i] = src[(long)(m0 + i) * rs + (long)k * cs];
            }
        }
        for (int i = rows; i < mr; i++) {
            for (int k = 0; k < kc; k++) dst[(long)k * mr + i] = 0.0f;
        }
        dst += (long)kc * mr;
    }
}

void tk_pack_a_swapped(const float *src, long rs, long inner, long outer_stride, int mc, long k0, int kc, int mr,
                       float *dst) {
    for (int m0 = 0; m0 < mc; m0 += mr) {
        int rows = mc - m0 < mr ? mc - m0 : mr;
        for (int k = 0; k < kc; k++) {
            long j = k0 + k;
            const float *col = src + (j / inner) * outer_stride + (j % inner) + (long)m0 * rs;
            float *d = dst + (long)k * mr;
            for (int i = 0; i < rows; i++) d[i] = col[(long)i * rs];
            for (int i = rows; i < mr; i++) d[i] = 0.0f;
        }
        dst += (long)kc * mr;
    }
}

#if defined(__x86_64__)
// Transposes an 8 x 8 block: rows r[0..8) of 8 floats each into dst rows of stride ld.
__attribute__((target("avx2")))
static inline void tk_transpose8x8(const float *const r[8], long q, float *dst, long ld) {
    __m256 a0 = _mm256_loadu_ps(r[0] + q), a1 = _mm256_loadu_ps(r[1] + q), a2 = _mm256_loadu_ps(r[2] + q),
           a3 = _mm256_loadu_ps(r[3] + q), a4 = _mm256_loadu_ps(r[4] + q), a5 = _mm256_loadu_ps(r[5] + q),
           a6 = _mm256_loadu_ps(r[6] + q), a7 = _mm256_loadu_ps(r[7] + q);
    __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    __m256 t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5);
    __m256 t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ld, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * ld, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ld, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ld, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ld, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ld, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ld, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Full 8-row groups of a panel with 8 x 8 transposes; returns how many leading columns it wrote.
__attribute__((target("avx2")))
static int tk_pack_transposed_avx2(const float *base, const long *row_offsets, int here, long q0, int kc, int width,
                                   float *dst) {
    int q8 = kc / 8 * 8;
    for (int i0 = 0; i0 + 8 <= here; i0 += 8) {
        const float *r[8];
        for (int i = 0; i < 8; i++) r[i] = base + row_offsets[i0 + i] + q0;
        for (int q = 0; q < q8; q += 8) tk_transpose8x8(r, q, dst + (long)q * width + i0, width);
    }
    return q8;
}

// Whether the active variant (TESSERA_ISA or the CPU's best) has AVX2.
static int tk_active_avx2(void) { return strcmp(tk_kernel()->name, "scalar") != 0; }
#endif

void tk_pack_transposed(const float *base, const long *row_offsets, int rows, long q0, int kc, int width, float *dst) {
#if defined(__x86_64__)
    int vector = width % 8 == 0 && tk_active_avx2();
#endif
    for (int p0 = 0; p0 < rows; p0 += width) {
        int here = rows - p0 < width ? rows - p0 : width;
#if defined(__x86_64__)
        if (vector) {
            int full = here / 8 * 8;
            int done = tk_pack_transposed_avx2(base, row_offsets + p0, here, q0, kc, width, dst);
            // Columns past the last multiple of 8 for the vector rows, then the leftover rows.
            for (int i = 0; i < full; i++) {
                const float *src = base + row_offsets[p0 + i] + q0;
                for (int q = done; q < kc; q++) dst[(long)q * width + i] = src[q];
            }
            for (int i = full; i < here; i++) {
                const float *src = base + row_offsets[p0 + i] + q0;
                for (int q = 0; q < kc; q++) dst[(long)q * width + i] = src[q];
            }
            for (int i = here; i < width; i++) {
                for (int q = 0; q < kc; q++) dst[(long)q * width + i] = 0.0f;
            }
            dst += (long)kc * width;
            continue;
        }
#endif
        for (int i = 0; i < here; i++) {
            const float *src = base + row_offsets[p0 + i] + q0;
            float *d = dst + i;
            for (int q = 0; q < kc; q++) d[(long)q * width] = src[q];
        }
        for (int i = here; i < width; i++) {
            for (int q = 0; q < kc; q++) dst[(long)q * width + i] = 0.0f;
        }
        dst += (long)kc * width;
    }
}

void tk_pack_b(const float *src, long rs, long cs, int kc, int nc, int nr, float *dst) {
    for (int n0 = 0; n0 < nc; n0 += nr) {
        int cols = nc - n0 < nr ? nc - n0 : nr;
        for (int k = 0; k < kc; k++) {
            float *d = dst + (long)k * nr;
            const float *s = src + (long)k * rs + (long)n0 * cs;
            if (cs == 1) {
                memcpy(d, s, sizeof(float) * (size_t)cols);
            } else {
                for (int j = 0; j < cols; j++) d[j] = s[(long)j * cs];
            }
            for (int j = cols; j < nr; j++) d[j] = 0.0f;
        }
        dst += (long)kc * nr;
    }
}

// Source index along one axis for output position o and kernel tap k; -1 where the value is padding.
static inline int tk_src_index(int o, int k, int stride, int pad, int dil, int size, int transposed) {
    int i;
    if (transposed) {
        int t = o + pad - k * dil;
        if (t < 0 || t % stride != 0) return -1;
        i = t / stride;
    } else {
        i = o * stride + k * dil - pad;
    }
    return (i >= 0 && i < size) ? i : -1;
}

// Writes len consecutive im2col values of row k starting at column n into dst.
static void tk_im2col_segment(const tk_conv_geom *g, long k, long n, int len, float *dst) {
    int kx = (int)(k % g->kw);
    long r = k / g->kw;
    int ky = (int)(r % g->kh);
    r /= g->kh;
    int kz = (int)(r % g->kd);
    int ch = (int)(r / g->kd);
    const float *plane = g->x + (long)ch * g->id * g->ih * g->iw;
    long ohw = (long)g->oh * g->ow;
    int oz = (int)(n / ohw);
    long rem = n % ohw;
    int oy = (int)(rem / g->ow);
    int ox = (int)(rem % g->ow);
    int done = 0;
    while (done < len) {
        int run = g->ow - ox;
        if (run > len - done) run = len - done;
        float *d = dst + done;
        int iz = tk_src_index(oz, kz, g->sd, g->pd, g->dd, g->id, g->transposed);
        int iy = tk_src_index(oy, ky, g->sh, g->ph, g->dh, g->ih, g->transposed);
        if (iz < 0 || iy < 0) {
            memset(d, 0, sizeof(float) * (size_t)run);
        } else {
            const float *row = plane + ((long)iz * g->ih + iy) * g->iw;
            if (g->sw == 1) {
                // in = out + off, contiguous: zero the out-of-range ends, copy the middle.
                int off = g->transposed ? g->pw - kx * g->dw : kx * g->dw - g->pw;
                int lo = -off - ox;             // first j with ox + j + off >= 0
                int hi = g->iw - off - ox;      // first j with ox + j + off >= iw
                if (lo < 0) lo = 0;
                if (hi > run) hi = run;
                if (lo > run) lo = run;
                if (hi < lo) hi = lo;
                if (lo > 0) memset(d, 0, sizeof(float) * (size_t)lo);
                if (hi > lo) memcpy(d + lo, row + ox + lo + off, sizeof(float) * (size_t)(hi - lo));
                if (run > hi) memset(d + hi, 0, sizeof(float) * (size_t)(run - hi));
            } else {
                for (int j = 0; j < run; j++) {
                    int ix = tk_src_index(ox + j, kx, g->sw, g->pw, g->dw, g->iw, g->transposed);
                    d[j] = ix < 0 ? 0.0f : row[ix];
                }
            }
        }
        done += run;
        ox = 0;
        if (++oy == g->oh) { oy = 0; oz++; }
    }
}

void tk_im2col_packed(const tk_conv_geom *g, long k0, int kc, long n0, int nc, int nr, float *dst) {
    for (int j0 = 0; j0 < nc; j0 += nr) {
        int cols = nc - j0 < nr ? nc - j0 : nr;
        for (int k = 0; k < kc; k++) {
            float *d = dst + (long)k * nr;
            tk_im2col_segment(g, k0 + k, n0 + j0, cols, d);
            for (int j = cols; j < nr; j++) d[j] = 0.0f;
        }
        dst += (long)kc * nr;
    }
}

void tk_im2col_rows(const tk_conv_geom *g, long k0, int kc, long n0, int nc, float *dst, long ld) {
    for (int k = 0; k < kc; k++) tk_im2col_segment(g, k0 + k, n0, nc, dst + (long)k * ld);
}

void tk_col2im_add(const tk_conv_geom *g, int rows, const float *cols, long ldcols, long s0, int ns, float *out) {
    const int taps = g->kd * g->kh * g->kw;
    const long colVolume = (long)g->od * g->oh * g->ow;
    const long shw = (long)g->ih * g->iw;
    for (int r = 0; r < rows; r++) {
        float *o = out + (long)r * colVolume;
        for (int t = 0; t < taps; t++) {
            const int kx = t % g->kw, ky = (t / g->kw) % g->kh, kz = t / (g->kw * g->kh);
            const float *c = cols + ((long)r * taps + t) * ldcols;
            long s = s0;
            const long end = s0 + ns;
            while (s < end) {
                // One run of source pixels along x: the same source row.
                const int sz = (int)(s / shw), sy = (int)((s % shw) / g->iw), sx0 = (int)(s % g->iw);
                int run = g->iw - sx0;
                if (run > end - s) run = (int)(end - s);
                const int z = sz * g->sd + kz * g->dd - g->pd, y = sy * g->sh + ky * g->dh - g->ph;
                if (z >= 0 && z < g->od && y >= 0 && y < g->oh) {
                    float *orow = o + ((long)z * g->oh + y) * g->ow;
                    const float *crow = c + (s - s0);
                    // x = sx * sw + kx * dw - pw must lie in [0, ow): the valid sx form one interval.
                    const int base = kx * g->dw - g->pw;
                    int lo = 0, hi = run;
                    while (lo < hi && (sx0 + lo) * g->sw + base < 0) lo++;
                    while (hi > lo && (sx0 + hi - 1) * g->sw + base >= g->ow) hi--;
                    if (g->sw == 1) {
                        float *op = orow + sx0 + base;
                        for (int j = lo; j < hi; j++) op[j] += crow[j];
                    } else {
                        for (int j = lo; j < hi; j++) orow[(sx0 + j) * g->sw + base] += crow[j];
                    }
                }
                s += run;
            }
        }
    }
}
