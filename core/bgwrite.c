/* bgwrite.c: a file's writes in order on a background thread (bgwrite.h). */
#include "core/bgwrite.h"
#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct dsv32_bgwrite {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a write handed over, done, or quit */
	int fd, nbuf;
	struct {
		const void *buf;
		size_t len;
		uint64_t off;
	} q[DSV32_BGWRITE_MAX]; /* sent, not yet written: q[head], then on (count of them) */
	int head, count;
	bool quit;
	int err; /* the first error; later writes are dropped */
};

int dsv32_write_direct(int fd, const void *buf, size_t len, uint64_t off)
{
	int e = dsv32_write_full(fd, buf, len, (int64_t)off);
	if (e != EINVAL)
		return e;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || !(fl & O_DIRECT))
		return fl < 0 ? errno : e;
	if (fcntl(fd, F_SETFL, fl & ~O_DIRECT) != 0)
		return errno;
	return dsv32_write_full(fd, buf, len, (int64_t)off);
}

static void *bg_main(void *arg)
{
	dsv32_bgwrite *t = arg;
	pthread_mutex_lock(&t->mu);
	for (;;) {
		while (!t->count && !t->quit)
			pthread_cond_wait(&t->cv, &t->mu);
		if (!t->count)
			break;
		const void *buf = t->q[t->head].buf;
		size_t len = t->q[t->head].len;
		uint64_t off = t->q[t->head].off;
		bool skip = t->err != 0;
		pthread_mutex_unlock(&t->mu);
		int e = skip ? 0 : dsv32_write_direct(t->fd, buf, len, off);
		pthread_mutex_lock(&t->mu);
		if (e && !t->err)
			t->err = e;
		t->head = (t->head + 1) % t->nbuf;
		t->count--;
		pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int dsv32_bgwrite_start(dsv32_bgwrite **out, int fd, int nbuf)
{
	*out = NULL;
	if (nbuf < 2 || nbuf > DSV32_BGWRITE_MAX)
		return EINVAL;
	dsv32_bgwrite *t = calloc(1, sizeof *t);
	if (!t)
		return ENOMEM;
	t->fd = fd;
	t->nbuf = nbuf;
	int e = pthread_mutex_init(&t->mu, NULL);
	if (!e && (e = pthread_cond_init(&t->cv, NULL)) != 0)
		pthread_mutex_destroy(&t->mu);
	if (!e && (e = pthread_create(&t->th, NULL, bg_main, t)) != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
	}
	if (e) {
		free(t);
		return e;
	}
	*out = t;
	return 0;
}

/* With mu held: until at most most writes are pending; the first error. */
static int wait_pending(dsv32_bgwrite *t, int most)
{
	while (t->count > most)
		pthread_cond_wait(&t->cv, &t->mu);
	return t->err;
}

int dsv32_bgwrite_send(dsv32_bgwrite *t, const void *buf, size_t len, uint64_t off)
{
	pthread_mutex_lock(&t->mu);
	int e = t->err;
	if (!e) {
		int i = (t->head + t->count) % t->nbuf;
		t->q[i].buf = buf;
		t->q[i].len = len;
		t->q[i].off = off;
		t->count++;
		pthread_cond_broadcast(&t->cv);
		wait_pending(t, t->nbuf - 1);
	}
	pthread_mutex_unlock(&t->mu);
	return e;
}

int dsv32_bgwrite_drain(dsv32_bgwrite *t)
{
	pthread_mutex_lock(&t->mu);
	int e = wait_pending(t, 0);
	pthread_mutex_unlock(&t->mu);
	return e;
}

void dsv32_bgwrite_stop(dsv32_bgwrite *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	wait_pending(t, 0);
	t->quit = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->th, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
