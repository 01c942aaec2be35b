/*
 * io.h — the log layer's file-operation table (layer 3).
 *
 * Every WAL and checkpoint file operation goes through a struct log_io so
 * that tests can fail a write or a sync, or drop data that was written but
 * never synced (SQLite's test6.c idea), without touching the disk code.
 * log_io_posix() is the real thing.
 *
 * Convention: each operation behaves exactly like the POSIX call named
 * after it — it returns what the call returns (-1 on failure) and sets
 * errno.  Paths are always relative to a directory fd (the *at() calls).
 * A fault-injecting table normally wraps log_io_posix() and forwards to it.
 *
 * Thread-safety: the table is read-only after setup and may be used from any
 * thread; an injecting implementation synchronizes its own state.
 */
#ifndef CIDSTORE_LOG_IO_H
#define CIDSTORE_LOG_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct log_io {
	/* openat(dirfd, name, flags | O_CLOEXEC, mode) */
	int (*open)(void *ctx, int dirfd, const char *name, int flags, mode_t mode);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
	ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, off_t off);
	int (*fdatasync)(void *ctx, int fd);
	int (*fsync)(void *ctx, int fd);
	/* fallocate(fd, 0, off, len): mode 0 only */
	int (*fallocate)(void *ctx, int fd, off_t off, off_t len);
	int (*ftruncate)(void *ctx, int fd, off_t len);
	/* fstat(fd).st_size into *size */
	int (*fsize)(void *ctx, int fd, uint64_t *size);
	/* renameat(dirfd, from, dirfd, to) */
	int (*rename)(void *ctx, int dirfd, const char *from, const char *to);
	/* unlinkat(dirfd, name, 0) */
	int (*unlink)(void *ctx, int dirfd, const char *name);
	int (*close)(void *ctx, int fd);
	/* fsync of a directory fd: makes creations, renames, unlinks durable */
	int (*fsync_dir)(void *ctx, int dirfd);
	void *ctx; /* passed to every operation */
};

/* The POSIX implementation (ctx unused).  Static storage, never NULL. */
const struct log_io *log_io_posix(void);

/* Helpers used by WAL and checkpoint code (io == NULL means POSIX). */

/* Writes all n bytes at off, looping over short writes and EINTR.
 * Returns 0 or -errno (-EIO when the call wrote 0 bytes). */
int io_pwrite_all(const struct log_io *io, int fd, const void *buf, size_t n,
		  off_t off);

/* Reads up to n bytes at off, looping over short reads and EINTR; stops at
 * end of file.  Returns the byte count read (< n only at EOF) or -errno. */
ssize_t io_pread_all(const struct log_io *io, int fd, void *buf, size_t n,
		     off_t off);

/* Makes [off, off+len) allocated and zero on disk: fallocate, then write
 * zeros over it (so later overwrites do not convert unwritten extents at
 * fdatasync time).  Returns 0 or -errno.  Does not sync. */
int io_prezero(const struct log_io *io, int fd, off_t off, off_t len);

/* The cidstore error code for a failed file call's errno: ENOENT,
 * EACCES (EPERM and EROFS too: the caller may not write there), ENOTDIR,
 * ENOSPC (EDQUOT too: no room for this user), ENOMEM; anything else is
 * CIDSTORE_EIO. */
int io_errcode(int e);

/* The table to use: io itself, or log_io_posix() when io is NULL. */
static inline const struct log_io *io_or_posix(const struct log_io *io)
{
	return io ? io : log_io_posix();
}

#endif
