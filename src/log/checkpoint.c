/*
 * checkpoint.c — checkpoint files.
 *
 * FORMAT (every integer little-endian; CRC = CRC-32C as rec_crc32c)
 *
 *   ckpt-<16 hex start LSN>.ckpt, written as ckpt-<LSN>.ckpt.tmp first.
 *
 *   HEADER, 64 bytes
 *     0   8  magic "CIDSCKP1"
 *     8   4  format version (u32; this build writes and reads 1)
 *     12  4  header size in bytes (u32; 64 in version 1)
 *     16  8  start LSN: every WAL record with LSN > this must be replayed
 *     24  8  end LSN (>= start): the WAL was durable up to here at commit
 *     32  8  key count
 *     40  8  value count ((key, value) pairs)
 *     48  4  block size limit (u32, header + payload; 65536)
 *     52  8  reserved, zero
 *     60  4  CRC of bytes 0 .. header size - 5
 *   The CRC sits at the end of the header whatever its size, and the first
 *   16 bytes keep their meaning in every version, so a reader checks the
 *   CRC before it trusts the version: a flipped version byte is corruption
 *   (ECORRUPT), a well-formed header of a newer version is EVERSION.
 *
 *   BLOCKS, each at most 65536 bytes
 *     0   4  tag "CKBL"
 *     4   4  payload length (u32, <= 65536 - 16)
 *     8   4  block sequence number (u32: 0, 1, 2, ...)
 *     12  4  CRC of bytes 0..11 and the payload
 *     16  .  payload: entries, each
 *              key (32: w[0..3] as u64) | count n (u32, >= 1) |
 *              flags (u32, zero) | n values (32 each)
 *            an entry never spans blocks; a key with too many values for
 *            one block is split into several entries (counted once as a key:
 *            the first entry of a key has flags 0, continuations flag 1).
 *
 *   TRAILER, 64 bytes
 *     0   8  magic "CIDSCKPE"
 *     8   8  start LSN (again)
 *     16  8  block count
 *     24  8  key count
 *     32  8  value count
 *     40  8  entry count
 *     48  8  bytes of all blocks
 *     56  4  reserved, zero
 *     60  4  CRC of bytes 0..59
 *
 * VALIDITY RULE: a checkpoint is valid when its header CRC holds, its
 * version is known, its LSN equals the one in the file name, its blocks
 * follow with consecutive sequence numbers and good CRCs, the trailer
 * follows the last block with a good CRC, every count in header and
 * trailer equals what the blocks hold, and the file ends right after the
 * trailer.  Anything else is CIDSTORE_ECORRUPT (never skipped): a torn or
 * truncated file has no trailer.
 *
 * ORDER OF WRITES AND SYNCS: blocks and trailer are written to the .tmp
 * file, then the final header over the placeholder at offset 0; fdatasync;
 * rename to the final name; fsync of the directory.  Only after that is the
 * checkpoint used by recovery, and only then are older checkpoints (beyond
 * CKPT_KEEP) and the WAL it covers removed.  A crash before the rename
 * leaves a .tmp that nobody reads (ckpt_prune removes it).
 */
#include "log/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/dir.h"
#include "log/io.h"
#include "log/record.h"
#include "util/le.h"

#define CKPT_BLOCK_TAG "CKBL"
#define CKPT_ENTRY_HDR 40u /* key + count + flags */
#define CKPT_PAYLOAD_MAX (CKPT_BLOCK_BYTES - CKPT_BLOCK_HDR_BYTES)
#define CKPT_FLAG_CONT 1u
#define CKPT_HEADER_MAX 4096u /* largest header a future version may have */
#define CKPT_TMP_SUFFIX ".tmp"

void ckpt_name(char out[CKPT_NAME_LEN + 1], uint64_t lsn)
{
	snprintf(out, CKPT_NAME_LEN + 1, "ckpt-%016llx.ckpt", (unsigned long long)lsn);
}

/* ---------------------------------------------------------------------- */
/* Writing                                                                 */
/* ---------------------------------------------------------------------- */

