/*
 * prometheus.c — cidstore_metrics_prometheus: the store's metrics in the
 * Prometheus text exposition format 0.0.4.
 *
 * Sources, each read without stopping anything:
 *   metrics.c       call counts by result, errors by code, batch items,
 *                   latency histograms (per-thread blocks, merged)
 *   cidstore_stats  keys, values, memory, index shape (walks the index
 *                   like cidstore_scan: O(keys), lock-free), WAL LSNs
 *   wal_metrics     ring occupancy, group-commit sizes, fdatasync times
 *   durable.c       checkpoints (count, time of the last), recovery
 *   maintenance     struct store_maint_counters (store_internal.h, maint.c)
 * Names follow the Prometheus conventions: a cidstore_ prefix, base units
 * in the name (_seconds, _bytes), _total on counters, one HELP and TYPE
 * line per family, histogram buckets cumulative with `le` in the unit of
 * the name.  The table of every name: docs/metrics.md.  A family
 * appears only when the store has its source: wal_* only with a log
 * (durability ASYNC or SYNC, not read_only), checkpoint_* and recovery_*
 * only with a directory.
 *
 * Output: snprintf into the caller's buffer, counting what did not fit, so
 * one pass gives both the text and the length needed.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/metrics.h"
#include "store/store_internal.h"

struct out {
	char *buf;
	size_t cap, len; /* len: bytes the whole text needs (without NUL) */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool room = o->len < o->cap;
	int n = vsnprintf(room ? o->buf + o->len : NULL, room ? o->cap - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Seconds from nanoseconds, exact: "0.000000064", "34.359738368", "2". */
static const char *secs(char *b, size_t n, uint64_t ns)
{
	uint64_t frac = ns % 1000000000ull;
	if (frac == 0) {
		snprintf(b, n, "%" PRIu64, (uint64_t)(ns / 1000000000ull));
		return b;
	}
	int len = snprintf(b, n, "%" PRIu64 ".%09" PRIu64, (uint64_t)(ns / 1000000000ull), frac);
	while (len > 0 && b[len - 1] == '0')
		b[--len] = '\0';
	return b;
}

static void one_u64(struct out *o, const char *name, const char *type, const char *help,
		    uint64_t v)
{
	family(o, name, type, help);
	put(o, "%s %" PRIu64 "\n", name, v);
}

static void gauge_u64(struct out *o, const char *name, const char *help, uint64_t v)
{
	one_u64(o, name, "gauge", help, v);
}

static void counter_u64(struct out *o, const char *name, const char *help, uint64_t v)
{
	one_u64(o, name, "counter", help, v);
}

static void gauge_secs(struct out *o, const char *name, const char *help, uint64_t ns)
{
	char b[32];
	family(o, name, "gauge", help);
	put(o, "%s %s\n", name, secs(b, sizeof b, ns));
}

/* The samples of one latency histogram (lat: util/lathist.h buckets, ns);
 * labels: "" or `op="lookup"`. */
static void hist_latency(struct out *o, const char *name, const char *labels,
			 const uint64_t *b, uint64_t sum_ns)
{
	char s[32];
	const char *sep = labels[0] ? "," : "";
	uint64_t cum = 0;
	for (unsigned i = 0; i < LH_FINITE; i++) {
		cum += b[i];
		put(o, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep,
		    secs(s, sizeof s, lh_upper_ns(i)), cum);
	}
	cum += b[LH_FINITE];
	put(o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
	const char *lo = labels[0] ? "{" : "", *lc = labels[0] ? "}" : "";
	put(o, "%s_sum%s%s%s %s\n", name, lo, labels, lc, secs(s, sizeof s, sum_ns));
	put(o, "%s_count%s%s%s %" PRIu64 "\n", name, lo, labels, lc, cum);
}

static const struct {
	const char *name, *pos, *neg; /* neg NULL: "ok" counts both */
} op_names[MT_OPS] = {
	[MT_INSERT] = {"insert", "added", "exists"},
	[MT_DELETE_VALUE] = {"delete_value", "removed", "absent"},
	[MT_DELETE_KEY] = {"delete_key", "removed", "absent"},
	[MT_LOOKUP] = {"lookup", "hit", "miss"},
	[MT_CONTAINS] = {"contains", "hit", "miss"},
	[MT_VALUES] = {"values", "hit", "miss"},
	[MT_LOOKUP_MANY] = {"lookup_many", "ok", NULL},
	[MT_INSERT_MANY] = {"insert_many", "ok", NULL},
	[MT_APPLY] = {"apply", "ok", NULL},
	[MT_SYNC] = {"sync", "ok", NULL},
	[MT_CHECKPOINT] = {"checkpoint", "ok", NULL},
	[MT_SCAN] = {"scan", "ok", NULL},
};

/* errors[] index -> code label (index -code; 0: anything else) */
static const char *const err_names[MT_ERRS] = {
	"other",   "EINVAL", "ENOMEM", "EIO",    "ECORRUPT", "EVERSION", "EBUSY",
	"ENOTSUP", "ERDONLY", "ERANGE", "ENOENT", "EACCES",  "ENOTDIR",  "ENOSPC",
};
_Static_assert(MT_ERRS == 14 && CIDSTORE_ENOSPC == -13, "err_names covers every code");

static const char *const batch_names[MT_BATCHES] = {
	[MT_B_LOOKUP_MANY] = "lookup_many",
	[MT_B_INSERT_MANY] = "insert_many",
	[MT_B_APPLY] = "apply",
};

static const char *durability_label(cidstore_durability_t d)
{
	return d == CIDSTORE_DURABILITY_SYNC ? "sync"
	       : d == CIDSTORE_DURABILITY_ASYNC ? "async"
						: "none";
}

static void put_store(struct out *o, cidstore_t *s, const cidstore_stats_t *st,
		      const struct mt_totals *t)
{
	family(o, "cidstore_info", "gauge",
	       "Constant 1; labels: library version, durability, serialized, read_only.");
	put(o, "cidstore_info{version=\"%s\",durability=\"%s\",serialized=\"%s\",read_only=\"%s\"} 1\n",
	    CIDSTORE_VERSION_STRING, durability_label(st->durability),
	    s->serialized ? "true" : "false", s->read_only ? "true" : "false");
	char b[32];
	family(o, "cidstore_open_timestamp_seconds", "gauge",
	       "When the store was opened (Unix time).");
	put(o, "cidstore_open_timestamp_seconds %s\n", secs(b, sizeof b, s->metrics.open_real_ns));
	gauge_u64(o, "cidstore_failed",
		  "1 after an I/O failure (the store refuses writes), else 0.", st->failed);
	gauge_u64(o, "cidstore_metrics_recording",
		  "1 when operations are recorded (option metrics), else 0.", s->metrics.on);
	family(o, "cidstore_operation_duration_sample_ratio", "gauge",
	       "Share of lookup and insert calls timed for cidstore_operation_duration_seconds.");
	put(o, "cidstore_operation_duration_sample_ratio %.9g\n", 1.0 / MT_SAMPLE_EVERY);
	gauge_u64(o, "cidstore_metrics_thread_blocks",
		  "Per-thread metric blocks allocated (peak threads that used the store at once).",
		  t->blocks);

	family(o, "cidstore_operations_total", "counter",
	       "Calls of the store API since open, by call and result.");
	for (unsigned i = 0; i < MT_OPS; i++) {
		const char *n = op_names[i].name;
		if (op_names[i].neg) {
			put(o, "cidstore_operations_total{op=\"%s\",result=\"%s\"} %" PRIu64 "\n", n,
			    op_names[i].pos, t->ops[i][MT_POS]);
			put(o, "cidstore_operations_total{op=\"%s\",result=\"%s\"} %" PRIu64 "\n", n,
			    op_names[i].neg, t->ops[i][MT_NEG]);
		} else {
			put(o, "cidstore_operations_total{op=\"%s\",result=\"ok\"} %" PRIu64 "\n", n,
			    t->ops[i][MT_POS] + t->ops[i][MT_NEG]);
		}
		put(o, "cidstore_operations_total{op=\"%s\",result=\"error\"} %" PRIu64 "\n", n,
		    t->ops[i][MT_ERR]);
	}
	family(o, "cidstore_errors_total", "counter",
	       "Error returns of the store API since open, by code (other: a callback's own value).");
	for (unsigned e = 1; e <= MT_ERRS; e++) {
		unsigned i = e % MT_ERRS; /* the codes in order, "other" last */
		put(o, "cidstore_errors_total{code=\"%s\"} %" PRIu64 "\n", err_names[i], t->errors[i]);
	}
	family(o, "cidstore_batch_items_total", "counter",
	       "Keys, pairs or operations passed to the batched calls.");
	for (unsigned k = 0; k < MT_BATCHES; k++)
		put(o, "cidstore_batch_items_total{op=\"%s\"} %" PRIu64 "\n", batch_names[k],
		    t->items[k]);
	family(o, "cidstore_batch_items_changed_total", "counter",
	       "Pairs added by insert_many, operations of apply that changed the store.");
	for (unsigned k = MT_B_INSERT_MANY; k < MT_BATCHES; k++)
		put(o, "cidstore_batch_items_changed_total{op=\"%s\"} %" PRIu64 "\n",
		    batch_names[k], t->changed[k]);

	family(o, "cidstore_operation_duration_seconds", "histogram",
	       "Duration of sampled lookup and insert calls (insert: SYNC commit included).");
	hist_latency(o, "cidstore_operation_duration_seconds", "op=\"lookup\"",
		     t->hist[MT_H_LOOKUP], t->hist_sum_ns[MT_H_LOOKUP]);
	hist_latency(o, "cidstore_operation_duration_seconds", "op=\"insert\"",
		     t->hist[MT_H_INSERT], t->hist_sum_ns[MT_H_INSERT]);
	family(o, "cidstore_sync_commit_duration_seconds", "histogram",
	       "SYNC writes: from the record in the log ring to its durable wake-up (every one).");
	hist_latency(o, "cidstore_sync_commit_duration_seconds", "",
		     t->hist[MT_H_SYNC_COMMIT], t->hist_sum_ns[MT_H_SYNC_COMMIT]);
}

static void put_index(struct out *o, const cidstore_stats_t *st)
{
	gauge_u64(o, "cidstore_keys", "Keys holding at least one value.", st->keys);
	gauge_u64(o, "cidstore_values", "Stored (key, value) pairs.", st->values);
	gauge_u64(o, "cidstore_spilled_keys", "Keys whose values live in a value set.",
		  st->spilled_keys);
	gauge_u64(o, "cidstore_index_memory_bytes",
		  "Bytes held by the index (tables, entries, value sets).", st->memory_bytes);
	gauge_u64(o, "cidstore_index_groups", "Index groups (cache lines of 11 slots).",
		  st->buckets);
	gauge_u64(o, "cidstore_index_depth", "The index table holds 2^depth groups.",
		  st->global_depth);
	counter_u64(o, "cidstore_index_groups_migrated_total",
		    "Groups migrated into a bigger table since open.", st->splits);
	counter_u64(o, "cidstore_index_doublings_total", "Index table doublings since open.",
		    st->dir_rebuilds);
	counter_u64(o, "cidstore_value_set_rebuilds_total",
		    "Value sets rebuilt (grown, or shrunk after deletes) since open.",
		    st->compactions);
	gauge_u64(o, "cidstore_epoch_garbage_objects",
		  "Objects retired but not yet freed (epoch garbage).", st->retired_pending);
	gauge_u64(o, "cidstore_epoch_records", "Thread records registered with the epoch.",
		  st->epoch_records);
}

static void put_wal(struct out *o, cidstore_t *s, const cidstore_stats_t *st)
{
	struct wal_stats ws;
	struct wal_metrics wm;
	wal_stats(s->wal, &ws);
	wal_metrics(s->wal, &wm);
	/* durable_lsn read after lsn in cidstore_stats: may pass it */
	uint64_t lag = st->wal_lsn > st->wal_durable_lsn ? st->wal_lsn - st->wal_durable_lsn : 0;
	gauge_u64(o, "cidstore_wal_lsn", "Last LSN handed out.", st->wal_lsn);
	gauge_u64(o, "cidstore_wal_durable_lsn", "Every record up to this LSN is on stable storage.",
		  st->wal_durable_lsn);
	gauge_u64(o, "cidstore_wal_durable_lag_records",
		  "Records logged but not yet durable (LSN - durable LSN).", lag);
	gauge_u64(o, "cidstore_wal_durable_lag_bytes",
		  "Bytes logged but not yet durable (128 per record).", lag * WAL_REC_SIZE);
	gauge_u64(o, "cidstore_wal_ring_records",
		  "Records in the log ring (reserved, not yet written out).", wm.ring_used);
	gauge_u64(o, "cidstore_wal_ring_capacity_records", "Capacity of the log ring in records.",
		  wm.ring_capacity);
	counter_u64(o, "cidstore_wal_records_total", "Records written to the log since open.",
		    st->wal_records);
	counter_u64(o, "cidstore_wal_written_bytes_total",
		    "Record bytes written to the log since open.", st->wal_records * WAL_REC_SIZE);
	gauge_u64(o, "cidstore_wal_live_bytes",
		  "Log bytes since the last checkpoint began (what recovery would replay).",
		  st->wal_bytes);
	gauge_u64(o, "cidstore_wal_segments", "Log segment files.", ws.segments);
	counter_u64(o, "cidstore_wal_fdatasyncs_total",
		    "fdatasync calls on log files since open (commits and new segments).",
		    st->wal_fsyncs);

	family(o, "cidstore_wal_group_commit_records", "histogram",
	       "Records made durable by each log fdatasync (group-commit size).");
	uint64_t cum = 0;
	for (unsigned i = 0; i + 1 < WAL_GROUP_BUCKETS; i++) {
		cum += wm.group_hist[i];
		put(o, "cidstore_wal_group_commit_records_bucket{le=\"%" PRIu64 "\"} %" PRIu64 "\n",
		    (uint64_t)1 << i, cum);
	}
	cum += wm.group_hist[WAL_GROUP_BUCKETS - 1];
	put(o, "cidstore_wal_group_commit_records_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	put(o, "cidstore_wal_group_commit_records_sum %" PRIu64 "\n", wm.group_records);
	put(o, "cidstore_wal_group_commit_records_count %" PRIu64 "\n", cum);

	family(o, "cidstore_wal_fdatasync_duration_seconds", "histogram",
	       "Duration of each log fdatasync that made records durable.");
	hist_latency(o, "cidstore_wal_fdatasync_duration_seconds", "", wm.sync_hist, wm.sync_ns);
}

static void put_durable(struct out *o, cidstore_t *s, const cidstore_stats_t *st)
{
	struct store_metrics *m = &s->metrics;
	counter_u64(o, "cidstore_checkpoints_total", "Checkpoints written since open.",
		    st->checkpoints);
	gauge_u64(o, "cidstore_checkpoint_size_bytes",
		  "Size of the newest checkpoint file (written, or loaded at open); the "
		  "automatic checkpoint waits for at least as much log.",
		  st->checkpoint_bytes);
	/* relaxed: a timestamp (mt_checkpoint_done) */
	uint64_t done = atomic_load_explicit(&m->ckpt_done_mono_ns, memory_order_relaxed);
	uint64_t now = mt_now_ns(), since = done ? done : m->open_mono_ns;
	gauge_secs(o, "cidstore_checkpoint_age_seconds",
		   "Time since the last checkpoint finished (since open when none has).",
		   now > since ? now - since : 0);
	family(o, "cidstore_recovery_duration_seconds", "gauge",
	       "Time recovery took at open (checkpoint load and log replay).");
	put(o, "cidstore_recovery_duration_seconds %.9g\n", s->recov.total_seconds);
	gauge_u64(o, "cidstore_recovery_replayed_records",
		  "Log records replayed by recovery at open.", s->recov.replayed);
}

static void put_maint(struct out *o, const struct store_maint_counters *mc)
{
	/* relaxed loads: counters (see struct store_maint_counters) */
#define MC(f) atomic_load_explicit(&mc->f, memory_order_relaxed)
	counter_u64(o, "cidstore_maintenance_passes_total",
		    "Maintenance passes finished (background and cidstore_maintain).", MC(passes));
	counter_u64(o, "cidstore_maintenance_entries_moved_total",
		    "Index entries moved out of sparse chunks by maintenance.", MC(entries_moved));
	counter_u64(o, "cidstore_maintenance_chunks_released_total",
		    "Index entry chunks given back to the OS by maintenance.", MC(chunks_released));
	counter_u64(o, "cidstore_maintenance_released_bytes_total",
		    "Index memory given back to the OS by maintenance.", MC(bytes_released));
	counter_u64(o, "cidstore_maintenance_tables_shrunk_total",
		    "Index tables replaced by one of half the size by maintenance.",
		    MC(tables_shrunk));
	counter_u64(o, "cidstore_maintenance_stale_entries_removed_total",
		    "Stale entries removed by the layer above the store (triples).",
		    MC(stale_cleaned));
	counter_u64(o, "cidstore_maintenance_allocator_purges_total",
		    "Times maintenance asked the allocator to return free pages to the OS.",
		    MC(purges));
	char b[32];
	family(o, "cidstore_maintenance_cpu_seconds_total", "counter",
	       "CPU time spent in maintenance passes.");
	put(o, "cidstore_maintenance_cpu_seconds_total %s\n", secs(b, sizeof b, MC(cpu_ns)));
#undef MC
}

CIDSTORE_API long cidstore_metrics_prometheus(cidstore_t *s, char *buf, size_t cap)
{
	if (!s || (!buf && cap))
		return CIDSTORE_EINVAL;
	cidstore_stats_t st;
	int rc = cidstore_stats(s, &st);
	if (rc)
		return rc;
	struct mt_totals t;
	mt_merge(&s->metrics, &t);
	struct out o = {buf, cap, 0};
	put_store(&o, s, &st, &t);
	put_index(&o, &st);
	if (s->wal)
		put_wal(&o, s, &st);
	if (s->durable)
		put_durable(&o, s, &st);
	put_maint(&o, &s->mc);
	if (cap)
		buf[o.len < cap ? o.len : cap - 1] = '\0';
	return o.len > (size_t)LONG_MAX ? CIDSTORE_ERANGE : (long)o.len;
}
