/*
 * ring.h — bounded MPSC ring of 128-byte slots (layer 3, no I/O).
 *
 * Producers (any number of threads) reserve n consecutive slots with one
 * atomic fetch_add on a ticket counter, fill them and publish each one.  One
 * consumer reads the published prefix in ticket order and releases slots
 * once it no longer needs their bytes.  A full ring makes producers wait
 * (spin, then yield, then sleep on a futex); nothing is overwritten or
 * dropped.  Tickets are 64-bit and never wrap; the WAL maps ticket t to
 * LSN base + t.
 *
 * Synchronization table (which calls may run at the same time):
 *
 *   | call                         | may run concurrently with           |
 *   |------------------------------|-------------------------------------|
 *   | ring_reserve_mpsc, ring_slot | every call but create/destroy, any  |
 *   | (own tickets), publish_mpsc, | number of threads                   |
 *   | ring_kick, ring_fail,        |                                     |
 *   | ring_error, ring_reserved    |                                     |
 *   | ring_peek_spsc, ring_release | the producer calls; ONE consumer at |
 *   | _spsc, ring_kicks            | a time (several threads may take    |
 *   |                              | turns under a lock of the caller's) |
 *   | ring_wait_spsc               | everything; ONE designated thread   |
 *   | ring_published               | everything (a hint)                 |
 *   | ring_create / ring_destroy   | nothing                             |
 *
 * Memory ordering: everything a producer wrote into its slots before
 * ring_publish_mpsc() happens-before the consumer's reads of them after a
 * ring_peek_spsc() that counted them; everything the consumer did with a
 * slot before ring_release_spsc() happens-before the writes of the producer
 * that reuses it (after ring_reserve_mpsc() returns).
 */
#ifndef CIDSTORE_LOG_RING_H
#define CIDSTORE_LOG_RING_H

#include <stdbool.h>
#include <stdint.h>

#define RING_SLOT_SIZE 128u
/* ring_reserve_mpsc's answer when the ring failed (see ring_error). */
#define RING_FAILED UINT64_MAX

typedef struct ring ring_t;

/* Creates a ring of nslots slots (a power of two, 2 .. 2^30).  Returns 0,
 * CIDSTORE_EINVAL, CIDSTORE_ENOMEM.  Slots are 64-byte aligned. */
int ring_create(uint32_t nslots, ring_t **out);

/* Frees the ring.  No other call may run or follow.  NULL is ignored. */
void ring_destroy(ring_t *r);

uint32_t ring_capacity(const ring_t *r);

/* Producer: reserves n (1 <= n <= capacity) consecutive tickets with one
 * atomic fetch_add and returns the first.  If the ring lacks room for them,
 * waits after the fetch_add until the consumer released enough slots: spins
 * with ck_backoff, then sched_yield, then sleeps on a futex.  Returns
 * RING_FAILED when the ring has failed (before or while waiting), or when n
 * is 0 or above the capacity; tickets taken then are abandoned (a failed
 * ring is never consumed again).  Linearization point: the fetch_add.
 * Waits for: free space (the consumer). */
uint64_t ring_reserve_mpsc(ring_t *r, uint32_t n);

/* The 128 bytes of slot ticket.  Valid for the producer that reserved it
 * until it publishes it, and for the consumer from ring_peek_spsc until
 * ring_release_spsc.  Never waits. */
void *ring_slot(ring_t *r, uint64_t ticket);

/* Producer: publishes one reserved slot (a release of its bytes to the
 * consumer) and wakes the consumer if it sleeps.  Every reserved ticket must
 * be published, promptly: the consumer reads in ticket order and stops at
 * the first unpublished one.  Linearization point: the store of the slot's
 * sequence word.  Never waits (may issue one futex wake). */
void ring_publish_mpsc(ring_t *r, uint64_t ticket);

/* Tickets handed out so far (the next ticket).  Approximate under
 * concurrency.  Never waits. */
uint64_t ring_reserved(const ring_t *r);

/* Slots reserved and not yet released by the consumer, at most the
 * capacity (producers waiting for room are not counted beyond it).  A hint
 * for metrics: two relaxed loads.  Never waits. */
uint64_t ring_used(const ring_t *r);

/* Consumer: number of published slots, at most max, in ticket order from
 * *first (set to the first unreleased ticket).  Does not release them.
 * Never waits. */
uint32_t ring_peek_spsc(ring_t *r, uint64_t *first, uint32_t max);

/* Consumer: releases the n oldest peeked slots and wakes producers that
 * wait for space.  Never waits (may issue one futex wake). */
void ring_release_spsc(ring_t *r, uint32_t n);

/* Consumer: the kick counter; read it before checking the conditions that
 * ring_kick() signals, and pass the value to ring_wait_spsc. */
uint32_t ring_kicks(const ring_t *r);

/* Any thread: how many slots from the first unreleased one are published
 * (at most max).  A hint: consumers may move on meanwhile.  Never waits. */
uint32_t ring_published(ring_t *r, uint32_t max);

/* The one sleeping consumer: sleeps until the kick counter differs from
 * kicks_seen, the ring fails, timeout_ms passes (timeout_ms < 0: no
 * timeout), or — on_publish true ("eager") — a slot is published;
 * on_publish false ("lazy"): a reservation that passes half the capacity
 * or finds the ring full wakes it instead, publishes do not.  Returns 0
 * (something to do, or a spurious wake-up: the caller re-checks), or the
 * ring's error.  Waits for: those events. */
int ring_wait_spsc(ring_t *r, int timeout_ms, uint32_t kicks_seen, bool on_publish);

/* Any thread: bumps the kick counter and wakes the consumer.  Never waits. */
void ring_kick(ring_t *r);

/* Any thread: makes the ring failed with err (< 0) — sticky, the first
 * error wins — and wakes every waiting producer and the consumer. */
void ring_fail(ring_t *r, int err);

/* 0, or the error the ring failed with.  Never waits. */
int ring_error(const ring_t *r);

#endif