struct ckpt_writer {
	const struct log_io *io;
	int dirfd;
	int fd;
	int err;          /* sticky: first error */
	char msg[128];    /* why, for err: the call, the file, the errno text */
	uint64_t lsn;
	uint64_t off;     /* next write offset */
	uint64_t keys, values, entries, blocks, block_bytes;
	uint32_t fill;    /* payload bytes in buf */
	char tmp[CKPT_NAME_LEN + sizeof(CKPT_TMP_SUFFIX)];
	char name[CKPT_NAME_LEN + 1];
	uint8_t buf[CKPT_BLOCK_BYTES]; /* block header + payload */
};

static void ckpt_encode_header(uint8_t h[CKPT_HEADER_BYTES], uint32_t version,
			       uint64_t lsn, uint64_t end_lsn, uint64_t keys,
			       uint64_t values)
{
	memset(h, 0, CKPT_HEADER_BYTES);
	memcpy(h, CKPT_MAGIC, 8);
	le_put32(h + 8, version);
	le_put32(h + 12, CKPT_HEADER_BYTES);
	le_put64(h + 16, lsn);
	le_put64(h + 24, end_lsn);
	le_put64(h + 32, keys);
	le_put64(h + 40, values);
	le_put32(h + 48, CKPT_BLOCK_BYTES);
	le_put32(h + 60, rec_crc32c(h, CKPT_HEADER_BYTES - 4));
}

/* Makes the writer failed (sticky) by errno e of `call`, keeping the first
 * reason.  Returns the error code (a full disk answers ENOSPC). */
static int ckpt_fail(ckpt_writer_t *w, int e, const char *call, const char *file)
{
	if (!w->err) {
		w->err = io_errcode(e);
		snprintf(w->msg, sizeof(w->msg), "%s %s: %s", call, file, strerror(e));
	}
	return w->err;
}

static int ckpt_write_at(ckpt_writer_t *w, const void *p, size_t n, uint64_t off)
{
	if (w->err)
		return w->err;
	int rc = io_pwrite_all(w->io, w->fd, p, n, (off_t)off);
	if (rc != 0)
		ckpt_fail(w, -rc, "write", w->tmp);
	return w->err;
}

const char *ckpt_writer_msg(const ckpt_writer_t *w)
{
	return w && w->err ? w->msg : "";
}

static int ckpt_flush_block(ckpt_writer_t *w)
{
	if (w->fill == 0)
		return w->err;
	uint8_t *b = w->buf;
	memcpy(b, CKPT_BLOCK_TAG, 4);
	le_put32(b + 4, w->fill);
	le_put32(b + 8, (uint32_t)w->blocks);
	uint32_t crc = rec_crc32c(b, 12);
	crc = rec_crc32c_extend(crc, b + CKPT_BLOCK_HDR_BYTES, w->fill);
	le_put32(b + 12, crc);
	size_t n = CKPT_BLOCK_HDR_BYTES + w->fill;
	int rc = ckpt_write_at(w, b, n, w->off);
	w->off += n;
	w->block_bytes += n;
	w->blocks++;
	w->fill = 0;
	return rc;
}

