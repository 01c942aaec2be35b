/*
 * demo.c — `cidstore demo` (alias `bench`): its options, the order of the
 * runs (in-memory points: workload x threads x mode; then the durable
 * runs), progress on stderr, and which report goes out.  Measuring is in
 * demo_measure.c, the reports in demo_report.c; demo.h says how a point is
 * timed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "demo.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage_demo(FILE *f)
{
	fprintf(f,
		"Usage: %s demo [--threads N] [--ops N] [--prefill N] [--repeat R]\n"
		"                     [--seed N] [--json] [--plot FILE.png] [--no-durable]\n"
		"\n"
		"The scaling demo.  For every thread count 1..N it opens a fresh in-memory\n"
		"store twice -- serialized (one global lock, the baseline) and free-threaded\n"
		"(the real thing) -- and runs the same two workloads on each:\n"
		"  insert-heavy  100%% inserts of fresh random 256-bit keys into an empty store\n"
		"  lookup-heavy  90%% lookups of present keys / 10%% inserts of fresh keys on a\n"
		"                store prefilled with --prefill keys\n"
		"Then a short time-bounded insert run (1 s per point) on a store in a\n"
		"temporary directory, durability async and sync, 1 and N threads.\n"
		"It prints throughput and speed-ups as a table, then a short summary.\n"
		"\n"
		"Timing: the clock starts when all threads of a run wait to be released\n"
		"and stops when the last one is done.  Every point is measured for at\n"
		"least %.0f ms: when one run of --ops operations is shorter, more rounds of\n"
		"--ops operations follow (insert-heavy on a fresh store each, lookup-heavy\n"
		"on the same prefilled store) and the rate is their operations over their\n"
		"measured time; the table says when that happened.\n"
		"\n"
		"  -t, --threads N    highest thread count (default: number of cores)\n"
		"  -n, --ops N        operations per run, split over the threads\n"
		"                     (default 600k; k and m suffixes work)\n"
		"  -p, --prefill N    keys in the store before the lookup-heavy runs\n"
		"                     (default 300k)\n"
		"  -j, --json         machine-readable JSON on stdout instead of the table\n"
		"  -P, --plot FILE    write a chart to FILE (PNG) through gnuplot; the\n"
		"                     gnuplot script is written beside it as FILE.gp\n"
		"                     (created before anything is measured)\n"
		"  -D, --no-durable   skip the durable runs (in-memory stores only);\n"
		"                     --durable (-d) is accepted and is the default\n"
		"  -r, --repeat R     runs per point; the table shows the median (default 3)\n"
		"  -s, --seed N       key seed (default: fixed, so runs are repeatable)\n"
		"  -h, --help         this help\n"
		"\n"
		"Progress goes to stderr.  Thread counts above the number of cores are\n"
		"oversubscribed and marked with '*'.\n"
		"Exit status: 0 done; 1 a run failed, a lookup lost a key, or the chart\n"
		"could not be written (gnuplot missing is not an error: the script is\n"
		"kept); 2 usage error.\n",
		prog, DEMO_MIN_SECS * 1000);
}

static void parse_demo_args(int argc, char **argv, demo_cfg_t *cfg)
{
	static const struct option longopts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "ops", required_argument, NULL, 'n' },
		{ "prefill", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'P' },
		{ "durable", no_argument, NULL, 'd' },
		{ "no-durable", no_argument, NULL, 'D' },
		{ "seed", required_argument, NULL, 's' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0];
	unsigned long v;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "t:n:p:jP:dDs:r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_ulong(optarg, 1, 1024, &v) != 0)
				die_usage(cmd, "--threads wants a number from 1 to 1024, not '%s'", optarg);
			cfg->max_threads = (unsigned)v;
			break;
		case 'n':
			if (parse_ulong(optarg, 1, 1000000000000ul, &v) != 0)
				die_usage(cmd, "--ops wants a positive number, not '%s'", optarg);
			cfg->ops = v;
			break;
		case 'p':
			if (parse_ulong(optarg, 1, 1000000000000ul, &v) != 0)
				die_usage(cmd, "--prefill wants a positive number, not '%s'", optarg);
			cfg->prefill = v;
			break;
		case 'j': cfg->json = true; break;
		case 'P':
			if (*optarg == '\0')
				die_usage(cmd, "--plot wants a file name");
			cfg->plot = optarg;
			break;
		case 'd': cfg->durable = true; break;
		case 'D': cfg->durable = false; break;
		case 's':
			if (parse_ulong(optarg, 0, ULONG_MAX, &v) != 0)
				die_usage(cmd, "--seed wants a number, not '%s'", optarg);
			cfg->seed = v;
			break;
		case 'r':
			if (parse_ulong(optarg, 1, DEMO_MAX_REPEAT, &v) != 0)
				die_usage(cmd, "--repeat wants a number from 1 to %d, not '%s'",
					  DEMO_MAX_REPEAT, optarg);
			cfg->repeat = (unsigned)v;
			break;
		case 'h': usage_demo(stdout); exit(EXIT_OK);
		default: die_usage(cmd, "bad option");
		}
	}
	if (optind < argc)
		die_usage(cmd, "unexpected argument '%s'", argv[optind]);
}

typedef struct progress {
	bool tty;
	unsigned done, total;
	double t0;
} progress_t;

static void progress_step(progress_t *p, const char *what)
{
	if (p->tty) {
		const int width = 24;
		int fill = p->total ? (int)((uint64_t)p->done * width / p->total) : width;
		fprintf(stderr, "\r\033[K[%.*s%*s] %u/%u %s", fill,
			"########################", width - fill, "", p->done + 1, p->total,
			what);
	} else {
		fprintf(stderr, "demo: [%u/%u] %s\n", p->done + 1, p->total, what);
	}
	fflush(stderr);
}

static void progress_end(progress_t *p)
{
	if (p->tty)
		fprintf(stderr, "\r\033[K");
	fprintf(stderr, "demo: %u %s in %.1f s\n", p->done, plural(p->done, "run", "runs"),
		now_sec() - p->t0);
}

/* The in-memory points: workload x threads x mode, each on fresh stores.
 * Returns 0, or prints which point failed and returns the exit code. */
