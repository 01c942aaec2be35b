/*
 * dir.h — the store directory: creation, the LOCK file, directory fsync and
 * the sorted listing of log segments and checkpoints (layer 3).  Internal.
 *
 * A store directory holds
 *   LOCK                      empty file; flock(LOCK_EX) while a store is open
 *   wal-<16 hex LSN>.log      WAL segments (record.h), named by first LSN
 *   ckpt-<16 hex LSN>.ckpt    checkpoints (checkpoint.c), named by start LSN
 *   *.tmp                     a checkpoint being written (never read)
 *
 * Synchronization: an sdir_t is owned by the store that opened it; its
 * functions may be called from any thread (they only read the handle).
 * The in-process registry of open directories (dir.c) is guarded by its own
 * mutex.  The listing functions take a directory fd and no lock: they are also used
 * by read-only tools (verify, wal dump) on a directory that may be in use.
 */
#ifndef CIDSTORE_LOG_DIR_H
#define CIDSTORE_LOG_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cidstore.h"

struct log_io;

typedef struct sdir sdir_t;

#define SDIR_CREATE 0x1u   /* create the directory when it does not exist */
#define SDIR_READONLY 0x2u /* open to read only: no lock, nothing created */

#define SDIR_LOCK_NAME "LOCK"
#define SDIR_NAME_MAX 64u /* longest file name the store itself creates, + NUL */

/* Opens the store directory at path and takes its lock.
 * SDIR_CREATE: a missing directory is created (mode 0755; only the last
 * path component — the parent must exist) and the parent directory is
 * fsync'd so the new entry is durable.  The LOCK file is created if
 * missing (and the directory fsync'd).
 * SDIR_READONLY (overrides SDIR_CREATE): the directory must exist and be
 * readable; no lock is taken, no file created, and the in-process registry
 * is not consulted (a reader may open a directory a writer holds).
 * Returns 0 and *out; CIDSTORE_EINVAL (NULL, empty path, path too long);
 * CIDSTORE_ENOENT (missing without SDIR_CREATE, or its parent missing);
 * CIDSTORE_ENOTDIR; CIDSTORE_EACCES; CIDSTORE_ENOSPC; CIDSTORE_EBUSY
 * (another process holds the lock, or this process already has the
 * directory open — checked by (st_dev, st_ino) before flock, since a
 * second flock from this process on a new descriptor would also conflict,
 * but only by accident of the lock model); CIDSTORE_EIO (another failure
 * of mkdir/open/fsync); CIDSTORE_ENOMEM.
 * Thread-safe; waits for the registry mutex only (never for the lock: the
 * flock is non-blocking). */
int sdir_open(const char *path, unsigned flags, sdir_t **out);

/* Releases the lock and frees d.  NULL is ignored.  No other call on d may
 * run or start. */
void sdir_close(sdir_t *d);

/* The path d was opened with (owned by d). */
const char *sdir_path(const sdir_t *d);

/* A descriptor of the directory itself (O_RDONLY|O_DIRECTORY), owned by d. */
int sdir_fd(const sdir_t *d);

/* fsync of the directory at path (io may be NULL: plain syscalls), to make
 * a create, rename or unlink in it durable.  Returns 0 or CIDSTORE_EIO
 * (sdir_sync_path: the io_errcode of a failed open). */
int sdir_sync_path(const char *path, const struct log_io *io);
int sdir_sync(const sdir_t *d, const struct log_io *io);
int sdir_sync_fd(int dirfd, const struct log_io *io);

/* Writes "<dir>/<name>" into buf (cap bytes).  Returns 0 or
 * CIDSTORE_EINVAL when it does not fit. */
int sdir_join(char *buf, size_t cap, const char *dir, const char *name);

/* Parses exactly prefix + 16 lowercase hex digits + suffix; returns 0 and
 * *lsn, or CIDSTORE_EINVAL. */
int sdir_parse_name(const char *name, const char *prefix, const char *suffix,
		    uint64_t *lsn);

/* One file of a listing. */
typedef struct sdir_entry {
	uint64_t lsn;              /* the LSN in the name */
	char name[SDIR_NAME_MAX];  /* file name (no directory) */
} sdir_entry_t;

typedef struct sdir_list {
	sdir_entry_t *v; /* sorted by lsn, ascending; malloc'd */
	size_t n;
} sdir_list_t;

/* Lists the WAL segments (rec_seg_parse names) / checkpoints (ckpt names,
 * not *.tmp) in the directory dirfd (not moved: a dup is read), sorted by
 * LSN ascending.  Other
 * files are ignored.  Returns 0 (possibly n == 0), CIDSTORE_EINVAL,
 * the io_errcode of a failed opendir, CIDSTORE_EIO (readdir failed), CIDSTORE_ENOMEM.  Free with
 * sdir_list_free (also safe on a zeroed list). */
int sdir_list_segments(int dirfd, sdir_list_t *out);
int sdir_list_checkpoints(int dirfd, sdir_list_t *out);
/* Temporary checkpoint files (ckpt-<16 hex>.ckpt.tmp). */
int sdir_list_tmp(int dirfd, sdir_list_t *out);
void sdir_list_free(sdir_list_t *l);

#endif
