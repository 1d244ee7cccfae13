/* comm.h: the collectives the reference layout's tensor-parallel ranks use (docs/spec/ref_layout.md
 * §C.9, docs/distributed.md), with three backends:
 *
 *   inproc  every rank runs inside this process (the default; ref/tp.c sums the partials
 *           itself, nothing goes through this interface): rank 0 of 1 process.
 *   mpi     one rank per process (mpirun -np W), CPU; host buffers (ref/comm_mpi.c).
 *   nccl    one rank per GPU, device buffers (ref/comm_nccl.c); the unique id is bootstrapped
 *           over MPI when built with it and launched by mpirun, else from RANK / WORLD_SIZE /
 *           LOCAL_RANK / MASTER_ADDR / MASTER_PORT as torchrun sets them.
 *
 * Semantics (what makes a W-process run bit-identical to the in-process emulation):
 *   allgather  recv[r·bytes .. (r+1)·bytes) = rank r's send, for r in rank order (exact bytes).
 *   bcast      buf of `root` copied to every rank (exact).
 *   barrier    every rank has reached it.
 *   agree      every rank learns every rank's status; any failure becomes the same error on every
 *              rank ("rank R: <its message>"), so all ranks stop together and none writes.
 * There is no all-reduce primitive on purpose: MPI_Allreduce / ncclAllReduce choose their own
 * summation order, so ref/tp.c gathers the partials and sums them in rank order in fp32 with the
 * same ops as the emulation (ref_all_reduce), which is the reference's dtype semantics
 * (bf16 partials, fp32 accumulation, one cast) with a fixed order.
 *
 * Bounded failure: every collective has a deadline (timeout_s, --comm-timeout). A rank that does
 * not deliver in time (dead, hung, never started) ends the collective with DSV32_E_IO naming it:
 * "<what> #N: no data from rank R within S s". The caller (the CLI) then calls dsv32_comm_abort,
 * which ends every rank of the job. Test-only faults (env DSV32_COMM_FAULT, docs/distributed.md):
 * "hang:R:N" rank R stops before its collective N; "die:R:N" rank R is killed (SIGKILL) before
 * collective N; "topk:R" rank R perturbs its indexer selection before the cross-rank check.
 */
#ifndef DSV32_REF_COMM_H
#define DSV32_REF_COMM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef enum {
	DSV32_COMM_INPROC = 0,
	DSV32_COMM_MPI,
	DSV32_COMM_NCCL,
	DSV32_COMM_COUNT
} dsv32_comm_kind;

const char *dsv32_comm_kind_name(dsv32_comm_kind k);
/* "inproc" | "mpi" | "nccl" -> kind; false for anything else. */
bool dsv32_comm_kind_parse(const char *s, dsv32_comm_kind *k);

typedef enum {
	DSV32_COMM_FAULT_NONE = 0,
	DSV32_COMM_FAULT_HANG,
	DSV32_COMM_FAULT_DIE,
	DSV32_COMM_FAULT_TOPK,
	DSV32_COMM_FAULT_COUNT
} dsv32_comm_fault_kind;

typedef struct {
	dsv32_comm_fault_kind kind;
	int rank;
	long at; /* collective number (1-based) for hang / die */
} dsv32_comm_fault;

/* The backend-independent part of a communicator; each backend's state hangs off impl. */
typedef struct dsv32_comm {
	dsv32_comm_kind kind;
	int rank, size;
	double timeout_s;
	long seq;               /* collectives issued so far (numbers the messages) */
	dsv32_comm_fault fault; /* test-only, from DSV32_COMM_FAULT (none in real runs) */
	bool failed_together;   /* an agreement failed: every rank holds the same error */
	void *impl;
} dsv32_comm;

/* Open a communicator. inproc: rank 0 of size 1. mpi: initializes MPI if nobody has (and then
 * finalizes it in close); DSV32_E_UNSUPPORTED "built without MPI" when the build has no MPI.
 * nccl: DSV32_E_UNSUPPORTED without CUDA + NCCL; selects the GPU LOCAL_RANK (else rank). */
dsv32_status dsv32_comm_open(dsv32_comm **out, dsv32_comm_kind kind, double timeout_s,
			     dsv32_error *err);
/* Test-only fault injection (tests/sh_test_mpi.sh; the CLI passes $DSV32_COMM_FAULT): "hang:R:N"
 * or "die:R:N" make rank R hang or die before its N-th collective, "topk:R" perturbs rank R's
 * indexer selection; anything else (or NULL) sets none. Real runs never call it. */
void dsv32_comm_set_fault(dsv32_comm *c, const char *spec);
/* Ends the communicator cleanly (all ranks must call it). NULL is a no-op. */
void dsv32_comm_close(dsv32_comm *c);
/* Ends every rank of the job now (after a failure that peers may not know of); returns for
 * inproc. For the CLI only. */
void dsv32_comm_abort(dsv32_comm *c, int code);

/* More than one process (mpi / nccl with size > 1, or size 1 under those backends). */
static inline bool dsv32_comm_is_distributed(const dsv32_comm *c)
{
	return c && c->kind != DSV32_COMM_INPROC;
}
/* Whether buffers given to the collectives are device pointers (nccl) or host memory. */
static inline bool dsv32_comm_on_device(const dsv32_comm *c)
{
	return c && c->kind == DSV32_COMM_NCCL;
}

dsv32_status dsv32_comm_allgather(dsv32_comm *c, void *recv, const void *send, size_t bytes,
				  const char *what, dsv32_error *err);
dsv32_status dsv32_comm_bcast(dsv32_comm *c, void *buf, size_t bytes, int root, const char *what,
			      dsv32_error *err);
dsv32_status dsv32_comm_barrier(dsv32_comm *c, const char *what, dsv32_error *err);
/* local: this rank's status (err holds its message when failed). Returns DSV32_OK when every
 * rank succeeded; else the first failed rank's code with err = "rank R: <message>" (this rank's
 * own message when it failed itself), or the collective's own failure. Host buffers always. */
dsv32_status dsv32_comm_agree(dsv32_comm *c, dsv32_status local, const char *what,
			      dsv32_error *err);

/* ---- ref/-private: the backends' entry points (comm.c dispatches to them) ---- */
dsv32_status ref_comm_mpi_open(dsv32_comm *c, dsv32_error *err);
void ref_comm_mpi_close(dsv32_comm *c);
void ref_comm_mpi_abort(dsv32_comm *c, int code);
dsv32_status ref_comm_mpi_allgather(dsv32_comm *c, void *recv, const void *send, size_t bytes,
				      const char *what, dsv32_error *err);
dsv32_status ref_comm_mpi_bcast(dsv32_comm *c, void *buf, size_t bytes, int root,
				  const char *what, dsv32_error *err);
dsv32_status ref_comm_nccl_open(dsv32_comm *c, dsv32_error *err);
void ref_comm_nccl_close(dsv32_comm *c);
void ref_comm_nccl_abort(dsv32_comm *c, int code);
dsv32_status ref_comm_nccl_allgather(dsv32_comm *c, void *recv, const void *send, size_t bytes,
				       const char *what, dsv32_error *err);
dsv32_status ref_comm_nccl_bcast(dsv32_comm *c, void *buf, size_t bytes, int root,
				   const char *what, dsv32_error *err);
/* The test fault before collective number c->seq (comm.c): hang or die when it is this rank's. */
void ref_comm_fault_point(dsv32_comm *c);

#endif
