/*
 * record.h — the WAL record and segment format (layer 3, no state, no I/O).
 *
 * This header is the contract between the WAL writer (wal.c) and every
 * reader of log files (recovery, `cidstore wal dump`, `verify`).  Change it
 * only together with WAL_FORMAT_VERSION.
 *
 * RECORD (fixed 128 bytes, every integer little-endian)
 *
 *   byte   size  field
 *   0      1     (format_version << 6) | opcode.  format_version: 2 bits,
 *                this build writes 1 (0 is never valid).  opcode: 6 bits,
 *                see enum wal_opcode; 0 and 9..63 are reserved.
 *   1      1     flags: bit 0 WAL_FLAG_TXN = record is part of a
 *                transaction (txn id != 0); bits 1..7 zero.
 *   2      2     shard id (u16) of the hybrid time
 *   4      4     hybrid-time sequence (u32): orders records with the same ns
 *   8      8     hybrid-time wall clock, ns since the epoch (u64,
 *                CLOCK_REALTIME made monotonic per log: never goes back)
 *   16     8     LSN (u64)
 *   24     32    key: w[0], w[1], w[2], w[3], each a u64 little-endian
 *   56     32    value: same layout (zero for DELETE_KEY and TXN_*)
 *   88     8     txn id (u64, 0 if none)
 *   96     28    reserved, zero
 *   124    4     CRC32C of bytes 0..123 (u32)
 *
 * CRC: the standard CRC-32C (Castagnoli, reflected polynomial 0x82F63B78,
 * initial value 0xFFFFFFFF, final xor 0xFFFFFFFF; check value of
 * "123456789" = 0xE3069283), computed by ISA-L crc32_iscsi() as
 * crc32_iscsi(buf, len, 0xFFFFFFFF) ^ 0xFFFFFFFF.  The seed is therefore
 * WAL_CRC_SEED = 0xFFFFFFFF with no per-file salt.
 *
 * SEGMENT FILE
 *
 *   Name: "wal-%016" PRIx64 ".log" (first LSN of the segment, 16 lowercase
 *   hex digits) in the store directory.  Size: segment_bytes, preallocated
 *   (fallocate) and zero-filled before the first record is written, so that
 *   appends overwrite zeroed blocks and fdatasync need not update the size.
 *
 *   Record 0 is a SEGMENT_HEADER:
 *     LSN field      = first LSN of the segment (the one in the name); the
 *                      header itself does not consume an LSN;
 *     key.w[0]       = magic "CIDSWAL1": the 8 ASCII bytes at offsets 24..31
 *                      (so key.w[0] == WAL_SEG_MAGIC_U64);
 *     key.w[1]       = format version (u32 in bytes 32..35, bytes 36..39 zero);
 *     key.w[2]       = segment size in bytes (u64, bytes 40..47);
 *     key.w[3], value, txn = 0; shard/seq/wall = time the segment was made.
 *   Records 1.. carry consecutive LSNs: record i has LSN first_lsn + i - 1.
 *   A record of 128 zero bytes marks the end of the log (preallocated tail).
 *
 * VALIDITY RULE (what a reader accepts)
 *
 *   Reading a segment in order, with expect = first LSN of the segment:
 *     - 128 zero bytes                    -> end of the log (REC_ZERO);
 *     - version bits > WAL_FORMAT_VERSION  -> CIDSTORE_EVERSION: the file was
 *                                            written by a newer cidstore and
 *                                            is refused, never misread;
 *     - version bits == 0, bad CRC, reserved opcode, non-zero reserved
 *       bytes                             -> CIDSTORE_ECORRUPT;
 *     - LSN != expect                     -> invalid (stale or torn);
 *     - otherwise the record is valid; expect = LSN + 1.
 *   A valid log is a valid header followed by valid records up to the first
 *   zero record or the end of the file.  The first invalid record ends the
 *   valid prefix: at the tail of the newest segment this is a torn write
 *   and recovery cuts there; an invalid record followed by valid ones, or in
 *   an older segment, is corruption (CIDSTORE_ECORRUPT).  The next segment
 *   must start at the LSN after the last record of the previous one.
 *
 * ORDER OF WRITES AND SYNCS (wal.c)
 *   1. new segment: create, fallocate, zero-fill, write the header,
 *      fdatasync the file, fsync the directory;
 *   2. records are appended with pwrite at increasing offsets;
 *   3. fdatasync; only after it returns are the records durable and their
 *      waiters released.  A failed write or fdatasync makes the log failed.
 */
#ifndef CIDSTORE_LOG_RECORD_H
#define CIDSTORE_LOG_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "cidstore.h"

