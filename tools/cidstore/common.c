/*
 * common.c — helpers every subcommand uses: exit codes and error messages,
 * number parsing, formatting, temporary directories, and the options of the
 * store commands with the one place that opens a store directory
 * (open_dir: read commands read-only and never create, del never creates,
 * put / load / checkpoint create as needed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *prog = "cidstore";

void die_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s %s: ", prog, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s --help'.\n", prog, cmd);
	exit(EXIT_USAGE);
}

int exit_for(int err)
{
	switch (err) {
	case 0: return EXIT_OK;
	case CIDSTORE_ENOTSUP: return EXIT_USAGE; /* a usage-class answer */
	case CIDSTORE_ENOENT: return EXIT_NOSTORE;
	case CIDSTORE_ENOTDIR: return EXIT_NOTDIR;
	case CIDSTORE_EACCES:
	case CIDSTORE_ERDONLY: return EXIT_ACCESS;
	case CIDSTORE_EBUSY: return EXIT_BUSY;
	case CIDSTORE_ENOSPC: return EXIT_NOSPACE;
	default: return EXIT_RUNTIME;
	}
}

int report_err(const char *cmd, const char *what, int err)
{
	fprintf(stderr, "%s %s: %s: %s\n", prog, cmd, what, cidstore_strerror(err));
	return exit_for(err);
}

const char *err_name(int err)
{
	switch (err) {
	case 0: return NULL;
	case CIDSTORE_EINVAL: return "EINVAL";
	case CIDSTORE_ENOMEM: return "ENOMEM";
	case CIDSTORE_EIO: return "EIO";
	case CIDSTORE_ECORRUPT: return "ECORRUPT";
	case CIDSTORE_EVERSION: return "EVERSION";
	case CIDSTORE_EBUSY: return "EBUSY";
	case CIDSTORE_ENOTSUP: return "ENOTSUP";
	case CIDSTORE_ERDONLY: return "ERDONLY";
	case CIDSTORE_ERANGE: return "ERANGE";
	case CIDSTORE_ENOENT: return "ENOENT";
	case CIDSTORE_EACCES: return "EACCES";
	case CIDSTORE_ENOTDIR: return "ENOTDIR";
	case CIDSTORE_ENOSPC: return "ENOSPC";
	default: return "EUNKNOWN";
	}
}

double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

unsigned ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

const char *cpu_model(char *buf, size_t n)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char *line = NULL;
	size_t cap = 0;
	snprintf(buf, n, "unknown");
	if (f == NULL)
		return buf;
	while (getline(&line, &cap, f) > 0) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) != 0 || colon == NULL)
			continue;
		colon += 1 + strspn(colon + 1, " \t");
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(buf, n, "%s", colon);
		break;
	}
	free(line);
	fclose(f);
	return buf;
}

int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;
	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0)
		return -1;
	/* optional k / m suffix: --ops 500k */
	if (*end == 'k' || *end == 'K') {
		if (v > ULONG_MAX / 1000)
			return -1;
		v *= 1000, end++;
	} else if (*end == 'm' || *end == 'M') {
		if (v > ULONG_MAX / 1000000)
			return -1;
		v *= 1000000, end++;
	}
	if (*end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

const char *durability_name(cidstore_durability_t d)
{
	switch (d) {
	case CIDSTORE_DURABILITY_NONE: return "none";
	case CIDSTORE_DURABILITY_ASYNC: return "async";
	case CIDSTORE_DURABILITY_SYNC: return "sync";
	}
	return "unknown";
}

int parse_durability(const char *s, cidstore_durability_t *out)
{
	if (strcmp(s, "none") == 0)
		*out = CIDSTORE_DURABILITY_NONE;
	else if (strcmp(s, "async") == 0)
		*out = CIDSTORE_DURABILITY_ASYNC;
	else if (strcmp(s, "sync") == 0)
		*out = CIDSTORE_DURABILITY_SYNC;
	else
		return -1;
	return 0;
}

const char *fmt_bytes(uint64_t b, char *buf, size_t n)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024.0 && u < 4)
		v /= 1024.0, u++;
	if (u == 0)
		snprintf(buf, n, "%" PRIu64 " B", b);
	else
		snprintf(buf, n, "%.1f %s", v, unit[u]);
	return buf;
}

const char *fmt_rate(double r, char *buf, size_t n)
{
	if (!isfinite(r) || r < 0)
		snprintf(buf, n, "-");
	else if (r >= 1e9)
		snprintf(buf, n, "%.2f G", r / 1e9);
	else if (r >= 1e6)
		snprintf(buf, n, "%.2f M", r / 1e6);
	else if (r >= 1e3)
		snprintf(buf, n, "%.1f k", r / 1e3);
	else
		snprintf(buf, n, "%.0f", r);
	return buf;
}

void print_wrapped(FILE *f, const char *text, int width)
{
	int col = 0;
	const char *p = text;
	while (*p) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		int len = (int)strcspn(p, " ");
		if (col > 0 && col + 1 + len > width) {
			fputc('\n', f);
			col = 0;
		} else if (col > 0) {
			fputc(' ', f);
			col++;
		}
		fwrite(p, 1, (size_t)len, f);
		col += len;
		p += len;
	}
	fputc('\n', f);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *make_tempdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path;
	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&path, "%s/cidstore-%s-XXXXXX", base, tag) < 0)
		return NULL;
	if (mkdtemp(path) == NULL) {
		free(path);
		return NULL;
	}
	return path;
}

