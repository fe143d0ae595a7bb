// libjpeg(-turbo) behind a C boundary: error_exit's longjmp lands in this file, never in Swift.
#include "CImageCodecs.h"

#include <stdio.h>  // jpeglib.h needs FILE
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *err;
    size_t err_size;
    char warning[JMSG_LENGTH_MAX];
} tc_jpeg_error;

static void tc_jpeg_error_exit(j_common_ptr c) {
    tc_jpeg_error *e = (tc_jpeg_error *)c->err;
    char msg[JMSG_LENGTH_MAX];
    (*c->err->format_message)(c, msg);
    snprintf(e->err, e->err_size, "%s", msg);
    longjmp(e->jump, 1);
}

// Keeps the first warning (such as "Premature end of JPEG file") instead of printing it.
static void tc_jpeg_output_message(j_common_ptr c) {
    tc_jpeg_error *e = (tc_jpeg_error *)c->err;
    if (e->warning[0] == 0) (*c->err->format_message)(c, e->warning);
}

// Routes libjpeg's fatal errors to a longjmp into `e->jump` and keeps warnings; returns the manager to install.
static struct jpeg_error_mgr *tc_jpeg_errors(tc_jpeg_error *e, char *err, size_t err_size) {
    memset(e, 0, sizeof(*e));
    e->err = err;
    e->err_size = err_size;
    struct jpeg_error_mgr *mgr = jpeg_std_error(&e->pub);
    e->pub.error_exit = tc_jpeg_error_exit;
    e->pub.output_message = tc_jpeg_output_message;
    return mgr;
}

static uint16_t tc_rd16(const uint8_t *p, int le) { return le ? (uint16_t)(p[0] | p[1] << 8) : (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t tc_rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

// EXIF orientation (tag 0x0112 in IFD0) from an APP1 payload; 1 when absent or malformed.
static int tc_exif_orientation(const uint8_t *p, size_t n) {
    if (n < 14 || memcmp(p, "Exif\0\0", 6) != 0) return 1;
    const uint8_t *t = p + 6;
    size_t len = n - 6;
    int le;
    if (t[0] == 'I' && t[1] == 'I') le = 1;
    else if (t[0] == 'M' && t[1] == 'M') le = 0;
    else return 1;
    uint32_t ifd = tc_rd32(t + 4, le);
    if (ifd > len || len - ifd < 2) return 1;
    uint16_t count = tc_rd16(t + ifd, le);
    for (uint32_t i = 0; i < count; i++) {
        size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at + 12 > len) return 1;
        if (tc_rd16(t + at, le) == 0x0112) {
            uint16_t v = tc_rd16(t + at + 8, le);
            return (v >= 1 && v <= 8) ? v : 1;
        }
    }
    return 1;
}

static void tc_jpeg_fill_info(struct jpeg_decompress_struct *c, tc_image_info *out) {
    out->width = c->image_width;
    out->height = c->image_height;
    out->source_bit_depth = c->data_precision;
    out->bit_depth = 8;
    out->color_type = c->jpeg_color_space;
    out->interlaced = c->progressive_mode;
    out->channels = c->jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    out->orientation = 1;
    for (jpeg_saved_marker_ptr m = c->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1) {
            int o = tc_exif_orientation(m->data, m->data_length);
            if (o != 1) { out->orientation = o; break; }
        }
    }
}

static int tc_jpeg_begin(struct jpeg_decompress_struct *c, const uint8_t *data, size_t size) {
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) return -1;
    jpeg_mem_src(c, (unsigned char *)data, (unsigned long)size);
    jpeg_save_markers(c, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(c, TRUE);
    return 0;
}

int tc_jpeg_info(const uint8_t *data, size_t size, tc_image_info *info, char *err, size_t err_size) {
    struct jpeg_decompress_struct c;
    tc_jpeg_error e;
    c.err = tc_jpeg_errors(&e, err, err_size);
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&c);
        return -1;
    }
    jpeg_create_decompress(&c);
    if (tc_jpeg_begin(&c, data, size) != 0) {
        snprintf(err, err_size, "not a JPEG file (no SOI marker)");
        jpeg_destroy_decompress(&c);
        return -1;
    }
    tc_jpeg_fill_info(&c, info);
    jpeg_destroy_decompress(&c);
    return 0;
}

