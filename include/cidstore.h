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
 *   | apply / sync / checkpoint /  |                                         |
 *   | get_options / retune /       |                                         |
 *   | maintain / metrics_prometheus|                                         |
 *   | / triple_* / term_*          |                                         |
 *   | close                        | nothing: no other call on the same      |
 *   |                              | store may be running or start after it  |
 *   | wal_read / verify            | anything (they take a path, no handle,  |
 *   |                              | and no lock)                            |
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
	CIDSTORE_ERDONLY = -8,  /* opened read_only, or failed earlier: refuses writes */
	CIDSTORE_ERANGE = -9,   /* a value does not fit (batch too large, ...) */
	CIDSTORE_ENOENT = -10,  /* the store directory does not exist (create_if_missing
				   false, or read_only) */
	CIDSTORE_EACCES = -11,  /* permission denied on the store directory or a file in it */
	CIDSTORE_ENOTDIR = -12, /* dir names something that is not a directory */
	CIDSTORE_ENOSPC = -13,  /* the disk is full: like EIO, the store is now read-only */
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
	/* "retune: yes" marks a field cidstore_retune may change on an open
	 * store; "retune: no" fields must stay as they are (cidstore_get_options
	 * gives them). */
	const char *dir;                  /* retune: no.  NULL: purely in-memory store */
	cidstore_durability_t durability; /* retune: yes, between ASYNC and SYNC only (no
					     log is created or dropped).  Default SYNC;
					     in-memory stores: NONE whatever is given */
	bool serialized;                  /* retune: no.  One global lock: scaling-demo
					     baseline */
	/* --- fields below may grow; always start from cidstore_options_init --- */
	uint64_t seed;                 /* retune: no.  Index-routing seed; 0: random per
					  store.  A store with a dir keeps the seed it
					  was created with (file META) */
	uint32_t ring_records;         /* retune: no.  WAL ring capacity in 128-byte
					  records (power of 2) */
	uint32_t sync_interval_ms;     /* retune: yes.  ASYNC: longest time a record
					  waits for fdatasync (0: 10) */
	uint64_t checkpoint_wal_bytes; /* retune: yes.  Automatic checkpoint when the
					  live log (stats.wal_bytes) reaches
					  max(this, the size of the newest
					  checkpoint file, stats.checkpoint_bytes);
					  0 = never.  Default 256 MiB.  The second
					  term keeps checkpoint work linear in the
					  data written: each checkpoint follows at
					  least as many log bytes as it writes, so
					  all checkpoints together write no more
					  than the log (a fixed threshold writes
					  the whole, growing store every N bytes:
					  quadratic); and recovery replays at most
					  max(this, one checkpoint) of log, so it
					  stays within about twice the time of
					  loading the checkpoint alone */
	uint64_t segment_bytes;        /* retune: no.  WAL segment file size
					  (preallocated) */
	unsigned recovery_threads;     /* retune: no.  Parallel replay; 0 = number of
					  cores */
	unsigned initial_depth;        /* retune: no.  At least 2^initial_depth index
					  groups at open (0 = smallest, max 20);
					  recovery presizes from the checkpoint */
	uint64_t expected_keys;        /* retune: no.  Presize the index for about this
					  many keys (0: start small; presizing stops
					  at ~500M keys).  Growth stays online either
					  way */
	bool read_only;                /* retune: no.  Open an existing store to read
					  it: no file is written, created or removed
					  and no lock is taken (so it works on a
					  directory the caller may only read, and
					  beside another process that has the store
					  open); the store holds the files' state at
					  open (a torn tail is skipped, not cut);
					  every write call returns CIDSTORE_ERDONLY.
					  A missing dir -> CIDSTORE_ENOENT.  In-memory
					  stores: EINVAL */
	bool create_if_missing;        /* retune: no.  Default true; false: a missing
					  dir -> CIDSTORE_ENOENT instead of a new
					  store */
	uint32_t maint_interval_ms;    /* retune: yes.  Background maintenance: the
					  store's maintenance thread runs a pass at
					  most this often, and only when values were
					  removed since its last complete pass; 0: no
					  automatic passes (cidstore_maintain still
					  runs one).  Default 1000 */
	uint32_t maint_budget_pct;     /* retune: yes.  CPU the background passes may
					  use, in percent of one core (1..100; 0:
					  the default, 10): a pass stops after
					  maint_interval_ms * pct / 100 of CPU time
					  (resuming at the next), and the thread
					  sleeps so that pass CPU time / wall time
					  stays within it */
	bool metrics;                  /* retune: no.  Default true: count calls by result and
					  error, time 1 lookup/insert in 256 and every
					  SYNC commit, per thread
					  (cidstore_metrics_prometheus); false:
					  record nothing (the gauges still read) */
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
	uint64_t spilled_keys;    /* keys whose values live in a value set (>= 2) */
	uint64_t buckets;         /* index groups (one cache line of 11 slots each) */
	unsigned global_depth;    /* the index table holds 2^depth groups */
	unsigned max_local_depth; /* = global_depth (kept for compatibility) */
	uint64_t splits;          /* groups migrated into a bigger table since open */
	uint64_t compactions;     /* value sets rebuilt (grown, or shrunk after deletes) */
	uint64_t dir_rebuilds;    /* table doublings since open */
	uint64_t retired_pending; /* objects retired but not yet freed (epoch garbage) */
	uint64_t memory_bytes;    /* bytes held by the index (tables, entries, value sets) */
	uint64_t epoch_records;   /* thread records registered with the store's epoch */
	/* durability (zero for in-memory stores) */
	cidstore_durability_t durability;
	uint64_t wal_lsn;          /* last LSN handed out */
	uint64_t wal_durable_lsn;  /* every record up to this LSN is on stable storage */
	uint64_t wal_bytes;        /* live log since the last checkpoint began: 128 B per
				      record (segment headers and zero fill not counted),
				      from open on including the records recovery found
				      after its checkpoint (what the next open replays) */
	uint64_t wal_fsyncs;       /* fdatasync calls of the log (group-commit leaders and
				      the flusher) */
	uint64_t wal_records;      /* records written since open */
	uint64_t checkpoints;      /* checkpoints written since open */
	uint64_t checkpoint_bytes; /* size of the newest checkpoint file: the last one
				      written, or the one recovery loaded at open; 0
				      without (the automatic checkpoint scales with it,
				      see checkpoint_wal_bytes) */
	bool serialized;
	bool failed;               /* true after an I/O failure: the store is read-only */
	char failure[128];         /* why, when failed is true ("" otherwise) */
	/* maintenance since open (the background thread and cidstore_maintain) */
	uint64_t maint_passes;          /* passes run (also those the CPU budget cut short) */
	uint64_t maint_entries_moved;   /* index entries moved out of sparse chunks */
	uint64_t maint_chunks_released; /* index entry chunks given back */
	uint64_t maint_bytes_released;  /* bytes the index gave back (chunks, tables) */
	uint64_t maint_tables_shrunk;   /* index tables replaced by a smaller one */
	uint64_t maint_groups_visited;  /* index groups the passes looked at */
	uint64_t maint_stale_cleaned;   /* stale entries the triple layer removed */
	uint64_t maint_purges;          /* times the allocator was asked to give freed
					   memory back to the OS */
	uint64_t maint_cpu_ns;          /* thread CPU time spent in passes */
} cidstore_stats_t;

