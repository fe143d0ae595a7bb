// PNG row unfiltering (PNG spec section 9), with a wavefront kernel for runs of 1-byte-per-pixel Paeth rows.
//
// libpng unfilters a gray 8-bit Paeth row one byte after another: each byte waits for its left neighbour, so the
// loop runs at the latency of the predictor (about 20 cycles a byte here). Rows are independent along
// anti-diagonals, though: byte (y, x) needs only (y, x-1), (y-1, x) and (y-1, x-1). The kernel below runs 16 rows
// side by side, row k of a band lagging k columns behind row 0, so one vector step decodes one diagonal of 16
// bytes; the row above a lane's byte is the lane above it one step earlier.
#include "png_rows.h"

#include <stddef.h>
#include <string.h>

enum { tc_none = 0, tc_sub = 1, tc_up = 2, tc_avg = 3, tc_paeth = 4 };

static inline int tc_abs(int v) { return v < 0 ? -v : v; }

static inline int tc_paeth_predict(int a, int b, int c) {
    int p = b - c, q = a - c;
    int pa = tc_abs(p), pb = tc_abs(q), pc = tc_abs(p + q);
    int bc = pb <= pc ? b : c;
    int pbc = pb <= pc ? pb : pc;
    return pa <= pbc ? a : bc;
}

/// One row with any filter; `prev` is the unfiltered row above (zeros for the first row).
static void tc_unfilter_row(int filter, const uint8_t *in, uint8_t *out, const uint8_t *prev, size_t n, int bpp) {
    size_t i;
    switch (filter) {
    case tc_none:
        memcpy(out, in, n);
        break;
    case tc_sub:
        for (i = 0; i < n && i < (size_t)bpp; i++) out[i] = in[i];
        for (; i < n; i++) out[i] = (uint8_t)(in[i] + out[i - bpp]);
        break;
    case tc_up:
        for (i = 0; i < n; i++) out[i] = (uint8_t)(in[i] + prev[i]);
        break;
    case tc_avg:
        for (i = 0; i < n && i < (size_t)bpp; i++) out[i] = (uint8_t)(in[i] + (prev[i] >> 1));
        for (; i < n; i++) out[i] = (uint8_t)(in[i] + ((out[i - bpp] + prev[i]) >> 1));
        break;
    default:  // Paeth: a = left, b = above, c = above-left (zero off the left edge)
        for (i = 0; i < n && i < (size_t)bpp; i++) out[i] = (uint8_t)(in[i] + prev[i]);
        for (; i < n; i++) out[i] = (uint8_t)(in[i] + tc_paeth_predict(out[i - bpp], prev[i], prev[i - bpp]));
        break;
    }
}

// 16 lanes of int16 (one AVX2 register); 32 lanes with AVX-512BW measured slower (0.60 vs 0.42 ms per 512^2).
typedef int16_t tc_v16 __attribute__((vector_size(32)));
typedef uint8_t tc_u8x16 __attribute__((vector_size(16)));


