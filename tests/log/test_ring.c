/* test_ring.c — MPSC ring: per-producer order, conservation, backpressure,
 * failure wake-up.  Sizes shrink with -DRING_TEST_SCALE for slow builds. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cidstore.h"
#include "log/ring.h"
#include "test_support.h"

#ifndef RING_TEST_PER_PRODUCER
#ifdef CIDSTORE_TSAN
#define RING_TEST_PER_PRODUCER 8000
#else
#define RING_TEST_PER_PRODUCER 60000
#endif
#endif
#define NPROD 8

struct item {
	uint32_t producer;
	uint32_t pad;
	uint64_t seq;
	uint64_t poison_check;
};

struct mpsc_ctx {
	ring_t *r;
	uint32_t id;
	_Atomic int *done;
};

static void *producer(void *arg)
{
	struct mpsc_ctx *c = arg;
	uint64_t next = 0;
	unsigned seed = c->id * 7919u + 1;
	while (next < RING_TEST_PER_PRODUCER) {
		uint32_t n = 1 + (uint32_t)(rand_r(&seed) % 3);
		if (n > RING_TEST_PER_PRODUCER - next)
			n = (uint32_t)(RING_TEST_PER_PRODUCER - next);
		uint64_t t = ring_reserve_mpsc(c->r, n);
		ck_assert_uint_ne(t, RING_FAILED);
		for (uint32_t i = 0; i < n; i++) {
			struct item *it = ring_slot(c->r, t + i);
			it->producer = c->id;
			it->seq = next++;
			it->poison_check = ~it->seq;
		}
		/* publish out of order within the reservation */
		for (uint32_t i = n; i-- > 0;)
			ring_publish_mpsc(c->r, t + i);
	}
	atomic_fetch_add(c->done, 1);
	return NULL;
}

START_TEST(test_mpsc_order_and_conservation)
{
	ring_t *r;
	ck_assert_int_eq(ring_create(64, &r), 0);
	_Atomic int done = 0;
	pthread_t th[NPROD];
	struct mpsc_ctx ctx[NPROD];
	for (uint32_t i = 0; i < NPROD; i++) {
		ctx[i] = (struct mpsc_ctx){r, i, &done};
		pthread_create(&th[i], NULL, producer, &ctx[i]);
	}
	uint64_t expect[NPROD] = {0}, total = 0, next_ticket = 0;
	const uint64_t want = (uint64_t)NPROD * RING_TEST_PER_PRODUCER;
	while (total < want) {
		uint32_t k = ring_kicks(r);
		uint64_t first;
		uint32_t n = ring_peek_spsc(r, &first, 16);
		if (n == 0) {
			ck_assert_int_eq(ring_wait_spsc(r, 100, k, true), 0);
			continue;
		}
		ck_assert_msg(first == next_ticket, "tickets consumed out of order");
		for (uint32_t i = 0; i < n; i++) {
			struct item *it = ring_slot(r, first + i);
			ck_assert_msg(it->producer < NPROD, "garbage producer id");
			ck_assert_msg(it->poison_check == ~it->seq, "torn slot");
			ck_assert_msg(it->seq == expect[it->producer],
				      "producer %u: got %llu, expected %llu (lost, duplicated or reordered)",
				      it->producer, (unsigned long long)it->seq,
				      (unsigned long long)expect[it->producer]);
			expect[it->producer]++;
			memset(it, 0xee, sizeof *it); /* poison consumed slot */
		}
		ring_release_spsc(r, n);
		total += n;
		next_ticket += n;
	}
	for (int i = 0; i < NPROD; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NPROD; i++)
		ck_assert_uint_eq(expect[i], RING_TEST_PER_PRODUCER);
	uint64_t first;
	ck_assert_uint_eq(ring_peek_spsc(r, &first, 16), 0);
	ck_assert_uint_eq(ring_reserved(r), want);
	ring_destroy(r);
}
END_TEST

struct bp_ctx {
	ring_t *r;
	uint32_t n;
	_Atomic int state; /* 0 started, 1 reserved (returned), 2 failed */
	uint64_t ticket;
};

