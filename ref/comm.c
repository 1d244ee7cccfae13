/* comm.c: the collectives' front (ref/comm.h): backend dispatch, status agreement across ranks and
 * the test-only fault points (docs/distributed.md "Failure handling"). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ref/comm.h"

static const char *const KIND_NAMES[DSV32_COMM_COUNT] = {"inproc", "mpi", "nccl"};

const char *dsv32_comm_kind_name(dsv32_comm_kind k)
{
	return k >= 0 && k < DSV32_COMM_COUNT ? KIND_NAMES[k] : "?";
}

bool dsv32_comm_kind_parse(const char *s, dsv32_comm_kind *k)
{
	for (int i = 0; s && i < DSV32_COMM_COUNT; i++)
		if (!strcmp(s, KIND_NAMES[i])) {
			*k = (dsv32_comm_kind)i;
			return true;
		}
	return false;
}

/* hang:R:N | die:R:N | topk:R (test-only; anything else is ignored): comm.h. */
static dsv32_comm_fault parse_fault(const char *s)
{
	dsv32_comm_fault f = {DSV32_COMM_FAULT_NONE, -1, 0};
	int r = -1;
	long at = 0;
	if (!s)
		return f;
	if (sscanf(s, "hang:%d:%ld", &r, &at) == 2)
		f = (dsv32_comm_fault){DSV32_COMM_FAULT_HANG, r, at};
	else if (sscanf(s, "die:%d:%ld", &r, &at) == 2)
		f = (dsv32_comm_fault){DSV32_COMM_FAULT_DIE, r, at};
	else if (sscanf(s, "topk:%d", &r) == 1)
		f = (dsv32_comm_fault){DSV32_COMM_FAULT_TOPK, r, 0};
	return f;
}

void dsv32_comm_set_fault(dsv32_comm *c, const char *spec)
{
	if (c)
		c->fault = parse_fault(spec);
}

void ref_comm_fault_point(dsv32_comm *c)
{
	const dsv32_comm_fault *f = &c->fault;
	if (f->rank != c->rank || f->at != c->seq)
		return;
	if (f->kind == DSV32_COMM_FAULT_DIE) {
		fprintf(stderr, "dsv32 comm: test fault: rank %d dies before collective #%ld\n", c->rank,
			c->seq);
		raise(SIGKILL);
	}
	if (f->kind == DSV32_COMM_FAULT_HANG) {
		fprintf(stderr, "dsv32 comm: test fault: rank %d hangs before collective #%ld\n",
			c->rank, c->seq);
		for (;;)
			sleep(1);
	}
}

dsv32_status dsv32_comm_open(dsv32_comm **out, dsv32_comm_kind kind, double timeout_s,
			     dsv32_error *err)
{
	*out = NULL;
	if (kind < 0 || kind >= DSV32_COMM_COUNT)
		return DSV32_FAIL(err, DSV32_E_USAGE, "comm: unknown backend %d", (int)kind);
	if (!(timeout_s > 0))
		return DSV32_FAIL(err, DSV32_E_USAGE, "comm: timeout %g s, expected > 0", timeout_s);
	dsv32_comm *c = calloc(1, sizeof *c);
	if (!c)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "comm");
	c->kind = kind;
	c->rank = 0;
	c->size = 1;
	c->timeout_s = timeout_s;
	c->fault = parse_fault(NULL);
	dsv32_status rc = DSV32_OK;
	if (kind == DSV32_COMM_MPI)
		rc = ref_comm_mpi_open(c, err);
	else if (kind == DSV32_COMM_NCCL)
		rc = ref_comm_nccl_open(c, err);
	if (rc != DSV32_OK) {
		free(c);
		return rc;
	}
	*out = c;
	return DSV32_OK;
}

void dsv32_comm_close(dsv32_comm *c)
{
	if (!c)
		return;
	if (c->kind == DSV32_COMM_MPI)
		ref_comm_mpi_close(c);
	else if (c->kind == DSV32_COMM_NCCL)
		ref_comm_nccl_close(c);
	free(c);
}

void dsv32_comm_abort(dsv32_comm *c, int code)
{
	if (!c)
		return;
	if (c->kind == DSV32_COMM_MPI)
		ref_comm_mpi_abort(c, code);
	else if (c->kind == DSV32_COMM_NCCL)
		ref_comm_nccl_abort(c, code);
}

dsv32_status dsv32_comm_allgather(dsv32_comm *c, void *recv, const void *send, size_t bytes,
				  const char *what, dsv32_error *err)
{
	c->seq++;
	ref_comm_fault_point(c);
	if (c->kind == DSV32_COMM_MPI)
		return ref_comm_mpi_allgather(c, recv, send, bytes, what, err);
	if (c->kind == DSV32_COMM_NCCL)
		return ref_comm_nccl_allgather(c, recv, send, bytes, what, err);
	if (recv != send)
		memmove(recv, send, bytes);
	return DSV32_OK;
}

dsv32_status dsv32_comm_bcast(dsv32_comm *c, void *buf, size_t bytes, int root, const char *what,
			      dsv32_error *err)
{
	if (root < 0 || root >= c->size)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: broadcast root %d of %d ranks", what, root,
				  c->size);
	c->seq++;
	ref_comm_fault_point(c);
	if (c->kind == DSV32_COMM_MPI)
		return ref_comm_mpi_bcast(c, buf, bytes, root, what, err);
	if (c->kind == DSV32_COMM_NCCL)
		return ref_comm_nccl_bcast(c, buf, bytes, root, what, err);
	return DSV32_OK;
}

dsv32_status dsv32_comm_barrier(dsv32_comm *c, const char *what, dsv32_error *err)
{
	return dsv32_comm_agree(c, DSV32_OK, what, err);
}

/* One rank's entry of an agreement: its status and message. */
typedef struct {
	int32_t code;
	char msg[500];
} agree_entry;

dsv32_status dsv32_comm_agree(dsv32_comm *c, dsv32_status local, const char *what,
			      dsv32_error *err)
{
	if (!dsv32_comm_is_distributed(c))
		return local;
	agree_entry mine = {.code = (int32_t)local};
	if (local != DSV32_OK)
		snprintf(mine.msg, sizeof mine.msg, "%.499s",
			 err && err->what[0] ? err->what : dsv32_status_str(local));
	agree_entry *all = calloc((size_t)c->size, sizeof *all);
	if (!all)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: agreement table", what);
	dsv32_error e2 = {0};
	dsv32_status rc = dsv32_comm_allgather(c, all, &mine, sizeof mine, what, &e2);
	if (rc != DSV32_OK) {
		if (err && local == DSV32_OK)
			*err = e2;
		free(all);
		return local != DSV32_OK ? local : rc;
	}
	rc = DSV32_OK;
	for (int r = 0; r < c->size && rc == DSV32_OK; r++)
		if (all[r].code != DSV32_OK) { /* the first failed rank speaks for all */
			all[r].msg[sizeof all[r].msg - 1] = '\0';
			rc = DSV32_FAIL(err, (dsv32_status)all[r].code, "rank %d of %d: %s", r,
					c->size, all[r].msg);
			c->failed_together = true;
		}
	free(all);
	return rc;
}
