// bench_triples.cc — cidstore's triple layer against sord, in one binary.
//
// Public API only (cidstore.h) plus the tool's loading pipeline
// (tools/cidstore/rdf_load.c, compiled in; it uses the public API only);
// C++17; Google Benchmark; JSON output.  Every contender reads the same
// N-Triples file (--file, made by gen_triples) through the same serd parser.
//
// Workloads:
//
//   serd_parse_only/n:<N>
//       serd's N-Triples reader over the file, statements counted and
//       nothing else: the parser's ceiling on one core.
//
//   serd_parse_write/n:<N>
//       serd's reader plus serd's N-Triples writer per statement into a
//       text buffer: the parser thread's work in rdf_load (which takes each
//       term's text from that line), without the queue.
//
//   sord_load/n:<N>
//       serd -> sord (sord_new_reader) into sord_new(world,
//       SORD_SPO | SORD_POS | SORD_OSP, false), sord's full-store indexes.
//       One thread, as sord is.
//
//   cidstore_load/dur:<async|mem>/inserters:<T>/n:<N>
//       rdf_load_file(): the caller's thread parses (serd) and queues
//       batches, T inserter threads hash the terms and call
//       cidstore_term_put_many + cidstore_triple_insert_many.  dur:async: a
//       durable ASYNC store in a fresh directory under --dir (library
//       defaults otherwise, so automatic checkpoints at 256 MiB of log run
//       during the load; --checkpoint-mib changes that); the timed part
//       ends with cidstore_sync (every triple durable).  dur:mem: an
//       in-memory store (opts.dir = NULL).  The parser thread plus T
//       inserters run on the machine's cores (2 here: T = 2 oversubscribes).
//
//   Every load runs in a forked child (a fresh process, so the RSS delta is
//   the load's own: nothing freed by an earlier run is reused) and reports
//   through a pipe.  items_per_second = triples / load time.  Counters:
//       cpu_us_per_triple      CPU time (user + system, every thread of the
//                              process) of the timed part / triples: the
//                              cost, less sensitive to a loaded machine
//       rss_bytes_per_triple   (resident set after - before) / triples,
//                              /proc/self/statm, allocator overhead included
//       cidstore: mem_bytes_per_triple (cidstore_stats.memory_bytes),
//                 disk_bytes_per_triple (WAL + checkpoint + META files after
//                 an untimed cidstore_checkpoint, allocated blocks) and its
//                 wal/ckpt split, wal_records_per_triple, checkpoints (during
//                 the load), terms_new, ckpt_s, triples_stored (cidstore_triple_count
//                 of ??? afterwards, must equal the file's triples).
//       sord: triples_stored = sord_num_quads.
//
//   query/<pattern>/<sord|cidstore>/n:<N>
//       After both stores hold the file (loaded once, untimed, in this
//       process; cidstore ASYNC with --query-inserters), --samples triples
//       drawn at random from the file give the bound terms; the same
//       sample serves both contenders, in the same order.  Patterns:
//       SP?, ?PO, S??, ??O (every matching triple delivered: sord_search
//       iterated to the end / cidstore_triple_match with a callback), ?P?
//       counted (sord has no count: its iterator is walked;
//       cidstore_triple_count).  items_per_second = queries/s; counter
//       results_per_query.  Before the first query the sample is checked on
//       both stores (each sampled triple found once, its terms in
//       cidstore's dictionary, and both stores give the same number of
//       results for every pattern on the first 64 samples, 8 for ?P?).
//       Times are wall-clock (UseRealTime).
//
// Run with --help for the options.  Store directories go under --dir and
// are removed after each run.
#include <benchmark/benchmark.h>

#include <cidstore.h>
extern "C" {
#include "rdf_load.h"
}
#include <serd/serd.h>
#include <sord/sord.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>
#include "../xoshiro.h"

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------
struct Config {
	std::string file;                      // the N-Triples input
	std::string dir = "/tmp/cidstore-tbench";
	std::vector<int> inserters = {1, 2};
	int query_inserters = 2;
	size_t samples = 4096;
	size_t batch = 0;                      // rdf_load_opts.batch (0: its default)
	int64_t checkpoint_mib = -1;           // -1: library default; 0: off
	uint64_t expected_keys = 0;            // opts.expected_keys (0: start small)
	double query_min_time = 1.0;
	uint64_t seed = 0x7e1e5eed;
	uint64_t n = 0;                        // statements in the file (counted at start)
};
Config cfg;

std::string fmt_count(uint64_t n)
{
	if (n >= 1000000 && n % 1000000 == 0)
		return std::to_string(n / 1000000) + "M";
	if (n >= 1000 && n % 1000 == 0)
		return std::to_string(n / 1000) + "K";
	return std::to_string(n);
}

