/*
 * json.c — the JSON writer of json.h.  Strings are escaped as RFC 8259
 * asks (quote, backslash, control characters); other bytes, UTF-8
 * included, pass through.
 */
#include "json.h"

#include <inttypes.h>
#include <math.h>

static void json_string(json_t *j, const char *s)
{
	FILE *f = j->f;
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f); /* UTF-8 passes through */
		}
	}
	fputc('"', f);
}

/* Comma, newline and indentation before a member; writes "key": if key. */
static void json_sep(json_t *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		j->first[j->depth] = false;
		if (!j->compact) {
			fputc('\n', j->f);
			for (int i = 0; i < j->depth; i++)
				fputs("  ", j->f);
		}
	}
	if (key != NULL) {
		json_string(j, key);
		fputs(j->compact ? ":" : ": ", j->f);
	}
}

static void json_open(json_t *j, const char *key, char c)
{
	json_sep(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void json_close(json_t *j, char c)
{
	bool empty = j->first[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (!empty && !j->compact) {
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	fputc(c, j->f);
	if (j->depth == 0)
		fputc('\n', j->f);
}

void json_obj(json_t *j, const char *key) { json_open(j, key, '{'); }
void json_end_obj(json_t *j) { json_close(j, '}'); }
void json_arr(json_t *j, const char *key) { json_open(j, key, '['); }
void json_end_arr(json_t *j) { json_close(j, ']'); }

void json_str(json_t *j, const char *key, const char *v)
{
	json_sep(j, key);
	json_string(j, v);
}

void json_u64(json_t *j, const char *key, uint64_t v)
{
	json_sep(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void json_i64(json_t *j, const char *key, int64_t v)
{
	json_sep(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void json_dbl(json_t *j, const char *key, double v)
{
	json_sep(j, key);
	if (isfinite(v))
		fprintf(j->f, "%.6g", v);
	else
		fputs("null", j->f); /* JSON has no inf / nan */
}

void json_bool(json_t *j, const char *key, bool v)
{
	json_sep(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_null(json_t *j, const char *key)
{
	json_sep(j, key);
	fputs("null", j->f);
}