/* Called once per key by cidstore_scan with the key's values (nvalues >= 1).
 * The arrays are valid only during the call.  A non-zero return stops the
 * scan; cidstore_scan then returns that value. */
typedef int (*cidstore_scan_fn)(const cid_t *key, const cid_t *values,
				size_t nvalues, void *ctx);

/* Opens the store in o->dir (created if missing unless create_if_missing is
 * false or read_only is set; recovered from its newest valid checkpoint plus
 * the log after it), or a purely in-memory store when o->dir is NULL, and
 * stores the handle in *out.  Only the last component of dir is created.
 * Returns 0; CIDSTORE_EINVAL (o or out NULL, empty dir, bad option:
 * durability not one of the enum, ring_records not a power of two >= 64,
 * initial_depth > 20, segment_bytes < 4096, read_only without dir);
 * CIDSTORE_ENOENT (dir, or its parent when it would be created, does not
 * exist); CIDSTORE_ENOTDIR (dir or a component of it is not a directory);
 * CIDSTORE_EACCES (permission denied on dir or a file in it: read_only
 * needs only read access); CIDSTORE_ENOSPC (the disk is full);
 * CIDSTORE_ENOMEM; CIDSTORE_EBUSY (the directory is open for writing in
 * this or another process; never for read_only);
 * CIDSTORE_ECORRUPT (a corrupt log record followed by valid ones, a missing
 * segment, no usable checkpoint); CIDSTORE_EVERSION (a file of a newer
 * format); CIDSTORE_EIO.  A torn last record is cut (read_only: skipped),
 * not an error.
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
 * or CIDSTORE_ENOSPC (the log failed, or failed earlier: the store refuses
 * writes from now on with that code; stats.failure says why),
 * CIDSTORE_ERDONLY (opened read_only).
 * Durability SYNC: returns after an fdatasync covering this change (or, when
 * nothing changed, everything logged before) completed; ASYNC: after the
 * record is in the log ring (on disk within sync_interval_ms).
 * Linearizable per key.  Thread-safe.  Waits for: writers of keys in the
 * same index group (a lock per cache line of 11 slots, held for a few
 * hundred instructions plus the log record's reservation), and, only while
 * the index doubles, for another thread's copy of a group it needs (11 slot
 * words).  Never for a whole table rebuild: growth is incremental and every
 * writer helps.  Serialized mode: the global lock. */
