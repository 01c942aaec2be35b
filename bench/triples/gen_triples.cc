// gen_triples.cc — a deterministic N-Triples file with the skew of real data,
// the input of bench_triples.
//
//   gen_triples [--triples=10M] [--seed=S] [--out=FILE] [--predicates=50]
//               [--classes=1000] [--entities=N]
//
// Shape (the same --triples and --seed give the same bytes):
//   - subjects <http://example.org/resource/s<i>> in file order, each with a
//     geometric number of triples (mean 5, at least 1, at most 200; the
//     last subject is cut so the file holds exactly --triples lines);
//   - predicates: --predicates of them, Zipf (s = 1) by rank; rank 0 is
//     rdf:type (~22% of the triples at 50 predicates), whose objects are
//     classes drawn Zipf (s = 1) from --classes;
//   - every other predicate has one range, assigned so that about half the
//     triples have a literal object: plain strings (1..~120 words from a
//     Zipf vocabulary, some with an escaped quote), language-tagged
//     strings, xsd:integer, xsd:decimal, xsd:date, xsd:dateTime; the IRI
//     ranges are shared entities (Zipf, s = 1, over --entities, default
//     triples / 50) and links to other subjects (uniform);
//   - no triple repeats (a subject's triples are distinct), so the file's
//     line count is the number of distinct triples a store must hold.
// Terms are written in canonical N-Triples (full IRIs, ASCII, `\"` the only
// escape), i.e. exactly as `serdi -o ntriples` would write them back.
// A summary goes to stderr.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../xoshiro.h"

namespace {

struct Rng {
	Xoshiro256 x;
	explicit Rng(uint64_t seed) : x(seed) {}
	uint64_t next() { return x.next(); }
	double unit() { return (double)(next() >> 11) * 0x1.0p-53; } // [0, 1)
	uint64_t below(uint64_t n) { return (uint64_t)(unit() * (double)n); }
	// 1, 2, ... with mean m (geometric on {1, 2, ...}, p = 1/m)
	uint64_t geometric(double m)
	{
		double u = 1.0 - unit(); // (0, 1]
		return 1 + (uint64_t)std::floor(std::log(u) / std::log(1.0 - 1.0 / m));
	}
};

// Zipf over ranks 0..n-1 with exponent s: inverse CDF by binary search.
struct Zipf {
	std::vector<double> cdf;
	Zipf(size_t n, double s)
	{
		cdf.resize(n);
		double sum = 0;
		for (size_t i = 0; i < n; i++)
			cdf[i] = (sum += 1.0 / std::pow((double)(i + 1), s));
		for (auto &c : cdf)
			c /= sum;
	}
	size_t draw(Rng &r) const
	{
		double u = r.unit();
		size_t lo = 0, hi = cdf.size() - 1;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (cdf[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		return lo;
	}
	double weight(size_t i) const { return cdf[i] - (i ? cdf[i - 1] : 0.0); }
};

enum Kind { TYPE, STR, LANG, INT, DEC, DATE, DATETIME, ENT, REF };
const char *kind_name[] = {"type", "string", "lang-string", "integer", "decimal",
			   "date", "dateTime", "entity-IRI", "subject-IRI"};

const char *RES = "http://example.org/resource/";
const char *ONT = "http://example.org/ontology/";
const char *XSD = "http://www.w3.org/2001/XMLSchema#";
const char *RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

uint64_t parse_count(const char *s)
{
	char *end = nullptr;
	double v = std::strtod(s, &end);
	if (end && (*end == 'M' || *end == 'm'))
		v *= 1e6;
	else if (end && (*end == 'K' || *end == 'k'))
		v *= 1e3;
	else if (end && (*end == 'G' || *end == 'g'))
		v *= 1e9;
	return (uint64_t)v;
}

void usage()
{
	std::fprintf(stderr,
		     "gen_triples [--triples=10M] [--seed=S] [--out=FILE] [--predicates=50]\n"
		     "            [--classes=1000] [--entities=N (default triples/50)]\n"
		     "Writes N-Triples (to stdout without --out); deterministic for a seed.\n");
}

} // namespace

int main(int argc, char **argv)
{
	uint64_t n = 10000000, seed = 1, classes = 1000, entities = 0;
	unsigned npred = 50;
	const char *out = nullptr;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!std::strncmp(a, "--triples=", 10))
			n = parse_count(a + 10);
		else if (!std::strncmp(a, "--seed=", 7))
			seed = std::strtoull(a + 7, nullptr, 0);
		else if (!std::strncmp(a, "--out=", 6))
			out = a + 6;
		else if (!std::strncmp(a, "--predicates=", 13))
			npred = (unsigned)std::atoi(a + 13);
		else if (!std::strncmp(a, "--classes=", 10))
			classes = parse_count(a + 10);
		else if (!std::strncmp(a, "--entities=", 11))
			entities = parse_count(a + 11);
		else {
			usage();
			return std::strcmp(a, "--help") == 0 ? 0 : 2;
		}
	}
	if (npred < 2 || classes < 1 || n < 1) {
		usage();
		return 2;
	}
	if (!entities)
		entities = n / 50 > 1000 ? n / 50 : 1000;

