// Reading TIFF and BigTIFF through libtiff: strips or tiles, contiguous or planar samples, every codec libtiff
// was built with. Rows come out interleaved; one block row (a strip, or a row of tiles) stays decoded between
// calls, so memory follows the block size and the image width, never the image height.
#include "tiff_handle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tc_tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    struct tc_tiff *t = (struct tc_tiff *)user;
    char text[400];
    vsnprintf(text, sizeof text, fmt, ap);
    if (module && *module) snprintf(t->message, sizeof t->message, "%s: %s", module, text);
    else snprintf(t->message, sizeof t->message, "%s", text);
    return 1;  // handled: libtiff's process-wide handler is not called
}

static int tc_tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif, (void)user, (void)module, (void)fmt, (void)ap;
    return 1;
}

TIFFOpenOptions *tc_tiff_options(struct tc_tiff *t) {
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tc_tiff_on_error, t);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tc_tiff_on_warning, t);
    // libtiff's own buffers (strile arrays, raw strips) of a corrupt header fail instead of being allocated.
    if (t->max_block_bytes) TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)t->max_block_bytes);
    return opts;
}

void tc_tiff_fail(struct tc_tiff *t, const char *fallback, char *err, size_t err_size) {
    snprintf(err, err_size, "%s", t && t->message[0] ? t->message : fallback);
    if (t) t->message[0] = 0;
}

int tc_tiff_out_bytes(int bits) { return bits <= 8 ? 1 : bits / 8; }

static struct tc_tiff *tc_tiff_alloc(uint64_t max_block_bytes) {
    struct tc_tiff *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->max_block_bytes = max_block_bytes;
    t->page = -1;
    t->block_index = -1;
    return t;
}

/// The handle with its libtiff file `tif`, or NULL (the handle freed) and the reason when libtiff refused it.
static tc_tiff *tc_tiff_opened(struct tc_tiff *t, TIFF *tif, char *err, size_t err_size) {
    t->tif = tif;
    if (!t->tif) {
        tc_tiff_fail(t, "not a readable TIFF file", err, err_size);
        free(t);
        return NULL;
    }
    return t;
}

tc_tiff *tc_tiff_open(const char *path, uint64_t max_block_bytes, char *err, size_t err_size) {
    struct tc_tiff *t = tc_tiff_alloc(max_block_bytes);
    if (!t) { snprintf(err, err_size, "out of memory"); return NULL; }
    TIFFOpenOptions *opts = tc_tiff_options(t);
    // "m": read(), not mmap (mapped pages of a whole-slide file would count as this process's memory);
    // "O": strip and tile offsets loaded on demand, not all at open.
    TIFF *tif = opts ? TIFFOpenExt(path, "rmO", opts) : NULL;
    TIFFOpenOptionsFree(opts);
    return tc_tiff_opened(t, tif, err, err_size);
}

static tmsize_t tc_mem_read(thandle_t h, void *buf, tmsize_t n) {
    struct tc_tiff *t = (struct tc_tiff *)h;
    if (n < 0) return -1;
    uint64_t left = t->data_size - t->data_pos;
    uint64_t k = (uint64_t)n < left ? (uint64_t)n : left;
    memcpy(buf, t->data + t->data_pos, k);
    t->data_pos += k;
    return (tmsize_t)k;
}
static tmsize_t tc_mem_write(thandle_t h, void *buf, tmsize_t n) { (void)h, (void)buf, (void)n; return -1; }
static toff_t tc_mem_seek(thandle_t h, toff_t off, int whence) {
    struct tc_tiff *t = (struct tc_tiff *)h;
    uint64_t base = whence == SEEK_CUR ? t->data_pos : whence == SEEK_END ? t->data_size : 0;
    if (off > UINT64_MAX - base) return (toff_t)-1;
    t->data_pos = base + off;
    if (t->data_pos > t->data_size) t->data_pos = t->data_size;
    return t->data_pos;
}
static int tc_mem_close(thandle_t h) { (void)h; return 0; }
static toff_t tc_mem_size(thandle_t h) { return ((struct tc_tiff *)h)->data_size; }
static int tc_mem_map(thandle_t h, void **base, toff_t *size) {
    struct tc_tiff *t = (struct tc_tiff *)h;
    *base = (void *)t->data;
    *size = t->data_size;
    return 1;
}
static void tc_mem_unmap(thandle_t h, void *base, toff_t size) { (void)h, (void)base, (void)size; }