double now_s()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double load_avg()
{
	double l = 0;
	if (FILE *f = std::fopen("/proc/loadavg", "r")) {
		if (std::fscanf(f, "%lf", &l) != 1)
			l = 0;
		std::fclose(f);
	}
	return l;
}

// CPU time (user + system) of this process, every thread, in seconds.
double cpu_s()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// Resident set size of this process in bytes (/proc/self/statm).
double rss_bytes()
{
	long pages = 0, res = 0;
	if (FILE *f = std::fopen("/proc/self/statm", "r")) {
		if (std::fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		std::fclose(f);
	}
	return (double)res * (double)sysconf(_SC_PAGESIZE);
}

// ---------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------
std::string fresh_dir(const std::string &tag)
{
	fs::create_directories(cfg.dir);
	std::string tmpl = cfg.dir + "/" + tag + "-XXXXXX";
	std::vector<char> buf(tmpl.begin(), tmpl.end());
	buf.push_back(0);
	if (!mkdtemp(buf.data())) {
		std::perror("mkdtemp");
		std::exit(2);
	}
	return buf.data();
}

void remove_dir(const std::string &d)
{
	std::error_code ec;
	fs::remove_all(d, ec);
}

// Allocated bytes (st_blocks) of the store's files, split by kind.
struct DiskUse {
	double wal = 0, ckpt = 0, other = 0;
	double total() const { return wal + ckpt + other; }
};

DiskUse disk_use(const std::string &d)
{
	DiskUse u;
	std::error_code ec;
	for (auto &e : fs::directory_iterator(d, ec)) {
		struct stat sb;
		if (stat(e.path().c_str(), &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		double b = (double)sb.st_blocks * 512.0;
		std::string name = e.path().filename();
		if (name.rfind("wal-", 0) == 0)
			u.wal += b;
		else if (name.rfind("ckpt-", 0) == 0)
			u.ckpt += b;
		else
			u.other += b;
	}
	return u;
}

// ---------------------------------------------------------------------
// serd: statement counting, and the N-Triples text of a statement's terms
// ---------------------------------------------------------------------
SerdStatus count_sink(void *handle, SerdStatementFlags, const SerdNode *, const SerdNode *,
		      const SerdNode *, const SerdNode *, const SerdNode *, const SerdNode *)
{
	++*(uint64_t *)handle;
	return SERD_SUCCESS;
}

// Parses the file with serd alone; returns the statement count or -1.
int64_t serd_count(const std::string &path)
{
	uint64_t n = 0;
	SerdReader *rd = serd_reader_new(SERD_NTRIPLES, &n, nullptr, nullptr, nullptr, count_sink,
					 nullptr);
	SerdStatus s = serd_reader_read_file(rd, (const uint8_t *)path.c_str());
	serd_reader_free(rd);
	return s == SERD_SUCCESS ? (int64_t)n : -1;
}

size_t string_sink(const void *buf, size_t len, void *stream)
{
	((std::string *)stream)->append((const char *)buf, len);
	return len;
}

// The N-Triples text of each term, as rdf_load computes it (and as
// `serdi -o ntriples` writes it): the statement goes through serd's
// N-Triples writer (ASCII style) and the line "S P O .\n" is split: an IRI
// ends at its first '>' (the writer escapes any other), a blank node at its
// first space, the object is the rest before " .".
size_t term_end(const std::string &line, size_t from)
{
	if (from >= line.size())
		return std::string::npos;
	size_t e = line[from] == '<' ? line.find('>', from) : line.find(' ', from) - 1;
	return e == std::string::npos ? e : e + 1;
}

bool nt_terms(SerdEnv *env, const SerdNode *s, const SerdNode *p, const SerdNode *o,
	      const SerdNode *dt, const SerdNode *lang, std::string out[3])
{
	std::string line;
	SerdWriter *w = serd_writer_new(SERD_NTRIPLES, SERD_STYLE_ASCII, env, nullptr, string_sink,
					&line);
	serd_writer_write_statement(w, 0, nullptr, s, p, o, dt, lang);
	serd_writer_finish(w);
	serd_writer_free(w);
	size_t a = term_end(line, 0);
	size_t b = a == std::string::npos ? a : term_end(line, a + 1);
	size_t e = line.rfind(" .");
	if (b == std::string::npos || e == std::string::npos || e <= b + 1)
		return false;
	out[0] = line.substr(0, a);
	out[1] = line.substr(a + 1, b - a - 1);
	out[2] = line.substr(b + 1, e - b - 1);
	return true;
}

// ---------------------------------------------------------------------
// Loads in a forked child
// ---------------------------------------------------------------------
struct LoadResult {
	int ok = 0;
	char err[256] = {0};
	double secs = 0, cpu = 0, sync_s = 0, ckpt_s = 0;
	double n = 0, stored = 0;
	double rss_delta = 0, mem_bytes = 0;
	double disk_wal = 0, disk_ckpt = 0, disk_other = 0;
	double wal_records = 0, checkpoints = 0, terms_new = 0;
	double load_avg = 0;
};

// Runs fn in a fresh child process and returns what it filled in.
LoadResult in_child(const std::function<void(LoadResult &)> &fn)
{
	LoadResult r;
	int fd[2];
	if (pipe(fd) != 0) {
		std::snprintf(r.err, sizeof r.err, "pipe: %s", std::strerror(errno));
		return r;
	}
	std::fflush(nullptr);
	pid_t pid = fork();
	if (pid < 0) {
		std::snprintf(r.err, sizeof r.err, "fork: %s", std::strerror(errno));
		return r;
	}
	if (pid == 0) {
		close(fd[0]);
		LoadResult c;
		fn(c);
		ssize_t w = write(fd[1], &c, sizeof c);
		_exit(w == (ssize_t)sizeof c ? 0 : 1);
	}
	close(fd[1]);
	size_t got = 0;
	while (got < sizeof r) {
		ssize_t k = read(fd[0], (char *)&r + got, sizeof r - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	if (got != sizeof r) {
		r = LoadResult();
		std::snprintf(r.err, sizeof r.err, "child died (status %d)", status);
	}
	return r;
}

void report_load(benchmark::State &st, const LoadResult &r)
{
	st.SetIterationTime(r.secs);
	st.SetItemsProcessed((int64_t)r.n);
	st.counters["triples"] = r.n;
	st.counters["triples_stored"] = r.stored;
	st.counters["rss_bytes_per_triple"] = r.rss_delta / r.n;
	st.counters["cpu_us_per_triple"] = r.cpu * 1e6 / r.n;
	st.counters["load_avg_1m"] = r.load_avg;
}

void BM_serd_parse(benchmark::State &st)
{
	for (auto _ : st) {
		double la = load_avg();
		double t = now_s(), cpu0 = cpu_s();
		int64_t n = serd_count(cfg.file);
		double secs = now_s() - t, cpu = cpu_s() - cpu0;
		if (n < 0) {
			st.SkipWithError("serd: the file does not parse");
			break;
		}
		st.SetIterationTime(secs);
		st.SetItemsProcessed(n);
		st.counters["triples"] = (double)n;
		st.counters["cpu_us_per_triple"] = cpu * 1e6 / (double)n;
		st.counters["load_avg_1m"] = la;
	}
}

// The parser thread's share of rdf_load without the queue: serd's reader
// plus, per statement, serd's N-Triples writer into a text buffer (cleared
// every 1024 statements, as a batch), which is how rdf_load gets each
// term's text.
struct WriteCtx {
	SerdWriter *w;
	std::string buf;
	uint64_t n = 0;
};

SerdStatus write_sink(void *handle, SerdStatementFlags, const SerdNode *, const SerdNode *s,
		      const SerdNode *p, const SerdNode *o, const SerdNode *dt,
		      const SerdNode *lang)
{
	WriteCtx *c = (WriteCtx *)handle;
	if ((++c->n & 1023) == 0)
		c->buf.clear();
	return serd_writer_write_statement(c->w, 0, nullptr, s, p, o, dt, lang);
}

void BM_serd_parse_write(benchmark::State &st)
{
	for (auto _ : st) {
		WriteCtx c;
		SerdEnv *env = serd_env_new(nullptr);
		c.w = serd_writer_new(SERD_NTRIPLES, SERD_STYLE_ASCII, env, nullptr, string_sink,
				      &c.buf);
		SerdReader *rd = serd_reader_new(SERD_NTRIPLES, &c, nullptr, nullptr, nullptr,
						 write_sink, nullptr);
		double la = load_avg();
		double t = now_s(), cpu0 = cpu_s();
		SerdStatus ss = serd_reader_read_file(rd, (const uint8_t *)cfg.file.c_str());
		double secs = now_s() - t, cpu = cpu_s() - cpu0;
		serd_reader_free(rd);
		serd_writer_free(c.w);
		serd_env_free(env);
		if (ss != SERD_SUCCESS) {
			st.SkipWithError("serd: the file does not parse");
			break;
		}
		st.SetIterationTime(secs);
		st.SetItemsProcessed((int64_t)c.n);
		st.counters["triples"] = (double)c.n;
		st.counters["cpu_us_per_triple"] = cpu * 1e6 / (double)c.n;
		st.counters["load_avg_1m"] = la;
	}
}

void BM_sord_load(benchmark::State &st)
{
	for (auto _ : st) {
		LoadResult r = in_child([](LoadResult &c) {
			c.load_avg = load_avg();
			double rss0 = rss_bytes();
			SordWorld *w = sord_world_new();
			SordModel *m = sord_new(w, SORD_SPO | SORD_POS | SORD_OSP, false);
			SerdEnv *env = serd_env_new(nullptr);
			SerdReader *rd = sord_new_reader(m, env, SERD_NTRIPLES, nullptr);
			double t = now_s(), cpu0 = cpu_s();
			SerdStatus s = serd_reader_read_file(rd, (const uint8_t *)cfg.file.c_str());
			c.secs = now_s() - t;
			c.cpu = cpu_s() - cpu0;
			c.rss_delta = rss_bytes() - rss0;
			if (s != SERD_SUCCESS) {
				std::snprintf(c.err, sizeof c.err, "sord load: %s",
					      serd_strerror(s));
				return;
			}
			c.n = (double)cfg.n;
			c.stored = (double)sord_num_quads(m);
			c.ok = 1; /* the child exits without freeing the model */
		});
		if (!r.ok) {
			st.SkipWithError(r.err);
			break;
		}
		report_load(st, r);
	}
}

int open_store(bool mem, const std::string &d, cidstore_t **s)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = mem ? nullptr : d.c_str();
	o.durability = mem ? CIDSTORE_DURABILITY_NONE : CIDSTORE_DURABILITY_ASYNC;
	if (cfg.checkpoint_mib >= 0)
		o.checkpoint_wal_bytes = (uint64_t)cfg.checkpoint_mib << 20;
	o.expected_keys = cfg.expected_keys;
	return cidstore_open(&o, s);
}

// Loads cfg.file into s through rdf_load with T inserter threads.
int load_cidstore(cidstore_t *s, int T, rdf_load_result_t *res, char *err, size_t errlen)
{
	rdf_load_opts_t lo;
	std::memset(&lo, 0, sizeof lo);
	lo.syntax = RDF_SYNTAX_NTRIPLES;
	lo.threads = (unsigned)T;
	lo.batch = cfg.batch;
	int rc = rdf_load_file(s, cfg.file.c_str(), &lo, res);
	if (rc != RDF_LOAD_OK) {
		std::string m = std::string("rdf_load_file: ") + rdf_load_strerror(rc) + " (store: " +
				(res->store_err ? cidstore_strerror(res->store_err) : "-") + ") " +
				res->message;
		std::snprintf(err, errlen, "%s", m.c_str());
	}
	return rc;
}

void BM_cidstore_load(benchmark::State &st, bool mem, int T)
{
	for (auto _ : st) {
		std::string d = fresh_dir("cid");
		LoadResult r = in_child([&](LoadResult &c) {
			c.load_avg = load_avg();
			double rss0 = rss_bytes();
			cidstore_t *s = nullptr;
			int rc = open_store(mem, d, &s);
			if (rc < 0) {
				std::snprintf(c.err, sizeof c.err, "cidstore_open: %s",
					      cidstore_strerror(rc));
				return;
			}
			rdf_load_result_t res;
			double t = now_s(), cpu0 = cpu_s();
			if (load_cidstore(s, T, &res, c.err, sizeof c.err) != RDF_LOAD_OK)
				return;
			double t1 = now_s();
			rc = cidstore_sync(s);
			double t2 = now_s();
			c.cpu = cpu_s() - cpu0;
			c.secs = t2 - t;
			c.sync_s = t2 - t1;
			c.rss_delta = rss_bytes() - rss0;
			if (rc < 0) {
				std::snprintf(c.err, sizeof c.err, "cidstore_sync: %s",
					      cidstore_strerror(rc));
				return;
			}
			cidstore_stats_t ss;
			cidstore_stats(s, &ss);
			c.mem_bytes = (double)ss.memory_bytes;
			c.wal_records = (double)ss.wal_records;
			c.checkpoints = (double)ss.checkpoints;
			c.terms_new = (double)res.terms_new;
			c.n = (double)res.statements;
			c.stored = (double)cidstore_triple_count(s, nullptr, nullptr, nullptr);
			if (!mem) {
				t = now_s();
				rc = cidstore_checkpoint(s);
				c.ckpt_s = now_s() - t;
				if (rc < 0) {
					std::snprintf(c.err, sizeof c.err, "cidstore_checkpoint: %s",
						      cidstore_strerror(rc));
					return;
				}
				DiskUse u = disk_use(d);
				c.disk_wal = u.wal;
				c.disk_ckpt = u.ckpt;
				c.disk_other = u.other;
			}
			c.ok = 1;
			cidstore_close(s);
		});
		remove_dir(d);
		if (!r.ok) {
			st.SkipWithError(r.err);
			break;
		}
		report_load(st, r);
		st.counters["inserters"] = T;
		st.counters["threads_total"] = T + 1;
		st.counters["mem_bytes_per_triple"] = r.mem_bytes / r.n;
		st.counters["wal_records_per_triple"] = r.wal_records / r.n;
		st.counters["checkpoints"] = r.checkpoints;
		st.counters["terms_new"] = r.terms_new;
		st.counters["sync_s"] = r.sync_s;
		if (!mem) {
			st.counters["ckpt_s"] = r.ckpt_s;
			st.counters["disk_bytes_per_triple"] =
				(r.disk_wal + r.disk_ckpt + r.disk_other) / r.n;
			st.counters["disk_wal_bytes_per_triple"] = r.disk_wal / r.n;
			st.counters["disk_ckpt_bytes_per_triple"] = r.disk_ckpt / r.n;
		}
	}
}

// ---------------------------------------------------------------------
// Queries: both stores loaded once, the same sample of bound terms
// ---------------------------------------------------------------------
struct Sample {
	const SordNode *s, *p, *o; // owned by the sord world (interned)
	cid_t cs, cp, co;
};

struct QueryState {
	SordWorld *world = nullptr;
	SordModel *model = nullptr;
	cidstore_t *store = nullptr;
	std::string dir;
	std::vector<Sample> samples;
	std::string error;
	bool ready = false;
};
QueryState *g_q = nullptr;

struct SampleCtx {
	SordWorld *world;
	SerdEnv *env;
	const std::vector<uint64_t> *pick; // sorted statement indexes
	size_t next = 0;
	uint64_t index = 0;
	std::vector<Sample> *out;
	bool bad = false;
};

SerdStatus sample_sink(void *handle, SerdStatementFlags, const SerdNode *, const SerdNode *s,
		       const SerdNode *p, const SerdNode *o, const SerdNode *dt,
		       const SerdNode *lang)
{
	SampleCtx *c = (SampleCtx *)handle;
	uint64_t i = c->index++;
	while (c->next < c->pick->size() && (*c->pick)[c->next] == i) {
		c->next++;
		std::string t[3];
		if (!nt_terms(c->env, s, p, o, dt, lang, t)) {
			c->bad = true;
			return SERD_SUCCESS;
		}
		Sample x;
		SordNode *ns = sord_node_from_serd_node(c->world, c->env, s, nullptr, nullptr);
		SordNode *np = sord_node_from_serd_node(c->world, c->env, p, nullptr, nullptr);
		SordNode *no = sord_node_from_serd_node(c->world, c->env, o, dt, lang);
		x.s = ns;
		x.p = np;
		x.o = no;
		cid_sha256(t[0].data(), t[0].size(), &x.cs);
		cid_sha256(t[1].data(), t[1].size(), &x.cp);
		cid_sha256(t[2].data(), t[2].size(), &x.co);
		c->out->push_back(x);
	}
	return SERD_SUCCESS;
}

size_t sord_count_pattern(SordModel *m, const SordNode *s, const SordNode *p, const SordNode *o,
			  uint64_t *sink)
{
	SordIter *it = sord_search(m, s, p, o, nullptr);
	size_t c = 0;
	if (!it)
		return 0;
	for (; !sord_iter_end(it); sord_iter_next(it)) {
		SordQuad q;
		sord_iter_get(it, q);
		*sink += (uintptr_t)q[SORD_SUBJECT] ^ (uintptr_t)q[SORD_OBJECT];
		c++;
	}
	sord_iter_free(it);
	return c;
}

struct MatchCtx {
	uint64_t n = 0, sink = 0;
};

int match_fn(const cidstore_triple_t *t, void *ctx)
{
	MatchCtx *m = (MatchCtx *)ctx;
	m->n++;
	m->sink += t->s.w[3] ^ t->o.w[3];
	return 0;
}

enum Pattern { SP_, _PO, S__, _P_COUNT, __O };
const char *pattern_name[] = {"SP?", "?PO", "S??", "?P?-count", "??O"};

// One query: the number of results (?P?-count: the count), or -1 with
// *err set (cidstore).  sink gathers a word of each result (sord: the
// node pointers, cidstore: CID words) so nothing is optimized away.
int64_t run_query(QueryState &q, const Sample &x, Pattern pat, bool sord, uint64_t *sink,
		  int *err = nullptr)
{
	uint64_t dummy = 0;
	if (!sink)
		sink = &dummy;
	if (sord) {
		switch (pat) {
		case SP_: return (int64_t)sord_count_pattern(q.model, x.s, x.p, nullptr, sink);
		case _PO: return (int64_t)sord_count_pattern(q.model, nullptr, x.p, x.o, sink);
		case S__: return (int64_t)sord_count_pattern(q.model, x.s, nullptr, nullptr, sink);
		case _P_COUNT: return (int64_t)sord_count_pattern(q.model, nullptr, x.p, nullptr, sink);
		case __O: return (int64_t)sord_count_pattern(q.model, nullptr, nullptr, x.o, sink);
		}
		return 0;
	}
	MatchCtx m;
	int rc = 0;
	switch (pat) {
	case SP_: rc = cidstore_triple_match(q.store, &x.cs, &x.cp, nullptr, match_fn, &m); break;
	case _PO: rc = cidstore_triple_match(q.store, nullptr, &x.cp, &x.co, match_fn, &m); break;
	case S__: rc = cidstore_triple_match(q.store, &x.cs, nullptr, nullptr, match_fn, &m); break;
	case _P_COUNT: {
		long c = cidstore_triple_count(q.store, nullptr, &x.cp, nullptr);
		if (c < 0)
			rc = (int)c;
		else
			m.n = (uint64_t)c;
		break;
	}
	case __O: rc = cidstore_triple_match(q.store, nullptr, nullptr, &x.co, match_fn, &m); break;
	}
	if (rc != 0) {
		if (err)
			*err = rc;
		return -1;
	}
	*sink += m.sink;
	return (int64_t)m.n;
}

// Builds (once) both stores and the sample; a failure is kept in error.
QueryState &query_state()
{
	if (g_q)
		return *g_q;
	g_q = new QueryState();
	QueryState &q = *g_q;
	auto fail = [&](const std::string &m) -> QueryState & {
		q.error = m;
		return q;
	};
	double t = now_s();
	q.world = sord_world_new();
	q.model = sord_new(q.world, SORD_SPO | SORD_POS | SORD_OSP, false);
	SerdEnv *env = serd_env_new(nullptr);
	SerdReader *rd = sord_new_reader(q.model, env, SERD_NTRIPLES, nullptr);
	SerdStatus ss = serd_reader_read_file(rd, (const uint8_t *)cfg.file.c_str());
	serd_reader_free(rd);
	if (ss != SERD_SUCCESS)
		return fail(std::string("sord load: ") + (const char *)serd_strerror(ss));
	std::fprintf(stderr, "queries: sord holds %zu triples (%.1f s)\n", sord_num_quads(q.model),
		     now_s() - t);

	t = now_s();
	q.dir = fresh_dir("query");
	int rc = open_store(false, q.dir, &q.store);
	if (rc < 0)
		return fail(std::string("cidstore_open: ") + cidstore_strerror(rc));
	rdf_load_result_t res;
	char err[256];
	if (load_cidstore(q.store, cfg.query_inserters, &res, err, sizeof err) != RDF_LOAD_OK)
		return fail(err);
	cidstore_sync(q.store);
	long cnt = cidstore_triple_count(q.store, nullptr, nullptr, nullptr);
	std::fprintf(stderr, "queries: cidstore holds %ld triples (%.1f s)\n", cnt, now_s() - t);
	if (cnt != (long)sord_num_quads(q.model))
		return fail("the stores disagree on the number of triples");

	// The sample: cfg.samples statement indexes drawn with replacement.
	Xoshiro256 rng(cfg.seed);
	std::vector<uint64_t> pick(cfg.samples);
	for (auto &x : pick)
		x = rng.next() % cfg.n;
	std::vector<uint64_t> order = pick; // kept in draw order below
	std::sort(pick.begin(), pick.end());
	std::vector<Sample> sorted;
	SampleCtx sc{q.world, env, &pick, 0, 0, &sorted, false};
	rd = serd_reader_new(SERD_NTRIPLES, &sc, nullptr, nullptr, nullptr, sample_sink, nullptr);
	ss = serd_reader_read_file(rd, (const uint8_t *)cfg.file.c_str());
	serd_reader_free(rd);
	serd_env_free(env);
	if (ss != SERD_SUCCESS || sc.bad || sorted.size() != pick.size())
		return fail("sampling the file failed");
	// Back to the random draw order, so consecutive queries are unrelated.
	std::vector<size_t> idx(order.size());
	for (size_t i = 0; i < order.size(); i++)
		idx[i] = (size_t)(std::lower_bound(pick.begin(), pick.end(), order[i]) - pick.begin());
	for (size_t i : idx)
		q.samples.push_back(sorted[i]);

	// Check the sample on both stores.
	for (const Sample &x : q.samples) {
		uint64_t sink = 0;
		if (sord_count_pattern(q.model, x.s, x.p, x.o, &sink) != 1)
			return fail("a sampled triple is not in sord once");
		if (cidstore_triple_count(q.store, &x.cs, &x.cp, &x.co) != 1)
			return fail("a sampled triple is not in cidstore once");
		for (const cid_t *c : {&x.cs, &x.cp, &x.co})
			if (cidstore_term_get(q.store, c, nullptr, 0) <= 0)
				return fail("a sampled term is not in cidstore's dictionary");
	}
	// Both stores give the same answer for every pattern on the first
	// samples (?P? on sord walks big sets: a few only).
	for (size_t i = 0; i < std::min<size_t>(q.samples.size(), 64); i++)
		for (Pattern p : {SP_, _PO, S__, _P_COUNT, __O}) {
			if (p == _P_COUNT && i >= 8)
				continue;
			uint64_t a = run_query(q, q.samples[i], p, true, nullptr);
			uint64_t b = run_query(q, q.samples[i], p, false, nullptr);
			if (a != b)
				return fail(std::string("sord and cidstore disagree on ") +
					    pattern_name[p] + ": " + std::to_string(a) + " vs " +
					    std::to_string(b) + " results");
		}
	q.ready = true;
	return q;
}

void free_query_state()
{
	if (!g_q)
		return;
	if (g_q->store)
		cidstore_close(g_q->store);
	if (!g_q->dir.empty())
		remove_dir(g_q->dir);
	for (const Sample &x : g_q->samples)
		for (const SordNode *n : {x.s, x.p, x.o})
			sord_node_free(g_q->world, (SordNode *)n);
	if (g_q->model)
		sord_free(g_q->model);
	if (g_q->world)
		sord_world_free(g_q->world);
	delete g_q;
	g_q = nullptr;
}


void BM_query(benchmark::State &st, Pattern pat, bool sord)
{
	QueryState &q = query_state();
	if (!q.ready) {
		st.SkipWithError(q.error.c_str());
		return;
	}
	const size_t K = q.samples.size();
	size_t i = 0;
	uint64_t results = 0, sink = 0, queries = 0;
	for (auto _ : st) {
		int err = 0;
		int64_t r = run_query(q, q.samples[i], pat, sord, &sink, &err);
		if (r < 0) {
			st.SkipWithError((std::string("cidstore query: ") + cidstore_strerror(err)).c_str());
			break;
		}
		i = i + 1 == K ? 0 : i + 1;
		results += (uint64_t)r;
		queries++;
	}
	benchmark::DoNotOptimize(sink);
	st.SetItemsProcessed((int64_t)queries);
	st.counters["results_per_query"] = queries ? (double)results / (double)queries : 0;
	st.counters["samples"] = (double)K;
	st.counters["load_avg_1m"] = load_avg();
}

// ---------------------------------------------------------------------
// Registration and main
// ---------------------------------------------------------------------
void register_all()
{
	std::string tail = "/n:" + fmt_count(cfg.n);
	auto reg_load = [](const std::string &name, auto fn) {
		benchmark::RegisterBenchmark(name.c_str(), fn)
			->Iterations(1)
			->UseManualTime()
			->Unit(benchmark::kMillisecond);
	};
	reg_load("serd_parse_only" + tail, [](benchmark::State &st) { BM_serd_parse(st); });
	reg_load("serd_parse_write" + tail, [](benchmark::State &st) { BM_serd_parse_write(st); });
	reg_load("sord_load" + tail, [](benchmark::State &st) { BM_sord_load(st); });
	for (bool mem : {false, true})
		for (int T : cfg.inserters)
			reg_load(std::string("cidstore_load/dur:") + (mem ? "mem" : "async") +
					 "/inserters:" + std::to_string(T) + tail,
				 [mem, T](benchmark::State &st) { BM_cidstore_load(st, mem, T); });
	for (Pattern p : {SP_, _PO, S__, _P_COUNT, __O})
		for (bool sord : {true, false})
			benchmark::RegisterBenchmark(
				(std::string("query/") + pattern_name[p] + "/" +
				 (sord ? "sord" : "cidstore") + tail)
					.c_str(),
				[p, sord](benchmark::State &st) { BM_query(st, p, sord); })
				->MinTime(cfg.query_min_time)
				->UseRealTime()
				->Unit(benchmark::kMicrosecond);
}

void usage()
{
	std::printf(
		"bench_triples --file=FILE.nt [options] [Google Benchmark options]\n"
		"  --file=F             N-Triples input, e.g. from gen_triples (env CIDSTORE_TBENCH_FILE)\n"
		"  --dir=/tmp/cidstore-tbench  where store directories go (removed after each run)\n"
		"  --inserters=1,2      inserter thread counts of cidstore_load (plus the parser thread)\n"
		"  --query-inserters=2  inserters of the (untimed) load before the queries\n"
		"  --samples=4096       sampled triples whose terms bind the queries\n"
		"  --batch=N            rdf_load statements per batch (default: rdf_load's)\n"
		"  --checkpoint-mib=M   cidstore opts.checkpoint_wal_bytes in MiB (0: off;\n"
		"                       default: the library's)\n"
		"  --expected-keys=K    cidstore opts.expected_keys (default 0: start small)\n"
		"  --query-min-time=S   Google Benchmark min time of each query run (default 1)\n"
		"  --seed=S             sample seed\n"
		"Profiling aid (no benchmark runs):\n"
		"  --load-only=async|mem  one cidstore load with the first --inserters count, then _exit\n"
		"Names: serd_parse_only/n:N, serd_parse_write/n:N, sord_load/n:N,\n"
		"       cidstore_load/dur:<async|mem>/inserters:T/n:N,\n"
		"       query/<SP?|?PO|S??|?P?-count|??O>/<sord|cidstore>/n:N.\n");
}

} // namespace

int main(int argc, char **argv)
{
	std::vector<char *> rest = {argv[0]};
	if (const char *e = std::getenv("CIDSTORE_TBENCH_FILE"))
		cfg.file = e;
	bool help = false;
	std::string load_only;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto val = [&](const char *pfx) -> const char * {
			size_t n = std::strlen(pfx);
			return a.compare(0, n, pfx) == 0 ? argv[i] + n : nullptr;
		};
		const char *v;
		if (a == "--help" || a == "-h") {
			usage();
			help = true;
			rest.push_back(argv[i]);
		} else if ((v = val("--file="))) {
			cfg.file = v;
		} else if ((v = val("--dir="))) {
			cfg.dir = v;
		} else if ((v = val("--inserters="))) {
			cfg.inserters.clear();
			std::stringstream ss(v);
			std::string x;
			while (std::getline(ss, x, ','))
				cfg.inserters.push_back(std::max(1, std::atoi(x.c_str())));
		} else if ((v = val("--query-inserters="))) {
			cfg.query_inserters = std::max(1, std::atoi(v));
		} else if ((v = val("--samples="))) {
			cfg.samples = std::max<size_t>(1, std::strtoull(v, nullptr, 10));
		} else if ((v = val("--batch="))) {
			cfg.batch = std::strtoull(v, nullptr, 10);
		} else if ((v = val("--checkpoint-mib="))) {
			cfg.checkpoint_mib = std::strtoll(v, nullptr, 10);
		} else if ((v = val("--expected-keys="))) {
			cfg.expected_keys = (uint64_t)std::strtod(v, nullptr);
		} else if ((v = val("--query-min-time="))) {
			cfg.query_min_time = std::atof(v);
		} else if ((v = val("--seed="))) {
			cfg.seed = std::strtoull(v, nullptr, 0);
		} else if ((v = val("--load-only="))) { /* profiling aid */
			load_only = v;
		} else {
			rest.push_back(argv[i]);
		}
	}
	if (!help) {
		if (cfg.file.empty()) {
			std::fprintf(stderr, "bench_triples: --file=FILE.nt is required "
					     "(make one with gen_triples)\n");
			return 2;
		}
		int64_t n = serd_count(cfg.file); /* also warms the page cache */
		if (n <= 0) {
			std::fprintf(stderr, "bench_triples: %s: not a non-empty N-Triples file\n",
				     cfg.file.c_str());
			return 2;
		}
		cfg.n = (uint64_t)n;
	}
	if (!load_only.empty()) { /* profiling aid: one load, nothing else */
		bool mem = load_only == "mem";
		std::string d = fresh_dir("prof");
		cidstore_t *s = nullptr;
		int rc = open_store(mem, d, &s);
		if (rc < 0) {
			std::fprintf(stderr, "cidstore_open: %s\n", cidstore_strerror(rc));
			return 1;
		}
		rdf_load_result_t res;
		char err[256];
		double t = now_s();
		if (load_cidstore(s, cfg.inserters[0], &res, err, sizeof err) != RDF_LOAD_OK) {
			std::fprintf(stderr, "%s\n", err);
			return 1;
		}
		cidstore_sync(s);
		double secs = now_s() - t;
		std::printf("%s load, %d inserters: %" PRIu64 " triples in %.2f s = %.0f triples/s\n",
			    mem ? "mem" : "async", cfg.inserters[0], res.statements, secs,
			    (double)res.statements / secs);
		std::fflush(stdout);
		remove_dir(d);
		_exit(0); /* no close: the profile holds the load only */
	}
	register_all();
	int rargc = (int)rest.size();
	rest.push_back(nullptr);
	benchmark::Initialize(&rargc, rest.data());
	if (benchmark::ReportUnrecognizedArguments(rargc, rest.data()))
		return 1;
	if (help)
		return 0;
	benchmark::AddCustomContext("file", cfg.file);
	benchmark::AddCustomContext("triples", std::to_string(cfg.n));
	benchmark::AddCustomContext("cidstore_version", cidstore_version());
	benchmark::AddCustomContext("data_dir", cfg.dir);
	benchmark::AddCustomContext("checkpoint_mib", std::to_string(cfg.checkpoint_mib));
	benchmark::AddCustomContext("samples", std::to_string(cfg.samples));
	benchmark::AddCustomContext("expected_keys", std::to_string(cfg.expected_keys));
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	free_query_state();
	std::error_code ec;
	fs::remove(cfg.dir, ec); /* only if empty */
	return 0;
}
