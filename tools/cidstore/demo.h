/*
 * demo.h — the scaling demo (`cidstore demo`, alias `bench`), shared by its
 * three files: demo.c (options, the order of the runs, progress),
 * demo_measure.c (workload threads and the clock) and demo_report.c (table,
 * JSON, summary paragraph, gnuplot chart).
 *
 * How a point is measured (demo_measure.c): the clock starts when every
 * worker thread is created and waiting, just before they are released,
 * and stops when the last one has been joined, so a rate is operations over
 * the wall time the whole team needed.  A point's measured time is at
 * least DEMO_MIN_SECS: when one run of --ops operations is shorter, more
 * rounds of --ops operations follow (insert-heavy: each on a fresh, empty
 * store; lookup-heavy: on the same prefilled store, with fresh keys for its
 * inserts) until the rounds' measured times add up to DEMO_MIN_SECS, and
 * the rate is their operations over their time.
 */
#ifndef TOOL_DEMO_H
#define TOOL_DEMO_H

#include "common.h"

#define DEMO_MIN_SECS 0.05     /* shortest measured time of a point */
#define DEMO_MAX_ROUNDS 100000 /* ... unless it took this many rounds */
#define DEMO_DURABLE_SECS 1.0  /* each durable run */
#define DEMO_MAX_REPEAT 101

typedef enum { WL_INSERT, WL_LOOKUP } workload_t;

const char *workload_name(workload_t w); /* "insert-heavy", "lookup-heavy" */

typedef struct demo_cfg {
	unsigned max_threads;
	uint64_t ops;     /* operations per round, split over the threads */
	uint64_t prefill; /* keys in the store before lookup-heavy rounds */
	bool json;
	bool durable;
	const char *plot; /* PNG path, or NULL */
	uint64_t seed;
	unsigned repeat;  /* repetitions per point; the median is kept */
} demo_cfg_t;

/* One (workload, threads) point; [0] serialized, [1] free-threaded. */
typedef struct result {
	workload_t wl;
	unsigned threads;
	double ops_s[2];    /* the median repetition's rate */
	double secs[2];     /* ... its measured time */
	uint64_t ops[2];    /* ... its operations, every round */
	unsigned rounds[2]; /* ... its rounds of --ops operations */
	uint64_t misses[2]; /* lookups of prefilled keys that found nothing
			       (every repetition): must stay 0 */
} result_t;

typedef struct durable_result {
	cidstore_durability_t d;
	unsigned threads;
	double ops_s;
	double secs;
	uint64_t ops;
	double close_secs;
} durable_result_t;

/* One demo: its options, the machine, and every result. */
typedef struct demo {
	demo_cfg_t cfg;
	cidstore_build_info_t bi;
	unsigned cores;
	char cpu[128];
	double load1;        /* 1-minute load average at the start; -1 unknown */
	result_t *res;       /* res[wl * max_threads + threads - 1] */
	size_t nres;
	durable_result_t dres[4];
	size_t ndres;
	int durable_rc;      /* why the durable runs stopped (0: they did not) */
	uint64_t total_misses;
	unsigned max_rounds; /* most rounds any measured repetition took */
} demo_t;

/* demo_measure.c.  Both return 0 or a library error code. */

/* cfg->repeat repetitions of one point in one mode (0 serialized, 1
 * free-threaded); r->wl and r->threads say which point. */
int measure_point(const demo_cfg_t *cfg, result_t *r, int mode, unsigned cores);

/* One time-bounded (DEMO_DURABLE_SECS) insert-heavy run on a store in a
 * temporary directory (removed afterwards) with durability d. */
int measure_durable(const demo_cfg_t *cfg, cidstore_durability_t d, unsigned threads,
		    durable_result_t *out);

/* demo_report.c */
void demo_print_json(const demo_t *d);
void demo_print_table(const demo_t *d);
int demo_print_summary(const demo_t *d); /* EXIT_OK or EXIT_RUNTIME */

/* The chart: plot_open creates the gnuplot script beside cfg.plot (FILE.gp)
 * before anything is measured, so an unwritable path fails at once;
 * plot_finish writes it, runs gnuplot and checks that the PNG was written;
 * plot_discard removes the script of a demo that failed.  Each says what
 * went wrong on stderr; plot_open returns NULL, plot_finish the exit
 * code. */
typedef struct plot plot_t;
plot_t *plot_open(const char *png);
int plot_finish(plot_t *p, const demo_t *d);
void plot_discard(plot_t *p);

#endif /* TOOL_DEMO_H */