static int measure_memory(const char *cmd, demo_t *d, progress_t *pg)
{
	for (int wl = WL_INSERT; wl <= WL_LOOKUP; wl++) {
		for (unsigned t = 1; t <= d->cfg.max_threads; t++) {
			result_t *r = &d->res[(size_t)wl * d->cfg.max_threads + (t - 1)];
			r->wl = (workload_t)wl;
			r->threads = t;
			for (int mode = 0; mode < 2; mode++) {
				char what[160];
				snprintf(what, sizeof what, "%s, %s, %u %s%s", workload_name(r->wl),
					 mode ? "free-threaded" : "serialized", t,
					 plural(t, "thread", "threads"),
					 t > d->cores ? " (oversubscribed)" : "");
				progress_step(pg, what);
				int rc = measure_point(&d->cfg, r, mode, d->cores);
				if (rc != 0) {
					if (pg->tty)
						fputc('\n', stderr);
					return report_err(cmd, what, rc);
				}
				if (r->rounds[mode] > d->max_rounds)
					d->max_rounds = r->rounds[mode];
				d->total_misses += r->misses[mode];
				pg->done++;
			}
		}
	}
	return EXIT_OK;
}

/* The durable runs: time-bounded, since a SYNC insert waits for a disk
 * flush and its rate depends on the device far more than on cidstore.  A
 * failure stops them and is reported with the results, not as an error. */
static void measure_disk(demo_t *d, progress_t *pg, const unsigned *threads, unsigned n)
{
	static const cidstore_durability_t modes[2] = { CIDSTORE_DURABILITY_ASYNC,
							CIDSTORE_DURABILITY_SYNC };
	for (int m = 0; m < 2; m++) {
		for (unsigned ti = 0; ti < n; ti++) {
			char what[128];
			snprintf(what, sizeof what, "durable %s, %u %s", durability_name(modes[m]),
				 threads[ti], plural(threads[ti], "thread", "threads"));
			progress_step(pg, what);
			d->durable_rc = measure_durable(&d->cfg, modes[m], threads[ti],
							&d->dres[d->ndres]);
			if (d->durable_rc != 0)
				return;
			d->ndres++;
			pg->done++;
		}
	}
}

int cmd_demo(int argc, char **argv)
{
	const char *cmd = argv[0];
	demo_t d;
	memset(&d, 0, sizeof d);
	d.cores = ncores();
	d.cfg = (demo_cfg_t){ .max_threads = d.cores, .ops = 600000, .prefill = 300000,
			      .seed = 0x243f6a8885a308d3ull, .repeat = 3, .durable = true };
	parse_demo_args(argc, argv, &d.cfg);

	int rc = cidstore_build_info(&d.bi);
	if (rc != 0)
		return report_err(cmd, "cidstore_build_info", rc);
	cpu_model(d.cpu, sizeof d.cpu);
	if (getloadavg(&d.load1, 1) != 1)
		d.load1 = -1;
	plot_t *plot = NULL;
	if (d.cfg.plot != NULL && (plot = plot_open(d.cfg.plot)) == NULL)
		return EXIT_RUNTIME;
	d.nres = d.cfg.max_threads * 2u;
	d.res = calloc(d.nres, sizeof *d.res);
	if (d.res == NULL) {
		fprintf(stderr, "%s %s: out of memory\n", prog, cmd);
		plot_discard(plot);
		return EXIT_RUNTIME;
	}
	unsigned dthreads[2] = { 1, d.cfg.max_threads };
	unsigned ndthreads = d.cfg.max_threads > 1 ? 2 : 1;
	progress_t pg = { .tty = isatty(STDERR_FILENO) == 1, .t0 = now_sec(),
			  .total = (unsigned)d.nres * 2 + (d.cfg.durable ? 2 * ndthreads : 0) };

	int code = measure_memory(cmd, &d, &pg);
	if (code != EXIT_OK) {
		plot_discard(plot);
		free(d.res);
		return code;
	}
	if (d.cfg.durable)
		measure_disk(&d, &pg, dthreads, ndthreads);
	progress_end(&pg);

	if (d.cfg.json) {
		if (d.durable_rc == CIDSTORE_ENOTSUP)
			fprintf(stderr, "%s %s: durable mode is not available in this build "
				"(cidstore_open with a directory: %s); skipped\n",
				prog, cmd, cidstore_strerror(d.durable_rc));
		else if (d.durable_rc != 0)
			fprintf(stderr, "%s %s: durable run failed: %s; skipped\n", prog, cmd,
				cidstore_strerror(d.durable_rc));
		demo_print_json(&d);
	} else {
		demo_print_table(&d);
		code = demo_print_summary(&d);
	}
	if (plot != NULL) {
		int pc = plot_finish(plot, &d);
		if (code == EXIT_OK)
			code = pc;
	}
	if (code == EXIT_OK && d.total_misses > 0)
		code = EXIT_RUNTIME;
	free(d.res);
	return code;
}
