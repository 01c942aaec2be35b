/*
 * vset.c — versioned hash set of a key's values (see vset.h for the
 * protocol, the invariants and the linearization points).
 */
#include "index/vset.h"

#include <string.h>

#include "util/alloc.h"

static inline uint32_t home_of(const vset_t *s, const cid_t *v)
{
	return (uint32_t)cid_hash64(s->seed, v) & (s->cap - 1);
}

static inline bool live_at(const vslot_t *sl, uint32_t v)
{
	uint32_t ins = atomic_load_explicit(&((vslot_t *)sl)->ins, memory_order_acquire);
	if (ins == 0 || ins > v)
		return false;
	uint32_t del = atomic_load_explicit(&((vslot_t *)sl)->del, memory_order_acquire);
	return del == 0 || del > v;
}

size_t vset_bytes(const vset_t *s)
{
	return sizeof(vset_t) + (size_t)s->cap * sizeof(vslot_t);
}

static vset_t *vset_alloc(const cid_hash_seed_t *seed, size_t want)
{
	size_t cap = VSET_MIN_CAP;
	while (cap < want)
		cap <<= 1;
	if (cap > ((size_t)1 << 31))
		return NULL;
	vset_t *s = cs_malloc(sizeof(vset_t) + cap * sizeof(vslot_t));
	if (!s)
		return NULL;
	memset(s, 0, sizeof(vset_t));
	/* ins = 0 marks a slot empty; the value words of an empty slot are
	 * never read, so only the stamps need clearing. */
	for (size_t i = 0; i < cap; i++) {
		atomic_init(&s->s[i].ins, 0);
		atomic_init(&s->s[i].del, 0);
	}
	s->seed = seed;
	s->cap = (uint32_t)cap;
	atomic_init(&s->pub, 0);
	return s;
}

/* Private fill of a set nobody else can see yet (stamp 1, no del). */
static bool fill_one(vset_t *s, const cid_t *val)
{
	uint32_t m = s->cap - 1;
	for (uint32_t i = home_of(s, val);; i = (i + 1) & m) {
		vslot_t *sl = &s->s[i];
		if (atomic_load_explicit(&sl->ins, memory_order_relaxed) == 0) {
			sl->v = *val;
			atomic_store_explicit(&sl->ins, 1, memory_order_relaxed);
			s->used++;
			s->live++;
			return true;
		}
		if (cid_eq(&sl->v, val))
			return false;
	}
}

/* Capacity for `live` values plus `extra` adds below the 3/4 threshold. */
static size_t cap_for(size_t live, size_t extra)
{
	size_t need = live + extra + 1;
	size_t want = live * 2 > need * 4 / 3 + 1 ? live * 2 : need * 4 / 3 + 1;
	return want;
}

vset_t *vset_build(const cid_hash_seed_t *seed, const cid_t *vals, size_t n, size_t extra)
{
	vset_t *s = vset_alloc(seed, cap_for(n, extra));
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		fill_one(s, &vals[i]);
	s->stamp = 1;
	/* The set becomes visible only through the release store of the entry
	 * that points at it; this store needs no ordering of its own. */
	atomic_store_explicit(&s->pub, ((uint64_t)1 << 32) | s->live, memory_order_relaxed);
	return s;
}

vset_t *vset_rebuild(const vset_t *old, size_t extra)
{
	vset_t *s = vset_alloc(old->seed, cap_for(old->live, extra));
	if (!s)
		return NULL;
	for (uint32_t i = 0; i < old->cap; i++) {
		const vslot_t *sl = &old->s[i];
		if (live_at(sl, old->stamp))
			fill_one(s, &sl->v);
	}
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
	for (; i < s->cap && n < cap; i++) {
		const vslot_t *sl = &s->s[i];
		if (live_at(sl, v))
			out[n++] = sl->v; /* written before ins (acquired in live_at) */
	}
	*pos = i;
	return n;
}

/* The slot holding val live as of v, or NULL. */
static const vslot_t *find_at(const vset_t *s, uint32_t v, const cid_t *val)
{
	uint32_t m = s->cap - 1;
	for (uint32_t i = home_of(s, val), k = 0; k < s->cap; i = (i + 1) & m, k++) {
		const vslot_t *sl = &s->s[i];
		uint32_t ins = atomic_load_explicit(&((vslot_t *)sl)->ins, memory_order_acquire);
		if (ins == 0)
			return NULL; /* see vset.h: nothing visible lies beyond */
		if (ins > v || !cid_eq(&sl->v, val))
			continue;
		uint32_t del = atomic_load_explicit(&((vslot_t *)sl)->del, memory_order_acquire);
		if (del == 0 || del > v)
			return sl;
	}
	return NULL;
}

bool vset_contains_at(const vset_t *s, uint32_t v, const cid_t *val)
{
	return find_at(s, v, val) != NULL;
}

bool vset_has(const vset_t *s, const cid_t *val)
{
	return find_at(s, s->stamp, val) != NULL;
}

bool vset_room(const vset_t *s)
{
	return (uint64_t)(s->used + 1) * 4 <= (uint64_t)s->cap * 3 && s->stamp < (1u << 31);
}

bool vset_should_shrink(const vset_t *s)
{
	return s->cap > VSET_MIN_CAP * 4 && (uint64_t)s->live * 8 < s->cap;
}

void vset_add(vset_t *s, const cid_t *val)
{
	uint32_t m = s->cap - 1;
	uint32_t i = home_of(s, val);
	while (atomic_load_explicit(&s->s[i].ins, memory_order_relaxed) != 0)
		i = (i + 1) & m;
	uint32_t st = ++s->stamp;
	s->s[i].v = *val;
	/* release: the value words before ins (a reader acquires ins) */
	atomic_store_explicit(&s->s[i].ins, st, memory_order_release);
	s->used++;
	s->live++;
	/* release: every slot store of this change before the stamp is seen */
	atomic_store_explicit(&s->pub, ((uint64_t)st << 32) | s->live, memory_order_release);
}

void vset_del(vset_t *s, const cid_t *val)
{
	vslot_t *sl = (vslot_t *)find_at(s, s->stamp, val);
	uint32_t st = ++s->stamp;
	atomic_store_explicit(&sl->del, st, memory_order_release);
	s->live--;
	atomic_store_explicit(&s->pub, ((uint64_t)st << 32) | s->live, memory_order_release);
}

cid_t vset_only(const vset_t *s)
{
	for (uint32_t i = 0; i < s->cap; i++)
		if (live_at(&s->s[i], s->stamp))
			return s->s[i].v;
	cid_t z = {{0, 0, 0, 0}};
	return z;
}

bool vset_valid(const vset_t *s)
{
	uint32_t live;
	uint32_t v = vset_snap(s, &live);
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->cap; i++) {
		if (!live_at(&s->s[i], v))
			continue;
		n++;
		if (find_at(s, v, &s->s[i].v) != &s->s[i])
			return false; /* the value is live twice */
	}
	return n == live;
}
