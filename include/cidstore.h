/*
 * cidstore.h — public API of libcidstore.
 *
 * cidstore maps 256-bit keys (content identifiers, usually SHA-256 digests)
 * to *sets* of 256-bit values.  Any number of threads may call any function
 * on one store at the same time unless a function says otherwise; no thread
 * needs to register.  Lookups never block and never wait for a writer.
 *
 * Conventions for every function below:
 *   - a negative return value is an error code (CIDSTORE_E*); use
 *     cidstore_strerror() for a message;
 *   - a NULL or otherwise invalid argument gives CIDSTORE_EINVAL, never a crash;
 *   - "waits for" lists everything the call may block on.  A call that says
 *     "never waits" is lock-free: it completes in a bounded number of its own
 *     steps unless other threads keep completing operations on the same key.
 *
 * Thread-safety summary (which calls may run at the same time on one store):
 *
 *   | call                         | concurrent with                         |
 *   |------------------------------|-----------------------------------------|
 *   | insert / delete_* / lookup / | each other and themselves, any number   |
 *   | contains / scan / stats /    | of threads                              |
 *   | apply / sync / checkpoint    |                                         |
 *   | close                        | nothing: no other call on the same      |
 *   |                              | store may be running or start after it  |
 */
#ifndef CIDSTORE_H
#define CIDSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CIDSTORE_BUILDING) && defined(__GNUC__)
#define CIDSTORE_API __attribute__((visibility("default")))
#else
#define CIDSTORE_API
#endif

#define CIDSTORE_VERSION_MAJOR 0
#define CIDSTORE_VERSION_MINOR 1
#define CIDSTORE_VERSION_PATCH 0
#define CIDSTORE_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------- */
/* Error codes                                                             */
/* ---------------------------------------------------------------------- */
enum {
	CIDSTORE_OK = 0,
	CIDSTORE_EINVAL = -1,   /* NULL pointer, bad size, malformed hex, bad option */
	CIDSTORE_ENOMEM = -2,   /* allocation failed; the store is unchanged */
	CIDSTORE_EIO = -3,      /* an I/O call failed; the store is now read-only */
	CIDSTORE_ECORRUPT = -4, /* a file failed its checksum or structure check */
	CIDSTORE_EVERSION = -5, /* a file was written by a newer format version */
	CIDSTORE_EBUSY = -6,    /* the store directory is open elsewhere */
	CIDSTORE_ENOTSUP = -7,  /* not supported by this build / configuration */
	CIDSTORE_ERDONLY = -8,  /* the store failed earlier and refuses writes */
	CIDSTORE_ERANGE = -9,   /* a value does not fit (batch too large, ...) */
};

/* ---------------------------------------------------------------------- */
/* Layer 1: identifiers.  Pure functions: thread-safe, never wait.         */
/* ---------------------------------------------------------------------- */

/* A 256-bit identifier.  w[0] is the most significant word ("high"), then
 * high_mid, low_mid, w[3] least significant ("low"). */
typedef struct {
	uint64_t w[4];
} cid_t;

/* Parses exactly 64 hex digits (either case, most significant first, no
 * prefix, nothing after them).  Returns 0, or CIDSTORE_EINVAL when hex or
 * out is NULL, the string is shorter or longer than 64 characters, or holds
 * a non-hex character; *out is left unchanged on error. */
CIDSTORE_API int cid_from_hex(const char *hex, cid_t *out);

/* Writes 64 lowercase hex digits and a terminating NUL into out.  Does
 * nothing when c or out is NULL. */
CIDSTORE_API void cid_to_hex(const cid_t *c, char out[65]);

/* SHA-256 of len bytes at data; digest bytes are read big-endian into
 * w[0..3], so cid_to_hex() prints the usual sha256sum hex.  data may be NULL
 * only when len == 0.  Does nothing when out is NULL (or data is NULL with
 * len > 0). */
CIDSTORE_API void cid_sha256(const void *data, size_t len, cid_t *out);

/* A well-mixed 256-bit key combining a and b for index role r (triples use
 * r = 0 for SP->O, 1 for OS->P, 2 for PO->S).  Deterministic, sensitive to
 * the order of a and b and to r; one flipped input bit flips about half of
 * the output bits.  Either pointer NULL gives the all-zero cid. */
CIDSTORE_API cid_t cid_composite(const cid_t *a, const cid_t *b, unsigned r);

/* ---------------------------------------------------------------------- */
/* The store                                                               */
/* ---------------------------------------------------------------------- */
typedef struct cidstore cidstore_t;

typedef enum {
	CIDSTORE_DURABILITY_NONE = 0,  /* no log */
	CIDSTORE_DURABILITY_ASYNC = 1, /* logged; flushed within sync_interval_ms */
	CIDSTORE_DURABILITY_SYNC = 2,  /* call returns after its record is on disk */
} cidstore_durability_t;

