/*
 * test_ring_asserts.c — the ring's assertions fire (src/log/ring.c,
 * "ASSERTIONS"): each case breaks the ring's contract in a child process
 * and expects it to abort with "invariant broken" naming the check.  The
 * CS_ASSERT cases run in every build; the CS_DEBUG_ASSERT ones only in a
 * -Ddebug_checks=true build (elsewhere the same misuse goes unchecked, and
 * the case only checks that it does not abort).
 */
#include "unit_support.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log/ring.h"
#include "util/check.h"

enum misuse {
	PUBLISH_TWICE,     /* CS_ASSERT: the slot already holds this lap */
	PUBLISH_NEXT_LAP,  /* CS_ASSERT: the slot's previous lap is unreleased */
	RELEASE_UNPEEKED,  /* CS_DEBUG_ASSERT: published_run */
	SLOT_UNRESERVED,   /* CS_DEBUG_ASSERT: in_window */
};

static void misuse(enum misuse m)
{
	ring_t *r;
	if (ring_create(4, &r) != 0)
		_exit(3);
	uint64_t t = ring_reserve_mpsc(r, 1), first;
	switch (m) {
	case PUBLISH_TWICE:
		ring_publish_mpsc(r, t);
		ring_publish_mpsc(r, t);
		break;
	case PUBLISH_NEXT_LAP:
		ring_publish_mpsc(r, t + 4);
		break;
	case RELEASE_UNPEEKED:
		ring_publish_mpsc(r, t);
		ring_peek_spsc(r, &first, 4);
		ring_release_spsc(r, 2);
		break;
	case SLOT_UNRESERVED:
		(void)ring_slot(r, t + 1);
		break;
	}
	ring_destroy(r);
}

/* Runs misuse m in a child; returns whether it aborted, with its stderr. */
static bool aborts(enum misuse m, char *err, size_t cap)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		misuse(m);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t k;
	while (n + 1 < cap && (k = read(p[0], err + n, cap - 1 - n)) > 0)
		n += (size_t)k;
	err[n] = '\0';
	close(p[0]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void expect(enum misuse m, bool debug_tier, const char *check)
{
	char err[2048];
	bool a = aborts(m, err, sizeof err);
	if (debug_tier && !cs_debug_checks) {
		ck_assert_msg(!a, "misuse %d aborted without debug checks: %s", m, err);
		return;
	}
	ck_assert_msg(a, "misuse %d did not abort (stderr: %s)", m, err);
	ck_assert_msg(strstr(err, "invariant broken") && strstr(err, check),
		      "misuse %d: expected a report naming %s, got: %s", m, check, err);
}

START_TEST(test_publish_twice)
{
	expect(PUBLISH_TWICE, false, "seq_now(r, ticket)");
}
END_TEST

START_TEST(test_publish_next_lap)
{
	/* in a debug build the window check (ticket >= head) fires first */
	expect(PUBLISH_NEXT_LAP, false, cs_debug_checks ? "in_window" : "seq_now(r, ticket)");
}
END_TEST

START_TEST(test_release_unpeeked)
{
	expect(RELEASE_UNPEEKED, true, "published_run");
}
END_TEST

START_TEST(test_slot_unreserved)
{
	expect(SLOT_UNRESERVED, true, "in_window");
}
END_TEST

static Suite *ring_asserts_suite(void)
{
	Suite *s = suite_create("ring_asserts");
	TCase *tc = tcase_create("misuse");
	tcase_add_test(tc, test_publish_twice);
	tcase_add_test(tc, test_publish_next_lap);
	tcase_add_test(tc, test_release_unpeeked);
	tcase_add_test(tc, test_slot_unreserved);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(ring_asserts_suite());
}
