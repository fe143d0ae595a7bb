// Writing TIFF and BigTIFF through libtiff, rows in and whole blocks (strips or tiles) out as they fill, so a
// page of any height is written with one block row in memory. A checkpointed page can be resumed after a crash.
#include "tiff_handle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tc_tiff *tc_tiff_create(const char *path, int big, char *err, size_t err_size) {
    struct tc_tiff *t = calloc(1, sizeof *t);
    if (!t) { snprintf(err, err_size, "out of memory"); return NULL; }
    TIFFOpenOptions *opts = tc_tiff_options(t);
    t->tif = opts ? TIFFOpenExt(path, big ? "w8" : "w", opts) : NULL;
    TIFFOpenOptionsFree(opts);
    if (!t->tif) {
        tc_tiff_fail(t, "cannot create the file", err, err_size);
        free(t);
        return NULL;
    }
    return t;
}

static uint32_t tc_block_width(const tc_tiff_layout *l) { return l->tile_width ? l->tile_width : l->width; }
static uint32_t tc_block_height(const tc_tiff_layout *l) {
    return l->tile_height == 0 || l->tile_height > l->height ? l->height : l->tile_height;
}
static size_t tc_pixel_bytes(const tc_tiff_layout *l) { return (size_t)l->samples * tc_tiff_out_bytes(l->bits); }

static int tc_tiff_check_layout(const tc_tiff_layout *l, char *err, size_t err_size) {
    const char *why = NULL;
    if (l->width == 0 || l->height == 0) why = "a page needs pixels";
    else if (l->samples < 1 || l->samples > 1024) why = "samples per pixel must be 1-1024";
    else if (!((l->sample_format == TC_TIFF_UINT && (l->bits == 1 || l->bits == 8 || l->bits == 16 || l->bits == 32)) ||
               (l->sample_format == TC_TIFF_FLOAT && l->bits == 32)))
        why = "samples must be unsigned 1, 8, 16 or 32-bit or 32-bit float";
    else if (l->tile_width && (l->tile_width % 16 || l->tile_height % 16 || l->tile_height == 0))
        why = "tile sizes must be positive multiples of 16";
    else if (!TIFFIsCODECConfigured((uint16_t)l->compression)) why = "the compression is not available";
    else if (l->compression == COMPRESSION_JPEG && !(l->bits == 8 && (l->samples == 1 || l->samples == 3)))
        why = "JPEG needs 8-bit gray or RGB";
    else {
        uint64_t n;
        if (__builtin_mul_overflow((uint64_t)l->width, (uint64_t)tc_block_height(l), &n) ||
            __builtin_mul_overflow(n, (uint64_t)tc_pixel_bytes(l), &n) || n > ((uint64_t)1 << 31))
            why = "a block would exceed 2 GiB";
    }
    if (why) snprintf(err, err_size, "%s", why);
    return why ? -1 : 0;
}

/// Sets the tags of `layout` on the current directory and allocates the block buffers.
static int tc_tiff_setup(struct tc_tiff *t, const tc_tiff_layout *l, const char *description, int set_tags,
                         char *err, size_t err_size) {
    if (tc_tiff_check_layout(l, err, err_size) != 0) return -1;
    TIFF *tif = t->tif;
    int jpeg_ycbcr = l->compression == COMPRESSION_JPEG && l->samples == 3;
    if (set_tags) {
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, l->width);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, l->height);
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)l->samples);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)l->bits);
        TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, (uint16_t)l->sample_format);
        TIFFSetField(tif, TIFFTAG_PLANARCONFIG, (uint16_t)(l->planar == 2 ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG));
        int color = l->samples == 3 || (l->samples == 4 && l->extra_alpha);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC,
                     jpeg_ycbcr ? PHOTOMETRIC_YCBCR : color ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
        int extra = l->samples - (color ? 3 : 1);
        if (extra > 0) {
            uint16_t types[1024];
            for (int k = 0; k < extra; k++) types[k] = EXTRASAMPLE_UNSPECIFIED;
            if (l->extra_alpha) types[extra - 1] = EXTRASAMPLE_UNASSALPHA;
            TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, (uint16_t)extra, types);
        }
        TIFFSetField(tif, TIFFTAG_COMPRESSION, (uint16_t)l->compression);
        if ((l->compression == COMPRESSION_LZW || l->compression == COMPRESSION_ADOBE_DEFLATE) && l->predictor == 2 &&
            l->bits >= 8 && l->sample_format == TC_TIFF_UINT)
            TIFFSetField(tif, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
        if (l->compression == COMPRESSION_JPEG) TIFFSetField(tif, TIFFTAG_JPEGQUALITY, l->jpeg_quality ? l->jpeg_quality : 90);
        if (l->tile_width) {
            TIFFSetField(tif, TIFFTAG_TILEWIDTH, l->tile_width);
            TIFFSetField(tif, TIFFTAG_TILELENGTH, l->tile_height);
        } else {
            TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, tc_block_height(l));
        }
        if (description) TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description);
    }
    if (jpeg_ycbcr) TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    free(t->block);
    free(t->scratch);
    t->block = malloc((size_t)l->width * tc_block_height(l) * tc_pixel_bytes(l) + 1);  // full-width rows
    t->scratch_size = l->tile_width ? TIFFTileSize(tif) : TIFFStripSize(tif);
    t->scratch = t->scratch_size > 0 ? malloc((size_t)t->scratch_size) : NULL;
    if (!t->block || !t->scratch) {
        tc_tiff_fail(t, "out of memory for a block", err, err_size);
        return -1;
    }
    t->layout = *l;
    t->in_page = 1;
    t->rows_buffered = 0;
    t->rows_written = 0;
    return 0;
}

