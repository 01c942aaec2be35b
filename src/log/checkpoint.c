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
#include <pthread.h>
#include <stdatomic.h>
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

/* The header reader's buffer: a header is at most CKPT_HEADER_MAX bytes
 * (the blocks are read by the loaders, with their own buffers). */
#define CKPT_READ_CHUNK (2 * CKPT_HEADER_MAX)

/* Sequential buffered reader over the io table (headers). */
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

/* ---------------------------------------------------------------------- */
/* Loading: several threads over independent blocks                        */
/* ---------------------------------------------------------------------- */

/*
 * PARALLEL LOAD (ckpt_load; ckpt_read is the one-thread case)
 *
 *   Loaders (the caller + threads - 1 helpers) take turns: under p->mu a
 *   loader preads the next chunk_bytes (default 4 MiB) from next_off into
 *   its own buffer, walks the block headers in it (tag, length, framing:
 *   done here, in file order, so sequence numbers and the trailer's place
 *   are known without reading anything twice), keeps the whole blocks and
 *   moves next_off past the last of them (a block cut by the chunk's end is
 *   read again by the next turn: <= 64 KiB per 4 MiB, ~1%).  Then, without
 *   the lock, it checks each block's CRC and sequence number, decodes its
 *   entries and hands them to apply in batches of CKPT_LOAD_BATCH.
 *
 *   Order of results: every error is recorded with its file offset; the
 *   lowest offset wins, and a loader skips only blocks *after* the lowest
 *   error recorded so far (err_off, a relaxed atomic: a hint; the verdict
 *   is taken under mu after the join).  So every block before the reported
 *   error has been checked and delivered, as in a sequential read, and the
 *   error is the one a sequential read would report.  Counts are summed
 *   per loader and checked against header and trailer after the join.
 *
 *   A key whose values span blocks comes as a first entry and
 *   continuations, possibly on different threads in any order: apply adds
 *   values to a set, so order does not matter; the key is counted once (at
 *   its first entry).
 *
 *   Arithmetic for the 16M single-valued keys (1.21 GB: 72 B per
 *   entry, ~910 entries per 64 KiB block, ~18.5k blocks): pread copies
 *   1.21 GB from the page cache (measured ~0.2 s on one core, serialized
 *   under mu, overlapped with the other loader's work); CRC-32C over whole
 *   blocks, ~0.1 s; decoding is free on a little-endian host (entries are
 *   the in-memory cid_t layout: apply gets pointers into the buffer).  The
 *   sequential read + CRC + walk measured 0.40 s on one core; what remains
 *   is apply (the index insert), which must reach ~13M keys/s on 2 threads
 *   for a 1.2 s load.
 *   Measured (2 vCPUs, shared; bench/durable README): the 16M checkpoint
 *   loads in 0.9-3.1 s (was 4.9-6.3 s on one thread).  perf of the whole
 *   open (5.6 s of CPU on a loaded machine): first touch of the index's
 *   fresh memory (kernel page zeroing, slow on this VM) 44%, index writes
 *   ~31%, CRC-32C 6% (checkpoint and WAL), pread copies 5%: reading,
 *   checking and decoding are no longer what limits the load.
 *
 * Synchronization:
 *   | field                      | how                                      |
 *   |----------------------------|------------------------------------------|
 *   | io, fd, name, chunk, apply | immutable while loaders run              |
 *   | next_off, next_seq, walked,| p->mu                                    |
 *   |  toff, err, msg            |                                          |
 *   | err_off                    | written under p->mu, read relaxed (hint) |
 *   | loader buffers and counts  | owner: the loader; read after the join   |
 */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CKPT_IN_PLACE 1 /* stored entries are the in-memory cid_t layout */
#else
#define CKPT_IN_PLACE 0
#endif
_Static_assert(sizeof(cid_t) == 32, "cid_t is four packed u64 words");

