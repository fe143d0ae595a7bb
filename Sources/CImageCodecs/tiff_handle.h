// The handle both the TIFF reader and writer use (private to the shim).
#ifndef TESSERA_TIFF_HANDLE_H
#define TESSERA_TIFF_HANDLE_H

#include "tc_tiff.h"

#include <tiffio.h>

struct tc_tiff {
    TIFF *tif;
    char message[512];  // the last libtiff error on this handle
    uint64_t max_block_bytes;
    // Reading: the page whose facts are current, and the decoded block row kept from the last read.
    int64_t page;
    tc_tiff_info info;
    uint16_t *colormap[3];
    int colormap_shift;
    uint8_t *block;         // decoded rows of one block row, output format
    int64_t block_index;    // which block row `block` holds, -1 none
    uint8_t *scratch;       // one strip or tile as the file stores it
    tmsize_t scratch_size;
    // In-memory source.
    const uint8_t *data;
    uint64_t data_size, data_pos;
    // Writing.
    tc_tiff_layout layout;
    int in_page;
    uint32_t pages_done;
    int tile_regions;        // the current page is written by regions (tc_tiff_write_tiles), not rows
    int resumed;             // the current page's directory is already in the file (checkpointed)
    uint32_t rows_buffered;  // rows of the current block held in `block`
    uint32_t rows_written;   // rows of the current page encoded
};

/// Open options sending errors to `t->message` and dropping warnings.
TIFFOpenOptions *tc_tiff_options(struct tc_tiff *t);
/// Copies the handle's last libtiff message (or `fallback`) to err.
void tc_tiff_fail(struct tc_tiff *t, const char *fallback, char *err, size_t err_size);
/// Bytes of one sample as read_rows returns it.
int tc_tiff_out_bytes(int bits);

#endif
