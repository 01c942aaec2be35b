/*
 * retune_demo.c — cidstore_retune under load: N threads insert into a
 * durable store without pause while the main thread switches durability
 * ASYNC -> SYNC -> ASYNC (and finally runs one cidstore_maintain pass after
 * deleting most keys).  Prints the throughput of every phase and a
 * timeline, so the switch is visible as it happens.  Public API only.
 *
 *   cidstore-retune-demo [--threads N] [--seconds S] [--dir DIR]
 *
 * Without --dir a temporary directory under /tmp is used and removed.
 */
#include <cidstore.h>

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256

struct counter {
	_Atomic uint64_t n; /* inserts done by one thread (relaxed) */
	char pad[56];
};

static struct counter counts[MAX_THREADS];
static _Atomic bool stop;
static _Atomic int failed;
static cidstore_t *store;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t total(unsigned threads)
{
	uint64_t n = 0;
	for (unsigned t = 0; t < threads; t++)
		n += atomic_load_explicit(&counts[t].n, memory_order_relaxed);
	return n;
}

static cid_t key_of(unsigned t, uint64_t i)
{
	cid_t c = {{0x6b6579ull, t, i, i * 0x9e3779b97f4a7c15ull}};
	return c;
}

static void *writer(void *p)
{
	unsigned t = (unsigned)(uintptr_t)p;
	cid_t v = {{0x76616c, t, 0, 0}};
	for (uint64_t i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
		cid_t k = key_of(t, i);
		int rc = cidstore_insert(store, &k, &v);
		if (rc < 0) {
			fprintf(stderr, "insert: %s\n", cidstore_strerror(rc));
			atomic_store(&failed, rc);
			break;
		}
		atomic_store_explicit(&counts[t].n, i + 1, memory_order_relaxed);
	}
	return NULL;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static const char *dname(cidstore_durability_t d)
{
	return d == CIDSTORE_DURABILITY_SYNC ? "SYNC" : d == CIDSTORE_DURABILITY_ASYNC ? "ASYNC" : "NONE";
}

struct phase {
	cidstore_durability_t d;
	double secs, retune_ms;
	uint64_t ops, fsyncs;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cidstore-retune-demo [--threads N] [--seconds S] [--dir DIR]\n"
		"  N threads (default 32) insert without pause into a durable store while\n"
		"  the durability is switched ASYNC -> SYNC -> ASYNC with cidstore_retune,\n"
		"  S seconds per phase (default 2).  Then 90%% of the keys are deleted and\n"
		"  one cidstore_maintain pass runs.  DIR: the store directory (default: a\n"
		"  temporary one, removed at the end).\n");
}

