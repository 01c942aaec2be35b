/*
 * cid_internal.h — layer 1 (cid) helpers that are not part of the public
 * contract in include/cidstore.h.
 */
#ifndef CIDSTORE_CID_INTERNAL_H
#define CIDSTORE_CID_INTERNAL_H

#include "cidstore.h"

/* Names the SHA-256 block routine libcrypto dispatches to on this CPU, as
 * OpenSSL itself decides it (CPUID plus any OPENSSL_ia32cap override in the
 * environment): "SHA-NI", "AVX2", "AVX", "SSSE3", "x86_64" (plain assembly),
 * "ARMv8-CE" or "generic".  Returns a static string; thread-safe, never
 * waits.  Reported through cidstore_build_info(). */
const char *cid_sha256_impl(void);

#endif