tc_tiff *tc_tiff_open_memory(const uint8_t *data, size_t size, uint64_t max_block_bytes, char *err,
                             size_t err_size) {
    struct tc_tiff *t = tc_tiff_alloc(max_block_bytes);
    if (!t) { snprintf(err, err_size, "out of memory"); return NULL; }
    t->data = data;
    t->data_size = size;
    TIFFOpenOptions *opts = tc_tiff_options(t);
    TIFF *tif = opts ? TIFFClientOpenExt("memory", "rO", (thandle_t)t, tc_mem_read, tc_mem_write, tc_mem_seek,
                                         tc_mem_close, tc_mem_size, tc_mem_map, tc_mem_unmap, opts)
                     : NULL;
    TIFFOpenOptionsFree(opts);
    return tc_tiff_opened(t, tif, err, err_size);
}

static void tc_tiff_drop_block(struct tc_tiff *t) {
    free(t->block);
    free(t->scratch);
    t->block = NULL;
    t->scratch = NULL;
    t->block_index = -1;
    t->page = -1;
}

static int tc_mul(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_mul_overflow(a, b, out) ? -1 : 0; }

/// Bytes of one decoded block row in the output format, or an error if it overflows or passes the limit.
static int tc_tiff_block_bytes(struct tc_tiff *t, uint64_t *bytes, char *err, size_t err_size) {
    tc_tiff_info *i = &t->info;
    uint64_t rows = i->block_height < i->height ? i->block_height : i->height, n;
    if (tc_mul(rows, i->width, &n) || tc_mul(n, (uint64_t)i->channels * tc_tiff_out_bytes(i->out_bits), &n) ||
        (t->max_block_bytes && n > t->max_block_bytes)) {
        snprintf(err, err_size, "a %s of %ux%u pixels and %d channels is larger than the %llu MiB a block may take",
                 i->tiled ? "row of tiles" : "strip", i->width, i->block_height, i->channels,
                 (unsigned long long)(t->max_block_bytes >> 20));
        return -1;
    }
    *bytes = n;
    return 0;
}

