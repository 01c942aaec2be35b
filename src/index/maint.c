/*
 * maint.c — idx_maintain: give back the memory that deletes left behind,
 * while readers and writers run (DESIGN §11, issue 13).
 *
 * ARITHMETIC (the target: after inserting 10M keys and deleting 90%, a
 * pass brings resident memory within 2x of a fresh index of the 1M
 * survivors)
 *   10M keys: the table doubles when both groups of a key are full, at
 *   ~77% of the slots, so 10M keys sit in 2^21 groups (43% load; 2^20
 *   groups hold 8.9M at 77%): 2^21 x 64 B = 128 MiB.  Entries: 10M x 64 B
 *   = 610 MiB in 306 chunks of 2 MiB.  Total ~740 MiB.
 *   Delete 90% (uniformly): the table is still 128 MiB; every chunk keeps
 *   ~10% of its entries live, so all 306 chunks stay resident: ~740 MiB.
 *   A fresh index of the 1M survivors: 1M / (11 x 2^17) = 69% < 77%, so
 *   2^17 groups = 8 MiB, + 31 chunks = 62 MiB of entries: ~70 MiB.  The
 *   target is <= ~140 MiB.
 *   (a) entry compaction alone: 31 chunks (62 MiB) + the 128 MiB table =
 *       190 MiB = 2.7x.  Not enough: the table must shrink too.
 *   (b) + table shrink: one halving, 64 + 62 = 126 MiB (1.8x); two, 32 + 62
 *       = 94 MiB (1.34x); three, 16 + 62 = 78 MiB (1.1x, 35% load).
 *   How far the shrink goes: a halving needs every pair of groups (2s,
 *   2s+1) to hold <= 11 keys (index.c, SHRINK).  After the deletes a
 *   group holds ~Bin(4.8, 0.1) keys: pairs of 2^21 groups never exceed
 *   11; after one halving pairs are ~Bin(19, 0.1) (mean 1.9, P(>11) ~
 *   2e-8, x 2^19 pairs: ~1% that one pair blocks), after two ~Bin(38, 0.1)
 *   (mean 3.8, ~100 of the 2^18 pairs over 11): so two halvings, 2^19
 *   groups, ~94 MiB, ~1.3x.  (A pass retries a blocked halving only after
 *   the key count fell further.)
 *
 * A PASS (one maintainer at a time: maint_mu; everything below runs
 * concurrently with readers and writers)
 *   1. Settle: give back the entries this thread holds, hand its partial
 *      retirement batch to the epoch, wait a grace period (its retired
 *      entries are freed), release C_EVAC chunks that are now empty.
 *   2. Finish a migration in progress (growth or shrink), as writers help.
 *   3. Shrink while the table's load allows (index.c, SHRINK: pair mode,
 *      a grace period, the pair check, link the half-size table, migrate).
 *   4. Compact: mark chunks at most half live C_EVAC (entries.c), then
 *      walk every group in hash-space order; each entry in a C_EVAC chunk
 *      is copied to a new entry and the slot word swapped under the
 *      group's LOCK (copy on write as writers do: I2), the old entry
 *      retired.  When the walk completes: settle again and release.
 *   The walk position survives a pass cut short by the budget; hash-space
 *   positions stay meaningful when the table grows or shrinks meanwhile.
 *   A group that is FROZEN (being migrated) is skipped: its keys are in
 *   the next table, which a later walk visits.
 *
 * LINEARIZATION
 *   Moving an entry changes no key's state: the old and the new entry hold
 *   the same key and the same value (or the same vset pointer, whose
 *   in-place changes by a writer holding only g1's lock are seen through
 *   either).  The slot word store is a release, so a reader that loads it
 *   reads a complete entry; the old one is retired and stays readable for
 *   readers that loaded the old slot word (I2, MEMORY SAFETY in index.c).
 *   Writers that change the slot word hold the same group LOCK.
 */
#include <errno.h>
#include <time.h>

#include "index/index_impl.h"
#include "util/check.h"

