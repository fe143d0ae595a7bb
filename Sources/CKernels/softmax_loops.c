// Softmax over channels and the cross-entropy gradient, compiled per instruction set (variants.h). The loops run
// across pixels (contiguous in [C, H*W]), so each channel step is a vector step; exp and log are the polynomial
// forms below, which the compiler vectorises (a libm call per element would not be).
#include "CKernels.h"

#include <string.h>

#include "variants.h"

TK_INLINE float tk_bits_to_float(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

TK_INLINE int32_t tk_float_to_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

// e^x, within 2 ulp of expf over the normal range (Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, a degree-6
// polynomial for e^r, 2^n put in exponent bits); 0 below -87.3 (where e^x is subnormal), +inf above 88.7,
// NaN kept.
TK_INLINE float tk_expf(float x) {
    const float clamped = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    const float n = __builtin_rintf(clamped * 1.44269504088896341f);
    float r = clamped - n * 0.693359375f;
    r -= n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    // 2^n in two factors: n reaches 128 just below 88.7, past the largest exponent one float holds.
    const float half = __builtin_floorf(n * 0.5f);
    const float y = p * tk_bits_to_float(((int32_t)half + 127) << 23) * tk_bits_to_float(((int32_t)(n - half) + 127) << 23);
    return x != x ? x : (x < -87.3f ? 0.0f : (x > 88.7f ? __builtin_inff() : y));
}

// log x for positive normal x, within 2 ulp of logf (Cephes' logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), a
// degree-9 polynomial in m - 1); NaN for x <= 0 or NaN, +inf for +inf.
TK_INLINE float tk_logf(float x) {
    const int32_t bits = tk_float_to_bits(x);
    float e = (float)((bits >> 23) - 127);
    float m = tk_bits_to_float((bits & 0x007fffff) | 0x3f800000);  // [1, 2)
    const int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1.0f : e;
    const float t = m - 1.0f, z = t * t;
    float y = 7.0376836292e-2f;
    y = y * t - 1.1514610310e-1f;
    y = y * t + 1.1676998740e-1f;
    y = y * t - 1.2420140846e-1f;
    y = y * t + 1.4249322787e-1f;
    y = y * t - 1.6668057665e-1f;
    y = y * t + 2.0000714765e-1f;
    y = y * t - 2.4999993993e-1f;
    y = y * t + 3.3333331174e-1f;
    y = y * t * z;
    y += -2.12194440e-4f * e;
    y += -0.5f * z;
    const float r = t + y + 0.693359375f * e;
    return x > 0.0f && x < __builtin_inff() ? r : (x == __builtin_inff() ? x : __builtin_nanf(""));
}

TK_INLINE void tk_exp_log_body(const float *x, float *exp_out, float *log_out, long n) {
    for (long i = 0; i < n; i++) {
        exp_out[i] = tk_expf(x[i]);
        log_out[i] = tk_logf(x[i]);
    }
}
TK_VARIANTS(tk_exp_log, (const float *x, float *exp_out, float *log_out, long n), (x, exp_out, log_out, n))

// MARK: - softmax over channels

// Pixels in blocks of TK_PIXELS: the running max and sum stay in L1 while each channel row streams by.
#define TK_PIXELS 256

TK_INLINE void tk_softmax_channels_body(const float *x, float *out, long channels, long stride, long count,
                                        int log) {
    float mx[TK_PIXELS], s[TK_PIXELS];
    for (long i0 = 0; i0 < count; i0 += TK_PIXELS) {
        const long len = count - i0 < TK_PIXELS ? count - i0 : TK_PIXELS;
        const float *xb = x + i0;
        float *ob = out + i0;
        for (long i = 0; i < len; i++) mx[i] = xb[i];
        for (long j = 1; j < channels; j++) {
            const float *xj = xb + j * stride;
            for (long i = 0; i < len; i++) mx[i] = xj[i] > mx[i] || xj[i] != xj[i] ? xj[i] : mx[i];  // NaN wins
        }
        for (long i = 0; i < len; i++) s[i] = 0.0f;
        for (long j = 0; j < channels; j++) {
            const float *xj = xb + j * stride;
            for (long i = 0; i < len; i++) s[i] += tk_expf(xj[i] - mx[i]);
        }
        if (log) {
            for (long i = 0; i < len; i++) s[i] = mx[i] + tk_logf(s[i]);  // log-sum-exp
            for (long j = 0; j < channels; j++) {
                const float *xj = xb + j * stride;
                float *oj = ob + j * stride;
                for (long i = 0; i < len; i++) oj[i] = xj[i] - s[i];
            }
        } else {
            for (long i = 0; i < len; i++) s[i] = 1.0f / s[i];
            for (long j = 0; j < channels; j++) {
                const float *xj = xb + j * stride;
                float *oj = ob + j * stride;
                for (long i = 0; i < len; i++) oj[i] = tk_expf(xj[i] - mx[i]) * s[i];
            }
        }
    }
}
TK_VARIANTS(tk_softmax_channels, (const float *x, float *out, long channels, long stride, long count, int log),
            (x, out, channels, stride, count, log))

void tk_softmax_channels(const float *x, float *out, long channels, long stride, long count, int log) {
    tk_softmax_channels_variant(tk_kernel()->name, x, out, channels, stride, count, log);
}

// MARK: - cross-entropy gradient

TK_INLINE void tk_cross_entropy_grad_body(const float *logp, const float *target, float *grad, long channels,
                                          long stride, long count, const tk_cross_entropy_grad_params *h) {
    const float *w = h->weights;
    const float keep = 1.0f - h->smoothing, spread = h->smoothing / (float)channels;
    const float total = h->weight_total, scale = h->scale, ignore = h->ignore_index;
    const int has_ignore = h->has_ignore;
    float wy[TK_PIXELS];
    for (long i0 = 0; i0 < count; i0 += TK_PIXELS) {
        const long len = count - i0 < TK_PIXELS ? count - i0 : TK_PIXELS;
        const float *t = target + i0;
        // The target's class weight by a select per class, not a gather (segmentation has few classes).
        for (long i = 0; i < len; i++) wy[i] = 0.0f;
        for (long k = 0; k < channels; k++) {
            const float ck = (float)k, wk = w[k];
            for (long i = 0; i < len; i++) wy[i] = t[i] == ck ? wk : wy[i];
        }
        for (long j = 0; j < channels; j++) {
            const float *lj = logp + j * stride + i0;
            float *gj = grad + j * stride + i0;
            const float cj = (float)j, wj = w[j];
            for (long i = 0; i < len; i++) {
                const float p = tk_expf(lj[i]);
                const float d = keep * wy[i] * (p - (t[i] == cj ? 1.0f : 0.0f)) + spread * (p * total - wj);
                gj[i] = has_ignore && t[i] == ignore ? 0.0f : d * scale;
            }
        }
    }
}
TK_VARIANTS(tk_cross_entropy_grad,
            (const float *logp, const float *target, float *grad, long channels, long stride, long count,
             const tk_cross_entropy_grad_params *h),
            (logp, target, grad, channels, stride, count, h))

void tk_cross_entropy_grad(const float *logp, const float *target, float *grad, long channels, long stride,
                           long count, const tk_cross_entropy_grad_params *h) {
    tk_cross_entropy_grad_variant(tk_kernel()->name, logp, target, grad, channels, stride, count, h);
}
