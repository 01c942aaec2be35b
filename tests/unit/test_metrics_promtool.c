/*
 * test_metrics_promtool.c — the exposition checked by a real consumer:
 * `promtool check metrics` (Debian package prometheus) must accept the
 * text of busy stores with no lint problem.  Texts are taken while worker
 * threads insert, look up, batch and delete (in memory, durable SYNC and
 * ASYNC, serialized, metrics off), after errors (bad arguments, a failed
 * fdatasync that fails the store, read_only refusals), and written to a
 * file that promtool reads on its standard input.  promtool runs after
 * the workers stopped (no fork beside running threads).
 * Exits 77 (skipped) only when promtool is not installed.
 */
#include "metrics_support.h"

#include <sys/wait.h>

#define TAG 0x70726f6dull
#define SCRAPES 3

/* Runs promtool on text; returns its exit status, its output in out. */
static int promtool(const char *text, char *out, size_t cap)
{
	char path[] = "/tmp/cidstore-prom-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	unlink(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void expect_clean(const char *text, const char *what)
{
	ck_assert_msg(strstr(text, "cidstore_operations_total{") != NULL, "%s: no counters", what);
	char out[4096];
	int rc = promtool(text, out, sizeof out);
	ck_assert_msg(rc == 0 && out[0] == '\0', "%s: promtool check metrics exit %d:\n%s", what,
		      rc, out);
}

/* promtool itself rejects a bad exposition (the check can fail). */
START_TEST(test_promtool_rejects)
{
	char out[4096];
	int rc = promtool("# HELP cidstore_x_count a counter named like a histogram part\n"
			  "# TYPE cidstore_x_count counter\ncidstore_x_count 1\n",
			  out, sizeof out);
	ck_assert_msg(rc != 0 && strstr(out, "_total"), "promtool accepted it: %d %s", rc, out);
}
END_TEST

/* ---- a busy store ---- */

struct busy {
	cidstore_t *s;
	int id;
	atomic_bool *stop;
	bool expect_ok; /* the store should not fail */
};

static void *busy_worker(void *arg)
{
	struct busy *b = arg;
	uint64_t i = 0;
	cid_t keys[8], vals[8];
	long counts[8];
	while (!atomic_load_explicit(b->stop, memory_order_relaxed) && !failed_already()) {
		uint64_t base = ((uint64_t)b->id << 40) + i;
		cid_t k = mk(TAG, base % 4096), v = mk(TAG + 1, base);
		long rc = 0;
		switch (i % 8) {
		case 0: case 1: case 2:
			rc = cidstore_insert(b->s, &k, &v);
			break;
		case 3:
			rc = cidstore_lookup(b->s, &k, NULL, 0);
			break;
		case 4:
			rc = cidstore_contains(b->s, &k, &v);
			break;
		case 5:
			for (int j = 0; j < 8; j++) {
				keys[j] = mk(TAG, (base + (uint64_t)j) % 4096);
				vals[j] = mk(TAG + 2, base + (uint64_t)j);
			}
			rc = i % 16 == 5 ? cidstore_insert_many(b->s, keys, vals, 8, NULL)
					 : cidstore_lookup_many(b->s, keys, 8, NULL, 0, counts);
			break;
		case 6: {
			cidstore_op_t ops[2] = {{CIDSTORE_OP_INSERT, k, v},
						{CIDSTORE_OP_DELETE_VALUE, k, v}};
			rc = cidstore_apply(b->s, ops, 2);
			break;
		}
		case 7:
			rc = i % 64 == 7 ? cidstore_delete_key(b->s, &k)
					 : cidstore_delete_value(b->s, &k, &v);
			break;
		}
		if (rc < 0 && b->expect_ok)
			tfail("worker %d: op %llu: %s", b->id, (unsigned long long)(i % 8),
			      cidstore_strerror((int)rc));
		i++;
	}
	return NULL;
}

/* Takes SCRAPES texts while 2 workers run (plus bad-argument errors), then
 * checks each with promtool. */
static void check_busy(cidstore_t *s, const char *what, bool expect_ok)
{
	reset_failures();
	enum { T = 2 };
	atomic_bool stop = false;
	struct busy b[T];
	pthread_t t[T];
	for (int i = 0; i < T; i++) {
		b[i] = (struct busy){s, i, &stop, expect_ok};
		spawn(&t[i], busy_worker, &b[i]);
	}
	char *texts[SCRAPES];
	for (int j = 0; j < SCRAPES; j++) {
		sleep_ms(20);
		cid_t k = mk(TAG, 1);
		ck_assert_int_eq(cidstore_insert(s, &k, NULL), CIDSTORE_EINVAL);
		texts[j] = scrape(s);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < T; i++)
		pthread_join(t[i], NULL);
	assert_no_failures(what);
	for (int j = 0; j < SCRAPES; j++) {
		char w[128];
		snprintf(w, sizeof w, "%s, text %d", what, j + 1);
		expect_clean(texts[j], w);
		free(texts[j]);
	}
	char *last = scrape(s);
	expect_clean(last, what);
	ck_assert_uint_ge(err_count(last, "EINVAL"), SCRAPES);
	free(last);
}

START_TEST(test_in_memory)
{
	cidstore_t *s = open_mem_store(11, 0, false);
	check_busy(s, "in-memory", true);
	close_store(s);
	s = open_mem_store(12, 0, true);
	check_busy(s, "in-memory serialized", true);
	close_store(s);
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.metrics = false;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	for (uint64_t i = 0; i < 1000; i++) {
		cid_t k = mk(TAG, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &k), 1);
	}
	char *m = scrape(s);
	expect_clean(m, "metrics off");
	free(m);
	close_store(s);
}
END_TEST

