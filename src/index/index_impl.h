/*
 * index_impl.h — the index's internal layout, shared by its three files:
 *   index.c    groups, tables, reading, writing, migration (growth and
 *              shrink), scan, checks
 *   entries.c  entry memory: chunks, free bitmaps, retirement, release
 *   maint.c    idx_maintain: shrinking the table, compacting entries
 * Nothing outside src/index/ includes it.  The design (layout, invariants,
 * linearization points, memory safety) is the top comment of index.c; the
 * entry allocator's own invariants are at the top of entries.c.
 */
#ifndef CIDSTORE_INDEX_IMPL_H
#define CIDSTORE_INDEX_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cid/hash.h"
#include "index/epoch.h"
#include "index/index.h"
#include "index/vset.h"
#include "util/shake.h"

#define GSLOTS 11
#define GMASK ((1u << GSLOTS) - 1)
#define PREF_FIRST 6     /* below this many keys, a new key stays in g1 */
#define MIN_DEPTH 2
#define MAX_DEPTH 28
#define PRESIZE_MAX 26
#define MIG_CHUNK 16     /* groups migrated per write while a table grows */

#define G_LOCK 1u
#define G_FROZEN 2u
#define G_MIGRATED 4u

#define SPILLED 0x80000000u
#define EIDX(sw) ((sw) & 0x7fffffffu)

#define ENT_SHIFT 15     /* 32768 entries = 2 MiB per chunk */
#define ENT_PER_CHUNK (1u << ENT_SHIFT)
#define CHUNK_WORDS (ENT_PER_CHUNK / 64) /* free-bitmap words per chunk */
#define MAX_CHUNKS (1u << 16)
#define CHUNK_BYTES ((size_t)ENT_PER_CHUNK * sizeof(struct entry))
#define HUGE_AFTER 4     /* chunks from this one on are advised as huge pages */

#define RET_BATCH 250

struct entry {
	cid_t key;
	union {
		cid_t val;
		vset_t *vs;
	} u;
};

struct group {
	_Atomic uint64_t tag[2];
	_Atomic uint32_t ctl;
	_Atomic uint32_t slot[GSLOTS];
};
_Static_assert(sizeof(struct group) == 64, "a group is one cache line");
_Static_assert(sizeof(struct entry) == 64, "an entry is one cache line");

struct table {
	ck_epoch_entry_t ep;
	struct idx *ix;
	unsigned depth;                /* immutable */
	uint64_t n;                    /* 2^depth groups; immutable */
	size_t map_bytes;              /* mmap'd when non-zero */
	struct group *g;               /* immutable */
	_Atomic(struct table *) next;  /* set once (CAS) */
	_Atomic(struct table *) prev;  /* cleared once, when its migration ends */
	_Atomic uint64_t mig_cursor;   /* as the old table: next group to offer */
	_Atomic uint64_t mig_done;     /* as the old table: groups MIGRATED */
	/* PAIR mode (shrink preparation, index.c "SHRINK"): new keys are
	 * placed only where the pair (2s, 2s+1) stays <= GSLOTS keys.  Set by
	 * the maintainer (seq_cst), cleared by it; read by writers. */
	_Atomic uint32_t pair_mode;
};

struct ret_batch {
	ck_epoch_entry_t ep;
	struct idx *ix;
	uint32_t n;
	uint32_t e[RET_BATCH];
};

/* Chunk states (cmeta.state), see entries.c. */
#define C_OWNED 1u     /* a thread's record allocates from it */
#define C_EVAC 2u      /* compaction moves its entries out; never taken */
#define C_RELEASING 4u /* the maintainer checks it is empty */
#define C_RELEASED 8u  /* pages given back (MADV_DONTNEED); all bits free */

struct cmeta {
	_Atomic uint32_t state;
	_Atomic uint32_t nfree;             /* bits set in bm (a hint: see entries.c) */
	_Atomic uint32_t hw;                /* words [0, hw) were ever taken by an owner */
	_Atomic uint64_t bm[CHUNK_WORDS];   /* 1: entry free */
};

