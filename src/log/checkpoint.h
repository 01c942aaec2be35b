/*
 * checkpoint.h — checkpoint files: write (streaming, from a scan) and read
 * (streaming, into an apply callback) (layer 3).  Internal.
 *
 * The file format and its validity rule are documented at the top of
 * checkpoint.c.  A checkpoint named ckpt-<L>.ckpt holds a state S such that
 * S + replay of every WAL record with LSN > L gives the state at the end of
 * the log.  Replay ops are set operations (insert / delete a pair, delete a
 * key), each idempotent, so a *fuzzy* snapshot taken while writers run is
 * fine as long as the scan starts after every record <= L took effect in
 * memory, and the WAL is durable up to end_lsn (the last LSN handed out
 * when the scan finished) before ckpt_commit renames the file into place.
 *
 * Synchronization: one checkpointer per directory at a time (ckpt_prune,
 * run by ckpt_commit, removes every *.tmp).  A ckpt_writer_t belongs to
 * one thread at a time; ckpt_add is called from that thread only (idx_scan calls
 * its callback on the calling thread).  ckpt_read reads on the calling
 * thread; ckpt_load adds helper threads of its own (joined before
 * it returns); different files (or the same file) may be read by several
 * threads at once.
 * Every file operation goes through the struct log_io passed in (NULL:
 * POSIX).
 */
#ifndef CIDSTORE_LOG_CHECKPOINT_H
#define CIDSTORE_LOG_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cidstore.h"

struct log_io;

#define CKPT_MAGIC "CIDSCKP1"          /* header, bytes 0..7 */
#define CKPT_TRAILER_MAGIC "CIDSCKPE"  /* trailer, bytes 0..7 */
#define CKPT_FORMAT_VERSION 1u
#define CKPT_HEADER_BYTES 64u
#define CKPT_TRAILER_BYTES 64u
#define CKPT_BLOCK_HDR_BYTES 16u
#define CKPT_BLOCK_BYTES 65536u        /* block header + payload, at most */
#define CKPT_NAME_LEN 26u              /* "ckpt-" + 16 hex + ".ckpt" */
#define CKPT_KEEP 2u                   /* checkpoints kept by ckpt_commit */

/* What a checkpoint file says about itself. */
struct ckpt_info {
	uint32_t version;  /* format version of the file */
	uint64_t lsn;      /* start LSN: replay every record with LSN > lsn */
	uint64_t end_lsn;  /* WAL was durable up to here when it was committed */
	uint64_t keys;     /* distinct keys */
	uint64_t values;   /* (key, value) pairs */
	uint64_t blocks;   /* data blocks */
	uint64_t bytes;    /* file size */
	char msg[192];     /* on error: what is wrong, with file and offset */
};

typedef struct ckpt_writer ckpt_writer_t;

/* Writes "ckpt-<16 hex>.ckpt" and a NUL. */
void ckpt_name(char out[CKPT_NAME_LEN + 1], uint64_t lsn);

/* Starts checkpoint lsn in the directory dirfd: creates (truncating) the
 * temporary file ckpt-<lsn>.ckpt.tmp.  Returns 0 and *out, CIDSTORE_EINVAL,
 * CIDSTORE_ENOMEM, or the io_errcode of the failed call (CIDSTORE_ENOSPC,
 * CIDSTORE_EACCES, CIDSTORE_EIO, ...; "an I/O error" below); on error
 * info->msg (info may be NULL) names the call, the file and the errno. */
int ckpt_begin(int dirfd, const struct log_io *io, uint64_t lsn,
	       ckpt_writer_t **out, struct ckpt_info *info);

/* Why the writer failed ("" while it has not): the call, the file and the
 * errno text of the first error.  Valid until ckpt_commit / ckpt_abort. */
const char *ckpt_writer_msg(const ckpt_writer_t *w);

/* Adds one key with n >= 1 values (values of one key must come in one call;
 * each key at most once per checkpoint).  Returns 0, CIDSTORE_EINVAL
 * (n == 0, NULL), an I/O error (a write failed: the writer is failed and
 * every later call returns the same error; call ckpt_abort). */
int ckpt_add(ckpt_writer_t *w, const cid_t *key, const cid_t *values, size_t n);

/* ckpt_add in the shape of cidstore_scan_fn (ctx is the writer), so a
 * checkpoint can be fed straight from idx_scan(ix, ckpt_add_fn, w). */
int ckpt_add_fn(const cid_t *key, const cid_t *values, size_t n, void *w);

/* Finishes the file: last block, trailer, header with the final counts and
 * end_lsn (>= the lsn of ckpt_begin), fdatasync, rename to ckpt-<lsn>.ckpt,
 * fsync of the directory; then removes all but the newest CKPT_KEEP
 * checkpoints (best effort: a failure there is not reported, the
 * checkpoint is durable).  Frees w in every case; on failure the temporary
 * file is removed.  *info (may be NULL) gets the file's header fields.
 * The caller must have made the WAL durable through end_lsn first:
 * recovery treats a log that ends before a checkpoint's end LSN as lost
 * records (CIDSTORE_ECORRUPT).  With no log (DURABILITY_NONE) pass
 * end_lsn == lsn.  Returns 0, CIDSTORE_EINVAL, an I/O error (info->msg says
 * which call on which file failed, and why; CIDSTORE_EIO
 * when the rename or the directory sync failed: that leaves either the old
 * or the new file under the final name, both complete; treat any as a
 * failed store).
 * Waits for: the disk. */
