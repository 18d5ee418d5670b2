/*
 * invoke.h - calling a handler on one task and judging what it packed:
 * the part of running a task that is the same in an executor process and
 * in the worker's loop (tq_worker_opts.isolation).
 */
#ifndef TQI_INVOKE_H
#define TQI_INVOKE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"
#include "worker/registry.h"
#include "tq/value.h"

/* What a task came to.  On success (code TQ_OK) data/len are the result
 * bytes - in the reply buffer given to tqi_invoke, or a static nil - valid
 * until that buffer is used again; otherwise text says why. */
typedef struct {
	uint32_t code;
	const uint8_t *data;
	size_t len;
	char text[TQI_MAX_TEXT + 1];
} tqi_outcome;

/* The task as the handler sees it. */
typedef struct {
	const tqi_handler_entry *entry;
	const char *worker;
	uint32_t attempt;
	uint64_t deadline_ms; /* monotonic (tqi_now_ms); 0 = none */
	const uint8_t *ref;   /* 16 bytes */
} tqi_call;

/* Runs call->entry's handler on args (len bytes) with reply as its result
 * buffer (reset first), and fills *out.  The arguments are checked to be
 * one well-formed msgpack value, the result to be one value of at most
 * TQI_DEFAULT_MAX_PAYLOAD bytes; nothing packed is nil.  Never fails
 * itself: every problem is an outcome. */
void tqi_invoke(const tqi_call *call, const uint8_t *args, size_t len, tq_buf *reply,
                tqi_outcome *out);

#endif
