/* comm_nccl.c: the NCCL backend of ref/comm.h: one rank per GPU, device buffers (host ones staged).
 * The unique id travels over MPI when mpirun started the job (OMPI_COMM_WORLD_SIZE set), else over
 * TCP to MASTER_ADDR:MASTER_PORT+1 (torchrun's RANK, WORLD_SIZE, LOCAL_RANK; its store holds
 * MASTER_PORT). Waits poll against the deadline; a collective past it aborts the communicator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/comm.h"

#if DSV32_HAVE_CUDA && DSV32_HAVE_NCCL
#include <arpa/inet.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	ncclComm_t comm;
	cudaStream_t stream;
	dsv32_comm *boot; /* the MPI communicator used for the bootstrap, or NULL */
	/* Device staging for host buffers, kept across collectives: a decode step makes several
	 * small ones, and a cudaMalloc/cudaFree pair each would synchronise the device every time. */
	char *stage;
	size_t stage_bytes;
} nccl_impl;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void nap(void)
{
	struct timespec ts = {0, 50000};
	nanosleep(&ts, NULL);
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

/* Rank 0 serves the id to size - 1 connections; the others fetch it, until the deadline. */
static dsv32_status tcp_bootstrap(dsv32_comm *c, ncclUniqueId *id, dsv32_error *err)
{
	const char *addr = getenv("MASTER_ADDR");
	int port = env_int("MASTER_PORT", 29500) + 1;
	double deadline = now_s() + c->timeout_s;
	if (!addr)
		addr = "127.0.0.1";
	if (c->rank == 0) {
		int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		sa.sin_addr.s_addr = htonl(INADDR_ANY);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) || listen(s, 64)) {
			if (s >= 0)
				close(s);
			return DSV32_FAIL(err, DSV32_E_IO, "comm nccl: cannot listen on port %d", port);
		}
		for (int served = 1; served < c->size; served++) {
			fd_set fs;
			FD_ZERO(&fs);
			FD_SET(s, &fs);
			double left = deadline - now_s();
			struct timeval tv = {(time_t)(left > 0 ? left : 0), 0};
			int cs = select(s + 1, &fs, NULL, NULL, &tv) > 0 ? accept(s, NULL, NULL) : -1;
			if (cs < 0) {
				close(s);
				return DSV32_FAIL(err, DSV32_E_IO, "comm nccl: %d of %d ranks connected to "
						  "port %d within %g s", served, c->size, port,
						  c->timeout_s);
			}
			ssize_t w = write(cs, id, sizeof *id);
			close(cs);
			if (w != (ssize_t)sizeof *id) {
				close(s);
				return DSV32_FAIL(err, DSV32_E_IO, "comm nccl: sending the unique id");
			}
		}
		close(s);
		return DSV32_OK;
	}
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	char ps[16];
	snprintf(ps, sizeof ps, "%d", port);
	if (getaddrinfo(addr, ps, &hints, &ai) || !ai)
		return DSV32_FAIL(err, DSV32_E_IO, "comm nccl: MASTER_ADDR %s does not resolve", addr);
	dsv32_status rc = DSV32_E_IO;
	while (rc != DSV32_OK && now_s() < deadline) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s >= 0 && !connect(s, ai->ai_addr, ai->ai_addrlen)) {
			size_t got = 0;
			while (got < sizeof *id) {
				ssize_t r = read(s, (char *)id + got, sizeof *id - got);
				if (r <= 0)
					break;
				got += (size_t)r;
			}
			rc = got == sizeof *id ? DSV32_OK : DSV32_E_IO;
		}
		if (s >= 0)
			close(s);
		if (rc != DSV32_OK) {
			struct timespec ts = {0, 100000000};
			nanosleep(&ts, NULL);
		}
	}
	freeaddrinfo(ai);
	if (rc != DSV32_OK)
		return DSV32_FAIL(err, DSV32_E_IO, "comm nccl: rank %d got no unique id from rank 0 at "
				  "%s:%d within %g s", c->rank, addr, port, c->timeout_s);
	return DSV32_OK;
}

