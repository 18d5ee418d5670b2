/*
 * tq/stream.h - Task.async_stream: a bounded-concurrency map.
 *
 *   static int next_line(void *arg, tq_buf *args) { ... pack one argument list ...; return 1; }
 *
 *   tq_stream *s;
 *   tq_client_async_stream(c, "double", next_line, &input, NULL, &s);
 *   tq_stream_item it;
 *   tq_err e;
 *   while ((e = tq_stream_next(s, &it)) == TQ_OK)
 *           ... it.index, it.outcome, it.result ...
 *   // e == TQ_EEND: every input has its item; otherwise the stream failed
 *   tq_stream_destroy(&s);
 *
 * Inputs are pulled from `next` only as slots free up, so a million inputs
 * never sit in memory at once: at most max_concurrency tasks run, and (when
 * ordered) at most 2 x max_concurrency outcomes wait for the ones before
 * them.  Each task's timeout starts when it is submitted, as in Elixir.
 * A task that fails is an item with its error (like Task.async_stream's
 * {:exit, reason}); it does not stop the stream.
 *
 * Lifetimes (see tq/client.h): destroy the stream before its client, and
 * read an item before the next tq_stream_next, which frees it.
 */
#ifndef TQ_STREAM_H
#define TQ_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tq/client.h"
#include "tq/err.h"
#include "tq/export.h"
#include "tq/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tq_stream tq_stream;

/* Produces the next input: packs its argument list into args (empty on
 * entry) and returns 1, returns 0 when there are no more inputs, or a
 * negative number to fail the stream (TQ_EINVAL, once the items of the
 * inputs before are yielded; it is not called again).  An input whose
 * arguments tq_client_async refuses - not exactly one msgpack value
 * (nothing packed, two values, nested too deep: TQ_EINVAL) or over the
 * payload limit (TQ_ETOOBIG) - runs no task: it is an item with that
 * outcome, and the stream goes on. */
typedef int (*tq_stream_input)(void *arg, tq_buf *args);

typedef enum {
	TQ_ON_TIMEOUT_EXIT = 0, /* a task that times out fails the whole stream */
	TQ_ON_TIMEOUT_KILL_TASK /* it is cancelled and yields a TQ_ETIMEDOUT item */
} tq_on_timeout;

typedef struct {
	/* Tasks running at once, at most 1,000,000.  0: the slots
	 * (concurrency) of the workers that offer the function now, as the
	 * broker reports them (capped the same way); when the broker does not
	 * answer or reports none, the number of CPUs online here. */
	unsigned max_concurrency;
	bool unordered; /* yield items as they finish, not in input order */
	/* Per task, from its submission; 0: 5000; TQ_INFINITY: none of the
	 * stream's own (the broker's bound still ends each task, as for a
	 * tq_task_opts.timeout_ms of 0).  Other negative values are
	 * TQ_EINVAL. */
	int64_t timeout_ms;
	tq_on_timeout on_timeout;
	unsigned retries; /* per task, as tq_task_opts.retries */
} tq_stream_opts;

/* One outcome: a task's, or a refused input's (see tq_stream_input).
 * Its pointers stay valid until the next tq_stream_next or
 * tq_stream_destroy, and no longer: copy what must outlive them. */
typedef struct {
	size_t index;          /* the input's position, from 0 */
	tq_err outcome;        /* TQ_OK, the task's error, or the refusal's */
	const uint8_t *result; /* msgpack, when outcome is TQ_OK */
	size_t len;
	const char *error;  /* the explanation, "" on success */
	const char *worker; /* who ran it, "" if none did */
} tq_stream_item;

/* Starts mapping fn over the inputs that `input` produces.  Nothing is
 * submitted until the first tq_stream_next.  opts may be NULL.  With
 * max_concurrency 0 this asks the broker for its stats and so blocks until
 * it answers, at most the client's broker timeout; otherwise it does not
 * block.  Returns TQ_OK, TQ_EINVAL or TQ_ENOMEM.  The stream belongs to c's
 * thread, and is destroyed before c; tq_client_destroy cancels a stream
 * left behind, which then fails with TQ_ESTATE (see tq_stream_next). */
TQ_EXPORT tq_err tq_client_async_stream(tq_client *c, const char *fn, tq_stream_input input,
                                        void *arg, const tq_stream_opts *opts, tq_stream **out);

/* Waits for the next item.  TQ_OK: *item holds it.  TQ_EEND: every input
 * has been yielded.  Any other error fails the stream, and later calls
 * return the same error: TQ_EINVAL when the input callback failed (after
 * the items of the inputs before it); TQ_ETIMEDOUT when a task timed out
 * under TQ_ON_TIMEOUT_EXIT; TQ_ETRANSPORT or TQ_ENOMEM when the client
 * could not submit a task or wait; TQ_ESTATE when the client was destroyed
 * before the stream ended (one that had ended still answers TQ_EEND).  In
 * all but the first case the tasks still running are cancelled and the
 * outcomes not yet yielded are dropped; tq_stream_error explains. */
TQ_EXPORT tq_err tq_stream_next(tq_stream *s, tq_stream_item *item);

/* The stream's failure explained, "" if none. */
TQ_EXPORT const char *tq_stream_error(const tq_stream *s);

/* Inputs consumed and items yielded so far. */
TQ_EXPORT size_t tq_stream_submitted(const tq_stream *s);
TQ_EXPORT size_t tq_stream_yielded(const tq_stream *s);

/* Cancels what still runs and frees the stream.  Accepts NULL. */
TQ_EXPORT void tq_stream_destroy(tq_stream **sp);

#ifdef __cplusplus
}
#endif
#endif