struct ckpt_par {
	const struct log_io *io;  /* immutable */
	int fd;                   /* immutable */
	const char *name;         /* immutable */
	uint32_t chunk;           /* immutable */
	ckpt_batch_fn apply;      /* immutable */
	void *ctx;                /* immutable */
	pthread_mutex_t mu;
	uint64_t next_off;        /* mu: first byte no loader has taken */
	uint64_t next_seq;        /* mu: sequence number of the block there */
	bool done;                /* mu: nothing more to take (trailer or a walk error) */
	bool walked;              /* mu: the trailer was found, at toff */
	uint64_t toff;            /* mu */
	int err;                  /* mu: error at the lowest offset so far */
	char msg[sizeof(((struct ckpt_info *)0)->msg)]; /* mu: its message */
	_Atomic uint64_t err_off; /* mu to write; relaxed reads are a hint */
};

struct ckpt_blk {
	uint32_t pos;  /* in the loader's buffer */
	uint32_t len;  /* payload bytes */
	uint64_t seq;  /* the sequence number it must carry */
};

struct ckpt_loader {
	struct ckpt_par *p;
	pthread_t tid;
	uint8_t *buf;              /* chunk bytes */
	struct ckpt_blk *blk;      /* blocks of the current turn */
	size_t nblk, capblk;
	uint64_t base;             /* file offset of buf[0] */
	cid_t *scratch;            /* !CKPT_IN_PLACE: decoded keys and values */
	struct ckpt_entry batch[CKPT_LOAD_BATCH];
	uint64_t keys, values, entries, blocks, bytes; /* owner */
};

/* Records error rc at file offset off unless one at a lower offset is
 * known.  Call with p->mu held. */
static void ckpt_par_fail_l(struct ckpt_par *p, uint64_t off, int rc, const char *msg)
{
	if (off >= atomic_load_explicit(&p->err_off, memory_order_relaxed))
		return;
	p->err = rc;
	snprintf(p->msg, sizeof(p->msg), "%s", msg);
	atomic_store_explicit(&p->err_off, off, memory_order_relaxed);
}

static void ckpt_par_fail(struct ckpt_par *p, uint64_t off, int rc, const char *msg)
{
	pthread_mutex_lock(&p->mu);
	ckpt_par_fail_l(p, off, rc, msg);
	pthread_mutex_unlock(&p->mu);
}

/* An error after off is already known: the rest of off's work is moot. */
static bool ckpt_par_past(struct ckpt_par *p, uint64_t off)
{
	return atomic_load_explicit(&p->err_off, memory_order_relaxed) < off;
}
/* (A walk error sits at next_off itself, and sets done.) */

/* One turn's read and framing, under p->mu.  Returns false when there is
 * nothing more to take (trailer found, or an error before next_off). */
