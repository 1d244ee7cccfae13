/* bgwrite.h: a file's writes in order on a background thread, for the safetensors writer's
 * O_DIRECT stages (core/st_writer.c): the caller fills one buffer while the disk takes the
 * ones before it, so the disk never waits for the caller to wake up. One thread per writer;
 * no state beyond the handle. */
#ifndef DSV32_BGWRITE_H
#define DSV32_BGWRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct dsv32_bgwrite dsv32_bgwrite;

#define DSV32_BGWRITE_MAX 8 /* buffers in rotation at most */

/* All len bytes of buf at file offset off: O_DIRECT where the fd has it, and where the device
 * refuses that write (EINVAL: stricter alignment), the fd leaves O_DIRECT and the same bytes go
 * through the page cache. 0 or an errno. */
int dsv32_write_direct(int fd, const void *buf, size_t len, uint64_t off);

/* A writer thread for fd whose caller rotates nbuf (2 .. DSV32_BGWRITE_MAX) buffers: 0, or an
 * errno (then *out is NULL). */
int dsv32_bgwrite_start(dsv32_bgwrite **out, int fd, int nbuf);
/* Queues dsv32_write_direct(buf, len, off) (writes happen in the order sent) and returns once
 * at most nbuf - 1 sent buffers are not written yet: the buffer sent nbuf - 1 sends before
 * this one is then free again. Returns the first error of an earlier write (buf not sent). */
int dsv32_bgwrite_send(dsv32_bgwrite *t, const void *buf, size_t len, uint64_t off);
/* Waits until every write sent is done: 0 or the first error. */
int dsv32_bgwrite_drain(dsv32_bgwrite *t);
/* Drain, end the thread, free t (NULL: nothing). */
void dsv32_bgwrite_stop(dsv32_bgwrite *t);

#endif
