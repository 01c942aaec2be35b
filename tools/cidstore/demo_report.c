/*
 * demo_report.c — what the demo prints: the JSON object (--json), the
 * table, the summary paragraph that says what was measured and what the
 * numbers can and cannot mean, and the gnuplot chart (--plot).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "demo.h"
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The 1-thread row of r's workload. */
static const result_t *one_thread(const demo_t *d, const result_t *r)
{
	return &d->res[(size_t)r->wl * d->cfg.max_threads];
}

void demo_print_json(const demo_t *d)
{
	const demo_cfg_t *cfg = &d->cfg;
	json_t j = { .f = stdout };
	json_obj(&j, NULL);
	json_str(&j, "version", cidstore_version());
	json_str(&j, "build_type", d->bi.build_type);
	json_str(&j, "sanitizer", d->bi.sanitizer);
	json_str(&j, "cpu", d->cpu);
	json_u64(&j, "cores", d->cores);
	json_dbl(&j, "load_average_1min", d->load1);
	json_u64(&j, "max_threads", cfg->max_threads);
	json_u64(&j, "repeat", cfg->repeat);
	json_u64(&j, "ops_per_run", cfg->ops);
	json_dbl(&j, "min_measured_secs", DEMO_MIN_SECS);
	json_u64(&j, "prefill", cfg->prefill);
	json_u64(&j, "seed", cfg->seed);
	json_u64(&j, "lookup_misses", d->total_misses);
	json_arr(&j, "results");
	for (size_t i = 0; i < d->nres; i++) {
		const result_t *r = &d->res[i], *r1 = one_thread(d, r);
		json_obj(&j, NULL);
		json_str(&j, "workload", workload_name(r->wl));
		json_u64(&j, "threads", r->threads);
		json_bool(&j, "oversubscribed", r->threads > d->cores);
		json_dbl(&j, "serialized_ops_per_sec", r->ops_s[0]);
		json_dbl(&j, "free_threaded_ops_per_sec", r->ops_s[1]);
		json_dbl(&j, "serialized_secs", r->secs[0]);
		json_dbl(&j, "free_threaded_secs", r->secs[1]);
		json_u64(&j, "serialized_ops", r->ops[0]);
		json_u64(&j, "ops", r->ops[1]);
		json_u64(&j, "serialized_rounds", r->rounds[0]);
		json_u64(&j, "free_threaded_rounds", r->rounds[1]);
		json_dbl(&j, "speedup_vs_serialized", r->ops_s[1] / r->ops_s[0]);
		json_dbl(&j, "serialized_speedup_vs_1_thread", r->ops_s[0] / r1->ops_s[0]);
		json_dbl(&j, "free_threaded_speedup_vs_1_thread", r->ops_s[1] / r1->ops_s[1]);
		json_end_obj(&j);
	}
	json_end_arr(&j);
	json_obj(&j, "durable");
	json_bool(&j, "requested", cfg->durable);
	json_bool(&j, "available", cfg->durable && d->durable_rc == 0);
	if (cfg->durable && d->durable_rc != 0)
		json_str(&j, "error", cidstore_strerror(d->durable_rc));
	json_arr(&j, "results");
	for (size_t i = 0; i < d->ndres; i++) {
		const durable_result_t *dr = &d->dres[i];
		json_obj(&j, NULL);
		json_str(&j, "durability", durability_name(dr->d));
		json_u64(&j, "threads", dr->threads);
		json_dbl(&j, "ops_per_sec", dr->ops_s);
		json_u64(&j, "ops", dr->ops);
		json_dbl(&j, "secs", dr->secs);
		json_dbl(&j, "close_secs", dr->close_secs);
		json_end_obj(&j);
	}
	json_end_arr(&j);
	json_end_obj(&j);
	json_end_obj(&j);
}

