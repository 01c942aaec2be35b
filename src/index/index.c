/*
 * index.c — extendible hashing with lock-free buckets, reclaimed by epochs.
 *
 * STRUCTURE
 *   idx.cur  -> dir { depth G, e[2^G] }   (atomic pointer, replaced whole)
 *   dir.e[i] -> bucket                    (atomic pointer; a *hint*, see below)
 *   bucket   { fwd, fp[SLOTS], depth L, prefix | slot[SLOTS] }
 *            (the first cache line is all a lookup reads before a slot)
 *   slot     { meta, key, two inline values, vs -> vset (>= 3 values) }
 *
 *   A key routes by h = cid_hash64(seed, key): the top G bits pick the
 *   directory entry, the top L bits are the bucket's prefix, bit (63 - L)
 *   picks the child when a bucket of depth L splits, and bits 8..23 of h
 *   are the slot's fingerprint (1..0xfffe).
 *
 * ATOMIC FIELDS AND WHAT THEY MEAN
 *   fp[i] (16 bits, the claim word of slot i):
 *                    FP_FREE -> fingerprint (claimed by CAS; immutable), or
 *                    FP_FREE -> FP_FROZEN (split began: never claimable).
 *   slot.meta (64 bits; all of a key's published state):
 *     kind (2 bits)  EMPTY -> KEYED, never back.  A claimed slot whose meta
 *                    is still EMPTY has its key being written ("reserved").
 *     LOCK           a writer of this key is in its critical section.
 *     FROZEN         the bucket is being split/compacted: no new LOCK or
 *                    claim may be taken; the slot's state is final.
 *     V0, V1         inline value 0 / 1 valid (not SPILLED).
 *     SPILLED        values live in slot.vs.
 *     gen (40 bits)  incremented by every publication.
 *   bucket.fwd       NULL, or the pair of buckets that replaced this one
 *                    (both the same bucket for a compaction).  Set once, by
 *                    CAS; from then on the bucket never changes again.
 *   dir.e[i]         the bucket for prefix i or one of its ancestors: a
 *                    reader that finds a forwarded bucket follows fwd by the
 *                    next hash bit.  Entries only move down the chain (CAS).
 *   idx.cur          the current directory (seq_cst store on rebuild).
 *   vset.napp        see vset.h.
 *
 * INVARIANTS
 *   I1  Claimed slots form a prefix of the bucket: a claimer takes the
 *       first FP_FREE slot after seeing every earlier slot claimed, and fp
 *       never returns to FP_FREE.  Hence all inserters of one key scan the
 *       same slots in the same order and cannot both claim: the second sees
 *       the first's claim with the same fingerprint, waits for the key to be
 *       written (meta KEYED), and finds the key.  A key is in at most one
 *       slot of the live bucket (a deleted key keeps its slot, KEYED with no
 *       values, until the bucket is compacted or split).
 *   I2  A writer changes a slot only while holding its LOCK, and only
 *       storage that the published meta does not reference (the free inline
 *       value, vset entries at index >= napp, a brand-new vset); readers
 *       validate what they read against meta's gen (seqlock pattern without
 *       a writer-held odd state, so readers never wait).
 *   I3  After FROZEN is set on every slot and every LOCK has cleared, the
 *       bucket's content is final; any thread may then build the children
 *       from it; the first CAS of fwd wins, losers free their copies.
 *   I4  Following fwd from any bucket reachable from the current directory
 *       reaches the live bucket for the hash.  A bucket leaves memory only
 *       when no directory that a thread could load still references it:
 *       forwarded buckets wait on the limbo list until a directory rebuild
 *       publishes a directory that cannot reference them (see rebuild()).
 *
 * LINEARIZATION POINTS
 *   insert/delete (inline or spill/demote): the CAS that publishes meta.
 *   insert/delete into a vset with room: vset_append's store of napp.
 *   vset rebuild (append region full): the release store of slot.vs.
 *   delete_key: the CAS that publishes meta with no values.
 *   lookup/contains: the first meta load (s1) of the successful attempt; the
 *   attempt succeeds when meta is unchanged (ignoring LOCK/FROZEN) at the end.
 *   A lookup of a frozen bucket still returns the key's real state: a frozen
 *   slot's state held from the freeze until the children were installed, and
 *   the reader loaded the bucket before they were.
 *
 * PROGRESS
 *   lookup/contains/scan: lock-free (retry only when a writer completed a
 *   change of the same key in between).  Writers: lock-free with respect to
 *   other keys except two bounded waits: a writer waits for another writer
 *   of the same key (per-key LOCK), an inserter whose fingerprint matches a
 *   reserved slot waits for that key's four-word write, and a thread that
 *   splits a bucket waits for writers already inside a per-key critical
 *   section of that bucket.  Splits are helped, never waited for; directory
 *   rebuilds are done by one thread at a time (try-flag) and nobody waits
 *   for them: until a rebuild finishes, accesses follow fwd chains.
 *
 * MEMORY SAFETY
 *   Every access happens inside an epoch section.  Replaced vsets, replaced
 *   directories and forwarded buckets go through ep_retire, so they are
 *   freed only after every section that could have loaded them has ended.
 *   Forwarded buckets are retired by rebuild() only when the new directory
 *   cannot reference them (I4 argument there).
 */
#include "index/index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "cid/hash.h"
#include "index/epoch.h"
#include "index/vset.h"
#include "util/alloc.h"
#include "util/backoff.h"
#include "util/check.h"
#include "util/shake.h"

#ifndef CIDSTORE_BROKEN_SKIP_RETRY
#define CIDSTORE_BROKEN_SKIP_RETRY 0
#endif

#define SLOTS 16
#define MAX_DIR_DEPTH 28 /* directory capped at 2^28 entries (2 GiB) */

#define K_EMPTY 0ULL
#define K_KEYED 2ULL
#define M_KIND 3ULL
#define M_LOCK (1ULL << 2)
#define M_FROZEN (1ULL << 3)
#define M_V0 (1ULL << 4)
#define M_V1 (1ULL << 5)
#define M_SPILLED (1ULL << 6)
#define M_GEN_SHIFT 24
#define M_GEN_ONE (1ULL << M_GEN_SHIFT)
#define M_VALUES (M_V0 | M_V1 | M_SPILLED)
#define M_IGNORE (M_LOCK | M_FROZEN) /* bits a reader's validation ignores */

#define KIND(m) ((m) & M_KIND)
#define FP_FREE 0       /* fp[i]: slot i unclaimed */
#define FP_FROZEN 0xffff /* fp[i]: slot i unclaimed and never will be */

/* Fingerprint in 1..0xfffe (0 and 0xffff are the markers above). */
static inline unsigned fp_of(uint64_t h)
{
	unsigned f = (unsigned)(h >> 8) & 0xffff;
	f += f == FP_FREE;
	f -= f == FP_FROZEN;
	return f;
}
#define FP_OF(h) fp_of(h)