int ckpt_begin(int dirfd, const struct log_io *io, uint64_t lsn,
	       ckpt_writer_t **out, struct ckpt_info *info)
{
	if (info != NULL)
		info->msg[0] = '\0';
	if (dirfd < 0 || out == NULL)
		return CIDSTORE_EINVAL;
	ckpt_writer_t *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return CIDSTORE_ENOMEM;
	w->io = io_or_posix(io);
	w->dirfd = dirfd;
	w->lsn = lsn;
	ckpt_name(w->name, lsn);
	snprintf(w->tmp, sizeof(w->tmp), "%s%s", w->name, CKPT_TMP_SUFFIX);
	w->fd = w->io->open(w->io->ctx, dirfd, w->tmp,
			    O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (w->fd < 0) {
		int e = errno;
		if (info != NULL)
			snprintf(info->msg, sizeof(info->msg), "create %s: %s", w->tmp, strerror(e));
		free(w);
		return io_errcode(e);
	}
	/* Placeholder header (bad CRC until ckpt_commit rewrites it): a crash
	 * leaves a .tmp that would fail the header check even if renamed. */
	uint8_t h[CKPT_HEADER_BYTES];
	memset(h, 0, sizeof(h));
	memcpy(h, CKPT_MAGIC, 8);
	ckpt_write_at(w, h, sizeof(h), 0);
	w->off = CKPT_HEADER_BYTES;
	if (w->err) {
		int err = w->err;
		if (info != NULL)
			snprintf(info->msg, sizeof(info->msg), "%s", w->msg);
		ckpt_abort(w);
		return err;
	}
	*out = w;
	return 0;
}

int ckpt_add(ckpt_writer_t *w, const cid_t *key, const cid_t *values, size_t n)
{
	if (w == NULL || key == NULL || values == NULL || n == 0)
		return CIDSTORE_EINVAL;
	if (w->err)
		return w->err;
	uint32_t flags = 0;
	while (n > 0) {
		if (CKPT_PAYLOAD_MAX - w->fill < CKPT_ENTRY_HDR + 32) {
			if (ckpt_flush_block(w) != 0)
				return w->err;
		}
		size_t room = (CKPT_PAYLOAD_MAX - w->fill - CKPT_ENTRY_HDR) / 32;
		size_t take = n < room ? n : room;
		uint8_t *p = w->buf + CKPT_BLOCK_HDR_BYTES + w->fill;
		le_put_cid(p, key);
		le_put32(p + 32, (uint32_t)take);
		le_put32(p + 36, flags);
		p += CKPT_ENTRY_HDR;
		for (size_t i = 0; i < take; i++, p += 32)
			le_put_cid(p, &values[i]);
		w->fill += (uint32_t)(CKPT_ENTRY_HDR + 32 * take);
		w->entries++;
		w->values += take;
		values += take;
		n -= take;
		flags = CKPT_FLAG_CONT;
	}
	w->keys++;
	return 0;
}

int ckpt_add_fn(const cid_t *key, const cid_t *values, size_t n, void *w)
{
	return ckpt_add(w, key, values, n);
}

void ckpt_abort(ckpt_writer_t *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		w->io->close(w->io->ctx, w->fd);
	w->io->unlink(w->io->ctx, w->dirfd, w->tmp);
	free(w);
}

int ckpt_commit(ckpt_writer_t *w, uint64_t end_lsn, struct ckpt_info *info)
{
	if (w == NULL)
		return CIDSTORE_EINVAL;
	if (end_lsn < w->lsn) {
		ckpt_abort(w);
		return CIDSTORE_EINVAL;
	}
	ckpt_flush_block(w);

	uint8_t t[CKPT_TRAILER_BYTES];
	memset(t, 0, sizeof(t));
	memcpy(t, CKPT_TRAILER_MAGIC, 8);
	le_put64(t + 8, w->lsn);
	le_put64(t + 16, w->blocks);
	le_put64(t + 24, w->keys);
	le_put64(t + 32, w->values);
	le_put64(t + 40, w->entries);
	le_put64(t + 48, w->block_bytes);
	le_put32(t + 60, rec_crc32c(t, 60));
	ckpt_write_at(w, t, sizeof(t), w->off);
	w->off += sizeof(t);

	uint8_t h[CKPT_HEADER_BYTES];
	ckpt_encode_header(h, CKPT_FORMAT_VERSION, w->lsn, end_lsn, w->keys, w->values);
	ckpt_write_at(w, h, sizeof(h), 0);
	if (w->err == 0 && w->io->fdatasync(w->io->ctx, w->fd) != 0)
		ckpt_fail(w, errno, "fdatasync", w->tmp);
	if (w->err) {
		int err = w->err;
		if (info != NULL)
			snprintf(info->msg, sizeof(info->msg), "%s", w->msg);
		ckpt_abort(w);
		return err;
	}
	w->io->close(w->io->ctx, w->fd);
	w->fd = -1;
	int rn = w->io->rename(w->io->ctx, w->dirfd, w->tmp, w->name);
	int e = errno;
	if (rn != 0 || sdir_sync_fd(w->dirfd, w->io) != 0) {
		if (info != NULL)
			snprintf(info->msg, sizeof(info->msg), "%s %s: %s",
				 rn != 0 ? "rename to" : "fsync of the directory after renaming to",
				 w->name, strerror(rn != 0 ? e : errno));
		/* Either the old directory entry or the new one survives a
		 * crash; both name a complete, synced file (a checkpoint of the
		 * same LSN replaced by rename is equally valid), so nothing is
		 * unlinked but the temporary name. */
		ckpt_abort(w);
		return CIDSTORE_EIO;
	}
	if (info != NULL) {
		memset(info, 0, sizeof(*info));
		info->version = CKPT_FORMAT_VERSION;
		info->lsn = w->lsn;
		info->end_lsn = end_lsn;
		info->keys = w->keys;
		info->values = w->values;
		info->blocks = w->blocks;
		info->bytes = w->off;
	}
	int dirfd = w->dirfd;
	const struct log_io *io = w->io;
	free(w);
	/* Best effort: the checkpoint is durable; a file that could not be
	 * removed now is removed by the next prune. */
	(void)ckpt_prune(dirfd, io, CKPT_KEEP, NULL);
	return 0;
}

int ckpt_write(int dirfd, const struct log_io *io, uint64_t lsn,
	       ckpt_source_fn source, void *src, struct ckpt_info *info)
{
	if (source == NULL)
		return CIDSTORE_EINVAL;
	ckpt_writer_t *w;
	int rc = ckpt_begin(dirfd, io, lsn, &w, info);
	if (rc != 0)
		return rc;
	rc = source(src, ckpt_add_fn, w);
	if (rc != 0) {
		ckpt_abort(w);
		return rc;
	}
	return ckpt_commit(w, lsn, info);
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */
/* ---------------------------------------------------------------------- */

#define CKPT_READ_CHUNK (1u << 20)

/* Sequential buffered reader over the io table. */
struct ckpt_rd {
	const struct log_io *io;
	int fd;
	uint64_t size;   /* file size */
	uint64_t pos;    /* file offset of buf[0] */
	uint32_t len;    /* valid bytes in buf */
	uint32_t at;     /* consumed bytes in buf */
	uint8_t *buf;
};

/* Makes n contiguous bytes available at rd->buf + rd->at; returns 1, 0 at
 * a clean or short end of file (fewer than n bytes left), negative on
 * error.  n <= CKPT_READ_CHUNK. */
static int ckpt_rd_need(struct ckpt_rd *rd, uint32_t n)
{
	if (rd->len - rd->at >= n)
		return 1;
	uint32_t keep = rd->len - rd->at;
	memmove(rd->buf, rd->buf + rd->at, keep);
	rd->pos += rd->at;
	rd->at = 0;
	rd->len = keep;
	ssize_t got = io_pread_all(rd->io, rd->fd, rd->buf + keep,
				   CKPT_READ_CHUNK - keep, (off_t)(rd->pos + keep));
	if (got < 0)
		return CIDSTORE_EIO;
	rd->len += (uint32_t)got;
	return rd->len >= n ? 1 : 0;
}

static uint64_t ckpt_rd_off(const struct ckpt_rd *rd)
{
	return rd->pos + rd->at;
}

#define CKPT_FAIL(info, rc, ...) \
	do { \
		if ((info) != NULL) \
			snprintf((info)->msg, sizeof((info)->msg), __VA_ARGS__); \
		return (rc); \
	} while (0)

/* Checks the header at rd's current position. */
static int ckpt_check_header(struct ckpt_rd *rd, const char *name,
			     struct ckpt_info *info)
{
	int r = ckpt_rd_need(rd, 16);
	if (r < 0)
		CKPT_FAIL(info, r, "%s: read failed", name);
	if (r == 0)
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: truncated header (%llu bytes)",
			  name, (unsigned long long)rd->size);
	const uint8_t *h = rd->buf + rd->at;
	if (memcmp(h, CKPT_MAGIC, 8) != 0)
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: bad magic at offset 0", name);
	uint32_t hsize = le_get32(h + 12);
	if (hsize < CKPT_HEADER_BYTES || hsize > CKPT_HEADER_MAX || hsize % 4 != 0)
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: bad header size %u at offset 12",
			  name, hsize);
	r = ckpt_rd_need(rd, hsize);
	if (r < 0)
		CKPT_FAIL(info, r, "%s: read failed", name);
	if (r == 0)
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: truncated header", name);
	h = rd->buf + rd->at;
	if (rec_crc32c(h, hsize - 4) != le_get32(h + hsize - 4))
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: header CRC mismatch (offset 0..%u)",
			  name, hsize - 1);
	uint32_t version = le_get32(h + 8);
	if (info != NULL)
		info->version = version;
	if (version > CKPT_FORMAT_VERSION)
		CKPT_FAIL(info, CIDSTORE_EVERSION,
			  "%s: format version %u is newer than this build's %u",
			  name, version, CKPT_FORMAT_VERSION);
	if (version == 0 || hsize != CKPT_HEADER_BYTES)
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: bad version %u / header size %u",
			  name, version, hsize);
	uint64_t lsn = le_get64(h + 16), end_lsn = le_get64(h + 24);
	uint64_t name_lsn;
	if (sdir_parse_name(name, "ckpt-", ".ckpt", &name_lsn) == 0 && name_lsn != lsn)
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: header LSN %llu does not match the name",
			  name, (unsigned long long)lsn);
	if (end_lsn < lsn)
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: end LSN %llu < start LSN %llu",
			  name, (unsigned long long)end_lsn, (unsigned long long)lsn);
	if (le_get32(h + 48) != CKPT_BLOCK_BYTES)
		CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: bad block size %u at offset 48",
			  name, le_get32(h + 48));
	if (info != NULL) {
		info->lsn = lsn;
		info->end_lsn = end_lsn;
		info->keys = le_get64(h + 32);
		info->values = le_get64(h + 40);
		info->bytes = rd->size;
	}
	rd->at += hsize;
	return 0;
}

