/*
 * record.c — encoding, decoding and checksumming of WAL records.
 *
 * The on-disk format, the CRC seed and the validity rule are documented at
 * the top of record.h; this file is the only code that turns a struct
 * wal_rec into bytes or back.  Everything here is pure: no state, no I/O,
 * callable from any thread.
 *
 * Byte order: every multi-byte field is little-endian, written byte by
 * byte through put64/get64 so the code is right on any host (the compiler
 * turns them into plain moves on x86-64).
 */
#include "log/record.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <isa-l/crc.h>

#include "util/le.h"

uint32_t rec_crc32c_extend(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t c = ~crc; /* undo the final xor of the CRC so far */
	while (n > 0) {
		/* crc32_iscsi takes an int length: feed it in bounded chunks */
		int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
		c = crc32_iscsi((unsigned char *)b, chunk, c);
		b += chunk;
		n -= (size_t)chunk;
	}
	return ~c;
}

uint32_t rec_crc32c(const void *p, size_t n)
{
	return rec_crc32c_extend(0, p, n);
}

const char *rec_crc_impl(void)
{
	/* ISA-L picks its kernel at load time from CPUID; report the features
	 * it keys on.  Static strings: no shared state to race on. */
	static const char *const names[2][2] = {
		{"ISA-L crc32_iscsi (SSE4.2 crc32: no, PCLMULQDQ: no)",
		 "ISA-L crc32_iscsi (SSE4.2 crc32: no, PCLMULQDQ: yes)"},
		{"ISA-L crc32_iscsi (SSE4.2 crc32: yes, PCLMULQDQ: no)",
		 "ISA-L crc32_iscsi (SSE4.2 crc32: yes, PCLMULQDQ: yes)"},
	};
	int sse42 = 0, pclmul = 0;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	sse42 = __builtin_cpu_supports("sse4.2") != 0;
	pclmul = __builtin_cpu_supports("pclmul") != 0;
#endif
	return names[sse42][pclmul];
}

void rec_encode(uint8_t out[WAL_REC_SIZE], const struct wal_rec *r)
{
	unsigned version = r->version ? r->version : WAL_FORMAT_VERSION;
	memset(out, 0, WAL_REC_SIZE);
	out[0] = (uint8_t)(((version & 3u) << 6) | (r->opcode & 0x3fu));
	out[1] = r->flags;
	le_put16(out + 2, r->shard);
	le_put32(out + 4, r->seq);
	le_put64(out + 8, r->wall_ns);
	le_put64(out + 16, r->lsn);
	for (int i = 0; i < 4; i++) {
		le_put64(out + 24 + 8 * i, r->key.w[i]);
		le_put64(out + 56 + 8 * i, r->val.w[i]);
	}
	le_put64(out + 88, r->txn);
	/* bytes 96..123 stay zero (reserved) */
	le_put32(out + 124, rec_crc32c(out, 124));
}

static int all_zero(const uint8_t *p, size_t n)
{
	uint64_t acc = 0;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		acc |= v;
	}
	return acc == 0;
}

int rec_decode(const uint8_t in[WAL_REC_SIZE], struct wal_rec *r)
{
	if (!in || !r)
		return CIDSTORE_EINVAL;
	memset(r, 0, sizeof *r);
	if (all_zero(in, WAL_REC_SIZE))
		return REC_ZERO;
	unsigned version = in[0] >> 6;
	unsigned opcode = in[0] & 0x3fu;
	if (version == 0)
		return CIDSTORE_ECORRUPT;
	if (version > WAL_FORMAT_VERSION)
		return CIDSTORE_EVERSION;
	if (le_get32(in + 124) != rec_crc32c(in, 124))
		return CIDSTORE_ECORRUPT;
	if (opcode == 0 || opcode > WAL_OP_MAX)
		return CIDSTORE_ECORRUPT;
	if (!all_zero(in + 96, 24) || le_get32(in + 120) != 0)
		return CIDSTORE_ECORRUPT;
	r->version = (uint8_t)version;
	r->opcode = (uint8_t)opcode;
	r->flags = in[1];
	r->shard = le_get16(in + 2);
	r->seq = le_get32(in + 4);
	r->wall_ns = le_get64(in + 8);
	r->lsn = le_get64(in + 16);
	for (int i = 0; i < 4; i++) {
		r->key.w[i] = le_get64(in + 24 + 8 * i);
		r->val.w[i] = le_get64(in + 56 + 8 * i);
	}
	r->txn = le_get64(in + 88);
	return 0;
}

int rec_decode_next(const uint8_t in[WAL_REC_SIZE], uint64_t expect_lsn,
		    struct wal_rec *r)
{
	int rc = rec_decode(in, r);
	if (rc == 0 && r->lsn != expect_lsn)
		return CIDSTORE_ECORRUPT;
	return rc;
}

void rec_seg_header(struct wal_rec *r, uint64_t first_lsn, uint64_t seg_bytes,
		    uint64_t wall_ns)
{
	memset(r, 0, sizeof *r);
	r->opcode = WAL_OP_SEGMENT_HEADER;
	r->lsn = first_lsn;
	r->wall_ns = wall_ns;
	r->key.w[0] = WAL_SEG_MAGIC_U64;
	r->key.w[1] = WAL_FORMAT_VERSION;
	r->key.w[2] = seg_bytes;
}

int rec_seg_header_check(const struct wal_rec *r, uint64_t *first_lsn,
			 uint64_t *seg_bytes)
{
	if (!r || r->opcode != WAL_OP_SEGMENT_HEADER ||
	    r->key.w[0] != WAL_SEG_MAGIC_U64 || r->key.w[3] != 0 ||
	    (r->key.w[1] >> 32) != 0)
		return CIDSTORE_ECORRUPT;
	if (r->key.w[1] > WAL_FORMAT_VERSION)
		return CIDSTORE_EVERSION;
	if (r->key.w[1] == 0 || r->key.w[2] < 2 * WAL_REC_SIZE ||
	    r->key.w[2] % WAL_REC_SIZE != 0)
		return CIDSTORE_ECORRUPT;
	if (first_lsn)
		*first_lsn = r->lsn;
	if (seg_bytes)
		*seg_bytes = r->key.w[2];
	return 0;
}

void rec_seg_name(char out[WAL_SEG_NAME_LEN + 1], uint64_t first_lsn)
{
	snprintf(out, WAL_SEG_NAME_LEN + 1, "wal-%016" PRIx64 ".log", first_lsn);
}

int rec_seg_parse(const char *name, uint64_t *first_lsn)
{
	if (!name || strlen(name) != WAL_SEG_NAME_LEN ||
	    memcmp(name, "wal-", 4) != 0 || strcmp(name + 20, ".log") != 0)
		return CIDSTORE_EINVAL;
	uint64_t v = 0;
	for (int i = 4; i < 20; i++) {
		char c = name[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return CIDSTORE_EINVAL;
		v = (v << 4) | d;
	}
	if (first_lsn)
		*first_lsn = v;
	return 0;
}
