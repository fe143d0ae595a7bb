// glibc allocator settings (mallopt lives in malloc.h, which Swift's Glibc module does not expose).
#include "CKernels.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void tk_retain_freed_memory(int mmap_threshold, int trim_threshold) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    mallopt(M_TRIM_THRESHOLD, trim_threshold);
#else
    (void)mmap_threshold;
    (void)trim_threshold;
#endif
}

void tk_release_freed_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

// Guarded allocations: the block ends exactly where an inaccessible page begins, so any read or write past its
// end faults at once (a test-time check for kernels that read whole SIMD tiles).
void *tk_guarded_alloc(size_t bytes) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (bytes + page - 1) / page * page;
    if (body == 0) body = page;
    uint8_t *map = mmap(NULL, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return NULL;
    if (mprotect(map + body, page, PROT_NONE) != 0) {
        munmap(map, body + page);
        return NULL;
    }
    return map + body - bytes;
}

void tk_guarded_free(void *p, size_t bytes) {
    if (!p) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (bytes + page - 1) / page * page;
    if (body == 0) body = page;
    uint8_t *map = (uint8_t *)p + bytes - body;
    munmap(map, body + page);
}

void tk_prefetch_rows(const float *first, long rows, long row_stride, long count) {
    for (long r = 0; r < rows; r++) {
        const char *p = (const char *)(first + r * row_stride);
        for (long b = 0; b < count * (long)sizeof(float); b += 64) __builtin_prefetch(p + b, 0, 2);
    }
}
