/*
 * errors.c — cidstore_strerror and cidstore_version: static strings, no
 * state (a leaf: every layer of the store may call it).
 */
#include "cidstore.h"

CIDSTORE_API const char *cidstore_version(void)
{
	return CIDSTORE_VERSION_STRING;
}

CIDSTORE_API const char *cidstore_strerror(int err)
{
	switch (err) {
	case CIDSTORE_OK:
		return "success";
	case CIDSTORE_EINVAL:
		return "invalid argument (NULL pointer, bad size, malformed hex or bad option)";
	case CIDSTORE_ENOMEM:
		return "out of memory; the store is unchanged";
	case CIDSTORE_EIO:
		return "I/O error; the store is now read-only";
	case CIDSTORE_ECORRUPT:
		return "a store file is corrupt (checksum or structure check failed)";
	case CIDSTORE_EVERSION:
		return "a store file was written by a newer format version";
	case CIDSTORE_EBUSY:
		return "the store directory is already open (in this or another process)";
	case CIDSTORE_ENOTSUP:
		return "operation not supported by this build or store configuration";
	case CIDSTORE_ERDONLY:
		return "the store is read-only (opened read_only, or failed earlier)";
	case CIDSTORE_ERANGE:
		return "value out of range";
	case CIDSTORE_ENOENT:
		return "the store directory does not exist";
	case CIDSTORE_EACCES:
		return "permission denied on the store directory or a file in it";
	case CIDSTORE_ENOTDIR:
		return "the store path is not a directory";
	case CIDSTORE_ENOSPC:
		return "no space left on the device; the store is now read-only";
	default:
		return "unknown cidstore error code";
	}
}
