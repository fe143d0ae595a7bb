// The element-wise arithmetic of autodiff (gradient sums, residual adds, the ReLU gradient), compiled per
// instruction set (variants.h). One loop per (operator, operand form), so each is a straight vector loop; the
// switch runs once per call.
#include "CKernels.h"

#include "variants.h"

#define TK_BINARY_LOOPS(EXPR)                                                                  \
    switch (operands) {                                                                        \
    case TK_SCALAR_B: {                                                                        \
        const float bs = b[0];                                                                 \
        for (long i = 0; i < n; i++) {                                                         \
            const float x = a[i], y = bs;                                                      \
            out[i] = EXPR;                                                                     \
        }                                                                                      \
        break;                                                                                 \
    }                                                                                          \
    case TK_SCALAR_A: {                                                                        \
        const float as = a[0];                                                                 \
        for (long i = 0; i < n; i++) {                                                         \
            const float x = as, y = b[i];                                                      \
            out[i] = EXPR;                                                                     \
        }                                                                                      \
        break;                                                                                 \
    }                                                                                          \
    default:                                                                                   \
        for (long i = 0; i < n; i++) {                                                         \
            const float x = a[i], y = b[i];                                                    \
            out[i] = EXPR;                                                                     \
        }                                                                                      \
    }

TK_INLINE void tk_binary_body(int op, int operands, const float *a, const float *b, float *out, long n) {
    switch (op) {
    case TK_ADD: TK_BINARY_LOOPS(x + y) break;
    case TK_SUB: TK_BINARY_LOOPS(x - y) break;
    case TK_MUL: TK_BINARY_LOOPS(x * y) break;
    case TK_DIV: TK_BINARY_LOOPS(x / y) break;
    default: TK_BINARY_LOOPS(y > 0 ? x : 0.0f) break;  // TK_RELU_GRAD
    }
}
TK_VARIANTS(tk_binary, (int op, int operands, const float *a, const float *b, float *out, long n),
            (op, operands, a, b, out, n))

void tk_binary(int op, int operands, const float *a, const float *b, float *out, long n) {
    tk_binary_variant(tk_kernel()->name, op, operands, a, b, out, n);
}
