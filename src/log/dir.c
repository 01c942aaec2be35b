/*
 * dir.c — the store directory: create, lock, fsync, list.
 *
 * Exclusion.  One store per directory at a time:
 *   - across processes by flock(LOCK_EX|LOCK_NB) on <dir>/LOCK.  The lock
 *     belongs to the open file description, so it dies with the process
 *     (kill -9 included) and never needs cleaning up; a stale LOCK file is
 *     harmless.  The descriptor is O_CLOEXEC, so an exec'd child does not
 *     keep it; a fork()ed child shares the description (and the lock) until
 *     it closes it or exits.
 *   - inside one process by a registry of the (st_dev, st_ino) of every
 *     directory this process has open, checked and updated under
 *     sdir_registry_mu.  flock on a second descriptor of the same file in
 *     the same process does conflict on Linux, but the registry makes the
 *     answer independent of the lock model (and of NFS's flock emulation).
 *
 * Durability of names.  A new directory is made durable by fsync of its
 * parent; a new, renamed or removed file by fsync of the directory
 * (sdir_sync).  Callers fsync the file's data first.
 */
#include "log/dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/io.h"
#include "log/record.h"

struct sdir {
	char *path;      /* owned; immutable after open */
	int dir_fd;      /* O_RDONLY|O_DIRECTORY; immutable */
	int lock_fd;     /* holds the flock; immutable */
	dev_t dev;       /* registry key; immutable */
	ino_t ino;
	struct sdir *next; /* registry link; guarded by sdir_registry_mu */
};

static pthread_mutex_t sdir_registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sdir *sdir_registry; /* guarded by sdir_registry_mu */

int sdir_join(char *buf, size_t cap, const char *dir, const char *name)
{
	if (buf == NULL || dir == NULL || name == NULL)
		return CIDSTORE_EINVAL;
	int n = snprintf(buf, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap)
		return CIDSTORE_EINVAL;
	return 0;
}

int sdir_sync_fd(int fd, const struct log_io *io)
{
	io = io_or_posix(io);
	return io->fsync_dir(io->ctx, fd) == 0 ? 0 : CIDSTORE_EIO;
}

int sdir_sync_path(const char *path, const struct log_io *io)
{
	if (path == NULL)
		return CIDSTORE_EINVAL;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return io_errcode(errno);
	int rc = sdir_sync_fd(fd, io);
	close(fd);
	return rc;
}

int sdir_sync(const sdir_t *d, const struct log_io *io)
{
	if (d == NULL)
		return CIDSTORE_EINVAL;
	return sdir_sync_fd(d->dir_fd, io);
}

const char *sdir_path(const sdir_t *d)
{
	return d != NULL ? d->path : NULL;
}

int sdir_fd(const sdir_t *d)
{
	return d != NULL ? d->dir_fd : -1;
}

/* fsync of the directory holding path (path has no trailing slash). */
static int sdir_sync_parent(const char *path)
{
	char parent[PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof(parent))
		return CIDSTORE_EINVAL;
	memcpy(parent, path, n + 1);
	char *slash = strrchr(parent, '/');
	if (slash == NULL)
		strcpy(parent, ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	return sdir_sync_path(parent, NULL);
}

int sdir_open(const char *path, unsigned flags, sdir_t **out)
{
	if (path == NULL || out == NULL || path[0] == '\0')
		return CIDSTORE_EINVAL;
	size_t plen = strlen(path);
	while (plen > 1 && path[plen - 1] == '/')
		plen--; /* "dir/" and "dir" are the same directory */
	if (plen + 1 + sizeof(SDIR_LOCK_NAME) + SDIR_NAME_MAX >= PATH_MAX)
		return CIDSTORE_EINVAL;

	sdir_t *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return CIDSTORE_ENOMEM;
	d->dir_fd = -1;
	d->lock_fd = -1;
	d->path = strndup(path, plen);
	if (d->path == NULL) {
		free(d);
		return CIDSTORE_ENOMEM;
	}
	int rc;

	struct stat st;
	if (stat(d->path, &st) != 0) {
		if (errno != ENOENT || !(flags & SDIR_CREATE) || (flags & SDIR_READONLY)) {
			rc = io_errcode(errno);
			goto fail;
		}
		if (mkdir(d->path, 0755) != 0 && errno != EEXIST) {
			rc = io_errcode(errno); /* ENOENT: the parent is missing */
			goto fail;
		}
		if ((rc = sdir_sync_parent(d->path)) != 0)
			goto fail;
	}
	d->dir_fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dir_fd < 0) {
		rc = io_errcode(errno);
		goto fail;
	}
	if (fstat(d->dir_fd, &st) != 0) {
		rc = io_errcode(errno);
		goto fail;
	}
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	if (flags & SDIR_READONLY) {
		/* No lock, no registry: a reader may sit beside the writer.  It
		 * still must be able to list the directory (search permission
		 * alone would let it open known names only). */
		if (faccessat(d->dir_fd, ".", R_OK | X_OK, AT_EACCESS) != 0) {
			rc = io_errcode(errno);
			goto fail;
		}
		*out = d;
		return 0;
	}

	pthread_mutex_lock(&sdir_registry_mu);
	for (struct sdir *o = sdir_registry; o != NULL; o = o->next) {
		if (o->dev == d->dev && o->ino == d->ino) {
			pthread_mutex_unlock(&sdir_registry_mu);
			rc = CIDSTORE_EBUSY;
			goto fail;
		}
	}
	/* Still under the mutex, so two threads of this process cannot both
	 * pass the registry check and race on flock. */
	bool created = false;
	d->lock_fd = openat(d->dir_fd, SDIR_LOCK_NAME, O_RDWR | O_CLOEXEC);
	if (d->lock_fd < 0 && errno == ENOENT) {
		d->lock_fd = openat(d->dir_fd, SDIR_LOCK_NAME,
				    O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		created = true;
	}
	if (d->lock_fd < 0) {
		int e = errno;
		pthread_mutex_unlock(&sdir_registry_mu);
		rc = io_errcode(e);
		goto fail;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		pthread_mutex_unlock(&sdir_registry_mu);
		rc = (e == EWOULDBLOCK || e == EAGAIN) ? CIDSTORE_EBUSY : io_errcode(e);
		goto fail;
	}
	d->next = sdir_registry;
	sdir_registry = d;
	pthread_mutex_unlock(&sdir_registry_mu);

	if (created && (rc = sdir_sync(d, NULL)) != 0) {
		sdir_close(d);
		return rc;
	}
	*out = d;
	return 0;

fail:
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->dir_fd >= 0)
		close(d->dir_fd);
	free(d->path);
	free(d);
	return rc;
}

