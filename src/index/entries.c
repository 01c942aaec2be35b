/*
 * entries.c — entry memory: 2 MiB chunks of 64-byte entries, a free bitmap
 * per chunk, batched retirement through the epoch, and the release of empty
 * chunks to the OS (compaction, maint.c).
 *
 * LAYOUT
 *   chunk c: ix->chunks[c], a 2 MiB aligned anonymous mapping of 32768
 *   entries (entry index e = c << 15 | offset; index 0 means "no entry" and
 *   is never free), and ix->meta[c]: { state, nfree, bm[512] }: bit k of
 *   bm[w] set = entry 64 w + k is free.  A record (one per thread and index)
 *   allocates from the one chunk it OWNs: it takes a whole bitmap word at a
 *   time (atomic exchange with 0) into ep_rec.ent_mask and hands out its
 *   bits with no atomic at all; a word's worth of entries lies in 4 KiB, so
 *   a fresh chunk is touched page by page, as a bump allocator would.
 *
 * ATOMIC FIELDS AND WHAT THEY MEAN
 *   bm[w]       1 bits: free entries nobody holds.  Cleared only by the
 *               owner's exchange (it then holds those bits in ent_mask);
 *               set by fetch_or (release) when an entry is freed after its
 *               grace period, when an unpublished entry is given back, and
 *               when an owner gives back the bits it holds.
 *   nfree       the number of 1 bits, kept by fetch_add/sub beside each
 *               change of bm: a hint (chunk_take, ent_mark_sparse) that
 *               may lag a change of bm by a moment; decisions that must be
 *               exact (release) read bm itself.
 *   state       C_OWNED: one record allocates from the chunk (set by CAS
 *               from 0 or C_RELEASED, cleared by its owner).  C_EVAC: the
 *               chunk is being emptied; set by the maintainer by CAS from 0
 *               (so never on an owned chunk), and never taken while set.
 *               C_RELEASING: the maintainer, holding C_EVAC without owner,
 *               checks the bitmap.  C_RELEASED: its pages were given back;
 *               every bit is 1; the mapping stays (ent_ptr never faults).
 *   chunks[c], meta[c]   set once (release) by the thread that maps c.
 *   nchunks     chunk indexes handed out (fetch_add; may pass MAX_CHUNKS,
 *               then allocation fails with ENOMEM).
 *
 * INVARIANTS
 *   E1  An entry is in exactly one of: free in bm; held in one record's
 *       ent_mask; allocated (private to a writer, published in a slot, or
 *       retired and waiting for its grace period).  Only bm's exchange
 *       moves it from free to held, only the allocator from held to
 *       allocated, and only a free callback (after the grace period),
 *       ent_unalloc (never published) or a record giving its bits back
 *       returns it to free.
 *   E2  A chunk's bits are taken only by its owner, and a chunk is owned
 *       by at most one record (CAS).  So while a chunk is C_EVAC |
 *       C_RELEASING (no owner), its 1 bits can only grow: when they are
 *       all 1, no entry of the chunk is allocated or held (E1), and no
 *       reader can reach one: each was freed after a grace period that
 *       followed its last unlink.  Then, and only then, the pages go back
 *       (MADV_DONTNEED), and the chunk is C_RELEASED until a record takes
 *       it again (its pages come back zeroed on first touch).
 *   E3  A record that finds its chunk exhausted (or C_EVAC) lets it go
 *       with an empty ent_mask; ent_drop_owned gives back a non-empty one.
 *       A record keeps its chunk while its thread is away, so at most one
 *       partly used chunk per record escapes compaction.  When its own
 *       retired entries of that chunk come back (the free callback runs in
 *       the owner thread), its scan cursor rewinds to them: under churn a
 *       thread keeps reusing its own cache-warm lines, as the per-thread
 *       free lists did before.
 *
 * HAPPENS-BEFORE
 *   A freed entry: readers' section exits -> (epoch, TSan-annotated in the
 *   free callback) -> the free callback's release fetch_or of the bit ->
 *   the next owner's acquire exchange -> its writes of the entry.  A
 *   released chunk: the release store of C_RELEASED -> the acquire CAS of
 *   the record that takes it.
 *
 * MEMORY ACCOUNTING
 *   ix->mem counts mapped chunks that are not released, and their meta.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "index/index_impl.h"
#include "util/alloc.h"
#include "util/check.h"
#include "util/tsan.h"

/* A chunk with fewer free entries than this is not worth taking: under
 * churn, freed entries wait in non-owned chunks until one has this many
 * (at most 3% of the entries wait, besides one chunk per record). */
