/*
 * index.c — index v2: two-choice groups of one cache line over dense,
 * immutable entries, reclaimed by epochs, grown (and shrunk) by incremental
 * migration.
 * (Entry memory: entries.c; maintenance: maint.c; shared layout:
 * index_impl.h.)
 *
 * LAYOUT
 *   idx.cur -> table { depth D, 2^D groups, next, prev, pair_mode }
 *   group (64 B, one cache line):
 *     tag[2]   16 B: one tag byte per slot (0: empty) for 11 slots, byte 11 =
 *              overflow bits, bytes 12..13 = CHOICE bits (one per slot),
 *              bytes 14..15 unused
 *     ctl       4 B: LOCK | FROZEN | MIGRATED
 *     slot[11] 44 B: entry index (31 bits) | SPILLED
 *   entry (64 B, in 2 MiB chunks, addressed by index): key (32 B) + either
 *     the key's one value (32 B) or, when SPILLED, a pointer to its vset.
 *     An entry never changes while a slot can reach it: a change of value
 *     writes a new entry and swaps the slot word (copy on write).
 *
 *   h1 = seeded hash of all 256 key bits (cid_hash64), h2 = mum(h1).  A key
 *   lives in group g1 = top D bits of h1 or g2 = top D bits of h2; its tag
 *   is the low byte of h1 (never 0); its overflow bit is bit (h1 >> 8) & 7.
 *   A new key goes to g1 while g1 holds fewer than PREF_FIRST keys, else to
 *   the less loaded of the two; when it goes to g2 the overflow bit is set
 *   in g1 first.  Lookups read g2 only when g1's bit for them is set.
 *
 * ARITHMETIC (checked against bench/bench_index, see README "Benchmarks")
 *   Load: two choices over 11-slot groups first fill both of a key's groups
 *   at ~77% of the slots (simulated, 2^21 groups; 87% at 2^10); the table
 *   doubles then, so it runs at 38-77% of its slots.  16M = 2^24 keys fit
 *   in 2^21 groups (73%).
 *   Bytes per single-valued key = 64 (entry) + 64 / (11 * load):
 *   72 at 77% load, 80 right after a doubling (38%), 72 at 16M keys.
 *   Cache lines touched (dependent misses in brackets):
 *     positive lookup   g1 line [1] + entry [2]; g2's line is prefetched
 *                       with g1 (independent), needed for the ~20% of keys
 *                       placed second.  No write, no atomic RMW.
 *     negative lookup   g1 line [1]; g2 [1, overlapped] when the overflow
 *                       bit is set (~18% at the highest load); an entry only
 *                       on a tag false positive (1/255 per occupied slot).
 *     insert (new key)  g1 + g2 lines (overlapped) [1], lock word RMW on g1
 *                       (same line), the new entry line (written, usually a
 *                       recently freed or fresh line) [2].
 *   lookup_many overlaps these: it prefetches every key's group line, then
 *   every key's candidate entry, before resolving any.  insert_sets
 *   (recovery's checkpoint load, several loader threads) prefetches the g1
 *   lines of a batch of MANY_SETS keys for writing before the first write,
 *   then writes each through the ordinary write path (no shortcut: the
 *   invariants below hold as for any writer); idx_prefetch lets replay
 *   workers do the same a few operations ahead.
 *
 * ATOMIC FIELDS AND WHAT THEY MEAN
 *   group.tag[w]   a byte per slot: 0 empty, else the tag of the key whose
 *                  entry the slot holds; written only by RMW (fetch_or to
 *                  set a tag in an empty byte or an overflow bit,
 *                  fetch_and to clear), so the overflow bits set by a
 *                  migration never clobber a lock holder's tag store.
 *   group.slot[i]  0 or entry index | SPILLED.  Changed only by the holder
 *                  of the group's LOCK (or by the migration filling a group
 *                  nobody can see yet).  A tag may be set while its slot
 *                  word is still 0 (an insert in progress, or a removal):
 *                  readers skip such a slot.
 *   group.ctl      LOCK: a writer holds the group (all changes to its slots
 *                  and tags happen under it).  FROZEN: a migration began;
 *                  no LOCK can be taken any more.  MIGRATED: the group's
 *                  keys are in the next table's two children (2g, 2g+1),
 *                  or, when it is half the size, in its group g / 2.
 *   tag[1] CHOICE  bit 32 + i set when slot i holds its key by its second
 *                  choice (h2).  Set before the slot's tag by whoever fills
 *                  the slot (the LOCK holder, or a migration filling an
 *                  invisible group), cleared after the slot is emptied,
 *                  copied by every migration: a key's hash-space position
 *                  (h1, or h2 by this bit) never changes while it is
 *                  present (idx_scan, S4).  A key whose two choices share a
 *                  group counts as first choice when it is inserted.
 *   table.next     the table this one migrates into (set once, CAS): the
 *                  table of depth D + 1 (growth) or D - 1 (shrink).
 *   table.pair_mode  PAIR mode (SHRINK): set (seq_cst) by the maintainer
 *                  before it checks the pairs, cleared if it gives up;
 *                  read by writers about to place a new key.
 *   table.prev     the table still migrating into this one; NULL once every
 *                  group of prev is MIGRATED (then prev is retired).
 *   idx.cur        the newest table (CAS forward only).
 *   vset fields    see vset.h.
 *
 * INVARIANTS
 *   I1  A key is in at most one slot of the newest copy of its groups: all
 *       writers of a key hold its g1's LOCK (g1 is the key lock; the per-key
 *       linearization of writers), so the check "absent in g1 and g2" and
 *       the insert are one critical section.  A change to a slot of g2
 *       holds g2's LOCK too (two locks are taken in address order; a writer
 *       never waits for anything else while holding one); a change inside
 *       the value set of a key in g2 needs only g1's (the slot word, which
 *       a migration copies, does not change).
 *   I2  Entries reachable from a slot are immutable.  A writer builds a new
 *       entry (and vset) in private memory, calls the LSN hook, then
 *       publishes with one release store of the slot word; the old entry is
 *       retired.  Readers therefore never validate and never retry.
 *   I3  A key in g2 has its overflow bit set in g1 before its tag is
 *       published in g2; bits are cleared only by a migration, which
 *       recomputes them for the new table.
 *   I4  A group of table T is written by writers only after its parent in
 *       T.prev is MIGRATED (writers help migrate the parents of both their
 *       groups first), and a MIGRATED group is never written again.  So a
 *       parent's keys move to its children exactly once, and a key's
 *       location only moves from a group to one of its children.
 *   I5  A table is freed only after a grace period following the last
 *       moment a thread could reach it (prev cleared, cur moved past it).
 *
 * LINEARIZATION POINTS
 *   Every change of a key's presence or entry is one release store of its
 *   slot word; tags are a filter kept a superset around it (set before the
 *   slot word is filled, cleared after it is emptied), so a reader that
 *   does not see a tag reads before the insert or after the delete.
 *   insert of a new key: the store of the slot word (after its tag).
 *   insert/delete of a value that changes the entry (spill, demote, set
 *   rebuild): the store of the slot word.  Inside a vset: the release
 *   store of vset.pub (vset.h).
 *   delete of a key's last value / delete_key: the store of 0 into the slot
 *   word (before its tag is cleared).
 *   lookup/contains/values: the acquire load of the slot word that held the
 *   key (absent: the load of g1's tag word without a match — or the loads
 *   of the matching slot words — and likewise in g2 when g1's overflow bit
 *   sent the reader there); the value set read is the vset's state at the
 *   reader's load of pub.
 *   A reader of a FROZEN group that is not yet MIGRATED reads its final
 *   state: that state held from the freeze until MIGRATED was stored, and
 *   the reader saw MIGRATED unset.
 *
 * SHRINK (online; maint.c decides when: the load after halving < 50%)
 *   The reverse of growth: group s of the half table S (depth D - 1)
 *   receives the keys of T's groups 2s and 2s+1.  A key keeps its choice:
 *   gidx(S, h) = gidx(T, h) >> 1 for h1 and h2 alike, so every key of the
 *   pair belongs in s, and no key ever needs another group, provided
 *   P1  in PAIR mode a writer places a new key in T's group g only when g
 *       and its sibling g ^ 1 together hold fewer than GSLOTS keys, reading
 *       both counts under both LOCKs (write_locked returns NEED_PAIRS and
 *       write_op retakes the siblings of g1 and g2 too, up to 4 locks in
 *       address order).  Nothing else adds a key to a group, so a pair
 *       seen at <= GSLOTS keys in PAIR mode stays there.  A writer that
 *       finds no pair with room grows T instead, which makes the shrink's
 *       CAS of T.next fail: P1 is never broken, only the shrink abandoned.
 *   Start (maint.c try_shrink, one maintainer): set PAIR mode, wait a grace
 *   period (every writer that may have placed a key without looking at the
 *   pair has left; later ones read pair_mode = 1), count every pair (lock-
 *   free: by P1 a pair seen within GSLOTS stays so), give up (PAIR mode
 *   off) if one holds more; else link S (T.next CAS from NULL, S.prev = T)
 *   and move idx.cur to S.  T stays in PAIR mode until it is retired.
 *   Migration runs as growth's does (writers first migrate the parents of
 *   their own two groups, then help with a chunk from the cursor; the
 *   maintainer migrates too), a pair at a time:
 *   S1  The thread that sets FROZEN on 2s owns the pair; it alone freezes
 *       2s+1, waits until neither LOCK is held, copies the at most GSLOTS
 *       (P1) slot words into s with their tags and CHOICE bits, sets the
 *       overflow bit of each second-choice key in its first S group (I3),
 *       then stores MIGRATED (release) on 2s+1 and last on 2s; other
 *       threads wait for MIGRATED on 2s (22 slot words: bounded).
 *   S2  (I4) a group of S is written only after both its parents are
 *       MIGRATED, and a MIGRATED group of T is never written again; the
 *       thread whose mig_done reaches T.n clears S.prev and retires T (I5).
 *   S3  Readers route as in growth: T's group while it is not MIGRATED,
 *       else S's; while S.prev is set they read g2 whatever the overflow
 *       bits say.  A writer that must grow S first completes the shrink
 *       (grow migrates all of S.prev): one migration at a time per table.
 *   S4  A key moves only from the group covering its position in T to the
 *       one covering it in S (CHOICE bits keep positions), so a scan sees
 *       each present key once (idx_scan).
 *   Linearization: as in growth, migration changes no key's state; a
 *   reader of T's FROZEN, not yet MIGRATED group reads its final state.
 *   Deadlock freedom: writers take LOCKs in address order and never wait
 *   for a migration while holding one; a migration owner waits only for
 *   LOCK holders; the maintainer holds no LOCK while it waits a grace
 *   period.
 *
 * GROWTH (online; nobody waits for a whole rebuild)
 *   An insert that finds both its groups full allocates the table of depth
 *   D + 1 (lazily zeroed mmap), links it as next, and moves idx.cur to it.
 *   From then on every write helps: it first migrates the parents of its
 *   own two groups (so I4 holds for what it touches), then a chunk of
 *   MIG_CHUNK groups from a shared cursor.  Migrating a group: set FROZEN
 *   (the thread that set it owns the copy; others wait for MIGRATED, a
 *   bounded wait for a copy of 11 slot words), wait until no writer holds
 *   its LOCK, copy every slot word into the child its key routes to in the
 *   new table by its recorded choice (the entries are shared, not copied;
 *   the CHOICE bit goes along), set overflow bits for
 *   keys placed second, then set MIGRATED (release).  The thread whose
 *   migrated-count reaches 2^D clears next.prev and retires the old table.
 *   While a table has prev, readers check g2 regardless of overflow bits
 *   (bits for keys of not-yet-migrated groups are not yet in the children).
 *
 * SYNCHRONIZATION TABLE
 *   | role                         | touches                         | may run with        |
 *   |------------------------------|---------------------------------|---------------------|
 *   | reader (lookup, contains,    | tags, slot words, entries,      | everything          |
 *   |  values, lookup_many, scan)  | vsets: loads only               |                     |
 *   | idx_prefetch                 | idx.cur, table.g (in a section):| everything          |
 *   |                              | loads and a prefetch only       |                     |
 *   | writer of key K              | LOCK of K's g1 (and g2 when it  | readers, writers of |
 *   |                              | changes g2), slot/tag RMW, new  | other groups,       |
 *   |                              | entries, the LSN hook           | migrators of others |
 *   | migrator of group g (a       | g.ctl FROZEN/MIGRATED, the two  | readers of g, every |
 *   |  writer, helping)            | children of g, overflow bits    | op elsewhere; waits |
 *   |                              | (RMW) in the new table          | for g's LOCK holder |
 *   | grow (a writer)              | table.next, idx.cur (CAS)       | everything          |
 *   | writer placing a new key in  | LOCKs of g1, g2 and their       | as a writer         |
 *   |  PAIR mode (SHRINK)          | siblings (counts only)          |                     |
 *   | shrink migrator of pair s    | ctl of 2s, 2s+1; group s of S,  | as a migrator       |
 *   |  (a writer or maintainer)    | overflow bits (RMW) in S        |                     |
 *   | maintainer (one: maint_mu)   | LOCK of a group whose entries   | everything; waits   |
 *   |                              | it moves, chunk states (E1-E3), | for grace periods   |
 *   |                              | pair_mode, table.next (CAS)     |                     |
 *   | idx_valid / idx_destroy      | everything                      | nothing             |
 *
 * PROGRESS
 *   lookup/contains/values/scan: lock-free and read-only: no retry loop at
 *   all (I2); they follow at most one MIGRATED hop per table generation.
 *   Writers: blocking at group granularity (striped locks, one cache line
 *   per 11 slots: writers of keys in different groups never share a lock),
 *   held for a few hundred instructions plus the LSN hook.
 *
 * MEMORY SAFETY
 *   Every access happens inside an epoch section.  Replaced or deleted
 *   entries are retired in batches (one epoch object per RET_BATCH
 *   entries); replaced vsets and migrated tables are retired one by one.
 *   A retired entry's free bit is set only after the grace period, and an
 *   entry is handed out again only from a free bit (entries.c, E1-E3);
 *   a chunk's pages go back to the OS only when every bit is free (E2).
 *
 * MAINTENANCE (maint.c)
 *   idx_maintain moves live entries out of sparse chunks: under the
 *   group's LOCK it copies the entry to a new one and swaps the slot word
 *   (release), as a writer replacing an entry does (I2); the old entry is
 *   retired.  The key's state does not change, so this is no operation's
 *   linearization point; a reader sees the old or the new copy.
 *
 * The broken-build switch CIDSTORE_BROKEN_TWO_STEP_PUBLISH=1 replaces a
 * slot word in two stores (0, then the new entry): readers in between see
 * the key vanish, which stress_linearize must report.
 */
