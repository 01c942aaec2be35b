/*
 * vset.h — the value set of a key holding two or more values.  Internal.
 *
 * A versioned hash set (multi-version, one writer at a time): O(1)
 * expected per add / remove / contains at any size, and readers get the set
 * of one instant without a lock, a retry or a copy.
 *
 * LAYOUT
 *   vset { pub, cap, nslots, used, stamp, ... | ix[cap] | v[nslots] |
 *   st[nslots] }: slot k is value v[k] (32 B) and stamp word st[k] =
 *   (del << 32) | ins (8 B), 40 bytes a slot, values contiguous so a full
 *   read streams them like an array copy.  Slots are appended in
 *   order (slot k is filled before slot k + 1, with a larger stamp), so a
 *   full read walks a dense array and stops at the first slot newer than
 *   its snapshot.  ix is an open-addressing index over the slots (8 bytes
 *   each: 32 bits of the value's hash as a fingerprint, slot position + 1;
 *   0 = empty), so a probe reads a slot only on a fingerprint match and
 *   adding a new value touches one random line; cap a power of two, nslots =
 *   3/4 cap; a value's home is a seeded hash of all 256 bits (crafted
 *   values cannot pile up without the store's seed); linear probing.
 *
 * ATOMIC FIELDS
 *   pub (64 bits)  (stamp << 32) | live: the newest published change and the
 *                  number of values live at it.  Only the key's writer
 *                  stores it (release); readers load it once (acquire) and
 *                  read the whole set "as of stamp".
 *   st[k] ins      0: not filled yet; else the stamp of the change that
 *                  added the value (release, after the value's words).
 *   st[k] del      0: not removed; else the stamp of the change that
 *                  removed it (release; the word is rewritten whole by the
 *                  one writer).
 *   ix[h]          0 or fingerprint | slot position + 1 (release, after
 *                  the slot's ins).
 *   A value is in the set as of stamp v iff 0 < ins <= v and (del == 0 or
 *   del > v).  A value removed and added again takes a new slot; a slot or
 *   index word is never emptied or rewritten while the set is reachable, so
 *   a reader never sees a value change under it (no validation needed).
 *
 * LINEARIZATION POINTS
 *   add / remove: the release store of pub carrying its stamp.
 *   read (count, copy, contains, iterate): the acquire load of pub.
 *
 * WHY A READER NEVER MISSES A VALUE IT SHOULD SEE
 *   Index words are filled in probe order and never emptied, so every word
 *   on a value's probe path before its own was non-zero when it was added;
 *   those stores happened before pub's store of that value's stamp, so a
 *   reader that loaded pub >= that stamp sees them non-zero and keeps
 *   probing.  An index word still 0 to the reader leads to nothing it may
 *   see.  Slots are filled in stamp order, so a walk may stop at the first
 *   slot with ins == 0 or ins > its stamp.
 *
 * GROWTH AND MEMORY
 *   When the slots run out, or when few live values remain in a large set,
 *   the writer builds a new set of the live values (cap = the power of two
 *   that leaves room for as many adds again) and the index publishes it by
 *   swapping the key's entry; the old set is retired through the epoch.
 *   Each rebuild is paid for by at least live/2 changes, so adding n values
 *   costs O(n) in all.  Stamps restart at 1 in a new set.
 */
#ifndef CIDSTORE_INDEX_VSET_H
#define CIDSTORE_INDEX_VSET_H

#include <ck_epoch.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cid/hash.h"
#include "cidstore.h"

#define VSET_MIN_CAP 8 /* smallest index: 6 slots */

/* A slot's stamps, one word so a reader loads them together:
 * (del << 32) | ins.  ins 0: not filled; del 0: not removed. */
#define VST_INS(w) ((uint32_t)(w))
#define VST_DEL(w) ((uint32_t)((w) >> 32))

typedef struct vset {
	ck_epoch_entry_t ep;     /* retirement */
	void *owner;             /* the index that accounts for it; immutable */
	const cid_hash_seed_t *seed; /* immutable */
	_Atomic uint64_t pub;    /* (stamp << 32) | live; release by the writer */
	uint32_t cap;            /* index words; immutable, power of two */
	uint32_t nslots;         /* slots (3/4 cap); immutable */
	uint32_t used;           /* slots filled; writer only */
	uint32_t stamp;          /* last stamp handed out; writer only */
	uint32_t live;           /* live values as of stamp; writer only */
	cid_t *v;                /* nslots values (written once, before the stamps) */
	_Atomic uint64_t *st;    /* nslots stamp words */
	_Atomic uint64_t ix[];   /* cap words: (fingerprint << 32) | (position + 1) */
} vset_t;

static inline bool cid_eq(const cid_t *a, const cid_t *b)
{
	return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
		(a->w[3] ^ b->w[3])) == 0;
}

/* Bytes allocated for s (accounting). */
size_t vset_bytes(const vset_t *s);

/* A new set holding the distinct values among vals[0..n) (duplicates are
 * dropped), with room for `extra` more adds before it must be rebuilt.
 * NULL when out of memory. */
vset_t *vset_build(const cid_hash_seed_t *seed, const cid_t *vals, size_t n, size_t extra);

/* A new set with the live values of s (as of the writer's stamp) plus
 * `extra` room; NULL when out of memory.  Writer only. */
vset_t *vset_rebuild(const vset_t *s, size_t extra);

void vset_free(vset_t *s);

/* Reader side (any thread, inside an epoch section). */
static inline uint32_t vset_snap(const vset_t *s, uint32_t *live)
{
	uint64_t p = atomic_load_explicit(&((vset_t *)s)->pub, memory_order_acquire);
	*live = (uint32_t)p;
	return (uint32_t)(p >> 32);
}
/* Copies up to cap of the values live as of stamp v into out; returns how
 * many were copied (0: no more).  *pos is the slot to start from and is
 * advanced (for chunked delivery); start with 0. */
size_t vset_copy(const vset_t *s, uint32_t v, size_t *pos, cid_t *out, size_t cap);
bool vset_contains_at(const vset_t *s, uint32_t v, const cid_t *val);

/* Writer side (key lock held).  vset_has: val live now.  vset_room: one
 * more add fits without a rebuild.  vset_add / vset_del publish one change
 * (caller checked vset_has / vset_room first).  vset_should_shrink: the set
 * is mostly empty slots and worth rebuilding smaller. */
bool vset_has(const vset_t *s, const cid_t *val);
bool vset_room(const vset_t *s);
bool vset_room_for(const vset_t *s, size_t n); /* n more adds fit */
void vset_add(vset_t *s, const cid_t *val);
void vset_del(vset_t *s, const cid_t *val);
bool vset_should_shrink(const vset_t *s);
/* The one live value of a set with live == 1 (writer only). */
cid_t vset_only(const vset_t *s);

/* Expensive check: live matches the visible values, no value twice. */
bool vset_valid(const vset_t *s);

#endif