static bool ckpt_take(struct ckpt_loader *L)
{
	struct ckpt_par *p = L->p;
	char m[sizeof(p->msg)];
	L->nblk = 0;
	pthread_mutex_lock(&p->mu);
	uint64_t off = p->next_off;
	if (p->done || ckpt_par_past(p, off)) {
		pthread_mutex_unlock(&p->mu);
		return false;
	}
	L->base = off;
	ssize_t got = io_pread_all(p->io, p->fd, L->buf, p->chunk, (off_t)off);
	if (got < 0) {
		snprintf(m, sizeof(m), "%s: read failed", p->name);
		ckpt_par_fail_l(p, off, CIDSTORE_EIO, m);
		p->done = true;
		pthread_mutex_unlock(&p->mu);
		return false;
	}
	bool eof = (size_t)got < p->chunk;
	size_t pos = 0;
	for (;;) {
		uint64_t boff = off + pos;
		if ((size_t)got - pos < CKPT_BLOCK_HDR_BYTES) {
			if (eof) {
				snprintf(m, sizeof(m), "%s: truncated at offset %llu (no trailer)",
					 p->name, (unsigned long long)boff);
				ckpt_par_fail_l(p, boff, CIDSTORE_ECORRUPT, m);
				p->done = true;
			}
			break;
		}
		const uint8_t *b = L->buf + pos;
		if (memcmp(b, CKPT_TRAILER_MAGIC, 8) == 0) {
			p->walked = p->done = true;
			p->toff = boff;
			break;
		}
		uint32_t len = le_get32(b + 4);
		/* Entries are 40 + 32 n bytes: a length that is not a multiple
		 * of 8 cannot be filled by them (and would misalign the next
		 * block's entries). */
		if (memcmp(b, CKPT_BLOCK_TAG, 4) != 0 || len == 0 || len > CKPT_PAYLOAD_MAX ||
		    len % 8 != 0) {
			snprintf(m, sizeof(m), "%s: bad block header at offset %llu", p->name,
				 (unsigned long long)boff);
			ckpt_par_fail_l(p, boff, CIDSTORE_ECORRUPT, m);
			p->done = true;
			break;
		}
		if ((size_t)got - pos - CKPT_BLOCK_HDR_BYTES < len) {
			if (eof) {
				snprintf(m, sizeof(m), "%s: block at offset %llu truncated",
					 p->name, (unsigned long long)boff);
				ckpt_par_fail_l(p, boff, CIDSTORE_ECORRUPT, m);
				p->done = true;
			}
			break;
		}
		if (L->nblk == L->capblk) {
			size_t nc = L->capblk ? L->capblk * 2 : 64;
			struct ckpt_blk *nb = realloc(L->blk, nc * sizeof(*nb));
			if (nb == NULL) {
				snprintf(m, sizeof(m), "%s: out of memory", p->name);
				ckpt_par_fail_l(p, boff, CIDSTORE_ENOMEM, m);
				p->done = true;
				break;
			}
			L->blk = nb;
			L->capblk = nc;
		}
		L->blk[L->nblk++] = (struct ckpt_blk){(uint32_t)pos, len, p->next_seq++};
		pos += CKPT_BLOCK_HDR_BYTES + len;
	}
	p->next_off = off + pos;
	pthread_mutex_unlock(&p->mu);
	return true;
}

/* Delivers the loader's pending batch; 0 or apply's return. */
static int ckpt_flush_batch(struct ckpt_loader *L, size_t *n, uint64_t off)
{
	struct ckpt_par *p = L->p;
	int r = 0;
	if (*n > 0 && p->apply != NULL && (r = p->apply(p->ctx, L->batch, *n)) != 0)
		ckpt_par_fail(p, off, r, "");
	*n = 0;
	return r;
}

/* Checks and delivers one block of the current turn.  0, or the error
 * (recorded in p). */