CIDSTORE_API int cidstore_insert(cidstore_t *s, const cid_t *key, const cid_t *val);

/* Removes val from key's set.  Returns 1 when removed, 0 when absent, or an
 * error as cidstore_insert.  Durability and waits: as cidstore_insert. */
CIDSTORE_API int cidstore_delete_value(cidstore_t *s, const cid_t *key, const cid_t *val);

/* Removes key and all its values.  Returns the number of values removed
 * (0 when the key was absent), or an error as cidstore_insert.  Durability
 * and waits: as cidstore_insert. */
CIDSTORE_API long cidstore_delete_key(cidstore_t *s, const cid_t *key);

/* Returns the number of values key holds at one instant and copies
 * min(count, cap) of them into out (in no particular order).  out may be
 * NULL only when cap == 0.  Returns CIDSTORE_EINVAL for bad arguments,
 * CIDSTORE_ENOMEM.  Lock-free and read-only: never waits for a writer,
 * never retries, no atomic read-modify-write (entries are immutable and
 * reclaimed through epochs).  Serialized mode: takes the global lock. */
CIDSTORE_API long cidstore_lookup(cidstore_t *s, const cid_t *key, cid_t *out, size_t cap);

/* Returns 1 when key holds val, 0 otherwise, CIDSTORE_EINVAL.  Lock-free
 * like cidstore_lookup. */
CIDSTORE_API int cidstore_contains(cidstore_t *s, const cid_t *key, const cid_t *val);

/* Batched lookups: many keys at once, their cache misses overlapped (the
 * index prefetches every key's group line, then every matching entry, before
 * reading any).  counts[i] = what cidstore_lookup(keys[i]) returns; out +
 * i * cap gets its first min(counts[i], cap) values (out may be NULL only
 * when cap == 0).  Each key's result is linearizable on its own; the batch
 * is not one snapshot.  Returns 0, CIDSTORE_EINVAL (NULL s, keys or counts
 * with n > 0, NULL out with cap > 0, n * cap overflowing), CIDSTORE_ENOMEM.
 * Lock-free like cidstore_lookup.  Serialized mode: the global lock. */
CIDSTORE_API int cidstore_lookup_many(cidstore_t *s, const cid_t *keys, size_t n, cid_t *out,
				      size_t cap, long *counts);

/* Batched inserts of the pairs (keys[i], vals[i]), their cache misses
 * overlapped.  Not atomic as a whole (cidstore_apply is): each pair is
 * linearizable on its own and other threads may see a prefix.  results
 * (may be NULL) gets what cidstore_insert would return for each pair.
 * Returns the number of pairs added, or the first error that stopped it
 * (CIDSTORE_EINVAL, CIDSTORE_ENOMEM, CIDSTORE_EIO, CIDSTORE_ENOSPC,
 * CIDSTORE_ERDONLY; pairs before it are in).
 * Durability SYNC: returns after one fdatasync covering every pair.
 * Waits for: as cidstore_insert, per pair. */
CIDSTORE_API long cidstore_insert_many(cidstore_t *s, const cid_t *keys, const cid_t *vals,
				       size_t n, int *results);

/* Receives the values of one key in chunks; a non-zero return stops. */
typedef int (*cidstore_values_fn)(const cid_t *values, size_t n, void *ctx);

/* Delivers every value of key, from one instant, to fn in chunks (for sets
 * too big for a buffer).  Returns the number of values delivered (0 when
 * the key is absent), fn's non-zero return as is, CIDSTORE_EINVAL,
 * CIDSTORE_ENOMEM.  fn runs inside the reader's epoch section: a slow fn
 * delays memory reclamation, never another thread; fn may call the store.
 * Lock-free: never waits for a writer.  Serialized mode: the global lock
 * (fn must not call the store then). */
CIDSTORE_API long cidstore_values(cidstore_t *s, const cid_t *key, cidstore_values_fn fn,
				  void *ctx);