#define TAKE_MIN (ENT_PER_CHUNK / 32)

static inline uint64_t word_full(uint32_t c, uint32_t w)
{
	return (c == 0 && w == 0) ? ~(uint64_t)1 : ~(uint64_t)0;
}

static inline uint32_t chunk_cap(uint32_t c)
{
	return ENT_PER_CHUNK - (c == 0);
}

static inline uint32_t nchunks_of(struct idx *ix)
{
	uint32_t n = atomic_load_explicit(&ix->nchunks, memory_order_acquire);
	return n > MAX_CHUNKS ? MAX_CHUNKS : n;
}

int ent_init(struct idx *ix)
{
	ix->chunks = calloc(MAX_CHUNKS, sizeof(*ix->chunks));
	ix->meta = calloc(MAX_CHUNKS, sizeof(*ix->meta));
	if (!ix->chunks || !ix->meta) {
		free(ix->chunks);
		free(ix->meta);
		return CIDSTORE_ENOMEM;
	}
	return 0;
}

void ent_fini(struct idx *ix)
{
	uint32_t nc = nchunks_of(ix);
	for (uint32_t c = 0; c < nc; c++) {
		struct entry *e = atomic_load_explicit(&ix->chunks[c], memory_order_relaxed);
		if (e)
			munmap(e, CHUNK_BYTES);
		cs_free(atomic_load_explicit(&ix->meta[c], memory_order_relaxed));
	}
	free(ix->chunks);
	free(ix->meta);
}

static struct entry *chunk_map(struct idx *ix, uint32_t c)
{
	size_t len = CHUNK_BYTES * 2;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	char *a = (char *)(((uintptr_t)p + CHUNK_BYTES - 1) & ~(uintptr_t)(CHUNK_BYTES - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + CHUNK_BYTES < p + len)
		munmap(a + CHUNK_BYTES, (size_t)(p + len - (a + CHUNK_BYTES)));
	/* A lookup's cost is its dependent cache and TLB misses: big indexes
	 * get huge pages; a small store stays small (only touched 4 KiB pages
	 * are resident). */
	if (c >= HUGE_AFTER)
		madvise(a, CHUNK_BYTES, MADV_HUGEPAGE);
	atomic_fetch_add_explicit(&ix->mem, CHUNK_BYTES, memory_order_relaxed);
	return (struct entry *)a;
}

static struct cmeta *meta_new(struct idx *ix, uint32_t c)
{
	struct cmeta *m = cs_aligned(64, sizeof(*m));
	if (!m)
		return NULL;
	atomic_init(&m->state, C_OWNED);
	for (uint32_t w = 0; w < CHUNK_WORDS; w++)
		atomic_init(&m->bm[w], word_full(c, w));
	atomic_init(&m->nfree, chunk_cap(c));
	atomic_init(&m->hw, 0);
	atomic_fetch_add_explicit(&ix->mem, sizeof(*m), memory_order_relaxed);
	return m;
}

static void own(ep_rec_t *r, uint32_t c)
{
	r->ent_chunk = c + 1;
	r->ent_scan = 0;
	r->ent_mask = 0;
}

/* r (owning nothing) takes a chunk: one with TAKE_MIN free entries, else a
 * released one, else a new one.  False when out of memory. */
static bool chunk_take(struct idx *ix, ep_rec_t *r)
{
	uint32_t n = nchunks_of(ix);
	uint32_t start = n ? atomic_load_explicit(&ix->take_cursor, memory_order_relaxed) % n : 0;
	uint32_t released = UINT32_MAX;
	for (uint32_t k = 0, c = start; k < n; k++, c = c + 1 == n ? 0 : c + 1) {
		struct cmeta *m = atomic_load_explicit(&ix->meta[c], memory_order_acquire);
		if (!m)
			continue; /* being mapped, or its mapping failed */
		uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s == 0 && atomic_load_explicit(&m->nfree, memory_order_relaxed) >= TAKE_MIN) {
			if (atomic_compare_exchange_strong_explicit(&m->state, &s, C_OWNED,
					memory_order_acquire, memory_order_relaxed)) {
				atomic_store_explicit(&ix->take_cursor, c + 1, memory_order_relaxed);
				own(r, c);
				return true;
			}
		} else if (s == C_RELEASED && released == UINT32_MAX) {
			released = c;
		}
	}
	if (released != UINT32_MAX) {
		struct cmeta *m = atomic_load_explicit(&ix->meta[released], memory_order_acquire);
		uint32_t s = C_RELEASED;
		/* acquire: the maintainer's release of C_RELEASED (its checks of
		 * the bitmap and the madvise come first) */
		if (atomic_compare_exchange_strong_explicit(&m->state, &s, C_OWNED,
				memory_order_acquire, memory_order_relaxed)) {
			atomic_fetch_add_explicit(&ix->mem, CHUNK_BYTES, memory_order_relaxed);
			own(r, released);
			return true;
		}
	}
	uint32_t c = atomic_fetch_add_explicit(&ix->nchunks, 1, memory_order_relaxed);
	if (c >= MAX_CHUNKS)
		return false;
	struct cmeta *m = meta_new(ix, c);
	if (!m)
		return false;
	struct entry *p = chunk_map(ix, c);
	if (!p) {
		atomic_fetch_sub_explicit(&ix->mem, sizeof(*m), memory_order_relaxed);
		cs_free(m);
		return false;
	}
	atomic_store_explicit(&ix->chunks[c], p, memory_order_release);
	atomic_store_explicit(&ix->meta[c], m, memory_order_release);
	own(r, c);
	return true;
}

