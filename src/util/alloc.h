/*
 * alloc.h — the allocator of the index's long-lived objects (value sets,
 * forwarding records, directories, bucket chunks).
 *
 * With -Dallocator=jemalloc they come from jemalloc's own entry points
 * (mallocx/dallocx), so the library really uses jemalloc even in a program
 * whose malloc() resolves to glibc's (the executable links libc before our
 * libjemalloc dependency).  Sanitizer builds use the system allocator.
 * Memory from cs_malloc must be freed with cs_free.
 */
#ifndef CIDSTORE_UTIL_ALLOC_H
#define CIDSTORE_UTIL_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

#ifdef CIDSTORE_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
static inline void *cs_malloc(size_t n)
{
	return mallocx(n ? n : 1, 0);
}
static inline void *cs_aligned(size_t align, size_t n)
{
	return mallocx(n ? n : 1, MALLOCX_ALIGN(align));
}
static inline void cs_free(void *p)
{
	if (p)
		dallocx(p, 0);
}
#else
static inline void *cs_malloc(size_t n)
{
	return malloc(n);
}
static inline void *cs_aligned(size_t align, size_t n)
{
	return aligned_alloc(align, (n + align - 1) / align * align);
}
static inline void cs_free(void *p)
{
	free(p);
}
#endif

#endif
