/*
 * test_plugin.c - functions the integration tests load into tq-worker with
 * --plugin, to observe what happens inside a worker:
 *
 *   span MS          sleeps MS, returns [start_us, end_us, worker name]
 *                    (CLOCK_MONOTONIC is shared by processes on one host)
 *   pid              returns the executor's pid
 *   touch PATH MS    sleeps MS, then creates PATH; returns true
 *   mark PATH MS     creates PATH, then sleeps MS; returns MS (the file says
 *                    "it is running now")
 *   stubborn MS      ignores SIGTERM, sleeps MS, returns MS
 *   segv             dereferences NULL
 *   left             returns [tq_ctx_time_left_ms, now_ms] (now on
 *                    CLOCK_MONOTONIC, as the tests' clock)
 */
#include "tq/worker.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static tq_err read_ms(tq_reader *args, tq_ctx *ctx, uint32_t want_args, int64_t *ms)
{
	uint32_t n;
	if (tq_read_array(args, &n) != TQ_OK || n != want_args)
		return tq_ctx_fail(ctx, "%s: wrong number of arguments", tq_ctx_function(ctx));
	if (want_args == 2) {
		const char *s;
		size_t len;
		if (tq_read_str(args, &s, &len) != TQ_OK)
			return tq_ctx_fail(ctx, "expected a path");
	}
	if (tq_read_int(args, ms) != TQ_OK || *ms < 0)
		return tq_ctx_fail(ctx, "expected milliseconds");
	return TQ_OK;
}

static tq_err span(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	int64_t ms;
	if (read_ms(args, ctx, 1, &ms) != TQ_OK)
		return TQ_EFAILED;
	uint64_t start = now_us();
	sleep_ms(ms);
	tq_pack_array(reply, 3);
	tq_pack_uint(reply, start);
	tq_pack_uint(reply, now_us());
	return tq_pack_str(reply, tq_ctx_worker(ctx));
}

static tq_err pid(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)args;
	(void)ctx;
	return tq_pack_int(reply, getpid());
}

static tq_err touch(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	uint32_t n;
	const char *s;
	size_t len;
	int64_t ms;
	if (tq_read_array(args, &n) != TQ_OK || n != 2 || tq_read_str(args, &s, &len) != TQ_OK ||
	    tq_read_int(args, &ms) != TQ_OK || len >= 512)
		return tq_ctx_fail(ctx, "usage: touch PATH MS");
	char path[512];
	memcpy(path, s, len);
	path[len] = '\0';
	sleep_ms(ms);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return tq_ctx_fail(ctx, "cannot create %s", path);
	close(fd);
	return tq_pack_bool(reply, true);
}

static tq_err mark(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	uint32_t n;
	const char *s;
	size_t len;
	int64_t ms;
	if (tq_read_array(args, &n) != TQ_OK || n != 2 || tq_read_str(args, &s, &len) != TQ_OK ||
	    tq_read_int(args, &ms) != TQ_OK || len >= 512)
		return tq_ctx_fail(ctx, "usage: mark PATH MS");
	char path[512];
	memcpy(path, s, len);
	path[len] = '\0';
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd >= 0)
		close(fd);
	sleep_ms(ms);
	return tq_pack_int(reply, ms);
}

static tq_err stubborn(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	int64_t ms;
	if (read_ms(args, ctx, 1, &ms) != TQ_OK)
		return TQ_EFAILED;
	signal(SIGTERM, SIG_IGN);
	sleep_ms(ms);
	return tq_pack_int(reply, ms);
}

static tq_err segv(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)args;
	(void)reply;
	(void)ctx;
	volatile int *p = NULL;
	return (tq_err)*p;
}

static tq_err left(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)args;
	int64_t ms = tq_ctx_time_left_ms(ctx);
	tq_pack_array(reply, 2);
	tq_pack_int(reply, ms);
	return tq_pack_uint(reply, now_us() / 1000);
}

tq_err tq_plugin_init(tq_worker *w)
{
	tq_err e = tq_worker_register(w, "span", span, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "pid", pid, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "touch", touch, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "mark", mark, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "stubborn", stubborn, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "segv", segv, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "left", left, NULL);
	return e;
}
