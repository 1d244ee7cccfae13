/* outpath.c: the output gate and the output lock (outpath.h). Paths are resolved as the kernel
 * will walk them at write time, so a not-yet-existing output under an input is caught too. */
#include "core/outpath.h"
#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A path in both resolved forms (outpath.h "Resolution"). */
typedef struct {
	char full[PATH_MAX]; /* last symbolic link followed */
	char lex[PATH_MAX];  /* last component kept as named */
} rpath;

/* Append tail's components to the absolute path res (cap bytes) as the kernel will walk them
 * once the missing directories exist: "." is skipped, ".." drops the last component. */
static bool append_lexical(char *res, size_t cap, const char *tail)
{
	for (const char *p = tail; *p;) {
		p += strspn(p, "/");
		size_t n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *s = strrchr(res, '/');
			s[s == res ? 1 : 0] = '\0';
		} else if (!(n == 1 && p[0] == '.')) {
			size_t m = strlen(res);
			bool root = m == 1;
			if (m + !root + n + 1 > cap)
				return false;
			if (!root)
				res[m++] = '/';
			memcpy(res + m, p, n);
			res[m + n] = '\0';
		}
		p += n;
	}
	return true;
}

/* realpath of path's deepest existing prefix, then the rest lexically. A prefix that fails for
 * any reason (missing, a dangling link, a loop) is treated as missing: the write will fail on it
 * anyway, and lexical is the conservative reading for the overlap test. */
static bool resolve_follow(const char *path, char *res)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, path, n + 1);
	bool abs = buf[0] == '/';
	size_t cut = n;
	for (;;) {
		char saved = buf[cut];
		buf[cut] = '\0';
		const char *pre = cut ? buf : (abs ? "/" : ".");
		bool ok = realpath(pre, res) != NULL;
		buf[cut] = saved;
		if (ok)
			break;
		if (cut == 0)
			return false; /* the current directory itself is gone */
		while (cut > 0 && buf[cut - 1] != '/')
			cut--;
		while (cut > 0 && buf[cut - 1] == '/')
			cut--;
	}
	return append_lexical(res, PATH_MAX, buf + cut);
}

/* The parent resolved with links followed, then the last component as named. */
static bool resolve_named(const char *path, char *res)
{
	char dir[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof dir)
		return false;
	memcpy(dir, path, n + 1);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	char *slash = strrchr(dir, '/');
	const char *base = dir;
	if (slash) {
		base = slash + 1;
		*slash = '\0';
	}
	if (!resolve_follow(slash ? (slash == dir ? "/" : dir) : ".", res))
		return false;
	return append_lexical(res, PATH_MAX, base);
}

static bool rpath_of(const char *path, rpath *r)
{
	return resolve_follow(path, r->full) && resolve_named(path, r->lex);
}

/* Whether a equals b or lies below it ("/" holds everything). */
static bool within(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (n == 1)
		return true;
	return !strncmp(a, b, n) && (a[n] == '\0' || a[n] == '/');
}

static bool rpaths_overlap(const rpath *x, const rpath *y)
{
	const char *xs[2] = {x->full, x->lex}, *ys[2] = {y->full, y->lex};
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			if (within(xs[i], ys[j]) || within(ys[j], xs[i]))
				return true;
	return false;
}

bool dsv32_out_overlaps(const char *a, const char *b)
{
	rpath *ra = malloc(2 * sizeof *ra);
	if (!ra)
		return true;
	bool r = !rpath_of(a, &ra[0]) || !rpath_of(b, &ra[1]) || rpaths_overlap(&ra[0], &ra[1]);
	free(ra);
	return r;
}

static const char *kind_name(mode_t m)
{
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	return "a regular file";
}

