/*
 * build_info.c — cidstore_build_info: what this build is (meson options,
 * compiler, Concurrency Kit version: compile-time defines from meson.build)
 * and which SHA-256 / CRC32C kernels it runs on this CPU (asked of the code
 * that uses them, so the tool never guesses from /proc/cpuinfo).
 */
#include <string.h>
#include <unistd.h>

#include "cidstore.h"
#include "cid/cid_internal.h"
#include "log/record.h"

#ifndef CIDSTORE_CK_VERSION
#define CIDSTORE_CK_VERSION "unknown"
#endif

CIDSTORE_API int cidstore_build_info(cidstore_build_info_t *out)
{
	if (!out)
		return CIDSTORE_EINVAL;
	memset(out, 0, sizeof(*out));
	out->version = CIDSTORE_VERSION_STRING;
	out->build_type = CIDSTORE_BUILD_TYPE;
	out->compiler = CIDSTORE_COMPILER;
	out->sanitizer = CIDSTORE_SANITIZE;
	out->allocator = CIDSTORE_ALLOCATOR;
	out->ck_version = CIDSTORE_CK_VERSION;
	out->sha256 = cid_sha256_impl();
	out->crc32c = rec_crc_impl();
#ifdef CIDSTORE_DEBUG_CHECKS
	out->debug_checks = true;
#endif
#ifdef CIDSTORE_SHAKE
	out->shake = true;
#endif
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	out->cores = n > 0 ? (unsigned)n : 1;
	return 0;
}