/* Wait for the communicator (init or a collective) until the deadline; abort it on timeout. */
static dsv32_status wait_comm(dsv32_comm *c, nccl_impl *im, bool stream, const char *what,
			      dsv32_error *err)
{
	double deadline = now_s() + c->timeout_s;
	for (;;) {
		ncclResult_t st = ncclSuccess;
		ncclResult_t q = ncclCommGetAsyncError(im->comm, &st);
		if (q != ncclSuccess || (st != ncclSuccess && st != ncclInProgress))
			return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)(q != ncclSuccess ? q : st),
					      "nccl %s #%ld on rank %d: %s", what, c->seq, c->rank,
					      ncclGetErrorString(q != ncclSuccess ? q : st));
		bool done = st == ncclSuccess;
		if (done && stream) {
			cudaError_t ce = cudaStreamQuery(im->stream);
			if (ce != cudaSuccess && ce != cudaErrorNotReady)
				return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "nccl %s: %s", what,
						      cudaGetErrorString(ce));
			done = ce == cudaSuccess;
		}
		if (done)
			return DSV32_OK;
		if (now_s() > deadline) {
			ncclCommAbort(im->comm);
			im->comm = NULL;
			return DSV32_FAIL(err, DSV32_E_IO, "nccl %s #%ld on rank %d: not finished within "
					  "%g s (--comm-timeout): a rank died or hangs", what, c->seq,
					  c->rank, c->timeout_s);
		}
		nap();
	}
}

dsv32_status ref_comm_nccl_open(dsv32_comm *c, dsv32_error *err)
{
	nccl_impl *im = calloc(1, sizeof *im);
	if (!im)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "comm nccl");
	dsv32_status rc = DSV32_OK;
	ncclUniqueId id;
	memset(&id, 0, sizeof id);
	if (getenv("OMPI_COMM_WORLD_SIZE") &&
	    dsv32_comm_open(&im->boot, DSV32_COMM_MPI, c->timeout_s, NULL) == DSV32_OK) {
		c->rank = im->boot->rank;
		c->size = im->boot->size;
	} else {
		c->rank = env_int("RANK", 0);
		c->size = env_int("WORLD_SIZE", 1);
	}
	if (c->size < 1 || c->rank < 0 || c->rank >= c->size) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "comm nccl: RANK %d outside WORLD_SIZE %d",
				c->rank, c->size);
		goto out_fail;
	}
	int ndev = 0;
	cudaError_t ce = cudaGetDeviceCount(&ndev);
	if (ce != cudaSuccess || ndev < 1) {
		rc = DSV32_FAIL(err, DSV32_E_CUDA, "comm nccl: no CUDA device (%s)",
				cudaGetErrorString(ce));
		goto out_fail;
	}
	int dev = env_int("LOCAL_RANK", env_int("OMPI_COMM_WORLD_LOCAL_RANK", c->rank)) % ndev;
	cudaSetDevice(dev);
	if (c->rank == 0 && ncclGetUniqueId(&id) != ncclSuccess) {
		rc = DSV32_FAIL(err, DSV32_E_CUDA, "comm nccl: ncclGetUniqueId failed");
		goto out_fail;
	}
	if (im->boot)
		rc = dsv32_comm_bcast(im->boot, &id, sizeof id, 0, "nccl unique id", err);
	else if (c->size > 1)
		rc = tcp_bootstrap(c, &id, err);
	if (rc != DSV32_OK)
		goto out_fail;
	if (cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking) != cudaSuccess) {
		rc = DSV32_FAIL(err, DSV32_E_CUDA, "comm nccl: stream");
		goto out_fail;
	}
	ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
	cfg.blocking = 0;
	ncclResult_t nr = ncclCommInitRankConfig(&im->comm, c->size, id, c->rank, &cfg);
	if (nr != ncclSuccess && nr != ncclInProgress) {
		rc = DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)nr, "comm nccl: init on rank %d: %s",
				    c->rank, ncclGetErrorString(nr));
		goto out_fail;
	}
	rc = wait_comm(c, im, false, "init", err);
	if (rc != DSV32_OK)
		goto out_fail;
	c->impl = im;
	return DSV32_OK;
out_fail:
	if (im->comm)
		ncclCommAbort(im->comm);
	if (im->stream)
		cudaStreamDestroy(im->stream);
	dsv32_comm_close(im->boot);
	free(im);
	return rc;
}

void ref_comm_nccl_close(dsv32_comm *c)
{
	nccl_impl *im = c->impl;
	if (!im)
		return;
	if (im->comm)
		ncclCommDestroy(im->comm);
	cudaFree(im->stage);
	cudaStreamDestroy(im->stream);
	dsv32_comm_close(im->boot);
	free(im);
	c->impl = NULL;
}

void ref_comm_nccl_abort(dsv32_comm *c, int code)
{
	nccl_impl *im = c->impl;
	if (im && im->comm) {
		ncclCommAbort(im->comm);
		im->comm = NULL;
	}
	if (im && im->boot)
		dsv32_comm_abort(im->boot, code);
}

static bool is_device_ptr(const void *p)
{
	struct cudaPointerAttributes a;
	if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
		cudaGetLastError();
		return false;
	}
	return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