/* r lets its chunk go; its ent_mask is empty. */
static void let_go(struct idx *ix, ep_rec_t *r)
{
	struct cmeta *m = atomic_load_explicit(&ix->meta[r->ent_chunk - 1], memory_order_relaxed);
	/* release: this record's bitmap exchanges before the next owner's */
	atomic_fetch_and_explicit(&m->state, ~C_OWNED, memory_order_release);
	r->ent_chunk = 0;
}

uint32_t ent_alloc_slow(struct idx *ix, ep_rec_t *r)
{
	for (;;) {
		if (r->ent_chunk) {
			uint32_t c = r->ent_chunk - 1;
			struct cmeta *m = atomic_load_explicit(&ix->meta[c], memory_order_relaxed);
			if (!(atomic_load_explicit(&m->state, memory_order_relaxed) & C_EVAC)) {
				while (r->ent_scan < CHUNK_WORDS) {
					uint32_t w = r->ent_scan++;
					if (!atomic_load_explicit(&m->bm[w], memory_order_relaxed))
						continue;
					/* acquire: the release of whoever freed these bits */
					uint64_t got = atomic_exchange_explicit(&m->bm[w], 0,
										memory_order_acquire);
					if (!got)
						continue;
					atomic_fetch_sub_explicit(&m->nfree, (uint32_t)__builtin_popcountll(got),
								  memory_order_relaxed);
					if (w >= atomic_load_explicit(&m->hw, memory_order_relaxed))
						atomic_store_explicit(&m->hw, w + 1, memory_order_relaxed);
					r->ent_base = (c << ENT_SHIFT) | (w << 6);
					r->ent_mask = got & (got - 1);
					return r->ent_base + (uint32_t)__builtin_ctzll(got);
				}
			}
			let_go(ix, r);
		}
		if (!chunk_take(ix, r))
			return 0;
	}
}

