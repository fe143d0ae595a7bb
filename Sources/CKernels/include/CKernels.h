// Tessera's SIMD micro-kernels: packed SGEMM tiles, operand packing, im2col and fused epilogues.
#ifndef TESSERA_CKERNELS_H
#define TESSERA_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// C[m x n] (=|+=) sum_k A[k][0..mr) * B_k[0..nr) over kc steps, where A is a packed panel and
/// B_k = b + boff[k] (a packed panel uses boff[k] = k * nr; an unpacked source uses any row offsets).
typedef void (*tk_gemm_kernel_fn)(long kc, const float *a, const float *b, const long *boff, float *c, long ldc,
                                  int m, int n, int accumulate);

/// A micro-kernel variant and its register-tile shape.
typedef struct {
    const char *name;
    int mr;
    int nr;
    tk_gemm_kernel_fn kernel;
} tk_kernel_info;

/// The best variant this CPU supports, or the one named by TESSERA_ISA (scalar | avx2 | avx512).
const tk_kernel_info *tk_kernel(void);
/// A named variant if this CPU supports it, else NULL.
const tk_kernel_info *tk_kernel_named(const char *name);
/// The one-row (mr = 1) kernel of the same instruction set as tk_kernel(), for products with 1-3 rows.
const tk_kernel_info *tk_narrow_kernel(void);
const tk_kernel_info *tk_narrow_kernel_named(const char *name);

/// Packs A[m][k] = src[m*rs + k*cs] (m < mc, k < kc) into panels of mr rows, zero-padding the last.
void tk_pack_a(const float *src, long rs, long cs, int mc, int kc, int mr, float *dst);
/// Packs A[m][k] = src[(k / inner) * outer_stride + m * rs + k % inner] (m < mc, k in k0..<k0+kc): the weight of
/// a convolution read with its output and input channel axes swapped, as the input gradient needs it.
void tk_pack_a_swapped(const float *src, long rs, long inner, long outer_stride, int mc, long k0, int kc, int mr,
                       float *dst);
/// Packs rows r < rows of `base` (row r starts at base + row_offsets[r]) over columns q0..<q0+kc transposed, in
/// panels of `width` rows: dst[p*kc*width + q*width + i] = row (p*width + i) at column q0 + q (0 past `rows`).
/// This is the A (width = mr) or B (width = nr) operand of a product that reduces along rows.
void tk_pack_transposed(const float *base, const long *row_offsets, int rows, long q0, int kc, int width, float *dst);
/// Packs B[k][n] = src[k*rs + n*cs] (k < kc, n < nc) into panels of nr columns, zero-padding the last.
void tk_pack_b(const float *src, long rs, long cs, int kc, int nc, int nr, float *dst);

/// Geometry of one image of one convolution group, spatial dims padded to 3 (D, H, W).
/// Forward (transposed == 0): in = out * stride + k * dilation - pad.
/// Transposed (transposed == 1): in = (out + pad - k * dilation) / stride where divisible.
typedef struct {
    const float *x;      // [channels][id][ih][iw]
    int channels;
    int id, ih, iw;      // source spatial size
    int od, oh, ow;      // column (pixel) space size
    int kd, kh, kw;
    int sd, sh, sw;
    int pd, ph, pw;
    int dd, dh, dw;
    int transposed;
} tk_conv_geom;

/// Writes im2col rows k0..k0+kc (row k = (channel, kz, ky, kx)) for columns n0..n0+nc, packed in
/// panels of nr columns (dst[j*kc*nr + k*nr + i]); columns past nc in the last panel are zero.
void tk_im2col_packed(const tk_conv_geom *g, long k0, int kc, long n0, int nc, int nr, float *dst);
/// Writes im2col rows k0..k0+kc for columns n0..n0+nc row-major: dst[k*ld + n].
void tk_im2col_rows(const tk_conv_geom *g, long k0, int kc, long n0, int nc, float *dst, long ld);

/// The scatter of a transposed product computed as columns: for each row r < rows, tap t and source pixel s in
/// s0..<s0+ns, out[r][col(s, t)] += cols[(r * taps + t) * ldcols + s - s0], where col(s, t) = s * stride +
/// t * dilation - pad per axis (g's forward relation, source size id/ih/iw, column size od/oh/ow) where it is
/// inside the column space. `out` holds `rows` planes of the column space.
void tk_col2im_add(const tk_conv_geom *g, int rows, const float *cols, long ldcols, long s0, int ns, float *out);

/// C[i][j] (=|+=) sum_{q < len} A[i*lda + q] * B[boff[j] + q] for i < m, j < n (reduction along rows).
void tk_gemm_dot(int m, int n, long len, const float *a, long lda, const float *b, const long *boff,
                 float *c, long ldc, int accumulate);
