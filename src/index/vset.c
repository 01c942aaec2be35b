/*
 * vset.c — versioned hash set of a key's values (see vset.h for the
 * protocol, the invariants and the linearization points).
 */
#include "index/vset.h"

#include <string.h>

#include "util/alloc.h"

/* Index words: (fingerprint << 32) | (slot position + 1); 0 = empty.  The
 * fingerprint (high half of the value's hash, never 0) lets a probe skip a
 * slot without reading it, so adding a new value costs one random line. */
static inline uint64_t vhash(const vset_t *s, const cid_t *v)
{
	return cid_hash64(s->seed, v);
}

static inline uint64_t fp_of(uint64_t h)
{
	uint64_t f = h >> 32;
	return (f ? f : 1) << 32;
}

static inline uint64_t st_of(const vset_t *s, uint32_t k)
{
	return atomic_load_explicit(&s->st[k], memory_order_acquire);
}

static inline bool st_live(uint64_t w, uint32_t v)
{
	uint32_t ins = VST_INS(w), del = VST_DEL(w);
	return ins != 0 && ins <= v && (del == 0 || del > v);
}

static inline bool live_at(const vset_t *s, uint32_t k, uint32_t v)
{
	return st_live(st_of(s, k), v);
}

size_t vset_bytes(const vset_t *s)
{
	size_t bytes = (sizeof(vset_t) + (size_t)s->cap * sizeof(uint64_t) + 63) & ~(size_t)63;
	return bytes + (size_t)s->nslots * (sizeof(cid_t) + sizeof(uint64_t));
}

/* An empty set with at least `slots` slots. */
static vset_t *vset_alloc(const cid_hash_seed_t *seed, size_t slots)
{
	size_t cap = VSET_MIN_CAP;
	while (cap / 4 * 3 < slots)
		cap <<= 1;
	if (cap > ((size_t)1 << 31))
		return NULL;
	size_t nslots = cap / 4 * 3;
	size_t bytes = sizeof(vset_t) + cap * sizeof(uint64_t);
	bytes = (bytes + 63) & ~(size_t)63; /* values start on a cache line */
	vset_t *s = cs_aligned(64, bytes + nslots * (sizeof(cid_t) + sizeof(uint64_t)));
	if (!s)
		return NULL;
	memset(s, 0, bytes);
	s->v = (cid_t *)((char *)s + bytes);
	s->st = (_Atomic uint64_t *)(s->v + nslots);
	/* st = 0 marks a slot unfilled; the value words of an unfilled slot
	 * are never read, so only the stamps need clearing. */
	for (size_t i = 0; i < nslots; i++)
		atomic_init(&s->st[i], 0);
	s->seed = seed;
	s->cap = (uint32_t)cap;
	s->nslots = (uint32_t)nslots;
	atomic_init(&s->pub, 0);
	return s;
}

/* The slot holding val live as of v, or -1. */
static int64_t find_at(const vset_t *s, uint32_t v, const cid_t *val)
{
	uint32_t m = s->cap - 1;
	uint64_t h = vhash(s, val), fp = fp_of(h);
	for (uint32_t i = (uint32_t)h & m, k = 0; k < s->cap; i = (i + 1) & m, k++) {
		uint64_t w = atomic_load_explicit(&((vset_t *)s)->ix[i], memory_order_acquire);
		if (w == 0)
			return -1; /* see vset.h: nothing visible lies beyond */
		if ((w & ~(uint64_t)0xffffffffu) != fp)
			continue;
		uint32_t pos = (uint32_t)w - 1;
		uint64_t sw = st_of(s, pos);
		if (VST_INS(sw) > v || !cid_eq(&s->v[pos], val))
			continue;
		if (VST_DEL(sw) == 0 || VST_DEL(sw) > v)
			return (int64_t)pos;
	}
	return -1;
}

/* Appends val with stamp st (the caller publishes pub). */
static void append(vset_t *s, const cid_t *val, uint32_t st)
{
	uint32_t pos = s->used++;
	s->v[pos] = *val;
	/* release: the value words before ins (a reader acquires the stamps) */
	atomic_store_explicit(&s->st[pos], st, memory_order_release);
	uint32_t m = s->cap - 1;
	uint64_t h = vhash(s, val);
	uint32_t i = (uint32_t)h & m;
	while (atomic_load_explicit(&s->ix[i], memory_order_relaxed) != 0)
		i = (i + 1) & m;
	/* release: the slot before the index word that leads to it */
	atomic_store_explicit(&s->ix[i], fp_of(h) | (pos + 1), memory_order_release);
	s->live++;
}