/* The last component: not "." / "..", and an existing entry of the kind the writer replaces. */
static dsv32_status check_leaf(const char *out, unsigned flags, dsv32_error *err)
{
	bool dir = (flags & DSV32_OUT_DIR) != 0;
	char stripped[PATH_MAX];
	const char *what = dir ? "directory" : "file";
	if (dsv32_path_names_dot_entry(out))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "%s: '.' and '..' are not accepted as an output %s; name it by its "
				  "own name", out, what);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		n--;
	snprintf(stripped, sizeof stripped, "%.*s", (int)n, out); /* lstat of "x/" follows x */
	struct stat st;
	if (lstat(stripped, &st) != 0)
		return DSV32_OK; /* nothing there yet: the writer reports a bad parent itself */
	bool ok = dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
	if (ok && !dir && !(flags & DSV32_OUT_REPLACE))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: exists; pass --force to replace it", out);
	if (ok)
		return DSV32_OK;
	return DSV32_FAIL(err, DSV32_E_USAGE,
			  "%s: exists and is %s, not a %s; the output is written under a temporary "
			  "name and renamed over it, which would replace it: refusing (name a new "
			  "path%s)", out, kind_name(st.st_mode), dir ? "directory" : "regular file",
			  dir ? "" : ", or '-' for stdout where the option accepts it");
}

/* A directory to replace must not be "/", the current directory or one of its parents. */
static dsv32_status check_not_cwd(const char *out, const rpath *o, dsv32_error *err)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno,
				      "%s: cannot read the current directory: %s", out,
				      strerror(errno));
	const char *hit = within(cwd, o->full) ? o->full : within(cwd, o->lex) ? o->lex : NULL;
	if (!hit)
		return DSV32_OK;
	const char *what = !strcmp(hit, "/") ? "the filesystem root"
			   : !strcmp(hit, cwd) ? "the current directory"
					       : "a parent of the current directory";
	return DSV32_FAIL(err, DSV32_E_USAGE,
			  "%s: resolves to %s, %s: refusing it as an output directory", out, hit,
			  what);
}

static dsv32_status check_inputs(const char *out, const rpath *o, const char *const *inputs,
				 int n_inputs, dsv32_error *err)
{
	rpath *in = malloc(sizeof *in);
	if (!in)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: resolving the inputs", out);
	dsv32_status rc = DSV32_OK;
	for (int i = 0; i < n_inputs && rc == DSV32_OK; i++) {
		if (!inputs[i] || !inputs[i][0])
			continue;
		if (!rpath_of(inputs[i], in))
			rc = DSV32_FAIL(err, DSV32_E_IO, "%s: cannot resolve the input path",
					inputs[i]);
		else if (rpaths_overlap(o, in))
			rc = DSV32_FAIL(err, DSV32_E_USAGE,
					"%s: output overlaps the input %s (the same path, inside it "
					"or containing it; inputs are never modified)", out, inputs[i]);
	}
	free(in);
	return rc;
}

dsv32_status dsv32_out_check(const char *out, const char *const *inputs, int n_inputs,
			     unsigned flags, dsv32_error *err)
{
	if (!out || !out[0])
		return DSV32_FAIL(err, DSV32_E_USAGE, "no output path given");
	bool dir = (flags & DSV32_OUT_DIR) != 0;
	rpath *o = malloc(sizeof *o);
	if (!o)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: resolving the output", out);
	dsv32_status rc = DSV32_OK;
	if (!rpath_of(out, o))
		rc = DSV32_FAIL(err, DSV32_E_IO, "%s: cannot resolve the output path", out);
	if (rc == DSV32_OK)
		rc = check_inputs(out, o, inputs, n_inputs, err);
	if (rc == DSV32_OK)
		rc = check_leaf(out, flags, err);
	if (rc == DSV32_OK && dir)
		rc = check_not_cwd(out, o, err);
	free(o);
	return rc;
}

/* ---- the lock ---- */

/* ".<name>.lock" beside the output, in its resolved parent. */
static dsv32_status lock_path(dsv32_out_lock *lk, const char *out, dsv32_error *err)
{
	char lex[PATH_MAX];
	if (!resolve_named(out, lex))
		return DSV32_FAIL(err, DSV32_E_IO, "%s: cannot resolve the output path", out);
	char *slash = strrchr(lex, '/');
	const char *dir = slash == lex ? "" : lex;
	*slash = '\0';
	int n = snprintf(lk->path, sizeof lk->path, "%s/.%s.lock", dir, slash + 1);
	if (n < 0 || (size_t)n >= sizeof lk->path)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long for its lock file", out);
	return DSV32_OK;
}