int main(int argc, char **argv)
{
	unsigned threads = 32;
	double secs = 2;
	const char *dir = NULL;
	static const struct option lo[] = {{"threads", required_argument, NULL, 't'},
					   {"seconds", required_argument, NULL, 's'},
					   {"dir", required_argument, NULL, 'd'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "t:s:d:h", lo, NULL)) != -1) {
		switch (c) {
		case 't': threads = (unsigned)atoi(optarg); break;
		case 's': secs = atof(optarg); break;
		case 'd': dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (threads < 1 || threads > MAX_THREADS || secs <= 0) {
		usage(stderr);
		return 2;
	}
	char tmp[] = "/tmp/cidstore-retune-demo-XXXXXX";
	bool own_dir = !dir;
	if (own_dir) {
		if (!mkdtemp(tmp)) {
			perror("mkdtemp");
			return 1;
		}
		dir = tmp;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/store", dir);

	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = path;
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	int rc = cidstore_open(&o, &store);
	if (rc) {
		fprintf(stderr, "open %s: %s\n", path, cidstore_strerror(rc));
		return 1;
	}
	printf("cidstore-retune-demo: %u threads insert into %s; durability switched by "
	       "cidstore_retune every %.1f s\n\n",
	       threads, path, secs);
	pthread_t th[MAX_THREADS];
	for (unsigned t = 0; t < threads; t++)
		pthread_create(&th[t], NULL, writer, (void *)(uintptr_t)t);

	struct phase ph[3] = {{CIDSTORE_DURABILITY_ASYNC, 0, 0, 0, 0},
			      {CIDSTORE_DURABILITY_SYNC, 0, 0, 0, 0},
			      {CIDSTORE_DURABILITY_ASYNC, 0, 0, 0, 0}};
	const double tick = secs / 8;
	double t_start = now_s();
	printf("%8s  %-6s %14s\n", "time s", "mode", "inserts/s");
	for (int p = 0; p < 3 && !atomic_load(&failed); p++) {
		if (p > 0) {
			cidstore_options_t n;
			cidstore_get_options(store, &n);
			n.durability = ph[p].d;
			double r0 = now_s();
			rc = cidstore_retune(store, &n);
			ph[p].retune_ms = (now_s() - r0) * 1e3;
			if (rc) {
				fprintf(stderr, "retune: %s\n", cidstore_strerror(rc));
				atomic_store(&failed, rc);
				break;
			}
			printf("%8.2f  -- retune to %s returned in %.2f ms --\n", now_s() - t_start,
			       dname(ph[p].d), ph[p].retune_ms);
		}
		cidstore_stats_t st0, st1;
		cidstore_stats(store, &st0);
		uint64_t n0 = total(threads);
		double p0 = now_s(), last = p0;
		uint64_t last_n = n0;
		while (now_s() - p0 < secs && !atomic_load(&failed)) {
			struct timespec ts = {(time_t)tick, (long)((tick - (time_t)tick) * 1e9)};
			nanosleep(&ts, NULL);
			double t = now_s();
			uint64_t n = total(threads);
			printf("%8.2f  %-6s %14.0f\n", t - t_start, dname(ph[p].d),
			       (double)(n - last_n) / (t - last));
			last = t;
			last_n = n;
		}
		cidstore_stats(store, &st1);
		ph[p].secs = now_s() - p0;
		ph[p].ops = total(threads) - n0;
		ph[p].fsyncs = st1.wal_fsyncs - st0.wal_fsyncs;
	}
	atomic_store(&stop, true);
	for (unsigned t = 0; t < threads; t++)
		pthread_join(th[t], NULL);

	printf("\n%-6s %-6s %8s %14s %10s %16s\n", "phase", "mode", "seconds", "inserts/s",
	       "fsyncs", "inserts/fsync");
	for (int p = 0; p < 3; p++) {
		printf("%-6d %-6s %8.2f %14.0f %10llu %16.1f\n", p + 1, dname(ph[p].d), ph[p].secs,
		       ph[p].secs > 0 ? (double)ph[p].ops / ph[p].secs : 0.0,
		       (unsigned long long)ph[p].fsyncs,
		       ph[p].fsyncs ? (double)ph[p].ops / (double)ph[p].fsyncs : 0.0);
	}

	/* maintenance: delete 90% of the keys, one pass */
	uint64_t deleted = 0;
	for (unsigned t = 0; t < threads && !atomic_load(&failed); t++) {
		uint64_t n = atomic_load(&counts[t].n);
		for (uint64_t i = 0; i < n; i++) {
			if (i % 10 == 0)
				continue;
			cid_t k = key_of(t, i);
			if (cidstore_delete_key(store, &k) == 1)
				deleted++;
		}
	}
	cidstore_stats_t a, b;
	cidstore_stats(store, &a);
	double m0 = now_s();
	rc = cidstore_maintain(store);
	double mt = now_s() - m0;
	cidstore_stats(store, &b);
	printf("\ndeleted %llu keys (ASYNC; the background thread ran %llu passes meanwhile)\n"
	       "cidstore_maintain: %s in %.2f s: index memory %.1f -> %.1f MiB, %llu entries "
	       "moved, %.1f MiB released, %llu tables shrunk\n",
	       (unsigned long long)deleted, (unsigned long long)a.maint_passes,
	       rc ? cidstore_strerror(rc) : "ok", mt, (double)a.memory_bytes / 1048576.0,
	       (double)b.memory_bytes / 1048576.0,
	       (unsigned long long)(b.maint_entries_moved - a.maint_entries_moved),
	       (double)(b.maint_bytes_released - a.maint_bytes_released) / 1048576.0,
	       (unsigned long long)(b.maint_tables_shrunk - a.maint_tables_shrunk));
	int crc = cidstore_close(store);
	if (own_dir)
		nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return atomic_load(&failed) || rc || crc ? 1 : 0;
}