/* Slots for `live` values plus `extra` adds, and room to grow by half. */
static size_t slots_for(size_t live, size_t extra)
{
	size_t a = live + extra, b = live + live / 2 + 1;
	return a > b ? a : b;
}

vset_t *vset_build(const cid_hash_seed_t *seed, const cid_t *vals, size_t n, size_t extra)
{
	vset_t *s = vset_alloc(seed, slots_for(n, extra));
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (find_at(s, 1, &vals[i]) < 0)
			append(s, &vals[i], 1);
	s->stamp = 1;
	/* The set becomes visible only through the release store of the entry
	 * that points at it; this store needs no ordering of its own. */
	atomic_store_explicit(&s->pub, ((uint64_t)1 << 32) | s->live, memory_order_relaxed);
	return s;
}

vset_t *vset_rebuild(const vset_t *old, size_t extra)
{
	vset_t *s = vset_alloc(old->seed, slots_for(old->live, extra));
	if (!s)
		return NULL;
	/* The live values are distinct: no duplicate check needed. */
	for (uint32_t i = 0; i < old->used; i++)
		if (live_at(old, i, old->stamp))
			append(s, &old->v[i], 1);
	s->stamp = 1;
	atomic_store_explicit(&s->pub, ((uint64_t)1 << 32) | s->live, memory_order_relaxed);
	return s;
}

void vset_free(vset_t *s)
{
	cs_free(s);
}

size_t vset_copy(const vset_t *s, uint32_t v, size_t *pos, cid_t *out, size_t cap)
{
	size_t n = 0;
	size_t i = *pos;
	for (; i < s->nslots && n < cap; i++) {
		uint64_t w = st_of(s, (uint32_t)i);
		uint32_t ins = VST_INS(w), del = VST_DEL(w);
		if (ins == 0 || ins > v) {
			i = s->nslots; /* slots are filled in stamp order: done */
			break;
		}
		if (del == 0 || del > v)
			out[n++] = s->v[i]; /* written before the stamps (acquired) */
	}
	*pos = i;
	return n;
}

bool vset_contains_at(const vset_t *s, uint32_t v, const cid_t *val)
{
	return find_at(s, v, val) >= 0;
}

bool vset_has(const vset_t *s, const cid_t *val)
{
	return find_at(s, s->stamp, val) >= 0;
}

bool vset_room(const vset_t *s)
{
	return s->used < s->nslots && s->stamp < (1u << 31);
}

bool vset_room_for(const vset_t *s, size_t n)
{
	return (uint64_t)s->used + n <= s->nslots && (uint64_t)s->stamp + n < (1u << 31);
}

bool vset_should_shrink(const vset_t *s)
{
	return s->cap > VSET_MIN_CAP * 4 && (uint64_t)s->live * 8 < s->nslots;
}

void vset_add(vset_t *s, const cid_t *val)
{
	uint32_t st = ++s->stamp;
	append(s, val, st);
	/* release: every store of this change before its stamp is seen */
	atomic_store_explicit(&s->pub, ((uint64_t)st << 32) | s->live, memory_order_release);
}

void vset_del(vset_t *s, const cid_t *val)
{
	int64_t k = find_at(s, s->stamp, val);
	uint32_t st = ++s->stamp;
	uint64_t w = atomic_load_explicit(&s->st[k], memory_order_relaxed);
	atomic_store_explicit(&s->st[k], ((uint64_t)st << 32) | VST_INS(w), memory_order_release);
	s->live--;
	atomic_store_explicit(&s->pub, ((uint64_t)st << 32) | s->live, memory_order_release);
}

cid_t vset_only(const vset_t *s)
{
	for (uint32_t i = 0; i < s->used; i++)
		if (live_at(s, i, s->stamp))
			return s->v[i];
	cid_t z = {{0, 0, 0, 0}};
	return z;
}

bool vset_valid(const vset_t *s)
{
	uint32_t live;
	uint32_t v = vset_snap(s, &live);
	uint32_t n = 0, prev = 0;
	for (uint32_t i = 0; i < s->used; i++) {
		uint32_t ins = VST_INS(st_of(s, i));
		if (ins == 0 || ins < prev)
			return false; /* slots are filled in stamp order */
		prev = ins;
		if (!live_at(s, i, v))
			continue;
		n++;
		if (find_at(s, v, &s->v[i]) != (int64_t)i)
			return false; /* the value is live twice, or unreachable */
	}
	return n == live;
}
