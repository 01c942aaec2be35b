/*
 * json.h — the tool's small JSON writer: objects, arrays, strings, numbers,
 * booleans and null, pretty-printed (two-space indent) or compact (JSON
 * Lines).  It keeps a stack of "first member" flags so the commas are
 * always right; the caller opens and closes in order.
 */
#ifndef TOOL_JSON_H
#define TOOL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct json {
	FILE *f;
	int depth;
	bool first[JSON_MAX_DEPTH];
	bool compact; /* one line per top-level value (JSON Lines) */
} json_t;

/* key is the member name inside an object, NULL inside an array or at the
 * top level.  Closing the top-level value ends the line. */
void json_obj(json_t *j, const char *key);
void json_end_obj(json_t *j);
void json_arr(json_t *j, const char *key);
void json_end_arr(json_t *j);
void json_str(json_t *j, const char *key, const char *v); /* NULL: "" */
void json_u64(json_t *j, const char *key, uint64_t v);
void json_i64(json_t *j, const char *key, int64_t v);
void json_dbl(json_t *j, const char *key, double v); /* inf / nan: null */
void json_bool(json_t *j, const char *key, bool v);
void json_null(json_t *j, const char *key);

#endif /* TOOL_JSON_H */