/* Applies n operations as one crash-atomic batch (durable stores: after
 * recovery all or none of the batch is present).  Each operation is applied
 * in order and is linearizable on its own; other threads may observe a
 * prefix of the batch while it runs.  Returns the number of operations that
 * changed the store, CIDSTORE_EINVAL (NULL ops with n > 0, bad opcode),
 * CIDSTORE_EIO, CIDSTORE_ENOSPC, CIDSTORE_ERDONLY (as insert).  The log
 * frames the batch with TXN_START/TXN_COMMIT and recovery applies it only
 * when the commit record is on disk.  If an
 * operation fails midway (ENOMEM), the applied prefix is committed so that
 * memory and log agree, and the error is returned.
 * Waits for: group locks as insert; SYNC: the commit's fdatasync;
 * a checkpoint choosing its LSN (briefly). */
CIDSTORE_API int cidstore_apply(cidstore_t *s, const cidstore_op_t *ops, size_t n);

/* Makes every operation that returned before this call durable.  Returns 0
 * (also for in-memory and read_only stores, where there is nothing to do),
 * CIDSTORE_EIO, CIDSTORE_ENOSPC (the log failed: as insert).
 * Waits for: the flusher's fdatasync. */
CIDSTORE_API int cidstore_sync(cidstore_t *s);

/* Writes a checkpoint online (writers keep running), keeps the newest two
 * and deletes the log segments neither needs.  Returns 0, CIDSTORE_EIO or
 * CIDSTORE_ENOSPC (the store turns read-only), CIDSTORE_ERDONLY (failed
 * earlier, or opened read_only);
 * in-memory stores: CIDSTORE_ENOTSUP.  Checkpoints run one at a time.
 * Waits for: operations in progress (an epoch grace period), running
 * batches, the disk.  Also runs automatically when the log grows by
 * max(opts.checkpoint_wal_bytes, the newest checkpoint's size). */
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

/* What this build of the library is and which code paths it chose on this
 * CPU.  Every string is static and never NULL. */
typedef struct cidstore_build_info {
	const char *version;    /* CIDSTORE_VERSION_STRING of the library */
	const char *build_type; /* meson buildtype: "release", "debug", ... */
	const char *compiler;   /* e.g. "gcc 14.2.0" */
	const char *sanitizer;  /* "none", "thread", "address,undefined", ... */
	const char *allocator;  /* allocator the library was built for:
				   "jemalloc" or "system" */
	const char *ck_version; /* Concurrency Kit version built against */
	const char *sha256;     /* the SHA-256 kernel libcrypto runs on this CPU:
				   "SHA-NI", "AVX2", "AVX", "SSSE3", "x86_64",
				   "ARMv8-CE", "generic" */
	const char *crc32c;     /* the CRC32C kernel (ISA-L) and the CPU
				   features it keys on */
	bool debug_checks;      /* built with the expensive invariant checks */
	bool shake;             /* built with injected yields (testing only) */
	unsigned cores;         /* cores online now */
} cidstore_build_info_t;

/* Fills *out.  Returns 0 or CIDSTORE_EINVAL (NULL).  Thread-safe, never
 * waits. */
CIDSTORE_API int cidstore_build_info(cidstore_build_info_t *out);

/* ---------------------------------------------------------------------- */
/* Triples (DESIGN §10): a layer on the store's own calls                  */
/* ---------------------------------------------------------------------- */
/*
 * A triple (s, p, o) of CIDs is kept under composite keys of the same store:
 * the pair indexes SP->O (cid_composite(s, p, 0)), OS->P (r = 1) and
 * PO->S (r = 2), plus single-term sets for the patterns that fix one term
 * (src/triple/triple.c states the layout and how stale entries are
 * cleaned).  Do not write those composite keys with the plain calls.
 * Every pattern is answered from the pair indexes, so a match never
 * delivers a triple that is not stored.  All calls below are thread-safe
 * and may run beside every other call except cidstore_close.
 *
 * Concurrency: readers (match, count, term_get) take no lock.  Writers of
 * triples hold, while they change the index (never while they wait for the
 * disk), the layer's writer gate shared (a cleaning pass of stale
 * single-term entries holds it exclusively, briefly) and a room stripe
 * (1 of 4096, by a hash of the triple) that keeps an insert and a delete of
 * the same triple apart, so no triple is ever left in one pair index and
 * not the others.  Of calls storing (removing) the same triple at once,
 * exactly one returns 1.  A call that returns 0 because another call is
 * storing the same triple at that moment does not wait for that call's
 * batch: the triple is durable when that call returns.
 */
typedef struct cidstore_triple {
	cid_t s, p, o;
} cidstore_triple_t;

