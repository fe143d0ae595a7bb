// A minimal PNG writer with a chosen filter per row, independent of libpng, to test the decoders against.
#include "CTestSupport.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static size_t chunk_out(uint8_t *out, const char *type, const uint8_t *data, uint32_t n) {
    put32(out, n);
    memcpy(out + 4, type, 4);
    if (n) memcpy(out + 8, data, n);
    put32(out + 8 + n, (uint32_t)crc32(0, out + 4, n + 4));
    return 12 + (size_t)n;
}

static int predict(int filter, int a, int b, int c) {
    switch (filter) {
    case 1: return a;
    case 2: return b;
    case 3: return (a + b) >> 1;
    case 4: {
        int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
        return (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
    }
    default: return 0;
    }
}

uint8_t *tst_png_filtered(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                          const uint8_t *filters, size_t chunk, size_t *size) {
    static const uint8_t types[5] = {0, 0, 4, 2, 6};
    size_t rowbytes = (size_t)width * channels, rawn = (rowbytes + 1) * height;
    uint8_t *raw = malloc(rawn);
    uLongf zn = compressBound(rawn);
    uint8_t *z = malloc(zn);
    size_t chunks = chunk ? zn / chunk + 2 : 2;
    uint8_t *out = malloc(8 + 25 + 12 * (chunks + 2) + zn);
    if (!raw || !z || !out || channels < 1 || channels > 4 || chunk == 0) {
        free(raw); free(z); free(out);
        return NULL;
    }
    for (uint32_t y = 0; y < height; y++) {
        const uint8_t *row = pixels + y * rowbytes, *up = y ? row - rowbytes : NULL;
        uint8_t *dst = raw + y * (rowbytes + 1);
        dst[0] = filters[y];
        for (size_t i = 0; i < rowbytes; i++) {
            int a = i >= (size_t)channels ? row[i - channels] : 0, b = up ? up[i] : 0;
            int c = up && i >= (size_t)channels ? up[i - channels] : 0;
            dst[1 + i] = (uint8_t)(row[i] - predict(filters[y], a, b, c));
        }
    }
    compress2(z, &zn, raw, rawn, 6);
    static const uint8_t signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    memcpy(out, signature, 8);
    size_t n = 8;
    uint8_t ihdr[13];
    put32(ihdr, width);
    put32(ihdr + 4, height);
    ihdr[8] = 8; ihdr[9] = types[channels]; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
    n += chunk_out(out + n, "IHDR", ihdr, 13);
    n += chunk_out(out + n, "IDAT", NULL, 0);
    for (size_t at = 0; at < zn; at += chunk)
        n += chunk_out(out + n, "IDAT", z + at, (uint32_t)(zn - at < chunk ? zn - at : chunk));
    n += chunk_out(out + n, "IEND", NULL, 0);
    free(raw);
    free(z);
    *size = n;
    return out;
}