static int ckpt_do_block(struct ckpt_loader *L, const struct ckpt_blk *k)
{
	struct ckpt_par *p = L->p;
	char m[sizeof(p->msg)];
	const uint8_t *b = L->buf + k->pos;
	uint64_t boff = L->base + k->pos, poff = boff + CKPT_BLOCK_HDR_BYTES;
	uint32_t crc = rec_crc32c_extend(rec_crc32c(b, 12), b + CKPT_BLOCK_HDR_BYTES, k->len);
	if (crc != le_get32(b + 12) || le_get32(b + 8) != (uint32_t)k->seq) {
		snprintf(m, sizeof(m), "%s: block %llu at offset %llu: %s", p->name,
			 (unsigned long long)k->seq, (unsigned long long)boff,
			 crc != le_get32(b + 12) ? "CRC mismatch" : "out of sequence");
		ckpt_par_fail(p, boff, CIDSTORE_ECORRUPT, m);
		return CIDSTORE_ECORRUPT;
	}
	const uint8_t *pl = b + CKPT_BLOCK_HDR_BYTES;
	uint32_t at = 0, len = k->len;
	size_t n = 0;
	uint64_t first = poff; /* offset of the batch's first entry */
	cid_t *sc = L->scratch;
	uint64_t keys = 0, values = 0, entries = 0;
	while (at < len) {
		int bad = 0;
		uint32_t cnt = 0, flags = 0;
		if (len - at < CKPT_ENTRY_HDR + 32) {
			bad = 1;
		} else {
			cnt = le_get32(pl + at + 32);
			flags = le_get32(pl + at + 36);
			if (cnt == 0 || (flags & ~CKPT_FLAG_CONT) != 0 ||
			    (uint64_t)cnt * 32 > len - at - CKPT_ENTRY_HDR)
				bad = 2;
		}
		if (bad) {
			/* Entries before it are delivered first, as a sequential
			 * read would have (an apply error there comes first). */
			int r = ckpt_flush_batch(L, &n, first);
			if (r != 0)
				return r;
			snprintf(m, sizeof(m), "%s: %s entry at offset %llu", p->name,
				 bad == 1 ? "short" : "bad", (unsigned long long)(poff + at));
			ckpt_par_fail(p, poff + at, CIDSTORE_ECORRUPT, m);
			return CIDSTORE_ECORRUPT;
		}
		if (n == 0)
			first = poff + at;
		struct ckpt_entry *e = &L->batch[n++];
#if CKPT_IN_PLACE
		e->key = (const cid_t *)(const void *)(pl + at);
		e->vals = (const cid_t *)(const void *)(pl + at + CKPT_ENTRY_HDR);
		(void)sc;
#else
		le_get_cid(pl + at, sc);
		e->key = sc++;
		e->vals = sc;
		for (uint32_t i = 0; i < cnt; i++)
			le_get_cid(pl + at + CKPT_ENTRY_HDR + 32 * i, sc++);
#endif
		e->n = cnt;
		e->cont = (flags & CKPT_FLAG_CONT) != 0;
		keys += !e->cont;
		values += cnt;
		entries++;
		at += CKPT_ENTRY_HDR + 32 * cnt;
		if (n == CKPT_LOAD_BATCH) {
			int r = ckpt_flush_batch(L, &n, first);
			if (r != 0)
				return r;
			sc = L->scratch;
		}
	}
	int r = ckpt_flush_batch(L, &n, first);
	if (r != 0)
		return r;
	L->keys += keys;
	L->values += values;
	L->entries += entries;
	L->blocks++;
	L->bytes += CKPT_BLOCK_HDR_BYTES + len;
	return 0;
}

static void *ckpt_loader_main(void *arg)
{
	struct ckpt_loader *L = arg;
	while (ckpt_take(L)) {
		for (size_t i = 0; i < L->nblk; i++) {
			if (ckpt_par_past(L->p, L->base + L->blk[i].pos))
				break;
			if (ckpt_do_block(L, &L->blk[i]) != 0)
				break;
		}
	}
	return NULL;
}

static int ckpt_loader_init(struct ckpt_loader *L, struct ckpt_par *p)
{
	memset(L, 0, sizeof(*L));
	L->p = p;
	L->buf = malloc(p->chunk);
	/* decoded keys and values of one batch: at most a block's worth */
	L->scratch = CKPT_IN_PLACE ? NULL : malloc((CKPT_PAYLOAD_MAX / 32 + CKPT_LOAD_BATCH) * sizeof(cid_t));
	return L->buf != NULL && (CKPT_IN_PLACE || L->scratch != NULL) ? 0 : CIDSTORE_ENOMEM;
}

static void ckpt_loader_fini(struct ckpt_loader *L)
{
	free(L->buf);
	free(L->blk);
	free(L->scratch);
}

#define CKPT_MAX_LOADERS 64u