/* Stores t.  Returns 1 when added, 0 when it was already stored, or an
 * error as cidstore_apply.  Crash-atomic: after recovery t is in all three
 * pair indexes or in none (a single-term entry may survive alone: a stale
 * entry, never a wrong answer).  An error in the middle (ENOMEM) may leave
 * t partly stored until the call is repeated.  Durability and waits: as
 * cidstore_apply (SYNC: the commit's fdatasync), plus a running
 * stale-entry cleaning pass of the triple layer and a delete running in
 * the same room stripe (both brief). */
CIDSTORE_API int cidstore_triple_insert(cidstore_t *st, const cidstore_triple_t *t);

/* Stores n triples as one crash-atomic batch (all or none after a crash);
 * results (may be NULL) gets 1 or 0 per triple as cidstore_triple_insert (a
 * triple repeated in t: 1 for its first copy at most).  Returns the number
 * added, CIDSTORE_EINVAL (NULL st, NULL t with n > 0), CIDSTORE_ERANGE
 * (n > INT32_MAX / 7), CIDSTORE_ENOMEM (the call allocates about 0.5 KB
 * per triple for its batch), or an error as cidstore_apply.  Waits for: as
 * cidstore_triple_insert, for the n triples' room stripes. */
CIDSTORE_API long cidstore_triple_insert_many(cidstore_t *st, const cidstore_triple_t *t,
					      size_t n, int *results);

/* Removes t.  Returns 1 when removed, 0 when absent, or an error as
 * cidstore_apply.  Crash-atomic as insert.  Single-term entries are left
 * for a cleaning pass; when 1024 emptied pairs are queued, this call runs
 * one (unless one is running).  Waits for: as cidstore_triple_insert,
 * inserts running in t's room stripe, and, when it cleans, the triple
 * writers inside the gate. */
CIDSTORE_API int cidstore_triple_delete(cidstore_t *st, const cidstore_triple_t *t);

/* Receives one matching triple (valid during the call); non-zero stops. */
typedef int (*cidstore_triple_fn)(const cidstore_triple_t *t, void *ctx);

/* Calls fn for every stored triple matching (s, p, o), where a NULL term is
 * a wildcard, each once.  Every delivered triple was stored at some instant
 * during the call; one stored for the whole call is delivered.  Only the
 * all-wildcard pattern walks everything.  Returns 0 after the last, fn's
 * non-zero return when it stopped, CIDSTORE_EINVAL, CIDSTORE_ENOMEM.
 * Lock-free like cidstore_lookup; fn may call the store (also to write).
 * fn runs inside up to three nested reader sections of the index: a slow
 * fn delays memory reclamation, never another thread. */
CIDSTORE_API int cidstore_triple_match(cidstore_t *st, const cid_t *s, const cid_t *p,
				       const cid_t *o, cidstore_triple_fn fn, void *ctx);

/* The number of stored triples matching (s, p, o) (NULL: wildcard),
 * counted without copying value sets, or CIDSTORE_EINVAL / CIDSTORE_ENOMEM.
 * While writers run it lies between the triples stored for the whole call
 * and those stored at some instant of it (each index key is counted at its
 * own instant).  Costs as match without delivering: SP?, S?O, ?PO one
 * lookup; S??, ?P?, ??O one per term of the single-term set.
 * Lock-free like cidstore_lookup. */
CIDSTORE_API long cidstore_triple_count(cidstore_t *st, const cid_t *s, const cid_t *p,
					const cid_t *o);

/* Term dictionary: the text of a term (any byte string, any length below
 * 4 GiB) under its CID = cid_sha256(text), durable with the store under the
 * same crash rules as every other write (each text is kept once, in
 * 32-byte chunks of the key cid_composite(cid, 0, 7): 32 B per 28 B of
 * text).  *out (may be NULL) gets the CID.  text may be NULL when len == 0.
 * Returns 1 when this call stored the text (of racing puts of one text
 * exactly one), 0 when it was already known, CIDSTORE_EINVAL,
 * CIDSTORE_ERANGE (len >= 2^32), or an error as cidstore_apply.
 * Crash-atomic.  Waits for: as cidstore_apply. */
CIDSTORE_API int cidstore_term_put(cidstore_t *st, const void *text, size_t len, cid_t *out);

/* n terms in one crash-atomic batch; out (may be NULL) gets n CIDs.
 * texts[i] may be NULL only when lens[i] == 0; a text repeated in the call
 * is stored once.  Returns the number of texts this call stored,
 * CIDSTORE_EINVAL (nothing stored), CIDSTORE_ERANGE (a text of 4 GiB or
 * more, or more than INT32_MAX chunks in all), or an error as
 * cidstore_apply. */