struct idx {
	_Atomic(struct table *) cur;
	cid_hash_seed_t seed;
	uint64_t k2a, k2b;             /* second-choice mix; immutable */
	ep_domain_t ep;
	_Atomic uint32_t nchunks;      /* chunk indexes handed out (may exceed MAX_CHUNKS) */
	_Atomic(struct entry *) *chunks; /* MAX_CHUNKS pointers */
	_Atomic(struct cmeta *) *meta;   /* MAX_CHUNKS pointers */
	_Atomic uint32_t take_cursor;  /* where chunk_take looks first (a hint) */
	/* maintenance: one maintainer at a time (maint_mu); its state below is
	 * Synchronization: maint_mu */
	pthread_mutex_t maint_mu;
	uint64_t walk_pos;             /* compaction walk: next hash-space position */
	bool walking;                  /* a compaction walk is in progress */
	uint64_t walk_moved;           /* entries moved by the walk in progress */
	bool last_walk_idle;           /* the last complete walk moved nothing */
	unsigned evac_left;            /* chunks C_EVAC, not yet released */
	struct table *shrink_failed;   /* table whose pair check failed ... */
	uint64_t shrink_failed_keys;   /* ... holding this many keys */
	unsigned min_depth;            /* never shrunk below (options.initial_depth) */
	/* statistics: relaxed counters */
	_Atomic uint64_t mem, migrated, growths, rebuilds, leaked, shrinks, moved, released;
};

/* ------------------------------------------------------------------ */
/* hashing and tags                                                    */
/* ------------------------------------------------------------------ */

static inline uint64_t h2_of(const struct idx *ix, uint64_t h1)
{
	return cid_mum(h1 ^ ix->k2a, ix->k2b);
}

static inline unsigned tag_of(uint64_t h1)
{
	unsigned t = (unsigned)h1 & 0xff;
	return t ? t : 1;
}

#define OVF_SHIFT 24 /* byte 3 of tag[1] */
static inline uint64_t ovf_of(uint64_t h1)
{
	return (uint64_t)1 << (OVF_SHIFT + ((h1 >> 8) & 7));
}

/* Bits 32..42 of tag[1] (bytes 12-13, beyond the 11 slot tags and the
 * overflow byte): bit i set when slot i holds its key by its SECOND
 * choice.  A key keeps its choice for as long as it is present (growth and
 * shrink copy the bit), so its hash-space position (h1 or h2) never
 * changes: idx_scan relies on it. */
#define SEC_SHIFT 32
static inline uint64_t sec_bit(int i)
{
	return (uint64_t)1 << (SEC_SHIFT + i);
}

static inline uint64_t gidx(const struct table *t, uint64_t h)
{
	return h >> (64 - t->depth);
}

/* Bit i set when slot i's tag equals t (t == 0: slot i is empty). */
static inline unsigned tag_match(uint64_t w0, uint64_t w1, unsigned t)
{
#if defined(__SSE2__)
	__m128i m = _mm_set_epi64x((long long)w1, (long long)w0);
	return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(m, _mm_set1_epi8((char)t))) & GMASK;
#else
	unsigned r = 0;
	for (int i = 0; i < GSLOTS; i++) {
		uint64_t w = i < 8 ? w0 : w1;
		if (((w >> ((i & 7) * 8)) & 0xff) == t)
			r |= 1u << i;
	}
	return r;
#endif
}

static inline unsigned occupied(uint64_t w0, uint64_t w1)
{
	return ~tag_match(w0, w1, 0) & GMASK;
}

static inline void grp_tags(struct group *g, uint64_t *w0, uint64_t *w1)
{
	*w0 = atomic_load_explicit(&g->tag[0], memory_order_acquire);
	*w1 = atomic_load_explicit(&g->tag[1], memory_order_acquire);
}

