// Data-path kernels for augmentation: strided 32-bit re-indexing, bilinear warps, sample conversion.
#include "CKernels.h"

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

// Bilinear sample of one channel at coordinates clamped into [0, w-1) x [0, h-1): branch-free, so it vectorises
// with gathers. Pixels whose coordinates were clamped are wrong here and redone with mirroring by the caller.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void tk_warp_clamped(const float *restrict src, const int32_t *restrict labels, long w, long h,
                            const float *restrict sx, const float *restrict sy, long count, float *restrict dst,
                            int32_t *restrict dst_labels) {
    const float xmax = nextafterf((float)(w - 1), 0), ymax = nextafterf((float)(h - 1), 0);
    const int iw = (int)w;
    for (long i = 0; i < count; i++) {
        float x = fminf(fmaxf(sx[i], 0), xmax), y = fminf(fmaxf(sy[i], 0), ymax);
        int x0 = (int)x, y0 = (int)y;  // non-negative, so truncation is floor
        float fx = x - (float)x0, fy = y - (float)y0;
        int a = y0 * iw + x0;
        float top = src[a] + (src[a + 1] - src[a]) * fx;
        float bottom = src[a + iw] + (src[a + iw + 1] - src[a + iw]) * fx;
        dst[i] = top + (bottom - top) * fy;
        dst_labels[i] = labels[a + (fy >= 0.5f ? iw : 0) + (fx >= 0.5f ? 1 : 0)];
    }
}

// One output pixel, any coordinates, mirrored borders.
static inline void tk_warp_pixel(const float *src, const int32_t *labels, long w, long h, long channels, float x,
                                 float y, long i, long out_n, float *dst, int32_t *dst_labels) {
    long n = w * h;
    long x0 = tk_floor(x), y0 = tk_floor(y);
    float fx = x - (float)x0, fy = y - (float)y0;
    long xa = x0, xb = x0 + 1, ya = y0, yb = y0 + 1;
    if (!(x0 >= 0 && x0 < w - 1 && y0 >= 0 && y0 < h - 1)) {
        xa = tk_mirror(x0, w); xb = tk_mirror(x0 + 1, w); ya = tk_mirror(y0, h); yb = tk_mirror(y0 + 1, h);
    }
    long a = ya * w + xa, b = ya * w + xb, c = yb * w + xa, d = yb * w + xb;
    const float *p = src;
    float *o = dst + i;
    for (long ch = 0; ch < channels; ch++, p += n, o += out_n) {
        float top = p[a] + (p[b] - p[a]) * fx;
        float bottom = p[c] + (p[d] - p[c]) * fx;
        *o = top + (bottom - top) * fy;
    }
    long lx = fx >= 0.5f ? xb : xa, ly = fy >= 0.5f ? yb : ya;
    dst_labels[i] = labels[ly * w + lx];
}

void tk_warp_bilinear(const float *src, const int32_t *labels, long w, long h, long channels, const float *sx,
                      const float *sy, long out_n, float *dst, int32_t *dst_labels) {
    if (channels == 1 && w >= 2 && h >= 2 && w * h < (1L << 30)) {
        tk_warp_clamped(src, labels, w, h, sx, sy, out_n, dst, dst_labels);
        const float xlim = (float)(w - 1), ylim = (float)(h - 1);
        for (long i = 0; i < out_n; i++)
            if (!(sx[i] >= 0 && sx[i] < xlim && sy[i] >= 0 && sy[i] < ylim))
                tk_warp_pixel(src, labels, w, h, 1, sx[i], sy[i], i, out_n, dst, dst_labels);
        return;
    }
    for (long i = 0; i < out_n; i++) tk_warp_pixel(src, labels, w, h, channels, sx[i], sy[i], i, out_n, dst, dst_labels);
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