/// tk_gemm_dot through one named variant (scalar | avx2 | avx512), which the CPU must support.
void tk_gemm_dot_variant(const char *isa, int m, int n, long len, const float *a, long lda, const float *b,
                         const long *boff, float *c, long ldc, int accumulate);

// Vector loops (vector_loops.c): each has a `_variant(isa, ...)` form (scalar | avx2 | avx512, which the CPU must
// support) that tests compare; the plain form runs the active variant.

/// y[c][i] = act(y[c][i] * scale[c] + shift[c]) for c < rows, i < cols (row stride ld).
/// scale or shift may be NULL (1 and 0); act: 0 none, 1 relu.
void tk_epilogue(float *y, long ld, int rows, int cols, const float *scale, const float *shift, int act);
void tk_epilogue_variant(const char *isa, float *y, long ld, int rows, int cols, const float *scale,
                         const float *shift, int act);
/// y[i] = act(x[i] * scale + shift) for i < n (batch-norm application); act: 0 none, 1 relu.
void tk_affine(const float *x, float *y, long n, float scale, float shift, int act);
void tk_affine_variant(const char *isa, const float *x, float *y, long n, float scale, float shift, int act);
/// One output row of a 2x2 stride-2 max pool over input rows r0 and r1 (2 * ow values each); argmax (may be
/// NULL) gets the winner's index in the window (0-3). NaN propagates, and ties keep the first value, as in torch.
void tk_maxpool2x2_row(const float *r0, const float *r1, long ow, float *out, uint8_t *argmax);
void tk_maxpool2x2_row_variant(const char *isa, const float *r0, const float *r1, long ow, float *out,
                               uint8_t *argmax);

/// Geometry of one plane of a 2-d pooling window sweep.
typedef struct {
    int h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
} tk_pool_geom;
/// One plane of a 2-d max pool (torch's rules: padding never wins, NaN propagates, ties keep the first); argmax
/// (may be NULL) gets each winner's flat index in the plane.
void tk_maxpool2d_plane(const float *src, const tk_pool_geom *g, float *dst, int32_t *argmax);
void tk_maxpool2d_plane_variant(const char *isa, const float *src, const tk_pool_geom *g, float *dst, int32_t *argmax);

/// Hyper-parameters of one Adam step (torch.optim.Adam / AdamW).
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    /// lr / (1 - beta1^t) and sqrt(1 - beta2^t).
    float step_size, bias_correction2_sqrt;
    /// AdamW: weight decay applied to the parameter, not added to the gradient.
    int decoupled;
} tk_adam_params;
/// One Adam step over n parameters p with gradients g and moments m, v (updated in place).
void tk_adam(float *p, const float *g, float *m, float *v, long n, const tk_adam_params *h);
void tk_adam_variant(const char *isa, float *p, const float *g, float *m, float *v, long n, const tk_adam_params *h);

/// One SGD step (torch.optim.SGD): d = g + weight_decay * p; with momentum, buf = momentum * buf + d (buf = d
/// on the first step, `first` set) and d = nesterov ? d + momentum * buf : buf; then p -= lr * d.
typedef struct {
    float lr, momentum, weight_decay;
    int nesterov, first;
} tk_sgd_params;
/// buf may be NULL when momentum is 0.
void tk_sgd(float *p, const float *g, float *buf, long n, const tk_sgd_params *h);
void tk_sgd_variant(const char *isa, float *p, const float *g, float *buf, long n, const tk_sgd_params *h);

// Batch-norm loops (batchnorm_loops.c), with `_variant` forms as above (the variant writes its result through the
// last pointer).

/// Sum of x[0..n) in 16 lanes.
float tk_sum(const float *x, long n);
void tk_sum_variant(const char *isa, const float *x, long n, float *sum);
/// Sum of (x[i] - mean)^2.
float tk_squared_deviation(const float *x, long n, float mean);
void tk_squared_deviation_variant(const char *isa, const float *x, long n, float mean, float *result);
/// sum_g = sum of g'[i], sum_gx = sum of g'[i] * (x[i] - mean), where g' = g, or g where y > 0 when y (a fused
/// ReLU's output) is not NULL.
void tk_gradient_moments(const float *g, const float *x, const float *y, long n, float mean, float *sum_g,
                         float *sum_gx);
void tk_gradient_moments_variant(const char *isa, const float *g, const float *x, const float *y, long n, float mean,
                                 float *sum_g, float *sum_gx);
/// One channel's constants of the batch-norm input gradient.
typedef struct {
    /// training: weight * inv_std / count; evaluation: weight * inv_std.
    float k;
    float count, mean, inv_std, sum_g, sum_gx;
    int training;
} tk_batchnorm_grad;
/// out[i] = k * (count * g'[i] - sum_g - (x[i] - mean) * inv_std * sum_gx) in training, k * g'[i] in evaluation,
/// with g' as in tk_gradient_moments.
void tk_batchnorm_input_grad(const float *g, const float *x, const float *y, long n, const tk_batchnorm_grad *c,
                             float *out);
