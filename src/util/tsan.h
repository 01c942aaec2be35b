/*
 * tsan.h — detect ThreadSanitizer and annotate happens-before edges that it
 * cannot see (they are created inside uninstrumented code such as libck.so).
 */
#ifndef CIDSTORE_UTIL_TSAN_H
#define CIDSTORE_UTIL_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define CIDSTORE_HAVE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CIDSTORE_HAVE_TSAN 1
#endif
#endif

#ifdef CIDSTORE_HAVE_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define cidstore_tsan_acquire(a) __tsan_acquire((void *)(a))
#define cidstore_tsan_release(a) __tsan_release((void *)(a))
#else
#define cidstore_tsan_acquire(a) ((void)(a))
#define cidstore_tsan_release(a) ((void)(a))
#endif

#endif