static void *blocking_producer(void *arg)
{
	struct bp_ctx *c = arg;
	uint64_t t = ring_reserve_mpsc(c->r, c->n);
	c->ticket = t;
	if (t == RING_FAILED) {
		atomic_store(&c->state, 2);
		return NULL;
	}
	for (uint32_t i = 0; i < c->n; i++) {
		memset(ring_slot(c->r, t + i), (int)(t + i), RING_SLOT_SIZE);
		ring_publish_mpsc(c->r, t + i);
	}
	atomic_store(&c->state, 1);
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

START_TEST(test_backpressure_blocks_and_resumes)
{
	ring_t *r;
	ck_assert_int_eq(ring_create(4, &r), 0);
	/* fill the ring */
	uint64_t t = ring_reserve_mpsc(r, 4);
	ck_assert_uint_eq(t, 0);
	for (int i = 0; i < 4; i++)
		ring_publish_mpsc(r, (uint64_t)i);
	struct bp_ctx c = {.r = r, .n = 2};
	atomic_init(&c.state, 0);
	pthread_t th;
	pthread_create(&th, NULL, blocking_producer, &c);
	sleep_ms(150); /* long enough to pass spin and yield into futex sleep */
	ck_assert_msg(atomic_load(&c.state) == 0, "producer did not block on a full ring");
	uint64_t first;
	ck_assert_uint_eq(ring_peek_spsc(r, &first, 8), 4);
	ring_release_spsc(r, 1); /* room for 1 of 2: still blocked */
	sleep_ms(50);
	ck_assert_msg(atomic_load(&c.state) == 0, "producer overwrote an unreleased slot");
	ring_release_spsc(r, 1);
	for (int i = 0; i < 200 && atomic_load(&c.state) == 0; i++)
		sleep_ms(5);
	ck_assert_int_eq(atomic_load(&c.state), 1);
	pthread_join(th, NULL);
	ck_assert_uint_eq(c.ticket, 4);
	ck_assert_uint_eq(ring_peek_spsc(r, &first, 8), 4);
	ck_assert_uint_eq(first, 2);
	/* ticket 4 landed in slot 0, ticket 5 in slot 1 */
	ck_assert_uint_eq(((unsigned char *)ring_slot(r, 4))[0], 4);
	ck_assert_uint_eq(((unsigned char *)ring_slot(r, 5))[127], 5);
	ring_destroy(r);
}
END_TEST

START_TEST(test_fail_wakes_waiters)
{
	ring_t *r;
	ck_assert_int_eq(ring_create(2, &r), 0);
	ck_assert_uint_eq(ring_reserve_mpsc(r, 2), 0);
	enum { W = 4 };
	struct bp_ctx c[W];
	pthread_t th[W];
	for (int i = 0; i < W; i++) {
		c[i] = (struct bp_ctx){.r = r, .n = 1};
		atomic_init(&c[i].state, 0);
		pthread_create(&th[i], NULL, blocking_producer, &c[i]);
	}
	sleep_ms(150);
	for (int i = 0; i < W; i++)
		ck_assert_int_eq(atomic_load(&c[i].state), 0);
	ring_fail(r, CIDSTORE_EIO);
	for (int i = 0; i < W; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(atomic_load(&c[i].state), 2);
	}
	ck_assert_int_eq(ring_error(r), CIDSTORE_EIO);
	ring_fail(r, CIDSTORE_ENOMEM); /* first error wins */
	ck_assert_int_eq(ring_error(r), CIDSTORE_EIO);
	ck_assert_uint_eq(ring_reserve_mpsc(r, 1), RING_FAILED);
	ck_assert_int_eq(ring_wait_spsc(r, 1000, ring_kicks(r), true), CIDSTORE_EIO);
	ring_destroy(r);
}
END_TEST

struct kick_ctx {
	ring_t *r;
	_Atomic int woke;
};

static void *sleeper(void *arg)
{
	struct kick_ctx *c = arg;
	uint32_t k = ring_kicks(c->r);
	ring_wait_spsc(c->r, 10000, k, true);
	atomic_store(&c->woke, 1);
	return NULL;
}

START_TEST(test_consumer_wakeups)
{
	ring_t *r;
	ck_assert_int_eq(ring_create(8, &r), 0);
	struct kick_ctx c = {.r = r};
	pthread_t th;
	/* woken by a kick */
	atomic_init(&c.woke, 0);
	pthread_create(&th, NULL, sleeper, &c);
	sleep_ms(50);
	ck_assert_int_eq(atomic_load(&c.woke), 0);
	ring_kick(r);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&c.woke), 1);
	/* woken by a publish */
	atomic_store(&c.woke, 0);
	pthread_create(&th, NULL, sleeper, &c);
	sleep_ms(50);
	ck_assert_int_eq(atomic_load(&c.woke), 0);
	uint64_t t = ring_reserve_mpsc(r, 1);
	ring_publish_mpsc(r, t);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&c.woke), 1);
	/* a timeout returns 0 */
	uint64_t first;
	ring_release_spsc(r, ring_peek_spsc(r, &first, 8));
	ck_assert_int_eq(ring_wait_spsc(r, 10, ring_kicks(r), true), 0);
	/* bad arguments */
	ck_assert_uint_eq(ring_reserve_mpsc(r, 0), RING_FAILED);
	ck_assert_uint_eq(ring_reserve_mpsc(r, 9), RING_FAILED);
	ring_destroy(r);
	ring_t *bad;
	ck_assert_int_eq(ring_create(3, &bad), CIDSTORE_EINVAL);
	ck_assert_int_eq(ring_create(1, &bad), CIDSTORE_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_mpsc_order_and_conservation);
	tcase_add_test(tc, test_backpressure_blocks_and_resumes);
	tcase_add_test(tc, test_fail_wakes_waiters);
	tcase_add_test(tc, test_consumer_wakeups);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