/* Entry e becomes free (E1). */
static void ent_free(struct idx *ix, uint32_t e)
{
	struct cmeta *m = ent_meta(ix, e);
	/* release: the entry's last writes before the next owner's acquire */
	atomic_fetch_or_explicit(&m->bm[(e >> 6) & (CHUNK_WORDS - 1)], (uint64_t)1 << (e & 63),
				 memory_order_release);
	atomic_fetch_add_explicit(&m->nfree, 1, memory_order_relaxed);
}

void ent_unalloc(struct idx *ix, uint32_t e)
{
	ent_free(ix, e);
}

void ent_drop_owned(struct idx *ix, ep_rec_t *r)
{
	if (!r->ent_chunk)
		return;
	if (r->ent_mask) {
		struct cmeta *m = atomic_load_explicit(&ix->meta[r->ent_chunk - 1], memory_order_relaxed);
		atomic_fetch_or_explicit(&m->bm[(r->ent_base >> 6) & (CHUNK_WORDS - 1)], r->ent_mask,
					 memory_order_release);
		atomic_fetch_add_explicit(&m->nfree, (uint32_t)__builtin_popcountll(r->ent_mask),
					  memory_order_relaxed);
		r->ent_mask = 0;
	}
	let_go(ix, r);
}

static void batch_free_cb(ck_epoch_entry_t *ep)
{
	struct ret_batch *b = (struct ret_batch *)((char *)ep - offsetof(struct ret_batch, ep));
	struct idx *ix = b->ix;
	/* ck decided inside libck.so that every reader has left: tell TSan
	 * (pairs with the release in ep_exit). */
	cidstore_tsan_acquire(&ix->ep.tsan_sync);
	/* The record whose retirements these are, when this thread owns it:
	 * entries of the chunk it allocates from make it rewind its scan, so
	 * that under churn it reuses its own recently freed, cache-warm lines
	 * (instead of moving on to colder chunks). */
	ep_rec_t *own = ep_dispatching();
	uint32_t own_chunk = own && own->dom == &ix->ep && own->ent_chunk ? own->ent_chunk - 1
									    : UINT32_MAX;
	/* Entries retired one after another were mostly allocated one after
	 * another: one fetch_or per bitmap word and one nfree update per chunk
	 * for each run of them. */
	struct cmeta *m = NULL;
	uint32_t word = UINT32_MAX, nfree = 0;
	uint64_t bits = 0;
	for (uint32_t i = 0; i <= b->n; i++) {
		uint32_t e = i < b->n ? b->e[i] : 0;
		if (i == b->n || e >> 6 != word) {
			if (bits) { /* release: the entries' last writes before the next owner's acquire */
				atomic_fetch_or_explicit(&m->bm[word & (CHUNK_WORDS - 1)], bits,
							 memory_order_release);
				if (word >> (ENT_SHIFT - 6) == own_chunk &&
				    (word & (CHUNK_WORDS - 1)) < own->ent_scan)
					own->ent_scan = word & (CHUNK_WORDS - 1);
			}
			bits = 0;
			word = e >> 6;
		}
		struct cmeta *em = i < b->n ? ent_meta(ix, e) : NULL;
		if (em != m) {
			if (nfree)
				atomic_fetch_add_explicit(&m->nfree, nfree, memory_order_relaxed);
			nfree = 0;
			m = em;
		}
		if (i == b->n)
			break;
		cs_poison(ent_ptr(ix, e), sizeof(struct entry));
		bits |= (uint64_t)1 << (e & 63);
		nfree++;
	}
	cs_free(b);
	ep_freed(&ix->ep);
}

static void batch_submit(ep_rec_t *r, struct ret_batch *b)
{
	r->ent_retired = NULL;
	/* A batch weighs 4 retirements: its 250 entries come back after 64
	 * batches, as many as a vset-free workload would wait for. */
	r->retired_since_poll += 3;
	ep_retire(r, &b->ep, batch_free_cb);
}

void ent_retire(struct idx *ix, ep_rec_t *r, uint32_t e)
{
	struct ret_batch *b = r->ent_retired;
	if (!b) {
		b = cs_malloc(sizeof(*b));
		if (!b) {
			/* Out of memory: the entry is lost to reuse, not to safety. */
			atomic_fetch_add_explicit(&ix->leaked, 1, memory_order_relaxed);
			return;
		}
		b->ix = ix;
		b->n = 0;
		r->ent_retired = b;
	}
	b->e[b->n++] = e;
	if (b->n == RET_BATCH)
		batch_submit(r, b);
}