#include "index/index_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "util/alloc.h"
#include "util/backoff.h"
#include "util/check.h"

#ifndef CIDSTORE_BROKEN_TWO_STEP_PUBLISH
#define CIDSTORE_BROKEN_TWO_STEP_PUBLISH 0
#endif

#define VSET_BIG (64u << 10) /* retired with ep_retire_big */

static inline void tag_set(struct group *g, int i, unsigned t)
{
	/* release: the slot word (and the entry behind it) before the tag */
	atomic_fetch_or_explicit(&g->tag[i >> 3], (uint64_t)t << ((i & 7) * 8),
				 memory_order_release);
}

static inline void tag_clear(struct group *g, int i)
{
	atomic_fetch_and_explicit(&g->tag[i >> 3], ~((uint64_t)0xff << ((i & 7) * 8)),
				  memory_order_release);
}

/* ------------------------------------------------------------------ */
/* value sets (entries: entries.c)                                     */
/* ------------------------------------------------------------------ */

static void vset_free_cb(ck_epoch_entry_t *ep)
{
	vset_t *s = (vset_t *)((char *)ep - offsetof(vset_t, ep));
	struct idx *ix = s->owner;
	cidstore_tsan_acquire(&ix->ep.tsan_sync);
	atomic_fetch_sub_explicit(&ix->mem, vset_bytes(s), memory_order_relaxed);
	cs_poison(s->v, (size_t)s->nslots * sizeof(cid_t));
	vset_free(s);
	ep_freed(&ix->ep);
}

static vset_t *vset_track(struct idx *ix, vset_t *s)
{
	if (s) {
		s->owner = ix;
		atomic_fetch_add_explicit(&ix->mem, vset_bytes(s), memory_order_relaxed);
	}
	return s;
}

static void vset_drop(struct idx *ix, vset_t *s) /* never published */
{
	atomic_fetch_sub_explicit(&ix->mem, vset_bytes(s), memory_order_relaxed);
	vset_free(s);
}

static void vset_retire(ep_rec_t *r, vset_t *s)
{
	if (vset_bytes(s) >= VSET_BIG)
		ep_retire_big(r, &s->ep, vset_free_cb);
	else
		ep_retire(r, &s->ep, vset_free_cb);
}

/* ------------------------------------------------------------------ */
/* tables                                                              */
/* ------------------------------------------------------------------ */

#define MAP_MIN (2u << 20)

static struct table *table_new(struct idx *ix, unsigned depth)
{
	struct table *t = cs_malloc(sizeof(*t));
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->ix = ix;
	t->depth = depth;
	t->n = (uint64_t)1 << depth;
	size_t bytes = t->n * sizeof(struct group);
	if (bytes >= MAP_MIN) {
		void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			cs_free(t);
			return NULL;
		}
		madvise(p, bytes, MADV_HUGEPAGE);
		t->g = p;
		t->map_bytes = bytes;
	} else {
		t->g = cs_aligned(64, bytes);
		if (!t->g) {
			cs_free(t);
			return NULL;
		}
		memset(t->g, 0, bytes);
	}
	atomic_fetch_add_explicit(&ix->mem, bytes, memory_order_relaxed);
	return t;
}

static void table_free(struct table *t)
{
	size_t bytes = t->n * sizeof(struct group);
	atomic_fetch_sub_explicit(&t->ix->mem, bytes, memory_order_relaxed);
	if (t->map_bytes)
		munmap(t->g, t->map_bytes);
	else
		cs_free(t->g);
	cs_free(t);
}

static void table_free_cb(ck_epoch_entry_t *ep)
{
	struct table *t = (struct table *)((char *)ep - offsetof(struct table, ep));
	struct idx *ix = t->ix;
	cidstore_tsan_acquire(&ix->ep.tsan_sync);
	table_free(t);
	ep_freed(&ix->ep);
}