void demo_print_table(const demo_t *d)
{
	const demo_cfg_t *cfg = &d->cfg;
	char a[32], b[32];
	printf("cidstore %s demo: in-memory store, %u %s (%s), %" PRIu64 " %s per run\n\n",
	       cidstore_version(), d->cores, plural(d->cores, "core", "cores"), d->cpu, cfg->ops,
	       plural(cfg->ops, "op", "ops"));
	printf("%-13s %8s %14s %14s %9s %9s %9s\n", "workload", "threads", "serialized",
	       "free-threaded", "free/ser", "ser/1T", "free/1T");
	printf("%-13s %8s %14s %14s %9s %9s %9s\n", "", "", "ops/s", "ops/s", "", "", "");
	for (size_t i = 0; i < d->nres; i++) {
		const result_t *r = &d->res[i], *r1 = one_thread(d, r);
		char th[16];
		if (i > 0 && r->threads == 1)
			printf("\n");
		snprintf(th, sizeof th, "%u%s", r->threads, r->threads > d->cores ? "*" : "");
		printf("%-13s %8s %14s %14s %8.2fx %8.2fx %8.2fx\n", workload_name(r->wl), th,
		       fmt_rate(r->ops_s[0], a, sizeof a), fmt_rate(r->ops_s[1], b, sizeof b),
		       r->ops_s[1] / r->ops_s[0], r->ops_s[0] / r1->ops_s[0],
		       r->ops_s[1] / r1->ops_s[1]);
	}
	if (cfg->max_threads > d->cores)
		printf("\n* more threads than cores: oversubscribed\n");
	if (d->max_rounds > 1) {
		printf("\n");
		printf("Note: a run of %" PRIu64 " %s took less than %.0f ms, so each such point\n"
		       "repeated it (up to %u rounds) until %.0f ms were measured; its rate is\n"
		       "the rounds' operations over their measured time.\n",
		       cfg->ops, plural(cfg->ops, "op", "ops"), DEMO_MIN_SECS * 1000, d->max_rounds,
		       DEMO_MIN_SECS * 1000);
	}
	if (d->ndres > 0) {
		printf("\ndurable insert-heavy (store in a temporary directory, %.0f s per run)\n",
		       DEMO_DURABLE_SECS);
		printf("%-13s %8s %14s %12s\n", "durability", "threads", "ops/s", "close (s)");
		for (size_t i = 0; i < d->ndres; i++)
			printf("%-13s %8u %14s %12.3f\n", durability_name(d->dres[i].d),
			       d->dres[i].threads, fmt_rate(d->dres[i].ops_s, a, sizeof a),
			       d->dres[i].close_secs);
	} else if (cfg->durable) {
		if (d->durable_rc == CIDSTORE_ENOTSUP)
			printf("\ndurable mode is not available in this build (cidstore_open "
			       "with a directory: %s); durable runs skipped.\n",
			       cidstore_strerror(d->durable_rc));
		else
			printf("\ndurable run failed: %s; durable runs skipped.\n",
			       cidstore_strerror(d->durable_rc));
	}
}

/* Does any row claim more than linear speed-up over its 1-thread row? */
static bool super_linear(const demo_t *d)
{
	for (size_t i = 0; i < d->nres; i++) {
		const result_t *r = &d->res[i], *r1 = one_thread(d, r);
		unsigned ideal = r->threads < d->cores ? r->threads : d->cores;
		if (r->ops_s[1] / r1->ops_s[1] > ideal * 1.05 ||
		    r->ops_s[0] / r1->ops_s[0] > ideal * 1.05)
			return true;
	}
	return false;
}

