/*
 * tq/worker.h - serving named functions to a tq broker.
 *
 *   static tq_err twice(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
 *   {
 *           uint32_t n;
 *           int64_t v;
 *           if (tq_read_array(args, &n) != TQ_OK || n != 1 || tq_read_int(args, &v) != TQ_OK)
 *                   return tq_ctx_fail(ctx, "usage: twice N");
 *           return tq_pack_int(reply, 2 * v);
 *   }
 *
 *   tq_worker *w;
 *   tq_worker_new(&w, NULL);                 // $TQ_BROKER or tcp://127.0.0.1:5556
 *   tq_worker_register(w, "twice", twice, NULL);
 *   tq_worker_run(w);                        // until tq_worker_stop
 *   tq_worker_destroy(&w);
 *
 * Isolation.  Handlers run in executor processes, one task at a time each,
 * `concurrency` of them, forked from a clean copy of the worker made before
 * any thread or socket exists.  A handler that crashes (SIGSEGV, abort)
 * kills only its executor: the task fails with TQ_ETASKCRASHED naming the
 * signal, a fresh executor takes its place, and the worker serves on.  An
 * executor killed from outside the worker by SIGKILL (the OOM killer, an
 * operator's kill -9) is not its task's fault: the task is reported as
 * TQ_EWORKERLOST and retried like a lost worker's if it has retries.  A
 * task is stopped for real - cancelled, shut down, or past its deadline -
 * by signalling its executor (SIGTERM, then SIGKILL after the grace
 * period).  The cost is one local socket round trip per task and no memory
 * shared between tasks: a handler's globals do not survive into the next
 * process after a crash, and state a handler builds up lives per executor.
 *
 * Running in the loop (isolation = TQ_ISOLATION_NONE) gives that up for
 * speed, as a Gearman worker or Celery's solo pool does: handlers run in
 * the worker's own loop, one task at a time, with no process hop.  A crash
 * then kills the worker (the broker retries or fails what it held, as for
 * any lost worker); a running task cannot be stopped - cancelled, shut down
 * or past its deadline, it runs to its end and its late answer is dropped
 * by the broker; and the loop answers heartbeats only between tasks, so a
 * task that runs longer than the broker's liveness (heartbeat x liveness,
 * 750 ms by default) makes the broker give the worker up.  For short,
 * trusted functions; run one such worker per core.
 *
 * Threads.  tq_worker_run forks; call it before starting threads of your
 * own, and only one worker runs per process.
 */
#ifndef TQ_WORKER_H
#define TQ_WORKER_H

#include <stdint.h>

#include "tq/err.h"
#include "tq/export.h"
#include "tq/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tq_worker tq_worker;

/* What a handler knows about the task it runs. */
typedef struct tq_ctx tq_ctx;

/* A task's code.  args reads the argument list (a msgpack array).  Pack
 * exactly one value into reply and return TQ_OK for success (nothing packed
 * means nil); return the result of tq_ctx_fail to fail the task with a
 * reason.  Any other non-TQ_OK return fails it too.  Runs in an executor
 * process: see "Isolation" above. */
typedef tq_err (*tq_handler)(tq_reader *args, tq_buf *reply, tq_ctx *ctx);

/* tq_worker_opts.prefetch: hold no task beyond concurrency. */
#define TQ_PREFETCH_NONE 0xffffffffu

typedef struct {
	const char *broker;   /* worker endpoint; NULL: $TQ_BROKER, else tcp://127.0.0.1:5556 */
	const char *name;     /* shown in logs, stats and results; NULL: host:pid */
	unsigned concurrency; /* tasks run at once; 0: the number of cores */
	/* Tasks held beyond concurrency, to hide latency.  0: automatic -
	 * as many as take about 2 ms to run by the times measured so far, at
	 * most 256 per executor (so long tasks get none, and no task waits long
	 * behind them); TQ_PREFETCH_NONE: none. */
	unsigned prefetch;
	unsigned heartbeat_ms; /* 0: 250 */
	unsigned liveness;     /* silent intervals before the broker is lost; 0: 3 */
	unsigned drain_ms;     /* on stop, time for held tasks to finish; 0: no limit */
	unsigned isolation;    /* TQ_ISOLATION_PROCESS (0, the default) or _NONE */
} tq_worker_opts;

/* tq_worker_opts.isolation: where handlers run (see "Isolation" above).
 * With TQ_ISOLATION_NONE, concurrency must be 0 or 1 (it is 1). */
enum { TQ_ISOLATION_PROCESS = 0, TQ_ISOLATION_NONE = 1 };

/* Creates a worker; opts may be NULL for the defaults.  Nothing connects
 * until tq_worker_run.  Returns TQ_OK, TQ_EINVAL (bad option) or TQ_ENOMEM. */
TQ_EXPORT tq_err tq_worker_new(tq_worker **out, const tq_worker_opts *opts);

/* Frees *wp (NULL is fine) and sets it to NULL.  Not while running. */
TQ_EXPORT void tq_worker_destroy(tq_worker **wp);

/* Offers function `name` (1..255 bytes), served by fn; arg is handed to fn
 * through tq_ctx_arg.  Before tq_worker_run only.  TQ_EINVAL for a bad or
 * duplicate name, TQ_ESTATE when running, TQ_ENOMEM. */
TQ_EXPORT tq_err tq_worker_register(tq_worker *w, const char *name, tq_handler fn, void *arg);

/* Connects to the broker and serves until stopped, reconnecting by itself
 * (with backoff) whenever the broker goes away.  Returns TQ_OK after a
 * stop, TQ_EINVAL when no function is registered, TQ_ESYS when executors
 * cannot be started. */
TQ_EXPORT tq_err tq_worker_run(tq_worker *w);

/* Asks a running worker to stop; safe from a signal handler.  The first
 * call drains: no new tasks are taken, held ones finish (up to drain_ms),
 * then the worker says goodbye and tq_worker_run returns.  A second call
 * stops at once: running tasks are killed and reported cancelled. */
TQ_EXPORT void tq_worker_stop(tq_worker *w);

/* Fails the task with TQ_EFAILED and the formatted reason (up to 4096
 * bytes); returns TQ_EFAILED, so a handler can `return tq_ctx_fail(...)`. */
TQ_EXPORT tq_err tq_ctx_fail(tq_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The function name the task called (NUL-terminated). */
TQ_EXPORT const char *tq_ctx_function(const tq_ctx *ctx);
/* The arg given to tq_worker_register. */
TQ_EXPORT void *tq_ctx_arg(const tq_ctx *ctx);
/* 1 for the first dispatch, 2 for the first retry, ... */
TQ_EXPORT unsigned tq_ctx_attempt(const tq_ctx *ctx);
/* The task's reference as 32 hex digits. */
TQ_EXPORT const char *tq_ctx_ref(const tq_ctx *ctx);
/* Milliseconds left before the task's deadline, or -1 when it has none. */
TQ_EXPORT int64_t tq_ctx_time_left_ms(const tq_ctx *ctx);
/* The name of the worker running the task. */
TQ_EXPORT const char *tq_ctx_worker(const tq_ctx *ctx);

/* A plugin - a shared object loaded with `tq-worker --plugin x.so` -
 * defines this function to register its functions with w.  Return TQ_OK,
 * or an error to make tq-worker refuse to start. */
#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
tq_err
tq_plugin_init(tq_worker *w);

#ifdef __cplusplus
}
#endif
#endif
