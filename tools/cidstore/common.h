/*
 * common.h — what the subcommands of the `cidstore` tool share: exit codes
 * and error reporting, number parsing, formatting, the options of the
 * commands that work on a store directory and how they open it, and the
 * entry point of every subcommand (main.c dispatches to them).
 *
 * The tool uses only the public header <cidstore.h>: what it says about the
 * build comes from cidstore_build_info().
 */
#ifndef TOOL_COMMON_H
#define TOOL_COMMON_H

#include <cidstore.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern const char *prog; /* "cidstore": the first word of every message */

/* Exit codes, one per class of error.  Documented in cidstore.1 (EXIT
 * STATUS), in `cidstore --help` and, as EXIT_CODES_HELP, in the usage of
 * every command that opens a store directory. */
enum {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1, /* I/O, corrupt or newer-format files, malformed input,
			     out of memory, key not found (get) */
	EXIT_USAGE = 2,   /* bad arguments, or not supported by this build
			     (CIDSTORE_ENOTSUP) */
	EXIT_NOSTORE = 3, /* the store directory does not exist (CIDSTORE_ENOENT) */
	EXIT_NOTDIR = 4,  /* --dir names something that is not a directory
			     (CIDSTORE_ENOTDIR) */
	EXIT_ACCESS = 5,  /* permission denied (CIDSTORE_EACCES) or the store is
			     read-only (CIDSTORE_ERDONLY) */
	EXIT_BUSY = 6,    /* the store is open for writing elsewhere (CIDSTORE_EBUSY) */
	EXIT_NOSPACE = 7, /* no space left on the device (CIDSTORE_ENOSPC) */
};

#define EXIT_CODES_HELP                                                            \
	"Exit status: 0 success; 1 runtime error (I/O, corrupt files, bad input);\n" \
	"2 usage error or not supported by this build; 3 no such store directory;\n" \
	"4 --dir is not a directory; 5 permission denied or the store is read-only;\n" \
	"6 the store is open for writing by another process; 7 disk full.\n"

/* Prints "cidstore CMD: message", a hint to --help, and exits 2. */
void die_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* The exit code for a library error code (see the enum above). */
int exit_for(int err);

/* Prints "cidstore CMD: WHAT: <cidstore_strerror>" and returns exit_for. */
int report_err(const char *cmd, const char *what, int err);

/* "ECORRUPT" etc. (JSON "error" members); NULL for 0. */
const char *err_name(int err);

/* Seconds on the monotonic clock. */
double now_sec(void);

/* Cores online now (at least 1). */
unsigned ncores(void);

/* The CPU's model name (a fact about the machine, for reports), or
 * "unknown". */
const char *cpu_model(char *buf, size_t n);

/* A decimal number in [min, max], optional k / m suffix (x1000,
 * x1000000): 0, or -1 when s is not one. */
int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* A decimal number, no sign, no suffix, no leading space: 0 or -1. */
int parse_u64(const char *s, uint64_t *out);

const char *durability_name(cidstore_durability_t d);
int parse_durability(const char *s, cidstore_durability_t *out);

/* one when n == 1, else many: "1 pair", "2 pairs". */
static inline const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* Human-readable byte counts: 1536 -> "1.5 KiB". */
const char *fmt_bytes(uint64_t b, char *buf, size_t n);

/* Human-readable rates: 3210000 -> "3.21 M"; "-" for none. */
const char *fmt_rate(double r, char *buf, size_t n);

/* Prints text word-wrapped at width columns to f, then a newline. */
void print_wrapped(FILE *f, const char *text, int width);

/* A fresh temporary directory $TMPDIR/cidstore-TAG-XXXXXX (or /tmp);
 * NULL on failure.  rm_tree removes it with everything in it. */
char *make_tempdir(const char *tag);
void rm_tree(const char *dir);

/* ---------------------------------------------------------------------- */
/* Commands that work on a store directory                                 */
/* ---------------------------------------------------------------------- */

typedef struct store_args {
	const char *dir;
	bool have_durability;
	cidstore_durability_t durability;
	bool json;
	bool prometheus;            /* stats */
	bool skip_bad;              /* load */
	bool have_from, have_limit; /* wal dump */
	uint64_t from, limit;
} store_args_t;

/* What parse_store_args accepts besides --dir and --help. */
enum {
	ARGS_JSON = 1 << 0,     /* --json */
	ARGS_WAL = 1 << 1,      /* wal dump|analyze: --from and --limit, no --durability */
	ARGS_DUMP = 1 << 2,     /* wal dump: --from and --limit apply */
	ARGS_SKIP_BAD = 1 << 3, /* load: --skip-bad */
	ARGS_PROMETHEUS = 1 << 4, /* stats: --prometheus */
};

/* Parses argv (argv[0] is the command's name) into *a: --dir, --help and
 * the options `args` allows.  --help prints usage and exits 0; a bad
 * option exits 2.  Returns the index of the first operand. */
int parse_store_args(int argc, char **argv, store_args_t *a, unsigned args,
		     void (*usage)(FILE *));

/* Exits 2 unless --dir was given. */
void need_dir(const char *cmd, const store_args_t *a);

/* How a command opens its store. */
typedef enum {
	OPEN_READ,   /* read_only, never created: get, stats */
	OPEN_WRITE,  /* for writing, never created: del, maintain */
	OPEN_CREATE, /* for writing, created when missing: put, load, checkpoint, triples load */
} open_mode_t;

/* Opens the store in a->dir with durability `def` unless --durability.
 * Returns 0, or prints why (naming the directory) and returns the exit
 * code. */
int open_dir(const char *cmd, const store_args_t *a, open_mode_t mode,
	     cidstore_durability_t def, cidstore_t **s);

/* An error of a store directory: "cidstore CMD: DIR: [WHAT: ]reason" with a
 * message per class (no such store directory, not a directory, permission
 * denied, read-only, busy, disk full) and, for the classes where it helps,
 * what to do.  Returns the exit code. */
int report_store(const char *cmd, const char *dir, open_mode_t mode, const char *what,
		 int err);

/* Exits 2 unless hex is 64 hex digits; what names the operand. */
void parse_cid_arg(const char *cmd, const char *what, const char *hex, cid_t *out);

/* Closes s; returns code, or the close error's exit code when code was
 * EXIT_OK. */
int close_store(const char *cmd, cidstore_t *s, int code);

/* ---------------------------------------------------------------------- */
/* The subcommands: (argc, argv) with argv[0] the command's name           */
/* ---------------------------------------------------------------------- */
int cmd_config(int argc, char **argv);     /* config.c */
int cmd_demo(int argc, char **argv);       /* demo.c */
int cmd_put(int argc, char **argv);        /* store_cmds.c */
int cmd_get(int argc, char **argv);
int cmd_del(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_maintain(int argc, char **argv);
int cmd_load(int argc, char **argv);       /* load.c */
int cmd_verify(int argc, char **argv);     /* verify.c */
int cmd_wal(int argc, char **argv);        /* wal_cmds.c */
int cmd_triples(int argc, char **argv);    /* triples*.c */

#endif /* TOOL_COMMON_H */
