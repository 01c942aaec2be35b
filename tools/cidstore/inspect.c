/*
 * inspect.c — the reporting helpers of verify and wal (see inspect.h).
 */
#include "inspect.h"

#include <inttypes.h>
#include <time.h>

const char *seg_file(uint64_t lsn, char *buf, size_t n)
{
	snprintf(buf, n, "wal-%016" PRIx64 ".log", lsn);
	return buf;
}

const char *fmt_wall(uint64_t ns, char *buf, size_t n)
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	size_t k = 0;
	if (gmtime_r(&sec, &tm) != NULL)
		k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (k == 0) {
		snprintf(buf, n, "%" PRIu64 "ns", ns);
		return buf;
	}
	snprintf(buf + k, n - k, ".%09" PRIu64 "Z", ns % 1000000000u);
	return buf;
}

int report_inspect(const char *cmd, const char *dir, int rc, const char *msg)
{
	if (rc == CIDSTORE_ENOENT || rc == CIDSTORE_ENOTDIR || rc == CIDSTORE_EACCES)
		return report_store(cmd, dir, OPEN_READ, NULL, rc);
	if (rc == CIDSTORE_EINVAL && msg[0] != '\0') { /* the library's own words */
		fprintf(stderr, "%s %s: %s\n", prog, cmd, msg);
		return EXIT_RUNTIME;
	}
	fprintf(stderr, "%s %s: %s: %s%s%s\n", prog, cmd, dir, cidstore_strerror(rc),
		msg[0] ? ": " : "", msg);
	return exit_for(rc);
}

void json_outcome(json_t *j, const char *dir, int rc, const char *message)
{
	json_str(j, "dir", dir);
	json_bool(j, "ok", rc == 0);
	if (rc == 0)
		json_null(j, "error");
	else
		json_str(j, "error", err_name(rc));
	json_str(j, "message", message);
}

void json_torn(json_t *j, bool torn, uint64_t segment, uint64_t offset)
{
	char file[40];
	json_bool(j, "torn", torn);
	if (torn) {
		json_str(j, "torn_file", seg_file(segment, file, sizeof file));
		json_u64(j, "torn_offset", offset);
	}
}

void print_torn(bool torn, uint64_t segment, uint64_t offset)
{
	char file[40];
	if (torn)
		printf("torn tail        yes: %s offset %" PRIu64 " (recovery cuts it there)\n",
		       seg_file(segment, file, sizeof file), offset);
	else
		printf("torn tail        no\n");
}