static int ckpt_rd_open(int dirfd, const struct log_io *io, const char *name,
			struct ckpt_rd *rd, struct ckpt_info *info)
{
	memset(rd, 0, sizeof(*rd));
	rd->io = io_or_posix(io);
	rd->fd = rd->io->open(rd->io->ctx, dirfd, name, O_RDONLY, 0);
	if (rd->fd < 0)
		CKPT_FAIL(info, io_errcode(errno), "%s: cannot open (%s)", name, strerror(errno));
	if (rd->io->fsize(rd->io->ctx, rd->fd, &rd->size) != 0) {
		rd->io->close(rd->io->ctx, rd->fd);
		CKPT_FAIL(info, CIDSTORE_EIO, "%s: cannot stat", name);
	}
	rd->buf = malloc(CKPT_READ_CHUNK);
	if (rd->buf == NULL) {
		rd->io->close(rd->io->ctx, rd->fd);
		return CIDSTORE_ENOMEM;
	}
	return 0;
}

static void ckpt_rd_close(struct ckpt_rd *rd)
{
	rd->io->close(rd->io->ctx, rd->fd);
	free(rd->buf);
}

int ckpt_read_header(int dirfd, const struct log_io *io, const char *name,
		     struct ckpt_info *info)
{
	if (dirfd < 0 || name == NULL)
		return CIDSTORE_EINVAL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	struct ckpt_rd rd;
	int rc = ckpt_rd_open(dirfd, io, name, &rd, info);
	if (rc != 0)
		return rc;
	rc = ckpt_check_header(&rd, name, info);
	ckpt_rd_close(&rd);
	return rc;
}

