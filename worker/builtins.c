/*
 * builtins.c - tq-worker's own functions.
 *
 *   sleep MS     sleeps MS milliseconds, returns MS
 *   echo ARGS... returns its argument list
 *   double N     returns 2*N (integer or float)
 *   fail REASON  fails with REASON
 *   crash        aborts the process running it (SIGABRT)
 *   noop         returns nil at once (for the benchmark)
 *   burn N       spins the CPU for N rounds of a hash, returns the hash
 *                (a CPU-bound task for the parallel speed-up benchmark)
 *   ticks WORD N MS  N times: notes the wall-clock time, then sleeps MS;
 *                returns [[unix_ms, WORD], ...] (the lesson's tick and
 *                tock: what they "printed", and when); N copies of WORD
 *                must fit in a result
 */
#include "worker/builtins.h"

#include "base/clock.h"
#include "proto/wire.h"

#include <stdlib.h>
#include <time.h>

static tq_err one_arg(tq_reader *args, tq_ctx *ctx, const char *usage)
{
	uint32_t n;
	if (tq_read_array(args, &n) != TQ_OK || n != 1)
		return tq_ctx_fail(ctx, "usage: %s", usage);
	return TQ_OK;
}

static tq_err fn_sleep(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	int64_t ms;
	if (one_arg(args, ctx, "sleep MS") != TQ_OK)
		return TQ_EFAILED;
	if (tq_read_int(args, &ms) != TQ_OK || ms < 0 || ms > 86400000)
		return tq_ctx_fail(ctx, "sleep: MS must be an integer from 0 to 86400000");
	tqi_sleep_ms((uint64_t)ms);
	return tq_pack_int(reply, ms);
}

static tq_err fn_echo(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	const uint8_t *list;
	size_t len;
	if (tq_read_value(args, &list, &len) != TQ_OK)
		return tq_ctx_fail(ctx, "echo: unreadable arguments");
	return tq_pack_msgpack(reply, list, len); /* the argument list as it came */
}

static tq_err fn_double(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	if (one_arg(args, ctx, "double N") != TQ_OK)
		return TQ_EFAILED;
	tq_type t;
	if (tq_reader_peek(args, &t) != TQ_OK)
		return tq_ctx_fail(ctx, "double: missing N");
	if (t == TQ_TYPE_INT || t == TQ_TYPE_UINT) {
		int64_t v;
		if (tq_read_int(args, &v) != TQ_OK || v > INT64_MAX / 2 || v < INT64_MIN / 2)
			return tq_ctx_fail(ctx, "double: N out of range");
		return tq_pack_int(reply, 2 * v);
	}
	double d;
	if (tq_read_double(args, &d) != TQ_OK)
		return tq_ctx_fail(ctx, "double: N must be a number");
	return tq_pack_double(reply, 2 * d);
}

static tq_err fn_fail(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)reply;
	uint32_t n;
	const char *s = "failed on purpose";
	size_t len = 17;
	if (tq_read_array(args, &n) == TQ_OK && n >= 1 && tq_read_str(args, &s, &len) != TQ_OK) {
		s = "failed on purpose";
		len = 17;
	}
	return tq_ctx_fail(ctx, "%.*s", (int)len, s);
}

static tq_err fn_crash(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)args;
	(void)reply;
	(void)ctx;
	abort();
}

static tq_err fn_noop(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)args;
	(void)ctx;
	return tq_pack_nil(reply);
}

static tq_err fn_burn(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	int64_t rounds;
	if (one_arg(args, ctx, "burn N") != TQ_OK)
		return TQ_EFAILED;
	if (tq_read_int(args, &rounds) != TQ_OK || rounds < 0)
		return tq_ctx_fail(ctx, "burn: N must be a non-negative integer");
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	for (int64_t i = 0; i < rounds; i++) {
		h ^= (uint64_t)i;
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	return tq_pack_uint(reply, h);
}

static tq_err fn_ticks(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	uint32_t n;
	const char *word;
	size_t len;
	int64_t count, ms;
	if (tq_read_array(args, &n) != TQ_OK || n != 3 || tq_read_str(args, &word, &len) != TQ_OK ||
	    tq_read_int(args, &count) != TQ_OK || tq_read_int(args, &ms) != TQ_OK || count < 0 ||
	    count > 1000 || ms < 0 || ms > 60000)
		return tq_ctx_fail(ctx, "usage: ticks WORD N MS (N up to 1000, MS up to 60000)");
	/* Each tick packs at most 15 bytes besides WORD; WORD came in the
	 * arguments, but N copies of it need not fit in a result. */
	if ((uint64_t)count * (len + 15) + 5 > TQI_DEFAULT_MAX_PAYLOAD)
		return tq_ctx_fail(
		    ctx, "ticks: %lld copies of a %zu-byte WORD pass the %u-byte result limit",
		    (long long)count, len, (unsigned)TQI_DEFAULT_MAX_PAYLOAD);
	tq_pack_array(reply, (uint32_t)count);
	for (int64_t i = 0; i < count; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		tq_pack_array(reply, 2);
		tq_pack_uint(reply, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
		tq_pack_strn(reply, word, len);
		if (i + 1 < count)
			tqi_sleep_ms((uint64_t)ms);
	}
	return tq_buf_error(reply);
}

tq_err tqi_builtins_register(tq_worker *w)
{
	static const struct {
		const char *name;
		tq_handler fn;
	} all[] = { { "sleep", fn_sleep }, { "echo", fn_echo },   { "double", fn_double },
		    { "fail", fn_fail },   { "crash", fn_crash }, { "noop", fn_noop },
		    { "burn", fn_burn },   { "ticks", fn_ticks } };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		tq_err e = tq_worker_register(w, all[i].name, all[i].fn, NULL);
		if (e != TQ_OK)
			return e;
	}
	return TQ_OK;
}
