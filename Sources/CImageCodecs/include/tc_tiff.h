// libtiff behind a C boundary: one handle per open file, errors captured per handle (never libtiff's process-wide
// handlers), sizes checked against the caller's limits before any buffer is allocated.
#ifndef TESSERA_TC_TIFF_H
#define TESSERA_TC_TIFF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An open TIFF file, for reading or for writing (not both).
typedef struct tc_tiff tc_tiff;

/// Sample formats as the TIFF SampleFormat tag numbers them.
enum { TC_TIFF_UINT = 1, TC_TIFF_INT = 2, TC_TIFF_FLOAT = 3 };

/// One page (image file directory) of a TIFF file, as stored.
typedef struct {
    uint32_t width, height;
    int samples;        // samples per pixel in the file (a palette image has 1, decoded to 3)
    int bits;           // bits per sample: 1, 8, 16 or 32
    int sample_format;  // TC_TIFF_UINT, TC_TIFF_INT or TC_TIFF_FLOAT
    int planar;         // 1: samples of a pixel together; 2: one plane per sample
    int tiled;
    uint32_t block_width, block_height;  // tile size, or the image width and rows per strip
    int compression;    // TIFF Compression tag: 1 none, 5 LZW, 7 JPEG, 8 deflate, 32773 PackBits, ...
    int photometric;    // 0 min-is-white, 1 min-is-black, 2 RGB, 3 palette, 6 YCbCr, ...
    int extra_alpha;    // the last sample is (associated or unassociated) alpha
    int big;            // the file is BigTIFF
    uint32_t pages;     // directories in the file
    // What read_rows returns: channels per pixel and bits per sample (1-bit expands to 8, palette to RGB).
    int channels;
    int out_bits;
} tc_tiff_info;

/// Opens a file for reading (`max_block_bytes`: the largest decoded strip or tile row accepted). NULL and a
/// message on failure.
tc_tiff *tc_tiff_open(const char *path, uint64_t max_block_bytes, char *err, size_t err_size);
/// Opens an in-memory file for reading; `data` must outlive the handle.
tc_tiff *tc_tiff_open_memory(const uint8_t *data, size_t size, uint64_t max_block_bytes, char *err,
                             size_t err_size);
/// Facts of page `page` (0-based) and, when `description` is given, its ImageDescription (owned by the handle,
/// valid until the next call; NULL when absent). Rejects layouts read_rows cannot decode, with the reason.
int tc_tiff_page_info(tc_tiff *t, uint32_t page, tc_tiff_info *info, const char **description, char *err,
                      size_t err_size);
/// Decodes rows [row0, row0 + rows) of page `page` into `out` (interleaved, `info.channels` samples a pixel,
/// host-endian 8/16-bit unsigned or 32-bit float). The strip or tile row last decoded is kept, so reading a page
/// top to bottom decodes every block once.
int tc_tiff_read_rows(tc_tiff *t, uint32_t page, uint32_t row0, uint32_t rows, void *out, size_t out_bytes,
                      char *err, size_t err_size);

/// Decodes the `w` x `h` window at (`x0`, `y0`) of page `page`, as read_rows does. Tiled pages decode only the
/// tiles under the window, so memory follows the window, not the image width.
int tc_tiff_read_window(tc_tiff *t, uint32_t page, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h, void *out,
                        size_t out_bytes, char *err, size_t err_size);

/// How a written page is laid out.
typedef struct {
    uint32_t width, height;
    int samples, bits, sample_format, planar;
    uint32_t tile_width, tile_height;  // tile_width 0: strips of tile_height rows
    int compression;                   // Compression tag value (1, 5, 7, 8, 32773)
    int predictor;                     // 1 none, 2 horizontal differencing (LZW and deflate)
    int jpeg_quality;                  // JPEG compression only
    int extra_alpha;                   // the last sample is unassociated alpha
} tc_tiff_layout;

/// Creates (truncating) a file for writing; `big` makes it BigTIFF.
tc_tiff *tc_tiff_create(const char *path, int big, char *err, size_t err_size);
/// Reopens a file written by this writer and checkpointed (tc_tiff_checkpoint) to append the rest of its last
/// page: `rows_done` rows of it were checkpointed (a multiple of the block height) and `pages_done` pages before it
/// were finished.
tc_tiff *tc_tiff_resume(const char *path, const tc_tiff_layout *layout, uint32_t pages_done, uint32_t rows_done,
                        char *err, size_t err_size);
/// Starts a page with `layout` and an optional ImageDescription.
int tc_tiff_begin_page(tc_tiff *t, const tc_tiff_layout *layout, const char *description, char *err,
                       size_t err_size);
/// Appends `rows` rows of interleaved samples (`layout.samples` a pixel, 1-bit samples one per byte, 0 or
/// non-zero) to the current page; whole blocks are encoded as they fill.
int tc_tiff_write_rows(tc_tiff *t, const void *pixels, uint32_t rows, char *err, size_t err_size);
/// Encodes the tiles of a `w` x `h` region at (`x0`, `y0`) of the current (tiled) page from `pixels`
/// (interleaved, `w` pixels a row). `x0` and `y0` are multiples of the tile size; `w` and `h` are too unless the
/// region reaches the page's right or bottom edge. Regions may come in any order; `tc_tiff_end_page` then
/// trusts the caller to have covered the page.
int tc_tiff_write_tiles(tc_tiff *t, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h, const void *pixels, char *err,
                        size_t err_size);
/// Rows of the current page encoded and in the file (a multiple of the block height, or the page's height).
uint32_t tc_tiff_rows_written(const tc_tiff *t);
/// Writes the current directory with the blocks so far, so the file can be resumed from them after a crash.
int tc_tiff_checkpoint(tc_tiff *t, char *err, size_t err_size);
/// Encodes the last partial block and writes the page's directory.
int tc_tiff_end_page(tc_tiff *t, char *err, size_t err_size);
/// Copies every page of `src` (a file written by this writer) to the end of the file being written, block by
/// block without decoding.
int tc_tiff_append_pages(tc_tiff *t, const char *src, char *err, size_t err_size);

/// Closes a reader or a writer; for a writer, returns -1 and a message if the file could not be completed.
int tc_tiff_close(tc_tiff *t, char *err, size_t err_size);

/// The linked libtiff's version line.
const char *tc_tiff_version(void);

#ifdef __cplusplus
}
#endif

#endif