void sdir_close(sdir_t *d)
{
	if (d == NULL)
		return;
	if (d->lock_fd < 0) { /* SDIR_READONLY: never registered or locked */
		close(d->dir_fd);
		free(d->path);
		free(d);
		return;
	}
	pthread_mutex_lock(&sdir_registry_mu);
	for (struct sdir **pp = &sdir_registry; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	/* Unlock the file before leaving the registry mutex: a thread that
	 * passes the registry check next must find the flock free. */
	flock(d->lock_fd, LOCK_UN);
	close(d->lock_fd);
	pthread_mutex_unlock(&sdir_registry_mu);
	close(d->dir_fd);
	free(d->path);
	free(d);
}

int sdir_parse_name(const char *name, const char *prefix, const char *suffix,
		    uint64_t *lsn)
{
	if (name == NULL || prefix == NULL || suffix == NULL)
		return CIDSTORE_EINVAL;
	size_t pl = strlen(prefix), sl = strlen(suffix);
	if (strlen(name) != pl + 16 + sl || strncmp(name, prefix, pl) != 0 ||
	    strcmp(name + pl + 16, suffix) != 0)
		return CIDSTORE_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < 16; i++) {
		char c = name[pl + i];
		unsigned x;
		if (c >= '0' && c <= '9')
			x = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = (unsigned)(c - 'a' + 10);
		else
			return CIDSTORE_EINVAL;
		v = (v << 4) | x;
	}
	if (lsn != NULL)
		*lsn = v;
	return 0;
}

static int sdir_entry_cmp(const void *a, const void *b)
{
	const sdir_entry_t *x = a, *y = b;
	return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

enum sdir_kind { SDIR_SEGMENTS, SDIR_CHECKPOINTS, SDIR_TMP };

static int sdir_list(int dirfd, enum sdir_kind kind, sdir_list_t *out)
{
	if (dirfd < 0 || out == NULL)
		return CIDSTORE_EINVAL;
	out->v = NULL;
	out->n = 0;
	/* A fresh descriptor of the directory: fdopendir takes ownership and
	 * reads from its own offset, so dirfd is neither closed nor moved. */
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return io_errcode(errno);
	DIR *dh = fdopendir(fd);
	if (dh == NULL) {
		close(fd);
		return CIDSTORE_EIO;
	}
	size_t cap = 0;
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dh);
		if (de == NULL) {
			if (errno != 0)
				rc = CIDSTORE_EIO;
			break;
		}
		uint64_t lsn;
		int ok = kind == SDIR_SEGMENTS ? rec_seg_parse(de->d_name, &lsn)
			: kind == SDIR_CHECKPOINTS
			? sdir_parse_name(de->d_name, "ckpt-", ".ckpt", &lsn)
			: sdir_parse_name(de->d_name, "ckpt-", ".ckpt.tmp", &lsn);
		size_t nlen = strlen(de->d_name);
		if (ok != 0 || nlen >= SDIR_NAME_MAX)
			continue;
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			sdir_entry_t *nv = realloc(out->v, ncap * sizeof(*nv));
			if (nv == NULL) {
				rc = CIDSTORE_ENOMEM;
				break;
			}
			out->v = nv;
			cap = ncap;
		}
		sdir_entry_t *e = &out->v[out->n++];
		e->lsn = lsn;
		memcpy(e->name, de->d_name, nlen + 1);
	}
	closedir(dh);
	if (rc != 0) {
		sdir_list_free(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(out->v[0]), sdir_entry_cmp);
	return 0;
}

int sdir_list_segments(int dirfd, sdir_list_t *out)
{
	return sdir_list(dirfd, SDIR_SEGMENTS, out);
}

int sdir_list_checkpoints(int dirfd, sdir_list_t *out)
{
	return sdir_list(dirfd, SDIR_CHECKPOINTS, out);
}

int sdir_list_tmp(int dirfd, sdir_list_t *out)
{
	return sdir_list(dirfd, SDIR_TMP, out);
}

void sdir_list_free(sdir_list_t *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