struct slot {
	_Atomic uint64_t meta;    /* see ATOMIC FIELDS */
	cid_t key;                /* written between claim and KEYED; immutable after */
	_Atomic uint64_t v[2][4]; /* inline values: relaxed words, seqlock-validated */
	_Atomic(vset_t *) vs;     /* release by the lock holder; epoch-protected */
};

struct fwd {
	struct bucket *child[2];
};

/* The first cache line holds everything a lookup needs before it touches
 * a slot: fwd, the fingerprints, depth. */
struct bucket {
	_Atomic(struct fwd *) fwd;     /* set once by CAS (acq_rel) */
	_Atomic uint16_t fp[SLOTS];    /* claim word per slot (CAS), see FP_* */
	unsigned depth;                /* immutable */
	uint32_t gen;                  /* immutable: parent's gen + 1 (0 at creation) */
	uint64_t prefix;               /* immutable: top `depth` bits, left-aligned */
	struct bucket *limbo_next;     /* Synchronization: limbo stack (release/acquire) */
	struct slot slot[SLOTS];
	ck_epoch_entry_t ep;
	struct idx *ix;                /* immutable; for the free callback */
};

struct dir {
	ck_epoch_entry_t ep;
	struct idx *ix;
	size_t map_bytes; /* mmap'd (huge pages) when non-zero, else malloc'd */
	unsigned depth;
	_Atomic(struct bucket *) e[];
};

struct idx {
	_Atomic(struct dir *) cur;
	cid_hash_seed_t seed;
	ep_domain_t ep;
	_Atomic(struct bucket *) limbo; /* forwarded buckets awaiting rebuild */
	_Atomic uint64_t limbo_n;
	_Atomic int rebuilding;         /* try-flag: one rebuild at a time */
	_Atomic uint64_t rseq;          /* odd while a rebuild runs (seq_cst) */
	_Atomic(struct chunk *) chunks; /* bucket memory, freed at destroy */
	/* statistics: relaxed counters */
	_Atomic uint64_t nbuckets, splits, compactions, rebuilds, mem;
};

/* ------------------------------------------------------------------ */
/* allocation and retirement                                           */
/* ------------------------------------------------------------------ */

static void dir_release(struct dir *d);

/*
 * Bucket memory.  Buckets are carved from chunks owned by the index and
 * recycled through per-thread free lists kept in the thread's epoch record
 * (owner thread only, so no synchronization; a record and its lists pass to
 * another thread only through ck_epoch_unregister/recycle, annotated for
 * TSan in epoch.c).  Chunks grow from 64 KiB to 2 MiB; 2 MiB chunks are
 * aligned and advised as transparent huge pages, because a lookup's cost is
 * its dependent cache and TLB misses.  Chunks go back to the system only
 * when the index is destroyed.
 */
#define BUCKET_BYTES ((sizeof(struct bucket) + 63) & ~(size_t)63)
#define CHUNK_MIN (64u << 10)
#define CHUNK_HUGE (2u << 20)

struct chunk {
	struct chunk *next; /* Synchronization: ix->chunks stack (release/acquire) */
	size_t bytes;       /* mapping size (huge) or 0 (malloc'd) */
	void *map;          /* start of the mapping (huge) */
};

static void *chunk_get(struct idx *ix, size_t size)
{
	struct chunk *c;
	if (size >= CHUNK_HUGE) {
		size_t len = size + CHUNK_HUGE;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		char *a = (char *)(((uintptr_t)p + CHUNK_HUGE - 1) & ~(uintptr_t)(CHUNK_HUGE - 1));
		madvise(a, size, MADV_HUGEPAGE);
		c = (struct chunk *)a;
		c->bytes = len;
		c->map = p;
	} else {
		c = cs_aligned(64, size);
		if (!c)
			return NULL;
		c->bytes = 0;
		c->map = NULL;
	}
	struct chunk *top = atomic_load_explicit(&ix->chunks, memory_order_relaxed);
	do
		c->next = top;
	while (!atomic_compare_exchange_weak_explicit(&ix->chunks, &top, c,
			memory_order_release, memory_order_relaxed));
	atomic_fetch_add_explicit(&ix->mem, size, memory_order_relaxed);
	return c;
}

static struct bucket *bucket_new(struct idx *ix, ep_rec_t *r, unsigned depth, uint64_t prefix,
				 uint32_t gen)
{
	struct bucket *b;
	if (r->alloc_free) {
		b = r->alloc_free;
		r->alloc_free = *(void **)b;
	} else {
		if (r->alloc_left < BUCKET_BYTES) {
			size_t sz = r->alloc_next ? r->alloc_next : CHUNK_MIN;
			char *c = chunk_get(ix, sz);
			if (!c)
				return NULL;
			r->alloc_next = sz < CHUNK_HUGE ? sz * 2 : CHUNK_HUGE;
			r->alloc_cur = c + 64; /* the chunk header */
			r->alloc_left = sz - 64;
		}
		b = (struct bucket *)r->alloc_cur;
		r->alloc_cur += BUCKET_BYTES;
		r->alloc_left -= BUCKET_BYTES;
	}
	memset(b, 0, sizeof(*b));
	b->depth = depth;
	b->prefix = prefix;
	b->gen = gen;
	b->ix = ix;
	return b;
}

/* Gives b's block to r's free list (r may be NULL when the whole index is
 * being destroyed: the chunks go anyway). */
static void bucket_free(ep_rec_t *r, struct bucket *b)
{
	cs_free(atomic_load_explicit(&b->fwd, memory_order_relaxed));
	cs_poison(b, sizeof(*b));
	if (r && r->dom == &b->ix->ep) {
		*(void **)b = r->alloc_free;
		r->alloc_free = b;
	}
}

static void bucket_free_cb(ck_epoch_entry_t *e)
{
	struct bucket *b = (struct bucket *)((char *)e - offsetof(struct bucket, ep));
	struct idx *ix = b->ix;
	/* ck decided inside libck.so that every reader has left: tell TSan
	 * (pairs with the release in ep_exit). */
	cidstore_tsan_acquire(&ix->ep.tsan_sync);
	bucket_free(ep_dispatching(), b);
	ep_freed(&ix->ep);
}

static void vset_free(struct idx *ix, vset_t *s)
{
	atomic_fetch_sub_explicit(&ix->mem, vset_bytes(s), memory_order_relaxed);
	cs_poison(s, vset_bytes(s));
	cs_free(s);
}

static void vset_free_cb(ck_epoch_entry_t *e)
{
	vset_t *s = (vset_t *)((char *)e - offsetof(vset_t, ep));
	struct idx *ix = s->owner;
	cidstore_tsan_acquire(&ix->ep.tsan_sync); /* as in bucket_free_cb */
	vset_free(ix, s);
	ep_freed(&ix->ep);
}

static void dir_free_cb(ck_epoch_entry_t *e)
{
	struct dir *d = (struct dir *)((char *)e - offsetof(struct dir, ep));
	struct idx *ix = d->ix;
	cidstore_tsan_acquire(&ix->ep.tsan_sync); /* as in bucket_free_cb */
	dir_release(d);
	ep_freed(&ix->ep);
}