/* The staging buffer, grown to at least bytes (its contents are not kept). */
static dsv32_status stage_reserve(nccl_impl *im, size_t bytes, const char *what, dsv32_error *err)
{
	if (bytes <= im->stage_bytes)
		return DSV32_OK;
	cudaFree(im->stage);
	im->stage = NULL;
	im->stage_bytes = 0;
	if (cudaMalloc((void **)&im->stage, bytes) != cudaSuccess) {
		cudaGetLastError();
		im->stage = NULL;
		return DSV32_FAIL(err, DSV32_E_NOMEM, "nccl %s: staging %zu bytes", what, bytes);
	}
	im->stage_bytes = bytes;
	return DSV32_OK;
}

static dsv32_status copy_checked(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k,
				 const char *what, dsv32_error *err)
{
	cudaError_t ce = cudaMemcpy(dst, src, bytes, k);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "nccl %s: staging copy of %zu bytes: %s",
				      what, bytes, cudaGetErrorString(ce));
	return DSV32_OK;
}

static dsv32_status issued(dsv32_comm *c, nccl_impl *im, ncclResult_t nr, const char *what,
			   dsv32_error *err)
{
	if (nr != ncclSuccess && nr != ncclInProgress)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)nr, "nccl %s: %s", what,
				      ncclGetErrorString(nr));
	return wait_comm(c, im, true, what, err);
}

/* A collective on device memory: host buffers go through the staging buffer (recv in front,
 * the send slice behind it). */
dsv32_status ref_comm_nccl_allgather(dsv32_comm *c, void *recv, const void *send, size_t bytes,
				       const char *what, dsv32_error *err)
{
	nccl_impl *im = c->impl;
	if (!im->comm)
		return DSV32_FAIL(err, DSV32_E_IO, "nccl %s: the communicator was aborted", what);
	size_t all = bytes * (size_t)c->size;
	if (is_device_ptr(recv))
		return issued(c, im, ncclAllGather(send, recv, bytes, ncclUint8, im->comm,
						   im->stream), what, err);
	DSV32_TRY(stage_reserve(im, all + bytes, what, err));
	DSV32_TRY(copy_checked(im->stage + all, send, bytes, cudaMemcpyHostToDevice, what, err));
	DSV32_TRY(issued(c, im, ncclAllGather(im->stage + all, im->stage, bytes, ncclUint8,
					      im->comm, im->stream), what, err));
	return copy_checked(recv, im->stage, all, cudaMemcpyDeviceToHost, what, err);
}

dsv32_status ref_comm_nccl_bcast(dsv32_comm *c, void *buf, size_t bytes, int root,
				   const char *what, dsv32_error *err)
{
	nccl_impl *im = c->impl;
	if (!im->comm)
		return DSV32_FAIL(err, DSV32_E_IO, "nccl %s: the communicator was aborted", what);
	if (is_device_ptr(buf))
		return issued(c, im, ncclBroadcast(buf, buf, bytes, ncclUint8, root, im->comm,
						   im->stream), what, err);
	DSV32_TRY(stage_reserve(im, bytes, what, err));
	DSV32_TRY(copy_checked(im->stage, buf, bytes, cudaMemcpyHostToDevice, what, err));
	DSV32_TRY(issued(c, im, ncclBroadcast(im->stage, im->stage, bytes, ncclUint8, root,
					      im->comm, im->stream), what, err));
	return copy_checked(buf, im->stage, bytes, cudaMemcpyDeviceToHost, what, err);
}

#else /* no CUDA or no NCCL in this build */

#define NO_NCCL(err) \
	DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "comm nccl: built without CUDA + NCCL")

dsv32_status ref_comm_nccl_open(dsv32_comm *c, dsv32_error *err)
{
	(void)c;
	return NO_NCCL(err);
}

void ref_comm_nccl_close(dsv32_comm *c)
{
	(void)c;
}

void ref_comm_nccl_abort(dsv32_comm *c, int code)
{
	(void)c;
	(void)code;
}

dsv32_status ref_comm_nccl_allgather(dsv32_comm *c, void *recv, const void *send, size_t bytes,
				       const char *what, dsv32_error *err)
{
	(void)c, (void)recv, (void)send, (void)bytes, (void)what;
	return NO_NCCL(err);
}

dsv32_status ref_comm_nccl_bcast(dsv32_comm *c, void *buf, size_t bytes, int root,
				   const char *what, dsv32_error *err)
{
	(void)c, (void)buf, (void)bytes, (void)root, (void)what;
	return NO_NCCL(err);
}

#endif