/// Transposes a 16 x 16 byte block: v[k][j] becomes v[j][k].
static inline void tc_transpose16(tc_u8x16 v[16]) {
    tc_u8x16 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = __builtin_shufflevector(v[2 * i], v[2 * i + 1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        t[2 * i + 1] = __builtin_shufflevector(v[2 * i], v[2 * i + 1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14,
                                               30, 15, 31);
    }
    // Stage one interleaves rows 2i, 2i+1 byte by byte; the next three interleave 2-, 4- and 8-byte units, after
    // which each vector is one column.
    typedef uint16_t u16x8 __attribute__((vector_size(16)));
    typedef uint32_t u32x4 __attribute__((vector_size(16)));
    typedef uint64_t u64x2 __attribute__((vector_size(16)));
    tc_u8x16 u[16];
    for (int g = 0; g < 4; g++)
        for (int h = 0; h < 2; h++) {
            u16x8 a = (u16x8)t[4 * g + h], b = (u16x8)t[4 * g + 2 + h];
            u[4 * g + 2 * h] = (tc_u8x16)__builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
            u[4 * g + 2 * h + 1] = (tc_u8x16)__builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
        }
    for (int g = 0; g < 2; g++)
        for (int h = 0; h < 4; h++) {
            u32x4 a = (u32x4)u[8 * g + h], b = (u32x4)u[8 * g + 4 + h];
            t[8 * g + 2 * h] = (tc_u8x16)__builtin_shufflevector(a, b, 0, 4, 1, 5);
            t[8 * g + 2 * h + 1] = (tc_u8x16)__builtin_shufflevector(a, b, 2, 6, 3, 7);
        }
    for (int h = 0; h < 8; h++) {
        u64x2 a = (u64x2)t[h], b = (u64x2)t[8 + h];
        u[2 * h] = (tc_u8x16)__builtin_shufflevector(a, b, 0, 2);
        u[2 * h + 1] = (tc_u8x16)__builtin_shufflevector(a, b, 1, 3);
    }
    for (int m = 0; m < 16; m++) v[m] = u[m];  // u[m]: column m of the block
}

/// The columns [lo, hi) of 0 ... 15 that a lane's block starting at row byte x0 has inside a row of w bytes.
static inline void tc_lane_span(ptrdiff_t x0, size_t w, int *lo, int *hi) {
    *lo = x0 < 0 ? (int)(x0 < -TC_PAETH_LANES ? TC_PAETH_LANES : -x0) : 0;
    ptrdiff_t room = (ptrdiff_t)w - x0;
    *hi = room >= TC_PAETH_LANES ? TC_PAETH_LANES : (room < 0 ? 0 : (int)room);
}

/// Lane bytes x0 ... x0 + 15 of a row of w bytes, zeros outside it (blocks at the row's ends).
static inline tc_u8x16 tc_load_edge(const uint8_t *row, ptrdiff_t x0, size_t w) {
    uint8_t bytes[TC_PAETH_LANES] = {0};
    int lo, hi;
    tc_lane_span(x0, w, &lo, &hi);
    if (lo < hi) memcpy(bytes + lo, row + x0 + lo, (size_t)(hi - lo));
    tc_u8x16 v;
    memcpy(&v, bytes, sizeof v);
    return v;
}

/// Stores the part of lane bytes x0 ... x0 + 15 that lies inside a row of w bytes.
static inline void tc_store_edge(uint8_t *row, ptrdiff_t x0, size_t w, tc_u8x16 v) {
    uint8_t bytes[TC_PAETH_LANES];
    memcpy(bytes, &v, sizeof v);
    int lo, hi;
    tc_lane_span(x0, w, &lo, &hi);
    if (lo < hi) memcpy(row + x0 + lo, bytes + lo, (size_t)(hi - lo));
}

/// Paeth-unfilters `rows` (1..16) consecutive 1-byte-per-pixel rows of w bytes.
__attribute__((target_clones("avx2", "default")))
static void tc_paeth_band(const uint8_t *const *rows_in, uint8_t *const *rows_out, const uint8_t *prev, int rows,
                          size_t w) {
    enum { L = TC_PAETH_LANES };
    // Local copies of the row pointers: byte stores could alias the caller's arrays, these they cannot.
    const uint8_t *in[L];
    uint8_t *out[L];
    for (int k = 0; k < rows; k++) {
        in[k] = rows_in[k];
        out[k] = rows_out[k];
    }
    size_t steps = w + (size_t)rows - 1;
    const tc_v16 zero = {0}, low = zero + 255;
    tc_v16 o = zero, above_left = zero;  // o: every lane's byte of the previous step (its left neighbour)
    for (size_t t0 = 0; t0 < steps; t0 += L) {
        // Lane k's byte at step t is its row's byte t - k: 16 steps are a 16 x 16 block, transposed.
        tc_u8x16 v[L] = {{0}};
        int inside = t0 >= L - 1 && t0 + L <= w;  // every lane's 16 bytes lie within its row
        if (inside)
            for (int k = 0; k < rows; k++) memcpy(&v[k], in[k] + t0 - k, sizeof v[k]);
        else
            for (int k = 0; k < rows; k++) v[k] = tc_load_edge(in[k], (ptrdiff_t)t0 - k, w);
        tc_transpose16(v);  // v[j]: the 16 lanes' bytes of step t0 + j
        for (int j = 0; j < L; j++) {
            size_t t = t0 + j;
            // Lane k's byte above is lane k-1's previous output; lane 0's comes from the row above the band.
            tc_v16 above = __builtin_shufflevector(o, zero, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
            above[0] = t < w ? prev[t] : 0;
            tc_v16 p = above - above_left, q = o - above_left;
            tc_v16 pa = __builtin_elementwise_abs(p), pb = __builtin_elementwise_abs(q);
            tc_v16 pc = __builtin_elementwise_abs(p + q);
            tc_v16 take_b = pb <= pc;
            tc_v16 bc = (above & take_b) | (above_left & ~take_b);
            tc_v16 take_a = pa <= __builtin_elementwise_min(pb, pc);
            tc_v16 predicted = (o & take_a) | (bc & ~take_a);
            o = (__builtin_convertvector(v[j], tc_v16) + predicted) & low;
            v[j] = __builtin_convertvector(o, tc_u8x16);
            above_left = above;
        }
        tc_transpose16(v);  // back: v[k] holds row k's bytes t0 - k ... t0 - k + 15
        if (inside)
            for (int k = 0; k < rows; k++) memcpy(out[k] + t0 - k, &v[k], sizeof v[k]);
        else
            for (int k = 0; k < rows; k++) tc_store_edge(out[k], (ptrdiff_t)t0 - k, w, v[k]);
    }
}

int tc_png_unfilter_rows(const uint8_t *filtered, uint8_t *const *out, const uint8_t *prev, int rows, size_t rowbytes,
                         int bpp) {
    for (int y = 0; y < rows; y++)
        if (filtered[(size_t)y * (rowbytes + 1)] > tc_paeth) return -1;
    int y = 0;
    while (y < rows) {
        const uint8_t *above = y == 0 ? prev : out[y - 1];
        int run = 0;
        if (bpp == 1)
            while (y + run < rows && run < TC_PAETH_LANES && filtered[(size_t)(y + run) * (rowbytes + 1)] == tc_paeth)
                run++;
        if (run >= 2) {
            const uint8_t *in[TC_PAETH_LANES];
            for (int k = 0; k < run; k++) in[k] = filtered + (size_t)(y + k) * (rowbytes + 1) + 1;
            tc_paeth_band(in, out + y, above, run, rowbytes);
            y += run;
        } else {
            const uint8_t *row = filtered + (size_t)y * (rowbytes + 1);
            tc_unfilter_row(row[0], row + 1, out[y], above, rowbytes, bpp);
            y++;
        }
    }
    return 0;
}
