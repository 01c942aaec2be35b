/*
 * stress_wal.c — harness 4: WAL producers (DESIGN.md §6; the MPSC ring and
 * the flusher of src/log/wal.c).
 *
 * --threads producers (default 8) write into one durable ASYNC store whose
 * ring is tiny (--ring, default 64 records: constant backpressure) and whose
 * segments are small (--segment-bytes, default 256 KiB: many rotations).
 * Each producer inserts fresh keys (p, s) with value (p, s), and now and then
 * deletes one of its earlier pairs (delete_value) or keys (delete_key), so
 * all three record kinds occur.  Every call that returned 1 (changed the
 * store, hence logged) is "acknowledged" and remembered with its position in
 * the producer's sequence.  Then the store is closed (which flushes).
 *
 * The segment files are read back with the log layer's decoder
 * (src/log/record.h: rec_seg_parse, rec_seg_header_check, rec_decode_next)
 * and checked:
 *   SEGMENT-HEADER   every segment starts with a valid header naming the
 *                    LSN in its file name;
 *   CRC              every record up to the end of the log has a valid
 *                    CRC-32C (recomputed here with rec_crc32c, then
 *                    rec_decode must accept it);
 *   LSN-CONTINUITY   LSNs are consecutive within and across segments;
 *   UNKNOWN-RECORD   a record that no producer acknowledged (or with a
 *                    wrong opcode / value for that operation);
 *   DUPLICATE        an acknowledged operation appears twice;
 *   LOST             an acknowledged operation is missing;
 *   PRODUCER-ORDER   a producer's records are not in its own order;
 *   RECOVERY         reopening the store (recovery replays the log) does
 *                    not give the state the producers built.
 * The store directory is made under --dir (default $TMPDIR or /tmp) and
 * removed after a passing run; a failing run keeps it and prints its path.
 */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "log/record.h"

/* One acknowledged operation of a producer. */
struct ack {
	uint32_t s;      /* the key index it touched */
	uint8_t opcode;  /* WAL_OP_* */
	uint8_t seen;
};

struct producer {
	pthread_t th;
	unsigned id;
	struct ack *a;
	size_t n, cap;
	uint32_t nkeys;   /* keys (p, 0 .. nkeys) inserted */
	uint8_t *live;    /* per key: value present at the end */
	uint32_t *ins_at; /* per key: index in a[] of its insert */
	uint32_t *del_at; /* per key: index of its delete, or UINT32_MAX */
	uint64_t last_seen;
};

static struct {
	cidstore_t *s;
	unsigned ring;
	uint64_t segment_bytes;
	uint64_t max_records;
	const char *base;
	_Atomic int stop;
	_Atomic unsigned finished; /* producers that hit --max-records */
	struct producer *p;
	unsigned np;
} G;

static void h_opt(int c, const char *arg)
{
	switch (c) {
	case 'r':
		G.ring = (unsigned)parse_u64("ring", arg);
		break;
	case 'b':
		G.segment_bytes = parse_u64("segment-bytes", arg);
		break;
	case 'm':
		G.max_records = parse_u64("max-records", arg);
		break;
	case 'd':
		G.base = arg;
		break;
	}
}
static const struct option extra_opts[] = {
	{"ring", required_argument, 0, 'r'},
	{"segment-bytes", required_argument, 0, 'b'},
	{"max-records", required_argument, 0, 'm'},
	{"dir", required_argument, 0, 'd'},
	{0, 0, 0, 0},
};

static void push_ack(struct producer *p, uint32_t s, uint8_t op)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4096;
		p->a = realloc(p->a, p->cap * sizeof(*p->a));
		if (!p->a)
			stress_die("out of memory");
	}
	p->a[p->n++] = (struct ack){s, op, 0};
}

