/*
 * rdf_load.c — an RDF file into a store's triple layer (see rdf_load.h for
 * the promises: term texts, blank node scoping, error outcomes).
 *
 * Parsing (the caller's thread).  serd's reader reads the file a page at a
 * time through src_read (which counts the bytes, for progress and for
 * pipes) and calls on_statement per statement.  There each blank node gets
 * its scoped label, then the statement goes through a serd writer in
 * N-Triples syntax with serdi's style for that input (ASCII, and resolved
 * IRIs for Turtle) whose sink appends to the current batch's text buffer:
 * the line "S P O .\n" is split in place into its three terms (an IRI ends
 * at its first '>', which the writer always escapes inside one; a blank
 * node at its first space; the object is the rest before " .\n").  So a
 * term's text is exactly serdi's, with nothing re-implemented.
 *
 * Inserting (o->threads worker threads).  A full batch (o->batch
 * statements or BATCH_BYTES of text) goes to the ready queue; a worker
 * hashes its terms (cid_sha256), puts those missing from its recent-term
 * cache (a direct-mapped table of CIDs this thread has put) with one
 * cidstore_term_put_many, then inserts the batch's triples with one
 * cidstore_triple_insert_many.  A batch too big for one crash-atomic call
 * (CIDSTORE_ERANGE) is split in halves.  A term a worker finds in its
 * cache was put by an earlier call that returned, so every term of a
 * triple is in the store before the triple (also after a crash: the log
 * replays in order).
 *
 * Synchronization (one mutex, q.lock, guards every field of `queue`):
 *   - batches circulate between the free stack and the ready FIFO; at most
 *     max_batches exist, so the parser blocks (q.has_free) when the workers
 *     fall behind: memory stays bounded whatever the file size;
 *   - the parser sets q.closed after its last batch; a worker exits when
 *     the FIFO is empty and closed is set (q.has_ready broadcast);
 *   - `failed` (atomic): set (release) by the first worker whose store call
 *     fails, after storing the error in q.store_err under the lock; the
 *     parser reads it (acquire) per statement and stops the reader;
 *     workers skip the batches they take after it is set (never inserted,
 *     never counted);
 *   - the counters (stored, added, terms_new) are relaxed atomics: workers
 *     add, the parser reads them for progress (an estimate), and the final
 *     values are read after pthread_join, which orders them.
 * A batch is owned by exactly one side at a time: by the parser while it
 * fills it, by the queue while listed, by one worker while it inserts it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rdf_load.h"

#include <serd/serd.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BATCH 1024
#define BATCH_BYTES (1u << 20) /* a batch is full at this much text too */
#define PAGE_SIZE_READ 65536   /* serd reads the input in pages of this */
#define CACHE_BITS 13          /* 8192 recent terms per worker (256 KiB) */
#define PROGRESS_EVERY 0.1     /* seconds */

/* ---------------------------------------------------------------------- */
/* Batches and the queue                                                   */
/* ---------------------------------------------------------------------- */

typedef struct span {
	size_t off, len;
} span_t;

typedef struct batch {
	struct batch *next;
	size_t n, cap;     /* statements; terms are 3n spans */
	span_t *term;      /* 3 * cap */
	char *text;        /* the writer's lines, terms in place */
	size_t len, tcap;
} batch_t;

typedef struct queue {
	pthread_mutex_t lock;
	pthread_cond_t has_ready, has_free;
	batch_t *ready_head, *ready_tail, *free;
	size_t nbatches, max_batches;
	bool closed;
	int store_err;
} queue_t;

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void batch_free(batch_t *b)
{
	if (b != NULL) {
		free(b->term);
		free(b->text);
		free(b);
	}
}

static batch_t *batch_new(size_t cap)
{
	batch_t *b = calloc(1, sizeof *b);
	if (b == NULL)
		return NULL;
	b->cap = cap;
	b->tcap = 64 * cap;
	b->term = malloc(3 * cap * sizeof *b->term);
	b->text = malloc(b->tcap);
	if (b->term == NULL || b->text == NULL) {
		batch_free(b);
		return NULL;
	}
	return b;
}

/* ---------------------------------------------------------------------- */
/* The load's state                                                        */
/* ---------------------------------------------------------------------- */