static inline unsigned grp_count(struct group *g)
{
	uint64_t w0, w1;
	grp_tags(g, &w0, &w1);
	return (unsigned)__builtin_popcount(occupied(w0, w1));
}

/* ------------------------------------------------------------------ */
/* entries (entries.c)                                                 */
/* ------------------------------------------------------------------ */

static inline struct entry *ent_ptr(struct idx *ix, uint32_t e)
{
	/* relaxed: the chunk pointer was stored before the entry was written,
	 * which happens before the slot word that led here (acquired). */
	struct entry *c = atomic_load_explicit(&ix->chunks[e >> ENT_SHIFT], memory_order_relaxed);
	return c + (e & (ENT_PER_CHUNK - 1));
}

static inline struct cmeta *ent_meta(struct idx *ix, uint32_t e)
{
	/* relaxed: as ent_ptr (the meta is stored before the chunk pointer) */
	return atomic_load_explicit(&ix->meta[e >> ENT_SHIFT], memory_order_relaxed);
}

int ent_init(struct idx *ix);
void ent_fini(struct idx *ix);
uint32_t ent_alloc_slow(struct idx *ix, ep_rec_t *r);

/* A free entry index for r's thread, or 0 when out of memory.  The fast
 * path takes the next bit of the word of free bits the record holds. */
static inline uint32_t ent_alloc(struct idx *ix, ep_rec_t *r)
{
	uint64_t m = r->ent_mask;
	if (__builtin_expect(m != 0, 1)) {
		r->ent_mask = m & (m - 1);
		return r->ent_base + (uint32_t)__builtin_ctzll(m);
	}
	return ent_alloc_slow(ix, r);
}

/* Gives back an entry that was never published. */
void ent_unalloc(struct idx *ix, uint32_t e);
/* Retires an entry that readers may still hold. */
void ent_retire(struct idx *ix, ep_rec_t *r, uint32_t e);
/* Hands r's partial batch of retired entries to the epoch now. */
void ent_flush_retired(struct idx *ix, ep_rec_t *r);
/* r stops allocating from its chunk (its unused free bits go back). */
void ent_drop_owned(struct idx *ix, ep_rec_t *r);
/* Maintainer only (maint_mu): marks the chunks at most half live (and not
 * owned) C_EVAC; returns how many it marked, *evac how many are C_EVAC. */
unsigned ent_mark_sparse(struct idx *ix, unsigned *evac);
/* Maintainer only: releases every C_EVAC chunk whose entries are all free;
 * returns how many it released, *left how many stay C_EVAC. */
unsigned ent_release_empty(struct idx *ix, unsigned *left);
/* True when entry e lies in a chunk being evacuated. */
static inline bool ent_evacuating(struct idx *ix, uint32_t e)
{
	return atomic_load_explicit(&ent_meta(ix, e)->state, memory_order_relaxed) & C_EVAC;
}
/* Test and check support: entry e is allocated (its free bit is clear and
 * its chunk is not released). */
bool ent_allocated(struct idx *ix, uint32_t e);

/* ------------------------------------------------------------------ */
/* groups and migration (index.c), used by maint.c                     */
/* ------------------------------------------------------------------ */

bool ix_grp_lock(struct group *g);
void ix_grp_unlock(struct group *g);
void ix_slot_replace(struct group *g, int i, uint32_t sw);
void ix_migrate_all(struct idx *ix, ep_rec_t *r, struct table *p);
/* Migrates up to `groups` groups of the migration into t (adding those it
 * took to *visited); true when t's migration is complete. */
bool ix_help_migrate_n(struct idx *ix, ep_rec_t *r, struct table *t, uint64_t groups,
		       uint64_t *visited);
void ix_advance_cur(struct idx *ix, struct table *t);
struct table *ix_table_new(struct idx *ix, unsigned depth);
void ix_table_free(struct table *t);

#endif
