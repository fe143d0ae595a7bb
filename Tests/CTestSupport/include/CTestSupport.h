// Test-only helpers in C.
#ifndef TESSERA_CTESTSUPPORT_H
#define TESSERA_CTESTSUPPORT_H

#include <stddef.h>
#include <stdint.h>

/// Writes an 8-bit non-interlaced PNG (colour type 0, 4, 2 or 6 by `channels` 1-4) whose row y is filtered with
/// `filters[y]` (0-4, or any other value written as is to test rejection), its zlib stream split into IDAT chunks of
/// `chunk` bytes (plus one empty IDAT chunk first). Returns a malloc'ed file and its size in *size, or NULL.
uint8_t *tst_png_filtered(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                          const uint8_t *filters, size_t chunk, size_t *size);

#endif
