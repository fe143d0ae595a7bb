// libpng behind a C boundary: png_error's longjmp lands in this file, never in Swift.
#include "CImageCodecs.h"
#include "png_rows.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char *err;
    size_t err_size;
} tc_png_reader;

static void tc_png_error(png_structp png, png_const_charp msg) {
    tc_png_reader *r = (tc_png_reader *)png_get_error_ptr(png);
    if (r && r->err) snprintf(r->err, r->err_size, "%s", msg);
    png_longjmp(png, 1);
}

static void tc_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void tc_png_read(png_structp png, png_bytep out, png_size_t n) {
    tc_png_reader *r = (tc_png_reader *)png_get_io_ptr(png);
    if (r->size - r->pos < n) png_error(png, "unexpected end of file");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

static int tc_png_check_signature(const uint8_t *data, size_t size, char *err, size_t err_size) {
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        snprintf(err, err_size, "not a PNG file (bad signature)");
        return -1;
    }
    return 0;
}

static void tc_png_fill_info(png_structp png, png_infop info, tc_image_info *out) {
    out->width = png_get_image_width(png, info);
    out->height = png_get_image_height(png, info);
    out->source_bit_depth = png_get_bit_depth(png, info);
    out->color_type = png_get_color_type(png, info);
    out->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    out->orientation = 1;
    int ct = out->color_type;
    int alpha = (ct & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS);
    int color = (ct & PNG_COLOR_MASK_COLOR) != 0;
    out->channels = (color ? 3 : 1) + (alpha ? 1 : 0);
    out->bit_depth = out->source_bit_depth == 16 ? 16 : 8;
}

