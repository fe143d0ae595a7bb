// The hot loops outside the convolutions' GEMMs (fused epilogues and batch-norm application, 2x2 max pooling,
// the Adam update), written once as plain C loops that the compiler vectorises, and compiled three times: for
// AVX-512, for AVX2 + FMA, and portable (SSE2 on x86-64, NEON on aarch64). The variant that runs is the active one
// (TESSERA_ISA or the CPU's best), as for the GEMM kernels.
#include "CKernels.h"

#include <string.h>

#include "variants.h"

// MARK: - per-row affine + ReLU (convolution epilogues, batch-norm application)

TK_INLINE void tk_epilogue_body(float *y, long ld, int rows, int cols, const float *scale, const float *shift,
                                int act) {
    for (int c = 0; c < rows; c++) {
        const float s = scale ? scale[c] : 1.0f;
        const float t = shift ? shift[c] : 0.0f;
        float *yc = y + (long)c * ld;
        if (act == 1) {
            for (int i = 0; i < cols; i++) {
                const float v = yc[i] * s + t;
                yc[i] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (int i = 0; i < cols; i++) yc[i] = yc[i] * s + t;
        }
    }
}
TK_VARIANTS(tk_epilogue, (float *y, long ld, int rows, int cols, const float *scale, const float *shift, int act),
            (y, ld, rows, cols, scale, shift, act))

void tk_epilogue(float *y, long ld, int rows, int cols, const float *scale, const float *shift, int act) {
    tk_epilogue_variant(tk_kernel()->name, y, ld, rows, cols, scale, shift, act);
}

TK_INLINE void tk_affine_body(const float *x, float *y, long n, float scale, float shift, int act) {
    if (act == 1) {
        for (long i = 0; i < n; i++) {
            const float v = x[i] * scale + shift;
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
        for (long i = 0; i < n; i++) y[i] = x[i] * scale + shift;
    }
}
TK_VARIANTS(tk_affine, (const float *x, float *y, long n, float scale, float shift, int act),
            (x, y, n, scale, shift, act))

void tk_affine(const float *x, float *y, long n, float scale, float shift, int act) {
    tk_affine_variant(tk_kernel()->name, x, y, n, scale, shift, act);
}

// MARK: - 2x2 max pooling, stride 2

// As torch: a later value wins if it is larger or NaN, so NaN propagates; the winner's index (0-3, row-major in
// the window) goes to argmax when it is not NULL.
TK_INLINE void tk_maxpool2x2_row_body(const float *r0, const float *r1, long ow, float *out, uint8_t *argmax) {
    for (long x = 0; x < ow; x++) {
        float best = r0[2 * x];
        uint8_t bi = 0;
        const float v1 = r0[2 * x + 1], v2 = r1[2 * x], v3 = r1[2 * x + 1];
        const int t1 = v1 > best || v1 != v1;
        best = t1 ? v1 : best;
        bi = t1 ? 1 : bi;
        const int t2 = v2 > best || v2 != v2;
        best = t2 ? v2 : best;
        bi = t2 ? 2 : bi;
        const int t3 = v3 > best || v3 != v3;
        best = t3 ? v3 : best;
        bi = t3 ? 3 : bi;
        out[x] = best;
        if (argmax) argmax[x] = bi;
    }
}
TK_VARIANTS(tk_maxpool2x2_row, (const float *r0, const float *r1, long ow, float *out, uint8_t *argmax),
            (r0, r1, ow, out, argmax))

void tk_maxpool2x2_row(const float *r0, const float *r1, long ow, float *out, uint8_t *argmax) {
    tk_maxpool2x2_row_variant(tk_kernel()->name, r0, r1, ow, out, argmax);
}

// MARK: - Adam / AdamW

TK_INLINE void tk_adam_body(float *p, const float *g, float *m, float *v, long n, const tk_adam_params *h) {
    const float b1 = h->beta1, b2 = h->beta2, eps = h->eps, step = h->step_size;
    const float inv_bc2_sqrt = 1.0f / h->bias_correction2_sqrt;
    // L2 penalty added to the gradient (Adam), or the parameter shrunk first (AdamW); one is zero.
    const float l2 = h->decoupled ? 0.0f : h->weight_decay;
    const float shrink = h->decoupled ? 1.0f - h->lr * h->weight_decay : 1.0f;
    for (long j = 0; j < n; j++) {
        const float pj = p[j];
        const float grad = g[j] + l2 * pj;
        const float mj = b1 * m[j] + (1 - b1) * grad;
        const float vj = b2 * v[j] + (1 - b2) * grad * grad;
        m[j] = mj;
        v[j] = vj;
        // The builtin, not sqrtf: sqrtf may set errno, which keeps the compiler from vectorising the loop.
        p[j] = pj * shrink - step * mj / (__builtin_elementwise_sqrt(vj) * inv_bc2_sqrt + eps);
    }
}
TK_VARIANTS(tk_adam, (float *p, const float *g, float *m, float *v, long n, const tk_adam_params *h),
            (p, g, m, v, n, h))

void tk_adam(float *p, const float *g, float *m, float *v, long n, const tk_adam_params *h) {
    tk_adam_variant(tk_kernel()->name, p, g, m, v, n, h);
}

// MARK: - max pooling, any window

// One plane of a 2-d max pool (torch's max_pool2d: padding never wins, NaN propagates, ties keep the first);
// argmax (may be NULL) gets the winner's flat index in the plane.
// Without argmax (inference), output columns whose whole window lies inside the row run as loops across columns
// (one tap at a time, in the same order as the scalar loop, so NaN and ties resolve alike); ResNet's 3x3 / 2 pool at
// 112x112 took 6% of a ResNet-18 forward through the scalar loop.
TK_INLINE void tk_maxpool2d_plane_body(const float *src, const tk_pool_geom *g, float *dst, int32_t *argmax) {
    int lo = 0, hi = 0;  // interior output columns [lo, hi)
    if (!argmax) {
        lo = (g->pw + g->sw - 1) / g->sw;
        const int span = (g->kw - 1) * g->dw;  // last tap's offset
        hi = g->w - 1 - span + g->pw >= 0 ? (g->w - 1 - span + g->pw) / g->sw + 1 : 0;
        if (hi > g->ow) hi = g->ow;
        if (hi < lo) hi = lo;
    }
    for (int oy = 0; oy < g->oh; oy++) {
        float *d = dst + (long)oy * g->ow;
        if (hi > lo) {
            int first = 1;
            for (int ky = 0; ky < g->kh; ky++) {
                const int iy = oy * g->sh - g->ph + ky * g->dh;
                if (iy < 0 || iy >= g->h) continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    const float *p = src + (long)iy * g->w + kx * g->dw - g->pw;
                    const int sw = g->sw;
                    if (first) {
                        for (int ox = lo; ox < hi; ox++) d[ox] = p[(long)ox * sw];
                    } else {
                        for (int ox = lo; ox < hi; ox++) {
                            const float v = p[(long)ox * sw], b = d[ox];
                            d[ox] = (v > b || v != v) ? v : b;
                        }
                    }
                    first = 0;
                }
            }
            if (first) for (int ox = lo; ox < hi; ox++) d[ox] = 0.0f;  // no row inside: as the scalar loop
        }
        for (int ox = 0; ox < g->ow; ox++) {
            if (ox == lo && hi > lo) {
                ox = hi - 1;
                continue;
            }
            float best = 0.0f;
            int32_t bi = -1;
            for (int ky = 0; ky < g->kh; ky++) {
                const int iy = oy * g->sh - g->ph + ky * g->dh;
                if (iy < 0 || iy >= g->h) continue;
                const float *row = src + (long)iy * g->w;
                for (int kx = 0; kx < g->kw; kx++) {
                    const int ix = ox * g->sw - g->pw + kx * g->dw;
                    if (ix < 0 || ix >= g->w) continue;
                    const float v = row[ix];
                    if (bi < 0 || v > best || v != v) {
                        best = v;
                        bi = iy * g->w + ix;
                    }
                }
            }
            dst[(long)oy * g->ow + ox] = best;
            if (argmax) argmax[(long)oy * g->ow + ox] = bi;
        }
    }
}
TK_VARIANTS(tk_maxpool2d_plane, (const float *src, const tk_pool_geom *g, float *dst, int32_t *argmax),
            (src, g, dst, argmax))

void tk_maxpool2d_plane(const float *src, const tk_pool_geom *g, float *dst, int32_t *argmax) {
    tk_maxpool2d_plane_variant(tk_kernel()->name, src, g, dst, argmax);
}

// MARK: - SGD

TK_INLINE void tk_sgd_body(float *p, const float *g, float *buf, long n, const tk_sgd_params *h) {
    const float lr = h->lr, mu = h->momentum, wd = h->weight_decay;
    if (mu == 0.0f || !buf) {
        for (long j = 0; j < n; j++) p[j] -= lr * (g[j] + wd * p[j]);
        return;
    }
    const int first = h->first, nesterov = h->nesterov;  // loop-invariant: the compiler unswitches them
    for (long j = 0; j < n; j++) {
        const float d = g[j] + wd * p[j];
        const float bj = first ? d : mu * buf[j] + d;  // torch: the buffer starts as the first step's d
        buf[j] = bj;
        p[j] -= lr * (nesterov ? d + mu * bj : bj);
    }
}
TK_VARIANTS(tk_sgd, (float *p, const float *g, float *buf, long n, const tk_sgd_params *h), (p, g, buf, n, h))

void tk_sgd(float *p, const float *g, float *buf, long n, const tk_sgd_params *h) {
    tk_sgd_variant(tk_kernel()->name, p, g, buf, n, h);
}