/* ------------------------------------------------------------------ */
/* group locks and migration                                           */
/* ------------------------------------------------------------------ */

/* Takes g's LOCK; false (nothing held) when g is FROZEN. */
static bool grp_lock(struct group *g)
{
	unsigned n = 0;
	for (;;) {
		uint32_t c = atomic_load_explicit(&g->ctl, memory_order_relaxed);
		if (c & G_FROZEN)
			return false;
		if (!(c & G_LOCK) &&
		    atomic_compare_exchange_weak_explicit(&g->ctl, &c, c | G_LOCK,
				memory_order_acquire, memory_order_relaxed))
			return true;
		cidstore_backoff(&n);
	}
}

static inline void grp_unlock(struct group *g)
{
	/* release: every slot and tag change of the critical section */
	atomic_fetch_and_explicit(&g->ctl, ~G_LOCK, memory_order_release);
}

/* Locks a, and b when b is not NULL (b != a), in address order. */
static bool lock_pair(struct group *a, struct group *b)
{
	if (!b)
		return grp_lock(a);
	struct group *lo = a < b ? a : b, *hi = a < b ? b : a;
	if (!grp_lock(lo))
		return false;
	if (!grp_lock(hi)) {
		grp_unlock(lo);
		return false;
	}
	return true;
}

static void unlock_pair(struct group *a, struct group *b)
{
	if (b)
		grp_unlock(b);
	grp_unlock(a);
}

/* Sorts gs[0..n) by address and drops duplicates; returns the new n. */
static int sort_groups(struct group **gs, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && gs[j] < gs[j - 1]; j--) {
			struct group *x = gs[j];
			gs[j] = gs[j - 1];
			gs[j - 1] = x;
		}
	int m = 0;
	for (int i = 0; i < n; i++)
		if (m == 0 || gs[i] != gs[m - 1])
			gs[m++] = gs[i];
	return m;
}

/* Locks gs[0..n) (sorted, distinct) in order; false (nothing held) when
 * one of them is FROZEN. */
static bool lock_groups(struct group **gs, int n)
{
	for (int k = 0; k < n; k++)
		if (!grp_lock(gs[k])) {
			while (k--)
				grp_unlock(gs[k]);
			return false;
		}
	return true;
}

static void unlock_groups(struct group **gs, int n)
{
	for (int k = n; k--;)
		grp_unlock(gs[k]);
}

static void migrate_group(struct idx *ix, ep_rec_t *r, struct table *p, uint64_t gi);

/* Migrates every group of p (waiting for groups other threads own). */
static void migrate_all(struct idx *ix, ep_rec_t *r, struct table *p)
{
	for (uint64_t gi = 0; gi < p->n; gi++)
		if (!(atomic_load_explicit(&p->g[gi].ctl, memory_order_acquire) & G_MIGRATED))
			migrate_group(ix, r, p, gi);
}

/* Puts a key (slot word sw, hash h1, by its first choice or not) into slot
 * j of group dst = t->g[di] of the table being filled.  dst is invisible
 * until its parent(s) are MIGRATED (release); its tag words may meanwhile
 * receive overflow bits from other migrations, hence RMW. */
static void place_copy(struct table *t, struct group *dst, unsigned j, uint32_t sw, uint64_t h1,
		       bool first, uint64_t di)
{
	atomic_store_explicit(&dst->slot[j], sw, memory_order_relaxed);
	uint64_t w1bits = first ? 0 : sec_bit((int)j);
	if (j < 8) {
		atomic_fetch_or_explicit(&dst->tag[0], (uint64_t)tag_of(h1) << (j * 8),
					 memory_order_relaxed);
	} else {
		w1bits |= (uint64_t)tag_of(h1) << ((j & 7) * 8);
	}
	if (w1bits)
		atomic_fetch_or_explicit(&dst->tag[1], w1bits, memory_order_relaxed);
	if (!first) {
		uint64_t c1 = gidx(t, h1);
		if (c1 != di) /* I3 */
			atomic_fetch_or_explicit(&t->g[c1].tag[1], ovf_of(h1), memory_order_release);
	}
}

/* The end of a group's (or pair's) migration: k more groups of p are
 * MIGRATED; the thread that completes p retires it. */
static void migrated_n(struct idx *ix, ep_rec_t *r, struct table *p, struct table *t, unsigned k)
{
	atomic_fetch_add_explicit(&ix->migrated, k, memory_order_relaxed);
	uint64_t done = atomic_fetch_add_explicit(&p->mig_done, k, memory_order_acq_rel) + k;
	if (done == p->n) {
		/* Every group is in t: readers may trust t's overflow bits again,
		 * and nothing can reach p once they reload t.prev (I5). */
		atomic_store_explicit(&t->prev, NULL, memory_order_release);
		ep_retire_big(r, &p->ep, table_free_cb);
	}
}

/* SHRINK: migrates the pair (ge, ge + 1) of p into group ge / 2 of the
 * half-size table p->next.  The thread that sets FROZEN on the even group
 * owns the pair (it alone freezes the odd one); others wait for MIGRATED
 * on the even group, which is set last. */
static void shrink_pair(struct idx *ix, ep_rec_t *r, struct table *p, uint64_t ge)
{
	struct group *a = &p->g[ge], *b = &p->g[ge + 1];
	unsigned n = 0;
	uint32_t c = atomic_fetch_or_explicit(&a->ctl, G_FROZEN, memory_order_acq_rel);
	if (c & G_FROZEN) {
		/* Another thread owns the copy: 22 slot words, bounded. */
		while (!(atomic_load_explicit(&a->ctl, memory_order_acquire) & G_MIGRATED))
			cidstore_backoff(&n);
		return;
	}
	atomic_fetch_or_explicit(&b->ctl, G_FROZEN, memory_order_acq_rel);
	CIDSTORE_SHAKE_POINT("shrink.after_freeze");
	/* acquire: the last lock holders' changes */
	while ((atomic_load_explicit(&a->ctl, memory_order_acquire) |
		atomic_load_explicit(&b->ctl, memory_order_acquire)) & G_LOCK)
		cidstore_backoff(&n);
	struct table *t = atomic_load_explicit(&p->next, memory_order_acquire);
	uint64_t di = ge >> 1;
	struct group *dst = &t->g[di];
	unsigned j = 0;
	for (int half = 0; half < 2; half++) {
		struct group *g = half ? b : a;
		uint64_t w0, w1;
		grp_tags(g, &w0, &w1);
		for (unsigned m = occupied(w0, w1); m; m &= m - 1) {
			int i = __builtin_ctz(m);
			uint32_t sw = atomic_load_explicit(&g->slot[i], memory_order_relaxed);
			uint64_t h1 = cid_hash64(&ix->seed, &ent_ptr(ix, EIDX(sw))->key);
			bool first = !(w1 & sec_bit(i));
			CS_ASSERT(gidx(t, first ? h1 : h2_of(ix, h1)) == di);
			/* the pair invariant P1 (top comment, SHRINK) */
			CS_ASSERT(j < GSLOTS);
			place_copy(t, dst, j++, sw, h1, first, di);
		}
	}
	CIDSTORE_SHAKE_POINT("shrink.before_done");
	/* release: the merged group's contents before anyone routes to it */
	atomic_fetch_or_explicit(&b->ctl, G_MIGRATED, memory_order_release);
	atomic_fetch_or_explicit(&a->ctl, G_MIGRATED, memory_order_release);
	migrated_n(ix, r, p, t, 2);
}

static void migrate_group(struct idx *ix, ep_rec_t *r, struct table *p, uint64_t gi)
{
	struct table *nt = atomic_load_explicit(&p->next, memory_order_acquire);
	if (nt->depth < p->depth) {
		shrink_pair(ix, r, p, gi & ~(uint64_t)1);
		return;
	}
	struct group *g = &p->g[gi];
	unsigned n = 0;
	uint32_t c = atomic_fetch_or_explicit(&g->ctl, G_FROZEN, memory_order_acq_rel);
	if (c & G_FROZEN) {
		/* Another thread owns the copy: 11 slot words, bounded. */
		while (!(atomic_load_explicit(&g->ctl, memory_order_acquire) & G_MIGRATED))
			cidstore_backoff(&n);
		return;
	}
	CIDSTORE_SHAKE_POINT("migrate.after_freeze");
	/* acquire: the last lock holder's changes */
	while (atomic_load_explicit(&g->ctl, memory_order_acquire) & G_LOCK)
		cidstore_backoff(&n);
	struct table *t = atomic_load_explicit(&p->next, memory_order_acquire);
	uint64_t w0, w1;
	grp_tags(g, &w0, &w1);
	unsigned occ = occupied(w0, w1);
	uint32_t sw[GSLOTS];
	struct entry *e[GSLOTS];
	for (unsigned m = occ; m; m &= m - 1) {
		int i = __builtin_ctz(m);
		sw[i] = atomic_load_explicit(&g->slot[i], memory_order_relaxed);
		e[i] = ent_ptr(ix, EIDX(sw[i]));
		__builtin_prefetch(e[i]);
	}
	unsigned fill[2] = {0, 0};
	for (unsigned m = occ; m; m &= m - 1) {
		int i = __builtin_ctz(m);
		uint64_t h1 = cid_hash64(&ix->seed, &e[i]->key);
		bool first = !(w1 & sec_bit(i));
		uint64_t h = first ? h1 : h2_of(ix, h1);
		CS_ASSERT(gidx(p, h) == gi);
		uint64_t ci = gidx(t, h);
		struct group *child = &t->g[ci];
		unsigned j = fill[ci & 1]++;
		place_copy(t, child, j, sw[i], h1, first, ci);
	}
	CIDSTORE_SHAKE_POINT("migrate.before_done");
	/* release: the children's contents before anyone routes to them */
	atomic_fetch_or_explicit(&g->ctl, G_MIGRATED, memory_order_release);
	migrated_n(ix, r, p, t, 1);
}

