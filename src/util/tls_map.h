/*
 * tls_map.h — "this thread x this owner" -> a per-thread value, without a
 * registration call, released when the thread exits.  Internal; below every
 * layer (it knows nothing of its users).
 *
 * An owner is an object that many threads use (an epoch domain, a store's
 * metrics) and that gives each thread its own value (an epoch record, a
 * block of counters).  A tls_map is one kind of owner: statically allocated
 * by its user (TLS_MAP_INIT) with the callback that hands a thread's value
 * back to its owner when the thread exits.  An owner gets a never-reused
 * 64-bit id at open (tm_open) and gives it up at close (tm_close); each
 * thread keeps a table of (owner pointer, id) -> value.
 *
 * The user keeps its own one-entry initial-exec TLS cache in front (inline,
 * checked on every call) and calls tm_get only when it misses; tm_get is
 * the slow path: it looks in this thread's table and, at a thread's first
 * use of an owner, calls the user's make callback.  Invariants and
 * synchronization: the top of tls_map.c.
 *
 *   | call              | may run with                                  |
 *   |-------------------|-----------------------------------------------|
 *   | tm_open           | everything                                    |
 *   | tm_get(owner)     | everything but tm_close of that owner         |
 *   | thread exit       | everything, tm_close of its owners included   |
 *   | tm_close(owner)   | everything but tm_get of that owner           |
 */
#ifndef CIDSTORE_UTIL_TLS_MAP_H
#define CIDSTORE_UTIL_TLS_MAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_map {
	/* Thread exit: hands val, this thread's value for owner, back to
	 * owner.  Called only while owner is open (its id listed), holding the
	 * map's lock, so tm_close of owner waits for it; it may take owner's
	 * own locks.  It runs in a pthread key destructor: it must also drop
	 * the user's one-entry cache, as later destructors of this thread may
	 * still call the user (a new value is then made, and released again). */
	void (*on_exit)(void *owner, void *val);
	/* Synchronization: immutable once set (key_made: set under lock before
	 * the first id is listed; every tm_get follows its owner's tm_open). */
	bool key_made;
	pthread_key_t key;            /* destructor: this thread's table */
	pthread_mutex_t lock;         /* the live ids (and key creation) */
	uint64_t *live;               /* Synchronization: lock */
	size_t nlive, caplive;        /* Synchronization: lock */
};

#define TLS_MAP_INIT(exit_fn) \
	{ .on_exit = (exit_fn), .lock = PTHREAD_MUTEX_INITIALIZER }

/* Gives an owner opening now its id (never 0, never reused, unique across
 * every map of the process) in *id and lists it live.  0, or -1 when out
 * of memory (nothing listed). */
int tm_open(struct tls_map *map, uint64_t *id);

/* The owner of id closes: unlists id (from now on no exiting thread calls
 * on_exit for it; one running now finishes first) and drops the calling
 * thread's entry for it.  Other threads' entries for it are dropped lazily
 * (their next tm_get miss, or their exit).  Call before freeing what the
 * values point into. */
void tm_close(struct tls_map *map, const void *owner, uint64_t id);

/* This thread's value for (owner, id), or, at its first use of the owner,
 * make(owner)'s result (NULL: out of memory, nothing recorded).  The slow
 * path behind the user's one-entry cache, which it does not touch. */
void *tm_get(struct tls_map *map, void *owner, uint64_t id, void *(*make)(void *owner));

#endif
