/* outfile: writing a named output without clobbering it, see outfile.h. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int stdout_fd = 1;

void outfile_set_stdout(int fd)
{
	stdout_fd = fd;
}

static int say(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int say(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -1;
}

/* The folder path names a file in ("." for a bare name). */
static void dir_of(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, cap, ".");
	else if (slash == path)
		snprintf(dir, cap, "/");
	else
		snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

static int dir_writable(const char *path)
{
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof dir);
	return access(dir, W_OK | X_OK) == 0;
}

/* A plain file that may be replaced: regular, no other hard link, in a
 * folder where the temporary file can be made. Anything else that exists
 * is written through. */
static int replaceable(const struct stat *st, const char *path)
{
	return S_ISREG(st->st_mode) && st->st_nlink == 1 && dir_writable(path);
}

/* A file to be created at path: its folder must exist and take new files. */
static int check_new(const char *path, char *err, size_t cap)
{
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof dir);
	struct stat st;
	if (stat(dir, &st) != 0)
		return say(err, cap, "%s: folder %s: %s", path, dir,
		           errno == ENOENT ? "does not exist" : strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return say(err, cap, "%s: %s is not a folder", path, dir);
	if (access(dir, W_OK | X_OK) != 0)
		return say(err, cap, "%s: cannot create a file in %s: %s", path, dir,
		           strerror(errno));
	return 0;
}

static int check_depth(const char *path, char *err, size_t cap, int depth)
{
	if (!path[0])
		return say(err, cap, "an empty file name");
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno != ENOENT)
			return say(err, cap, "%s: %s", path, strerror(errno));
		return check_new(path, err, cap);
	}
	if (S_ISLNK(st.st_mode) && stat(path, &st) != 0) {
		if (errno != ENOENT || depth > 8)
			return say(err, cap, "%s: %s", path, strerror(errno));
		/* a link to a file not there yet: writing through it creates
		 * the target, so the target's folder is what must exist */
		char full[2 * PATH_MAX + 2];
		dir_of(path, full, PATH_MAX);
		size_t d = strlen(full);
		full[d++] = '/';
		ssize_t n = readlink(path, full + d, PATH_MAX);
		if (n < 0 || n >= PATH_MAX)
			return say(err, cap, "%s: %s", path, strerror(n < 0 ? errno : ENAMETOOLONG));
		full[d + (size_t)n] = 0;
		/* an absolute target stands alone; a relative one is read from
		 * the link's folder */
		return check_depth(full[d] == '/' ? full + d : full, err, cap, depth + 1);
	}
	if (S_ISDIR(st.st_mode))
		return say(err, cap, "%s: is a folder", path);
	if (access(path, W_OK) != 0)
		return say(err, cap, "%s: %s", path, strerror(errno));
	return 0;
}

int outfile_check(const char *path, char *err, size_t cap)
{
	if (strcmp(path, "-") == 0)
		return 0;
	return check_depth(path, err, cap, 0);
}

static int open_fd(struct outfile *o, int fd)
{
	if (fd < 0)
		return -1;
	o->f = fdopen(fd, "w");
	if (!o->f) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return 0;
}

int outfile_open(struct outfile *o, const char *path)
{
	o->f = NULL;
	o->path = path;
	o->tmp = NULL;
	if (strcmp(path, "-") == 0)
		return open_fd(o, fcntl(stdout_fd, F_DUPFD_CLOEXEC, 3));
	struct stat st;
	int exists = lstat(path, &st) == 0;
	if (exists && !replaceable(&st, path)) /* through it, in place */
		return open_fd(o, open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
	if (!exists && errno != ENOENT)
		return -1;
	size_t n = strlen(path) + 32;
	if (!(o->tmp = malloc(n)))
		return -1;
	snprintf(o->tmp, n, "%s.tmp.%d", path, (int)getpid());
	unlink(o->tmp); /* one left by a process that had our pid */
	int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd >= 0 && exists)
		fchmod(fd, st.st_mode & 07777); /* the replaced file's permissions */
	if (open_fd(o, fd) == 0)
		return 0;
	int e = errno;
	if (fd >= 0)
		unlink(o->tmp);
	free(o->tmp);
	o->tmp = NULL;
	errno = e;
	return -1;
}

int outfile_close(struct outfile *o)
{
	int rc = 0, e = 0;
	if (fflush(o->f) != 0 || (o->tmp && fsync(fileno(o->f)) != 0)) {
		rc = -1;
		e = errno;
	}
	if (fclose(o->f) != 0 && !rc) {
		rc = -1;
		e = errno;
	}
	o->f = NULL;
	if (o->tmp) {
		if (!rc && rename(o->tmp, o->path) != 0) {
			rc = -1;
			e = errno;
		}
		if (rc)
			unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
	}
	errno = e;
	return rc;
}

void outfile_discard(struct outfile *o)
{
	if (o->f)
		fclose(o->f);
	o->f = NULL;
	if (o->tmp) {
		unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
	}
}

static int scratch_in(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	/* a file system without O_TMPFILE: a named file, unlinked at once */
	char name[PATH_MAX];
	snprintf(name, sizeof name, "%s/.loadgen-XXXXXX", dir);
	fd = mkostemp(name, O_CLOEXEC);
	if (fd >= 0)
		unlink(name);
	return fd;
}

int outfile_scratch(const char *path)
{
	struct stat st;
	char dir[PATH_MAX];
	if (strcmp(path, "-") != 0 && (lstat(path, &st) != 0 || replaceable(&st, path))) {
		dir_of(path, dir, sizeof dir);
		int fd = scratch_in(dir);
		if (fd >= 0)
			return fd;
	}
	const char *t = getenv("TMPDIR");
	return scratch_in(t && *t ? t : "/tmp");
}
