/* cpu_parallel.h: when a CPU body forks OpenMP threads. Private to kernels/ (and tests/, bench/).
 *
 * Every parallel region costs a fork and a join barrier. On idle cores that is a few
 * microseconds, but on a shared machine (CI running tests side by side, a user's busy box) a
 * thread waiting at the barrier for a preempted teammate spins for libgomp's spin count before
 * it sleeps: 300,000 pause instructions, about 20 ms on Intel cores where a pause takes some 140
 * cycles. A tiny-model run that forked 16,000 regions took 0.8 s alone and up to 100 s beside
 * two busy processes on 2 cores (session 10, Xeon with AMX). So a body forks only when its work
 * repays that: at least DSV32_PAR_MIN_WORK scalar operations (elements touched, or multiply-adds
 * for dot products), counted by the caller in double so that no product overflows.
 *
 * Results never depend on it: in every CPU body the iterations of a parallel loop are
 * independent and each output's order of operations is fixed, whatever the team size
 * (tests/test_dump_fixed_hash.c: the tiny dumps' hashes with 1 thread, 2 threads, and 2 threads
 * with every body forking). */
#ifndef DSV32_CPU_PARALLEL_H
#define DSV32_CPU_PARALLEL_H

#include <stdbool.h>

#define DSV32_PAR_MIN_WORK 65536.0

/* True when `work` scalar operations are worth a parallel region. DSV32_PAR_MIN_WORK in the
 * environment replaces the threshold (0: every body forks, as before session 10), so that tests
 * can drive the parallel paths on tiny shapes; it is read once per process, as
 * dsv32_scores_vec_enabled reads DSV32_CPU_NO_AVX2. */
bool dsv32_par_worth(double work);

#endif