int ckpt_commit(ckpt_writer_t *w, uint64_t end_lsn, struct ckpt_info *info);

/* Drops an unfinished checkpoint: closes and removes the temporary file,
 * frees w.  NULL is ignored. */
void ckpt_abort(ckpt_writer_t *w);

/* A producer in the shape of idx_scan: calls emit(key, values, n, emit_ctx)
 * for every key; returns 0, or emit's non-zero return / a negative error. */
typedef int (*ckpt_source_fn)(void *src, cidstore_scan_fn emit, void *emit_ctx);

/* ckpt_begin + source(src, ckpt_add_fn, w) + ckpt_commit(end_lsn = lsn):
 * for a source that does not change during the scan (tests, tools).
 * Returns 0 or the first error (the temporary file is then removed). */
int ckpt_write(int dirfd, const struct log_io *io, uint64_t lsn,
	       ckpt_source_fn source, void *src, struct ckpt_info *info);

/* Reads and checks the header of checkpoint `name` in dirfd.  Returns 0,
 * CIDSTORE_ECORRUPT (short file, bad magic or CRC, LSN not the one in the
 * name, end_lsn < lsn), CIDSTORE_EVERSION (valid header of a newer format),
 * CIDSTORE_EIO, CIDSTORE_EINVAL.  info->msg says why on error. */
int ckpt_read_header(int dirfd, const struct log_io *io, const char *name,
		     struct ckpt_info *info);

/* Reads the whole checkpoint and calls apply(key, values, n, ctx) for each
 * stored entry, in file order.  A key with more values than fit in one
 * block (about 2000) comes in several calls, each with a part of its
 * values; every call adds values (apply is never asked to remove any).
 * apply == NULL only verifies.  Every block is checked before any of its
 * entries is applied, but a corrupt later block is found only after earlier
 * blocks were applied: a caller that must not see a partial checkpoint
 * verifies first (apply == NULL) or discards what it loaded on error.
 * Returns 0; CIDSTORE_ECORRUPT (truncated, bad CRC or framing, counts that
 * disagree, bytes after the trailer); CIDSTORE_EVERSION; CIDSTORE_EIO;
 * CIDSTORE_ENOMEM; or apply's non-zero return (reading stops).
 * info (may be NULL) gets the header fields and msg. */
int ckpt_read(int dirfd, const struct log_io *io, const char *name,
	      cidstore_scan_fn apply, void *ctx, struct ckpt_info *info);

/* Called once the header has passed its checks and before the first entry
 * (info then holds the header fields: lsn, end_lsn, keys, values), so one
 * open and one read of the header serve both the caller's sizing and the
 * load.  A non-zero return stops reading and is returned. */
typedef int (*ckpt_header_fn)(const struct ckpt_info *info, void *ctx);

/* One stored entry as the parallel loader delivers it: key and its n
 * values (pointers valid during the callback only; on a little-endian host
 * they point into the loader's read buffer, 8-byte aligned: no copy).
 * cont: a continuation of a key whose values span several entries (the key
 * was counted at its first entry, which may be delivered on another thread,
 * before or after this one: values are a set, so the order does not
 * matter). */
struct ckpt_entry {
	const cid_t *key;
	const cid_t *vals;
	uint32_t n;
	bool cont;
};

/* Called by several loader threads at once, each with up to CKPT_LOAD_BATCH
 * entries of one block in file order; must be thread-safe.  A non-zero
 * return stops loading and is returned. */
typedef int (*ckpt_batch_fn)(void *ctx, const struct ckpt_entry *e, size_t n);

#define CKPT_LOAD_BATCH 32u
#define CKPT_LOAD_CHUNK (4u << 20) /* bytes a loader reads per turn */

struct ckpt_load_args {
	unsigned threads;      /* loaders: the caller + threads - 1 helpers (0, 1: the caller) */
	uint32_t chunk_bytes;  /* bytes read per turn, >= CKPT_BLOCK_BYTES (0: CKPT_LOAD_CHUNK) */
	ckpt_header_fn on_header; /* may be NULL; on the caller's thread */
	ckpt_batch_fn apply;   /* NULL: verify only */
	void *ctx;
};

/* ckpt_read by several threads: blocks are independent (each has its own
 * header and CRC), so loaders take turns reading the next chunk of whole
 * blocks under a mutex (framing and sequence numbers are assigned there,
 * in file order) and check, decode and deliver their blocks in parallel.
 * Same validity rule, return values and info as ckpt_read; when several
 * blocks are bad, the error reported is the one at the lowest offset (every
 * block before it was checked and delivered, as in a sequential read).
 * Entries arrive in no particular order across threads; with one thread,
 * in file order (ckpt_read is that case).
 * Waits for: the disk, its helper threads (all joined before it returns). */
int ckpt_load(int dirfd, const struct log_io *io, const char *name,
	      const struct ckpt_load_args *args, struct ckpt_info *info);

/* Removes all but the newest `keep` checkpoints and any *.tmp left by a
 * crashed ckpt_begin, then fsyncs the directory if it removed anything.
 * *oldest_kept (may be NULL) = LSN of the oldest checkpoint kept, or 0 if
 * none: WAL segments whose records are all <= it are no longer needed by
 * any kept checkpoint.  Returns 0, CIDSTORE_EIO, CIDSTORE_ENOMEM. */
int ckpt_prune(int dirfd, const struct log_io *io, unsigned keep,
	       uint64_t *oldest_kept);

#endif