/* The summary paragraph, into m. */
static void summary_text(FILE *m, const demo_t *d)
{
	const demo_cfg_t *cfg = &d->cfg;
	unsigned cores = d->cores;
	/* Headline numbers: the top thread count within cores. */
	unsigned top = cfg->max_threads < cores ? cfg->max_threads : cores;
	const result_t *ins1 = &d->res[0], *insT = &d->res[top - 1];
	const result_t *lk1 = &d->res[cfg->max_threads];
	const result_t *lkT = &d->res[cfg->max_threads + top - 1];
	char a[32], b[32];
	fprintf(m,
		"Summary: what was measured is %s%u %s per point, each on a fresh in-memory "
		"store (no durability), on a machine with %u %s, at 1 to %u %s. ",
		cfg->repeat == 1 ? "" : "the median of ", cfg->repeat,
		plural(cfg->repeat, "run", "runs"), cores, plural(cores, "core", "cores"),
		cfg->max_threads, plural(cfg->max_threads, "thread", "threads"));
	if (cfg->max_threads > cores)
		fprintf(m, "Thread counts above %u (marked *) are oversubscribed: the extra "
			   "threads only time-share the cores, so those rows show robustness "
			   "under preemption, not speed. ",
			cores);
	fprintf(m,
		"Serialized mode runs every operation under one global lock (the \"GIL on\" "
		"baseline); free-threaded mode is the real store, with no global lock. "
		"At %u %s, free-threaded insert-heavy (%" PRIu64 " %s of fresh random keys "
		"into an empty store) ran at %s ops/s, %.2fx the serialized store and %.2fx "
		"its own 1-thread rate; lookup-heavy (90%% lookups of %" PRIu64 " prefilled "
		"keys, 10%% inserts) ran at %s ops/s, %.2fx serialized and %.2fx its "
		"1-thread rate. ",
		top, plural(top, "thread", "threads"), cfg->ops,
		plural(cfg->ops, "insert", "inserts"), fmt_rate(insT->ops_s[1], a, sizeof a),
		insT->ops_s[1] / insT->ops_s[0], insT->ops_s[1] / ins1->ops_s[1], cfg->prefill,
		fmt_rate(lkT->ops_s[1], b, sizeof b), lkT->ops_s[1] / lkT->ops_s[0],
		lkT->ops_s[1] / lk1->ops_s[1]);
	if (d->max_rounds > 1)
		fprintf(m, "Runs that short measure thread start-up and a small, cache-warm "
			   "store as much as the store's operations: use a larger --ops for "
			   "figures worth comparing. ");
	if (d->load1 >= 0.5)
		fprintf(m, "The machine was not idle: the 1-minute load average was %.1f "
			   "when the demo started, so other processes competed for the cores "
			   "and the multi-thread figures are lower than on a quiet machine. ",
			d->load1);
	if (cores > 1)
		fprintf(m, "On %u cores no more than %u-fold scaling is possible, and "
			   "anything else running on the machine shares those cores. ",
			cores, cores);
	if (super_linear(d))
		fprintf(m, "Where a row shows more than that against 1 thread, it is not a "
			   "real speed-up: the 1-thread run lost more time to other processes "
			   "(or to a colder cache) than that row did -- noise of this "
			   "measurement. ");
	else if (cores == 1)
		fprintf(m, "With one core, threads can only take turns: no speed-up is "
			   "possible here. ");
	if (strcmp(d->bi.sanitizer, "none") != 0 || strcmp(d->bi.build_type, "release") != 0 ||
	    d->bi.debug_checks || d->bi.shake)
		fprintf(m, "This is a %s build (sanitizer: %s%s%s): its figures say nothing "
			   "about release performance. ",
			d->bi.build_type, d->bi.sanitizer, d->bi.debug_checks ? ", debug checks" : "",
			d->bi.shake ? ", shake points" : "");
	if (d->ndres > 0)
		fprintf(m, "The durable rows insert for %.0f s each into a store in a temporary "
			   "directory; sync calls wait for an fdatasync shared by all waiting "
			   "threads (group commit), async calls only for room in the ring, so "
			   "they depend on the disk more than on cidstore. ",
			DEMO_DURABLE_SECS);
	if (d->total_misses > 0)
		fprintf(m, "WARNING: %" PRIu64 " %s of prefilled keys found nothing; "
			   "the store lost keys. ",
			d->total_misses, plural(d->total_misses, "lookup", "lookups"));
}

int demo_print_summary(const demo_t *d)
{
	char *sum = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&sum, &len);
	if (m == NULL) {
		fprintf(stderr, "%s demo: out of memory\n", prog);
		return EXIT_RUNTIME;
	}
	summary_text(m, d);
	if (fclose(m) != 0) {
		free(sum);
		fprintf(stderr, "%s demo: out of memory\n", prog);
		return EXIT_RUNTIME;
	}
	printf("\n");
	print_wrapped(stdout, sum, 76);
	free(sum);
	return EXIT_OK;
}

/* ---------------------------------------------------------------------- */
/* --plot                                                                  */
/* ---------------------------------------------------------------------- */
struct plot {
	const char *png;
	char *gp; /* the script: png's name with .gp for its extension */
	FILE *f;
};

plot_t *plot_open(const char *png)
{
	plot_t *p = calloc(1, sizeof *p);
	size_t len = strlen(png);
	const char *dot = strrchr(png, '.');
	if (dot != NULL && strchr(dot, '/') == NULL)
		len = (size_t)(dot - png);
	if (dot != NULL && strcmp(dot, ".gp") == 0)
		len = strlen(png); /* x.gp -> x.gp.gp, never the chart itself */
	if (p == NULL || asprintf(&p->gp, "%.*s.gp", (int)len, png) < 0) {
		fprintf(stderr, "%s demo: out of memory\n", prog);
		free(p);
		return NULL;
	}
	p->png = png;
	p->f = fopen(p->gp, "w");
	if (p->f == NULL) {
		fprintf(stderr, "%s demo: --plot: cannot write the gnuplot script %s: %s\n", prog,
			p->gp, strerror(errno));
		free(p->gp);
		free(p);
		return NULL;
	}
	return p;
}

void plot_discard(plot_t *p)
{
	if (p == NULL)
		return;
	fclose(p->f);
	unlink(p->gp);
	free(p->gp);
	free(p);
}