/* A writer's share of an ongoing migration; returns the groups offered. */
static unsigned help_migrate(struct idx *ix, ep_rec_t *r, struct table *t)
{
	struct table *p = atomic_load_explicit(&t->prev, memory_order_acquire);
	if (!p)
		return 0;
	uint64_t start = atomic_fetch_add_explicit(&p->mig_cursor, MIG_CHUNK, memory_order_relaxed);
	/* The copy hashes every key, reading its entry: prefetch the whole
	 * chunk's entries first so those ~130 misses overlap (a hint only: the
	 * slot words may change before the group is frozen). */
	for (uint64_t gi = start; gi < start + MIG_CHUNK && gi < p->n; gi++) {
		struct group *g = &p->g[gi];
		for (int i = 0; i < GSLOTS; i++) {
			uint32_t sw = atomic_load_explicit(&g->slot[i], memory_order_relaxed);
			if (sw)
				__builtin_prefetch(ent_ptr(ix, EIDX(sw)));
		}
	}
	uint64_t step = t->depth < p->depth ? 2 : 1; /* a shrink migrates pairs */
	unsigned n = 0;
	for (uint64_t gi = start; gi < start + MIG_CHUNK && gi < p->n; gi += step, n += step)
		if (!(atomic_load_explicit(&p->g[gi].ctl, memory_order_relaxed) & G_FROZEN))
			migrate_group(ix, r, p, gi);
	return n;
}

/* The group of t for hash h that a writer may lock: its parent (if t is
 * still being filled) is migrated first (I4). */
static struct group *wr_group(struct idx *ix, ep_rec_t *r, struct table *t, uint64_t h)
{
	struct table *p = atomic_load_explicit(&t->prev, memory_order_acquire);
	if (p) {
		uint64_t pi = gidx(p, h);
		if (!(atomic_load_explicit(&p->g[pi].ctl, memory_order_acquire) & G_MIGRATED))
			migrate_group(ix, r, p, pi);
	}
	return &t->g[gidx(t, h)];
}

/* Moves idx.cur past t when t already has a successor. */
static void advance_cur(struct idx *ix, struct table *t)
{
	struct table *n = atomic_load_explicit(&t->next, memory_order_acquire);
	if (n) {
		struct table *exp = t;
		CIDSTORE_SHAKE_POINT("grow.before_cur");
		atomic_compare_exchange_strong_explicit(&ix->cur, &exp, n, memory_order_acq_rel,
							memory_order_relaxed);
	}
}

static int grow(struct idx *ix, ep_rec_t *r, struct table *t)
{
	struct table *p = atomic_load_explicit(&t->prev, memory_order_acquire);
	if (p)
		migrate_all(ix, r, p); /* t must be complete before it migrates on */
	struct table *n = atomic_load_explicit(&t->next, memory_order_acquire);
	if (!n) {
		if (t->depth >= MAX_DEPTH)
			return CIDSTORE_ENOMEM;
		n = table_new(ix, t->depth + 1);
		if (!n)
			return CIDSTORE_ENOMEM;
		atomic_init(&n->prev, t);
		struct table *exp = NULL;
		if (atomic_compare_exchange_strong_explicit(&t->next, &exp, n, memory_order_acq_rel,
							    memory_order_acquire)) {
			atomic_fetch_add_explicit(&ix->growths, 1, memory_order_relaxed);
		} else {
			table_free(n);
		}
	}
	advance_cur(ix, t);
	return 0;
}

/* ------------------------------------------------------------------ */
/* reading                                                             */
/* ------------------------------------------------------------------ */

/* The group a reader should read for hash h, starting at table t.
 * *unsure is set when the group's table is still being filled (its
 * overflow bits may miss keys of unmigrated groups). */
static struct group *rd_group(struct table *t, uint64_t h, bool *unsure)
{
	for (;;) {
		struct table *p = atomic_load_explicit(&t->prev, memory_order_acquire);
		if (p) {
			*unsure = true;
			struct group *pg = &p->g[gidx(p, h)];
			if (!(atomic_load_explicit(&pg->ctl, memory_order_acquire) & G_MIGRATED))
				return pg;
		}
		struct group *g = &t->g[gidx(t, h)];
		if (!(atomic_load_explicit(&g->ctl, memory_order_acquire) & G_MIGRATED))
			return g;
		CIDSTORE_SHAKE_POINT("rd.follow_next");
		t = atomic_load_explicit(&t->next, memory_order_acquire);
	}
}

struct hit {
	struct group *g;
	int i;
	uint32_t sw;
	struct entry *e;
};

/* Finds key in g; on a miss *w1 holds g's second tag word (overflow bits). */
static bool grp_find(struct idx *ix, struct group *g, const cid_t *key, unsigned t,
		     struct hit *h, uint64_t *w1)
{
	uint64_t w0;
	grp_tags(g, &w0, w1);
	CIDSTORE_SHAKE_POINT("rd.after_tags");
	for (unsigned m = tag_match(w0, *w1, t); m; m &= m - 1) {
		int i = __builtin_ctz(m);
		uint32_t sw = atomic_load_explicit(&g->slot[i], memory_order_acquire);
		if (!sw)
			continue; /* being deleted */
		struct entry *e = ent_ptr(ix, EIDX(sw));
		if (cid_eq(&e->key, key)) {
			*h = (struct hit){g, i, sw, e};
			return true;
		}
	}
	return false;
}

static bool rd_find(struct idx *ix, uint64_t h1, const cid_t *key, struct hit *h)
{
	struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
	uint64_t h2 = h2_of(ix, h1);
	__builtin_prefetch(&t->g[gidx(t, h2)]);
	bool unsure = false;
	unsigned tg = tag_of(h1);
	uint64_t w1;
	struct group *g = rd_group(t, h1, &unsure);
	if (grp_find(ix, g, key, tg, h, &w1))
		return true;
	if (!unsure && !(w1 & ovf_of(h1)))
		return false;
	struct group *g2 = rd_group(t, h2, &unsure);
	return g2 != g && grp_find(ix, g2, key, tg, h, &w1);
}

/* Reads the key's values from its entry (count; fills min(count, cap)). */
static long hit_read(const struct hit *h, cid_t *out, size_t cap)
{
	if (!(h->sw & SPILLED)) {
		if (cap)
			out[0] = h->e->u.val;
		return 1;
	}
	vset_t *vs = h->e->u.vs;
	uint32_t live;
	uint32_t v = vset_snap(vs, &live);
	size_t pos = 0;
	if (cap)
		vset_copy(vs, v, &pos, out, cap < live ? cap : live);
	return (long)live;
}

static inline uint64_t key_hash(struct idx *ix, const cid_t *key)
{
	return cid_hash64(&ix->seed, key);
}

static long lookup_h(struct idx *ix, ep_rec_t *r, uint64_t h1, const cid_t *key, cid_t *out,
		     size_t cap)
{
	ep_enter(r);
	struct hit h;
	long n = rd_find(ix, h1, key, &h) ? hit_read(&h, out, cap) : 0;
	ep_exit(r);
	return n;
}

long idx_lookup(idx_t *ix, const cid_t *key, cid_t *out, size_t cap)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	return lookup_h(ix, r, key_hash(ix, key), key, out, cap);
}

int idx_contains(idx_t *ix, const cid_t *key, const cid_t *val)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	ep_enter(r);
	struct hit h;
	int ret = 0;
	if (rd_find(ix, key_hash(ix, key), key, &h)) {
		if (!(h.sw & SPILLED)) {
			ret = cid_eq(&h.e->u.val, val);
		} else {
			uint32_t live;
			uint32_t v = vset_snap(h.e->u.vs, &live);
			ret = vset_contains_at(h.e->u.vs, v, val);
		}
	}
	ep_exit(r);
	return ret;
}

#define MANY 16

/* Prefetches the entries of g's slots whose tag matches the key's (a
 * batch's hint only); returns g's second tag word (the overflow bits). */
static inline uint64_t prefetch_matches(struct idx *ix, struct group *g, uint64_t h1)
{
	uint64_t w0, w1;
	grp_tags(g, &w0, &w1);
	for (unsigned mask = tag_match(w0, w1, tag_of(h1)); mask; mask &= mask - 1) {
		uint32_t sw = atomic_load_explicit(&g->slot[__builtin_ctz(mask)], memory_order_relaxed);
		if (sw)
			__builtin_prefetch(ent_ptr(ix, EIDX(sw)));
	}
	return w1;
}

