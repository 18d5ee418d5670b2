/*
 * tq/tq.h - all of tq's public API in one include.
 *
 *   tq/client.h  Task.start, async, await, yield, shutdown, await_many,
 *                yield_many: running tasks on workers and waiting for them
 *   tq/stream.h  Task.async_stream: a bounded-concurrency map
 *   tq/worker.h  serving functions to a broker, as a program or a plugin
 *   tq/value.h   building and reading arguments and results (MessagePack)
 *   tq/err.h     the one error space: tq_err, tq_strerror, tq_errname
 *
 * Link with -ltq (pkg-config tq, or the CMake target tq::tq).
 */
#ifndef TQ_TQ_H
#define TQ_TQ_H

#include "tq/err.h"
#include "tq/value.h"
#include "tq/client.h"
#include "tq/stream.h"
#include "tq/worker.h"

#endif