void tk_batchnorm_input_grad_variant(const char *isa, const float *g, const float *x, const float *y, long n,
                                     const tk_batchnorm_grad *c, float *out);

// Element-wise loops (elementwise_loops.c), with `_variant` forms as above.

/// The element-wise operators with a vector loop.
typedef enum { TK_ADD = 0, TK_SUB, TK_MUL, TK_DIV, TK_RELU_GRAD } tk_binary_op;
/// How the two operands of tk_binary are read.
typedef enum { TK_BOTH_ARRAYS = 0, TK_SCALAR_B, TK_SCALAR_A } tk_operands;
/// out[i] = op(a[i], b[i]), with a or b a single value by `operands`. TK_RELU_GRAD is (a, b) -> b > 0 ? a : 0
/// (a gradient through a ReLU whose output is b).
void tk_binary(int op, int operands, const float *a, const float *b, float *out, long n);
void tk_binary_variant(const char *isa, int op, int operands, const float *a, const float *b, float *out, long n);

// Softmax and cross-entropy loops (softmax_loops.c), with `_variant` forms as above.

/// (log-)softmax over `channels` rows `stride` floats apart, for `count` pixels: out = x - logsumexp(x) (log) or
/// exp(x - max) / sum. NaN propagates.
void tk_softmax_channels(const float *x, float *out, long channels, long stride, long count, int log);
void tk_softmax_channels_variant(const char *isa, const float *x, float *out, long channels, long stride, long count,
                                 int log);
/// The vectorisable exp and log those loops use, element by element (for tests).
void tk_exp_log_variant(const char *isa, const float *x, float *exp_out, float *log_out, long n);
/// Constants of the cross-entropy gradient (torch's cross_entropy with class weights and label smoothing).
typedef struct {
    /// `channels` class weights and their sum.
    const float *weights;
    float weight_total;
    float smoothing;
    /// The upstream gradient divided by the summed weights of the counted targets.
    float scale;
    /// Targets equal to ignore_index (when has_ignore) get a zero gradient.
    float ignore_index;
    int has_ignore;
} tk_cross_entropy_grad_params;
/// grad[j][i] = scale * ((1 - s) w[y] (p - [j == y]) + s / C (p * weight_total - w[j])), p = exp(logp[j][i]),
/// y = target[i] (class ids as floats), for `count` pixels of `channels` rows `stride` apart.
void tk_cross_entropy_grad(const float *logp, const float *target, float *grad, long channels, long stride,
                           long count, const tk_cross_entropy_grad_params *h);
void tk_cross_entropy_grad_variant(const char *isa, const float *logp, const float *target, float *grad,
                                   long channels, long stride, long count, const tk_cross_entropy_grad_params *h);

/// Runs `iterations` rounds of independent register-only FMAs with the named variant (scalar | avx2 | avx512, which
/// the CPU must support) and returns the floating-point operations done.
double tk_fma_peak_loop(const char *isa, long iterations);

// Augmentation kernels (resample.c).

/// dst[y * ow + x] = src[start + x * dx + y * dy] for 32-bit elements (flips, rotations by 90 degrees).
void tk_remap32(const uint32_t *src, long start, long dx, long dy, long ow, long oh, uint32_t *dst);
/// Planar image bilinearly and labels by nearest neighbour at source coordinates (sx[i], sy[i]), mirrored borders.
void tk_warp_bilinear(const float *src, const int32_t *labels, long w, long h, long channels, const float *sx,
                      const float *sy, long out_n, float *dst, int32_t *dst_labels);
/// tk_warp_bilinear through one named variant (scalar | avx2 | avx512), which the CPU must support.
void tk_warp_bilinear_variant(const char *isa, const float *src, const int32_t *labels, long w, long h, long channels,
                              const float *sx, const float *sy, long out_n, float *dst, int32_t *dst_labels);
/// out[y][x] = sum_k weights[4y+k] * rows[clamp(base[y]-1+k, 0, n-1)][x] + (along_x ? x : y), for n rows of w.
void tk_field_rows(const float *rows, long n, const int32_t *base, const float *weights, long w, long h, int along_x,
                   float *out);
/// Interleaved samples to planes, times scale.
void tk_planar_from_u8(const uint8_t *src, long pixels, long channels, float scale, float *dst);
void tk_planar_from_u16(const uint16_t *src, long pixels, long channels, float scale, float *dst);

// Winograd F(4x4, 3x3) transforms (winograd.c). xi indexes the 36 points of a 6x6 transformed tile; tiles are
// numbered row-major, tiles_x per tile row; tile (ty, tx) covers output rows 4ty..4ty+3, columns 4tx..4tx+3.

