/*
 * rooms.h — same-triple exclusion between triple inserts and deletes
 * (group mutual exclusion over hashed stripes).  Algorithm and invariants:
 * rooms.c.
 */
#ifndef CIDSTORE_TRIPLE_ROOMS_H
#define CIDSTORE_TRIPLE_ROOMS_H

#include <stdatomic.h>
#include <stdint.h>

#include "cidstore.h"

#define TROOM_STRIPES 4096 /* power of two */

typedef struct trooms {
	/* > 0: that many inserters inside; < 0: that many deleters inside;
	 * 0: free.  Futex words.  atomic (CAS acquire on entry, seq_cst on
	 * exit: pairs with the entry CAS, and with waiters below) */
	_Atomic int32_t stripe[TROOM_STRIPES];
	/* threads sleeping (or about to) on some stripe.  atomic (seq_cst) */
	_Atomic uint32_t waiters;
} trooms_t;

enum { TROOM_INSERT = 1, TROOM_DELETE = -1 };

void trooms_init(trooms_t *r);

/* The stripe of triple (s, p, o). */
unsigned troom_of(const cid_t *s, const cid_t *p, const cid_t *o);

/* Enters stripe i as an inserter or a deleter (TROOM_INSERT / _DELETE);
 * waits while the other kind is inside. */
void troom_enter(trooms_t *r, unsigned i, int kind);
void troom_exit(trooms_t *r, unsigned i, int kind);

#endif
