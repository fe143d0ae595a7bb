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