/// U[xi * xi_stride + m * ldu + c] = (G g G^T)[xi] for the 3x3 filter g[tap] = w[m * ms + c * cs + tap]
/// (tap = 3 ky + kx, or 8 - that when flip: the rotated filter of an input gradient).
void tk_winograd_filter(const float *w, long ms, long cs, int rows, int channels, int flip, float *u, long xi_stride,
                        long ldu);
/// V[xi * xi_stride + c * ldv + i] = (B^T d B)[xi] for tiles tile0 + i (i < count) of `channels` planes of an
/// ih x iw source (plane floats apart) read from row 4 ty - pad_top, column 4 tx - pad_left, zero outside.
/// scratch: tk_winograd_input_scratch(count) floats.
void tk_winograd_input(const float *src, long plane, int ih, int iw, int channels, int pad_top, int pad_left,
                       long tiles_x, long tile0, int count, float *v, long xi_stride, long ldv, float *scratch);
void tk_winograd_input_variant(const char *isa, const float *src, long plane, int ih, int iw, int channels,
                               int pad_top, int pad_left, long tiles_x, long tile0, int count, float *v,
                               long xi_stride, long ldv, float *scratch);
long tk_winograd_input_scratch(long count);
/// out[m * out_plane + y * ow + x] = act(scale[m] * (A^T M A)[y, x] + shift[m]) for the parts of tiles tile0 + i
/// (i < count) inside oh x ow, from M[xi * xi_stride + m * ldm + i], m < rows. scale, shift may be NULL; relu 0 or 1.
/// scratch: tk_winograd_output_scratch(count) floats.
void tk_winograd_output(const float *mm, long xi_stride, long ldm, int rows, long tiles_x, long tile0, int count,
                        float *out, long out_plane, int oh, int ow, const float *scale, const float *shift, int relu,
                        float *scratch);
void tk_winograd_output_variant(const char *isa, const float *mm, long xi_stride, long ldm, int rows, long tiles_x,
                                long tile0, int count, float *out, long out_plane, int oh, int ow, const float *scale,
                                const float *shift, int relu, float *scratch);
long tk_winograd_output_scratch(long count);
/// W[xi * xi_stride + m * ldw + i] = (A w A^T)[xi] for the 4x4 tiles tile0 + i (i < count) of `rows` output-gradient
/// planes (oh x ow, plane floats apart; zero outside). scratch: tk_winograd_gradient_scratch(count) floats.
void tk_winograd_gradient(const float *g, long plane, int oh, int ow, int rows, long tiles_x, long tile0, int count,
                          float *w, long xi_stride, long ldw, float *scratch);
void tk_winograd_gradient_variant(const char *isa, const float *g, long plane, int oh, int ow, int rows, long tiles_x,
                                  long tile0, int count, float *w, long xi_stride, long ldw, float *scratch);
long tk_winograd_gradient_scratch(long count);
/// dw[m * ms + c * cs + 3 ky + kx] = (G^T S G)[ky][kx] for S[xi] = s[xi * xi_stride + m * lds + c].
void tk_winograd_filter_gradient(const float *s, long xi_stride, long lds, int rows, int channels, float *dw, long ms,
                                 long cs);

/// One output channel of a 3x3 stride-1 convolution read straight from `channels` source planes (height x width,
/// zero outside): out[y * ldo + x] = sum_c,ky,kx w[9c + 3ky + kx] planes[c][first + y + r0 + ky][x + c0 + kx] for
/// output rows first + y, y < rows, and x < out_width; `out` points at output row `first`.
void tk_conv3x3_single_row(const float *const *planes, int channels, int height, int width, int r0, int c0,
                           const float *w, int first, int rows, int out_width, float *out, long ldo);
void tk_conv3x3_single_row_variant(const char *isa, const float *const *planes, int channels, int height, int width,
                                   int r0, int c0, const float *w, int first, int rows, int out_width, float *out,
                                   long ldo);

/// Prefetches (towards L2) `rows` runs of `count` floats, `row_stride` floats apart, starting at `first`.
void tk_prefetch_rows(const float *first, long rows, long row_stride, long count);

/// glibc: serve blocks below mmap_threshold bytes from the heap and keep up to trim_threshold freed bytes.
void tk_retain_freed_memory(int mmap_threshold, int trim_threshold);
/// Gives the heap's freed pages back to the system (glibc malloc_trim): a long stream's peak stays its working set.
void tk_release_freed_memory(void);
/// `bytes` of memory ending exactly at an inaccessible page (any overrun faults), or NULL; free with tk_guarded_free.
void *tk_guarded_alloc(size_t bytes);
void tk_guarded_free(void *p, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