/* Whether fd is still the file that path names (the holder may have unlinked it). */
static bool still_named(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

dsv32_status dsv32_out_lock_take(dsv32_out_lock *lk, const char *out, dsv32_error *err)
{
	lk->fd = -1;
	DSV32_TRY(lock_path(lk, out, err));
	for (int tries = 0; tries < 16; tries++) {
		int fd = open(lk->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0 && errno == ENOENT) /* said plainly: the lock is not the user's concern */
			return DSV32_FAIL_SYS(err, DSV32_E_IO, ENOENT,
					      "%s: its directory does not exist", out);
		if (fd < 0)
			return DSV32_FAIL_SYS(err, DSV32_E_IO, errno,
					      "%s: cannot create the lock file %s: %s", out,
					      lk->path, strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK)
				return DSV32_FAIL_SYS(err, DSV32_E_IO, e,
						      "another dsv32-parity is writing %s (lock %s)",
						      out, lk->path);
			return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: cannot lock %s: %s", out,
					      lk->path, strerror(e));
		}
		if (still_named(fd, lk->path)) {
			lk->fd = fd;
			/* an interrupt unlinks it while we still hold it: the same as release */
			(void)dsv32_tmp_register(lk->path, false);
			return DSV32_OK;
		}
		close(fd); /* the previous holder unlinked it after our open: take the new one */
	}
	return DSV32_FAIL(err, DSV32_E_IO, "%s: the lock file %s keeps being replaced", out,
			  lk->path);
}

void dsv32_out_lock_release(dsv32_out_lock *lk)
{
	if (lk->fd < 0)
		return;
	dsv32_tmp_forget(lk->path);
	(void)unlink(lk->path); /* while held: see the header on why this is race-free */
	close(lk->fd);
	lk->fd = -1;
}

/* The registry of temporaries (outpath.h). A slot's state is written last when it is filled
 * and first when it is freed, so the handler only ever reads complete paths. */
#define TMP_SLOTS 16
enum { TMP_FREE = 0, TMP_FILE, TMP_DIR };
static struct {
	volatile sig_atomic_t state;
	char path[PATH_MAX + 48];
} tmp_table[TMP_SLOTS];

bool dsv32_tmp_register(const char *path, bool is_dir)
{
	size_t n = strlen(path);
	if (n >= sizeof tmp_table[0].path)
		return false;
	for (int i = 0; i < TMP_SLOTS; i++) {
		if (tmp_table[i].state != TMP_FREE)
			continue;
		memcpy(tmp_table[i].path, path, n + 1);
		tmp_table[i].state = is_dir ? TMP_DIR : TMP_FILE;
		return true;
	}
	return false;
}

void dsv32_tmp_forget(const char *path)
{
	for (int i = 0; i < TMP_SLOTS; i++)
		if (tmp_table[i].state != TMP_FREE && !strcmp(tmp_table[i].path, path)) {
			tmp_table[i].state = TMP_FREE;
			return;
		}
}

/* fork + execve + waitpid are async-signal-safe; the child gets no environment. */
static void remove_tree_signal_safe(const char *path)
{
	static char *const envp[] = {NULL};
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = {"rm", "-rf", "--", (char *)path, NULL};
		execve("/bin/rm", argv, envp);
		execve("/usr/bin/rm", argv, envp);
		_exit(127);
	}
	if (pid > 0)
		(void)waitpid(pid, NULL, 0);
}

void dsv32_tmp_remove_all(void)
{
	for (int i = 0; i < TMP_SLOTS; i++) {
		sig_atomic_t st = tmp_table[i].state;
		tmp_table[i].state = TMP_FREE;
		if (st == TMP_FILE)
			(void)unlink(tmp_table[i].path);
		else if (st == TMP_DIR)
			remove_tree_signal_safe(tmp_table[i].path);
	}
}
