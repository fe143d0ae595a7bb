// libpng / libjpeg shims: every setjmp/longjmp stays in C; failures come back as -1 and a message.
#ifndef TESSERA_CIMAGECODECS_H
#define TESSERA_CIMAGECODECS_H

#include <stddef.h>
#include <stdint.h>

#include "tc_tiff.h"

#ifdef __cplusplus
extern "C" {
#endif

/// What a decoder learned from a file's header.
typedef struct {
    uint32_t width, height;
    int channels;        // of the decoded pixels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int bit_depth;       // of the decoded samples: 8 or 16
    int source_bit_depth;
    int color_type;      // PNG colour type, or the JPEG colour space
    int interlaced;      // PNG Adam7 / progressive JPEG
    int orientation;     // EXIF orientation 1-8 (JPEG), 1 otherwise
} tc_image_info;

/// Decoded pixels: `pixels` is malloc'ed (free with tc_free); 16-bit samples are host-endian uint16.
/// `pixels` holds `row_count` rows starting at `first_row` (all rows unless a window was honoured).
typedef struct {
    tc_image_info info;
    void *pixels;
    size_t bytes;
    uint32_t first_row, row_count;
} tc_image;

/// Output options for decoding.
typedef struct {
    uint64_t max_pixels;  // width * height above this fails before any pixel buffer is allocated
    uint64_t max_bytes;   // decoded sample bytes (all rows, after expansion) above this fail the same way
    int force_rgba8;      // expand to 8-bit RGBA (palette, gray, tRNS, 16-bit all converted)
    int force_gray;       // JPEG only: decode to one channel
    int palette_indices;  // PNG only: an indexed image decodes to its 8-bit palette indices (1 channel)
    // Rows [row_begin, row_end) of the file's raster only (row_end 0: all). Rows past row_end are neither
    // decoded nor checked. Honoured for non-interlaced PNG and for JPEG whose EXIF orientation is 1 or
    // ignored (`raw_orientation`); otherwise every row is returned.
    uint32_t row_begin, row_end;
    int raw_orientation;  // the caller will not apply EXIF orientation, so a JPEG row window is always honoured
    int libpng_rows;      // PNG only: read every row through libpng, never the fast 8-bit row reader (the
                          // reference that reader is tested against)
} tc_decode_options;

/// Reads only the header. Returns 0, or -1 with a message in err.
int tc_png_info(const uint8_t *data, size_t size, tc_image_info *info, char *err, size_t err_size);
int tc_jpeg_info(const uint8_t *data, size_t size, tc_image_info *info, char *err, size_t err_size);

/// Decodes a whole file held in memory. Returns 0, or -1 with a message in err (and nothing allocated).
int tc_png_decode(const uint8_t *data, size_t size, const tc_decode_options *opt, tc_image *out, char *err,
                  size_t err_size);
int tc_jpeg_decode(const uint8_t *data, size_t size, const tc_decode_options *opt, tc_image *out, char *err,
                   size_t err_size);

/// Encodes 8- or 16-bit gray (1), gray+alpha (2), RGB (3) or RGBA (4) pixels, or 8-bit indexed pixels when
/// `palette` (rgb triples, palette_size entries) is given. On success *out is malloc'ed (free with tc_free).
int tc_png_encode(const void *pixels, uint32_t width, uint32_t height, int channels, int bit_depth,
                  const uint8_t *palette, int palette_size, uint8_t **out, size_t *out_size, char *err,
                  size_t err_size);
/// Encodes 8-bit gray (1) or RGB (3) pixels as baseline JPEG at `quality` (1-100).
int tc_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int quality, uint8_t **out,
                   size_t *out_size, char *err, size_t err_size);

void tc_free(void *p);

/// Version strings of the linked libpng and of the libjpeg API the shims were built against.
const char *tc_png_version(void);
int tc_jpeg_version(void);

#ifdef __cplusplus
}
#endif

#endif