typedef struct cidstore_options {
	const char *dir;                  /* NULL: purely in-memory store */
	cidstore_durability_t durability; /* default SYNC; ignored when dir == NULL */
	bool serialized;                  /* one global lock: scaling-demo baseline */
	/* --- fields below may grow; always start from cidstore_options_init --- */
	uint64_t seed;                 /* bucket-routing seed; 0: random per store.  A
					  store with a dir keeps the seed it was
					  created with (file META) */
	uint32_t ring_records;         /* WAL ring capacity in 128-byte records (power of 2) */
	uint32_t sync_interval_ms;     /* ASYNC: longest time a record waits for fdatasync */
	uint64_t checkpoint_wal_bytes; /* automatic checkpoint when the log passes this; 0 = never */
	uint64_t segment_bytes;        /* WAL segment file size (preallocated) */
	unsigned recovery_threads;     /* parallel replay; 0 = number of cores */
	unsigned initial_depth;        /* initial directory depth (0 = one bucket, max 20);
					  recovery presizes from the checkpoint */
} cidstore_options_t;

/* Fills *o with every default.  Thread-safe, never waits.  NULL is ignored. */
CIDSTORE_API void cidstore_options_init(cidstore_options_t *o);

/* One operation of a batch (cidstore_apply). */
typedef enum {
	CIDSTORE_OP_INSERT = 1,
	CIDSTORE_OP_DELETE_VALUE = 2,
	CIDSTORE_OP_DELETE_KEY = 3,
} cidstore_opcode_t;

typedef struct cidstore_op {
	cidstore_opcode_t op;
	cid_t key;
	cid_t value; /* ignored for CIDSTORE_OP_DELETE_KEY */
} cidstore_op_t;

typedef struct cidstore_stats {
	uint64_t keys;            /* keys holding at least one value */
	uint64_t values;          /* (key, value) pairs */
	uint64_t spilled_keys;    /* keys whose values live in a value set (>= 3) */
	uint64_t buckets;         /* live buckets */
	unsigned global_depth;    /* directory depth (directory has 2^depth entries) */
	unsigned max_local_depth; /* deepest bucket */
	uint64_t splits;          /* bucket splits since open */
	uint64_t compactions;     /* same-depth bucket rebuilds (dead slots dropped) */
	uint64_t dir_rebuilds;    /* directory doublings and rebuilds since open */
	uint64_t retired_pending; /* objects retired but not yet freed (epoch garbage) */
	uint64_t memory_bytes;    /* bytes held by the index (buckets, sets, directory) */
	uint64_t epoch_records;   /* thread records registered with the store's epoch */
	/* durability (zero for in-memory stores) */
	cidstore_durability_t durability;
	uint64_t wal_lsn;          /* last LSN handed out */
	uint64_t wal_durable_lsn;  /* every record up to this LSN is on stable storage */
	uint64_t wal_bytes;        /* bytes in the live log since the last checkpoint */
	uint64_t wal_fsyncs;       /* fdatasync calls made by the flusher */
	uint64_t wal_records;      /* records written since open */
	uint64_t checkpoints;      /* checkpoints written since open */
	bool serialized;
	bool failed;               /* true after an I/O failure: the store is read-only */
	char failure[128];         /* why, when failed is true ("" otherwise) */
} cidstore_stats_t;

/* Called once per key by cidstore_scan with the key's values (nvalues >= 1).
 * The arrays are valid only during the call.  A non-zero return stops the
 * scan; cidstore_scan then returns that value. */
typedef int (*cidstore_scan_fn)(const cid_t *key, const cid_t *values,
				size_t nvalues, void *ctx);

/* Opens the store in o->dir (created if missing; recovered from its newest
 * valid checkpoint plus the log after it), or a purely in-memory store when
 * o->dir is NULL, and stores the handle in *out.
 * Returns 0; CIDSTORE_EINVAL (o or out NULL, empty dir, bad option:
 * durability not one of the enum, ring_records not a power of two >= 64,
 * initial_depth > 20, segment_bytes < 4096); CIDSTORE_ENOMEM;
 * CIDSTORE_EBUSY (the directory is open in this or another process);
 * CIDSTORE_ECORRUPT (a corrupt log record followed by valid ones, a missing
 * segment, no usable checkpoint); CIDSTORE_EVERSION (a file of a newer
 * format); CIDSTORE_EIO.  A torn last record is cut, not an error.
 * Thread-safety: any thread.  Waits for: the disk during recovery (replay
 * runs on opts.recovery_threads threads). */
CIDSTORE_API int cidstore_open(const cidstore_options_t *o, cidstore_t **out);

/* Flushes (durable stores), stops background threads and frees everything.
 * No other call on s may be running or start once close has begun: closing
 * a store other threads still use is undefined, as for free().  Durable
 * stores: the log is flushed and fdatasync'd; with DURABILITY_NONE a final
 * checkpoint is written (it is the only copy).
 * Returns 0, CIDSTORE_EINVAL for NULL, or the first I/O error met while
 * flushing (the store is freed anyway).  Safe in an atexit handler.
 * Waits for: the flusher and checkpoint threads to stop, the disk. */
CIDSTORE_API int cidstore_close(cidstore_t *s);