static void retire_vset(struct idx *ix, ep_rec_t *r, vset_t *s)
{
	(void)ix;
	ep_retire(r, &s->ep, vset_free_cb);
}

static vset_t *vset_track(struct idx *ix, vset_t *s)
{
	if (s) {
		s->owner = ix;
		atomic_fetch_add_explicit(&ix->mem, vset_bytes(s), memory_order_relaxed);
	}
	return s;
}

static size_t dir_bytes(unsigned depth)
{
	return sizeof(struct dir) + (sizeof(((struct dir *)0)->e[0]) << depth);
}

static struct dir *dir_new(struct idx *ix, unsigned depth)
{
	size_t sz = dir_bytes(depth);
	struct dir *d;
	if (sz >= CHUNK_HUGE) {
		d = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (d == MAP_FAILED)
			return NULL;
		madvise(d, sz, MADV_HUGEPAGE); /* zero-filled already */
		d->map_bytes = sz;
	} else {
		d = cs_malloc(sz);
		if (!d)
			return NULL;
		memset(d, 0, sz);
	}
	d->ix = ix;
	d->depth = depth;
	atomic_fetch_add_explicit(&ix->mem, sz, memory_order_relaxed);
	return d;
}

static void dir_release(struct dir *d)
{
	atomic_fetch_sub_explicit(&d->ix->mem, dir_bytes(d->depth), memory_order_relaxed);
	if (d->map_bytes)
		munmap(d, d->map_bytes);
	else
		cs_free(d);
}

static void chunks_release(struct idx *ix)
{
	struct chunk *c = atomic_load_explicit(&ix->chunks, memory_order_acquire);
	while (c) {
		struct chunk *n = c->next;
		if (c->bytes)
			munmap(c->map, c->bytes);
		else
			cs_free(c);
		c = n;
	}
}

/* ------------------------------------------------------------------ */
/* routing                                                             */
/* ------------------------------------------------------------------ */

static inline size_t dir_slot(const struct dir *d, uint64_t h)
{
	return d->depth ? (size_t)(h >> (64 - d->depth)) : 0;
}

static inline unsigned side_of(uint64_t h, unsigned depth)
{
	return (unsigned)((h >> (63 - depth)) & 1);
}

/* Walks over the leaves in hash order: the leaf of the given depth holding
 * hash c covers [c & ~(size - 1), + size), size = 2^(64 - depth); buckets
 * only split, so the next leaf starts exactly where this one ends.  Returns
 * that start, or 0 once the last leaf is done (the walk wrapped). */
static inline uint64_t leaf_next(uint64_t c, unsigned depth)
{
	if (depth == 0)
		return 0;
	uint64_t size = 1ULL << (64 - depth);
	return (c & ~(size - 1)) + size;
}

/* The live bucket for h.  Compresses the directory entry when it had to
 * follow forwarding (only to buckets the entry can address). */
static struct bucket *route(struct idx *ix, uint64_t h)
{
	/* acquire: pairs with rebuild()'s publication of the directory */
	struct dir *d = atomic_load_explicit(&ix->cur, memory_order_acquire);
	CIDSTORE_SHAKE_POINT("route.after_dir");
	size_t i = dir_slot(d, h);
	/* acquire: pairs with the CAS that installed the bucket */
	struct bucket *first = atomic_load_explicit(&d->e[i], memory_order_acquire);
	struct bucket *b = first, *addr = first;
	struct fwd *f;
	/* acquire: pairs with the acq_rel CAS that set fwd (children built) */
	while ((f = atomic_load_explicit(&b->fwd, memory_order_acquire)) != NULL) {
		b = f->child[side_of(h, b->depth)];
		CS_ASSERT(b->depth < 64);
		if (b->depth <= d->depth)
			addr = b;
	}
	if (addr != first)
		atomic_compare_exchange_strong_explicit(&d->e[i], &first, addr,
			memory_order_release, memory_order_relaxed);
	return b;
}

/* ------------------------------------------------------------------ */
/* reading a slot                                                      */
/* ------------------------------------------------------------------ */

static inline void load_val(struct slot *sl, int j, cid_t *out)
{
	for (int w = 0; w < 4; w++)
		out->w[w] = atomic_load_explicit(&sl->v[j][w], memory_order_relaxed);
}

static inline void store_val(struct slot *sl, int j, const cid_t *v)
{
	for (int w = 0; w < 4; w++)
		atomic_store_explicit(&sl->v[j][w], v->w[w], memory_order_relaxed);
}

/* Snapshot of a KEYED slot's values: count, min(count, cap) copied. */
static size_t read_slot(struct bucket *b, int i, cid_t *out, size_t cap)
{
	struct slot *sl = &b->slot[i];
	for (;;) {
		/* acquire: pairs with the publishing CAS (release) */
		uint64_t s1 = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
		CIDSTORE_SHAKE_POINT("read_slot.after_s1");
		size_t n = 0;
		if (s1 & M_SPILLED) {
			/* acquire: pairs with the release store of vs */
			vset_t *p = atomic_load_explicit(&sl->vs, memory_order_acquire);
			n = vset_read(p, out, cap);
		} else {
			for (int j = 0; j < 2; j++)
				if (s1 & (M_V0 << j)) {
					cid_t v;
					load_val(sl, j, &v);
					CIDSTORE_SHAKE_POINT("read_slot.between_values");
					if (n < cap)
						out[n] = v;
					n++;
				}
		}
		/* acquire fence: pairs with the writer's release fence taken
		 * before it overwrote a free inline value, so a torn read implies
		 * a changed gen below. */
		CIDSTORE_SHAKE_POINT("read.before_s2");
		atomic_thread_fence(memory_order_acquire);
		uint64_t s2 = atomic_load_explicit(&b->slot[i].meta, memory_order_relaxed);
		if (CIDSTORE_BROKEN_SKIP_RETRY || ((s1 ^ s2) & ~M_IGNORE) == 0)
			return n;
	}
}

static bool slot_contains(struct bucket *b, int i, const cid_t *v)
{
	struct slot *sl = &b->slot[i];
	for (;;) {
		uint64_t s1 = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
		CIDSTORE_SHAKE_POINT("slot_contains.after_s1");
		bool found = false;
		if (s1 & M_SPILLED) {
			vset_t *p = atomic_load_explicit(&sl->vs, memory_order_acquire);
			found = vset_contains(p, v);
		} else {
			for (int j = 0; j < 2; j++)
				if (s1 & (M_V0 << j)) {
					cid_t x;
					load_val(sl, j, &x);
					found |= cid_eq(&x, v);
				}
		}
		CIDSTORE_SHAKE_POINT("read.before_s2");
		atomic_thread_fence(memory_order_acquire);
		uint64_t s2 = atomic_load_explicit(&b->slot[i].meta, memory_order_relaxed);
		if (CIDSTORE_BROKEN_SKIP_RETRY || ((s1 ^ s2) & ~M_IGNORE) == 0)
			return found;
	}
}

