/* test_record.c — WAL record encoding, CRC and the validity rule. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "log/record.h"
#include "test_support.h"

static struct wal_rec sample(void)
{
	struct wal_rec r;
	memset(&r, 0, sizeof r);
	r.opcode = WAL_OP_INSERT;
	r.flags = WAL_FLAG_TXN;
	r.shard = 0xbeef;
	r.seq = 0x01020304;
	r.wall_ns = 0x1122334455667788ull;
	r.lsn = 0x0102030405060708ull;
	for (int i = 0; i < 4; i++) {
		r.key.w[i] = 0xa0a1a2a3a4a5a6a7ull + (uint64_t)i;
		r.val.w[i] = 0xb0b1b2b3b4b5b6b7ull * (uint64_t)(i + 1);
	}
	r.txn = 42;
	return r;
}

START_TEST(test_crc_standard)
{
	ck_assert_uint_eq(rec_crc32c("123456789", 9), 0xE3069283u);
	uint32_t a = rec_crc32c("12345", 5);
	ck_assert_uint_eq(rec_crc32c_extend(a, "6789", 4), 0xE3069283u);
	ck_assert_uint_eq(rec_crc32c_extend(0, "123456789", 9), 0xE3069283u);
	ck_assert_ptr_nonnull(strstr(rec_crc_impl(), "ISA-L"));
}
END_TEST

START_TEST(test_round_trip)
{
	struct wal_rec r = sample(), d;
	uint8_t buf[WAL_REC_SIZE];
	rec_encode(buf, &r);
	ck_assert_uint_eq(buf[0], (1u << 6) | WAL_OP_INSERT);
	ck_assert_uint_eq(buf[1], WAL_FLAG_TXN);
	ck_assert_uint_eq(buf[2], 0xef); /* little-endian shard */
	ck_assert_uint_eq(buf[16], 0x08); /* little-endian LSN */
	ck_assert_uint_eq(buf[24], 0xa7); /* key w[0] low byte first */
	for (int i = 96; i < 124; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(rec_decode(buf, &d), 0);
	ck_assert_uint_eq(d.version, WAL_FORMAT_VERSION);
	ck_assert_uint_eq(d.opcode, r.opcode);
	ck_assert_uint_eq(d.flags, r.flags);
	ck_assert_uint_eq(d.shard, r.shard);
	ck_assert_uint_eq(d.seq, r.seq);
	ck_assert_uint_eq(d.wall_ns, r.wall_ns);
	ck_assert_uint_eq(d.lsn, r.lsn);
	ck_assert_uint_eq(d.txn, r.txn);
	ck_assert_mem_eq(&d.key, &r.key, sizeof r.key);
	ck_assert_mem_eq(&d.val, &r.val, sizeof r.val);
	ck_assert_int_eq(rec_decode_next(buf, r.lsn, &d), 0);
	ck_assert_int_eq(rec_decode_next(buf, r.lsn + 1, &d), CIDSTORE_ECORRUPT);
	/* every opcode round-trips */
	for (unsigned op = 1; op <= WAL_OP_MAX; op++) {
		r.opcode = (uint8_t)op;
		rec_encode(buf, &r);
		ck_assert_int_eq(rec_decode(buf, &d), 0);
		ck_assert_uint_eq(d.opcode, op);
	}
}
END_TEST

START_TEST(test_every_bit_flip_detected)
{
	struct wal_rec r = sample(), d;
	uint8_t buf[WAL_REC_SIZE], bad[WAL_REC_SIZE];
	rec_encode(buf, &r);
	for (unsigned i = 0; i < WAL_REC_SIZE; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			memcpy(bad, buf, sizeof bad);
			bad[i] ^= (uint8_t)(1u << bit);
			int rc = rec_decode(bad, &d);
			/* flipping a version bit may claim a newer version:
			 * refused too, never accepted */
			if (i == 0 && bit >= 6)
				ck_assert(rc == CIDSTORE_ECORRUPT ||
					  rc == CIDSTORE_EVERSION);
			else
				ck_assert_msg(rc == CIDSTORE_ECORRUPT,
					      "flip byte %u bit %u -> %d", i, bit, rc);
		}
		/* a whole garbage byte too */
		memcpy(bad, buf, sizeof bad);
		bad[i] ^= 0x5a;
		ck_assert_int_ne(rec_decode(bad, &d), 0);
	}
}
END_TEST