int tc_jpeg_decode(const uint8_t *data, size_t size, const tc_decode_options *opt, tc_image *out, char *err,
                   size_t err_size) {
    memset(out, 0, sizeof(*out));
    struct jpeg_decompress_struct c;
    tc_jpeg_error e;
    c.err = tc_jpeg_errors(&e, err, err_size);
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;
    if (setjmp(e.jump)) {
        free(pixels);
        free(row);
        jpeg_destroy_decompress(&c);
        return -1;
    }
    jpeg_create_decompress(&c);
    if (tc_jpeg_begin(&c, data, size) != 0) {
        snprintf(err, err_size, "not a JPEG file (no SOI marker)");
        jpeg_destroy_decompress(&c);
        return -1;
    }
    tc_jpeg_fill_info(&c, &out->info);
    uint64_t count = (uint64_t)c.image_width * c.image_height;
    if (opt && opt->max_pixels && count > opt->max_pixels) {
        snprintf(err, err_size, "image is %ux%u = %llu pixels, over the limit of %llu", c.image_width, c.image_height,
                 (unsigned long long)count, (unsigned long long)opt->max_pixels);
        jpeg_destroy_decompress(&c);
        return -1;
    }
    int cmyk = c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK;
    int gray = (opt && opt->force_gray) || (c.jpeg_color_space == JCS_GRAYSCALE && !(opt && opt->force_rgba8));
    c.out_color_space = cmyk ? JCS_CMYK : (gray ? JCS_GRAYSCALE : JCS_RGB);
    c.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&c);
    int inC = c.output_components;
    int outC = (opt && opt->force_rgba8) ? 4 : (gray ? 1 : 3);
    size_t w = c.output_width;
    uint64_t total = (uint64_t)w * c.output_height * outC;
    if (opt && opt->max_bytes && total > opt->max_bytes) {
        snprintf(err, err_size, "image is %ux%u with %d 8-bit samples a pixel = %llu bytes, over the limit of %llu",
                 c.output_width, c.output_height, outC, (unsigned long long)total, (unsigned long long)opt->max_bytes);
        longjmp(e.jump, 1);
    }
    uint32_t begin = 0, end = c.output_height;
    if (opt && opt->row_end > 0 && (out->info.orientation == 1 || opt->raw_orientation)) {
        end = opt->row_end < c.output_height ? opt->row_end : c.output_height;
        begin = opt->row_begin < end ? opt->row_begin : 0;
    }
    out->bytes = w * (end - begin) * outC;
    pixels = malloc(out->bytes ? out->bytes : 1);
    row = malloc(w * inC);
    if (!pixels || !row) {
        snprintf(err, err_size, "out of memory for %zu bytes of pixels", out->bytes);
        longjmp(e.jump, 1);
    }
    int adobe = c.saw_Adobe_marker;
    if (begin > 0) jpeg_skip_scanlines(&c, begin);
    while (c.output_scanline < end) {
        size_t y = c.output_scanline - begin;
        JSAMPROW rp = row;
        jpeg_read_scanlines(&c, &rp, 1);
        uint8_t *dst = pixels + y * w * outC;
        for (size_t x = 0; x < w; x++) {
            const uint8_t *s = row + x * inC;
            uint8_t r, g, b;
            if (cmyk) {
                // Adobe writes inverted CMYK (255 = no ink); plain CMYK is inverted here to match.
                int cc = adobe ? s[0] : 255 - s[0], mm = adobe ? s[1] : 255 - s[1];
                int yy = adobe ? s[2] : 255 - s[2], kk = adobe ? s[3] : 255 - s[3];
                r = (uint8_t)((cc * kk + 127) / 255);
                g = (uint8_t)((mm * kk + 127) / 255);
                b = (uint8_t)((yy * kk + 127) / 255);
            } else if (inC == 1) {
                r = g = b = s[0];
            } else {
                r = s[0]; g = s[1]; b = s[2];
            }
            if (outC == 1) {
                dst[x] = inC == 1 ? s[0] : (uint8_t)((r * 299 + g * 587 + b * 114 + 500) / 1000);
            } else {
                dst[x * outC] = r;
                dst[x * outC + 1] = g;
                dst[x * outC + 2] = b;
                if (outC == 4) dst[x * outC + 3] = 255;
            }
        }
    }
    if (end == c.output_height) jpeg_finish_decompress(&c);
    else jpeg_abort_decompress(&c);  // the rows below the window are not needed
    if (e.pub.num_warnings > 0) {
        snprintf(err, err_size, "truncated or corrupt JPEG data (%s)", e.warning[0] ? e.warning : "libjpeg warning");
        longjmp(e.jump, 1);
    }
    free(row);
    out->info.channels = outC;
    out->info.width = (uint32_t)w;
    out->info.height = c.output_height;
    out->pixels = pixels;
    out->first_row = begin;
    out->row_count = end - begin;
    jpeg_destroy_decompress(&c);
    return 0;
}

int tc_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int quality, uint8_t **out,
                   size_t *out_size, char *err, size_t err_size) {
    *out = NULL;
    *out_size = 0;
    if (width == 0 || height == 0 || (channels != 1 && channels != 3) || quality < 1 || quality > 100) {
        snprintf(err, err_size, "cannot encode %ux%u with %d channels at quality %d as JPEG", width, height, channels,
                 quality);
        return -1;
    }
    struct jpeg_compress_struct c;
    tc_jpeg_error e;
    c.err = tc_jpeg_errors(&e, err, err_size);
    unsigned char *volatile buffer = NULL;
    unsigned long size = 0;
    if (setjmp(e.jump)) {
        jpeg_destroy_compress(&c);
        free(buffer);
        return -1;
    }
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = width;
    c.image_height = height;
    c.input_components = channels;
    c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW rp = (JSAMPROW)(pixels + (size_t)c.next_scanline * width * channels);
        jpeg_write_scanlines(&c, &rp, 1);
    }
    jpeg_finish_compress(&c);
    buffer = mem;
    jpeg_destroy_compress(&c);
    *out = buffer;
    *out_size = size;
    return 0;
}

int tc_jpeg_version(void) { return JPEG_LIB_VERSION; }
