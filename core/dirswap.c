/* dirswap.c: output directories written whole, replaced by renames (dirswap.h). */
#include "core/dirswap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"

/* out's parent as given ("." when out has no '/') and its last component. */
static void split_parent(const char *out, char *parent, size_t plen, const char **base)
{
	const char *slash = strrchr(out, '/');
	if (!slash) {
		snprintf(parent, plen, ".");
		*base = out;
	} else {
		snprintf(parent, plen, "%.*s", slash == out ? 1 : (int)(slash - out), out);
		*base = slash + 1;
	}
}

/* fsync a directory so that the renames in it survive a power cut (best effort). */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* "<base>.tmp.<pid>[.<n>]" or "<base>.old.<pid>": what an interrupted run leaves. Returns 't',
 * 'o' or 0. */
static int leftover_kind(const char *name, const char *base)
{
	size_t n = strlen(base);
	if (strncmp(name, base, n) != 0)
		return 0;
	const char *p = name + n;
	int kind = !strncmp(p, ".tmp.", 5) ? 't' : !strncmp(p, ".old.", 5) ? 'o' : 0;
	p += 5;
	if (!kind || *p < '0' || *p > '9' || strspn(p, "0123456789.") != strlen(p))
		return 0;
	return kind;
}

int dsv32_dirswap_leftover(const char *out, char *path, size_t len)
{
	char parent[PATH_MAX], name[2][256] = {"", ""};
	const char *base;
	split_parent(out, parent, sizeof parent, &base);
	DIR *dp = opendir(parent);
	if (!dp)
		return 0; /* unreadable: creating the temporary there fails with its own message */
	struct dirent *de;
	while ((de = readdir(dp)) != NULL) {
		int kind = leftover_kind(de->d_name, base);
		if (kind && !name[kind == 'o'][0])
			snprintf(name[kind == 'o'], sizeof name[0], "%s", de->d_name);
	}
	closedir(dp);
	int kind = name[1][0] ? 'o' : name[0][0] ? 't' : 0;
	if (kind)
		snprintf(path, len, "%s%s%s", strchr(out, '/') ? parent : "",
			 !strchr(out, '/') || !strcmp(parent, "/") ? "" : "/",
			 name[kind == 'o']);
	return kind;
}

/* Refuse when an "<out>.old.<pid>" sits beside out: it may be the only complete copy of the
 * previous output, and the user decides (move it back or remove it). An unfinished
 * "<out>.tmp.<pid>" is never used again: the run goes on (the CLI names it). Run under the
 * lock, so no live writer of ours is mid-way. */
static dsv32_status check_leftovers(const dsv32_dirswap *d, dsv32_error *err)
{
	char path[PATH_MAX + 256];
	if (dsv32_dirswap_leftover(d->out, path, sizeof path) != 'o')
		return DSV32_OK;
	return DSV32_FAIL(err, DSV32_E_USAGE,
			  "%s: found leftover %s from an interrupted run: the previous output, "
			  "moved aside (complete if %s is missing); move it back or remove it, then "
			  "run again", d->out, path, d->out);
}

/* Create out's parent, take the lock, refuse leftovers and (without force) an existing out. */
static dsv32_status prepare(dsv32_dirswap *d, dsv32_error *err)
{
	char parent[PATH_MAX];
	const char *base;
	split_parent(d->out, parent, sizeof parent, &base);
	DSV32_TRY(dsv32_mkdirs(parent, err));
	DSV32_TRY(dsv32_out_lock_take(&d->lock, d->out, err));
	dsv32_status rc = check_leftovers(d, err);
	struct stat st;
	if (rc == DSV32_OK && !d->force && lstat(d->out, &st) == 0)
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: already exists (use --force to replace it)",
				d->out);
	if (rc != DSV32_OK)
		dsv32_out_lock_release(&d->lock);
	return rc;
}

/* mkdir "<out>.tmp.<pid>" exclusively, so the tree is provably ours; a leftover of an earlier
 * run with the same pid (pids repeat, e.g. in containers) moves us to "<out>.tmp.<pid>.<n>".
 * Returns 0 or an errno. */