int tc_tiff_begin_page(tc_tiff *t, const tc_tiff_layout *layout, const char *description, char *err,
                       size_t err_size) {
    if (t->in_page) { snprintf(err, err_size, "the previous page is not finished"); return -1; }
    return tc_tiff_setup(t, layout, description, 1, err, err_size);
}

/// Packs pixels [x0, x0 + n) of `rows` source rows (`src`, `src_row` bytes apart; plane `p`, or every sample
/// when contiguous) into scratch as the file stores a block of `bw` x `bh` pixels, zero beyond the image.
static void tc_tiff_pack(struct tc_tiff *t, const uint8_t *src_base, size_t src_row, uint32_t rows, uint32_t x0,
                         uint32_t n, int p, uint32_t bw, uint32_t bh) {
    const tc_tiff_layout *l = &t->layout;
    int planes = l->planar == 2 ? l->samples : 1, per = planes > 1 ? 1 : l->samples;
    int first = planes > 1 ? p : 0;
    size_t sb = (size_t)tc_tiff_out_bytes(l->bits);
    size_t dst_row = l->bits == 1 ? ((size_t)bw * per + 7) / 8 : (size_t)bw * per * sb;
    memset(t->scratch, 0, (size_t)t->scratch_size);
    for (uint32_t r = 0; r < rows && r < bh; r++) {
        const uint8_t *src = src_base + src_row * r;
        uint8_t *dst = t->scratch + dst_row * r;
        for (uint32_t x = 0; x < n; x++)
            for (int s = 0; s < per; s++) {
                const uint8_t *v = src + ((size_t)(x0 + x) * l->samples + first + s) * sb;
                size_t k = (size_t)x * per + s;
                if (l->bits == 1) {
                    if (*v) dst[k >> 3] |= (uint8_t)(0x80 >> (k & 7));
                } else {
                    memcpy(dst + k * sb, v, sb);
                }
            }
    }
}

int tc_tiff_write_tiles(tc_tiff *t, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h, const void *pixels, char *err,
                        size_t err_size) {
    const tc_tiff_layout *l = &t->layout;
    if (!t->in_page || !l->tile_width) { snprintf(err, err_size, "no tiled page has been started"); return -1; }
    uint32_t bw = l->tile_width, bh = l->tile_height;
    if (x0 % bw || y0 % bh || x0 >= l->width || y0 >= l->height || w > l->width - x0 || h > l->height - y0 ||
        (w % bw && x0 + w != l->width) || (h % bh && y0 + h != l->height) || w == 0 || h == 0) {
        snprintf(err, err_size, "region %ux%u at (%u, %u) is not whole tiles of the %ux%u page", w, h, x0, y0,
                 l->width, l->height);
        return -1;
    }
    int planes = l->planar == 2 ? l->samples : 1;
    size_t src_row = (size_t)w * tc_pixel_bytes(l);
    for (uint32_t ty = 0; ty < h; ty += bh)
        for (uint32_t tx = 0; tx < w; tx += bw)
            for (int p = 0; p < planes; p++) {
                uint32_t n = w - tx < bw ? w - tx : bw, rows = h - ty < bh ? h - ty : bh;
                tc_tiff_pack(t, (const uint8_t *)pixels + src_row * ty, src_row, rows, tx, n, p, bw, bh);
                if (TIFFWriteEncodedTile(t->tif, TIFFComputeTile(t->tif, x0 + tx, y0 + ty, 0, (uint16_t)p), t->scratch,
                                         t->scratch_size) < 0) {
                    tc_tiff_fail(t, "cannot encode a tile", err, err_size);
                    return -1;
                }
            }
    t->tile_regions = 1;
    return 0;
}