/* Adds val to key's set.  Returns 1 when added, 0 when the pair was already
 * there, CIDSTORE_EINVAL, CIDSTORE_ENOMEM (store unchanged), CIDSTORE_EIO
 * (the log failed: the store is read-only from now on).
 * Durability SYNC: returns after an fdatasync covering this change (or, when
 * nothing changed, everything logged before) completed; ASYNC: after the
 * record is in the log ring (on disk within sync_interval_ms).
 * Linearizable per key.  Thread-safe.  Waits for: another writer of the same
 * key (a per-key lock bit, held for a few hundred instructions), and, only
 * while its bucket is being split, for writers of that bucket that are in
 * their own per-key critical section.  Serialized mode: the global lock. */
CIDSTORE_API int cidstore_insert(cidstore_t *s, const cid_t *key, const cid_t *val);

/* Removes val from key's set.  Returns 1 when removed, 0 when absent,
 * CIDSTORE_EINVAL, CIDSTORE_ENOMEM.  Waits for: as cidstore_insert. */
CIDSTORE_API int cidstore_delete_value(cidstore_t *s, const cid_t *key, const cid_t *val);

/* Removes key and all its values.  Returns the number of values removed
 * (0 when the key was absent), CIDSTORE_EINVAL.  Waits for: as insert. */
CIDSTORE_API long cidstore_delete_key(cidstore_t *s, const cid_t *key);

/* Returns the number of values key holds at one instant and copies
 * min(count, cap) of them into out (in no particular order).  out may be
 * NULL only when cap == 0.  Returns CIDSTORE_EINVAL for bad arguments,
 * CIDSTORE_ENOMEM.  Lock-free: never waits for a writer (it retries only if
 * a writer completed a change to this key during the read).  Serialized
 * mode: takes the global lock. */
CIDSTORE_API long cidstore_lookup(cidstore_t *s, const cid_t *key, cid_t *out, size_t cap);

/* Returns 1 when key holds val, 0 otherwise, CIDSTORE_EINVAL.  Lock-free
 * like cidstore_lookup. */
CIDSTORE_API int cidstore_contains(cidstore_t *s, const cid_t *key, const cid_t *val);

/* Applies n operations as one crash-atomic batch (durable stores: after
 * recovery all or none of the batch is present).  Each operation is applied
 * in order and is linearizable on its own; other threads may observe a
 * prefix of the batch while it runs.  Returns the number of operations that
 * changed the store, CIDSTORE_EINVAL (NULL ops with n > 0, bad opcode),
 * CIDSTORE_EIO.  The log frames the batch with TXN_START/TXN_COMMIT and
 * recovery applies it only when the commit record is on disk.  If an
 * operation fails midway (ENOMEM), the applied prefix is committed so that
 * memory and log agree, and the error is returned.
 * Waits for: per-key locks as insert; SYNC: the commit's fdatasync;
 * a checkpoint choosing its LSN (briefly). */
CIDSTORE_API int cidstore_apply(cidstore_t *s, const cidstore_op_t *ops, size_t n);

/* Makes every operation that returned before this call durable.  Returns 0
 * (also for in-memory stores, where there is nothing to do), CIDSTORE_EIO.
 * Waits for: the flusher's fdatasync. */
CIDSTORE_API int cidstore_sync(cidstore_t *s);

/* Writes a checkpoint online (writers keep running), keeps the newest two
 * and deletes the log segments neither needs.  Returns 0, CIDSTORE_EIO
 * (the store turns read-only), CIDSTORE_ERDONLY (failed earlier);
 * in-memory stores: CIDSTORE_ENOTSUP.  Checkpoints run one at a time.
 * Waits for: operations in progress (an epoch grace period), running
 * batches, the disk.  Also runs automatically when the log grows by
 * opts.checkpoint_wal_bytes. */
CIDSTORE_API int cidstore_checkpoint(cidstore_t *s);

/* Calls fn for every key with its values while writers keep running.  Each
 * key's values are a snapshot of that key at one instant; keys inserted or
 * deleted during the scan may or may not be visited; a key present for the
 * whole scan is visited exactly once.  Returns 0 after the last key, fn's
 * non-zero return when it stopped the scan, CIDSTORE_EINVAL, CIDSTORE_ENOMEM.
 * fn must not call cidstore_close on s; it may call any other function.
 * Lock-free: never waits for writers. */
CIDSTORE_API int cidstore_scan(cidstore_t *s, cidstore_scan_fn fn, void *ctx);

/* Fills *out.  Counts are exact when no writer runs, approximate otherwise.
 * Returns 0 or CIDSTORE_EINVAL.  Lock-free (walks the table like scan). */
CIDSTORE_API int cidstore_stats(cidstore_t *s, cidstore_stats_t *out);

/* A static message for an error code (never NULL). */
CIDSTORE_API const char *cidstore_strerror(int err);

/* The library's version string (CIDSTORE_VERSION_STRING of the build). */
CIDSTORE_API const char *cidstore_version(void);

#ifdef __cplusplus
}
#endif
#endif /* CIDSTORE_H */
