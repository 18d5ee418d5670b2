/*
 * invoke.c - tq_ctx, and one handler call with the checks around it.
 */
#include "worker/invoke.h"

#include "base/clock.h"
#include "base/hex.h"
#include "tq/worker.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct tq_ctx {
	const tqi_handler_entry *entry;
	const char *worker;
	unsigned attempt;
	uint64_t deadline_ms;  /* monotonic; 0 = none */
	const uint8_t *refbin; /* 16 bytes */
	char ref[33];          /* refbin in hex, made when first asked for */
	char error[TQI_MAX_TEXT + 1];
	bool failed;
};

tq_err tq_ctx_fail(tq_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
	va_end(ap);
	ctx->failed = true;
	return TQ_EFAILED;
}

const char *tq_ctx_function(const tq_ctx *ctx)
{
	return ctx->entry->name;
}

void *tq_ctx_arg(const tq_ctx *ctx)
{
	return ctx->entry->arg;
}

unsigned tq_ctx_attempt(const tq_ctx *ctx)
{
	return ctx->attempt;
}

const char *tq_ctx_ref(const tq_ctx *ctx)
{
	tq_ctx *c = (tq_ctx *)ctx; /* a cache: the context is the handler's for one call */
	if (c->ref[0] == '\0')
		tqi_hex(c->refbin, 16, c->ref);
	return c->ref;
}

int64_t tq_ctx_time_left_ms(const tq_ctx *ctx)
{
	if (ctx->deadline_ms == 0)
		return -1;
	uint64_t now = tqi_now_ms();
	return now >= ctx->deadline_ms ? 0 : (int64_t)(ctx->deadline_ms - now);
}

const char *tq_ctx_worker(const tq_ctx *ctx)
{
	return ctx->worker;
}

static void fail(tqi_outcome *out, uint32_t code, const char *text)
{
	out->code = code;
	out->data = NULL;
	out->len = 0;
	snprintf(out->text, sizeof out->text, "%s", text);
}

void tqi_invoke(const tqi_call *call, const uint8_t *args, size_t len, tq_buf *reply,
                tqi_outcome *out)
{
	static const uint8_t nil = 0xc0;
	/* Field by field: an initialiser would clear the 4 KiB error buffer
	 * for every task. */
	tq_ctx ctx;
	ctx.entry = call->entry;
	ctx.worker = call->worker;
	ctx.attempt = call->attempt;
	ctx.deadline_ms = call->deadline_ms;
	ctx.refbin = call->ref;
	ctx.ref[0] = '\0';
	ctx.error[0] = '\0';
	ctx.failed = false;
	if (tq_value_check(args, len, 0) != TQ_OK) {
		fail(out, TQ_EFAILED, "arguments are not one well-formed msgpack value");
		return;
	}
	tq_reader r;
	tq_reader_init(&r, args, len);
	tq_buf_reset(reply);
	tq_err e = ctx.entry->fn(&r, reply, &ctx);
	if (e != TQ_OK || ctx.failed) {
		if (!ctx.failed)
			snprintf(ctx.error, sizeof ctx.error, "handler returned %s", tq_errname(e));
		fail(out, TQ_EFAILED, ctx.error);
		return;
	}
	if (tq_buf_error(reply) != TQ_OK) {
		fail(out, TQ_EFAILED, "handler's result could not be packed");
		return;
	}
	out->code = TQ_OK;
	out->text[0] = '\0';
	if (tq_buf_size(reply) == 0) {
		out->data = &nil;
		out->len = 1;
		return;
	}
	/* The broker takes no larger payload (and the loop no larger frame):
	 * say so, rather than have the task's carrier fail for it. */
	if (tq_buf_size(reply) > TQI_DEFAULT_MAX_PAYLOAD) {
		char why[128];
		snprintf(why, sizeof why, "result too large: %zu bytes, the limit is %u",
		         tq_buf_size(reply), (unsigned)TQI_DEFAULT_MAX_PAYLOAD);
		fail(out, TQ_ETOOBIG, why);
		return;
	}
	if (tq_value_check(tq_buf_data(reply), tq_buf_size(reply), 0) != TQ_OK) {
		fail(out, TQ_EFAILED, "handler packed more or less than one value");
		return;
	}
	out->data = tq_buf_data(reply);
	out->len = tq_buf_size(reply);
}