int idx_lookup_many(idx_t *ix, const cid_t *keys, size_t n, cid_t *out, size_t cap,
		    long *counts)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	uint64_t h[MANY];
	struct group *g2[MANY];
	ep_enter(r);
	for (size_t base = 0; base < n; base += MANY) {
		size_t m = n - base < MANY ? n - base : MANY;
		struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
		/* Stage 1: every key's first group line. */
		for (size_t j = 0; j < m; j++) {
			h[j] = key_hash(ix, &keys[base + j]);
			__builtin_prefetch(&t->g[gidx(t, h[j])]);
		}
		/* Stage 2: every key's candidate entries (tag matches), and its
		 * second group's line only when g1's overflow bit asks for it
		 * (the bandwidth a batch saves goes to more keys in flight). */
		for (size_t j = 0; j < m; j++) {
			uint64_t w1 = prefetch_matches(ix, &t->g[gidx(t, h[j])], h[j]);
			g2[j] = (w1 & ovf_of(h[j])) ? &t->g[gidx(t, h2_of(ix, h[j]))] : NULL;
			if (g2[j])
				__builtin_prefetch(g2[j]);
		}
		/* Stage 2b: the candidate entries in the second groups. */
		for (size_t j = 0; j < m; j++)
			if (g2[j])
				prefetch_matches(ix, g2[j], h[j]);
		/* Stage 3: resolve (lines are in cache now; a key that migrated
		 * or sits in g2 takes the general path). */
		for (size_t j = 0; j < m; j++)
			counts[base + j] = lookup_h(ix, r, h[j], &keys[base + j],
						    cap ? out + (base + j) * cap : NULL, cap);
	}
	ep_exit(r);
	return 0;
}

long idx_values(idx_t *ix, const cid_t *key, cidstore_values_fn fn, void *ctx)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	ep_enter(r);
	struct hit h;
	long ret = 0;
	if (rd_find(ix, key_hash(ix, key), key, &h)) {
		if (!(h.sw & SPILLED)) {
			cid_t v = h.e->u.val;
			int rc = fn(&v, 1, ctx);
			ret = rc ? rc : 1;
		} else {
			vset_t *vs = h.e->u.vs;
			uint32_t live;
			uint32_t v = vset_snap(vs, &live);
			cid_t buf[256];
			size_t pos = 0, total = 0;
			while (total < live) {
				size_t k = vset_copy(vs, v, &pos, buf, 256);
				if (!k)
					break;
				total += k;
				int rc = fn(buf, k, ctx);
				if (rc) {
					ret = rc;
					goto out;
				}
			}
			ret = (long)total;
		}
	}
out:
	ep_exit(r);
	return ret;
}

/* ------------------------------------------------------------------ */
/* writing                                                             */
/* ------------------------------------------------------------------ */

enum wop { W_INSERT, W_DEL_VALUE, W_DEL_KEY, W_INSERT_SET };

struct wargs {
	enum wop op;
	const cid_t *key;
	const cid_t *val;   /* W_INSERT, W_DEL_VALUE */
	const cid_t *vals;  /* W_INSERT_SET */
	size_t n;
	idx_hook_t *hook;
	uint64_t h1;
};

static inline int log_op(idx_hook_t *hook, idx_op_t op, const cid_t *key, const cid_t *val)
{
	if (!hook || !hook->fn)
		return 0;
	CIDSTORE_SHAKE_POINT("log.before_hook");
	return hook->fn(hook->ctx, op, key, val, &hook->lsn);
}

/* Publishes a replacement of slot i's entry (the key stays in the slot). */
static void slot_replace(struct group *g, int i, uint32_t sw)
{
#if CIDSTORE_BROKEN_TWO_STEP_PUBLISH
	atomic_store_explicit(&g->slot[i], 0, memory_order_release);
	CIDSTORE_SHAKE_POINT("broken.between");
#endif
	CIDSTORE_SHAKE_POINT("publish.before_slot");
	atomic_store_explicit(&g->slot[i], sw, memory_order_release);
}

/* Removes the key in slot i: the slot word first (the linearization
 * point), then the tag, so a reader that no longer sees the tag reads after
 * the removal. */
static void slot_remove(struct group *g, int i)
{
	atomic_store_explicit(&g->slot[i], 0, memory_order_release);
	CIDSTORE_SHAKE_POINT("remove.between");
	tag_clear(g, i);
	/* the choice bit of an empty slot is 0 (the LOCK holder's own word) */
	if (atomic_load_explicit(&g->tag[1], memory_order_relaxed) & sec_bit(i))
		atomic_fetch_and_explicit(&g->tag[1], ~sec_bit(i), memory_order_relaxed);
}

/* A new private entry (key, inline value or vset); 0 when out of memory. */
static uint32_t ent_make(struct idx *ix, ep_rec_t *r, const cid_t *key, const cid_t *val,
			 vset_t *vs)
{
	uint32_t e = ent_alloc(ix, r);
	if (!e)
		return 0;
	struct entry *p = ent_ptr(ix, e);
	p->key = *key;
	if (vs) {
		memset(&p->u, 0, sizeof(p->u));
		p->u.vs = vs;
	} else {
		p->u.val = *val;
	}
	return e;
}

/* Replaces the key's entry at h with a new one; retires the old entry (and
 * old_vs when not NULL).  The hook was called by the caller. */
static void entry_swap(struct idx *ix, ep_rec_t *r, const struct hit *h, uint32_t nsw,
		       vset_t *old_vs)
{
	slot_replace(h->g, h->i, nsw);
	ent_retire(ix, r, EIDX(h->sw));
	if (old_vs)
		vset_retire(r, old_vs);
}

/* An insert that gives the key a new value set: logs it, then publishes
 * nvs (private and tracked; NULL when its allocation failed) in a new entry
 * and retires old_vs (may be NULL).  add, if not NULL, goes into nvs first,
 * while it is still private. */
static long publish_set(struct idx *ix, ep_rec_t *r, struct wargs *a, const struct hit *h,
			vset_t *nvs, vset_t *old_vs, const cid_t *add)
{
	uint32_t e = nvs ? ent_make(ix, r, a->key, NULL, nvs) : 0;
	if (!e) {
		if (nvs)
			vset_drop(ix, nvs);
		return CIDSTORE_ENOMEM;
	}
	int rc = log_op(a->hook, IDX_OP_INSERT, a->key, a->val);
	if (rc < 0) {
		ent_unalloc(ix, e);
		vset_drop(ix, nvs);
		return rc;
	}
	if (add)
		vset_add(nvs, add);
	entry_swap(ix, r, h, e | SPILLED, old_vs);
	return 1;
}

/* The key (absent) goes into dst (g1 or g2); the hook was not called yet. */
static long put_new(struct wargs *a, struct group *g1, struct group *dst, uint32_t nsw,
		    const cid_t *logval)
{
	if (a->op == W_INSERT) {
		int rc = log_op(a->hook, IDX_OP_INSERT, a->key, logval);
		if (rc < 0)
			return rc;
	}
	uint64_t w0, w1;
	grp_tags(dst, &w0, &w1);
	int i = __builtin_ctz(~occupied(w0, w1) & GMASK);
	if (dst != g1) {
		atomic_fetch_or_explicit(&g1->tag[1], ovf_of(a->h1), memory_order_release); /* I3 */
		/* its choice, before the tag (release) makes the slot occupied */
		atomic_fetch_or_explicit(&dst->tag[1], sec_bit(i), memory_order_relaxed);
	}
	/* The tag first, the slot word last: the slot store is the insert's
	 * linearization point.  (The other order let a reader that had read
	 * the key's old tag find the new entry before its tag was set, and a
	 * later read miss it: the key's state went back.) */
	tag_set(dst, i, tag_of(a->h1));
	CIDSTORE_SHAKE_POINT("insert.after_tag");
	atomic_store_explicit(&dst->slot[i], nsw, memory_order_release);
	return 0;
}

/* The locked part of every write.  Returns the op's result, or 1 << 40 to
 * ask for g2 to be locked too, or 2 << 40 when both groups are full. */
#define NEED_G2 (1L << 40)
#define NEED_GROW (2L << 40)
#define NEED_PAIRS (3L << 40)

static inline struct group *sib(struct table *t, struct group *g)
{
	return &t->g[(uint64_t)(g - t->g) ^ 1];
}

/* g can take a new key: it has a free slot and, in PAIR mode, its pair
 * (g and its sibling) holds fewer than GSLOTS keys (P1). */
static inline bool has_room(struct table *t, struct group *g, bool pm)
{
	unsigned c = grp_count(g);
	return c < GSLOTS && (!pm || c + grp_count(sib(t, g)) < GSLOTS);
}

/* pairs: the siblings of g1 (and of g2 when have2) are locked too. */
static long write_locked(struct idx *ix, ep_rec_t *r, struct wargs *a, struct table *t,
			 struct group *g1, struct group *g2, bool have2, bool pairs)
{
	unsigned tg = tag_of(a->h1);
	struct hit h;
	uint64_t w1;
	bool found = grp_find(ix, g1, a->key, tg, &h, &w1);
	if (!found && g2 && (w1 & ovf_of(a->h1)))
		found = grp_find(ix, g2, a->key, tg, &h, &w1);
	/* A key found in g2 may have its value set changed in place under
	 * g1's lock alone (every writer of the key holds g1); its slot word and
	 * tag change only under g2's lock too: NEED_G2 before any side effect. */
	bool slot_locked = found && (h.g == g1 || have2);