void ent_flush_retired(struct idx *ix, ep_rec_t *r)
{
	(void)ix;
	struct ret_batch *b = r->ent_retired;
	if (b && b->n)
		batch_submit(r, b);
}

unsigned ent_mark_sparse(struct idx *ix, unsigned *evac_out)
{
	uint32_t n = nchunks_of(ix);
	unsigned evac = 0, fresh = 0;
	for (uint32_t c = 0; c < n; c++) {
		struct cmeta *m = atomic_load_explicit(&ix->meta[c], memory_order_acquire);
		if (!m)
			continue;
		uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s & C_EVAC) {
			evac++;
			continue;
		}
		if (s != 0)
			continue; /* owned (being filled) or released */
		/* Sparse: at most half of the entries ever handed out are live.
		 * (Against the whole chunk, the partly filled chunk a record let
		 * go would look sparse: compaction's own destination would be
		 * moved again by the next pass.)  Words never taken are all free. */
		uint32_t hw = atomic_load_explicit(&m->hw, memory_order_relaxed);
		uint32_t live = chunk_cap(c) - atomic_load_explicit(&m->nfree, memory_order_relaxed);
		uint64_t touched = (uint64_t)hw * 64;
		if (live > touched || (uint64_t)live * 2 > touched)
			continue;
		/* CAS from 0: a chunk that a record takes meanwhile stays its own */
		if (atomic_compare_exchange_strong_explicit(&m->state, &s, C_EVAC,
				memory_order_relaxed, memory_order_relaxed)) {
			evac++;
			fresh++;
		}
	}
	*evac_out = evac;
	return fresh;
}

unsigned ent_release_empty(struct idx *ix, unsigned *left)
{
	uint32_t n = nchunks_of(ix);
	unsigned released = 0;
	*left = 0;
	for (uint32_t c = 0; c < n; c++) {
		struct cmeta *m = atomic_load_explicit(&ix->meta[c], memory_order_acquire);
		if (!m)
			continue;
		uint32_t s = C_EVAC;
		/* acquire: owners' releases (let_go) before the bitmap check */
		if (!atomic_compare_exchange_strong_explicit(&m->state, &s, C_EVAC | C_RELEASING,
				memory_order_acquire, memory_order_relaxed))
			continue;
		bool empty = true;
		for (uint32_t w = 0; w < CHUNK_WORDS && empty; w++)
			/* acquire: each free's release (E2: bits only grow now) */
			empty = atomic_load_explicit(&m->bm[w], memory_order_acquire) == word_full(c, w);
		if (!empty) {
			atomic_store_explicit(&m->state, C_EVAC, memory_order_release);
			(*left)++;
			continue;
		}
		struct entry *p = atomic_load_explicit(&ix->chunks[c], memory_order_relaxed);
		madvise(p, CHUNK_BYTES, MADV_DONTNEED);
		atomic_store_explicit(&m->hw, 0, memory_order_relaxed);
		atomic_fetch_sub_explicit(&ix->mem, CHUNK_BYTES, memory_order_relaxed);
		released++;
		/* release: the check and the madvise before a later owner's take */
		atomic_store_explicit(&m->state, C_RELEASED, memory_order_release);
	}
	return released;
}

bool ent_allocated(struct idx *ix, uint32_t e)
{
	uint32_t c = e >> ENT_SHIFT;
	if (e == 0 || c >= nchunks_of(ix))
		return false;
	struct cmeta *m = atomic_load_explicit(&ix->meta[c], memory_order_acquire);
	if (!m || (atomic_load_explicit(&m->state, memory_order_relaxed) & C_RELEASED))
		return false;
	uint64_t w = atomic_load_explicit(&m->bm[(e >> 6) & (CHUNK_WORDS - 1)], memory_order_relaxed);
	return !(w & ((uint64_t)1 << (e & 63)));
}
