/*
 * io.c — the POSIX file-operation table and the helpers built on it.
 *
 * No state: every function forwards to the kernel through the table it is
 * given, so a test table sees (and may fail or drop) every operation.
 */
#include "log/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cidstore.h"

static int px_open(void *ctx, int dirfd, const char *name, int flags, mode_t mode)
{
	(void)ctx;
	return openat(dirfd, name, flags | O_CLOEXEC, mode);
}

static ssize_t px_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	(void)ctx;
	return pwrite(fd, buf, n, off);
}

static ssize_t px_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
	(void)ctx;
	return pread(fd, buf, n, off);
}

static int px_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	return fdatasync(fd);
}

static int px_fsync(void *ctx, int fd)
{
	(void)ctx;
	return fsync(fd);
}

static int px_fallocate(void *ctx, int fd, off_t off, off_t len)
{
	(void)ctx;
	return fallocate(fd, 0, off, len);
}

static int px_ftruncate(void *ctx, int fd, off_t len)
{
	(void)ctx;
	return ftruncate(fd, len);
}

static int px_fsize(void *ctx, int fd, uint64_t *size)
{
	(void)ctx;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int px_rename(void *ctx, int dirfd, const char *from, const char *to)
{
	(void)ctx;
	return renameat(dirfd, from, dirfd, to);
}

static int px_unlink(void *ctx, int dirfd, const char *name)
{
	(void)ctx;
	return unlinkat(dirfd, name, 0);
}

static int px_close(void *ctx, int fd)
{
	(void)ctx;
	return close(fd);
}

static int px_fsync_dir(void *ctx, int dirfd)
{
	(void)ctx;
	return fsync(dirfd);
}

static const struct log_io posix_io = {
	.open = px_open,
	.pwrite = px_pwrite,
	.pread = px_pread,
	.fdatasync = px_fdatasync,
	.fsync = px_fsync,
	.fallocate = px_fallocate,
	.ftruncate = px_ftruncate,
	.fsize = px_fsize,
	.rename = px_rename,
	.unlink = px_unlink,
	.close = px_close,
	.fsync_dir = px_fsync_dir,
	.ctx = NULL,
};

const struct log_io *log_io_posix(void)
{
	return &posix_io;
}

int io_pwrite_all(const struct log_io *io, int fd, const void *buf, size_t n,
		  off_t off)
{
	io = io_or_posix(io);
	const char *p = buf;
	while (n > 0) {
		ssize_t w = io->pwrite(io->ctx, fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno ? -errno : -EIO;
		}
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

ssize_t io_pread_all(const struct log_io *io, int fd, void *buf, size_t n,
		     off_t off)
{
	io = io_or_posix(io);
	char *p = buf;
	size_t done = 0;
	while (done < n) {
		ssize_t r = io->pread(io->ctx, fd, p + done, n - done,
				      off + (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno ? -errno : -EIO;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int io_prezero(const struct log_io *io, int fd, off_t off, off_t len)
{
	io = io_or_posix(io);
	if (len <= 0)
		return 0;
	if (io->fallocate(io->ctx, fd, off, len) != 0) {
		/* Filesystems without fallocate: the zero writes below still
		 * allocate every block. */
		if (errno != EOPNOTSUPP && errno != ENOSYS)
			return errno ? -errno : -EIO;
	}
	const size_t chunk = 1u << 20;
	void *zero = calloc(1, chunk);
	if (!zero)
		return -ENOMEM;
	int rc = 0;
	while (len > 0 && rc == 0) {
		size_t n = (size_t)len < chunk ? (size_t)len : chunk;
		rc = io_pwrite_all(io, fd, zero, n, off);
		off += (off_t)n;
		len -= (off_t)n;
	}
	free(zero);
	return rc;
}

int io_errcode(int e)
{
	switch (e) {
	case ENOENT:
		return CIDSTORE_ENOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return CIDSTORE_EACCES;
	case ENOTDIR:
		return CIDSTORE_ENOTDIR;
	case ENOSPC:
	case EDQUOT:
		return CIDSTORE_ENOSPC;
	case ENOMEM:
		return CIDSTORE_ENOMEM;
	default:
		return CIDSTORE_EIO;
	}
}
