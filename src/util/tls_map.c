/*
 * tls_map.c — per-thread tables of (owner pointer, owner id) -> value,
 * entries of closed owners dropped lazily, values handed back at thread exit.
 *
 * Invariants:
 *  T1  A thread holds at most one entry per owner, in its table (struct
 *      tm_table, reached through the map's pthread key: owner thread only,
 *      its exit destructor included).  An entry is trusted only while its
 *      id matches the owner's: ids are never reused (one process-wide
 *      counter), so a stale entry for a closed owner whose memory a new
 *      owner reuses (new id) is never taken for the new one.
 *  T2  map->live (under map->lock) lists the ids of open owners.  The
 *      thread-exit destructor calls on_exit(owner, val) only while holding
 *      map->lock with the owner's id listed; tm_close removes the id under
 *      the same lock, and the owner frees its memory only after tm_close,
 *      so a destructor never touches freed memory: a thread exiting while
 *      its owner closes is safe (the contract forbids calls during close,
 *      not thread exits).
 *  T3  Entries of closed owners are dropped at the thread's next tm_get
 *      miss (those whose id is no longer listed) or at its exit, so a
 *      table holds at most the owners open at the last miss plus one.
 *  T4  The user's one-entry cache holds one of this thread's entries, so
 *      T1 holds for it too; on_exit drops it (thread_exit below runs before
 *      the thread's later key destructors, which may call the user again).
 */
#include "util/tls_map.h"

#include <stdatomic.h>
#include <stdlib.h>

struct tm_ent {
	void *owner;
	uint64_t id;
	void *val;
};

/* One thread's entries for one map (T1). */
struct tm_table {
	struct tls_map *map;
	unsigned n, cap;
	struct tm_ent *ent;
};

/* relaxed: uniqueness is all an id needs */
static _Atomic uint64_t next_id = 1;

static bool live_has(const struct tls_map *map, uint64_t id)
{
	for (size_t i = 0; i < map->nlive; i++)
		if (map->live[i] == id)
			return true;
	return false;
}

/* The key destructor: hand every value of a still open owner back (T2). */
static void thread_exit(void *arg)
{
	struct tm_table *t = arg;
	struct tls_map *map = t->map;
	pthread_mutex_lock(&map->lock);
	for (unsigned i = 0; i < t->n; i++)
		if (live_has(map, t->ent[i].id))
			map->on_exit(t->ent[i].owner, t->ent[i].val);
	pthread_mutex_unlock(&map->lock);
	free(t->ent);
	free(t);
}

int tm_open(struct tls_map *map, uint64_t *id)
{
	pthread_mutex_lock(&map->lock);
	if (!map->key_made) {
		if (pthread_key_create(&map->key, thread_exit) != 0) {
			pthread_mutex_unlock(&map->lock);
			return -1;
		}
		map->key_made = true;
	}
	if (map->nlive == map->caplive) {
		size_t nc = map->caplive ? 2 * map->caplive : 16;
		uint64_t *p = realloc(map->live, nc * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&map->lock);
			return -1;
		}
		map->live = p;
		map->caplive = nc;
	}
	*id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
	map->live[map->nlive++] = *id;
	pthread_mutex_unlock(&map->lock);
	return 0;
}

void tm_close(struct tls_map *map, const void *owner, uint64_t id)
{
	pthread_mutex_lock(&map->lock);
	for (size_t i = 0; i < map->nlive; i++)
		if (map->live[i] == id) {
			map->live[i] = map->live[--map->nlive];
			break;
		}
	pthread_mutex_unlock(&map->lock);
	/* This thread's entry (T3 would drop it anyway; T1 makes it harmless). */
	struct tm_table *t = map->key_made ? pthread_getspecific(map->key) : NULL;
	for (unsigned i = 0; t && i < t->n; i++)
		if (t->ent[i].owner == owner && t->ent[i].id == id) {
			t->ent[i] = t->ent[--t->n];
			break;
		}
}

void *tm_get(struct tls_map *map, void *owner, uint64_t id, void *(*make)(void *owner))
{
	struct tm_table *t = pthread_getspecific(map->key);
	if (t) {
		for (unsigned i = 0; i < t->n; i++)
			if (t->ent[i].owner == owner && t->ent[i].id == id)
				return t->ent[i].val;
	} else {
		t = calloc(1, sizeof(*t));
		if (!t)
			return NULL;
		if (pthread_setspecific(map->key, t) != 0) {
			free(t);
			return NULL;
		}
		t->map = map;
	}
	/* T3: drop the entries of owners that were closed (their id is gone). */
	pthread_mutex_lock(&map->lock);
	for (unsigned i = 0; i < t->n;)
		if (!live_has(map, t->ent[i].id))
			t->ent[i] = t->ent[--t->n];
		else
			i++;
	pthread_mutex_unlock(&map->lock);
	if (t->n == t->cap) {
		unsigned nc = t->cap ? 2 * t->cap : 4;
		struct tm_ent *e = realloc(t->ent, nc * sizeof(*e));
		if (!e)
			return NULL;
		t->ent = e;
		t->cap = nc;
	}
	void *val = make(owner);
	if (val)
		t->ent[t->n++] = (struct tm_ent){owner, id, val};
	return val;
}