int tc_tiff_page_info(tc_tiff *t, uint32_t page, tc_tiff_info *out, const char **description, char *err,
                      size_t err_size) {
    if (description) *description = NULL;
    if (t->page != (int64_t)page) {
        tc_tiff_drop_block(t);
        memset(&t->info, 0, sizeof t->info);
        TIFF *tif = t->tif;
        tdir_t pages = TIFFNumberOfDirectories(tif);
        if (page >= pages || !TIFFSetDirectory(tif, (tdir_t)page)) {
            if (page >= pages) snprintf(err, err_size, "page %u is past the file's %u pages", page, (unsigned)pages);
            else tc_tiff_fail(t, "cannot read the page's directory", err, err_size);
            return -1;
        }
        tc_tiff_info *i = &t->info;
        uint16_t spp = 1, bps = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG, comp = 1, photo;
        uint32_t w = 0, h = 0;
        TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
        TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
        TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
        TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
        TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
        TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
        if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo)) photo = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
        i->width = w, i->height = h, i->samples = spp, i->bits = bps, i->sample_format = fmt;
        i->planar = planar, i->compression = comp, i->photometric = photo;
        i->tiled = TIFFIsTiled(tif);
        i->big = TIFFIsBigTIFF(tif);
        i->pages = pages;
        if (i->tiled) {
            TIFFGetField(tif, TIFFTAG_TILEWIDTH, &i->block_width);
            TIFFGetField(tif, TIFFTAG_TILELENGTH, &i->block_height);
        } else {
            uint32_t rps = h;
            TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
            i->block_width = w;
            i->block_height = rps == 0 || rps > h ? h : rps;
        }
        uint16_t extra = 0, *types = NULL;
        if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &extra, &types) && extra > 0 && types)
            i->extra_alpha = types[extra - 1] == EXTRASAMPLE_ASSOCALPHA || types[extra - 1] == EXTRASAMPLE_UNASSALPHA;
        const char *why = NULL;
        if (w == 0 || h == 0) why = "the image has no pixels";
        else if (spp == 0 || spp > 1024) why = "the samples per pixel are outside 1-1024";
        else if (i->block_width == 0 || i->block_height == 0) why = "the tile or strip size is zero";
        else if (i->tiled && (i->block_width % 16 || i->block_height % 16)) why = "tile sizes must be multiples of 16";
        else if (fmt == SAMPLEFORMAT_INT) why = "signed integer samples are not supported (unsigned 1/8/16-bit or 32-bit float)";
        else if (!((fmt == SAMPLEFORMAT_UINT && (bps == 1 || bps == 8 || bps == 16 || bps == 32)) ||
                   (fmt == SAMPLEFORMAT_IEEEFP && bps == 32)))
            why = "samples must be unsigned 1, 8, 16 or 32-bit integers or 32-bit floats";
        else if (!TIFFIsCODECConfigured(comp)) why = "the compression is not available in this libtiff";
        else if (photo == PHOTOMETRIC_PALETTE && (spp != 1 || bps != 8)) why = "palette images must have 8-bit indices";
        else if (photo == PHOTOMETRIC_YCBCR && comp != COMPRESSION_JPEG)
            why = "YCbCr samples are supported only in JPEG-compressed files";
        else if (!(photo == PHOTOMETRIC_MINISWHITE || photo == PHOTOMETRIC_MINISBLACK || photo == PHOTOMETRIC_RGB ||
                   photo == PHOTOMETRIC_PALETTE || photo == PHOTOMETRIC_YCBCR || photo == PHOTOMETRIC_SEPARATED))
            why = "the photometric interpretation is not gray, RGB, palette, YCbCr or separated";
        if (why) {
            snprintf(err, err_size, "%s", why);
            return -1;
        }
        if (photo == PHOTOMETRIC_YCBCR) {
            // libjpeg converts to RGB and upsamples the chroma; strips and tiles are then sized as RGB.
            TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
        }
        i->channels = photo == PHOTOMETRIC_PALETTE ? 3 : spp;
        i->out_bits = bps == 1 ? 8 : bps;
        t->colormap_shift = 0;
        if (photo == PHOTOMETRIC_PALETTE) {
            if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &t->colormap[0], &t->colormap[1], &t->colormap[2])) {
                snprintf(err, err_size, "a palette image without a colour map");
                return -1;
            }
            // Some writers store 8-bit entries in the 16-bit map (as libtiff's tiff2rgba allows).
            int wide = 0;
            for (int c = 0; c < 3; c++)
                for (int k = 0; k < 256; k++) wide |= t->colormap[c][k] > 255;
            t->colormap_shift = wide ? 8 : 0;
        }
        uint64_t bytes;
        if (tc_tiff_block_bytes(t, &bytes, err, err_size) != 0) return -1;
        tmsize_t stored = i->tiled ? TIFFTileSize(tif) : TIFFStripSize(tif);
        if (stored <= 0 || (t->max_block_bytes && (uint64_t)stored > t->max_block_bytes)) {
            tc_tiff_fail(t, "the strip or tile size overflows", err, err_size);
            return -1;
        }
        t->page = page;
    }
    *out = t->info;
    if (description) {
        const char *text = NULL;
        if (TIFFGetField(t->tif, TIFFTAG_IMAGEDESCRIPTION, &text)) *description = text;
    }
    return 0;
}