/* Walks one verified block payload; apply may be NULL. */
static int ckpt_apply_block(const uint8_t *p, uint32_t len, const char *name,
			    uint64_t off, cidstore_scan_fn apply, void *ctx,
			    cid_t *vals, uint64_t *keys, uint64_t *values,
			    uint64_t *entries, struct ckpt_info *info)
{
	uint32_t at = 0;
	while (at < len) {
		if (len - at < CKPT_ENTRY_HDR + 32)
			CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: short entry at offset %llu",
				  name, (unsigned long long)(off + at));
		uint32_t n = le_get32(p + at + 32), flags = le_get32(p + at + 36);
		if (n == 0 || (flags & ~CKPT_FLAG_CONT) != 0 ||
		    (uint64_t)n * 32 > len - at - CKPT_ENTRY_HDR)
			CKPT_FAIL(info, CIDSTORE_ECORRUPT, "%s: bad entry at offset %llu",
				  name, (unsigned long long)(off + at));
		cid_t key;
		le_get_cid(p + at, &key);
		const uint8_t *v = p + at + CKPT_ENTRY_HDR;
		for (uint32_t i = 0; i < n; i++)
			le_get_cid(v + 32 * i, &vals[i]);
		if (apply != NULL) {
			int r = apply(&key, vals, n, ctx);
			if (r != 0)
				return r;
		}
		if (!(flags & CKPT_FLAG_CONT))
			(*keys)++;
		*values += n;
		(*entries)++;
		at += CKPT_ENTRY_HDR + 32 * n;
	}
	return 0;
}

