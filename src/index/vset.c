/*
 * vset.c — value sets: sorted region + appended region with tombstones.
 *
 * Invariants (checked by vset_valid):
 *  - v[0..nsorted) is strictly increasing (cid_cmp) and never written after
 *    the set is first published;
 *  - an appended entry i < napp is never written again; an insert entry is
 *    appended only when the value is absent, a tombstone only when present,
 *    so the set is exactly: sorted values with no appended entry, plus the
 *    values whose last appended entry is an insert;
 *  - live == that set's size (maintained by the writer under the key lock).
 * Linearization points: vset_append's release store of napp (the caller's
 * index.c publishes the key's state right after; see there).
 * Memory: a set is freed only through the epoch after the slot's pointer
 * moved away from it (index.c).
 */
#include "index/vset.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/check.h"

int cid_cmp(const cid_t *a, const cid_t *b)
{
	for (int i = 0; i < 4; i++)
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	return 0;
}

static int cmp_void(const void *a, const void *b)
{
	return cid_cmp(a, b);
}

static size_t bytes_for(size_t nsorted, uint32_t app_cap)
{
	return sizeof(vset_t) + (nsorted + app_cap) * sizeof(cid_t);
}

size_t vset_bytes(const vset_t *s)
{
	return bytes_for(s->nsorted, s->app_cap);
}

vset_t *vset_new(const cid_t *vals, size_t n)
{
	if (n > UINT32_MAX - VSET_APPEND_CAP)
		return NULL;
	/* Room to append about as many entries as the set holds (at least
	 * VSET_APPEND_MIN, at most VSET_APPEND_CAP) before the next rebuild:
	 * rebuild work stays amortized O(1) per change up to 64 values, then
	 * O(n / 64).  A freshly promoted 3-value key gets 4 slots: 7 * 32 bytes
	 * of values instead of 19 * 32 with a fixed minimum of 16. */
	uint32_t cap = n < VSET_APPEND_MIN ? VSET_APPEND_MIN
		       : n > VSET_APPEND_CAP ? VSET_APPEND_CAP : (uint32_t)n;
	vset_t *s = cs_malloc(bytes_for(n, cap));
	if (!s)
		return NULL;
	s->app_cap = cap;
	s->owner = NULL;
	s->nsorted = (uint32_t)n;
	s->live = (uint32_t)n;
	atomic_init(&s->napp, 0);
	memcpy(s->v, vals, n * sizeof(cid_t));
	qsort(s->v, n, sizeof(cid_t), cmp_void);
	return s;
}

static long sorted_find(const vset_t *s, const cid_t *v)
{
	size_t lo = 0, hi = s->nsorted;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cid_cmp(&s->v[mid], v);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool contains_n(const vset_t *s, uint32_t napp, const cid_t *v)
{
	const cid_t *app = s->v + s->nsorted;
	for (uint32_t i = napp; i-- > 0;)
		if (cid_eq(&app[i], v))
			return !s->tomb[i];
	return sorted_find(s, v) >= 0;
}

bool vset_contains(const vset_t *s, const cid_t *v)
{
	/* acquire: pairs with vset_append's release; entries < napp are final */
	uint32_t napp = atomic_load_explicit(&s->napp, memory_order_acquire);
	return contains_n(s, napp, v);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Emits the live set of the snapshot (napp entries) through out/cap. */
static size_t read_n(const vset_t *s, uint32_t napp, cid_t *out, size_t cap)
{
	const cid_t *app = s->v + s->nsorted;
	uint32_t skip[VSET_APPEND_CAP];
	unsigned nskip = 0;
	size_t n = 0;

	/* Sorted values that have an appended entry are decided there. */
	for (uint32_t i = 0; i < napp; i++) {
		long k = sorted_find(s, &app[i]);
		if (k >= 0) {
			bool dup = false;
			for (unsigned j = 0; j < nskip; j++)
				dup |= skip[j] == (uint32_t)k;
			if (!dup)
				skip[nskip++] = (uint32_t)k;
		}
	}
	qsort(skip, nskip, sizeof(skip[0]), cmp_u32);
	unsigned si = 0;
	for (uint32_t k = 0; k < s->nsorted; k++) {
		if (si < nskip && skip[si] == k) {
			si++;
			continue;
		}
		if (n < cap)
			out[n] = s->v[k];
		n++;
	}
	/* Appended values whose last entry is an insert. */
	for (uint32_t i = 0; i < napp; i++) {
		if (s->tomb[i])
			continue;
		bool later = false;
		for (uint32_t j = i + 1; j < napp && !later; j++)
			later = cid_eq(&app[j], &app[i]);
		if (later)
			continue;
		if (n < cap)
			out[n] = app[i];
		n++;
	}
	return n;
}

size_t vset_read(const vset_t *s, cid_t *out, size_t cap)
{
	uint32_t napp = atomic_load_explicit(&s->napp, memory_order_acquire);
	return read_n(s, napp, out, cap);
}

bool vset_can_append(const vset_t *s)
{
	return atomic_load_explicit(&s->napp, memory_order_relaxed) < s->app_cap;
}

void vset_append(vset_t *s, const cid_t *v, bool tombstone)
{
	/* relaxed: only the lock holder writes napp */
	uint32_t i = atomic_load_explicit(&s->napp, memory_order_relaxed);
	s->v[s->nsorted + i] = *v;
	s->tomb[i] = tombstone;
	s->live += tombstone ? -1u : 1u;
	/* release: pairs with the acquire loads of napp in readers, making the
	 * entry written above visible before it counts. */
	atomic_store_explicit(&s->napp, i + 1, memory_order_release);
}

vset_t *vset_rebuild(const vset_t *s, const cid_t *add, const cid_t *del)
{
	uint32_t napp = atomic_load_explicit(&s->napp, memory_order_relaxed);
	size_t n = read_n(s, napp, NULL, 0);
	cid_t *tmp = malloc((n + 1) * sizeof(cid_t));
	if (!tmp)
		return NULL;
	read_n(s, napp, tmp, n);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!del || !cid_eq(&tmp[i], del))
			tmp[m++] = tmp[i];
	if (add)
		tmp[m++] = *add;
	vset_t *ns = vset_new(tmp, m);
	free(tmp);
	CS_DEBUG_ASSERT(!ns || vset_valid(ns));
	return ns;
}

bool vset_valid(const vset_t *s)
{
	for (uint32_t i = 1; i < s->nsorted; i++)
		if (cid_cmp(&s->v[i - 1], &s->v[i]) >= 0)
			return false;
	return vset_read(s, NULL, 0) == s->live;
}