CIDSTORE_API long cidstore_term_put_many(cidstore_t *st, const void *const *texts,
					 const size_t *lens, size_t n, cid_t *out);

/* Copies min(len, cap) bytes of the text stored under cid into buf (buf
 * may be NULL when cap == 0).  Returns the text's length, 0 when the term
 * is unknown (also while its first put is still running; the empty text
 * reads as 0 too), CIDSTORE_EINVAL, CIDSTORE_ENOMEM, CIDSTORE_ECORRUPT
 * (the stored chunks contradict each other; buf is then left unwritten).
 * Reads the chunks at one instant (cidstore_values) and copies them once.
 * Lock-free like cidstore_lookup. */
CIDSTORE_API long cidstore_term_get(cidstore_t *st, const cid_t *cid, void *buf, size_t cap);

/* ---------------------------------------------------------------------- */
/* Operations (DESIGN §11)                                                 */
/* ---------------------------------------------------------------------- */

/* Writes the store's metrics in the Prometheus text exposition format
 * 0.0.4 into buf: min(len, cap - 1) bytes and a NUL (nothing when cap is
 * 0; buf may be NULL then, to ask for the length).  Returns len, the
 * length the whole text needs without the NUL (>= cap: buf holds a
 * truncated text, call again with a bigger buf; the text may grow a little
 * between two calls while the store changes), or CIDSTORE_EINVAL (s NULL,
 * buf NULL with cap > 0).  The names: docs (README, operations).  Call
 * counts are exact when no call runs; each is read as of some instant and
 * never goes down.  Thread-safe.  Merges the per-thread counters without a
 * lock and walks the index like cidstore_stats (O(keys)); waits for: the
 * WAL's segment-list mutex (briefly, for the segment count). */
CIDSTORE_API long cidstore_metrics_prometheus(cidstore_t *s, char *buf, size_t cap);

/* Fills *out with the options in effect now: one snapshot, as given at
 * open or by the last cidstore_retune (out->dir points at the store's own
 * copy of the path, valid until cidstore_close; seed is the store's own
 * seed for a store with a dir, as given otherwise; durability is NONE for
 * an in-memory store).  Start a retune from it.  Returns 0 or
 * CIDSTORE_EINVAL (NULL).  Thread-safe, lock-free: never waits. */
CIDSTORE_API int cidstore_get_options(cidstore_t *s, cidstore_options_t *out);

/* Replaces the options in effect with *o atomically: every operation reads
 * the options once, so it runs under the old or the new ones, never a mix.
 * Only the fields marked "retune: yes" in cidstore_options_t may differ
 * from the current ones (start from cidstore_get_options); any other
 * differing field (dir compared as a string), a durability change that
 * would create or drop the log (NONE <-> ASYNC/SYNC; an in-memory store
 * stays NONE), or an invalid value -> CIDSTORE_EINVAL and nothing changes.
 * Switching ASYNC -> SYNC: when the call returns, every write that has
 * returned (or returns later) is durable — writes still running under
 * ASYNC are waited for and the log is synced once — and every later write
 * waits for its own fdatasync.  A new sync_interval_ms reaches the log's
 * flusher at once; new maintenance settings and checkpoint_wal_bytes reach
 * the maintenance thread at once.
 * Returns 0, CIDSTORE_EINVAL, CIDSTORE_ENOMEM (nothing changed),
 * CIDSTORE_ERDONLY (opened read_only), or — ASYNC -> SYNC only — the log's
 * failure (CIDSTORE_EIO / CIDSTORE_ENOSPC: the new options are in effect
 * but the earlier writes could not be made durable).
 * Thread-safe.  Waits for: other retunes; operations that read the old
 * options and are still running (a write's index change and log append,
 * not its fdatasync); ASYNC -> SYNC: one fdatasync. */
CIDSTORE_API int cidstore_retune(cidstore_t *s, const cidstore_options_t *o);

/* Runs one complete maintenance pass now, in the caller's thread, while
 * other threads keep reading and writing (no pause, no lock they wait
 * for): the index moves live entries out of sparse entry chunks and gives
 * the chunks back, replaces a table that deletes left sparse by a smaller
 * one and compacts value sets; the triple layer removes its stale entries;
 * a durable store takes the automatic checkpoint when one is due; and the
 * allocator is asked to give freed memory back to the OS (jemalloc: purge
 * every arena; the system allocator: malloc_trim).  The background thread
 * runs the same pass, bounded by maint_budget_pct.  Results show in
 * cidstore_stats (maint_*).
 * Returns 0, CIDSTORE_EINVAL (NULL), CIDSTORE_ENOMEM, CIDSTORE_ERDONLY
 * (opened read_only), or the error of the checkpoint it took (CIDSTORE_EIO,
 * CIDSTORE_ENOSPC).  Must not be called from a callback of the triple
 * layer's cleaning.  Waits for: another maintenance pass (one runs at a
 * time), a checkpoint it takes (see cidstore_checkpoint), an epoch grace
 * period. */