/// Encodes the buffered rows as one block row.
static int tc_tiff_flush_block(struct tc_tiff *t, char *err, size_t err_size) {
    const tc_tiff_layout *l = &t->layout;
    TIFF *tif = t->tif;
    uint32_t bw = tc_block_width(l), bh = tc_block_height(l), y0 = t->rows_written;
    int planes = l->planar == 2 ? l->samples : 1;
    uint32_t columns = (l->width + bw - 1) / bw;
    for (int p = 0; p < planes; p++)
        for (uint32_t c = 0; c < columns; c++) {
            uint32_t x0 = c * bw, n = l->width - x0 < bw ? l->width - x0 : bw;
            tc_tiff_pack(t, t->block, (size_t)l->width * tc_pixel_bytes(l), t->rows_buffered, x0, n, p, bw, bh);
            tmsize_t rc;
            if (l->tile_width) {
                rc = TIFFWriteEncodedTile(tif, TIFFComputeTile(tif, x0, y0, 0, (uint16_t)p), t->scratch,
                                          t->scratch_size);
            } else {
                int per = planes > 1 ? 1 : l->samples;
                size_t row = l->bits == 1 ? ((size_t)bw * per + 7) / 8
                                          : (size_t)bw * per * tc_tiff_out_bytes(l->bits);
                rc = TIFFWriteEncodedStrip(tif, TIFFComputeStrip(tif, y0, (uint16_t)p), t->scratch,
                                           (tmsize_t)(row * t->rows_buffered));
            }
            if (rc < 0) {
                tc_tiff_fail(t, "cannot encode a block", err, err_size);
                return -1;
            }
        }
    t->rows_written += t->rows_buffered;
    t->rows_buffered = 0;
    return 0;
}

int tc_tiff_write_rows(tc_tiff *t, const void *pixels, uint32_t rows, char *err, size_t err_size) {
    if (!t->in_page) { snprintf(err, err_size, "no page has been started"); return -1; }
    const tc_tiff_layout *l = &t->layout;
    if (rows > l->height - t->rows_written - t->rows_buffered) {
        snprintf(err, err_size, "%u more rows do not fit the page's %u", rows, l->height);
        return -1;
    }
    size_t row_bytes = (size_t)l->width * tc_pixel_bytes(l);
    uint32_t bh = tc_block_height(l);
    const uint8_t *src = pixels;
    while (rows > 0) {
        uint32_t k = bh - t->rows_buffered < rows ? bh - t->rows_buffered : rows;
        memcpy(t->block + row_bytes * t->rows_buffered, src, row_bytes * k);
        t->rows_buffered += k;
        src += row_bytes * k;
        rows -= k;
        if (t->rows_buffered == bh && tc_tiff_flush_block(t, err, err_size) != 0) return -1;
    }
    return 0;
}

uint32_t tc_tiff_rows_written(const tc_tiff *t) { return t->rows_written; }

int tc_tiff_checkpoint(tc_tiff *t, char *err, size_t err_size) {
    if (!TIFFCheckpointDirectory(t->tif) || TIFFFlushData(t->tif) == 0) {
        tc_tiff_fail(t, "cannot checkpoint the directory", err, err_size);
        return -1;
    }
    return 0;
}

int tc_tiff_end_page(tc_tiff *t, char *err, size_t err_size) {
    if (!t->in_page) { snprintf(err, err_size, "no page has been started"); return -1; }
    if (t->rows_buffered && tc_tiff_flush_block(t, err, err_size) != 0) return -1;
    if (!t->tile_regions && t->rows_written != t->layout.height) {
        snprintf(err, err_size, "the page has %u of its %u rows", t->rows_written, t->layout.height);
        return -1;
    }
    // A resumed page already has a directory in the file: rewrite it, with the blocks since, at the end.
    if (!(t->resumed ? TIFFRewriteDirectory(t->tif) : TIFFWriteDirectory(t->tif))) {
        tc_tiff_fail(t, "cannot write the page's directory", err, err_size);
        return -1;
    }
    t->pages_done++;
    t->resumed = 0;
    t->tile_regions = 0;
    t->in_page = 0;
    return 0;
}

tc_tiff *tc_tiff_resume(const char *path, const tc_tiff_layout *layout, uint32_t pages_done, uint32_t rows_done,
                        char *err, size_t err_size) {
    struct tc_tiff *t = calloc(1, sizeof *t);
    if (!t) { snprintf(err, err_size, "out of memory"); return NULL; }
    TIFFOpenOptions *opts = tc_tiff_options(t);
    t->tif = opts ? TIFFOpenExt(path, "r+", opts) : NULL;
    TIFFOpenOptionsFree(opts);
    uint32_t w = 0, h = 0;
    if (!t->tif || !TIFFSetDirectory(t->tif, (tdir_t)pages_done) || !TIFFGetField(t->tif, TIFFTAG_IMAGEWIDTH, &w) ||
        !TIFFGetField(t->tif, TIFFTAG_IMAGELENGTH, &h) || w != layout->width || h != layout->height ||
        rows_done > h || rows_done % tc_block_height(layout)) {
        tc_tiff_fail(t, "the partial file does not match the page being resumed", err, err_size);
        if (t->tif) TIFFClose(t->tif);
        free(t);
        return NULL;
    }
    if (tc_tiff_setup(t, layout, NULL, 0, err, err_size) != 0) {
        TIFFClose(t->tif);
        free(t->block);
        free(t->scratch);
        free(t);
        return NULL;
    }
    t->rows_written = rows_done;
    t->pages_done = pages_done;
    t->resumed = 1;
    return t;
}

