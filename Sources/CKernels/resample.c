// Data-path kernels for augmentation: strided 32-bit re-indexing, bilinear warps, sample conversion.
#include "CKernels.h"
#include "variants.h"

#include <math.h>

static inline long tk_mirror(long i, long size) {
    if (i >= 0 && i < size) return i;
    if (size == 1) return 0;
    long period = 2 * (size - 1);
    long m = i % period;
    if (m < 0) m += period;
    return m < size ? m : period - m;
}

void tk_remap32(const uint32_t *src, long start, long dx, long dy, long ow, long oh, uint32_t *dst) {
    if (dx == 1 || dx == -1) {
        for (long y = 0; y < oh; y++) {
            const uint32_t *s = src + start + y * dy;
            uint32_t *d = dst + y * ow;
            if (dx == 1) for (long x = 0; x < ow; x++) d[x] = s[x];
            else for (long x = 0; x < ow; x++) d[x] = s[-x];
        }
        return;
    }
    // Transposing moves: 32 x 32 tiles, so both sides stay in cache lines already loaded.
    enum { tile = 32 };
    for (long y0 = 0; y0 < oh; y0 += tile)
        for (long x0 = 0; x0 < ow; x0 += tile) {
            long y1 = y0 + tile < oh ? y0 + tile : oh, x1 = x0 + tile < ow ? x0 + tile : ow;
            for (long y = y0; y < y1; y++) {
                const uint32_t *s = src + start + y * dy;
                uint32_t *d = dst + y * ow;
                for (long x = x0; x < x1; x++) d[x] = s[x * dx];
            }
        }
}

static inline long tk_floor(float x) {
    long i = (long)x;
    return i - (x < (float)i);
}

// One channel (and the labels, when asked) at coordinates reflected into [0, w-1] x [0, h-1]. Bilinear
// interpolation of the mirrored image equals interpolation at the reflected coordinate, so this is branch-free
// and vectorises with gathers. Labels take the pixel nearest the reflected coordinate, floor(x + 0.5).
TK_INLINE void tk_warp_plane_body(const float *restrict src, const int32_t *restrict labels, long w, long h,
                                   const float *restrict sx, const float *restrict sy, long count,
                                   float *restrict dst, int32_t *restrict dst_labels) {
    const float lx = (float)(w - 1), ly = (float)(h - 1), px = 2 * lx, py = 2 * ly;
    const int iw = (int)w, xlast = (int)w - 2, ylast = (int)h - 2;
    for (long i = 0; i < count; i++) {
        float x = fabsf(sx[i]), y = fabsf(sy[i]);
        x -= px * floorf(x / px);
        y -= py * floorf(y / py);
        x = lx - fabsf(lx - x);
        y = ly - fabsf(ly - y);
        int x0 = (int)x, y0 = (int)y;
        x0 = x0 > xlast ? xlast : x0;
        y0 = y0 > ylast ? ylast : y0;
        float fx = x - (float)x0, fy = y - (float)y0;
        int a = y0 * iw + x0;
        float top = src[a] + (src[a + 1] - src[a]) * fx;
        float bottom = src[a + iw] + (src[a + iw + 1] - src[a + iw]) * fx;
        dst[i] = top + (bottom - top) * fy;
        if (dst_labels) dst_labels[i] = labels[(int)(y + 0.5f) * iw + (int)(x + 0.5f)];
    }
}

TK_VARIANTS(tk_warp_plane,
            (const float *restrict src, const int32_t *restrict labels, long w, long h, const float *restrict sx,
             const float *restrict sy, long count, float *restrict dst, int32_t *restrict dst_labels),
            (src, labels, w, h, sx, sy, count, dst, dst_labels))

void tk_warp_bilinear(const float *src, const int32_t *labels, long w, long h, long channels, const float *sx,
                      const float *sy, long out_n, float *dst, int32_t *dst_labels) {
    tk_warp_bilinear_variant(tk_kernel()->name, src, labels, w, h, channels, sx, sy, out_n, dst, dst_labels);
}

void tk_warp_bilinear_variant(const char *isa, const float *src, const int32_t *labels, long w, long h,
                              long channels, const float *sx, const float *sy, long out_n, float *dst,
                              int32_t *dst_labels) {
    if (w >= 2 && h >= 2 && w * h < (1L << 30)) {
        for (long c = 0; c < channels; c++)
            tk_warp_plane_variant(isa, src + c * w * h, labels, w, h, sx, sy, out_n, dst + c * out_n,
                                  c == 0 ? dst_labels : NULL);
        if (channels == 0) {
            for (long i = 0; i < out_n; i++) {
                float x = sx[i], y = sy[i];
                long nx = tk_mirror(tk_floor(x + 0.5f), w), ny = tk_mirror(tk_floor(y + 0.5f), h);
                dst_labels[i] = labels[ny * w + nx];
            }
        }
        return;
    }
    // A single row or column: mirrored integer neighbours.
    for (long i = 0; i < out_n; i++) {
        float x = sx[i], y = sy[i];
        long x0 = tk_floor(x), y0 = tk_floor(y);
        float fx = x - (float)x0, fy = y - (float)y0;
        long xa = tk_mirror(x0, w), xb = tk_mirror(x0 + 1, w), ya = tk_mirror(y0, h), yb = tk_mirror(y0 + 1, h);
        long a = ya * w + xa, b = ya * w + xb, c = yb * w + xa, d = yb * w + xb;
        for (long ch = 0; ch < channels; ch++) {
            const float *p = src + ch * w * h;
            float top = p[a] + (p[b] - p[a]) * fx;
            float bottom = p[c] + (p[d] - p[c]) * fx;
            dst[ch * out_n + i] = top + (bottom - top) * fy;
        }
        dst_labels[i] = labels[tk_mirror(tk_floor(y + 0.5f), h) * w + tk_mirror(tk_floor(x + 0.5f), w)];
    }
}

void tk_field_rows(const float *rows, long n, const int32_t *base, const float *weights, long w, long h, int along_x,
                   float *restrict out) {
    for (long y = 0; y < h; y++) {
        const float *r[4];
        for (int k = 0; k < 4; k++) {
            long j = base[y] - 1 + k;
            r[k] = rows + (j < 0 ? 0 : (j > n - 1 ? n - 1 : j)) * w;
        }
        const float k0 = weights[4 * y], k1 = weights[4 * y + 1], k2 = weights[4 * y + 2], k3 = weights[4 * y + 3];
        const float *restrict r0 = r[0], *restrict r1 = r[1], *restrict r2 = r[2], *restrict r3 = r[3];
        float *restrict o = out + y * w;
        if (along_x) {
            for (long x = 0; x < w; x++) o[x] = k0 * r0[x] + k1 * r1[x] + k2 * r2[x] + k3 * r3[x] + (float)x;
        } else {
            const float fy = (float)y;
            for (long x = 0; x < w; x++) o[x] = k0 * r0[x] + k1 * r1[x] + k2 * r2[x] + k3 * r3[x] + fy;
        }
    }
}

void tk_planar_from_u8(const uint8_t *src, long pixels, long channels, float scale, float *dst) {
    for (long c = 0; c < channels; c++)
        for (long p = 0; p < pixels; p++) dst[c * pixels + p] = (float)src[p * channels + c] * scale;
}

void tk_planar_from_u16(const uint16_t *src, long pixels, long channels, float scale, float *dst) {
    for (long c = 0; c < channels; c++)
        for (long p = 0; p < pixels; p++) dst[c * pixels + p] = (float)src[p * channels + c] * scale;
}
