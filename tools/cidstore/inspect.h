/*
 * inspect.h — what `verify` and `wal dump|analyze` share: they read a store
 * directory through cidstore_verify / cidstore_wal_read (no store is
 * opened, nothing is changed, no lock is taken) and report the outcome the
 * same way.
 */
#ifndef TOOL_INSPECT_H
#define TOOL_INSPECT_H

#include "common.h"
#include "json.h"

/* "wal-<16 hex>.log": the segment file that starts at lsn. */
const char *seg_file(uint64_t lsn, char *buf, size_t n);

/* ISO-8601 UTC with nanoseconds: 2025-01-31T12:34:56.123456789Z. */
const char *fmt_wall(uint64_t ns, char *buf, size_t n);

/* The message of a failed verify / wal read on stderr (msg: the library's,
 * naming file and offset); returns the exit code. */
int report_inspect(const char *cmd, const char *dir, int rc, const char *msg);

/* dir, ok, error and message: the first members of verify's and wal
 * analyze's JSON. */
void json_outcome(json_t *j, const char *dir, int rc, const char *message);

/* The torn tail, in JSON (torn, torn_file, torn_offset) or as a line of
 * the text report. */
void json_torn(json_t *j, bool torn, uint64_t segment, uint64_t offset);
void print_torn(bool torn, uint64_t segment, uint64_t offset);

#endif /* TOOL_INSPECT_H */