typedef struct loader {
	cidstore_t *st;
	const rdf_load_opts_t *o;
	size_t batch_cap;
	uint8_t scope[16];
	/* parser side */
	FILE *in;
	const char *path;
	uint64_t bytes_read, bytes_total;
	SerdWriter *writer;
	batch_t *cur;        /* being filled */
	uint64_t statements; /* parsed (handed to batches) */
	bool write_failed;   /* the writer refused a statement */
	bool oom;
	bool have_err;       /* serd reported an error (first kept) */
	unsigned err_line, err_col;
	char err_msg[256];
	char writer_msg[256];
	double t0, last_progress;
	/* shared */
	queue_t q;
	atomic_bool failed;
	atomic_uint_fast64_t stored, added, terms_new;
} loader_t;

/* Takes a free batch (allocating one while under the limit), or waits for
 * a worker to return one.  NULL: out of memory. */
static batch_t *get_free(loader_t *L)
{
	batch_t *b = NULL;
	pthread_mutex_lock(&L->q.lock);
	for (;;) {
		if (L->q.free != NULL) {
			b = L->q.free;
			L->q.free = b->next;
			break;
		}
		if (L->q.nbatches < L->q.max_batches) {
			L->q.nbatches++;
			pthread_mutex_unlock(&L->q.lock);
			b = batch_new(L->batch_cap);
			if (b == NULL) {
				pthread_mutex_lock(&L->q.lock);
				L->q.nbatches--;
				pthread_mutex_unlock(&L->q.lock);
			}
			return b;
		}
		pthread_cond_wait(&L->q.has_free, &L->q.lock);
	}
	pthread_mutex_unlock(&L->q.lock);
	b->n = 0;
	b->len = 0;
	b->next = NULL;
	return b;
}

static void put_free(loader_t *L, batch_t *b)
{
	pthread_mutex_lock(&L->q.lock);
	b->next = L->q.free;
	L->q.free = b;
	pthread_cond_signal(&L->q.has_free);
	pthread_mutex_unlock(&L->q.lock);
}

/* Hands the current batch (if it holds statements) to the workers. */
static void submit(loader_t *L)
{
	batch_t *b = L->cur;
	if (b == NULL || b->n == 0)
		return;
	L->cur = NULL;
	b->next = NULL;
	pthread_mutex_lock(&L->q.lock);
	if (L->q.ready_tail != NULL)
		L->q.ready_tail->next = b;
	else
		L->q.ready_head = b;
	L->q.ready_tail = b;
	pthread_cond_signal(&L->q.has_ready);
	pthread_mutex_unlock(&L->q.lock);
}

/* ---------------------------------------------------------------------- */
/* Workers                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct worker {
	loader_t *L;
	pthread_t tid;
	cid_t *cache; /* 1 << CACHE_BITS CIDs this thread has put (0: empty) */
	cid_t *cids;  /* 3 * batch_cap */
	const void **texts;
	size_t *lens;
	cidstore_triple_t *triples;
} worker_t;

static bool cid_eq(const cid_t *a, const cid_t *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] &&
	       a->w[3] == b->w[3];
}

/* term_put_many over [0, n), halving on CIDSTORE_ERANGE.  Returns the
 * number stored or an error. */
static long put_terms(cidstore_t *st, const void **texts, const size_t *lens, size_t n)
{
	if (n == 0)
		return 0;
	long rc = cidstore_term_put_many(st, texts, lens, n, NULL);
	if (rc != CIDSTORE_ERANGE || n == 1)
		return rc;
	long a = put_terms(st, texts, lens, n / 2);
	if (a < 0)
		return a;
	long b = put_terms(st, texts + n / 2, lens + n / 2, n - n / 2);
	return b < 0 ? b : a + b;
}

static long insert_triples(cidstore_t *st, const cidstore_triple_t *t, size_t n)
{
	if (n == 0)
		return 0;
	long rc = cidstore_triple_insert_many(st, t, n, NULL);
	if (rc != CIDSTORE_ERANGE || n == 1)
		return rc;
	long a = insert_triples(st, t, n / 2);
	if (a < 0)
		return a;
	long b = insert_triples(st, t + n / 2, n - n / 2);
	return b < 0 ? b : a + b;
}

/* Puts the batch's new terms, then inserts its triples.  0 or a store
 * error. */