static cidstore_t *open_dir_io(const char *dir, cidstore_durability_t d, const struct log_io *io)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = d;
	o.ring_records = 4096;
	o.checkpoint_wal_bytes = 64 * 1024; /* automatic checkpoints meanwhile */
	cidstore_t *s = NULL;
	int rc = cidstore_open_io(&o, io, &s);
	ck_assert_msg(rc == 0, "open %s: %s", dir, cidstore_strerror(rc));
	return s;
}

START_TEST(test_durable)
{
	char dir[64];
	tmpdir_make(dir, sizeof dir, "cidstore-prom");
	cidstore_t *s = open_dir_io(dir, CIDSTORE_DURABILITY_SYNC, NULL);
	check_busy(s, "durable SYNC", true);
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	close_store(s);
	s = open_dir_io(dir, CIDSTORE_DURABILITY_ASYNC, NULL); /* recovery, then ASYNC */
	check_busy(s, "durable ASYNC", true);
	char *m = scrape(s);
	ck_assert(strstr(m, "cidstore_wal_group_commit_records_bucket{le=\"+Inf\"}") != NULL);
	ck_assert(strstr(m, "cidstore_recovery_duration_seconds ") != NULL);
	free(m);
	close_store(s);
	ck_assert_int_eq(tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_after_errors)
{
	char dir[64];
	tmpdir_make(dir, sizeof dir, "cidstore-prom");
	cidstore_t *s = open_dir_io(dir, CIDSTORE_DURABILITY_SYNC, failio());
	check_busy(s, "SYNC before the failure", true);
	atomic_store(&failio_armed, 1); /* the next fdatasync fails the store */
	check_busy(s, "SYNC failing", false);
	char *m = scrape(s);
	ck_assert_uint_eq(sample(m, "cidstore_failed"), 1);
	ck_assert_uint_ge(err_count(m, "EIO"), 1);
	expect_clean(m, "failed store");
	free(m);
	cidstore_close(s); /* EIO */
	atomic_store(&failio_armed, 0);
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.read_only = true;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	check_busy(s, "read_only (ERDONLY)", false);
	m = scrape(s);
	ck_assert_uint_ge(err_count(m, "ERDONLY"), 1);
	free(m);
	close_store(s);
	ck_assert_int_eq(tmpdir_remove(dir), 0);
}
END_TEST

static Suite *promtool_suite(void)
{
	Suite *s = suite_create("metrics_promtool");
	TCase *tc = tcase_create("promtool");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_promtool_rejects);
	tcase_add_test(tc, test_in_memory);
	tcase_add_test(tc, test_durable);
	tcase_add_test(tc, test_after_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (system("command -v promtool > /dev/null 2>&1") != 0) {
		fprintf(stderr, "promtool not found (Debian package prometheus): skipped\n");
		return 77;
	}
	return run_suite(promtool_suite());
}
