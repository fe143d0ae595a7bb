// Rows of an 8-bit non-interlaced PNG straight from its IDAT chunks: zlib inflates them a band of rows at a time,
// png_unfilter.c undoes the filters. libpng has already read and checked everything before the first IDAT.
#include "png_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { tc_band_rows = 4 * TC_PAETH_LANES };

static uint32_t tc_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

typedef struct {
    const uint8_t *data;
    size_t size, next;  // next: where the chunk after the current one starts
    z_stream zs;
} tc_idat_stream;

/// Points zlib's input at the IDAT chunk starting at s->next after checking its length and CRC.
static int tc_next_idat(tc_idat_stream *s, char *err, size_t err_size) {
    size_t at = s->next;
    if (s->size - at < 8) {
        snprintf(err, err_size, "unexpected end of file");
        return -1;
    }
    uint32_t length = tc_be32(s->data + at);
    if (memcmp(s->data + at + 4, "IDAT", 4) != 0) {
        snprintf(err, err_size, "Not enough image data");
        return -1;
    }
    if (length > 0x7fffffffu || s->size - at - 8 < (size_t)length + 4) {
        snprintf(err, err_size, "unexpected end of file");
        return -1;
    }
    uLong crc = crc32(0L, s->data + at + 4, (uInt)length + 4);
    if (crc != tc_be32(s->data + at + 8 + length)) {
        snprintf(err, err_size, "IDAT: CRC error");
        return -1;
    }
    s->zs.next_in = (Bytef *)(s->data + at + 8);
    s->zs.avail_in = length;
    s->next = at + 12 + length;
    return 0;
}

/// Inflates exactly `n` bytes into `out`, moving on to the next IDAT chunk whenever one runs dry.
static int tc_inflate(tc_idat_stream *s, uint8_t *out, size_t n, char *err, size_t err_size) {
    while (n > 0) {
        uInt piece = n > (1u << 30) ? (1u << 30) : (uInt)n;  // zlib counts in 32 bits
        s->zs.next_out = out;
        s->zs.avail_out = piece;
        while (s->zs.avail_out > 0) {
            if (s->zs.avail_in == 0 && tc_next_idat(s, err, err_size) != 0) return -1;
            int ret = inflate(&s->zs, Z_NO_FLUSH);
            if (ret == Z_STREAM_END && s->zs.avail_out > 0) {
                snprintf(err, err_size, "Not enough image data");
                return -1;
            }
            if (ret != Z_OK && ret != Z_STREAM_END && !(ret == Z_BUF_ERROR && s->zs.avail_in == 0)) {
                snprintf(err, err_size, "%s", s->zs.msg ? s->zs.msg : "damaged compressed data");
                return -1;
            }
        }
        out += piece;
        n -= piece;
    }
    return 0;
}

int tc_png_read_rows(const uint8_t *data, size_t size, size_t idat, size_t rowbytes, int bpp, uint32_t begin,
                     uint32_t end, uint8_t *pixels, char *err, size_t err_size) {
    tc_idat_stream s;
    memset(&s, 0, sizeof s);
    s.data = data;
    s.size = size;
    s.next = idat;
    if (inflateInit(&s.zs) != Z_OK) {
        snprintf(err, err_size, "zlib could not start");
        return -1;
    }
    // As libpng is told (PNG_IGNORE_ADLER32): each chunk's CRC-32 guards the data, zlib's Adler-32 is not computed.
    inflateValidate(&s.zs, 0);
    // Memory: a band of at most 64 filtered rows (no more than are needed), and for rows above the window a ring
    // one band + 1 rows deep (a band needs the row above it), plus a row of zeros above the image.
    int band_rows = end < tc_band_rows ? (int)end : tc_band_rows;
    size_t ring_rows = begin > 0 ? (size_t)band_rows + 1 : 0;
    uint8_t *filtered = malloc((rowbytes + 1) * band_rows);
    uint8_t *ring = malloc(rowbytes * ring_rows + rowbytes);
    int status = -1;
    if (!filtered || !ring) {
        snprintf(err, err_size, "out of memory for a band of %zu-byte rows", rowbytes);
        goto done;
    }
    uint8_t *zeros = ring + rowbytes * ring_rows;
    memset(zeros, 0, rowbytes);
    uint8_t *rows[tc_band_rows];
    const uint8_t *above = zeros;
    for (uint32_t y = 0; y < end;) {
        int n = end - y < (uint32_t)band_rows ? (int)(end - y) : band_rows;
        if (tc_inflate(&s, filtered, (rowbytes + 1) * n, err, err_size) != 0) goto done;
        for (int k = 0; k < n; k++) {
            uint32_t row = y + k;
            rows[k] = row >= begin ? pixels + (size_t)(row - begin) * rowbytes : ring + (row % ring_rows) * rowbytes;
        }
        if (tc_png_unfilter_rows(filtered, rows, above, n, rowbytes, bpp) != 0) {
            snprintf(err, err_size, "bad adaptive filter value");
            goto done;
        }
        above = rows[n - 1];
        y += n;
    }
    status = 0;
done:
    inflateEnd(&s.zs);
    free(filtered);
    free(ring);
    return status;
}
