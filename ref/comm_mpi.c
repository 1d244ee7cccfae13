/* comm_mpi.c: the MPI backend of ref/comm.h: one rank per process, host buffers. Collectives are
 * point-to-point messages (MPI_Isend / MPI_Irecv to and from every peer) polled against a deadline
 * with MPI_ERRORS_RETURN, so a rank that never delivers is named in the error instead of hanging
 * the job; the byte order of the results is fixed (rank order), the sums are done by the caller. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref/comm.h"

#if DSV32_HAVE_MPI
#include <mpi.h>

enum { TAG_GATHER = 17, TAG_BCAST = 18 };

typedef struct {
	MPI_Comm comm;
	bool we_init; /* MPI_Init was ours: MPI_Finalize in close */
} mpi_impl;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static dsv32_status mpi_fail(dsv32_error *err, int code, const char *what, long seq)
{
	char s[MPI_MAX_ERROR_STRING];
	int n = 0;
	if (MPI_Error_string(code, s, &n) != MPI_SUCCESS)
		snprintf(s, sizeof s, "MPI error %d", code);
	return DSV32_FAIL_SYS(err, DSV32_E_IO, code, "%s #%ld: %s", what, seq, s);
}

/* Wait for reqs[0..n) (peer[i]: the rank request i talks to) until the deadline. Polls tightly
 * first, then sleeps in growing steps (ranks may share cores). */
static dsv32_status wait_reqs(dsv32_comm *c, MPI_Request *reqs, const int *peer,
			      const bool *is_recv, int n, const char *what, dsv32_error *err)
{
	double t0 = now_s(), deadline = t0 + c->timeout_s;
	long spins = 0, nap_ns = 20000;
	for (;;) {
		int open = 0;
		for (int i = 0; i < n; i++) {
			if (reqs[i] == MPI_REQUEST_NULL)
				continue;
			int flag = 0, rc = MPI_Test(&reqs[i], &flag, MPI_STATUS_IGNORE);
			if (rc != MPI_SUCCESS)
				return mpi_fail(err, rc, what, c->seq);
			open += !flag;
		}
		if (!open)
			return DSV32_OK;
		if (now_s() > deadline)
			break;
		if (++spins > 200) {
			struct timespec ts = {0, nap_ns};
			nanosleep(&ts, NULL);
			if (nap_ns < 1000000)
				nap_ns += nap_ns / 4;
		}
	}
	bool recv_missing = false;
	for (int i = 0; i < n; i++)
		recv_missing = recv_missing || (reqs[i] != MPI_REQUEST_NULL && is_recv[i]);
	char names[256] = "";
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		if (reqs[i] == MPI_REQUEST_NULL)
			continue;
		if (is_recv[i] == recv_missing && len + 16 < sizeof names)
			len += (size_t)snprintf(names + len, sizeof names - len, "%s%d", len ? ", " : "",
						peer[i]);
		if (is_recv[i]) { /* the buffer goes away: the message must not land in it */
			MPI_Cancel(&reqs[i]);
			MPI_Request_free(&reqs[i]);
		}
	}
	return DSV32_FAIL(err, DSV32_E_IO,
			  "%s #%ld on rank %d: %s rank %s within %g s (--comm-timeout): the rank died, "
			  "hangs or was never started", what, c->seq, c->rank,
			  recv_missing ? "no data from" : "data not taken by", names, c->timeout_s);
}

dsv32_status ref_comm_mpi_open(dsv32_comm *c, dsv32_error *err)
{
	mpi_impl *im = calloc(1, sizeof *im);
	if (!im)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "comm mpi");
	int inited = 0, provided = 0, rc;
	MPI_Initialized(&inited);
	if (!inited) {
		rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided);
		if (rc != MPI_SUCCESS) {
			free(im);
			return DSV32_FAIL(err, DSV32_E_IO, "comm mpi: MPI_Init failed (%d)", rc);
		}
		im->we_init = true;
	}
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	rc = MPI_Comm_dup(MPI_COMM_WORLD, &im->comm);
	if (rc == MPI_SUCCESS)
		rc = MPI_Comm_set_errhandler(im->comm, MPI_ERRORS_RETURN);
	if (rc == MPI_SUCCESS)
		rc = MPI_Comm_rank(im->comm, &c->rank);
	if (rc == MPI_SUCCESS)
		rc = MPI_Comm_size(im->comm, &c->size);
	if (rc != MPI_SUCCESS) {
		dsv32_status s = mpi_fail(err, rc, "comm mpi: open", 0);
		if (im->we_init)
			MPI_Finalize();
		free(im);
		return s;
	}
	c->impl = im;
	return DSV32_OK;
}

void ref_comm_mpi_close(dsv32_comm *c)
{
	mpi_impl *im = c->impl;
	if (!im)
		return;
	MPI_Comm_free(&im->comm);
	if (im->we_init)
		MPI_Finalize();
	free(im);
	c->impl = NULL;
}