	Rng rng(seed);
	Zipf pz(npred, 1.0), cz(classes, 1.0), ez(entities, 1.0), wz(4096, 1.0);

	// Ranges: rank 0 is rdf:type; the others greedily so literals get ~half
	// of all triples, kinds cycling within literals and within IRIs.
	std::vector<Kind> kind(npred);
	kind[0] = TYPE;
	const Kind lit_cycle[] = {STR, LANG, INT, DATE, STR, DEC, DATETIME, LANG};
	const Kind iri_cycle[] = {ENT, REF};
	double lit_mass = 0;
	unsigned nlit = 0, niri = 0;
	for (unsigned r = 1; r < npred; r++) {
		if (lit_mass + pz.weight(r) / 2 <= 0.5) {
			kind[r] = lit_cycle[nlit++ % 8];
			lit_mass += pz.weight(r);
		} else {
			kind[r] = iri_cycle[niri++ % 2];
		}
	}
	std::vector<std::string> pred(npred);
	for (unsigned r = 0; r < npred; r++)
		pred[r] = r == 0 ? std::string("<") + RDF_TYPE + ">"
				 : std::string("<") + ONT + "p" + std::to_string(r) + "_" +
					   kind_name[kind[r]] + ">";

	// Vocabulary: 4096 pronounceable pseudo-words (2-4 syllables).
	std::vector<std::string> vocab(4096);
	{
		const char *cons = "bcdfghklmnprstvz", *vow = "aeiou";
		for (auto &w : vocab) {
			int syl = 2 + (int)rng.below(3);
			for (int k = 0; k < syl; k++) {
				w += cons[rng.below(16)];
				w += vow[rng.below(5)];
			}
		}
	}
	const char *langs[] = {"en", "de", "fr", "es", "it", "nl", "pt", "en-GB"};

	FILE *f = out ? std::fopen(out, "w") : stdout;
	if (!f) {
		std::perror(out);
		return 1;
	}
	static char obuf[1 << 20];
	std::setvbuf(f, obuf, _IOFBF, sizeof obuf);