	if (!found) {
		if (a->op == W_DEL_VALUE || a->op == W_DEL_KEY)
			return 0;
		if (a->op == W_INSERT_SET && a->n == 0)
			return 0;
		/* Where a new key goes (see the top comment; PAIR mode: SHRINK). */
		bool pm = atomic_load_explicit(&t->pair_mode, memory_order_relaxed) != 0;
		if (pm && !pairs)
			return NEED_PAIRS;
		unsigned c1 = grp_count(g1);
		bool ok1 = c1 < GSLOTS && (!pm || c1 + grp_count(sib(t, g1)) < GSLOTS);
		struct group *dst;
		if (ok1 && (!g2 || c1 < PREF_FIRST)) {
			dst = g1; /* the common case: g2's line is not read */
		} else if (!g2) {
			dst = NULL;
		} else {
			bool ok2 = has_room(t, g2, pm);
			if (ok2 && (!ok1 || grp_count(g2) < c1))
				dst = g2;
			else
				dst = ok1 ? g1 : NULL;
		}
		if (!dst)
			return g2 && !have2 ? NEED_G2 : NEED_GROW;
		if (dst == g2 && !have2)
			return NEED_G2;
		if (a->op == W_INSERT) {
			uint32_t e = ent_make(ix, r, a->key, a->val, NULL);
			if (!e)
				return CIDSTORE_ENOMEM;
			long rc = put_new(a, g1, dst, e, a->val);
			if (rc < 0) {
				ent_unalloc(ix, e);
				return rc;
			}
			return 1;
		}
		/* W_INSERT_SET of an absent key (recovery: no hook). */
		vset_t *vs = a->n > 1 ? vset_track(ix, vset_build(&ix->seed, a->vals, a->n, 0)) : NULL;
		if (a->n > 1 && !vs)
			return CIDSTORE_ENOMEM;
		long live = vs ? (long)vs->live : 1;
		uint32_t e;
		if (live == 1) {
			cid_t v = a->n > 1 ? vset_only(vs) : a->vals[0];
			if (vs)
				vset_drop(ix, vs);
			e = ent_make(ix, r, a->key, &v, NULL);
			if (!e)
				return CIDSTORE_ENOMEM;
		} else {
			e = ent_make(ix, r, a->key, NULL, vs);
			if (!e) {
				vset_drop(ix, vs);
				return CIDSTORE_ENOMEM;
			}
			e |= SPILLED;
		}
		put_new(a, g1, dst, e, NULL);
		return live;
	}

	bool spilled = (h.sw & SPILLED) != 0;
	vset_t *vs = spilled ? h.e->u.vs : NULL;
	switch (a->op) {
	case W_INSERT: {
		if (!spilled) {
			if (cid_eq(&h.e->u.val, a->val))
				return 0;
			if (!slot_locked)
				return NEED_G2;
			cid_t two[2] = {h.e->u.val, *a->val};
			vset_t *nvs = vset_track(ix, vset_build(&ix->seed, two, 2, 2));
			return publish_set(ix, r, a, &h, nvs, NULL, NULL);
		}
		if (vset_has(vs, a->val))
			return 0;
		if (vset_room(vs)) {
			int rc = log_op(a->hook, IDX_OP_INSERT, a->key, a->val);
			if (rc < 0)
				return rc;
			vset_add(vs, a->val);
			return 1;
		}
		if (!slot_locked)
			return NEED_G2;
		atomic_fetch_add_explicit(&ix->rebuilds, 1, memory_order_relaxed);
		return publish_set(ix, r, a, &h, vset_track(ix, vset_rebuild(vs, 1)), vs, a->val);
	}
	case W_DEL_VALUE: {
		if (!spilled) {
			if (!cid_eq(&h.e->u.val, a->val))
				return 0;
			if (!slot_locked)
				return NEED_G2;
			int rc = log_op(a->hook, IDX_OP_DELETE_VALUE, a->key, a->val);
			if (rc < 0)
				return rc;
			slot_remove(h.g, h.i);
			ent_retire(ix, r, EIDX(h.sw));
			return 1;
		}
		if (!vset_has(vs, a->val))
			return 0;
		if (vs->live == 2) {
			/* Demote: the other value goes back inline. */
			if (!slot_locked)
				return NEED_G2;
			cid_t two[2];
			uint32_t live;
			size_t pos = 0;
			vset_copy(vs, vset_snap(vs, &live), &pos, two, 2);
			const cid_t *other = cid_eq(&two[0], a->val) ? &two[1] : &two[0];
			uint32_t e = ent_make(ix, r, a->key, other, NULL);
			if (!e)
				return CIDSTORE_ENOMEM;
			int rc = log_op(a->hook, IDX_OP_DELETE_VALUE, a->key, a->val);
			if (rc < 0) {
				ent_unalloc(ix, e);
				return rc;
			}
			entry_swap(ix, r, &h, e, vs);
			return 1;
		}
		int rc = log_op(a->hook, IDX_OP_DELETE_VALUE, a->key, a->val);
		if (rc < 0)
			return rc;
		vset_del(vs, a->val);
		if (slot_locked && vset_should_shrink(vs)) {
			/* Compaction is an optimization: skipped when out of memory,
			 * or until a later delete holds g2's lock too. */
			vset_t *nvs = vset_track(ix, vset_rebuild(vs, 0));
			uint32_t e = nvs ? ent_make(ix, r, a->key, NULL, nvs) : 0;
			if (e) {
				atomic_fetch_add_explicit(&ix->rebuilds, 1, memory_order_relaxed);
				entry_swap(ix, r, &h, e | SPILLED, vs);
			} else if (nvs) {
				vset_drop(ix, nvs);
			}
		}
		return 1;
	}
	case W_DEL_KEY: {
		if (!slot_locked)
			return NEED_G2;
		long n = spilled ? (long)vs->live : 1;
		int rc = log_op(a->hook, IDX_OP_DELETE_KEY, a->key, NULL);
		if (rc < 0)
			return rc;
		slot_remove(h.g, h.i);
		ent_retire(ix, r, EIDX(h.sw));
		if (vs)
			vset_retire(r, vs);
		return n;
	}
	case W_INSERT_SET: {
		/* Recovery's bulk path: the values go into the set in place when
		 * they fit, else into one new set with room for as many again
		 * (so adding to a big set in chunks stays O(n) in all). */
		vset_t *nvs;
		if (spilled && vset_room_for(vs, a->n)) {
			long added = 0;
			for (size_t k = 0; k < a->n; k++)
				if (!vset_has(vs, &a->vals[k])) {
					vset_add(vs, &a->vals[k]);
					added++;
				}
			return added;
		}
		if (!slot_locked)
			return NEED_G2;
		if (spilled) {
			nvs = vset_rebuild(vs, a->n > vs->live ? a->n : vs->live);
		} else {
			nvs = vset_build(&ix->seed, &h.e->u.val, 1, a->n);
		}
		vset_track(ix, nvs);
		if (!nvs)
			return CIDSTORE_ENOMEM;
		long before = nvs->live;
		for (size_t k = 0; k < a->n; k++)
			if (!vset_has(nvs, &a->vals[k]))
				vset_add(nvs, &a->vals[k]);
		long added = (long)nvs->live - before;
		if (nvs->live == 1 || added == 0) {
			vset_drop(ix, nvs);
			return 0;
		}
		uint32_t e = ent_make(ix, r, a->key, NULL, nvs);
		if (!e) {
			vset_drop(ix, nvs);
			return CIDSTORE_ENOMEM;
		}
		entry_swap(ix, r, &h, e | SPILLED, vs);
		return added;
	}
	}
	return CIDSTORE_EINVAL;
}

static long write_op(struct idx *ix, struct wargs *a)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	uint64_t h2 = h2_of(ix, a->h1);
	bool need2 = false, pairs = false;
	long ret;
	ep_enter(r);
	for (;;) {
		struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
		__builtin_prefetch(&t->g[gidx(t, h2)], 1); /* overlaps g1's miss */
		help_migrate(ix, r, t);
		struct group *g1 = wr_group(ix, r, t, a->h1);
		struct group *g2 = wr_group(ix, r, t, h2);
		if (g2 == g1)
			g2 = NULL;
		bool have2 = need2 && g2;
		bool locked;
		struct group *gs[4];
		int ng = 0;
		if (!pairs) {
			locked = lock_pair(g1, have2 ? g2 : NULL);
		} else {
			gs[ng++] = g1;
			gs[ng++] = sib(t, g1);
			if (have2) {
				gs[ng++] = g2;
				gs[ng++] = sib(t, g2);
			}
			ng = sort_groups(gs, ng);
			locked = lock_groups(gs, ng);
		}
		if (!locked) {
			advance_cur(ix, t); /* FROZEN: t has a successor */
			continue;
		}
		CIDSTORE_SHAKE_POINT("write.locked");
		ret = write_locked(ix, r, a, t, g1, g2, have2, pairs);
		if (!pairs)
			unlock_pair(g1, have2 ? g2 : NULL);
		else
			unlock_groups(gs, ng);
		if (ret == NEED_G2) {
			need2 = true;
			continue;
		}
		if (ret == NEED_PAIRS) {
			pairs = true;
			continue;
		}
		if (ret == NEED_GROW) {
			ret = grow(ix, r, t);
			if (ret < 0)
				break;
			continue;
		}
		break;
	}
	ep_exit(r);
	return ret;
}

