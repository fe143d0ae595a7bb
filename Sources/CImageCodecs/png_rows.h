// The fast row reader for 8-bit non-interlaced PNG (private to CImageCodecs).
#ifndef TESSERA_PNG_ROWS_H
#define TESSERA_PNG_ROWS_H

#include <stddef.h>
#include <stdint.h>

enum { TC_PAETH_LANES = 16 };

/// Unfilters `rows` rows of `rowbytes` bytes (each stored after its filter-type byte in `filtered`) into `out[y]`;
/// `prev` is the unfiltered row above the first (zeros at the top of the image). Returns -1 on a filter type above 4.
int tc_png_unfilter_rows(const uint8_t *filtered, uint8_t *const *out, const uint8_t *prev, int rows, size_t rowbytes,
                         int bpp);

/// Reads rows [0, end) of an 8-bit non-interlaced image whose first IDAT chunk starts at `idat` (its length field),
/// keeping rows [begin, end) in `pixels`: every IDAT chunk's CRC is checked, zlib inflates, rows are unfiltered
/// above. Returns 0, or -1 with a message in err.
int tc_png_read_rows(const uint8_t *data, size_t size, size_t idat, size_t rowbytes, int bpp, uint32_t begin,
                     uint32_t end, uint8_t *pixels, char *err, size_t err_size);

#endif
