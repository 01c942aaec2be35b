/*
 * vset.h — the value set of a key holding three or more values.  Internal.
 *
 * Layout: a sorted region v[0..nsorted) (immutable once published) followed
 * by an appended region v[nsorted..nsorted+napp) of inserts and tombstones
 * (tomb[i] != 0) in the order they happened.  A value's presence is decided
 * by its LAST appended entry if it has one, else by the sorted region.
 *
 * Concurrency (see index.c for the whole argument):
 *  - Only the writer holding the key's lock bit appends: it writes the entry
 *    at position napp, then publishes with a release store of napp + 1 (the
 *    linearization point of that insert/delete).  Published entries are
 *    never written again, so readers read them as plain memory after an
 *    acquire load of napp.
 *  - When the appended region is full the writer builds a new, fully sorted
 *    set and swaps the slot's pointer (release); the old set is retired
 *    through the epoch, never freed while a reader may hold it.
 */
#ifndef CIDSTORE_INDEX_VSET_H
#define CIDSTORE_INDEX_VSET_H

#include <ck_epoch.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidstore.h"

#define VSET_APPEND_CAP 64 /* largest appended region */
#define VSET_APPEND_MIN 4  /* smallest appended region */

typedef struct vset {
	ck_epoch_entry_t ep;   /* retirement */
	void *owner;           /* the index that accounts for it; immutable */
	uint32_t nsorted;      /* immutable */
	uint32_t app_cap;      /* immutable: appended region size, grows with the
				  set (VSET_APPEND_MIN..VSET_APPEND_CAP) so a 3-value
				  key stays small */
	uint32_t live;         /* live values; Synchronization: key lock (writers only) */
	_Atomic uint32_t napp; /* published appended entries; release by writer */
	uint8_t tomb[VSET_APPEND_CAP]; /* written before napp publishes them */
	cid_t v[];             /* nsorted + app_cap */
} vset_t;

int cid_cmp(const cid_t *a, const cid_t *b);
static inline bool cid_eq(const cid_t *a, const cid_t *b)
{
	return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
		(a->w[3] ^ b->w[3])) == 0;
}

/* Bytes allocated for s (accounting). */
size_t vset_bytes(const vset_t *s);

/* A new set holding the n distinct values vals (any order), napp == 0. */
vset_t *vset_new(const cid_t *vals, size_t n);

/* Reader side: snapshot with napp = atomic load (acquire).  Returns the
 * number of live values and copies min(count, cap) of them into out. */
size_t vset_read(const vset_t *s, cid_t *out, size_t cap);
bool vset_contains(const vset_t *s, const cid_t *v);

/* Writer side (key lock held).  vset_can_append: room for one more entry.
 * vset_append publishes one entry (release).  vset_rebuild returns a new
 * fully sorted set of the live values plus `add` (if not NULL) minus `del`
 * (if not NULL); NULL when out of memory. */
bool vset_can_append(const vset_t *s);
void vset_append(vset_t *s, const cid_t *v, bool tombstone);
vset_t *vset_rebuild(const vset_t *s, const cid_t *add, const cid_t *del);

/* Expensive check: sorted region strictly increasing, live matches. */
bool vset_valid(const vset_t *s);

#endif