static int make_tmp(dsv32_dirswap *d)
{
	for (int k = 0; k < 100; k++) {
		int n = k ? snprintf(d->tmp, sizeof d->tmp, "%s.tmp.%ld.%d", d->out,
				     (long)getpid(), k)
			  : snprintf(d->tmp, sizeof d->tmp, "%s.tmp.%ld", d->out, (long)getpid());
		if (n < 0 || (size_t)n >= sizeof d->tmp)
			return ENAMETOOLONG;
		if (mkdir(d->tmp, 0755) == 0)
			return 0;
		if (errno != EEXIST)
			return errno;
	}
	return EEXIST;
}

dsv32_status dsv32_dirswap_begin(dsv32_dirswap *d, const char *out, bool force,
				 const char *const *inputs, int n_inputs, dsv32_error *err)
{
	memset(d, 0, sizeof *d);
	d->lock.fd = -1;
	d->force = force;
	if (!out || !*out)
		return DSV32_FAIL(err, DSV32_E_USAGE, "no output directory given (--out)");
	size_t n = strlen(out);
	if (n >= sizeof d->out)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", out);
	memcpy(d->out, out, n + 1);
	while (n > 1 && d->out[n - 1] == '/')
		d->out[--n] = '\0';
	DSV32_TRY(dsv32_out_check(d->out, inputs, n_inputs, DSV32_OUT_DIR, err));
	DSV32_TRY(prepare(d, err));
	int e = make_tmp(d);
	if (e) {
		dsv32_out_lock_release(&d->lock);
		return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: cannot create %s: %s", d->out,
				      d->tmp, strerror(e));
	}
	d->made_tmp = true;
	(void)dsv32_tmp_register(d->tmp, true); /* full table: a leftover the next run names */
	return DSV32_OK;
}

/* rename(2) that never replaces to. RENAME_NOREPLACE where the filesystem has it; elsewhere a
 * check first (the lock keeps our own writers out of the gap). */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	struct stat st;
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

/* Move the existing out aside to old; false (err filled) when out may not be replaced. */
static dsv32_status move_aside(dsv32_dirswap *d, const char *old, bool *had, dsv32_error *err)
{
	struct stat st;
	*had = lstat(d->out, &st) == 0;
	if (!*had)
		return DSV32_OK;
	if (!d->force)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "%s: appeared while this run wrote it (use --force to replace it)",
				  d->out);
	if (!S_ISDIR(st.st_mode))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "%s: is no longer a directory; refusing to replace it", d->out);
	if (rename_noreplace(d->out, old) != 0)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: cannot move it aside to %s: %s",
				      d->out, old, strerror(errno));
	return DSV32_OK;
}

dsv32_status dsv32_dirswap_commit(dsv32_dirswap *d, dsv32_error *err)
{
	char old[PATH_MAX + 32], parent[PATH_MAX];
	const char *base;
	bool had;
	snprintf(old, sizeof old, "%s.old.%ld", d->out, (long)getpid());
	split_parent(d->out, parent, sizeof parent, &base);
	sync_dir(d->tmp);
	DSV32_TRY(move_aside(d, old, &had, err));
	if (rename_noreplace(d->tmp, d->out) != 0) {
		int e = errno;
		if (had)
			(void)rename(old, d->out); /* if this fails too, the next run names old */
		return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "rename %s -> %s: %s", d->tmp, d->out,
				      strerror(e));
	}
	d->made_tmp = false;
	dsv32_tmp_forget(d->tmp); /* after the rename: an interrupt before it removes the tree */
	sync_dir(parent);
	dsv32_status rc = DSV32_OK;
	dsv32_error rerr = {0};
	if (had && dsv32_remove_tree(old, &rerr) != DSV32_OK)
		rc = DSV32_FAIL(err, DSV32_E_IO,
				"%s: written, but the previous output moved aside to %s could not be "
				"removed (%s); remove it", d->out, old, rerr.what);
	dsv32_out_lock_release(&d->lock);
	return rc;
}

void dsv32_dirswap_abort(dsv32_dirswap *d)
{
	if (d->made_tmp) {
		(void)dsv32_remove_tree(d->tmp, NULL);
		dsv32_tmp_forget(d->tmp);
	}
	d->made_tmp = false;
	dsv32_out_lock_release(&d->lock);
}
