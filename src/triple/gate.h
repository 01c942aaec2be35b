/*
 * gate.h — the triple layer's writer gate: a distributed shared lock that
 * every triple insert and delete holds shared while it changes the index,
 * and a stale-entry cleaning pass holds exclusively.  The algorithm and its
 * invariants: gate.c.
 */
#ifndef CIDSTORE_TRIPLE_GATE_H
#define CIDSTORE_TRIPLE_GATE_H

#include <stdatomic.h>
#include <stdint.h>

#define TGATE_SLOTS 64

struct tgate_slot {
	_Atomic long n; /* writers inside through this slot.  atomic (seq_cst) */
	char pad[64 - sizeof(long)];
};

typedef struct tgate {
	struct tgate_slot slot[TGATE_SLOTS] __attribute__((aligned(64)));
	/* 1 while a closer holds the gate or waits for it to drain; futex word
	 * entering writers sleep on.  atomic (seq_cst) */
	_Atomic uint32_t closed __attribute__((aligned(64)));
	/* bumped by a writer that leaves while closed is 1; futex word the
	 * closer sleeps on.  atomic (seq_cst) */
	_Atomic uint32_t drained;
} tgate_t;

/* All slots 0, open. */
void tgate_init(tgate_t *g);

/* Shared entry for the calling thread; waits while the gate is closed.
 * Returns the slot to pass to tgate_exit. */
unsigned tgate_enter(tgate_t *g);
void tgate_exit(tgate_t *g, unsigned slot);

/* Exclusive: one closer at a time (the caller serializes closers).  Waits
 * until every writer inside has left; new writers wait until tgate_open. */
void tgate_close(tgate_t *g);
void tgate_open(tgate_t *g);

#endif
