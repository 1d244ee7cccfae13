/* fsutil.c: small file-system helpers (fsutil.h): atomic whole-file writes through a temporary
 * name and rename, bounded whole-file reads, mkdir -p, rm -rf of our own trees, path joins. */
#include "core/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/infile.h"

bool dsv32_path_exists(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0;
}

bool dsv32_path_is_dir(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool dsv32_path_join(char *out, size_t len, const char *a, const char *b)
{
	if (!out || len == 0)
		return false;
	size_t na = strlen(a);
	const char *sep = (na == 0 || a[na - 1] == '/') ? "" : "/";
	int n = snprintf(out, len, "%s%s%s", a, sep, b);
	return n >= 0 && (size_t)n < len;
}

int dsv32_write_full(int fd, const void *buf, size_t len, int64_t off)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
		off = off < 0 ? off : off + n;
	}
	return 0;
}

/* fsync the directory holding path so that a rename into it is durable (best effort). */
static void sync_parent_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(dir, sizeof dir, ".");
	} else if (slash == path) {
		snprintf(dir, sizeof dir, "/");
	} else {
		size_t n = (size_t)(slash - path);
		if (n >= sizeof dir)
			return;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

dsv32_status dsv32_write_file_atomic(const char *path, const void *buf, size_t len,
				     dsv32_error *err)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: cannot create: %s", tmp,
				      strerror(errno));
	int e = dsv32_write_full(fd, buf, len, -1);
	if (e) {
		DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: write failed: %s", tmp, strerror(e));
		goto out_unlink;
	}
	if (fsync(fd) != 0) {
		e = errno;
		DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: fsync failed: %s", tmp, strerror(e));
		goto out_unlink;
	}
	if (close(fd) != 0) {
		fd = -1;
		e = errno;
		DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: close failed: %s", tmp, strerror(e));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		e = errno;
		DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: rename from %s failed: %s", path, tmp,
			       strerror(e));
		goto out_unlink;
	}
	sync_parent_dir(path);
	return DSV32_OK;

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return err ? err->code : DSV32_E_IO;
}

dsv32_status dsv32_read_file(const char *path, size_t max, char **out, size_t *len,
			     dsv32_error *err)
{
	return dsv32_infile_read_capped(path, max, "read limit", out, len, err);
}

dsv32_status dsv32_mkdirs(const char *path, dsv32_error *err)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "mkdirs: empty path");
	if (n >= sizeof buf)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", path);
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/') /* repeated slash */
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0) {
			int e = errno;
			struct stat st;
			if (e != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
				return DSV32_FAIL_SYS(err, DSV32_E_IO, e == EEXIST ? ENOTDIR : e,
						      "%s: cannot create directory %s: %s", path,
						      buf, strerror(e == EEXIST ? ENOTDIR : e));
		}
		buf[i] = saved;
	}
	return DSV32_OK;
}

/* Remove the entry name inside the open directory dfd; directories recursively. Symbolic links
 * are removed, never followed. path is for messages. */
static dsv32_status remove_at(int dfd, const char *name, const char *path, dsv32_error *err)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return DSV32_OK;
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: stat failed: %s", path,
				      strerror(errno));
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
			return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: unlink failed: %s", path,
					      strerror(errno));
		return DSV32_OK;
	}
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: cannot open directory: %s", path,
				      strerror(errno));
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: cannot read directory: %s",
				      path, strerror(errno));
	}
	dsv32_status rc = DSV32_OK;
	struct dirent *de;
	while (rc == DSV32_OK && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char child[4096];
		if (!dsv32_path_join(child, sizeof child, path, de->d_name))
			child[sizeof child - 1] = '\0'; /* only used in messages */
		rc = remove_at(dirfd(d), de->d_name, child, err);
	}
	closedir(d);
	if (rc != DSV32_OK)
		return rc;
	if (unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: rmdir failed: %s", path,
				      strerror(errno));
	return DSV32_OK;
}

bool dsv32_path_names_dot_entry(const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && path[b - 1] != '/')
		b--;
	return (n - b == 1 && path[b] == '.') ||
	       (n - b == 2 && path[b] == '.' && path[b + 1] == '.');
}

/* a is b or an ancestor of b (both canonical, absolute). */
static bool is_same_or_ancestor(const char *a, const char *b)
{
	size_t n = strlen(a);
	if (strcmp(a, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

/* What no writer of ours creates and an rm -rf must never reach, whatever path a caller builds:
 * "", ".", "..", a path ending in "." or "..", the file-system root, the current directory and
 * its ancestors (issue 14: `fixture --out . --force` emptied the directory it ran in). A
 * symbolic link is fine: remove_at unlinks the link, never its target. */
static dsv32_status check_removable(const char *path, dsv32_error *err)
{
	if (!path || !*path || dsv32_path_names_dot_entry(path))
		return DSV32_FAIL(err, DSV32_E_USAGE, "remove_tree: refusing to remove \"%s\"",
				  path ? path : "(null)");
	struct stat st;
	if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode))
		return DSV32_OK; /* nothing there, or only a link to unlink */
	char *rp = realpath(path, NULL);
	if (!rp)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "remove_tree: %s: cannot resolve: %s",
				      path, strerror(errno));
	char cwd[4096];
	bool cwd_ok = getcwd(cwd, sizeof cwd) != NULL;
	dsv32_status rc = DSV32_OK;
	if (strcmp(rp, "/") == 0 || (cwd_ok && is_same_or_ancestor(rp, cwd)))
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "remove_tree: refusing to remove %s (%s)", path,
				strcmp(rp, "/") == 0 ? "the file-system root"
				: strcmp(rp, cwd) == 0 ? "the current directory"
						       : "an ancestor of the current directory");
	free(rp);
	return rc;
}

dsv32_status dsv32_remove_tree(const char *path, dsv32_error *err)
{
	DSV32_TRY(check_removable(path, err));
	return remove_at(AT_FDCWD, path, path, err);
}
