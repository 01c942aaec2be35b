/*
 * inspect.c — read-only inspection of a store directory: cidstore_wal_read
 * (every WAL record, validated) and cidstore_verify (would this directory
 * recover?), for `cidstore verify` and `cidstore wal dump|analyze`.
 *
 * Nothing here changes the directory: no file is written, cut, created or
 * removed and the LOCK is not taken.  Both calls are thin wrappers over the
 * recovery code (recov_read_log and recov_verify in log/recovery.c, which
 * run the same segment, record and checkpoint validation as recovery, in
 * read-only mode), so the inspection tools and recovery cannot disagree
 * about what is valid.  No shared state: every call has its own buffers
 * and descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cidstore.h"
#include "log/dir.h"
#include "log/io.h"
#include "log/meta.h"
#include "log/record.h"
#include "log/recovery.h"

_Static_assert((int)CIDSTORE_WAL_INSERT == (int)WAL_OP_INSERT, "wal op values");
_Static_assert((int)CIDSTORE_WAL_DELETE_VALUE == (int)WAL_OP_DELETE_VALUE, "wal op values");
_Static_assert((int)CIDSTORE_WAL_DELETE_KEY == (int)WAL_OP_DELETE_KEY, "wal op values");
_Static_assert((int)CIDSTORE_WAL_TXN_START == (int)WAL_OP_TXN_START, "wal op values");
_Static_assert((int)CIDSTORE_WAL_TXN_COMMIT == (int)WAL_OP_TXN_COMMIT, "wal op values");
_Static_assert((int)CIDSTORE_WAL_TXN_ABORT == (int)WAL_OP_TXN_ABORT, "wal op values");
_Static_assert((int)CIDSTORE_WAL_CHECKPOINT == (int)WAL_OP_CHECKPOINT, "wal op values");
_Static_assert((int)CIDSTORE_WAL_SEGMENT_HEADER == (int)WAL_OP_SEGMENT_HEADER, "wal op values");
_Static_assert(WAL_OP_MAX == WAL_OP_SEGMENT_HEADER, "a new opcode needs a public name");
_Static_assert(sizeof(((cidstore_wal_summary_t *)0)->message) ==
		       sizeof(((struct recov_result *)0)->msg),
	       "messages are copied whole");
_Static_assert(sizeof(((cidstore_verify_result_t *)0)->message) ==
		       sizeof(((struct recov_result *)0)->msg),
	       "messages are copied whole");

const char *cidstore_wal_op_name(int op)
{
	switch (op) {
	case CIDSTORE_WAL_INSERT: return "insert";
	case CIDSTORE_WAL_DELETE_VALUE: return "delete_value";
	case CIDSTORE_WAL_DELETE_KEY: return "delete_key";
	case CIDSTORE_WAL_TXN_START: return "txn_start";
	case CIDSTORE_WAL_TXN_COMMIT: return "txn_commit";
	case CIDSTORE_WAL_TXN_ABORT: return "txn_abort";
	case CIDSTORE_WAL_CHECKPOINT: return "checkpoint";
	case CIDSTORE_WAL_SEGMENT_HEADER: return "segment_header";
	default: return "unknown";
	}
}

/* Opens dir as a directory, read-only.  Returns the fd, or an error with
 * msg filled: CIDSTORE_EINVAL (NULL, empty), CIDSTORE_ENOENT (missing),
 * CIDSTORE_ENOTDIR, CIDSTORE_EACCES, CIDSTORE_EIO (anything else). */