int ckpt_read(int dirfd, const struct log_io *io, const char *name,
	      cidstore_scan_fn apply, void *ctx, struct ckpt_info *info)
{
	return ckpt_read_ex(dirfd, io, name, NULL, apply, ctx, info);
}

int ckpt_read_ex(int dirfd, const struct log_io *io, const char *name,
		 ckpt_header_fn on_header, cidstore_scan_fn apply, void *ctx,
		 struct ckpt_info *info)
{
	if (dirfd < 0 || name == NULL)
		return CIDSTORE_EINVAL;
	struct ckpt_info local;
	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	struct ckpt_rd rd;
	int rc = ckpt_rd_open(dirfd, io, name, &rd, info);
	if (rc != 0)
		return rc;
	cid_t *vals = malloc(CKPT_PAYLOAD_MAX / 32 * sizeof(cid_t));
	if (vals == NULL) {
		ckpt_rd_close(&rd);
		return CIDSTORE_ENOMEM;
	}
	uint64_t keys = 0, values = 0, entries = 0, blocks = 0, bytes = 0;
	if ((rc = ckpt_check_header(&rd, name, info)) != 0)
		goto out;
	if (on_header != NULL && (rc = on_header(info, ctx)) != 0)
		goto out;
	for (;;) {
		uint64_t off = ckpt_rd_off(&rd);
		int r = ckpt_rd_need(&rd, CKPT_BLOCK_HDR_BYTES);
		if (r < 0) {
			rc = r;
			snprintf(info->msg, sizeof(info->msg), "%s: read failed", name);
			goto out;
		}
		if (r == 0) {
			rc = CIDSTORE_ECORRUPT;
			snprintf(info->msg, sizeof(info->msg),
				 "%s: truncated at offset %llu (no trailer)",
				 name, (unsigned long long)off);
			goto out;
		}
		const uint8_t *b = rd.buf + rd.at;
		if (memcmp(b, CKPT_TRAILER_MAGIC, 8) == 0)
			break;
		uint32_t len = le_get32(b + 4);
		if (memcmp(b, CKPT_BLOCK_TAG, 4) != 0 || len == 0 || len > CKPT_PAYLOAD_MAX) {
			rc = CIDSTORE_ECORRUPT;
			snprintf(info->msg, sizeof(info->msg),
				 "%s: bad block header at offset %llu", name,
				 (unsigned long long)off);
			goto out;
		}
		r = ckpt_rd_need(&rd, CKPT_BLOCK_HDR_BYTES + len);
		if (r <= 0) {
			rc = r < 0 ? r : CIDSTORE_ECORRUPT;
			snprintf(info->msg, sizeof(info->msg),
				 "%s: block at offset %llu truncated", name,
				 (unsigned long long)off);
			goto out;
		}
		b = rd.buf + rd.at;
		uint32_t crc = rec_crc32c_extend(rec_crc32c(b, 12),
						 b + CKPT_BLOCK_HDR_BYTES, len);
		if (crc != le_get32(b + 12) || le_get32(b + 8) != (uint32_t)blocks) {
			rc = CIDSTORE_ECORRUPT;
			snprintf(info->msg, sizeof(info->msg),
				 "%s: block %llu at offset %llu: %s", name,
				 (unsigned long long)blocks, (unsigned long long)off,
				 crc != le_get32(b + 12) ? "CRC mismatch" : "out of sequence");
			goto out;
		}
		rc = ckpt_apply_block(b + CKPT_BLOCK_HDR_BYTES, len, name,
				      off + CKPT_BLOCK_HDR_BYTES, apply, ctx, vals,
				      &keys, &values, &entries, info);
		if (rc != 0)
			goto out;
		rd.at += CKPT_BLOCK_HDR_BYTES + len;
		blocks++;
		bytes += CKPT_BLOCK_HDR_BYTES + len;
	}
	/* Trailer. */
	uint64_t toff = ckpt_rd_off(&rd);
	int r = ckpt_rd_need(&rd, CKPT_TRAILER_BYTES);
	const uint8_t *t = rd.buf + rd.at;
	if (r <= 0 || rec_crc32c(t, 60) != le_get32(t + 60)) {
		rc = r < 0 ? r : CIDSTORE_ECORRUPT;
		snprintf(info->msg, sizeof(info->msg), "%s: %s trailer at offset %llu",
			 name, r == 0 ? "truncated" : "bad CRC in",
			 (unsigned long long)toff);
		goto out;
	}
	if (le_get64(t + 8) != info->lsn || le_get64(t + 16) != blocks ||
	    le_get64(t + 24) != keys || le_get64(t + 32) != values ||
	    le_get64(t + 40) != entries || le_get64(t + 48) != bytes ||
	    info->keys != keys || info->values != values) {
		rc = CIDSTORE_ECORRUPT;
		snprintf(info->msg, sizeof(info->msg),
			 "%s: counts in header/trailer (offset %llu) do not match the data "
			 "(%llu keys, %llu values in %llu blocks)", name,
			 (unsigned long long)toff, (unsigned long long)keys,
			 (unsigned long long)values, (unsigned long long)blocks);
		goto out;
	}
	if (toff + CKPT_TRAILER_BYTES != rd.size) {
		rc = CIDSTORE_ECORRUPT;
		snprintf(info->msg, sizeof(info->msg),
			 "%s: %llu bytes after the trailer at offset %llu", name,
			 (unsigned long long)(rd.size - toff - CKPT_TRAILER_BYTES),
			 (unsigned long long)toff);
		goto out;
	}
	info->blocks = blocks;
	rc = 0;
out:
	free(vals);
	ckpt_rd_close(&rd);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Retention                                                               */
/* ---------------------------------------------------------------------- */

int ckpt_prune(int dirfd, const struct log_io *io, unsigned keep,
	       uint64_t *oldest_kept)
{
	io = io_or_posix(io);
	sdir_list_t l;
	int rc = sdir_list_checkpoints(dirfd, &l);
	if (rc != 0)
		return rc;
	bool removed = false;
	size_t first_kept = l.n > keep ? l.n - keep : 0;
	for (size_t i = 0; i < first_kept; i++) {
		if (io->unlink(io->ctx, dirfd, l.v[i].name) != 0 && errno != ENOENT)
			rc = CIDSTORE_EIO;
		removed = true;
	}
	if (oldest_kept != NULL)
		*oldest_kept = first_kept < l.n ? l.v[first_kept].lsn : 0;
	sdir_list_free(&l);
	/* Leftover temporaries of crashed checkpoints. */
	sdir_list_t t;
	if (rc == 0 && sdir_list_tmp(dirfd, &t) == 0) {
		for (size_t i = 0; i < t.n; i++) {
			io->unlink(io->ctx, dirfd, t.v[i].name);
			removed = true;
		}
		sdir_list_free(&t);
	}
	if (removed && rc == 0)
		rc = sdir_sync_fd(dirfd, io);
	return rc;
}