#define WAL_REC_SIZE 128u
#define WAL_FORMAT_VERSION 1u
#define WAL_CRC_SEED 0xFFFFFFFFu
#define WAL_SEG_MAGIC "CIDSWAL1"
/* "CIDSWAL1" read as a little-endian u64 (byte 'C' lowest). */
#define WAL_SEG_MAGIC_U64 0x314C415753444943ull
#define WAL_SEG_NAME_LEN 24u /* "wal-" + 16 hex + ".log" */

enum wal_opcode {
	WAL_OP_INSERT = 1,
	WAL_OP_DELETE_VALUE = 2,
	WAL_OP_DELETE_KEY = 3,
	WAL_OP_TXN_START = 4,
	WAL_OP_TXN_COMMIT = 5,
	WAL_OP_TXN_ABORT = 6,
	WAL_OP_CHECKPOINT = 7,
	WAL_OP_SEGMENT_HEADER = 8,
	WAL_OP_MAX = 8,
};

#define WAL_FLAG_TXN 0x01u

/* rec_decode result for a record of 128 zero bytes (end of log). */
#define REC_ZERO 1

/* One decoded record.  Plain data, no synchronization. */
struct wal_rec {
	uint8_t version; /* decode: the record's version; encode: 0 means WAL_FORMAT_VERSION */
	uint8_t opcode;  /* enum wal_opcode */
	uint8_t flags;   /* WAL_FLAG_* */
	uint16_t shard;  /* hybrid time: shard id */
	uint32_t seq;    /* hybrid time: sequence */
	uint64_t wall_ns;/* hybrid time: ns, CLOCK_REALTIME, monotonic per log */
	uint64_t lsn;
	cid_t key;
	cid_t val;
	uint64_t txn;
};

/* Writes r into out in the format above, CRC included.  r->version 0 means
 * WAL_FORMAT_VERSION (tests may set 2 or 3 to fake a newer writer).  Pure. */
void rec_encode(uint8_t out[WAL_REC_SIZE], const struct wal_rec *r);

/* Decodes in.  Returns 0 (valid by itself; the caller checks the LSN
 * sequence), REC_ZERO (all 128 bytes zero; *r zeroed), CIDSTORE_EVERSION
 * (version bits above WAL_FORMAT_VERSION; checked before the CRC, whose
 * layout a newer format may change), CIDSTORE_ECORRUPT (version 0, CRC
 * mismatch, reserved opcode, non-zero reserved bytes), CIDSTORE_EINVAL
 * (NULL).  Pure. */
int rec_decode(const uint8_t in[WAL_REC_SIZE], struct wal_rec *r);

/* rec_decode plus the LSN rule: returns CIDSTORE_ECORRUPT when the record
 * decodes but its LSN != expect_lsn. */
int rec_decode_next(const uint8_t in[WAL_REC_SIZE], uint64_t expect_lsn,
		    struct wal_rec *r);

/* Standard CRC-32C of n bytes (see above).  Pure. */
uint32_t rec_crc32c(const void *p, size_t n);

/* Continues a CRC-32C: rec_crc32c_extend(rec_crc32c(a), b) equals the CRC
 * of a followed by b; rec_crc32c_extend(0, x) == rec_crc32c(x). */
uint32_t rec_crc32c_extend(uint32_t crc, const void *p, size_t n);

/* Static string naming the CRC implementation, e.g.
 * "ISA-L crc32_iscsi (SSE4.2 crc32: yes, PCLMULQDQ: yes)". */
const char *rec_crc_impl(void);

/* Fills r as the SEGMENT_HEADER of a segment starting at first_lsn. */
void rec_seg_header(struct wal_rec *r, uint64_t first_lsn, uint64_t seg_bytes,
		    uint64_t wall_ns);

/* Checks a decoded record is a segment header.  Returns 0 and sets
 * *first_lsn and *seg_bytes (either may be NULL), CIDSTORE_EVERSION (header
 * version field above ours), CIDSTORE_ECORRUPT (wrong opcode or magic). */
int rec_seg_header_check(const struct wal_rec *r, uint64_t *first_lsn,
			 uint64_t *seg_bytes);

/* Writes "wal-<16 hex>.log" and a NUL into out. */
void rec_seg_name(char out[WAL_SEG_NAME_LEN + 1], uint64_t first_lsn);

/* Parses a segment file name; returns 0 and sets *first_lsn, or
 * CIDSTORE_EINVAL when name is not exactly of that form. */
int rec_seg_parse(const char *name, uint64_t *first_lsn);

#endif