	uint64_t est_subjects = n / 5 + 1;
	uint64_t written = 0, subjects = 0, literals = 0, bytes = 0, retries = 0;
	std::vector<uint64_t> per_kind(9);
	std::string obj, line;
	std::vector<std::string> seen; // this subject's (predicate, object) lines
	while (written < n) {
		uint64_t cnt = rng.geometric(5.0);
		if (cnt > 200)
			cnt = 200;
		if (cnt > n - written)
			cnt = n - written;
		std::string subj = std::string("<") + RES + "s" + std::to_string(subjects) + ">";
		seen.clear();
		for (uint64_t t = 0; t < cnt;) {
			size_t p = pz.draw(rng);
			obj.clear();
			char num[160];
			switch (kind[p]) {
			case TYPE:
				obj = std::string("<") + ONT + "Class" + std::to_string(cz.draw(rng)) + ">";
				break;
			case STR:
			case LANG: {
				uint64_t words = rng.unit() < 0.02 ? 20 + rng.below(100) : rng.geometric(3.0);
				obj = "\"";
				for (uint64_t w = 0; w < words; w++) {
					if (w)
						obj += ' ';
					if (rng.unit() < 0.005) {
						obj += "\\\"";
						obj += vocab[wz.draw(rng)];
						obj += "\\\"";
					} else {
						obj += vocab[wz.draw(rng)];
					}
				}
				obj += '"';
				if (kind[p] == LANG) {
					obj += '@';
					obj += langs[rng.below(8)];
				}
				break;
			}
			case INT:
				std::snprintf(num, sizeof num, "\"%" PRIu64 "\"^^<%sinteger>",
					      (uint64_t)std::exp(rng.unit() * 16.0), XSD);
				obj = num;
				break;
			case DEC:
				std::snprintf(num, sizeof num, "\"%" PRIu64 ".%02" PRIu64 "\"^^<%sdecimal>",
					      rng.below(100000), rng.below(100), XSD);
				obj = num;
				break;
			case DATE:
				std::snprintf(num, sizeof num, "\"%04d-%02d-%02d\"^^<%sdate>",
					      1800 + (int)rng.below(225), 1 + (int)rng.below(12),
					      1 + (int)rng.below(28), XSD);
				obj = num;
				break;
			case DATETIME:
				std::snprintf(num, sizeof num,
					      "\"%04d-%02d-%02dT%02d:%02d:%02dZ\"^^<%sdateTime>",
					      1970 + (int)rng.below(55), 1 + (int)rng.below(12),
					      1 + (int)rng.below(28), (int)rng.below(24),
					      (int)rng.below(60), (int)rng.below(60), XSD);
				obj = num;
				break;
			case ENT:
				obj = std::string("<") + RES + "e" + std::to_string(ez.draw(rng)) + ">";
				break;
			case REF:
				obj = std::string("<") + RES + "s" + std::to_string(rng.below(est_subjects)) +
				      ">";
				break;
			}
			line = pred[p] + " " + obj;
			bool dup = false;
			for (const auto &s : seen)
				if (s == line) {
					dup = true;
					break;
				}
			if (dup) {
				retries++;
				continue;
			}
			seen.push_back(line);
			std::fputs(subj.c_str(), f);
			std::fputc(' ', f);
			std::fputs(line.c_str(), f);
			std::fputs(" .\n", f);
			bytes += subj.size() + line.size() + 4;
			per_kind[kind[p]]++;
			if (obj[0] == '"')
				literals++;
			t++;
			written++;
		}
		subjects++;
	}
	if (std::fflush(f) != 0 || (out && std::fclose(f) != 0)) {
		std::perror(out ? out : "stdout");
		return 1;
	}
	std::fprintf(stderr,
		     "gen_triples: %" PRIu64 " triples, %" PRIu64 " subjects (%.2f per subject), %u "
		     "predicates, %" PRIu64 " bytes (%.1f per line), literal objects %.1f%%, seed %" PRIu64
		     ", %" PRIu64 " duplicate draws redone\n",
		     written, subjects, (double)written / (double)subjects, npred, bytes,
		     (double)bytes / (double)written, 100.0 * (double)literals / (double)written, seed,
		     retries);
	for (int k = 0; k < 9; k++)
		std::fprintf(stderr, "  %-12s %5.1f%%\n", kind_name[k],
			     100.0 * (double)per_kind[k] / (double)written);
	return 0;
}
