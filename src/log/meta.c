/*
 * meta.c — the META file (format and rules: meta.h).
 */
#include "log/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "cidstore.h"
#include "log/dir.h"
#include "log/io.h"
#include "log/record.h"
#include "util/le.h"

#define META_BYTES 40u

static int meta_write(int dirfd, const struct log_io *io, uint64_t seed)
{
	uint8_t b[META_BYTES] = {0};
	memcpy(b, "CIDSMETA", 8);
	le_put32(b + 8, META_VERSION);
	le_put32(b + 12, META_BYTES);
	le_put64(b + 16, seed);
	le_put32(b + 36, rec_crc32c(b, 36));
	int fd = io->open(io->ctx, dirfd, META_NAME ".tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return io_errcode(errno);
	int rc = io_pwrite_all(io, fd, b, sizeof(b), 0); /* -errno */
	if (!rc && io->fsync(io->ctx, fd) != 0)
		rc = -errno;
	io->close(io->ctx, fd);
	if (!rc && io->rename(io->ctx, dirfd, META_NAME ".tmp", META_NAME) != 0)
		rc = -errno;
	if (!rc && io->fsync_dir(io->ctx, dirfd) != 0)
		rc = -errno;
	return rc ? io_errcode(-rc) : 0;
}

int meta_read(int dirfd, const struct log_io *io, uint64_t *seed)
{
	io = io_or_posix(io);
	int fd = io->open(io->ctx, dirfd, META_NAME, O_RDONLY, 0);
	if (fd < 0)
		return io_errcode(errno);
	uint8_t b[4096];
	ssize_t n = io_pread_all(io, fd, b, sizeof(b), 0);
	io->close(io->ctx, fd);
	if (n < 0)
		return io_errcode((int)-n);
	if (n < 16 || memcmp(b, "CIDSMETA", 8) != 0)
		return CIDSTORE_ECORRUPT;
	uint32_t version = le_get32(b + 8), size = le_get32(b + 12);
	if (version > META_VERSION && size >= 16 && size <= (uint32_t)n &&
	    rec_crc32c(b, size - 4) == le_get32(b + size - 4))
		return CIDSTORE_EVERSION;
	if (version != META_VERSION || size != META_BYTES || n != META_BYTES ||
	    rec_crc32c(b, 36) != le_get32(b + 36))
		return CIDSTORE_ECORRUPT;
	*seed = le_get64(b + 16);
	return 0;
}

int meta_seed(int dirfd, const struct log_io *io, uint64_t *seed)
{
	io = io_or_posix(io);
	int rc = meta_read(dirfd, io, seed);
	return rc == CIDSTORE_ENOENT ? meta_write(dirfd, io, *seed) : rc;
}