struct mctx {
	struct idx *ix;
	ep_rec_t *r;
	uint64_t deadline; /* 0: none */
	bool worked;       /* a unit of work was done: the budget applies */
	idx_maint_stats_t *st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* True once the budget is used up, but never before the pass did one unit
 * of work (a migration chunk, a halving, a walk step), so that passes of
 * any budget make progress. */
static bool out_of_time(const struct mctx *m)
{
	return m->worked && m->deadline && now_ns() >= m->deadline;
}

/* Gives back this thread's held entries and frees what it retired. */
static void settle(struct mctx *m)
{
	ent_drop_owned(m->ix, m->r);
	ent_flush_retired(m->ix, m->r);
	ep_synchronize(m->r);
	unsigned n = ent_release_empty(m->ix, &m->ix->evac_left);
	m->st->chunks_released += n;
	m->st->bytes_released += (uint64_t)n * CHUNK_BYTES;
}

/* Moves g's entries that lie in C_EVAC chunks; returns how many, or
 * CIDSTORE_ENOMEM.  Inside a section. */
static long compact_group(struct idx *ix, ep_rec_t *r, struct group *g)
{
	unsigned want = 0;
	for (int i = 0; i < GSLOTS; i++) {
		uint32_t sw = atomic_load_explicit(&g->slot[i], memory_order_relaxed);
		if (sw && ent_evacuating(ix, EIDX(sw)))
			want |= 1u << i;
	}
	if (!want)
		return 0;
	if (!ix_grp_lock(g))
		return 0; /* FROZEN: its keys move to the next table */
	long moved = 0;
	for (int i = 0; i < GSLOTS; i++) {
		/* under the LOCK the slot word is stable */
		uint32_t sw = atomic_load_explicit(&g->slot[i], memory_order_relaxed);
		if (!sw || !ent_evacuating(ix, EIDX(sw)))
			continue;
		uint32_t e = ent_alloc(ix, r);
		if (!e) {
			ix_grp_unlock(g);
			return CIDSTORE_ENOMEM;
		}
		*ent_ptr(ix, e) = *ent_ptr(ix, EIDX(sw)); /* immutable while reachable (I2) */
		CIDSTORE_SHAKE_POINT("maint.before_move");
		ix_slot_replace(g, i, e | (sw & SPILLED));
		ent_retire(ix, r, EIDX(sw));
		moved++;
	}
	ix_grp_unlock(g);
	return moved;
}

/* Leaves the section every this many groups, so that reclamation (ours
 * and other threads') never waits long for the walk. */
#define WALK_STEP 64

/* The compaction walk from ix->walk_pos; clears ix->walking when it has
 * covered the whole hash space. */
static int compact_walk(struct mctx *m)
{
	struct idx *ix = m->ix;
	ep_rec_t *r = m->r;
	int rc = 0;
	while (ix->walking && rc == 0 && !out_of_time(m)) {
		m->worked = true;
		ep_enter(r);
		for (unsigned k = 0; k < WALK_STEP; k++) {
			struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
			if (atomic_load_explicit(&t->prev, memory_order_acquire)) {
				/* a migration runs: help it first (its groups are FROZEN) */
				ix_help_migrate_n(ix, r, t, MIG_CHUNK * 4, &m->st->groups_visited);
				continue;
			}
			long n = compact_group(ix, r, &t->g[gidx(t, ix->walk_pos)]);
			if (n < 0) {
				rc = (int)n;
				break;
			}
			ix->walk_moved += (uint64_t)n;
			m->st->entries_moved += (uint64_t)n;
			m->st->groups_visited++;
			/* to the end of this group: after a shrink, walk_pos may lie
			 * inside the (larger) group just visited */
			uint64_t span = (uint64_t)1 << (64 - t->depth);
			ix->walk_pos = (ix->walk_pos & ~(span - 1)) + span;
			if (ix->walk_pos == 0) {
				ix->walking = false;
				break;
			}
		}
		ep_exit(r);
	}
	return rc;
}

/* ---- shrink (the protocol: index.c, SHRINK) ---- */

/* Counts t's keys; false as soon as a pair (2s, 2s+1) holds more than
 * GSLOTS keys.  The counts are read without locks: once a pair is seen at
 * <= GSLOTS in PAIR mode it stays there (P1 in index.c), and a pair seen
 * over it fails the check anyway.  Inside a section. */
static bool pairs_fit(struct table *t, uint64_t *keys)
{
	uint64_t k = 0;
	for (uint64_t s = 0; s < t->n; s += 2) {
		unsigned c = grp_count(&t->g[s]) + grp_count(&t->g[s + 1]);
		if (c > GSLOTS)
			return false;
		k += c;
	}
	*keys = k;
	return true;
}

/* Migrates into the current table while it has a prev (a shrink or a
 * growth), within the budget; true when no migration is left. */
static bool finish_migration(struct mctx *m)
{
	for (;;) {
		ep_enter(m->r);
		struct table *t = atomic_load_explicit(&m->ix->cur, memory_order_acquire);
		bool busy = atomic_load_explicit(&t->prev, memory_order_acquire) != NULL;
		bool done = !busy || ix_help_migrate_n(m->ix, m->r, t, 1024, &m->st->groups_visited);
		ep_exit(m->r);
		m->worked |= busy;
		if (done)
			return true;
		if (out_of_time(m))
			return false;
	}
}

/* One halving of the current table when its load allows: 1 when the half
 * table was linked (its migration may still run), 0 when not, or
 * CIDSTORE_ENOMEM. */
static int try_shrink(struct mctx *m)
{
	struct idx *ix = m->ix;
	ep_rec_t *r = m->r;
	int ret = 0;
	ep_enter(r);
	struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
	uint64_t keys = 0;
	if (atomic_load_explicit(&t->prev, memory_order_acquire) ||
	    atomic_load_explicit(&t->next, memory_order_acquire) || t->depth <= ix->min_depth ||
	    t->depth <= MIN_DEPTH)
		goto out;
	/* A sample of 1024 groups first: a table that is clearly too full
	 * costs no full count (a pass over a busy store stays cheap). */
	if (t->n > 4096) {
		uint64_t sk = 0, step = t->n / 1024;
		for (uint64_t gi = 0; gi < t->n; gi += step)
			sk += grp_count(&t->g[gi]);
		if (sk * 4 * 10 >= (t->n / step) * GSLOTS * 11) /* 10% margin */
			goto out;
	}
	/* A first look, before writers pay for PAIR mode: the load after
	 * halving must stay under 50% (4 keys * 4 < 11 slots * ... : keys <
	 * 1/4 of t's slots), and every pair must fit already.  A table whose
	 * check failed is tried again only after its keys fell by 10%. */
	bool fit = pairs_fit(t, &keys);
	if (fit && keys * 4 >= t->n * GSLOTS)
		goto out;
	if (t == ix->shrink_failed && (!fit || keys * 10 > ix->shrink_failed_keys * 9))
		goto out;
	if (!fit) {
		ix->shrink_failed = t;
		ix->shrink_failed_keys = t->n * GSLOTS; /* unknown: any later count qualifies */
		goto out;
	}
	/* PAIR mode, then a grace period: every writer that may place a new
	 * key in t without looking at its pair has finished. */
	atomic_store_explicit(&t->pair_mode, 1, memory_order_seq_cst);
	ep_exit(r);
	ep_synchronize(r);
	ep_enter(r);
	if (atomic_load_explicit(&ix->cur, memory_order_acquire) != t ||
	    atomic_load_explicit(&t->next, memory_order_acquire))
		goto off; /* a growth began: nothing to shrink */
	if (!pairs_fit(t, &keys)) {
		ix->shrink_failed = t;
		ix->shrink_failed_keys = keys;
		goto off;
	}
	/* P1 holds for every pair of t from here on (index.c, SHRINK) */
	struct table *s = ix_table_new(ix, t->depth - 1);
	if (!s) {
		ret = CIDSTORE_ENOMEM;
		goto off;
	}
	atomic_init(&s->prev, t);
	struct table *exp = NULL;
	if (!atomic_compare_exchange_strong_explicit(&t->next, &exp, s, memory_order_acq_rel,
						     memory_order_acquire)) {
		ix_table_free(s); /* a writer grew t meanwhile */
		goto off;
	}
	ix_advance_cur(ix, t);
	m->worked = true;
	m->st->tables_shrunk++;
	m->st->bytes_released += (t->n - s->n) * sizeof(struct group);
	ret = 1;
	goto out; /* t stays in PAIR mode until it is retired */
off:
	atomic_store_explicit(&t->pair_mode, 0, memory_order_relaxed);
out:
	ep_exit(r);
	return ret;
}

static int shrink(struct mctx *m)
{
	for (;;) {
		if (!finish_migration(m) || out_of_time(m))
			return 0;
		int rc = try_shrink(m);
		if (rc <= 0)
			return rc;
	}
}

/* ---- compaction ---- */

static int compact(struct mctx *m)
{
	struct idx *ix = m->ix;
	if (!ix->walking) {
		unsigned evac = 0;
		unsigned fresh = ent_mark_sparse(ix, &evac);
		ix->evac_left = evac;
		/* A walk that moved nothing left only entries that other threads
		 * retired (their grace periods free them): walk again only when
		 * new chunks were marked. */
		if (fresh == 0 && (evac == 0 || ix->last_walk_idle))
			return 0;
		ix->walking = true;
		ix->walk_pos = 0;
		ix->walk_moved = 0;
	}
	int rc = compact_walk(m);
	if (rc == 0 && !ix->walking) {
		ix->last_walk_idle = ix->walk_moved == 0;
		settle(m);
	}
	return rc;
}

int idx_maintain(idx_t *ix, uint64_t budget_ns, idx_maint_stats_t *out)
{
	idx_maint_stats_t st = {0};
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	if (r->depth != 0)
		return CIDSTORE_EINVAL; /* inside an operation: no grace period here */
	uint64_t start = now_ns();
	struct mctx m = {ix, r, budget_ns ? start + budget_ns : 0, false, &st};
	pthread_mutex_lock(&ix->maint_mu);
	if (ix->evac_left)
		settle(&m); /* chunks of an earlier pass may be empty now */
	/* 2, 3: a migration in progress; shrink while the load allows */
	int rc = shrink(&m);
	if (st.tables_shrunk)
		settle(&m); /* the old tables go back */
	/* 4. compaction */
	if (rc == 0 && !out_of_time(&m))
		rc = compact(&m);
	pthread_mutex_unlock(&ix->maint_mu);
	atomic_fetch_add_explicit(&ix->moved, st.entries_moved, memory_order_relaxed);
	atomic_fetch_add_explicit(&ix->released, st.chunks_released, memory_order_relaxed);
	atomic_fetch_add_explicit(&ix->shrinks, st.tables_shrunk, memory_order_relaxed);
	if (out)
		*out = st;
	return rc;
}