static int insert_batch(worker_t *w, batch_t *b)
{
	loader_t *L = w->L;
	const size_t nterms = 3 * b->n, mask = ((size_t)1 << CACHE_BITS) - 1;
	size_t nput = 0;
	for (size_t k = 0; k < nterms; k++) {
		const char *t = b->text + b->term[k].off;
		cid_t *c = &w->cids[k];
		cid_sha256(t, b->term[k].len, c);
		cid_t *slot = &w->cache[c->w[0] & mask];
		if (cid_eq(slot, c))
			continue;
		*slot = *c;
		w->texts[nput] = t;
		w->lens[nput++] = b->term[k].len;
	}
	long rc = put_terms(L->st, w->texts, w->lens, nput);
	if (rc < 0)
		return (int)rc;
	atomic_fetch_add_explicit(&L->terms_new, (uint64_t)rc, memory_order_relaxed);
	for (size_t i = 0; i < b->n; i++) {
		w->triples[i].s = w->cids[3 * i];
		w->triples[i].p = w->cids[3 * i + 1];
		w->triples[i].o = w->cids[3 * i + 2];
	}
	rc = insert_triples(L->st, w->triples, b->n);
	if (rc < 0)
		return (int)rc;
	atomic_fetch_add_explicit(&L->added, (uint64_t)rc, memory_order_relaxed);
	atomic_fetch_add_explicit(&L->stored, b->n, memory_order_relaxed);
	return 0;
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	loader_t *L = w->L;
	for (;;) {
		pthread_mutex_lock(&L->q.lock);
		while (L->q.ready_head == NULL && !L->q.closed)
			pthread_cond_wait(&L->q.has_ready, &L->q.lock);
		batch_t *b = L->q.ready_head;
		if (b == NULL) { /* closed and drained */
			pthread_mutex_unlock(&L->q.lock);
			return NULL;
		}
		L->q.ready_head = b->next;
		if (L->q.ready_head == NULL)
			L->q.ready_tail = NULL;
		pthread_mutex_unlock(&L->q.lock);

		if (!atomic_load_explicit(&L->failed, memory_order_acquire)) {
			int rc = insert_batch(w, b);
			if (rc != 0) {
				pthread_mutex_lock(&L->q.lock);
				if (L->q.store_err == 0)
					L->q.store_err = rc;
				pthread_mutex_unlock(&L->q.lock);
				atomic_store_explicit(&L->failed, true, memory_order_release);
			}
		}
		put_free(L, b);
	}
}

static void worker_free(worker_t *w)
{
	free(w->cache);
	free(w->cids);
	free(w->texts);
	free(w->lens);
	free(w->triples);
}

