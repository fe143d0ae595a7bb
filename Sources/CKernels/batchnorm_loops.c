// Batch-norm's per-channel reductions and its input gradient, compiled per instruction set (variants.h). The sums
// run on 16-lane vectors of clang's vector extension, one zmm register on AVX-512 and two ymm on AVX2, in the same
// lane order on every variant, so the variants differ only by fused multiply-adds. A plain C loop would not be
// vectorised: the compiler may not reorder a float sum by itself.
#include "CKernels.h"

#include <string.h>

#include "variants.h"

typedef float tk_v16 __attribute__((ext_vector_type(16)));

TK_INLINE tk_v16 tk_load16(const float *p) {
    tk_v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

TK_INLINE float tk_lanes_sum(tk_v16 v) {
    float s = 0;
    for (int i = 0; i < 16; i++) s += v[i];
    return s;
}

// MARK: - statistics of the forward pass

TK_INLINE void tk_sum_body(const float *x, long n, float *sum) {
    tk_v16 s = 0;
    long i = 0;
    for (; i + 16 <= n; i += 16) s += tk_load16(x + i);
    float ss = tk_lanes_sum(s);
    for (; i < n; i++) ss += x[i];
    *sum = ss;
}
TK_VARIANTS(tk_sum, (const float *x, long n, float *sum), (x, n, sum))

float tk_sum(const float *x, long n) {
    float s;
    tk_sum_variant(tk_kernel()->name, x, n, &s);
    return s;
}

// A second pass over the data once the mean is known: more accurate than a sum of squares for activations whose
// mean is large beside their spread.
TK_INLINE void tk_squared_deviation_body(const float *x, long n, float mean, float *result) {
    tk_v16 q = 0;
    const tk_v16 m = mean;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const tk_v16 d = tk_load16(x + i) - m;
        q += d * d;
    }
    float qq = tk_lanes_sum(q);
    for (; i < n; i++) {
        const float d = x[i] - mean;
        qq += d * d;
    }
    *result = qq;
}
TK_VARIANTS(tk_squared_deviation, (const float *x, long n, float mean, float *result), (x, n, mean, result))

float tk_squared_deviation(const float *x, long n, float mean) {
    float q;
    tk_squared_deviation_variant(tk_kernel()->name, x, n, mean, &q);
    return q;
}

// MARK: - backward

TK_INLINE void tk_gradient_moments_body(const float *g, const float *x, const float *y, long n, float mean,
                                        float *sum_g, float *sum_gx) {
    tk_v16 a = 0, b = 0;
    const tk_v16 m = mean, zero = 0;
    long i = 0;
    if (y) {
        for (; i + 16 <= n; i += 16) {
            const tk_v16 gv = tk_load16(y + i) > zero ? tk_load16(g + i) : zero;
            a += gv;
            b += gv * (tk_load16(x + i) - m);
        }
    } else {
        for (; i + 16 <= n; i += 16) {
            const tk_v16 gv = tk_load16(g + i);
            a += gv;
            b += gv * (tk_load16(x + i) - m);
        }
    }
    float sa = tk_lanes_sum(a), sb = tk_lanes_sum(b);
    for (; i < n; i++) {
        const float gi = !y || y[i] > 0 ? g[i] : 0.0f;
        sa += gi;
        sb += gi * (x[i] - mean);
    }
    *sum_g = sa;
    *sum_gx = sb;
}
TK_VARIANTS(tk_gradient_moments,
            (const float *g, const float *x, const float *y, long n, float mean, float *sum_g, float *sum_gx),
            (g, x, y, n, mean, sum_g, sum_gx))

void tk_gradient_moments(const float *g, const float *x, const float *y, long n, float mean, float *sum_g,
                         float *sum_gx) {
    tk_gradient_moments_variant(tk_kernel()->name, g, x, y, n, mean, sum_g, sum_gx);
}

TK_INLINE void tk_batchnorm_input_grad_body(const float *g, const float *x, const float *y, long n,
                                            const tk_batchnorm_grad *c, float *out) {
    const float k = c->k, count = c->count, mean = c->mean, inv = c->inv_std, a = c->sum_g, b = c->sum_gx;
    if (c->training) {
        if (y) {
            for (long i = 0; i < n; i++) {
                const float gi = g[i], yi = y[i];  // both loaded unconditionally, so the loop vectorises
                out[i] = k * (count * (yi > 0 ? gi : 0.0f) - a - (x[i] - mean) * inv * b);
            }
        } else {
            for (long i = 0; i < n; i++) out[i] = k * (count * g[i] - a - (x[i] - mean) * inv * b);
        }
    } else if (y) {
        for (long i = 0; i < n; i++) {
            const float gi = g[i], yi = y[i];
            out[i] = yi > 0 ? gi * k : 0.0f;
        }
    } else {
        for (long i = 0; i < n; i++) out[i] = g[i] * k;
    }
}
TK_VARIANTS(tk_batchnorm_input_grad,
            (const float *g, const float *x, const float *y, long n, const tk_batchnorm_grad *c, float *out),
            (g, x, y, n, c, out))

void tk_batchnorm_input_grad(const float *g, const float *x, const float *y, long n, const tk_batchnorm_grad *c,
                             float *out) {
    tk_batchnorm_input_grad_variant(tk_kernel()->name, g, x, y, n, c, out);
}