void ref_comm_mpi_abort(dsv32_comm *c, int code)
{
	mpi_impl *im = c->impl;
	fflush(stdout);
	fflush(stderr);
	MPI_Abort(im ? im->comm : MPI_COMM_WORLD, code ? code : 1);
}

dsv32_status ref_comm_mpi_allgather(dsv32_comm *c, void *recv, const void *send, size_t bytes,
				      const char *what, dsv32_error *err)
{
	mpi_impl *im = c->impl;
	if (bytes > (size_t)INT32_MAX)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "%s: %zu bytes in one message (max 2 GiB)",
				  what, bytes);
	char *rb = recv;
	if ((const char *)send != rb + (size_t)c->rank * bytes)
		memmove(rb + (size_t)c->rank * bytes, send, bytes);
	int W = c->size, n = 0;
	MPI_Request *reqs = malloc(sizeof *reqs * (size_t)(2 * W));
	int *peer = malloc(sizeof *peer * (size_t)(2 * W));
	bool *is_recv = malloc(sizeof *is_recv * (size_t)(2 * W));
	if (!reqs || !peer || !is_recv) {
		free(reqs);
		free(peer);
		free(is_recv);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: requests", what);
	}
	int rc = MPI_SUCCESS;
	for (int r = 0; r < W && rc == MPI_SUCCESS; r++) {
		if (r == c->rank)
			continue;
		peer[n] = r;
		is_recv[n] = true;
		rc = MPI_Irecv(rb + (size_t)r * bytes, (int)bytes, MPI_BYTE, r, TAG_GATHER, im->comm,
			       &reqs[n++]);
	}
	for (int r = 0; r < W && rc == MPI_SUCCESS; r++) {
		if (r == c->rank)
			continue;
		peer[n] = r;
		is_recv[n] = false;
		rc = MPI_Isend(rb + (size_t)c->rank * bytes, (int)bytes, MPI_BYTE, r, TAG_GATHER,
			       im->comm, &reqs[n++]);
	}
	dsv32_status s = rc == MPI_SUCCESS ? wait_reqs(c, reqs, peer, is_recv, n, what, err)
					   : mpi_fail(err, rc, what, c->seq);
	free(reqs);
	free(peer);
	free(is_recv);
	return s;
}

dsv32_status ref_comm_mpi_bcast(dsv32_comm *c, void *buf, size_t bytes, int root,
				  const char *what, dsv32_error *err)
{
	mpi_impl *im = c->impl;
	if (bytes > (size_t)INT32_MAX)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "%s: %zu bytes in one message (max 2 GiB)",
				  what, bytes);
	int W = c->size, n = 0;
	MPI_Request *reqs = malloc(sizeof *reqs * (size_t)W);
	int *peer = malloc(sizeof *peer * (size_t)W);
	bool *is_recv = malloc(sizeof *is_recv * (size_t)W);
	if (!reqs || !peer || !is_recv) {
		free(reqs);
		free(peer);
		free(is_recv);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: requests", what);
	}
	int rc = MPI_SUCCESS;
	if (c->rank == root) {
		for (int r = 0; r < W && rc == MPI_SUCCESS; r++) {
			if (r == root)
				continue;
			peer[n] = r;
			is_recv[n] = false;
			rc = MPI_Isend(buf, (int)bytes, MPI_BYTE, r, TAG_BCAST, im->comm, &reqs[n++]);
		}
	} else {
		peer[n] = root;
		is_recv[n] = true;
		rc = MPI_Irecv(buf, (int)bytes, MPI_BYTE, root, TAG_BCAST, im->comm, &reqs[n++]);
	}
	dsv32_status s = rc == MPI_SUCCESS ? wait_reqs(c, reqs, peer, is_recv, n, what, err)
					   : mpi_fail(err, rc, what, c->seq);
	free(reqs);
	free(peer);
	free(is_recv);
	return s;
}

#else /* built without MPI */

#define NO_MPI(err) \
	DSV32_FAIL(err, DSV32_E_UNSUPPORTED, \
		   "comm mpi: built without MPI (install libopenmpi-dev and rebuild)")

dsv32_status ref_comm_mpi_open(dsv32_comm *c, dsv32_error *err)
{
	(void)c;
	return NO_MPI(err);
}

void ref_comm_mpi_close(dsv32_comm *c)
{
	(void)c;
}

void ref_comm_mpi_abort(dsv32_comm *c, int code)
{
	(void)c;
	(void)code;
}

dsv32_status ref_comm_mpi_allgather(dsv32_comm *c, void *recv, const void *send, size_t bytes,
				      const char *what, dsv32_error *err)
{
	(void)c, (void)recv, (void)send, (void)bytes, (void)what;
	return NO_MPI(err);
}

dsv32_status ref_comm_mpi_bcast(dsv32_comm *c, void *buf, size_t bytes, int root,
				  const char *what, dsv32_error *err)
{
	(void)c, (void)buf, (void)bytes, (void)root, (void)what;
	return NO_MPI(err);
}

#endif