static bool worker_init(worker_t *w, loader_t *L)
{
	size_t n = L->batch_cap;
	w->L = L;
	w->cache = calloc((size_t)1 << CACHE_BITS, sizeof *w->cache);
	w->cids = malloc(3 * n * sizeof *w->cids);
	w->texts = malloc(3 * n * sizeof *w->texts);
	w->lens = malloc(3 * n * sizeof *w->lens);
	w->triples = malloc(n * sizeof *w->triples);
	if (!w->cache || !w->cids || !w->texts || !w->lens || !w->triples) {
		worker_free(w);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------------- */
/* Parsing                                                                 */
/* ---------------------------------------------------------------------- */

void rdf_blank_label(const uint8_t scope[16], const char *label, size_t len, char out[35])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t stackbuf[256], *buf = stackbuf;
	cid_t c;
	bool keep = len == 34 && label[0] == 'c' && label[1] == 's';
	for (size_t i = 2; keep && i < 34; i++)
		keep = (label[i] >= '0' && label[i] <= '9') || (label[i] >= 'a' && label[i] <= 'f');
	if (keep) {
		memcpy(out, label, 34);
		out[34] = '\0';
		return;
	}
	if (16 + len > sizeof stackbuf && (buf = malloc(16 + len)) == NULL) {
		/* Out of memory for a label over 240 bytes: hash it in two
		 * steps instead (still a function of scope and label). */
		cid_t h;
		uint8_t two[16 + 32];
		cid_sha256(label, len, &h);
		memcpy(two, scope, 16);
		for (int i = 0; i < 4; i++)
			for (int j = 0; j < 8; j++)
				two[16 + 8 * i + j] = (uint8_t)(h.w[i] >> (56 - 8 * j));
		cid_sha256(two, sizeof two, &c);
	} else {
		memcpy(buf, scope, 16);
		memcpy(buf + 16, label, len);
		cid_sha256(buf, 16 + len, &c);
		if (buf != stackbuf)
			free(buf);
	}
	out[0] = 'c';
	out[1] = 's';
	/* the digest's first 16 bytes: w[0] and w[1], most significant first */
	for (int i = 0; i < 32; i++) {
		uint64_t word = c.w[i / 16];
		out[2 + i] = hex[(word >> (60 - 4 * (i % 16))) & 15];
	}
	out[34] = '\0';
}

static size_t src_read(void *buf, size_t size, size_t nmemb, void *stream)
{
	loader_t *L = stream;
	size_t got = fread(buf, size, nmemb, L->in);
	L->bytes_read += got * size;
	return got;
}

static int src_error(void *stream)
{
	loader_t *L = stream;
	return ferror(L->in);
}

/* The writer's sink: appends to the current batch's text. */
static size_t text_sink(const void *buf, size_t len, void *stream)
{
	loader_t *L = stream;
	batch_t *b = L->cur;
	if (b->len + len > b->tcap) {
		size_t cap = b->tcap * 2;
		while (cap < b->len + len)
			cap *= 2;
		char *t = realloc(b->text, cap);
		if (t == NULL) {
			L->oom = true;
			return 0;
		}
		b->text = t;
		b->tcap = cap;
	}
	memcpy(b->text + b->len, buf, len);
	b->len += len;
	return len;
}

static void keep_message(char *dst, size_t cap, const SerdError *e)
{
	va_list ap;
	va_copy(ap, *e->args);
	vsnprintf(dst, cap, e->fmt, ap);
	va_end(ap);
	size_t n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

static SerdStatus on_error(void *handle, const SerdError *e)
{
	loader_t *L = handle;
	if (!L->have_err) {
		L->have_err = true;
		L->err_line = e->line;
		L->err_col = e->col;
		keep_message(L->err_msg, sizeof L->err_msg, e);
	}
	return SERD_SUCCESS;
}

static SerdStatus on_writer_error(void *handle, const SerdError *e)
{
	loader_t *L = handle;
	if (L->writer_msg[0] == '\0')
		keep_message(L->writer_msg, sizeof L->writer_msg, e);
	return SERD_SUCCESS;
}

static SerdStatus on_base(void *handle, const SerdNode *uri)
{
	loader_t *L = handle;
	return serd_writer_set_base_uri(L->writer, uri);
}

static SerdStatus on_prefix(void *handle, const SerdNode *name, const SerdNode *uri)
{
	loader_t *L = handle;
	return serd_writer_set_prefix(L->writer, name, uri);
}

/* A blank node with its scoped label (in lab). */
static const SerdNode *scoped(const loader_t *L, const SerdNode *n, SerdNode *tmp, char lab[35])
{
	if (n == NULL || n->type != SERD_BLANK)
		return n;
	rdf_blank_label(L->scope, (const char *)n->buf, n->n_bytes, lab);
	*tmp = (SerdNode){ (const uint8_t *)lab, 34, 34, 0, SERD_BLANK };
	return tmp;
}

/* The end of the term starting at p (an IRI or a blank node) in [p, end),
 * or NULL when it is neither. */
static const char *term_end(const char *p, const char *end)
{
	if (p < end && *p == '<') {
		const char *q = memchr(p, '>', (size_t)(end - p));
		return q != NULL ? q + 1 : NULL;
	}
	if (end - p > 2 && p[0] == '_' && p[1] == ':')
		return memchr(p, ' ', (size_t)(end - p));
	return NULL;
}

/* Splits the line the writer appended at from into three spans.  false
 * when it is not "S P O .\n" (not expected from serd). */
static bool split_line(batch_t *b, size_t from)
{
	const char *line = b->text + from, *end = b->text + b->len;
	span_t *t = &b->term[3 * b->n];
	if (end - line < 4 || memcmp(end - 3, " .\n", 3) != 0)
		return false;
	end -= 3;
	const char *s_end = term_end(line, end);
	if (s_end == NULL || s_end >= end || *s_end != ' ')
		return false;
	const char *p = s_end + 1, *p_end = term_end(p, end);
	if (p_end == NULL || p_end >= end || *p_end != ' ' || *p != '<')
		return false;
	const char *o = p_end + 1;
	if (o >= end)
		return false;
	t[0] = (span_t){ from, (size_t)(s_end - line) };
	t[1] = (span_t){ (size_t)(p - b->text), (size_t)(p_end - p) };
	t[2] = (span_t){ (size_t)(o - b->text), (size_t)(end - o) };
	return true;
}

static void report_progress(loader_t *L, double now)
{
	if (L->o->progress == NULL)
		return;
	rdf_load_progress_t p = {
		.bytes_read = L->bytes_read,
		.bytes_total = L->bytes_total,
		.statements = L->statements,
		.stored = atomic_load_explicit(&L->stored, memory_order_relaxed),
		.secs = now - L->t0,
	};
	L->last_progress = now;
	L->o->progress(&p, L->o->progress_ctx);
}

static SerdStatus on_statement(void *handle, SerdStatementFlags flags, const SerdNode *graph,
			       const SerdNode *subject, const SerdNode *predicate,
			       const SerdNode *object, const SerdNode *datatype,
			       const SerdNode *lang)
{
	loader_t *L = handle;
	SerdNode ts, to;
	char ls[35], lo[35];
	(void)flags, (void)graph;
	if (atomic_load_explicit(&L->failed, memory_order_acquire))
		return SERD_ERR_UNKNOWN; /* a worker's store call failed: stop */
	if (L->cur == NULL && (L->cur = get_free(L)) == NULL) {
		L->oom = true;
		return SERD_ERR_UNKNOWN;
	}
	batch_t *b = L->cur;
	size_t from = b->len;
	SerdStatus st = serd_writer_write_statement(L->writer, 0, NULL,
						    scoped(L, subject, &ts, ls), predicate,
						    scoped(L, object, &to, lo), datatype, lang);
	if (L->oom)
		return SERD_ERR_UNKNOWN;
	if (st != SERD_SUCCESS || !split_line(b, from)) {
		b->len = from;
		L->write_failed = true;
		if (L->writer_msg[0] == '\0')
			snprintf(L->writer_msg, sizeof L->writer_msg,
				 "serd could not write the statement as N-Triples (%s)",
				 (const char *)serd_strerror(st ? st : SERD_ERR_INTERNAL));
		return st ? st : SERD_ERR_INTERNAL;
	}
	b->n++;
	L->statements++;
	if (b->n == b->cap || b->len >= BATCH_BYTES)
		submit(L);
	if ((L->statements & 1023) == 0) {
		double now = mono_now();
		if (now - L->last_progress >= PROGRESS_EVERY)
			report_progress(L, now);
	}
	return SERD_SUCCESS;
}

/* ---------------------------------------------------------------------- */
/* Locating a statement the writer refused                                 */
/* ---------------------------------------------------------------------- */

/* serd gives no position when its writer refuses a statement (an
 * undefined prefix), so the file is read again, a byte at a time, up to
 * that statement: the position is where the reader was when it delivered
 * it (the end of its object).  Only for a file that can be opened again. */
typedef struct locator {
	FILE *f;
	uint64_t want, seen;
	unsigned line, col;
	bool found;
	unsigned at_line, at_col;
} locator_t;

static size_t loc_read(void *buf, size_t size, size_t nmemb, void *stream)
{
	locator_t *l = stream;
	(void)size, (void)nmemb; /* serd asks for 1 x 1 with page size 1 */
	int c = getc(l->f);
	if (c == EOF)
		return 0;
	*(uint8_t *)buf = (uint8_t)c;
	if (c == '\n')
		l->line++, l->col = 0;
	else
		l->col++;
	return 1;
}

static int loc_error(void *stream)
{
	return ferror(((locator_t *)stream)->f);
}

static SerdStatus loc_statement(void *handle, SerdStatementFlags flags, const SerdNode *graph,
				const SerdNode *s, const SerdNode *p, const SerdNode *o,
				const SerdNode *dt, const SerdNode *lang)
{
	locator_t *l = handle;
	(void)flags, (void)graph, (void)s, (void)p, (void)o, (void)dt, (void)lang;
	if (++l->seen < l->want)
		return SERD_SUCCESS;
	l->found = true;
	l->at_line = l->line;
	l->at_col = l->col;
	return SERD_ERR_UNKNOWN; /* stop */
}

static SerdStatus loc_quiet(void *handle, const SerdError *e)
{
	(void)handle, (void)e;
	return SERD_SUCCESS;
}

static bool locate_statement(const char *path, SerdSyntax syntax, uint64_t index,
			     unsigned *line, unsigned *col)
{
	locator_t l = { .want = index, .line = 1 };
	if (strcmp(path, "-") == 0 || (l.f = fopen(path, "rb")) == NULL)
		return false;
	SerdReader *r = serd_reader_new(syntax, &l, NULL, NULL, NULL, loc_statement, NULL);
	if (r != NULL) {
		serd_reader_set_strict(r, true);
		serd_reader_set_error_sink(r, loc_quiet, NULL);
		serd_reader_read_source(r, loc_read, loc_error, &l, (const uint8_t *)path, 1);
		serd_reader_free(r);
	}
	fclose(l.f);
	if (l.found) {
		*line = l.at_line;
		*col = l.at_col;
	}
	return l.found;
}

/* ---------------------------------------------------------------------- */
/* One term, as a query names it                                           */
/* ---------------------------------------------------------------------- */

typedef struct norm {
	loader_t *L;
	unsigned statements;
} norm_t;

static SerdStatus norm_statement(void *handle, SerdStatementFlags flags, const SerdNode *graph,
				 const SerdNode *s, const SerdNode *p, const SerdNode *o,
				 const SerdNode *dt, const SerdNode *lang)
{
	norm_t *nm = handle;
	loader_t *L = nm->L;
	(void)flags, (void)graph;
	if (++nm->statements > 1)
		return SERD_ERR_BAD_SYNTAX; /* text held more than one term */
	size_t from = L->cur->len;
	SerdStatus st = serd_writer_write_statement(L->writer, 0, NULL, s, p, o, dt, lang);
	if (L->oom)
		return SERD_ERR_UNKNOWN;
	if (st != SERD_SUCCESS || !split_line(L->cur, from)) {
		L->write_failed = true;
		return st ? st : SERD_ERR_INTERNAL;
	}
	L->cur->n++;
	return SERD_SUCCESS;
}

int rdf_term_normalize(const char *text, int pos, char **out, size_t *outlen, char *msg,
		       size_t msgcap)
{
	static const char *const fmt[3] = { "%s <urn:x:p> <urn:x:o> .\n",
					    "<urn:x:s> %s <urn:x:o> .\n",
					    "<urn:x:s> <urn:x:p> %s .\n" };
	if (msg != NULL && msgcap > 0)
		msg[0] = '\0';
	if (text == NULL || out == NULL || outlen == NULL || pos < 0 || pos > 2)
		return RDF_LOAD_EINVAL;
	*out = NULL;
	*outlen = 0;
	int code = RDF_LOAD_ENOMEM;
	char *doc = NULL;
	loader_t *L = calloc(1, sizeof *L);
	SerdEnv *env = NULL;
	SerdReader *reader = NULL;
	norm_t nm = { .L = L };
	if (L != NULL && asprintf(&doc, fmt[pos], text) < 0)
		doc = NULL;
	if (L == NULL || doc == NULL || (L->cur = batch_new(2)) == NULL ||
	    (env = serd_env_new(NULL)) == NULL ||
	    (L->writer = serd_writer_new(SERD_NTRIPLES, SERD_STYLE_ASCII, env, NULL, text_sink,
					 L)) == NULL ||
	    (reader = serd_reader_new(SERD_NTRIPLES, &nm, NULL, NULL, NULL, norm_statement,
				      NULL)) == NULL)
		goto out;
	serd_writer_set_error_sink(L->writer, on_writer_error, L);
	serd_reader_set_strict(reader, true);
	serd_reader_set_error_sink(reader, on_error, L);
	SerdStatus st = serd_reader_read_string(reader, (const uint8_t *)doc);
	if (L->oom) {
		code = RDF_LOAD_ENOMEM;
	} else if (st != SERD_SUCCESS || nm.statements != 1 || L->cur->n != 1) {
		code = RDF_LOAD_ESYNTAX;
		const char *why = L->have_err		   ? L->err_msg
				  : L->writer_msg[0] != '\0' ? L->writer_msg
				  : nm.statements > 1	   ? "more than one term"
							   : "not an N-Triples term";
		if (msg != NULL && msgcap > 0)
			snprintf(msg, msgcap, "%s", why);
	} else {
		span_t sp = L->cur->term[pos];
		if ((*out = malloc(sp.len + 1)) != NULL) {
			memcpy(*out, L->cur->text + sp.off, sp.len);
			(*out)[sp.len] = '\0';
			*outlen = sp.len;
			code = 0;
		}
	}
out:
	if (reader != NULL)
		serd_reader_free(reader);
	if (L != NULL) {
		if (L->writer != NULL)
			serd_writer_free(L->writer);
		batch_free(L->cur);
	}
	if (env != NULL)
		serd_env_free(env);
	free(doc);
	free(L);
	return code;
}

/* ---------------------------------------------------------------------- */
/* The call                                                                */
/* ---------------------------------------------------------------------- */

const char *rdf_load_strerror(int code)
{
	switch (code) {
	case RDF_LOAD_OK: return "success";
	case RDF_LOAD_EINVAL: return "invalid argument";
	case RDF_LOAD_EOPEN: return "cannot open the file";
	case RDF_LOAD_EREAD: return "reading the file failed";
	case RDF_LOAD_ESYNTAX: return "syntax error";
	case RDF_LOAD_ESTORE: return "a store call failed";
	case RDF_LOAD_ENOMEM: return "out of memory";
	case RDF_LOAD_ETHREAD: return "cannot start an inserter thread";
	default: return "unknown error";
	}
}

static SerdSyntax pick_syntax(rdf_syntax_t s, const char *path)
{
	if (s == RDF_SYNTAX_NTRIPLES)
		return SERD_NTRIPLES;
	if (s == RDF_SYNTAX_TURTLE)
		return SERD_TURTLE;
	const char *dot = strrchr(path, '.');
	if (dot != NULL && strchr(dot, '/') == NULL && strcasecmp(dot, ".nt") == 0)
		return SERD_NTRIPLES;
	return SERD_TURTLE;
}

/* One inserter per core: the parser thread costs ~0.7 us a triple against
 * ~6-14 us of inserting (bench/triples/README.md), so it takes a small
 * share of a core and the inserters are what limits a load.  Measured on 2
 * cores: 2 inserters load ~1.4x faster than 1. */
static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 1 ? (unsigned)n : 1;
}

/* The base URI node: o->base_uri, else the file URI of path made absolute
 * (the working directory before a relative path; symbolic links are not
 * resolved, so an absolute path gives the base serdi gives it); none for
 * stdin. */
static SerdNode make_base(const char *path, const rdf_load_opts_t *o, SerdURI *base_uri)
{
	*base_uri = SERD_URI_NULL;
	if (o->base_uri != NULL)
		return serd_node_new_uri_from_string((const uint8_t *)o->base_uri, NULL, base_uri);
	if (strcmp(path, "-") == 0)
		return SERD_NODE_NULL;
	char *abs = NULL, *cwd = NULL;
	if (path[0] != '/' && (cwd = getcwd(NULL, 0)) != NULL &&
	    asprintf(&abs, "%s/%s", cwd, path) < 0)
		abs = NULL;
	free(cwd);
	SerdNode n = serd_node_new_file_uri((const uint8_t *)(abs ? abs : path), NULL, base_uri,
					    true);
	free(abs);
	return n;
}

int rdf_load_file(cidstore_t *st, const char *path, const rdf_load_opts_t *o,
		  rdf_load_result_t *r)
{
	static const rdf_load_opts_t defaults;
	if (r != NULL)
		memset(r, 0, sizeof *r);
	if (st == NULL || path == NULL || r == NULL)
		return RDF_LOAD_EINVAL;
	if (o == NULL)
		o = &defaults;
	if (o->syntax != RDF_SYNTAX_AUTO && o->syntax != RDF_SYNTAX_NTRIPLES &&
	    o->syntax != RDF_SYNTAX_TURTLE)
		return RDF_LOAD_EINVAL;
	if (o->batch > ((size_t)1 << 20))
		return RDF_LOAD_EINVAL;

	loader_t *L = calloc(1, sizeof *L);
	if (L == NULL)
		return RDF_LOAD_ENOMEM;
	L->st = st;
	L->o = o;
	L->path = path;
	L->batch_cap = o->batch ? o->batch : DEFAULT_BATCH;
	atomic_init(&L->failed, false);
	atomic_init(&L->stored, 0);
	atomic_init(&L->added, 0);
	atomic_init(&L->terms_new, 0);
	if (o->scope != NULL) {
		memcpy(L->scope, o->scope, 16);
	} else if (getrandom(L->scope, 16, 0) != 16) {
		/* no entropy source: still distinct per load in practice */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t x[2] = { (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 32),
				  (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)L };
		memcpy(L->scope, x, 16);
	}

	int code = RDF_LOAD_OK;
	bool is_stdin = strcmp(path, "-") == 0;
	L->in = is_stdin ? stdin : fopen(path, "rb");
	if (L->in == NULL) {
		r->sys_errno = errno;
		free(L);
		return RDF_LOAD_EOPEN;
	}
	struct stat sb;
	if (fstat(fileno(L->in), &sb) == 0 && S_ISREG(sb.st_mode))
		L->bytes_total = (uint64_t)sb.st_size;
	else if (!is_stdin && fstat(fileno(L->in), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		r->sys_errno = EISDIR;
		fclose(L->in);
		free(L);
		return RDF_LOAD_EOPEN;
	}

	unsigned nthreads = o->threads ? o->threads : default_threads();
	worker_t *workers = calloc(nthreads, sizeof *workers);
	unsigned started = 0;
	pthread_mutex_init(&L->q.lock, NULL);
	pthread_cond_init(&L->q.has_ready, NULL);
	pthread_cond_init(&L->q.has_free, NULL);
	L->q.max_batches = 2 * (size_t)nthreads + 2;

	SerdSyntax syntax = pick_syntax(o->syntax, path);
	SerdURI base_uri;
	SerdNode base = make_base(path, o, &base_uri);
	SerdEnv *env = serd_env_new(base.buf ? &base : NULL);
	/* serdi's style for N-Triples output: ASCII, and resolved IRIs when
	 * the input may hold relative ones (Turtle) */
	SerdStyle style = SERD_STYLE_ASCII;
	if (syntax == SERD_TURTLE)
		style = (SerdStyle)(style | SERD_STYLE_RESOLVED);
	L->writer = env ? serd_writer_new(SERD_NTRIPLES, style, env, &base_uri, text_sink, L) : NULL;
	SerdReader *reader = serd_reader_new(syntax, L, NULL, on_base, on_prefix, on_statement, NULL);
	if (workers == NULL || env == NULL || L->writer == NULL || reader == NULL) {
		code = RDF_LOAD_ENOMEM;
		goto out;
	}
	serd_writer_set_error_sink(L->writer, on_writer_error, L);
	serd_reader_set_strict(reader, true);
	serd_reader_set_error_sink(reader, on_error, L);

	for (; started < nthreads; started++) {
		if (!worker_init(&workers[started], L)) {
			code = RDF_LOAD_ENOMEM;
			break;
		}
		if (pthread_create(&workers[started].tid, NULL, worker_main, &workers[started]) != 0) {
			worker_free(&workers[started]);
			code = RDF_LOAD_ETHREAD;
			break;
		}
	}

	L->t0 = L->last_progress = mono_now();
	SerdStatus sst = SERD_SUCCESS;
	if (code == RDF_LOAD_OK) {
		sst = serd_reader_read_source(reader, src_read, src_error, L, (const uint8_t *)path,
					      PAGE_SIZE_READ);
		submit(L); /* the last, partly filled batch */
	}

	/* Every queued batch goes in (or is skipped after a store error)
	 * before the workers exit. */
	pthread_mutex_lock(&L->q.lock);
	L->q.closed = true;
	pthread_cond_broadcast(&L->q.has_ready);
	pthread_mutex_unlock(&L->q.lock);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(workers[i].tid, NULL);
		worker_free(&workers[i]);
	}

	if (code != RDF_LOAD_OK) {
		/* threads or memory failed before reading */
	} else if (atomic_load_explicit(&L->failed, memory_order_acquire)) {
		code = RDF_LOAD_ESTORE;
		r->store_err = L->q.store_err;
	} else if (L->oom) {
		code = RDF_LOAD_ENOMEM;
	} else if (ferror(L->in)) {
		code = RDF_LOAD_EREAD;
		r->sys_errno = errno ? errno : EIO;
	} else if (L->write_failed) {
		code = RDF_LOAD_ESYNTAX;
		snprintf(r->message, sizeof r->message, "%s", L->writer_msg);
		locate_statement(path, syntax, L->statements + 1, &r->line, &r->col);
	} else if (sst != SERD_SUCCESS) {
		code = RDF_LOAD_ESYNTAX;
		r->line = L->err_line;
		r->col = L->err_col;
		if (L->have_err)
			snprintf(r->message, sizeof r->message, "%s", L->err_msg);
		else
			snprintf(r->message, sizeof r->message, "%s",
				 (const char *)serd_strerror(sst));
	}
	if (code == RDF_LOAD_OK || code == RDF_LOAD_ESYNTAX || code == RDF_LOAD_ESTORE)
		report_progress(L, mono_now());

out:
	r->statements = atomic_load_explicit(&L->stored, memory_order_relaxed);
	r->added = atomic_load_explicit(&L->added, memory_order_relaxed);
	r->present = r->statements - r->added;
	r->terms_new = atomic_load_explicit(&L->terms_new, memory_order_relaxed);
	r->bytes = L->bytes_read;
	r->secs = mono_now() - L->t0;
	if (reader != NULL)
		serd_reader_free(reader);
	if (L->writer != NULL)
		serd_writer_free(L->writer);
	if (env != NULL)
		serd_env_free(env);
	serd_node_free(&base);
	batch_free(L->cur);
	while (L->q.free != NULL) {
		batch_t *b = L->q.free;
		L->q.free = b->next;
		batch_free(b);
	}
	while (L->q.ready_head != NULL) { /* only when no worker ran */
		batch_t *b = L->q.ready_head;
		L->q.ready_head = b->next;
		batch_free(b);
	}
	pthread_cond_destroy(&L->q.has_free);
	pthread_cond_destroy(&L->q.has_ready);
	pthread_mutex_destroy(&L->q.lock);
	free(workers);
	if (!is_stdin)
		fclose(L->in);
	free(L);
	return code;
}