CIDSTORE_API int cidstore_maintain(cidstore_t *s);

/* ---------------------------------------------------------------------- */
/* Store directory inspection (read-only)                                  */
/* ---------------------------------------------------------------------- */
/*
 * These calls read the files of a store directory (WAL segments
 * wal-<LSN>.log and checkpoints ckpt-<LSN>.ckpt) with the validation code
 * recovery uses, and change nothing: no file is written, cut, created or
 * removed, and the directory's LOCK is not taken.  So they also work on a
 * directory that a store (in this or another process) has open; the
 * result is then a snapshot of files that are being written: the newest
 * segment's tail may look torn (a record being appended), and a segment or
 * checkpoint removed by a concurrent checkpoint gives CIDSTORE_EIO.  A
 * record appended while the log is read is never reported as damage: when
 * a valid record shows up after the end of the log, the end slot is read
 * again and reading goes on if the writer has filled it; a segment the
 * directory listing missed is looked for again.  On a closed store the
 * answer is exact.  Both calls are thread-safe (no shared state) and
 * wait for the disk only.
 */

/* The kinds of WAL record (the on-disk opcodes). */
typedef enum cidstore_wal_op {
	CIDSTORE_WAL_INSERT = 1,         /* key, value */
	CIDSTORE_WAL_DELETE_VALUE = 2,   /* key, value */
	CIDSTORE_WAL_DELETE_KEY = 3,     /* key (value zero) */
	CIDSTORE_WAL_TXN_START = 4,      /* a batch (cidstore_apply) begins: txn */
	CIDSTORE_WAL_TXN_COMMIT = 5,     /* ... and is complete: txn */
	CIDSTORE_WAL_TXN_ABORT = 6,      /* ... and is dropped: txn */
	CIDSTORE_WAL_CHECKPOINT = 7,     /* checkpoint marker */
	CIDSTORE_WAL_SEGMENT_HEADER = 8, /* record 0 of every segment file */
} cidstore_wal_op_t;

/* "insert", "delete_value", "delete_key", "txn_start", "txn_commit",
 * "txn_abort", "checkpoint", "segment_header"; "unknown" for any other op.
 * Static strings, never NULL.  Thread-safe, never waits. */
CIDSTORE_API const char *cidstore_wal_op_name(int op);

/* One valid WAL record. */
typedef struct cidstore_wal_record {
	uint64_t segment; /* first LSN of the segment file = its name (wal-<16 hex>.log) */
	uint64_t offset;  /* byte offset of the record in that file (0: the header) */
	uint64_t lsn;     /* SEGMENT_HEADER: the segment's first LSN (a header uses none) */
	int op;           /* cidstore_wal_op_t */
	unsigned flags;   /* bit 0: part of a transaction (txn != 0) */
	uint64_t txn;     /* transaction id (the LSN of its TXN_START), 0 if none */
	uint64_t wall_ns; /* hybrid time: ns since the epoch (CLOCK_REALTIME, never goes back) */
	uint16_t shard;   /* hybrid time: shard id */
	uint32_t seq;     /* hybrid time: sequence within one ns */
	cid_t key;        /* SEGMENT_HEADER: w[0] magic "CIDSWAL1", w[1] format version,
			     w[2] segment size in bytes */
	cid_t value;      /* zero for DELETE_KEY, TXN_*, SEGMENT_HEADER */
} cidstore_wal_record_t;

/* Called by cidstore_wal_read for each record; rec is valid only during the
 * call.  A non-zero return stops reading and is returned by
 * cidstore_wal_read. */
typedef int (*cidstore_wal_fn)(const cidstore_wal_record_t *rec, void *ctx);

