/*
 * metrics_support.h — helpers of the metrics suites (test_metrics.c,
 * test_metrics_promtool.c): taking the Prometheus text of a store, reading
 * one sample of it, and an I/O table whose fdatasync can be made to fail
 * (to see the error counters and the failed gauge).  Header-only.
 */
#ifndef CIDSTORE_TESTS_METRICS_SUPPORT_H
#define CIDSTORE_TESTS_METRICS_SUPPORT_H

#include <errno.h>
#include <stdatomic.h>

#include "unit_support.h"
#include "log/io.h"
#include "store/store_internal.h"

/* The whole text (malloc'd, NUL-terminated), asserting success. */
static inline char *scrape(cidstore_t *s)
{
	long need = cidstore_metrics_prometheus(s, NULL, 0);
	ck_assert_msg(need > 0, "cidstore_metrics_prometheus(NULL, 0): %ld", need);
	for (;;) {
		size_t cap = (size_t)need + 4096; /* counters may grow meanwhile */
		char *buf = malloc(cap);
		ck_assert_ptr_nonnull(buf);
		long n = cidstore_metrics_prometheus(s, buf, cap);
		ck_assert_msg(n > 0, "cidstore_metrics_prometheus: %ld", n);
		if ((size_t)n < cap) {
			ck_assert_uint_eq(strlen(buf), (size_t)n);
			return buf;
		}
		free(buf);
		need = n;
	}
}

/* The value of the sample whose name and labels are exactly `series`
 * (e.g. `cidstore_operations_total{op="insert",result="added"}`); fails
 * the test when the text has no such line. */
static inline double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		if ((size_t)(eol - p) > n && strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = *eol ? eol + 1 : eol;
	}
	ck_abort_msg("no sample %s in the metrics text", series);
	return -1;
}

/* Whether the text has a line starting with prefix. */
static inline bool has_line(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; *p;) {
		if (strncmp(p, prefix, n) == 0)
			return true;
		const char *eol = strchr(p, '\n');
		if (!eol)
			break;
		p = eol + 1;
	}
	return false;
}

static inline uint64_t op_count(const char *text, const char *op, const char *result)
{
	char series[160];
	snprintf(series, sizeof series, "cidstore_operations_total{op=\"%s\",result=\"%s\"}", op,
		 result);
	return (uint64_t)sample(text, series);
}

static inline uint64_t err_count(const char *text, const char *code)
{
	char series[96];
	snprintf(series, sizeof series, "cidstore_errors_total{code=\"%s\"}", code);
	return (uint64_t)sample(text, series);
}

/* ---- an I/O table whose fdatasync fails once armed ---- */

static _Atomic int failio_armed;

static inline int failio_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	/* relaxed: a test switch, set before the writes it should fail */
	if (atomic_load_explicit(&failio_armed, memory_order_relaxed)) {
		errno = EIO;
		return -1;
	}
	return log_io_posix()->fdatasync(log_io_posix()->ctx, fd);
}

static inline const struct log_io *failio(void)
{
	static struct log_io t;
	t = *log_io_posix();
	t.fdatasync = failio_fdatasync;
	atomic_store_explicit(&failio_armed, 0, memory_order_relaxed);
	return &t;
}

#endif