int ckpt_load(int dirfd, const struct log_io *io, const char *name,
	      const struct ckpt_load_args *args, struct ckpt_info *info)
{
	if (dirfd < 0 || name == NULL || args == NULL ||
	    (args->chunk_bytes != 0 && args->chunk_bytes < CKPT_BLOCK_BYTES))
		return CIDSTORE_EINVAL;
	struct ckpt_info local;
	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	struct ckpt_rd rd;
	int rc = ckpt_rd_open(dirfd, io, name, &rd, info);
	if (rc != 0)
		return rc;
	if ((rc = ckpt_check_header(&rd, name, info)) != 0 ||
	    (args->on_header != NULL && (rc = args->on_header(info, args->ctx)) != 0)) {
		ckpt_rd_close(&rd);
		return rc;
	}
	uint64_t data_off = ckpt_rd_off(&rd);
	free(rd.buf); /* the loaders read with their own buffers */
	rd.buf = NULL;

	struct ckpt_par p;
	memset(&p, 0, sizeof(p));
	p.io = rd.io;
	p.fd = rd.fd;
	p.name = name;
	p.chunk = args->chunk_bytes ? args->chunk_bytes : CKPT_LOAD_CHUNK;
	p.apply = args->apply;
	p.ctx = args->ctx;
	p.next_off = data_off;
	atomic_init(&p.err_off, UINT64_MAX);
	pthread_mutex_init(&p.mu, NULL);
	unsigned nl = args->threads > 1 ? args->threads : 1;
	if (nl > CKPT_MAX_LOADERS)
		nl = CKPT_MAX_LOADERS;
	struct ckpt_loader *L = calloc(nl, sizeof(*L));
	unsigned started = 0; /* helpers running: L[1 .. started] */
	if (L == NULL || ckpt_loader_init(&L[0], &p) != 0) {
		rc = CIDSTORE_ENOMEM;
		snprintf(info->msg, sizeof(info->msg), "%s: out of memory", name);
		goto out;
	}
	/* A helper that cannot be had is not an error: fewer loaders. */
	for (unsigned i = 1; i < nl; i++) {
		if (ckpt_loader_init(&L[i], &p) != 0 ||
		    pthread_create(&L[i].tid, NULL, ckpt_loader_main, &L[i]) != 0) {
			ckpt_loader_fini(&L[i]);
			break;
		}
		started = i;
	}
	ckpt_loader_main(&L[0]);
	uint64_t keys = 0, values = 0, entries = 0, blocks = 0, bytes = 0;
	for (unsigned i = 0; i <= started; i++) {
		if (i > 0)
			pthread_join(L[i].tid, NULL);
		keys += L[i].keys;
		values += L[i].values;
		entries += L[i].entries;
		blocks += L[i].blocks;
		bytes += L[i].bytes;
	}
	/* Every loader has stopped: p is ours alone. */
	if (p.err != 0 || !p.walked) {
		rc = p.err != 0 ? p.err : CIDSTORE_ECORRUPT;
		snprintf(info->msg, sizeof(info->msg), "%s", p.err != 0 ? p.msg : name);
		goto out;
	}
	/* Trailer (no error: the walk found it, every block before it passed). */
	uint64_t toff = p.toff;
	uint8_t t[CKPT_TRAILER_BYTES];
	ssize_t got = io_pread_all(p.io, p.fd, t, sizeof(t), (off_t)toff);
	if (got != (ssize_t)sizeof(t) || rec_crc32c(t, 60) != le_get32(t + 60)) {
		rc = got < 0 ? CIDSTORE_EIO : CIDSTORE_ECORRUPT;
		snprintf(info->msg, sizeof(info->msg), "%s: %s trailer at offset %llu",
			 name, got >= 0 && got < (ssize_t)sizeof(t) ? "truncated" : "bad CRC in",
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
	if (L != NULL) {
		for (unsigned i = 0; i <= started; i++)
			ckpt_loader_fini(&L[i]);
		free(L);
	}
	pthread_mutex_destroy(&p.mu);
	ckpt_rd_close(&rd);
	return rc;
}

/* ckpt_read's callback over ckpt_load's batches. */
struct ckpt_fwd {
	cidstore_scan_fn apply;
	void *ctx;
};

static int ckpt_fwd_batch(void *ctx, const struct ckpt_entry *e, size_t n)
{
	const struct ckpt_fwd *f = ctx;
	for (size_t i = 0; i < n; i++) {
		int r = f->apply(e[i].key, e[i].vals, e[i].n, f->ctx);
		if (r != 0)
			return r;
	}
	return 0;
}

int ckpt_read(int dirfd, const struct log_io *io, const char *name,
	      cidstore_scan_fn apply, void *ctx, struct ckpt_info *info)
{
	/* One thread: entries arrive in file order, each block checked before
	 * any of its entries is applied. */
	struct ckpt_fwd f = {apply, ctx};
	struct ckpt_load_args a = {.threads = 1, .apply = apply ? ckpt_fwd_batch : NULL, .ctx = &f};
	return ckpt_load(dirfd, io, name, &a, info);
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