static int inspect_open_dir(const char *dir, char *msg, size_t cap)
{
	if (dir == NULL || *dir == '\0') {
		snprintf(msg, cap, "no store directory given");
		return CIDSTORE_EINVAL;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int e = errno;
	if (e == ENOENT)
		snprintf(msg, cap, "%s: no such directory", dir);
	else if (e == ENOTDIR)
		snprintf(msg, cap, "%s: not a directory", dir);
	else
		snprintf(msg, cap, "%s: cannot open (%s)", dir, strerror(e));
	return io_errcode(e);
}

struct wal_read_ctx {
	uint64_t from_lsn;
	cidstore_wal_fn fn;
	void *ctx;
	bool have_first;
	uint64_t first_lsn;
};

static int inspect_rec(const struct wal_rec *r, uint64_t seg_lsn, uint64_t off,
		       void *arg)
{
	struct wal_read_ctx *c = arg;
	if (!c->have_first && r->opcode == WAL_OP_SEGMENT_HEADER) {
		c->have_first = true;
		c->first_lsn = seg_lsn;
	}
	if (c->fn == NULL || r->lsn < c->from_lsn)
		return 0;
	cidstore_wal_record_t pub;
	memset(&pub, 0, sizeof(pub));
	pub.segment = seg_lsn;
	pub.offset = off;
	pub.lsn = r->lsn;
	pub.op = r->opcode;
	pub.flags = r->flags;
	pub.txn = r->txn;
	pub.wall_ns = r->wall_ns;
	pub.shard = r->shard;
	pub.seq = r->seq;
	pub.key = r->key;
	pub.value = r->val;
	return c->fn(&pub, c->ctx);
}

int cidstore_wal_read(const char *dir, uint64_t from_lsn, cidstore_wal_fn fn,
		      void *ctx, cidstore_wal_summary_t *out)
{
	cidstore_wal_summary_t local;
	if (out == NULL)
		out = &local;
	memset(out, 0, sizeof(*out));
	int dfd = inspect_open_dir(dir, out->message, sizeof(out->message));
	if (dfd < 0)
		return dfd;
	struct wal_read_ctx c = {from_lsn, fn, ctx, false, 0};
	struct recov_result res;
	int rc = recov_read_log(dfd, NULL, inspect_rec, &c, &res);
	close(dfd);
	out->segments = res.segments;
	out->records = res.records;
	out->first_lsn = c.have_first ? c.first_lsn : 0;
	out->last_lsn = c.have_first ? res.last_lsn : 0;
	out->bytes = res.seg_bytes;
	out->torn = res.torn;
	out->torn_segment = res.torn_seg_lsn;
	out->torn_offset = res.torn_off;
	out->txn_committed = res.txn_committed;
	out->txn_committed_ops = res.txn_ops_committed;
	out->txn_aborted = res.txn_aborted;
	out->txn_aborted_ops = res.txn_ops_aborted;
	out->txn_unfinished = res.txn_unfinished;
	out->txn_unfinished_ops = res.txn_ops_unfinished;
	memcpy(out->message, res.msg, sizeof(out->message));
	out->message[sizeof(out->message) - 1] = '\0';
	if (rc != 0 && out->message[0] == '\0')
		snprintf(out->message, sizeof(out->message),
			 "stopped by the callback (it returned %d)", rc);
	return rc;
}

int cidstore_verify(const char *dir, cidstore_verify_result_t *out)
{
	if (out == NULL)
		return CIDSTORE_EINVAL;
	memset(out, 0, sizeof(*out));
	int dfd = inspect_open_dir(dir, out->message, sizeof(out->message));
	if (dfd < 0)
		return dfd;
	sdir_list_t ck;
	int rc = sdir_list_checkpoints(dfd, &ck);
	if (rc != 0) {
		snprintf(out->message, sizeof(out->message),
			 "%s: cannot list the directory", dir);
		close(dfd);
		return rc;
	}
	out->checkpoints = ck.n;
	sdir_list_free(&ck);

	/* META, as open reads it: missing is a store not yet opened (open
	 * writes one); corrupt or newer refuses the open, so verify too. */
	uint64_t seed;
	rc = meta_read(dfd, NULL, &seed);
	if (rc != 0 && rc != CIDSTORE_ENOENT) {
		snprintf(out->message, sizeof(out->message), "%s/%s: %s", dir, META_NAME,
			 rc == CIDSTORE_ECORRUPT   ? "bad magic, size or CRC"
			 : rc == CIDSTORE_EVERSION ? "written by a newer format version"
						   : cidstore_strerror(rc));
		close(dfd);
		return rc;
	}

	struct recov_result res;
	rc = recov_verify(dfd, NULL, &res);
	close(dfd);
	out->have_checkpoint = res.have_ckpt;
	out->checkpoint_fallback = res.ckpt_fallback;
	out->checkpoint_lsn = res.ckpt_lsn;
	out->checkpoint_keys = res.ckpt_keys;
	out->checkpoint_values = res.ckpt_values;
	out->segments = res.segments;
	out->records = res.records;
	out->last_lsn = res.last_lsn;
	out->torn = res.torn;
	out->torn_segment = res.torn_seg_lsn;
	out->torn_offset = res.torn_off;
	out->txn_committed = res.txn_committed;
	out->txn_dropped = res.txn_dropped;
	memcpy(out->message, res.msg, sizeof(out->message));
	out->message[sizeof(out->message) - 1] = '\0';
	return rc;
}