/* ---------------------------------------------------------------------- */
/* Store commands: options, open, errors                                   */
/* ---------------------------------------------------------------------- */
enum { OPT_DURABILITY = 0x100, OPT_FROM, OPT_LIMIT, OPT_SKIP_BAD, OPT_PROMETHEUS };

/* The number of --from or --limit (wal dump only) into *out. */
static void dump_number(const char *cmd, unsigned args, const char *opt, const char *what,
			uint64_t *out)
{
	if (!(args & ARGS_DUMP))
		die_usage(cmd, "%s applies to 'wal dump' only", opt);
	if (parse_u64(optarg, out) != 0)
		die_usage(cmd, "%s wants %s, not '%s'", opt, what, optarg);
}

int parse_store_args(int argc, char **argv, store_args_t *a, unsigned args,
		     void (*usage)(FILE *))
{
	static const struct option store_opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "durability", required_argument, NULL, OPT_DURABILITY },
		{ "skip-bad", no_argument, NULL, OPT_SKIP_BAD },
		{ "prometheus", no_argument, NULL, OPT_PROMETHEUS },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option wal_opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct option *longopts = args & ARGS_WAL ? wal_opts : store_opts;
	const char *cmd = argv[0];
	int c;
	memset(a, 0, sizeof *a);
	optind = 0;
	while ((c = getopt_long(argc, argv, "D:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'D': a->dir = optarg; break;
		case OPT_DURABILITY:
			if (parse_durability(optarg, &a->durability) != 0)
				die_usage(cmd, "--durability wants none, async or sync, not '%s'", optarg);
			a->have_durability = true;
			break;
		case OPT_SKIP_BAD:
			if (!(args & ARGS_SKIP_BAD))
				die_usage(cmd, "--skip-bad applies to 'load' only");
			a->skip_bad = true;
			break;
		case OPT_PROMETHEUS:
			if (!(args & ARGS_PROMETHEUS))
				die_usage(cmd, "--prometheus applies to 'stats' only");
			a->prometheus = true;
			break;
		case OPT_FROM:
			dump_number(cmd, args, "--from", "an LSN (a decimal number)", &a->from);
			a->have_from = true;
			break;
		case OPT_LIMIT:
			dump_number(cmd, args, "--limit", "a number of lines", &a->limit);
			a->have_limit = true;
			break;
		case 'j':
			if (!(args & ARGS_JSON))
				die_usage(cmd, "unknown option --json");
			a->json = true;
			break;
		case 'h': usage(stdout); exit(EXIT_OK);
		default: die_usage(cmd, "bad option");
		}
	}
	return optind;
}

void need_dir(const char *cmd, const store_args_t *a)
{
	if (a->dir == NULL || *a->dir == '\0')
		die_usage(cmd, "--dir DIR is required");
}

int report_store(const char *cmd, const char *dir, open_mode_t mode, const char *what,
		 int err)
{
	const char *why, *hint = "";
	switch (err) {
	case CIDSTORE_ENOENT:
		if (mode == OPEN_CREATE) {
			why = "cannot create the store directory: its parent directory does not exist";
		} else {
			why = "no such store directory";
			hint = mode == OPEN_READ ? " (read commands never create a store)"
						 : " (del never creates a store)";
		}
		break;
	case CIDSTORE_ENOTDIR:
		why = "not a directory (or a component of the path is not one)";
		break;
	case CIDSTORE_EACCES:
		why = "permission denied";
		if (mode != OPEN_READ)
			hint = " (writing needs write access to the directory and its files; "
			       "get, stats, verify and wal only read)";
		break;
	case CIDSTORE_ERDONLY:
		why = "the store is read-only (opened read-only, or an earlier I/O error "
		      "made it so)";
		break;
	case CIDSTORE_EBUSY:
		why = "the store is open for writing by another process";
		if (mode != OPEN_READ)
			hint = "; get, stats, verify and wal work beside it";
		break;
	case CIDSTORE_ENOSPC:
		why = "no space left on the device (the store is read-only now)";
		break;
	default:
		why = cidstore_strerror(err);
		if (what == NULL)
			what = "cannot open the store";
	}
	fprintf(stderr, "%s %s: %s: %s%s%s%s\n", prog, cmd, dir, what ? what : "",
		what ? ": " : "", why, hint);
	return exit_for(err);
}

int open_dir(const char *cmd, const store_args_t *a, open_mode_t mode,
	     cidstore_durability_t def, cidstore_t **s)
{
	cidstore_options_t o;
	int rc;
	cidstore_options_init(&o);
	o.dir = a->dir;
	o.durability = a->have_durability ? a->durability : def;
	o.read_only = mode == OPEN_READ;
	o.create_if_missing = mode == OPEN_CREATE;
	rc = cidstore_open(&o, s);
	if (rc != 0)
		return report_store(cmd, a->dir, mode, NULL, rc);
	return 0;
}

void parse_cid_arg(const char *cmd, const char *what, const char *hex, cid_t *out)
{
	if (cid_from_hex(hex, out) != 0)
		die_usage(cmd, "%s must be 64 hex digits, not '%s'", what, hex);
}

int close_store(const char *cmd, cidstore_t *s, int code)
{
	int rc = cidstore_close(s);
	if (rc != 0 && code == EXIT_OK)
		return report_err(cmd, "close", rc);
	return code;
}
