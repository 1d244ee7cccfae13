/* conv_guard.c: converter inputs that change while they are read (issue 14). The converters
 * read the safetensors inputs through read-only mappings (core/safetensors.c). When another
 * process truncates a file meanwhile, the next read of a page past its new end raises SIGBUS
 * (memcpy, memcmp) or fails with EFAULT (write(2) straight from the mapping). Every read from a
 * mapping goes through conv_read_mapped / conv_diff_mapped, which catch SIGBUS with a sigsetjmp
 * guard; the converters record each input's size when they start (conv_inputs) and, after a
 * failure and before committing, name the input whose size changed. */
#include "convert/conv_internal.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The guard of the running conv_read_mapped / conv_diff_mapped on this thread, else NULL. */
static _Thread_local sigjmp_buf *volatile guard_jmp;
/* The address of the last SIGBUS a guard caught on this thread. */
static _Thread_local const void *volatile fault_addr;

/* Installed from conv_inputs_init to conv_inputs_free. Not locked: a converter starts and ends
 * on one thread (only verify-shards reads on several, and it installs nothing). */
static struct sigaction old_bus; /* the disposition before the first conv_inputs_init */
static int installed;            /* conv_inputs_init calls minus conv_inputs_free calls */

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	sigjmp_buf *env = guard_jmp;
	if (!env) {
		/* not a guarded read: put the old disposition back; returning re-executes the
		 * faulting access, which then gets it (the default kills, as without us) */
		sigaction(sig, &old_bus, NULL);
		return;
	}
	guard_jmp = NULL;
	fault_addr = si->si_addr;
	siglongjmp(*env, 1);
}

/* SA_NODEFER: the handler leaves by siglongjmp without restoring a signal mask, so SIGBUS must
 * not be blocked while it runs (sigsetjmp(env, 0) saves no mask, which keeps a guard cheap). */
static void install_handler(void)
{
	if (installed++)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old_bus);
}

static void remove_handler(void)
{
	if (installed > 0 && --installed == 0)
		sigaction(SIGBUS, &old_bus, NULL);
}

bool conv_read_mapped(void *dst, const void *src, size_t n)
{
	sigjmp_buf env;
	if (sigsetjmp(env, 0))
		return false;
	guard_jmp = &env;
	memcpy(dst, src, n);
	guard_jmp = NULL;
	return true;
}

/* The first offset where a and b differ (n when equal), computed under the guard. Not inlined:
 * no local of the guarded caller may live in a register across the sigsetjmp. */
__attribute__((noinline)) static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	if (!memcmp(a, b, n))
		return n;
	size_t j = 0;
	while (a[j] == b[j])
		j++;
	return j;
}

bool conv_diff_mapped(const void *a, const void *b, size_t n, size_t *first)
{
	sigjmp_buf env;
	if (sigsetjmp(env, 0))
		return false;
	guard_jmp = &env;
	*first = first_diff(a, b, n);
	guard_jmp = NULL;
	return true;
}

/* The data range of f's tensors in memory, for telling which input a fault address is in. */
static void data_range(const dsv32_st_file *f, const uint8_t **lo, const uint8_t **hi)
{
	*lo = *hi = NULL;
	for (size_t i = 0; i < dsv32_st_count(f); i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
		const uint8_t *p = dsv32_st_data(f, e);
		if (!*lo || p < *lo)
			*lo = p;
		if (!*hi || p + (e->end - e->begin) > *hi)
			*hi = p + (e->end - e->begin);
	}
}

void conv_inputs_init(conv_inputs *in)
{
	memset(in, 0, sizeof *in);
	install_handler();
	const char *hook = getenv("DSV32_TEST_TRUNCATE_INPUTS_AFTER");
	in->truncate_after = hook && *hook ? strtoll(hook, NULL, 10) : -1;
}

void conv_inputs_free(conv_inputs *in)
{
	for (size_t i = 0; i < in->n; i++)
		free(in->v[i].path);
	free(in->v);
	memset(in, 0, sizeof *in);
	remove_handler();
}

dsv32_status conv_inputs_add(conv_inputs *in, const dsv32_st_file *f, dsv32_error *err)
{
	const char *path = dsv32_st_path(f);
	struct stat st;
	if (stat(path, &st) != 0)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: cannot stat: %s", path,
				      strerror(errno));
	conv_input *v = realloc(in->v, (in->n + 1) * sizeof *v);
	if (!v)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "input list");
	in->v = v;
	conv_input *x = &v[in->n];
	if (!(x->path = strdup(path)))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "input list");
	x->size = st.st_size;
	data_range(f, &x->lo, &x->hi);
	in->n++;
	return DSV32_OK;
}

/* Whether input x is not what it was: another size now, or it held the last caught fault. */
static bool input_changed(const conv_input *x)
{
	struct stat st;
	const uint8_t *a = fault_addr;
	if (a && x->lo && a >= x->lo && a < x->hi)
		return true;
	return stat(x->path, &st) != 0 || st.st_size != x->size;
}

dsv32_status conv_inputs_check(const conv_inputs *in, dsv32_error *err)
{
	for (size_t i = 0; i < in->n; i++)
		if (input_changed(&in->v[i]))
			return DSV32_FAIL(err, DSV32_E_IO, "%s: file changed size while being read",
					  in->v[i].path);
	return DSV32_OK;
}

dsv32_status conv_inputs_explain(const conv_inputs *in, dsv32_status rc, dsv32_error *err)
{
	if (rc == DSV32_OK)
		return rc;
	dsv32_status why = conv_inputs_check(in, err); /* overwrites err only when it says why */
	fault_addr = NULL;
	return why != DSV32_OK ? why : rc;
}

/* Test-only (DSV32_TEST_TRUNCATE_INPUTS_AFTER=N, docs/robustness.md): after the N-th tensor,
 * cut every input to half its size, as a user truncating a shard during a run would; this makes
 * the shrinking-input case of issue 14 deterministic for tests/hostile/writers.rows. */
void conv_inputs_tensor_done(conv_inputs *in)
{
	if (in->truncate_after < 0 || ++in->tensors_done != (uint64_t)in->truncate_after)
		return;
	for (size_t i = 0; i < in->n; i++)
		if (truncate(in->v[i].path, in->v[i].size / 2) != 0)
			continue; /* a test hook: the test sees the missing error */
}