static void plot_script(FILE *f, const demo_t *d, const char *png)
{
	const demo_cfg_t *cfg = &d->cfg;
	fprintf(f, "# cidstore demo: throughput vs threads (generated by `cidstore demo --plot`)\n");
	for (int wl = WL_INSERT; wl <= WL_LOOKUP; wl++) {
		fprintf(f, "$%s << EOD\n# threads serialized_Mops free_threaded_Mops\n",
			wl == WL_INSERT ? "insert" : "lookup");
		for (size_t i = 0; i < d->nres; i++)
			if (d->res[i].wl == (workload_t)wl)
				fprintf(f, "%u %.4f %.4f\n", d->res[i].threads,
					d->res[i].ops_s[0] / 1e6, d->res[i].ops_s[1] / 1e6);
		fprintf(f, "EOD\n");
	}
	bool over = cfg->max_threads > d->cores;
	fputs("if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo size 1100,450 noenhanced font ',10'\n"
		"} else {\n"
		"  set terminal png size 1100,450 noenhanced\n"
		"}\n"
		"set output '", f);
	for (const char *c = png; *c; c++) {
		if (*c == '\'')
			fputc('\'', f); /* '' is a quote inside '...' */
		fputc(*c, f);
	}
	fprintf(f, "'\n"
		"set multiplot layout 1,2 title 'cidstore %s demo: in-memory store, %u %s, "
		"%s%u %s%s'\n"
		"set xlabel 'threads'\n"
		"set ylabel 'million ops/s'\n"
		"set grid\n"
		"set key bottom right\n"
		"set yrange [0:*]\n"
		"set xrange [0.8:%u.2]\n"
		"set xtics 1\n",
		cidstore_version(), d->cores, plural(d->cores, "core", "cores"),
		cfg->repeat > 1 ? "median of " : "", cfg->repeat, plural(cfg->repeat, "run", "runs"),
		over ? " (right of the dashed line: oversubscribed)" : "", cfg->max_threads);
	if (over)
		fprintf(f, "set arrow from %u.5, graph 0 to %u.5, graph 1 nohead dashtype 2 "
			   "lc rgb 'gray'\n",
			d->cores, d->cores);
	fprintf(f,
		"set title 'insert-heavy (100%% inserts of fresh keys)'\n"
		"plot $insert using 1:3 with linespoints lw 2 title 'free-threaded', \\\n"
		"     $insert using 1:2 with linespoints lw 2 title 'serialized (one global lock)'\n"
		"set title 'lookup-heavy (90%% lookups / 10%% inserts, prefilled)'\n"
		"plot $lookup using 1:3 with linespoints lw 2 title 'free-threaded', \\\n"
		"     $lookup using 1:2 with linespoints lw 2 title 'serialized (one global lock)'\n"
		"unset multiplot\n");
}

/* Is an executable named name on $PATH? */
static bool on_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		if (len > 0 && len + strlen(name) + 2 < sizeof buf) {
			memcpy(buf, path, len);
			buf[len] = '/';
			strcpy(buf + len + 1, name);
			if (access(buf, X_OK) == 0)
				return true;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return false;
}

/* Runs gnuplot on the script; true when it exited 0 and the PNG is there. */
static bool run_gnuplot(const plot_t *p)
{
	struct stat st;
	int status = 0;
	/* A stale chart must not pass for a new one: an old regular file goes
	 * (never anything else: --plot /dev/null stays a device). */
	if (lstat(p->png, &st) == 0 && S_ISREG(st.st_mode))
		unlink(p->png);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", p->gp, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return false;
	return stat(p->png, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

int plot_finish(plot_t *p, const demo_t *d)
{
	int code = EXIT_OK;
	errno = 0;
	plot_script(p->f, d, p->png);
	bool failed = ferror(p->f) != 0;
	int err = errno;
	if (fclose(p->f) != 0) {
		failed = true;
		if (err == 0)
			err = errno;
	}
	if (failed) {
		fprintf(stderr, "%s demo: --plot: writing %s failed: %s\n", prog, p->gp,
			strerror(err != 0 ? err : EIO));
		code = EXIT_RUNTIME;
	} else if (!on_path("gnuplot")) {
		fprintf(stderr,
			"%s demo: gnuplot is not installed, so %s was not drawn.\n"
			"  The script is in %s: install gnuplot (Debian: apt-get install gnuplot-nox,\n"
			"  or bash tools/setup-deps.sh) and run: gnuplot %s\n",
			prog, p->png, p->gp, p->gp);
	} else if (!run_gnuplot(p)) {
		fprintf(stderr, "%s demo: --plot: gnuplot could not write %s; the script is kept "
				"in %s\n", prog, p->png, p->gp);
		code = EXIT_RUNTIME;
	} else {
		fprintf(stderr, "%s demo: wrote %s (script: %s)\n", prog, p->png, p->gp);
	}
	free(p->gp);
	free(p);
	return code;
}