/* Index of the KEYED slot holding key in b, or -1.  RESERVED slots are
 * skipped: their insert has not linearized. */
static int find_keyed(struct bucket *b, const cid_t *key, unsigned fp)
{
	for (int i = 0; i < SLOTS; i++) {
		/* relaxed: the acquire on meta below orders the key read */
		unsigned f = atomic_load_explicit(&b->fp[i], memory_order_relaxed);
		if (f == FP_FREE || f == FP_FROZEN)
			return -1; /* I1: claimed slots form a prefix */
		if (f != fp)
			continue;
		uint64_t m = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
		if (KIND(m) == K_KEYED && cid_eq(&b->slot[i].key, key))
			return i;
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* splitting and directory maintenance                                 */
/* ------------------------------------------------------------------ */

static void rebuild(struct idx *ix, ep_rec_t *r, unsigned want_depth);

/* Parks a forwarded bucket on the limbo stack (a Treiber stack emptied
 * only whole, by rebuild's exchange, so there is no ABA).  Returns the new
 * count.  release: limbo_next (and b's fwd) before the bucket is seen. */
static uint64_t limbo_push(struct idx *ix, struct bucket *b)
{
	struct bucket *top = atomic_load_explicit(&ix->limbo, memory_order_relaxed);
	do
		b->limbo_next = top;
	while (!atomic_compare_exchange_weak_explicit(&ix->limbo, &top, b,
			memory_order_release, memory_order_relaxed));
	return atomic_fetch_add_explicit(&ix->limbo_n, 1, memory_order_relaxed) + 1;
}

/*
 * Moves every entry of b's range in d below b: an entry still holding b or
 * one of b's ancestors (gen <= b->gen: along one chain gen grows by one per
 * forwarding) is moved down its chain by CAS, as deep as d can address.
 * Returns true when afterwards every entry of the range holds a descendant
 * of b.  Entries only ever move down, so that stays true.  b is forwarded
 * and b->depth <= d->depth.
 */
static bool dir_sweep(struct dir *d, struct bucket *b)
{
	size_t start = d->depth ? (size_t)(b->prefix >> (64 - d->depth)) : 0;
	size_t count = (size_t)1 << (d->depth - b->depth);
	bool below = true;
	for (size_t j = start; j < start + count; j++) {
		uint64_t pj = d->depth ? (uint64_t)j << (64 - d->depth) : 0;
		struct bucket *x = atomic_load_explicit(&d->e[j], memory_order_acquire);
		while (x->gen <= b->gen) {
			struct bucket *y = x;
			struct fwd *f;
			while ((f = atomic_load_explicit(&y->fwd, memory_order_acquire)) != NULL) {
				struct bucket *c = f->child[side_of(pj, y->depth)];
				if (c->depth > d->depth)
					break; /* deeper than d can address */
				y = c;
			}
			if (y == x) {
				below = false; /* must wait for a directory doubling */
				break;
			}
			/* release: pairs with route()'s acquire of the entry */
			if (atomic_compare_exchange_strong_explicit(&d->e[j], &x, y,
					memory_order_release, memory_order_acquire))
				x = y;
		}
	}
	return below;
}

/* Freeze b, build its replacement, and try to install it.  Any thread may
 * call this for any bucket it reached; the first CAS of fwd wins. */
static int split(struct idx *ix, ep_rec_t *r, struct bucket *b)
{
	if (atomic_load_explicit(&b->fwd, memory_order_acquire))
		return 0;
	unsigned fps[SLOTS];
	for (int i = 0; i < SLOTS; i++) {
		unsigned f = FP_FREE;
		uint16_t expect = FP_FREE;
		/* no more claims: unclaimed slots become FP_FROZEN */
		if (!atomic_compare_exchange_strong_explicit(&b->fp[i], &expect, FP_FROZEN,
				memory_order_acq_rel, memory_order_acquire))
			f = expect;
		else
			f = FP_FROZEN;
		fps[i] = f;
		atomic_fetch_or_explicit(&b->slot[i].meta, M_FROZEN, memory_order_acq_rel);
	}
	CIDSTORE_SHAKE_POINT("split.after_freeze");
	uint64_t m[SLOTS];
	for (int i = 0; i < SLOTS; i++) {
		unsigned spins = 0;
		/* Wait for a claimer still writing its key (claimed, not KEYED)
		 * and for lock holders.  acquire: pairs with their releasing
		 * RMW, so the slot's final data is visible below. */
		for (;;) {
			m[i] = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
			if (!(m[i] & M_LOCK) && (fps[i] == FP_FROZEN || KIND(m[i]) == K_KEYED))
				break;
			cidstore_backoff(&spins);
		}
	}
	if (atomic_load_explicit(&b->fwd, memory_order_acquire))
		return 0;

	unsigned live = 0;
	for (int i = 0; i < SLOTS; i++)
		if (KIND(m[i]) == K_KEYED && (m[i] & M_VALUES))
			live++;
	bool do_split = live > SLOTS * 3 / 4 && b->depth < 63;
	struct fwd *f = cs_malloc(sizeof(*f));
	if (!f)
		return CIDSTORE_ENOMEM;
	unsigned nd = do_split ? b->depth + 1 : b->depth;
	f->child[0] = bucket_new(ix, r, nd, b->prefix, b->gen + 1);
	f->child[1] = do_split ? bucket_new(ix, r, nd, b->prefix | (1ULL << (63 - b->depth)),
					    b->gen + 1)
			       : f->child[0];
	if (!f->child[0] || !f->child[1]) {
		if (f->child[0])
			bucket_free(r, f->child[0]);
		if (do_split && f->child[1])
			bucket_free(r, f->child[1]);
		cs_free(f);
		return CIDSTORE_ENOMEM;
	}
	int fill[2] = {0, 0};
	for (int i = 0; i < SLOTS; i++) {
		if (KIND(m[i]) != K_KEYED || !(m[i] & M_VALUES))
			continue; /* dead slots are dropped here */
		struct slot *sl = &b->slot[i];
		unsigned side = 0;
		if (do_split)
			side = side_of(cid_hash64(&ix->seed, &sl->key), b->depth);
		struct bucket *c = f->child[side];
		int k = fill[side]++;
		c->slot[k].key = sl->key;
		for (int j = 0; j < 2; j++)
			for (int w = 0; w < 4; w++)
				atomic_init(&c->slot[k].v[j][w],
					atomic_load_explicit(&sl->v[j][w], memory_order_relaxed));
		atomic_init(&c->slot[k].vs, atomic_load_explicit(&sl->vs, memory_order_relaxed));
		atomic_init(&c->slot[k].meta, m[i] & ~(M_LOCK | M_FROZEN));
		atomic_init(&c->fp[k], (uint16_t)fps[i]);
	}
	CIDSTORE_SHAKE_POINT("split.before_fwd_cas");
	struct fwd *expect = NULL;
	/* seq_cst: release publishes the children built above, and the CAS is
	 * ordered before the rseq load below (see the direct retirement).  On
	 * failure, acquire lets us see the winner's children. */
	CS_DEBUG_ASSERT(fill[0] <= SLOTS && fill[1] <= SLOTS);
	if (!atomic_compare_exchange_strong_explicit(&b->fwd, &expect, f,
			memory_order_seq_cst, memory_order_acquire)) {
		bucket_free(r, f->child[0]);
		if (do_split)
			bucket_free(r, f->child[1]);
		cs_free(f);
		return 0;
	}
	atomic_fetch_add_explicit(do_split ? &ix->splits : &ix->compactions, 1,
				  memory_order_relaxed);
	if (do_split)
		atomic_fetch_add_explicit(&ix->nbuckets, 1, memory_order_relaxed);
	/*
	 * b is forwarded.  Retire it at once when the current directory provably
	 * cannot lead to it any more (I4): its range was swept below b, and no
	 * rebuild ran from before our fwd CAS to after the sweep.  A rebuild
	 * that copied b read b->fwd == NULL, so (seq_cst) its rseq increment
	 * precedes our CAS and our s1 load sees it (odd, or changed by s2).  A
	 * rebuild that starts after s2 resolves entries that are all below b.
	 * A stale route() compression cannot store b either: it CASes from an
	 * ancestor of b, and no entry of the range holds one any more.
	 * Otherwise b waits on the limbo stack for a rebuild.
	 */
	CIDSTORE_SHAKE_POINT("split.before_dir_install");
	uint64_t s1 = atomic_load_explicit(&ix->rseq, memory_order_seq_cst);
	struct dir *d = atomic_load_explicit(&ix->cur, memory_order_seq_cst);
	bool direct = false;
	if (b->depth <= d->depth) {
		bool below = dir_sweep(d, b);
		uint64_t s2 = atomic_load_explicit(&ix->rseq, memory_order_seq_cst);
		direct = below && !(s1 & 1) && s1 == s2 &&
			 atomic_load_explicit(&ix->cur, memory_order_seq_cst) == d;
	}
	uint64_t nl = atomic_load_explicit(&ix->limbo_n, memory_order_relaxed);
	if (direct) {
		ep_retire(r, &b->ep, bucket_free_cb);
	} else {
		nl = limbo_push(ix, b);
	}
	if (nd > d->depth && d->depth < MAX_DIR_DEPTH)
		rebuild(ix, r, nd);
	else if (nl > 64 + atomic_load_explicit(&ix->nbuckets, memory_order_relaxed) / 16)
		rebuild(ix, r, d->depth);
	return 0;
}

/*
 * rebuild: publish a new directory of depth >= want_depth whose entries are
 * resolved through fwd chains, then retire what it made unreachable.
 *
 * Why the retired buckets are unreachable (I4): the limbo stack is emptied
 * (grabbed) before resolution starts, and every grabbed bucket was
 * forwarded before that.  Resolution follows fwd for every bucket of depth
 * < new depth, so the new directory holds no grabbed bucket of depth < new
 * depth; those with depth >= new depth may be held and are pushed back.
 * After publication, a thread stores into the new directory only buckets it
 * saw unforwarded after loading it — which excludes every grabbed bucket,
 * since their fwd was set before the publication it acquired.  Threads that
 * still use the old directory are inside epoch sections that began before
 * the retirement below, so freeing waits for them.
 */
static void rebuild(struct idx *ix, ep_rec_t *r, unsigned want_depth)
{
	int zero = 0;
	if (!atomic_compare_exchange_strong_explicit(&ix->rebuilding, &zero, 1,
			memory_order_acquire, memory_order_relaxed))
		return; /* someone else is rebuilding; nobody waits for it */
	/* seq_cst: odd from here to the end (see split()'s direct retirement) */
	atomic_fetch_add_explicit(&ix->rseq, 1, memory_order_seq_cst);
	struct dir *d = atomic_load_explicit(&ix->cur, memory_order_acquire);
	unsigned G = d->depth;
	unsigned ng = want_depth > G ? want_depth : G;
	if (ng > MAX_DIR_DEPTH)
		ng = MAX_DIR_DEPTH;
	/* acquire: pairs with the pushes' release; all their fwd are visible */
	struct bucket *grab = atomic_exchange_explicit(&ix->limbo, NULL, memory_order_acquire);
	uint64_t ngrab = 0;
	for (struct bucket *x = grab; x; x = x->limbo_next)
		ngrab++;
	atomic_fetch_sub_explicit(&ix->limbo_n, ngrab, memory_order_relaxed);

	struct dir *nd = dir_new(ix, ng);
	if (!nd) {
		/* Put the grabbed buckets back; try again later. */
		while (grab) {
			struct bucket *n = grab->limbo_next;
			limbo_push(ix, grab);
			grab = n;
		}
		atomic_fetch_add_explicit(&ix->rseq, 1, memory_order_seq_cst);
		atomic_store_explicit(&ix->rebuilding, 0, memory_order_release);
		return;
	}
	size_t n = (size_t)1 << ng;
	for (size_t j = 0; j < n; j++) {
		uint64_t pj = ng ? (uint64_t)j << (64 - ng) : 0;
		struct bucket *x = atomic_load_explicit(&d->e[ng ? j >> (ng - G) : 0],
							memory_order_acquire);
		struct fwd *f;
		while (x->depth < ng &&
		       (f = atomic_load_explicit(&x->fwd, memory_order_seq_cst)) != NULL)
			x = f->child[side_of(pj, x->depth)];
		atomic_init(&nd->e[j], x);
	}
	CIDSTORE_SHAKE_POINT("rebuild.before_publish");
	/* seq_cst: the publication every route() acquires */
	atomic_store_explicit(&ix->cur, nd, memory_order_seq_cst);
	atomic_fetch_add_explicit(&ix->rebuilds, 1, memory_order_relaxed);
	while (grab) {
		struct bucket *next = grab->limbo_next;
		if (grab->depth < ng) {
			ep_retire(r, &grab->ep, bucket_free_cb);
		} else {
			limbo_push(ix, grab);
		}
		grab = next;
	}
	ep_retire(r, &d->ep, dir_free_cb);
	atomic_fetch_add_explicit(&ix->rseq, 1, memory_order_seq_cst);
	atomic_store_explicit(&ix->rebuilding, 0, memory_order_release);
}

/* ------------------------------------------------------------------ */
/* writers                                                             */
/* ------------------------------------------------------------------ */

/* Result of locating a key for writing. */
enum { LOC_LOCKED, LOC_ABSENT, LOC_RETRY, LOC_ERR };

/* Locks key's slot in b (claiming one when create is set).  On LOC_LOCKED,
 * *slot is the index and *mv the meta value with LOCK held. */
static int lock_key(struct idx *ix, ep_rec_t *r, struct bucket *b, const cid_t *key,
		    unsigned fp, bool create, int *slot, uint64_t *mv, int *err)
{
	for (int i = 0; i < SLOTS; i++) {
		unsigned f = atomic_load_explicit(&b->fp[i], memory_order_acquire);
		if (f == FP_FROZEN) {
			*err = split(ix, r, b);
			return *err ? LOC_ERR : LOC_RETRY;
		}
		if (f == FP_FREE) {
			if (!create)
				return LOC_ABSENT;
			CIDSTORE_SHAKE_POINT("lock_key.before_claim");
			uint16_t expect = FP_FREE;
			/* acq_rel: the claim; I1 needs every earlier slot seen
			 * claimed, which the loads above established. */
			if (!atomic_compare_exchange_strong_explicit(&b->fp[i], &expect,
					(uint16_t)fp, memory_order_acq_rel, memory_order_acquire)) {
				i--; /* re-examine slot i */
				continue;
			}
			CIDSTORE_SHAKE_POINT("lock_key.claimed_before_key");
			b->slot[i].key = *key;
			/* release: the key is written before KEYED is seen.  An RMW,
			 * so a FROZEN set meanwhile is kept. */
			uint64_t m = atomic_fetch_or_explicit(&b->slot[i].meta, K_KEYED | M_LOCK,
							      memory_order_release);
			*slot = i;
			*mv = m | K_KEYED | M_LOCK;
			return LOC_LOCKED;
		}
		if (f != fp)
			continue;
		uint64_t m = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
		if (KIND(m) != K_KEYED) {
			/* a claimer is writing a key with our fingerprint */
			unsigned spins = 0;
			do {
				cidstore_backoff(&spins);
				m = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
			} while (KIND(m) != K_KEYED);
		}
		if (!cid_eq(&b->slot[i].key, key))
			continue;
		/* our key: take its lock */
		unsigned spins = 0;
		for (;;) {
			if (m & M_FROZEN) {
				*err = split(ix, r, b);
				return *err ? LOC_ERR : LOC_RETRY;
			}
			if (m & M_LOCK) {
				cidstore_backoff(&spins);
				m = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
				continue;
			}
			CIDSTORE_SHAKE_POINT("lock_key.before_lock_cas");
			/* acquire: pairs with the previous holder's release */
			if (atomic_compare_exchange_weak_explicit(&b->slot[i].meta, &m, m | M_LOCK,
					memory_order_acquire, memory_order_acquire)) {
				*slot = i;
				*mv = m | M_LOCK;
				/* release fence: pairs with read_slot's acquire fence;
				 * a reader that sees our later stores of inline values
				 * also sees meta at least as new as this lock. */
				atomic_thread_fence(memory_order_release);
				return LOC_LOCKED;
			}
		}
	}
	/* bucket full */
	if (!create)
		return LOC_ABSENT;
	*err = split(ix, r, b);
	return *err ? LOC_ERR : LOC_RETRY;
}

/* Publishes new state bits (values + gen) and drops LOCK, keeping FROZEN. */
static void publish(struct bucket *b, int i, uint64_t locked, uint64_t newbits)
{
	CIDSTORE_SHAKE_POINT("publish.before_cas");
	uint64_t next = (locked & ~(M_VALUES | M_LOCK | M_FROZEN)) | newbits;
	next += M_GEN_ONE;
	uint64_t cur = atomic_load_explicit(&b->slot[i].meta, memory_order_relaxed);
	/* release: everything written under the lock is visible to a reader
	 * that acquires this value.  Only FROZEN can change while we hold LOCK. */
	while (!atomic_compare_exchange_weak_explicit(&b->slot[i].meta, &cur,
			next | (cur & M_FROZEN), memory_order_release, memory_order_relaxed))
		;
}

static void unlock(struct bucket *b, int i)
{
	/* release: pairs with the next holder's acquire */
	atomic_fetch_and_explicit(&b->slot[i].meta, ~M_LOCK, memory_order_release);
}

static inline int log_op(idx_hook_t *hook, int op, const cid_t *key, const cid_t *val)
{
	if (!hook || !hook->fn)
		return 0;
	return hook->fn(hook->ctx, op, key, val, &hook->lsn);
}

/* The three ways a spilled key changes, each ending the critical section.
 * They log first: a failed log append abandons the change (nothing was
 * published) and returns its error. */

/* Appends an insert or a tombstone to the key's value set (room checked). */
static int set_append(struct bucket *b, int i, uint64_t m, vset_t *p, idx_hook_t *hook, int op,
		      const cid_t *key, const cid_t *val, bool tombstone)
{
	int rc = log_op(hook, op, key, val);
	if (rc < 0) {
		unlock(b, i);
		return rc;
	}
	vset_append(p, val, tombstone);
	publish(b, i, m, M_SPILLED);
	return 1;
}

/* Installs np (built privately; NULL: out of memory) as the key's value set
 * in place of p (NULL when the key was inline), then retires p. */
static int set_swap(struct idx *ix, ep_rec_t *r, struct bucket *b, int i, uint64_t m,
		    vset_t *p, vset_t *np, idx_hook_t *hook, int op, const cid_t *key,
		    const cid_t *val)
{
	if (!np) {
		unlock(b, i);
		return CIDSTORE_ENOMEM;
	}
	int rc = log_op(hook, op, key, val);
	if (rc < 0) {
		vset_free(ix, np);
		unlock(b, i);
		return rc;
	}
	/* release: the new set's contents before its pointer */
	atomic_store_explicit(&b->slot[i].vs, np, memory_order_release);
	publish(b, i, m, M_SPILLED);
	if (p)
		retire_vset(ix, r, p);
	return 1;
}

typedef int (*slot_op_fn)(struct idx *ix, ep_rec_t *r, struct bucket *b, int i,
			  uint64_t m, const cid_t *key, const cid_t *val, idx_hook_t *hook,
			  long *removed);

static long with_key(idx_t *ix, const cid_t *key, const cid_t *val, idx_hook_t *hook,
		     bool create, slot_op_fn op)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	uint64_t h = cid_hash64(&ix->seed, key);
	unsigned fp = FP_OF(h);
	long ret;
	ep_enter(r);
	for (;;) {
		struct bucket *b = route(ix, h);
		int i, err = 0;
		uint64_t m;
		int st = lock_key(ix, r, b, key, fp, create, &i, &m, &err);
		if (st == LOC_RETRY)
			continue;
		if (st == LOC_ERR) {
			ret = err;
			break;
		}
		if (st == LOC_ABSENT) {
			ret = 0;
			break;
		}
		long removed = 0;
		ret = op(ix, r, b, i, m, key, val, hook, &removed);
		if (ret >= 0 && removed)
			ret = removed;
		break;
	}
	ep_exit(r);
	return ret;
}

static int op_insert(struct idx *ix, ep_rec_t *r, struct bucket *b, int i, uint64_t m,
		     const cid_t *key, const cid_t *val, idx_hook_t *hook, long *removed)
{
	(void)removed;
	struct slot *sl = &b->slot[i];
	int rc;
	if (m & M_SPILLED) {
		vset_t *p = atomic_load_explicit(&sl->vs, memory_order_relaxed);
		if (vset_contains(p, val)) {
			unlock(b, i);
			return 0;
		}
		if (vset_can_append(p))
			return set_append(b, i, m, p, hook, CIDSTORE_OP_INSERT, key, val, false);
		return set_swap(ix, r, b, i, m, p, vset_track(ix, vset_rebuild(p, val, NULL)),
				hook, CIDSTORE_OP_INSERT, key, val);
	}
	cid_t cur[2];
	int n = 0, freej = -1;
	for (int j = 0; j < 2; j++) {
		if (m & (M_V0 << j)) {
			load_val(sl, j, &cur[n]);
			if (cid_eq(&cur[n], val)) {
				unlock(b, i);
				return 0;
			}
			n++;
		} else if (freej < 0) {
			freej = j;
		}
	}
	if (freej >= 0) {
		if ((rc = log_op(hook, CIDSTORE_OP_INSERT, key, val)) < 0) {
			unlock(b, i);
			return rc;
		}
		CIDSTORE_SHAKE_POINT("insert.before_store_val");
		store_val(sl, freej, val); /* slot not referenced by published meta */
		publish(b, i, m, (m & (M_V0 | M_V1)) | (M_V0 << freej));
		return 1;
	}
	/* third value: promote to a value set */
	cid_t three[3] = {cur[0], cur[1], *val};
	return set_swap(ix, r, b, i, m, NULL, vset_track(ix, vset_new(three, 3)), hook,
			CIDSTORE_OP_INSERT, key, val);
}

static int op_delete_value(struct idx *ix, ep_rec_t *r, struct bucket *b, int i, uint64_t m,
			   const cid_t *key, const cid_t *val, idx_hook_t *hook, long *removed)
{
	(void)removed;
	struct slot *sl = &b->slot[i];
	int rc;
	if (m & M_SPILLED) {
		vset_t *p = atomic_load_explicit(&sl->vs, memory_order_relaxed);
		if (!vset_contains(p, val)) {
			unlock(b, i);
			return 0;
		}
		if (p->live - 1 <= 2) {
			/* demote immediately: the remaining (two) values go inline */
			cid_t rest[3];
			size_t n = vset_read(p, rest, 3), k = 0;
			if ((rc = log_op(hook, CIDSTORE_OP_DELETE_VALUE, key, val)) < 0) {
				unlock(b, i);
				return rc;
			}
			uint64_t bits = 0;
			for (size_t j = 0; j < n; j++)
				if (!cid_eq(&rest[j], val)) {
					store_val(sl, (int)k, &rest[j]);
					bits |= M_V0 << k;
					k++;
				}
			publish(b, i, m, bits);
			retire_vset(ix, r, p);
			return 1;
		}
		if (vset_can_append(p))
			return set_append(b, i, m, p, hook, CIDSTORE_OP_DELETE_VALUE, key, val, true);
		return set_swap(ix, r, b, i, m, p, vset_track(ix, vset_rebuild(p, NULL, val)),
				hook, CIDSTORE_OP_DELETE_VALUE, key, val);
	}
	for (int j = 0; j < 2; j++) {
		if (!(m & (M_V0 << j)))
			continue;
		cid_t x;
		load_val(sl, j, &x);
		if (cid_eq(&x, val)) {
			if ((rc = log_op(hook, CIDSTORE_OP_DELETE_VALUE, key, val)) < 0) {
				unlock(b, i);
				return rc;
			}
			publish(b, i, m, (m & (M_V0 | M_V1)) & ~(M_V0 << j));
			return 1;
		}
	}
	unlock(b, i);
	return 0;
}

static int op_delete_key(struct idx *ix, ep_rec_t *r, struct bucket *b, int i, uint64_t m,
			 const cid_t *key, const cid_t *val, idx_hook_t *hook, long *removed)
{
	(void)val;
	struct slot *sl = &b->slot[i];
	long n;
	vset_t *p = NULL;
	if (m & M_SPILLED) {
		p = atomic_load_explicit(&sl->vs, memory_order_relaxed);
		n = p->live;
	} else {
		n = !!(m & M_V0) + !!(m & M_V1);
	}
	if (n == 0) {
		unlock(b, i);
		return 0;
	}
	int rc = log_op(hook, CIDSTORE_OP_DELETE_KEY, key, NULL);
	if (rc < 0) {
		unlock(b, i);
		return rc;
	}
	publish(b, i, m, 0);
	if (p)
		retire_vset(ix, r, p);
	*removed = n;
	return 1;
}

int idx_insert(idx_t *ix, const cid_t *key, const cid_t *val, idx_hook_t *hook)
{
	return (int)with_key(ix, key, val, hook, true, op_insert);
}

int idx_delete_value(idx_t *ix, const cid_t *key, const cid_t *val, idx_hook_t *hook)
{
	return (int)with_key(ix, key, val, hook, false, op_delete_value);
}

long idx_delete_key(idx_t *ix, const cid_t *key, idx_hook_t *hook)
{
	return with_key(ix, key, NULL, hook, false, op_delete_key);
}

/* ------------------------------------------------------------------ */
/* readers                                                             */
/* ------------------------------------------------------------------ */

long idx_lookup(idx_t *ix, const cid_t *key, cid_t *out, size_t cap)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	uint64_t h = cid_hash64(&ix->seed, key);
	ep_enter(r);
	struct bucket *b = route(ix, h);
	int i = find_keyed(b, key, FP_OF(h));
	long n = i < 0 ? 0 : (long)read_slot(b, i, out, cap);
	ep_exit(r);
	return n;
}