int idx_insert(idx_t *ix, const cid_t *key, const cid_t *val, idx_hook_t *hook)
{
	struct wargs a = {W_INSERT, key, val, NULL, 0, hook, key_hash(ix, key)};
	return (int)write_op(ix, &a);
}

int idx_delete_value(idx_t *ix, const cid_t *key, const cid_t *val, idx_hook_t *hook)
{
	struct wargs a = {W_DEL_VALUE, key, val, NULL, 0, hook, key_hash(ix, key)};
	return (int)write_op(ix, &a);
}

long idx_delete_key(idx_t *ix, const cid_t *key, idx_hook_t *hook)
{
	struct wargs a = {W_DEL_KEY, key, NULL, NULL, 0, hook, key_hash(ix, key)};
	return write_op(ix, &a);
}

long idx_apply(idx_t *ix, idx_op_t op, const cid_t *key, const cid_t *val, idx_hook_t *hook)
{
	switch (op) {
	case IDX_OP_INSERT:
		return idx_insert(ix, key, val, hook);
	case IDX_OP_DELETE_VALUE:
		return idx_delete_value(ix, key, val, hook);
	case IDX_OP_DELETE_KEY:
		return idx_delete_key(ix, key, hook);
	}
	return CIDSTORE_EINVAL;
}

long idx_insert_set(idx_t *ix, const cid_t *key, const cid_t *vals, size_t n)
{
	struct wargs a = {W_INSERT_SET, key, NULL, vals, n, NULL, key_hash(ix, key)};
	return write_op(ix, &a);
}

long idx_insert_many(idx_t *ix, const cid_t *keys, const cid_t *vals, size_t n, int *results,
		     idx_hook_t *hook)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	uint64_t h[MANY];
	long added = 0;
	for (size_t base = 0; base < n; base += MANY) {
		size_t m = n - base < MANY ? n - base : MANY;
		ep_enter(r);
		struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
		for (size_t j = 0; j < m; j++) {
			h[j] = key_hash(ix, &keys[base + j]);
			__builtin_prefetch(&t->g[gidx(t, h[j])], 1);
			__builtin_prefetch(&t->g[gidx(t, h2_of(ix, h[j]))], 1);
		}
		for (size_t j = 0; j < m; j++) {
			struct wargs a = {W_INSERT, &keys[base + j], &vals[base + j], NULL, 0, hook, h[j]};
			long rc = write_op(ix, &a);
			if (results)
				results[base + j] = (int)rc;
			if (rc < 0) {
				ep_exit(r);
				return rc;
			}
			added += rc;
		}
		ep_exit(r);
	}
	return added;
}

/* Recovery's load: the batch of MANY_SETS keys is hashed and its first
 * groups prefetched for writing (the lock word's line) before the first
 * write, as idx_insert_many does.  Each key then goes through write_op:
 * the same locks, publication and invariants as any insert (nothing here
 * relies on recovery being alone in the index).  Only g1 is prefetched: a
 * key goes to g2 only when g1 holds PREF_FIRST keys or more, rare in an
 * index presized for the checkpoint (write_op prefetches g2 anyway). */
#define MANY_SETS 32

long idx_insert_sets(idx_t *ix, const idx_set_t *s, size_t n)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	uint64_t h[MANY_SETS];
	long added = 0;
	for (size_t base = 0; base < n; base += MANY_SETS) {
		size_t m = n - base < MANY_SETS ? n - base : MANY_SETS;
		ep_enter(r);
		struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
		for (size_t j = 0; j < m; j++) {
			h[j] = key_hash(ix, s[base + j].key);
			__builtin_prefetch(&t->g[gidx(t, h[j])], 1);
		}
		for (size_t j = 0; j < m; j++) {
			const idx_set_t *e = &s[base + j];
			struct wargs a = {W_INSERT_SET, e->key, NULL, e->vals, e->n, NULL, h[j]};
			long rc = write_op(ix, &a);
			if (rc < 0) {
				ep_exit(r);
				return rc;
			}
			added += rc;
		}
		ep_exit(r);
	}
	return added;
}

void idx_prefetch(idx_t *ix, const cid_t *key)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return;
	uint64_t h1 = key_hash(ix, key);
	ep_enter(r); /* the table stays readable while its address is taken */
	struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
	__builtin_prefetch(&t->g[gidx(t, h1)], 1);
	ep_exit(r);
}

/* ------------------------------------------------------------------ */
/* scan, stats, checks                                                 */
/* ------------------------------------------------------------------ */

/* The group covering hash-space position pos, and its table's depth. */
static struct group *route_pos(struct table *t, uint64_t pos, unsigned *depth)
{
	for (;;) {
		struct table *p = atomic_load_explicit(&t->prev, memory_order_acquire);
		if (p) {
			struct group *pg = &p->g[gidx(p, pos)];
			if (!(atomic_load_explicit(&pg->ctl, memory_order_acquire) & G_MIGRATED)) {
				*depth = p->depth;
				return pg;
			}
		}
		struct group *g = &t->g[gidx(t, pos)];
		if (!(atomic_load_explicit(&g->ctl, memory_order_acquire) & G_MIGRATED)) {
			*depth = t->depth;
			return g;
		}
		t = atomic_load_explicit(&t->next, memory_order_acquire);
	}
}

/* The keys of one group, collected inside a section and handed to the
 * callback outside it, so a slow callback never holds back reclamation. */
struct scan_buf {
	cid_t *vals;
	size_t nvals, capvals;
	struct {
		cid_t key;
		size_t off, n;
	} keys[GSLOTS];
	int nkeys;
};

/* minpos != 0: g's range starts before minpos (a shrink merged a group
 * the scan has read): keys whose position is below minpos were visited
 * there and are skipped. */
static int scan_collect(struct idx *ix, struct group *g, struct scan_buf *sb, uint64_t minpos)
{
	sb->nkeys = 0;
	sb->nvals = 0;
	uint64_t w0, w1;
	grp_tags(g, &w0, &w1);
	for (unsigned m = occupied(w0, w1); m; m &= m - 1) {
		int i = __builtin_ctz(m);
		uint32_t sw = atomic_load_explicit(&g->slot[i], memory_order_acquire);
		if (!sw)
			continue;
		struct hit h = {g, i, sw, ent_ptr(ix, EIDX(sw))};
		if (minpos) {
			uint64_t h1 = cid_hash64(&ix->seed, &h.e->key);
			uint64_t at = (w1 & sec_bit(i)) ? h2_of(ix, h1) : h1;
			if (at < minpos)
				continue;
		}
		for (;;) {
			size_t room = sb->capvals - sb->nvals;
			size_t n = (size_t)hit_read(&h, sb->vals + sb->nvals, room);
			if (n <= room) {
				/* A key deleted and re-added in another slot of this
				 * group during the read is kept once (the later). */
				int k;
				for (k = 0; k < sb->nkeys; k++)
					if (cid_eq(&sb->keys[k].key, &h.e->key))
						break;
				sb->keys[k].key = h.e->key;
				sb->keys[k].off = sb->nvals;
				sb->keys[k].n = n;
				if (k == sb->nkeys)
					sb->nkeys++;
				sb->nvals += n;
				break;
			}
			size_t nc = (sb->nvals + n) * 2;
			cid_t *p = realloc(sb->vals, nc * sizeof(cid_t));
			if (!p)
				return CIDSTORE_ENOMEM;
			sb->vals = p;
			sb->capvals = nc;
		}
	}
	return 0;
}

int idx_scan(idx_t *ix, cidstore_scan_fn fn, void *ctx)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	struct scan_buf sb = {0};
	sb.capvals = 64;
	sb.vals = malloc(sb.capvals * sizeof(cid_t));
	if (!sb.vals)
		return CIDSTORE_ENOMEM;
	int ret = 0;
	/* Group by group in hash-space order.  A key's position (h1, or h2
	 * when it sits by its second choice) does not change while it is
	 * present, and a migration moves it only to the group covering the
	 * same position in the next table (I4, S4).  Each read covers the
	 * positions [pos, end of its group), so a key present during the whole
	 * scan is visited exactly once: in the read covering its position.
	 * After a shrink the group covering pos may start before pos (its
	 * other half was read in the old table): keys below pos are skipped. */
	uint64_t pos = 0;
	do {
		unsigned depth;
		ep_enter(r);
		struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
		struct group *g = route_pos(t, pos, &depth);
		uint64_t span = (uint64_t)1 << (64 - depth);
		uint64_t start = pos & ~(span - 1);
		int rc = scan_collect(ix, g, &sb, start < pos ? pos : 0);
		ep_exit(r);
		if (rc) {
			ret = rc;
			break;
		}
		for (int k = 0; k < sb.nkeys && !ret; k++)
			ret = fn(&sb.keys[k].key, sb.vals + sb.keys[k].off, sb.keys[k].n, ctx);
		if (ret)
			break;
		pos = start + span;
	} while (pos != 0);
	free(sb.vals);
	return ret;
}

static int stats_cb(const cid_t *key, const cid_t *values, size_t n, void *ctx)
{
	(void)key;
	(void)values;
	cidstore_stats_t *st = ctx;
	st->keys++;
	st->values += n;
	if (n > 1)
		st->spilled_keys++;
	return 0;
}