START_TEST(test_zero_and_reserved)
{
	uint8_t buf[WAL_REC_SIZE] = {0};
	struct wal_rec d, r = sample();
	ck_assert_int_eq(rec_decode(buf, &d), REC_ZERO);
	/* one non-zero byte in an otherwise zero record is not "end of log" */
	buf[77] = 1;
	ck_assert_int_eq(rec_decode(buf, &d), CIDSTORE_ECORRUPT);
	/* reserved opcodes with a valid CRC are refused */
	for (unsigned op = 0; op < 64; op++) {
		if (op >= 1 && op <= WAL_OP_MAX)
			continue;
		r.opcode = (uint8_t)op;
		rec_encode(buf, &r);
		ck_assert_int_eq(rec_decode(buf, &d), CIDSTORE_ECORRUPT);
	}
	/* non-zero reserved bytes with a matching CRC are refused */
	r = sample();
	rec_encode(buf, &r);
	buf[100] = 7;
	uint32_t c = rec_crc32c(buf, 124);
	memcpy(buf + 124, &c, 4); /* host is little-endian (x86-64) */
	ck_assert_int_eq(rec_decode(buf, &d), CIDSTORE_ECORRUPT);
	ck_assert_int_eq(rec_decode(NULL, &d), CIDSTORE_EINVAL);
}
END_TEST

START_TEST(test_newer_version)
{
	struct wal_rec r = sample(), d;
	uint8_t buf[WAL_REC_SIZE];
	r.version = 2;
	rec_encode(buf, &r);
	ck_assert_int_eq(rec_decode(buf, &d), CIDSTORE_EVERSION);
	r.version = 3;
	rec_encode(buf, &r);
	ck_assert_int_eq(rec_decode(buf, &d), CIDSTORE_EVERSION);
	/* version bits 0 with a valid CRC: corrupt */
	r.version = 1;
	rec_encode(buf, &r);
	buf[0] &= 0x3f;
	uint32_t c = rec_crc32c(buf, 124);
	memcpy(buf + 124, &c, 4);
	ck_assert_int_eq(rec_decode(buf, &d), CIDSTORE_ECORRUPT);
}
END_TEST

START_TEST(test_segment_header_and_names)
{
	struct wal_rec h, d;
	uint8_t buf[WAL_REC_SIZE];
	uint64_t first, size;
	rec_seg_header(&h, 0x1234, 1u << 20, 99);
	rec_encode(buf, &h);
	ck_assert_mem_eq(buf + 24, WAL_SEG_MAGIC, 8);
	ck_assert_uint_eq(buf[32], WAL_FORMAT_VERSION);
	ck_assert_int_eq(rec_decode(buf, &d), 0);
	ck_assert_int_eq(rec_seg_header_check(&d, &first, &size), 0);
	ck_assert_uint_eq(first, 0x1234);
	ck_assert_uint_eq(size, 1u << 20);
	d.key.w[1] = 2;
	ck_assert_int_eq(rec_seg_header_check(&d, NULL, NULL), CIDSTORE_EVERSION);
	d.key.w[1] = 1;
	d.key.w[0] ^= 1;
	ck_assert_int_eq(rec_seg_header_check(&d, NULL, NULL), CIDSTORE_ECORRUPT);
	d.key.w[0] ^= 1;
	d.opcode = WAL_OP_INSERT;
	ck_assert_int_eq(rec_seg_header_check(&d, NULL, NULL), CIDSTORE_ECORRUPT);

	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 0xabcdef0123ull);
	ck_assert_str_eq(name, "wal-000000abcdef0123.log");
	ck_assert_int_eq(rec_seg_parse(name, &first), 0);
	ck_assert_uint_eq(first, 0xabcdef0123ull);
	ck_assert_int_eq(rec_seg_parse("wal-000000ABCDEF0123.log", &first), CIDSTORE_EINVAL);
	ck_assert_int_eq(rec_seg_parse("wal-00.log", &first), CIDSTORE_EINVAL);
	ck_assert_int_eq(rec_seg_parse("wal-000000abcdef0123.tmp", &first), CIDSTORE_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_crc_standard);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_every_bit_flip_detected);
	tcase_add_test(tc, test_zero_and_reserved);
	tcase_add_test(tc, test_newer_version);
	tcase_add_test(tc, test_segment_header_and_names);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