int idx_contains(idx_t *ix, const cid_t *key, const cid_t *val)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	uint64_t h = cid_hash64(&ix->seed, key);
	ep_enter(r);
	struct bucket *b = route(ix, h);
	int i = find_keyed(b, key, FP_OF(h));
	int found = i >= 0 && slot_contains(b, i, val);
	ep_exit(r);
	return found;
}

/* Collected keys of one leaf bucket, handed to the callback outside the
 * epoch section so a slow callback never holds back reclamation. */
struct scan_buf {
	cid_t *vals;
	size_t nvals, capvals;
	struct {
		cid_t key;
		size_t off, n;
	} keys[SLOTS];
	int nkeys;
};

static int scan_collect(struct bucket *b, struct scan_buf *sb)
{
	sb->nkeys = 0;
	sb->nvals = 0;
	for (int i = 0; i < SLOTS; i++) {
		unsigned f = atomic_load_explicit(&b->fp[i], memory_order_relaxed);
		if (f == FP_FREE || f == FP_FROZEN)
			break;
		uint64_t m = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
		if (KIND(m) != K_KEYED)
			continue;
		for (;;) {
			size_t room = sb->capvals - sb->nvals;
			size_t n = read_slot(b, i, sb->vals + sb->nvals, room);
			if (n <= room) {
				if (n) {
					sb->keys[sb->nkeys].key = b->slot[i].key;
					sb->keys[sb->nkeys].off = sb->nvals;
					sb->keys[sb->nkeys].n = n;
					sb->nkeys++;
					sb->nvals += n;
				}
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
	/* Leaf by leaf (leaf_next): no key is visited twice; the section ends
	 * before the callbacks run. */
	uint64_t c = 0;
	do {
		ep_enter(r);
		struct bucket *b = route(ix, c);
		int rc = scan_collect(b, &sb);
		unsigned depth = b->depth;
		ep_exit(r);
		if (rc) {
			ret = rc;
			break;
		}
		for (int k = 0; k < sb.nkeys && !ret; k++)
			ret = fn(&sb.keys[k].key, sb.vals + sb.keys[k].off, sb.keys[k].n, ctx);
		if (ret)
			break;
		c = leaf_next(c, depth);
	} while (c != 0);
	free(sb.vals);
	return ret;
}

struct stats_ctx {
	cidstore_stats_t *st;
};

static int stats_cb(const cid_t *key, const cid_t *values, size_t n, void *ctx)
{
	(void)key;
	(void)values;
	cidstore_stats_t *st = ctx;
	st->keys++;
	st->values += n;
	if (n > 2)
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
		struct dir *d = atomic_load_explicit(&ix->cur, memory_order_acquire);
		st->global_depth = d->depth;
		unsigned maxd = 0;
		uint64_t c = 0;
		do {
			struct bucket *b = route(ix, c);
			if (b->depth > maxd)
				maxd = b->depth;
			c = leaf_next(c, b->depth);
		} while (c != 0);
		st->max_local_depth = maxd;
		ep_exit(r);
	}
	st->buckets = atomic_load_explicit(&ix->nbuckets, memory_order_relaxed);
	st->splits = atomic_load_explicit(&ix->splits, memory_order_relaxed);
	st->compactions = atomic_load_explicit(&ix->compactions, memory_order_relaxed);
	st->dir_rebuilds = atomic_load_explicit(&ix->rebuilds, memory_order_relaxed);
	int64_t pend = atomic_load_explicit(&ix->ep.pending, memory_order_relaxed);
	st->retired_pending = pend > 0 ? (uint64_t)pend : 0;
	st->memory_bytes = atomic_load_explicit(&ix->mem, memory_order_relaxed);
	st->epoch_records = atomic_load_explicit(&ix->ep.nrecs, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

int idx_create(const idx_options_t *o, idx_t **out)
{
	struct idx *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return CIDSTORE_ENOMEM;
	uint64_t seed = o ? o->seed : 0;
	while (seed == 0) {
		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			seed = (uint64_t)(uintptr_t)ix ^ 0x9e3779b97f4a7c15ULL;
	}
	cid_hash_seed_init(&ix->seed, seed);
	if (ep_domain_init(&ix->ep) != 0) {
		free(ix);
		return CIDSTORE_ENOMEM;
	}
	unsigned g = o ? o->initial_depth : 0;
	if (g > 22)
		g = 22;
	ep_rec_t *r = ep_record(&ix->ep);
	struct dir *d = r ? dir_new(ix, g) : NULL;
	if (!d)
		goto nomem;
	for (size_t j = 0; j < ((size_t)1 << g); j++) {
		struct bucket *b = bucket_new(ix, r, g, g ? (uint64_t)j << (64 - g) : 0, 0);
		if (!b) {
			dir_release(d);
			goto nomem;
		}
		atomic_init(&d->e[j], b);
	}
	atomic_init(&ix->nbuckets, (uint64_t)1 << g);
	atomic_init(&ix->cur, d);
	*out = ix;
	return 0;
nomem:
	ep_domain_fini(&ix->ep);
	chunks_release(ix);
	free(ix);
	return CIDSTORE_ENOMEM;
}

void idx_destroy(idx_t *ix)
{
	if (!ix)
		return;
	/* First free what is pending in the epoch (retired buckets, sets and
	 * directories are unreachable from what follows). */
	ep_domain_fini(&ix->ep);
	struct dir *d = atomic_load_explicit(&ix->cur, memory_order_relaxed);
	/* Leaves in hash order; no other thread runs, so no section is needed. */
	uint64_t c = 0;
	do {
		struct bucket *b = route(ix, c);
		unsigned depth = b->depth;
		for (int k = 0; k < SLOTS; k++) {
			uint64_t m = atomic_load_explicit(&b->slot[k].meta, memory_order_relaxed);
			if (KIND(m) == K_KEYED && (m & M_SPILLED))
				vset_free(ix, atomic_load_explicit(&b->slot[k].vs, memory_order_relaxed));
		}
		bucket_free(NULL, b);
		c = leaf_next(c, depth);
	} while (c != 0);
	/* Limbo buckets are forwarded: free their fwd (their vsets belong to
	 * the children) only now, after the walk above followed it. */
	struct bucket *x = atomic_load_explicit(&ix->limbo, memory_order_relaxed);
	while (x) {
		struct bucket *n = x->limbo_next;
		bucket_free(NULL, x);
		x = n;
	}
	dir_release(d);
	chunks_release(ix);
	free(ix);
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

int idx_valid(idx_t *ix)
{
	ep_rec_t *r = ep_record(&ix->ep);
	if (!r)
		return CIDSTORE_ENOMEM;
	int ret = 0;
	ep_enter(r);
	uint64_t c = 0;
	do {
		struct bucket *b = route(ix, c);
		uint64_t mask = b->depth ? ~0ULL << (64 - b->depth) : 0;
		if ((c & mask) != b->prefix)
			ret = CIDSTORE_ECORRUPT;
		bool seen_empty = false;
		for (int i = 0; i < SLOTS; i++) {
			unsigned f = atomic_load_explicit(&b->fp[i], memory_order_acquire);
			uint64_t m = atomic_load_explicit(&b->slot[i].meta, memory_order_acquire);
			if (f == FP_FREE || f == FP_FROZEN) {
				seen_empty = true;
				continue;
			}
			if (seen_empty || KIND(m) != K_KEYED || (m & M_LOCK))
				ret = CIDSTORE_ECORRUPT; /* I1, and quiescence */
			uint64_t h = cid_hash64(&ix->seed, &b->slot[i].key);
			if ((h & mask) != b->prefix || FP_OF(h) != f)
				ret = CIDSTORE_ECORRUPT;
			for (int j = i + 1; j < SLOTS; j++) {
				uint64_t mj = atomic_load_explicit(&b->slot[j].meta, memory_order_acquire);
				if (KIND(mj) == K_KEYED && cid_eq(&b->slot[j].key, &b->slot[i].key))
					ret = CIDSTORE_ECORRUPT;
			}
			if (m & M_SPILLED) {
				vset_t *p = atomic_load_explicit(&b->slot[i].vs, memory_order_acquire);
				if (!vset_valid(p) || p->live < 3)
					ret = CIDSTORE_ECORRUPT;
			}
		}
		c = leaf_next(c, b->depth);
	} while (c != 0);
	ep_exit(r);
	return ret;
}