void idx_stats(idx_t *ix, cidstore_stats_t *st)
{
	st->keys = st->values = st->spilled_keys = 0;
	idx_scan(ix, stats_cb, st);
	ep_rec_t *r = ep_record(&ix->ep);
	if (r) {
		ep_enter(r);
		struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
		st->buckets = t->n;
		st->global_depth = t->depth;
		st->max_local_depth = t->depth;
		ep_exit(r);
	}
	st->splits = atomic_load_explicit(&ix->migrated, memory_order_relaxed);
	st->compactions = atomic_load_explicit(&ix->rebuilds, memory_order_relaxed);
	st->dir_rebuilds = atomic_load_explicit(&ix->growths, memory_order_relaxed);
	int64_t pend = atomic_load_explicit(&ix->ep.pending, memory_order_relaxed);
	st->retired_pending = pend > 0 ? (uint64_t)pend : 0;
	st->memory_bytes = atomic_load_explicit(&ix->mem, memory_order_relaxed);
	st->epoch_records = atomic_load_explicit(&ix->ep.nrecs, memory_order_relaxed);
}

int idx_valid(idx_t *ix)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	int ret = 0;
	ep_enter(r);
	struct table *t = atomic_load_explicit(&ix->cur, memory_order_acquire);
	struct table *p = atomic_load_explicit(&t->prev, memory_order_acquire);
	if (p)
		migrate_all(ix, r, p); /* no writer runs: finish the growth */
	for (uint64_t gi = 0; gi < t->n && !ret; gi++) {
		struct group *g = &t->g[gi];
		uint32_t ctl = atomic_load_explicit(&g->ctl, memory_order_acquire);
		if (ctl & G_LOCK)
			ret = CIDSTORE_ECORRUPT; /* quiescence */
		uint64_t w0, w1;
		grp_tags(g, &w0, &w1);
		unsigned occ = occupied(w0, w1);
		for (int i = 0; i < GSLOTS && !ret; i++) {
			uint32_t sw = atomic_load_explicit(&g->slot[i], memory_order_acquire);
			if (!(occ & (1u << i))) {
				if (sw || (w1 & sec_bit(i)))
					ret = CIDSTORE_ECORRUPT;
				continue;
			}
			if (!sw || EIDX(sw) == 0) {
				ret = CIDSTORE_ECORRUPT;
				break;
			}
			if (!ent_allocated(ix, EIDX(sw))) {
				ret = CIDSTORE_ECORRUPT; /* E1: a published entry is allocated */
				break;
			}
			struct entry *e = ent_ptr(ix, EIDX(sw));
			uint64_t h1 = cid_hash64(&ix->seed, &e->key);
			uint64_t h2 = h2_of(ix, h1);
			unsigned tg = (unsigned)((i < 8 ? w0 : w1) >> ((i & 7) * 8)) & 0xff;
			if (tg != tag_of(h1))
				ret = CIDSTORE_ECORRUPT;
			uint64_t g1 = gidx(t, h1), g2 = gidx(t, h2);
			bool second = (w1 & sec_bit(i)) != 0;
			if (gi != (second ? g2 : g1))
				ret = CIDSTORE_ECORRUPT; /* the recorded choice routes here */
			if (gi != g1 && !(atomic_load_explicit(&t->g[g1].tag[1], memory_order_relaxed) &
					  ovf_of(h1)))
				ret = CIDSTORE_ECORRUPT; /* I3 */
			/* I1: nowhere else in either group */
			uint64_t cand[2] = {g1, g2};
			int seen = 0;
			for (int c = 0; c < (g1 == g2 ? 1 : 2); c++) {
				struct group *o = &t->g[cand[c]];
				for (int j = 0; j < GSLOTS; j++) {
					uint32_t s2 = atomic_load_explicit(&o->slot[j], memory_order_relaxed);
					if (s2 && cid_eq(&ent_ptr(ix, EIDX(s2))->key, &e->key))
						seen++;
				}
			}
			if (seen != 1)
				ret = CIDSTORE_ECORRUPT;
			if (sw & SPILLED) {
				if (!vset_valid(e->u.vs) || e->u.vs->live < 2)
					ret = CIDSTORE_ECORRUPT;
			}
		}
	}
	ep_exit(r);
	return ret;
}

int idx_quiesce(idx_t *ix)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	if (r->depth != 0)
		return CIDSTORE_EINVAL; /* called from inside an operation */
	ep_synchronize(r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* for maint.c (index_impl.h)                                          */
/* ------------------------------------------------------------------ */

bool ix_grp_lock(struct group *g)
{
	return grp_lock(g);
}

void ix_grp_unlock(struct group *g)
{
	grp_unlock(g);
}

void ix_slot_replace(struct group *g, int i, uint32_t sw)
{
	slot_replace(g, i, sw);
}

void ix_migrate_all(struct idx *ix, ep_rec_t *r, struct table *p)
{
	migrate_all(ix, r, p);
}

bool ix_help_migrate_n(struct idx *ix, ep_rec_t *r, struct table *t, uint64_t groups,
		       uint64_t *visited)
{
	struct table *p = atomic_load_explicit(&t->prev, memory_order_acquire);
	if (!p)
		return true;
	for (uint64_t k = 0; k < groups; k += MIG_CHUNK) {
		if (atomic_load_explicit(&p->mig_cursor, memory_order_relaxed) >= p->n) {
			migrate_all(ix, r, p); /* the rest is owned by others: wait for them */
			break;
		}
		*visited += help_migrate(ix, r, t);
	}
	return atomic_load_explicit(&t->prev, memory_order_acquire) == NULL;
}

void ix_advance_cur(struct idx *ix, struct table *t)
{
	advance_cur(ix, t);
}

struct table *ix_table_new(struct idx *ix, unsigned depth)
{
	return table_new(ix, depth);
}

void ix_table_free(struct table *t)
{
	table_free(t);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

int idx_create(const idx_options_t *o, idx_t **out)
{
	struct idx *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return CIDSTORE_ENOMEM;
	if (ent_init(ix) != 0) {
		free(ix);
		return CIDSTORE_ENOMEM;
	}
	pthread_mutex_init(&ix->maint_mu, NULL);
	uint64_t seed = o ? o->seed : 0;
	while (seed == 0) {
		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			seed = (uint64_t)(uintptr_t)ix ^ 0x9e3779b97f4a7c15ULL;
	}
	cid_hash_seed_init(&ix->seed, seed);
	ix->k2a = ix->seed.k[1] ^ ix->seed.k[4];
	ix->k2b = ix->seed.k[3] | 1;
	ix->min_depth = o && o->initial_depth > MIN_DEPTH ? (o->initial_depth > 22 ? 22 : o->initial_depth) : MIN_DEPTH;
	if (ep_domain_init(&ix->ep) != 0) {
		ent_fini(ix);
		pthread_mutex_destroy(&ix->maint_mu);
		free(ix);
		return CIDSTORE_ENOMEM;
	}
	unsigned d = o ? o->initial_depth : 0;
	if (d > 22)
		d = 22;
	if (d < MIN_DEPTH)
		d = MIN_DEPTH;
	/* expected_keys: enough groups that the keys fill ~70% of the slots,
	 * up to 2^PRESIZE_MAX groups (4 GiB, ~500M keys); growth goes on
	 * online beyond that. */
	uint64_t want = o ? o->expected_keys : 0;
	while (d < PRESIZE_MAX && ((uint64_t)1 << d) * GSLOTS * 7 / 10 < want)
		d++;
	struct table *t = table_new(ix, d);
	if (!t) {
		ep_domain_fini(&ix->ep);
		ent_fini(ix);
		pthread_mutex_destroy(&ix->maint_mu);
		free(ix);
		return CIDSTORE_ENOMEM;
	}
	atomic_init(&ix->cur, t);
	*out = ix;
	return 0;
}

void idx_destroy(idx_t *ix)
{
	if (!ix)
		return;
	ep_rec_t *r = ep_record(&ix->ep);
	struct table *t = atomic_load_explicit(&ix->cur, memory_order_relaxed);
	struct table *p = atomic_load_explicit(&t->prev, memory_order_relaxed);
	if (p && r)
		migrate_all(ix, r, p); /* every vset is then reachable from t once */
	/* Partial retirement batches are not epoch objects yet. */
	for (ep_rec_t *x = ix->ep.all_recs; x; x = x->next_all) {
		cs_free(x->ent_retired);
		x->ent_retired = NULL;
	}
	/* Pending objects (retired entries, vsets, tables) are unreachable
	 * from t's slots: free them first. */
	ep_domain_fini(&ix->ep);
	for (uint64_t gi = 0; gi < t->n; gi++) {
		struct group *g = &t->g[gi];
		for (int i = 0; i < GSLOTS; i++) {
			uint32_t sw = atomic_load_explicit(&g->slot[i], memory_order_relaxed);
			if (sw & SPILLED) {
				vset_t *vs = ent_ptr(ix, EIDX(sw))->u.vs;
				atomic_fetch_sub_explicit(&ix->mem, vset_bytes(vs), memory_order_relaxed);
				vset_free(vs);
			}
		}
	}
	table_free(t);
	ent_fini(ix);
	pthread_mutex_destroy(&ix->maint_mu);
	free(ix);
}