static void grow_keys(struct producer *p, uint32_t want)
{
	static const size_t step = 1 << 14;
	if (want % step)
		return;
	size_t nc = want + step;
	p->live = realloc(p->live, nc);
	p->ins_at = realloc(p->ins_at, nc * sizeof(uint32_t));
	p->del_at = realloc(p->del_at, nc * sizeof(uint32_t));
	if (!p->live || !p->ins_at || !p->del_at)
		stress_die("out of memory");
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	rng_t rng;
	rng_init(&rng, stress_seed, p->id + 1);
	uint64_t limit = G.max_records / G.np;
	while (!atomic_load_explicit(&G.stop, memory_order_relaxed) && p->n < limit) {
		unsigned r = rng_below(&rng, 100);
		if (r < 80 || p->nkeys == 0) {
			uint32_t s = p->nkeys;
			grow_keys(p, s);
			cid_t k = cid_make(1, p->id, s), v = cid_make(2, p->id, s);
			int rc = cidstore_insert(G.s, &k, &v);
			stress_check_rc("insert", rc);
			if (rc != 1)
				stress_fail("RETURN-VALUE", "insert of a fresh key returned %d", rc);
			p->live[s] = 1;
			p->ins_at[s] = (uint32_t)p->n;
			p->del_at[s] = UINT32_MAX;
			p->nkeys++;
			push_ack(p, s, WAL_OP_INSERT);
		} else {
			uint32_t s = (uint32_t)rng_below(&rng, p->nkeys);
			cid_t k = cid_make(1, p->id, s), v = cid_make(2, p->id, s);
			bool bykey = r >= 92;
			long rc = bykey ? cidstore_delete_key(G.s, &k) : cidstore_delete_value(G.s, &k, &v);
			stress_check_rc(bykey ? "delete_key" : "delete_value", rc);
			if (rc != p->live[s])
				stress_fail("RETURN-VALUE", "delete of own key returned %ld, expected %d", rc,
					    p->live[s]);
			if (rc) {
				p->live[s] = 0;
				p->del_at[s] = (uint32_t)p->n;
				push_ack(p, s, bykey ? WAL_OP_DELETE_KEY : WAL_OP_DELETE_VALUE);
			}
		}
	}
	atomic_fetch_add(&G.finished, 1);
	return NULL;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t records_checked, segments_checked;

/* Matches one decoded record to its acknowledged operation. */
static void match_record(const struct wal_rec *r)
{
	if (r->opcode == WAL_OP_CHECKPOINT)
		return;
	uint32_t tag, pid, s;
	if (!cid_decode(&r->key, &tag, &pid, &s) || tag != 1 || pid >= G.np)
		stress_fail("UNKNOWN-RECORD", "LSN %" PRIu64 ": key no producer wrote", r->lsn);
	struct producer *p = &G.p[pid];
	if (s >= p->nkeys)
		stress_fail("UNKNOWN-RECORD", "LSN %" PRIu64 ": producer %u key %u never inserted",
			    r->lsn, pid, s);
	uint32_t at;
	if (r->opcode == WAL_OP_INSERT)
		at = p->ins_at[s];
	else if (r->opcode == WAL_OP_DELETE_VALUE || r->opcode == WAL_OP_DELETE_KEY)
		at = p->del_at[s];
	else
		stress_fail("UNKNOWN-RECORD", "LSN %" PRIu64 ": opcode %u", r->lsn, r->opcode);
	if (at == UINT32_MAX || p->a[at].opcode != r->opcode)
		stress_fail("UNKNOWN-RECORD", "LSN %" PRIu64 ": opcode %u on producer %u key %u was "
			    "not acknowledged", r->lsn, r->opcode, pid, s);
	cid_t v = cid_make(2, pid, s), zero = {{0, 0, 0, 0}};
	const cid_t *ev = r->opcode == WAL_OP_DELETE_KEY ? &zero : &v;
	if (memcmp(&r->val, ev, sizeof(cid_t)) != 0)
		stress_fail("UNKNOWN-RECORD", "LSN %" PRIu64 ": wrong value for producer %u key %u",
			    r->lsn, pid, s);
	if (p->a[at].seen++)
		stress_fail("DUPLICATE", "LSN %" PRIu64 ": producer %u operation #%u (opcode %u, "
			    "key %u) logged twice", r->lsn, pid, at, r->opcode, s);
	if ((uint64_t)at + 1 <= p->last_seen)
		stress_fail("PRODUCER-ORDER", "LSN %" PRIu64 ": producer %u operation #%u logged "
			    "after its operation #%" PRIu64, r->lsn, pid, at, p->last_seen - 1);
	p->last_seen = (uint64_t)at + 1;
	records_checked++;
}

static void check_log(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		stress_die("opendir %s", dir);
	char **names = NULL;
	size_t nn = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint64_t first;
		if (rec_seg_parse(e->d_name, &first) == 0) {
			names = realloc(names, (nn + 1) * sizeof(*names));
			names[nn++] = strdup(e->d_name);
		}
	}
	closedir(d);
	if (nn == 0)
		stress_fail("SEGMENT-HEADER", "no WAL segment in %s", dir);
	qsort(names, nn, sizeof(*names), name_cmp); /* 16 hex digits: name order = LSN order */
	uint64_t expect = 0;
	uint8_t *buf = malloc(G.segment_bytes);
	for (size_t i = 0; i < nn; i++) {
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path))
			stress_die("path too long");
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			stress_die("open %s", path);
		struct stat sb;
		fstat(fd, &sb);
		size_t len = (size_t)sb.st_size;
		if (len > G.segment_bytes) {
			buf = realloc(buf, len);
		}
		size_t got = 0;
		while (got < len) {
			ssize_t r = read(fd, buf + got, len - got);
			if (r <= 0)
				stress_die("read %s", path);
			got += (size_t)r;
		}
		close(fd);
		uint64_t name_lsn, first, segb;
		rec_seg_parse(names[i], &name_lsn);
		struct wal_rec r;
		if (len < WAL_REC_SIZE || rec_decode(buf, &r) != 0 ||
		    rec_seg_header_check(&r, &first, &segb) != 0 || first != name_lsn)
			stress_fail("SEGMENT-HEADER", "%s: bad segment header", names[i]);
		if (i > 0 && first != expect)
			stress_fail("LSN-CONTINUITY", "%s starts at LSN %" PRIu64 ", previous segment "
				    "ended before %" PRIu64, names[i], first, expect);
		expect = first;
		for (size_t off = WAL_REC_SIZE; off + WAL_REC_SIZE <= len; off += WAL_REC_SIZE) {
			const uint8_t *rec = buf + off;
			int rc = rec_decode(rec, &r);
			if (rc == REC_ZERO)
				break;
			uint32_t stored = (uint32_t)rec[124] | (uint32_t)rec[125] << 8 |
					  (uint32_t)rec[126] << 16 | (uint32_t)rec[127] << 24;
			if (rec_crc32c(rec, 124) != stored)
				stress_fail("CRC", "%s record %zu: CRC-32C mismatch", names[i],
					    off / WAL_REC_SIZE);
			if (rc != 0)
				stress_fail("CRC", "%s record %zu: rec_decode returned %d (%s)",
					    names[i], off / WAL_REC_SIZE, rc, cidstore_strerror(rc));
			if (rec_decode_next(rec, expect, &r) != 0)
				stress_fail("LSN-CONTINUITY", "%s record %zu: LSN %" PRIu64 ", expected %"
					    PRIu64, names[i], off / WAL_REC_SIZE, r.lsn, expect);
			expect++;
			match_record(&r);
		}
		segments_checked++;
		free(names[i]);
	}
	free(names);
	free(buf);
}