typedef struct cidstore_wal_summary {
	uint64_t segments;  /* segment files read */
	uint64_t records;   /* valid records read (headers excluded; also those
			       before from_lsn) */
	uint64_t first_lsn; /* first LSN of the oldest segment (0 without one) */
	uint64_t last_lsn;  /* LSN of the last valid record (first_lsn - 1 when the
			       log holds none, 0 without segments) */
	uint64_t bytes;     /* total size of the segment files read */
	int torn;           /* 1: the newest segment ends in a torn write */
	uint64_t torn_segment, torn_offset; /* where (segment = its first LSN) */
	/* batches (cidstore_apply), with recovery's bookkeeping: a batch whose
	 * TXN_START lies in a segment already removed counts with the
	 * operations still in the log */
	uint64_t txn_committed, txn_committed_ops;   /* TXN_COMMIT read */
	uint64_t txn_aborted, txn_aborted_ops;       /* TXN_ABORT read */
	uint64_t txn_unfinished, txn_unfinished_ops; /* neither: recovery drops them */
	char message[256];  /* on error: the file, the offset and why */
} cidstore_wal_summary_t;

/* Reads every WAL segment of the store directory dir, oldest first (also
 * those a checkpoint already covers), and validates every record exactly
 * as recovery does.  fn (may be NULL: only validate and count) is called
 * in LSN order for each valid record with lsn >= from_lsn, and for each
 * segment header whose first LSN >= from_lsn (op SEGMENT_HEADER), as it is
 * read: when an error is found later, the records before it have been
 * delivered.  out (may be NULL) gets the summary, also on error.
 * A torn tail of the newest segment (a write cut by a crash) is reported
 * in out->torn and is not an error: recovery would cut it.
 * Returns 0; fn's non-zero return when it stopped the reading;
 * CIDSTORE_ECORRUPT (a bad record followed by valid ones, a bad record or
 * header in an older segment, an LSN gap inside or between segments:
 * out->message names the file and offset); CIDSTORE_EVERSION (a file of a
 * newer format); CIDSTORE_EINVAL (dir NULL or empty); CIDSTORE_ENOENT (dir
 * missing); CIDSTORE_ENOTDIR; CIDSTORE_EACCES (out->message says which);
 * CIDSTORE_EIO (a read failed); CIDSTORE_ENOMEM.  Changes nothing, takes
 * no lock (see above).
 * Thread-safe.  Waits for: the disk. */
CIDSTORE_API int cidstore_wal_read(const char *dir, uint64_t from_lsn, cidstore_wal_fn fn,
				   void *ctx, cidstore_wal_summary_t *out);

typedef struct cidstore_verify_result {
	int have_checkpoint;        /* recovery would load a checkpoint */
	int checkpoint_fallback;    /* ... not the newest one (that one is corrupt),
				       or none although checkpoint files exist */
	uint64_t checkpoint_lsn;    /* the loaded checkpoint's LSN (0 without) */
	uint64_t checkpoint_keys, checkpoint_values;
	uint64_t checkpoints;       /* checkpoint files present */
	uint64_t segments;          /* segment files recovery reads (from the one
				       holding checkpoint_lsn + 1) */
	uint64_t records;           /* valid records in them (headers excluded) */
	uint64_t last_lsn;          /* the last valid LSN: the store goes on after it */
	int torn;                   /* 1: a torn tail recovery would cut */
	uint64_t torn_segment, torn_offset; /* where (segment = its first LSN) */
	uint64_t txn_committed;     /* batches recovery would apply */
	uint64_t txn_dropped;       /* batches aborted or never committed */
	char message[256];          /* on error: the file, the offset and why */
} cidstore_verify_result_t;

/* Checks that the store directory dir would recover, without changing it
 * or loading anything, and answers what cidstore_open would: META is read
 * and checked as open reads it; every checkpoint recovery would try is read and
 * CRC-checked (newest first, falling back from a corrupt one exactly as
 * recovery does), and every WAL segment recovery needs is validated record
 * by record, with the transaction bookkeeping of replay.  out must not be
 * NULL; it is filled also on error.
 * Returns 0 (the directory would recover; a torn tail is reported in
 * out->torn, not an error; an empty directory is a valid empty store);
 * CIDSTORE_ECORRUPT (a corrupt META, a bad record followed by valid ones
 * or in an older segment, an LSN gap, a missing segment, a segment shorter
 * than its header says, no usable checkpoint, a log that ends before a
 * checkpoint's end LSN); CIDSTORE_EVERSION (a file of a newer format);
 * CIDSTORE_EINVAL (dir or out NULL, dir empty); CIDSTORE_ENOENT,
 * CIDSTORE_ENOTDIR, CIDSTORE_EACCES (dir missing, not a directory, not
 * readable); CIDSTORE_EIO; CIDSTORE_ENOMEM.  out->message says why, naming
 * the file and offset.  Changes nothing, takes no lock (see above).
 * Thread-safe.  Waits for: the disk. */
CIDSTORE_API int cidstore_verify(const char *dir, cidstore_verify_result_t *out);

#ifdef __cplusplus
}
#endif
#endif /* CIDSTORE_H */
