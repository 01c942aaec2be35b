/*
 * test_support.h — small helpers every log-layer test may use: a per-test
 * temporary directory under /tmp, a byte-for-byte image of a directory, and
 * the Check main().  Header-only; every function is static inline, so a test
 * that uses only some of them compiles without unused-function warnings.
 */
#ifndef CIDSTORE_TEST_SUPPORT_H
#define CIDSTORE_TEST_SUPPORT_H

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- temporary directory ---- */

/* Creates a fresh directory /tmp/<prefix>-XXXXXX; its path goes to dir. */
static inline void tmpdir_make(char *dir, size_t cap, const char *prefix)
{
	snprintf(dir, cap, "/tmp/%s-XXXXXX", prefix);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline int tmpdir_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

/* Removes dir and everything below it: 0, or -1 when something stayed. */
static inline int tmpdir_remove(const char *dir)
{
	return nftw(dir, tmpdir_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- every file of a directory, byte for byte, sorted by name ---- */

#define DIRIMG_MAX 64
struct dirimg_file {
	char name[256];
	uint8_t *data;
	size_t len;
};
struct dirimg {
	struct dirimg_file f[DIRIMG_MAX];
	size_t n;
};

static inline int dirimg_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dirimg_file *)a)->name, ((const struct dirimg_file *)b)->name);
}

static inline void dirimg_take(struct dirimg *im, const char *dir)
{
	memset(im, 0, sizeof(*im));
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		ck_assert_uint_lt(im->n, DIRIMG_MAX);
		struct dirimg_file *f = &im->f[im->n++];
		snprintf(f->name, sizeof(f->name), "%s", de->d_name);
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		int fd = open(p, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		struct stat st;
		ck_assert_int_eq(fstat(fd, &st), 0);
		f->len = (size_t)st.st_size;
		f->data = malloc(f->len + 1);
		ck_assert_int_eq(pread(fd, f->data, f->len, 0), (ssize_t)f->len);
		close(fd);
	}
	closedir(d);
	qsort(im->f, im->n, sizeof(im->f[0]), dirimg_file_cmp);
}

static inline void dirimg_free(struct dirimg *im)
{
	for (size_t i = 0; i < im->n; i++)
		free(im->f[i].data);
	im->n = 0;
}

/* The same files with the same bytes; says which file appeared, disappeared
 * or was modified. */
static inline void dirimg_expect_same(const struct dirimg *a, const struct dirimg *b)
{
	for (size_t j = 0; j < b->n; j++) {
		size_t i = 0;
		while (i < a->n && strcmp(a->f[i].name, b->f[j].name) != 0)
			i++;
		ck_assert_msg(i < a->n, "file %s appeared (%zu files now, %zu before)",
			      b->f[j].name, b->n, a->n);
	}
	ck_assert_msg(a->n == b->n, "directory now has %zu files, had %zu", b->n, a->n);
	for (size_t i = 0; i < a->n; i++) {
		size_t j = 0;
		while (j < b->n && strcmp(a->f[i].name, b->f[j].name) != 0)
			j++;
		ck_assert_msg(j < b->n, "file %s disappeared", a->f[i].name);
		ck_assert_msg(a->f[i].len == b->f[j].len &&
				      memcmp(a->f[i].data, b->f[j].data, a->f[i].len) == 0,
			      "file %s was modified", a->f[i].name);
	}
}

/* Takes a new image of dir, expects it the same as *before, frees both. */
static inline void dirimg_expect_unchanged(struct dirimg *before, const char *dir)
{
	struct dirimg after;
	dirimg_take(&after, dir);
	dirimg_expect_same(before, &after);
	dirimg_free(before);
	dirimg_free(&after);
}

/* ---- main() ---- */

/* Runs every test of s: EXIT_SUCCESS when none failed. */
static inline int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