static int rm_cb(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	char path[4096];
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		unlink(path);
	}
	closedir(d);
	return rmdir(dir);
}

static int run_one(const struct stress_opts *o)
{
	G.np = o->threads;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/stress_wal.XXXXXX", G.base);
	if (!mkdtemp(dir))
		stress_die("mkdtemp %s failed", dir);
	cidstore_options_t opt;
	cidstore_options_init(&opt);
	opt.dir = dir;
	opt.durability = CIDSTORE_DURABILITY_ASYNC;
	opt.ring_records = G.ring;
	opt.segment_bytes = G.segment_bytes;
	opt.checkpoint_wal_bytes = 0; /* no checkpoint: the log keeps everything */
	opt.seed = o->seed ? o->seed : 1;
	int rc = cidstore_open(&opt, &G.s);
	if (rc)
		stress_die("cidstore_open(%s): %s", dir, cidstore_strerror(rc));
	atomic_store(&G.stop, 0);
	atomic_store(&G.finished, 0);
	G.p = calloc(G.np, sizeof(*G.p));
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < G.np; i++) {
		G.p[i].id = i;
		if (pthread_create(&G.p[i].th, NULL, producer_main, &G.p[i]))
			stress_die("pthread_create failed");
	}
	uint64_t t_end = t0 + (uint64_t)(o->seconds * 1e9);
	while (now_ns() < t_end && atomic_load(&G.finished) < G.np)
		sleep_ms(10);
	atomic_store(&G.stop, 1);
	for (unsigned i = 0; i < G.np; i++)
		pthread_join(G.p[i].th, NULL);
	double secs = (double)(now_ns() - t0) / 1e9;
	cidstore_stats_t st;
	cidstore_stats(G.s, &st);
	rc = cidstore_close(G.s);
	if (rc)
		stress_fail("CLOSE", "cidstore_close returned %d (%s); store in %s", rc,
			    cidstore_strerror(rc), dir);
	printf("%s: store in %s\n", stress_name, dir);
	check_log(dir);
	uint64_t acked = 0, live = 0, ops[9] = {0};
	for (unsigned i = 0; i < G.np; i++) {
		struct producer *p = &G.p[i];
		for (size_t j = 0; j < p->n; j++) {
			if (!p->a[j].seen)
				stress_fail("LOST", "producer %u operation #%zu (opcode %u, key %u) was "
					    "acknowledged but is not in the log", i, j, p->a[j].opcode,
					    p->a[j].s);
			ops[p->a[j].opcode]++;
		}
		acked += p->n;
		for (uint32_t s = 0; s < p->nkeys; s++)
			live += p->live[s];
	}
	if (records_checked != acked)
		stress_fail("DUPLICATE", "%" PRIu64 " records for %" PRIu64 " acknowledged "
			    "operations", records_checked, acked);
	/* recovery: reopen and compare with what the producers built */
	opt.durability = CIDSTORE_DURABILITY_NONE;
	rc = cidstore_open(&opt, &G.s);
	if (rc)
		stress_fail("RECOVERY", "reopen failed: %s", cidstore_strerror(rc));
	cidstore_stats_t st2;
	cidstore_stats(G.s, &st2);
	if (st2.keys != live || st2.values != live)
		stress_fail("RECOVERY", "reopened store has %" PRIu64 " keys / %" PRIu64 " values, "
			    "expected %" PRIu64, st2.keys, st2.values, live);
	for (unsigned i = 0; i < G.np; i++)
		for (uint32_t s = 0; s < G.p[i].nkeys; s++) {
			cid_t k = cid_make(1, i, s), v = cid_make(2, i, s);
			if (cidstore_contains(G.s, &k, &v) != G.p[i].live[s])
				stress_fail("RECOVERY", "producer %u key %u: present %d after reopen, "
					    "expected %d", i, s, !G.p[i].live[s], G.p[i].live[s]);
		}
	cidstore_close(G.s);
	printf("%s: %u producers, %.2f s, ring %u records: %" PRIu64 " acknowledged operations "
	       "(insert %" PRIu64 ", delete_value %" PRIu64 ", delete_key %" PRIu64 ") = %" PRIu64
	       " records in %" PRIu64 " segments, each exactly once, CRC valid, per-producer "
	       "order kept; %" PRIu64 " fdatasyncs; recovery reproduced %" PRIu64 " live pairs\n",
	       stress_name, G.np, secs, G.ring, acked, ops[WAL_OP_INSERT],
	       ops[WAL_OP_DELETE_VALUE], ops[WAL_OP_DELETE_KEY], records_checked,
	       segments_checked, st.wal_fsyncs, live);
	for (unsigned i = 0; i < G.np; i++) {
		free(G.p[i].a);
		free(G.p[i].live);
		free(G.p[i].ins_at);
		free(G.p[i].del_at);
	}
	free(G.p);
	records_checked = segments_checked = 0;
	rm_cb(dir);
	return 0;
}

int main(int argc, char **argv)
{
	struct stress_opts o = {.name = "stress_wal", .threads = 8, .seconds = 3, .keys = 0};
	const char *tmp = getenv("TMPDIR");
	G.base = tmp && *tmp ? tmp : "/tmp";
	G.ring = 64;
	G.segment_bytes = 256 << 10;
	G.max_records = 400000;
	stress_parse(&o, argc, argv, extra_opts, h_opt,
		     " [--ring N] [--segment-bytes N] [--max-records N] [--dir PATH]\n"
		     "  (--keys is ignored: every producer inserts fresh keys)");
	if (G.ring < 64 || (G.ring & (G.ring - 1)))
		stress_die("--ring must be a power of two >= 64");
	if (G.segment_bytes < 4096 || G.segment_bytes % 128)
		stress_die("--segment-bytes must be a multiple of 128, >= 4096");
	return stress_main_loop(&o, run_one);
}