int tc_tiff_append_pages(tc_tiff *t, const char *src_path, char *err, size_t err_size) {
    if (t->in_page) { snprintf(err, err_size, "the previous page is not finished"); return -1; }
    struct tc_tiff *s = tc_tiff_open(src_path, (uint64_t)1 << 31, err, err_size);
    if (!s) return -1;
    int rc = 0;
    tdir_t pages = TIFFNumberOfDirectories(s->tif);
    uint8_t *raw = NULL;
    for (tdir_t d = 0; d < pages && rc == 0; d++) {
        tc_tiff_info i;
        if (tc_tiff_page_info(s, d, &i, NULL, err, err_size) != 0) { rc = -1; break; }
        static const uint32_t u32[] = {TIFFTAG_IMAGEWIDTH, TIFFTAG_IMAGELENGTH, TIFFTAG_TILEWIDTH, TIFFTAG_TILELENGTH,
                                       TIFFTAG_ROWSPERSTRIP};
        static const uint32_t u16[] = {TIFFTAG_SAMPLESPERPIXEL, TIFFTAG_BITSPERSAMPLE, TIFFTAG_SAMPLEFORMAT,
                                       TIFFTAG_PLANARCONFIG,    TIFFTAG_PHOTOMETRIC,   TIFFTAG_COMPRESSION,
                                       TIFFTAG_PREDICTOR};
        for (size_t k = 0; k < sizeof u32 / sizeof *u32; k++) {
            uint32_t v;
            if (TIFFGetField(s->tif, u32[k], &v)) TIFFSetField(t->tif, u32[k], v);
        }
        for (size_t k = 0; k < sizeof u16 / sizeof *u16; k++) {
            uint16_t v;
            if (TIFFGetField(s->tif, u16[k], &v)) TIFFSetField(t->tif, u16[k], v);
        }
        const char *text;
        if (TIFFGetField(s->tif, TIFFTAG_IMAGEDESCRIPTION, &text)) TIFFSetField(t->tif, TIFFTAG_IMAGEDESCRIPTION, text);
        uint32_t blocks = i.tiled ? TIFFNumberOfTiles(s->tif) : TIFFNumberOfStrips(s->tif);
        for (uint32_t b = 0; b < blocks && rc == 0; b++) {
            uint64_t size = TIFFGetStrileByteCount(s->tif, b);
            if (size > ((uint64_t)1 << 31)) { snprintf(err, err_size, "a block is too large"); rc = -1; break; }
            uint8_t *grown = realloc(raw, size ? size : 1);
            if (!grown) { snprintf(err, err_size, "out of memory"); rc = -1; break; }
            raw = grown;
            tmsize_t got = i.tiled ? TIFFReadRawTile(s->tif, b, raw, (tmsize_t)size)
                                   : TIFFReadRawStrip(s->tif, b, raw, (tmsize_t)size);
            tmsize_t put = got < 0 ? -1
                           : i.tiled ? TIFFWriteRawTile(t->tif, b, raw, got)
                                     : TIFFWriteRawStrip(t->tif, b, raw, got);
            if (got < 0) tc_tiff_fail(s, "cannot read a block", err, err_size), rc = -1;
            else if (put < 0) tc_tiff_fail(t, "cannot write a block", err, err_size), rc = -1;
        }
        if (rc == 0 && !TIFFWriteDirectory(t->tif)) tc_tiff_fail(t, "cannot write a directory", err, err_size), rc = -1;
        if (rc == 0) t->pages_done++;
    }
    free(raw);
    char ignored[8];
    tc_tiff_close(s, ignored, sizeof ignored);
    return rc;
}

int tc_tiff_close(tc_tiff *t, char *err, size_t err_size) {
    if (!t) return 0;
    int rc = 0;
    if (t->in_page) {
        snprintf(err, err_size, "the file was closed with a page unfinished");
        rc = -1;
    }
    if (t->tif) {
        TIFFClose(t->tif);
        if (rc == 0 && t->message[0]) tc_tiff_fail(t, "", err, err_size), rc = -1;
    }
    free(t->block);
    free(t->scratch);
    free(t);
    return rc;
}