/// Writes `n` pixels of one decoded strip or tile row (samples `first`..`first + count` of each pixel, as the
/// file stores them, from pixel `skip` of the stored row) into an output row of `channels` channels at pixel `x`.
static void tc_tiff_convert(struct tc_tiff *t, const uint8_t *src, uint32_t skip, uint32_t n, int first, int count,
                            uint8_t *row, uint32_t x) {
    const tc_tiff_info *i = &t->info;
    int ch = i->channels;
    int invert = i->photometric == PHOTOMETRIC_MINISWHITE;
    if (i->bits == 1) {
        uint8_t *d = row + (size_t)x * ch;
        for (uint32_t p = 0; p < n; p++)
            for (int s = 0; s < count; s++) {
                size_t bit = (size_t)(skip + p) * count + s;
                int on = (src[bit >> 3] >> (7 - (bit & 7))) & 1;
                d[(size_t)p * ch + first + s] = (uint8_t)((on ^ invert) ? 255 : 0);
            }
        return;
    }
    src += (size_t)skip * count * (i->bits / 8);
    if (i->photometric == PHOTOMETRIC_PALETTE) {
        uint8_t *d = row + (size_t)x * 3;
        for (uint32_t p = 0; p < n; p++)
            for (int c = 0; c < 3; c++) d[p * 3 + c] = (uint8_t)(t->colormap[c][src[p]] >> t->colormap_shift);
    } else if (i->bits == 8) {
        uint8_t *d = row + (size_t)x * ch;
        for (uint32_t p = 0; p < n; p++)
            for (int s = 0; s < count; s++) {
                uint8_t v = src[(size_t)p * count + s];
                d[(size_t)p * ch + first + s] = invert ? (uint8_t)(255 - v) : v;
            }
    } else if (i->bits == 16) {
        const uint16_t *s16 = (const uint16_t *)src;
        uint16_t *d = (uint16_t *)row + (size_t)x * ch;
        for (uint32_t p = 0; p < n; p++)
            for (int s = 0; s < count; s++) {
                uint16_t v = s16[(size_t)p * count + s];
                d[(size_t)p * ch + first + s] = invert ? (uint16_t)(65535 - v) : v;
            }
    } else if (i->sample_format == SAMPLEFORMAT_UINT) {
        // 32-bit unsigned (label images): read as floats, exact up to 2^24.
        const uint32_t *s32 = (const uint32_t *)src;
        float *d = (float *)row + (size_t)x * ch;
        for (uint32_t p = 0; p < n; p++)
            for (int s = 0; s < count; s++) d[(size_t)p * ch + first + s] = (float)s32[(size_t)p * count + s];
    } else {
        const float *sf = (const float *)src;
        float *d = (float *)row + (size_t)x * ch;
        for (uint32_t p = 0; p < n; p++)
            for (int s = 0; s < count; s++) d[(size_t)p * ch + first + s] = sf[(size_t)p * count + s];
    }
}

/// Bytes of one stored row of `n` pixels with `count` samples each.
static size_t tc_tiff_stored_row(const tc_tiff_info *i, uint32_t n, int count) {
    return i->bits == 1 ? ((size_t)n * count + 7) / 8 : (size_t)n * count * (i->bits / 8);
}

/// Decodes block row `b` (a strip, or a row of tiles, every plane) into t->block.
static int tc_tiff_decode_block(struct tc_tiff *t, uint32_t b, char *err, size_t err_size) {
    const tc_tiff_info *i = &t->info;
    TIFF *tif = t->tif;
    if (!t->block) {
        uint64_t bytes;
        if (tc_tiff_block_bytes(t, &bytes, err, err_size) != 0) return -1;
        t->scratch_size = i->tiled ? TIFFTileSize(tif) : TIFFStripSize(tif);
        t->block = malloc(bytes ? bytes : 1);
        t->scratch = malloc((size_t)t->scratch_size);
        if (!t->block || !t->scratch) {
            tc_tiff_drop_block(t);
            snprintf(err, err_size, "out of memory for a %llu-byte block", (unsigned long long)bytes);
            return -1;
        }
    }
    t->block_index = -1;
    uint32_t y0 = b * i->block_height;
    uint32_t rows = i->height - y0 < i->block_height ? i->height - y0 : i->block_height;
    int planes = i->planar == PLANARCONFIG_SEPARATE ? i->samples : 1;
    int per = planes > 1 ? 1 : i->samples;  // samples a pixel in one plane
    size_t row_bytes = (size_t)i->width * i->channels * tc_tiff_out_bytes(i->out_bits);
    uint32_t columns = i->tiled ? (i->width + i->block_width - 1) / i->block_width : 1;
    for (int p = 0; p < planes; p++)
        for (uint32_t c = 0; c < columns; c++) {
            uint32_t x0 = c * i->block_width;
            uint32_t n = i->width - x0 < i->block_width ? i->width - x0 : i->block_width;
            tmsize_t got;
            if (i->tiled)
                got = TIFFReadEncodedTile(tif, TIFFComputeTile(tif, x0, y0, 0, (uint16_t)p), t->scratch,
                                          t->scratch_size);
            else
                got = TIFFReadEncodedStrip(tif, TIFFComputeStrip(tif, y0, (uint16_t)p), t->scratch, t->scratch_size);
            size_t stride = tc_tiff_stored_row(i, i->block_width, per);
            if (got < 0 || (size_t)got < stride * (rows - 1) + tc_tiff_stored_row(i, n, per)) {
                tc_tiff_fail(t, "a strip or tile is shorter than its rows", err, err_size);
                return -1;
            }
            for (uint32_t r = 0; r < rows; r++)
                tc_tiff_convert(t, t->scratch + stride * r, 0, n, p, per, t->block + row_bytes * r, x0);
        }
    t->block_index = b;
    return 0;
}