int tc_png_info(const uint8_t *data, size_t size, tc_image_info *out, char *err, size_t err_size) {
    if (tc_png_check_signature(data, size, err, err_size) != 0) return -1;
    tc_png_reader r = {data, size, 0, err, err_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, tc_png_error, tc_png_warning);
    if (!png) { snprintf(err, err_size, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return -1;
    }
    png_set_read_fn(png, &r, tc_png_read);
    png_read_info(png, info);
    tc_png_fill_info(png, info, out);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int tc_png_decode(const uint8_t *data, size_t size, const tc_decode_options *opt, tc_image *out, char *err,
                  size_t err_size) {
    memset(out, 0, sizeof(*out));
    if (tc_png_check_signature(data, size, err, err_size) != 0) return -1;
    tc_png_reader r = {data, size, 0, err, err_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, tc_png_error, tc_png_warning);
    if (!png) { snprintf(err, err_size, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return -1;
    }
    png_set_read_fn(png, &r, tc_png_read);
    png_set_chunk_malloc_max(png, 64u << 20);
#ifdef PNG_IGNORE_ADLER32
    // Every IDAT chunk's CRC-32 is still checked, so damaged data is caught there; zlib's second checksum over the
    // inflated bytes is skipped (as Chromium does), a few per cent of decode time.
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
    png_read_info(png, info);
    tc_png_fill_info(png, info, &out->info);
    uint64_t count = (uint64_t)out->info.width * out->info.height;
    if (opt && opt->max_pixels && count > opt->max_pixels) {
        snprintf(err, err_size, "image is %ux%u = %llu pixels, over the limit of %llu", out->info.width,
                 out->info.height, (unsigned long long)count, (unsigned long long)opt->max_pixels);
        png_longjmp(png, 1);
    }
    int ct = out->info.color_type, depth = out->info.source_bit_depth;
    int rgba8 = opt && opt->force_rgba8;
    if (opt && opt->palette_indices) {
        if (ct != PNG_COLOR_TYPE_PALETTE) {
            snprintf(err, err_size, "not an indexed (palette) PNG");
            png_longjmp(png, 1);
        }
        if (depth < 8) png_set_packing(png);  // one byte per index
        rgba8 = 0;
        out->info.channels = 1;
    } else if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
    }
    if (opt && opt->palette_indices) {
        // Indices stay as they are: no tRNS expansion, no colour conversion.
    } else {
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) {
        if (rgba8) png_set_scale_16(png);
        else png_set_swap(png);  // host (little-endian) order
    }
    if (rgba8) {
        if (!(ct & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
        if (out->info.channels == 1 || out->info.channels == 3) png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
    }
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    int bits = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)out->info.width * channels * (bits / 8)) {
        snprintf(err, err_size, "unexpected row layout after expansion");
        png_longjmp(png, 1);
    }
    out->info.channels = channels;
    out->info.bit_depth = bits;
    uint64_t total = (uint64_t)rowbytes * out->info.height;
    if (opt && opt->max_bytes && total > opt->max_bytes) {
        snprintf(err, err_size, "image is %ux%u with %d %d-bit samples a pixel = %llu bytes, over the limit of %llu",
                 out->info.width, out->info.height, channels, bits, (unsigned long long)total,
                 (unsigned long long)opt->max_bytes);
        png_longjmp(png, 1);
    }
    uint32_t begin = opt ? opt->row_begin : 0, end = opt ? opt->row_end : 0;
    if (end > out->info.height) end = out->info.height;
    // 8-bit rows that need no conversion come from tc_png_read_rows (libpng's own row loop is the slow part of
    // decoding: its Paeth filter for 1-byte pixels costs more than inflating); libpng has checked the header.
    int source_channels = (ct & PNG_COLOR_MASK_COLOR ? 3 : 1) + (ct & PNG_COLOR_MASK_ALPHA ? 1 : 0);
    int identity = depth == 8 && bits == 8 && ct != PNG_COLOR_TYPE_PALETTE && channels == source_channels &&
                   !png_get_valid(png, info, PNG_INFO_tRNS) && !out->info.interlaced;
    if (identity && !(opt && opt->libpng_rows) && r.pos >= 8 && memcmp(data + r.pos - 4, "IDAT", 4) == 0) {
        if (!(end > 0 && begin < end)) {
            begin = 0;
            end = out->info.height;
        }
        out->bytes = rowbytes * (end - begin);
        pixels = malloc(out->bytes ? out->bytes : 1);
        if (!pixels) {
            snprintf(err, err_size, "out of memory for %zu bytes of pixels", out->bytes);
            png_longjmp(png, 1);
        }
        if (tc_png_read_rows(data, size, r.pos - 8, rowbytes, channels, begin, end, pixels, err, err_size) != 0)
            png_longjmp(png, 1);
        out->pixels = pixels;
        out->first_row = begin;
        out->row_count = end - begin;
        png_destroy_read_struct(&png, &info, NULL);
        return 0;
    }
    if (end > 0 && begin < end && !out->info.interlaced && (begin > 0 || end < out->info.height)) {
        // Rows are filtered against the row above, so every row up to `end` is decoded; only the window is kept.
        out->bytes = rowbytes * (end - begin);
        pixels = malloc(out->bytes);
        rows = malloc(rowbytes);  // scratch row for the rows above the window
        if (!pixels || !rows) {
            snprintf(err, err_size, "out of memory for %zu bytes of pixels", out->bytes);
            png_longjmp(png, 1);
        }
        for (uint32_t y = 0; y < end; y++)
            png_read_row(png, y < begin ? (png_bytep)rows : pixels + (size_t)(y - begin) * rowbytes, NULL);
        if (end == out->info.height) png_read_end(png, NULL);
        free(rows);
        out->pixels = pixels;
        out->first_row = begin;
        out->row_count = end - begin;
        png_destroy_read_struct(&png, &info, NULL);
        return 0;
    }
    out->bytes = rowbytes * out->info.height;
    pixels = malloc(out->bytes ? out->bytes : 1);
    rows = malloc(sizeof(png_bytep) * (out->info.height ? out->info.height : 1));
    if (!pixels || !rows) {
        snprintf(err, err_size, "out of memory for %zu bytes of pixels", out->bytes);
        png_longjmp(png, 1);
    }
    for (uint32_t y = 0; y < out->info.height; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    out->pixels = pixels;
    out->first_row = 0;
    out->row_count = out->info.height;
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

typedef struct {
    uint8_t *data;
    size_t size, capacity;
    int failed;
} tc_buffer;

static void tc_png_write(png_structp png, png_bytep in, png_size_t n) {
    tc_buffer *b = (tc_buffer *)png_get_io_ptr(png);
    if (b->size + n > b->capacity) {
        size_t cap = b->capacity ? b->capacity : 4096;
        while (cap < b->size + n) cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) png_error(png, "out of memory");
        b->data = p;
        b->capacity = cap;
    }
    memcpy(b->data + b->size, in, n);
    b->size += n;
}

static void tc_png_flush(png_structp png) { (void)png; }

int tc_png_encode(const void *pixels, uint32_t width, uint32_t height, int channels, int bit_depth,
                  const uint8_t *palette, int palette_size, uint8_t **out, size_t *out_size, char *err,
                  size_t err_size) {
    *out = NULL;
    *out_size = 0;
    if (width == 0 || height == 0 || channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) ||
        (palette && (channels != 1 || bit_depth != 8 || palette_size < 1 || palette_size > 256))) {
        snprintf(err, err_size, "cannot encode %ux%u, %d channels, %d-bit%s", width, height, channels, bit_depth,
                 palette ? " with a palette" : "");
        return -1;
    }
    tc_png_reader r = {NULL, 0, 0, err, err_size};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &r, tc_png_error, tc_png_warning);
    if (!png) { snprintf(err, err_size, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    tc_buffer buf = {NULL, 0, 0, 0};
    tc_buffer *volatile bp = &buf;
    if (!info || setjmp(png_jmpbuf(png))) {
        free(bp->data);
        png_destroy_write_struct(&png, info ? &info : NULL);
        return -1;
    }
    png_set_write_fn(png, &buf, tc_png_write, tc_png_flush);
    static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                PNG_COLOR_TYPE_RGB_ALPHA};
    int type = palette ? PNG_COLOR_TYPE_PALETTE : types[channels - 1];
    png_set_IHDR(png, info, width, height, bit_depth, type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_color colors[256];
        for (int i = 0; i < palette_size; i++) {
            colors[i].red = palette[3 * i];
            colors[i].green = palette[3 * i + 1];
            colors[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, colors, palette_size);
    }
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    if (bit_depth == 16) png_set_swap(png);
    size_t rowbytes = (size_t)width * channels * (bit_depth / 8);
    for (uint32_t y = 0; y < height; y++) png_write_row(png, (png_const_bytep)pixels + (size_t)y * rowbytes);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = buf.data;
    *out_size = buf.size;
    return 0;
}

void tc_free(void *p) { free(p); }

const char *tc_png_version(void) { return png_get_libpng_ver(NULL); }