/// Decodes the tiles under the window straight into `out` (every tile of a window decoded once; a window's
/// neighbour decodes its shared border tiles again).
static int tc_tiff_read_tiles(struct tc_tiff *t, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h, uint8_t *out,
                              char *err, size_t err_size) {
    const tc_tiff_info *i = &t->info;
    TIFF *tif = t->tif;
    if (!t->scratch) {
        t->scratch_size = TIFFTileSize(tif);
        t->scratch = malloc((size_t)t->scratch_size);
        if (!t->scratch) { snprintf(err, err_size, "out of memory for a tile"); return -1; }
    }
    int planes = i->planar == PLANARCONFIG_SEPARATE ? i->samples : 1;
    int per = planes > 1 ? 1 : i->samples;
    size_t stride = tc_tiff_stored_row(i, i->block_width, per);
    size_t out_row = (size_t)w * i->channels * tc_tiff_out_bytes(i->out_bits);
    uint32_t bw = i->block_width, bh = i->block_height;
    for (uint32_t ty = y0 / bh * bh; ty < y0 + h; ty += bh)
        for (uint32_t tx = x0 / bw * bw; tx < x0 + w; tx += bw)
            for (int p = 0; p < planes; p++) {
                tmsize_t got = TIFFReadEncodedTile(tif, TIFFComputeTile(tif, tx, ty, 0, (uint16_t)p), t->scratch,
                                                   t->scratch_size);
                if (got < 0 || (size_t)got < stride * bh) {
                    tc_tiff_fail(t, "a tile is shorter than its rows", err, err_size);
                    return -1;
                }
                uint32_t ax = tx > x0 ? tx : x0, bx = tx + bw < x0 + w ? tx + bw : x0 + w;
                uint32_t ay = ty > y0 ? ty : y0, by = ty + bh < y0 + h ? ty + bh : y0 + h;
                for (uint32_t y = ay; y < by; y++)
                    tc_tiff_convert(t, t->scratch + stride * (y - ty), ax - tx, bx - ax, p, per,
                                    out + out_row * (y - y0), ax - x0);
            }
    return 0;
}

int tc_tiff_read_window(tc_tiff *t, uint32_t page, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h, void *out,
                        size_t out_bytes, char *err, size_t err_size) {
    tc_tiff_info info;
    if (tc_tiff_page_info(t, page, &info, NULL, err, err_size) != 0) return -1;
    size_t pixel = (size_t)info.channels * tc_tiff_out_bytes(info.out_bits), out_row = (size_t)w * pixel;
    if (w == 0 || h == 0 || x0 > info.width || w > info.width - x0 || y0 > info.height || h > info.height - y0 ||
        out_bytes / out_row < h) {
        snprintf(err, err_size, "window %ux%u at (%u, %u) is outside the %ux%u image or the buffer", w, h, x0, y0,
                 info.width, info.height);
        return -1;
    }
    // Tiles straight to the output, unless the window spans the width (a row of tiles is kept, as for strips).
    if (info.tiled && w < info.width) return tc_tiff_read_tiles(t, x0, y0, w, h, out, err, err_size);
    size_t row_bytes = (size_t)info.width * pixel;
    for (uint32_t y = y0; y < y0 + h;) {
        uint32_t b = y / info.block_height;
        if (t->block_index != (int64_t)b && tc_tiff_decode_block(t, b, err, err_size) != 0) return -1;
        uint32_t end = (b + 1) * info.block_height;
        if (end > y0 + h || end < y) end = y0 + h;
        for (uint32_t r = y; r < end; r++)
            memcpy((uint8_t *)out + (size_t)(r - y0) * out_row,
                   t->block + (size_t)(r - b * info.block_height) * row_bytes + (size_t)x0 * pixel, out_row);
        y = end;
    }
    return 0;
}

int tc_tiff_read_rows(tc_tiff *t, uint32_t page, uint32_t row0, uint32_t rows, void *out, size_t out_bytes,
                      char *err, size_t err_size) {
    tc_tiff_info info;
    if (tc_tiff_page_info(t, page, &info, NULL, err, err_size) != 0) return -1;
    return tc_tiff_read_window(t, page, 0, row0, info.width, rows, out, out_bytes, err, err_size);
}

const char *tc_tiff_version(void) { return TIFFGetVersion(); }
