/*
 * tq/client.h - Elixir's Task, across machines.
 *
 *   tq_client *c;
 *   tq_client_new(&c, NULL);                 // $TQ_BROKER or tcp://127.0.0.1:5555
 *   tq_task *t;
 *   tq_client_async_json(c, "double", "[21]", NULL, &t);
 *   if (tq_task_await(t, TQ_DEFAULT_TIMEOUT) == TQ_OK) {
 *           int64_t v;
 *           tq_task_result_int(t, &v);       // 42
 *   } else {
 *           puts(tq_task_error(t));          // "task 3f2a1b0c (double) timed out after 5000 ms"
 *   }
 *   tq_task_destroy(&t);
 *   tq_client_destroy(&c);
 *
 * Every task ends in a result or a named error within its timeout, and no
 * result is delivered twice - also when workers, clients or the broker die.
 *
 * Lifetimes.  Three rules; breaking the first two is checked, not undefined.
 *  - A task handle may outlive its client, and must still be destroyed.
 *    After tq_client_destroy its waits (await, yield, shutdown) answer
 *    TQ_ESTATE, the _many forms TQ_EINVAL; it still tells its outcome,
 *    result and error (a task pending then ended TQ_ECANCELLED).  Names
 *    come from the client: tq_task_function and tq_task_worker answer ""
 *    from then on, and the strings they returned before are gone.
 *  - A stream (tq/stream.h) is destroyed before its client.  One that is
 *    not is cancelled with it: tq_stream_next answers TQ_ESTATE, and
 *    tq_stream_destroy still frees it.
 *  - What a handle points to (tq_task_result, tq_task_error, tq_task_ref)
 *    lives until the handle is destroyed; what a stream item points to,
 *    until the next tq_stream_next or tq_stream_destroy.
 *
 * Threads.  A client and its tasks are used by one thread at a time, like
 * a ZeroMQ socket: calls on one client must not overlap.  Threads that want
 * tasks of their own each create their own client (they are cheap: one
 * socket); clients share nothing.
 *
 * Blocking.  Only the calls that wait (await, yield, shutdown, start, the
 * _many forms, stats) block, for at most their timeout; tq_task_status
 * reads what has arrived without waiting.  While a call
 * waits it also watches the broker: if the broker goes silent or restarts,
 * tasks submitted with retries are resubmitted, and the others end with
 * TQ_EBROKERLOST, well before their timeout.  The same when the connection
 * to the broker breaks and comes back: the broker keeps the client's tasks
 * through a short break (up to 4 heartbeat intervals, at least 1 s), and
 * what the broken connection swallowed - an answer, a submission - is
 * found and handled so, at once.
 */
#ifndef TQ_CLIENT_H
#define TQ_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tq/err.h"
#include "tq/export.h"
#include "tq/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Task.await's default: 5000 ms. */
#define TQ_DEFAULT_TIMEOUT 5000
/* Wait without a time limit (:infinity). */
#define TQ_INFINITY (-1)
/* tq_task_shutdown's grace period that kills at once (:brutal_kill). */
#define TQ_BRUTAL_KILL 0

typedef struct tq_client tq_client;
typedef struct tq_task tq_task;

typedef struct {
	const char *broker;    /* client endpoint; NULL: $TQ_BROKER, else tcp://127.0.0.1:5555 */
	const char *name;      /* shown in the broker's logs and to workers; NULL: host:pid */
	int broker_timeout_ms; /* broker silence that fails tasks without retries; 0: 2000 */
} tq_client_opts;

/* Creates a client; opts may be NULL.  Does not wait for the broker: the
 * connection is made in the background and re-made whenever it breaks.
 * Returns TQ_OK, TQ_EINVAL (bad endpoint or option) or TQ_ENOMEM. */
TQ_EXPORT tq_err tq_client_new(tq_client **out, const tq_client_opts *opts);

/* Closes the client.  Tasks still pending are given up (the broker cancels
 * them, as a caller's exit kills its linked tasks): they end TQ_ECANCELLED,
 * and tq_task_error says why.  Handles not destroyed yet stay valid, and
 * streams not destroyed yet are cancelled and fail (see Lifetimes above).
 * Messages still queued (a cancel, an ignore) get up to the broker timeout
 * to go out, so this may block that long when the broker is unreachable.
 * Accepts NULL; sets *cp to NULL. */
TQ_EXPORT void tq_client_destroy(tq_client **cp);

typedef struct {
	/* Task deadline in ms from submission.  0 is not "for ever" but the
	 * broker's bound (tq-broker --max-task-time, one hour by default), and
	 * a longer deadline is cut to that bound: there the task ends with
	 * TQ_ETIMEDOUT (stopped if it was running), or TQ_ENOWORKER when no
	 * worker that is not draining offers it.  An async task also gets its await's
	 * timeout as a deadline when the await starts. */
	int64_t timeout_ms;
	/* Times the task may be dispatched again when its worker or the
	 * broker is lost (0..255), or the executor process running it is
	 * killed from outside the worker (SIGKILL from the OOM killer or an
	 * operator).  A task that fails or crashes by itself (TQ_EFAILED,
	 * TQ_ETASKCRASHED: SIGSEGV, abort), runs past its deadline or is
	 * cancelled is not retried: it would end the same way again.  Only
	 * for tasks that are safe to run twice: a lost worker may have done
	 * part of the work. */
	unsigned retries;
	/* async: when an await times out, leave the task running (an Elixir
	 * task that is not linked).  Default: the task is cancelled. */
	bool keep_on_timeout;
} tq_task_opts;

/* Task.async: submits function `fn` with args (one msgpack value, by
 * convention the argument list; NULL means no arguments) and returns at
 * once with *out, a handle that the caller destroys.  The task runs while
 * the caller does other work.  opts may be NULL.  Returns TQ_OK, TQ_EINVAL
 * (bad name, malformed args), TQ_ETOOBIG, TQ_ESTATE (client closed) or
 * TQ_ENOMEM; a failure of the task itself is reported by await. */
TQ_EXPORT tq_err tq_client_async(tq_client *c, const char *fn, const void *args, size_t len,
                                 const tq_task_opts *opts, tq_task **out);
/* The same with the arguments written as JSON text ("[1, \"two\"]"). */
TQ_EXPORT tq_err tq_client_async_json(tq_client *c, const char *fn, const char *json,
                                      const tq_task_opts *opts, tq_task **out);

/* Task.start: fire and forget.  Blocks only until the broker has accepted
 * the task (at most the client's broker timeout), never until it runs; no
 * result is kept and the task outlives the caller.  ref_hex, when not
 * NULL, receives the task's reference (33 bytes).  Returns TQ_OK when
 * accepted, or why not (TQ_EBROKERLOST, TQ_EBUSY, TQ_EINVAL, ...). */
TQ_EXPORT tq_err tq_client_start(tq_client *c, const char *fn, const void *args, size_t len,
                                 const tq_task_opts *opts, char *ref_hex);
TQ_EXPORT tq_err tq_client_start_json(tq_client *c, const char *fn, const char *json,
                                      const tq_task_opts *opts, char *ref_hex);

/* Task.await: waits up to timeout_ms (TQ_INFINITY: no limit) for the
 * task's outcome.  TQ_OK: the result is in tq_task_result.  Otherwise the
 * task's error: TQ_EFAILED (the handler's reason), TQ_ETASKCRASHED (the
 * handler crashed its executor), TQ_EWORKERLOST (its worker, or its
 * executor killed from outside, was lost with no retries left),
 * TQ_EBROKERLOST, TQ_ENOWORKER (no worker offers the function: known only
 * when the wait ends - at this timeout, or at the task's own deadline,
 * which without timeout_ms is the broker's --max-task-time, one hour by
 * default - never at once, since a worker may still come),
 * TQ_ECANCELLED, TQ_EKILLED (cancelled, and killed when it still ran after
 * the cancel's grace period), TQ_EBUSY (the broker did
 * not accept it: it holds its maximum of tasks, or of bytes - its own
 * budget, or this client's share of it; the task never ran; the same for
 * any refusal: TQ_ETOOBIG, TQ_EEXIST, a decoder's error), or
 * TQ_ETIMEDOUT - after which the task is cancelled unless it was started
 * with keep_on_timeout.  tq_task_error says which task, function and
 * worker, and why.  A task's outcome is returned once: a second await
 * answers TQ_ESTATE. */
TQ_EXPORT tq_err tq_task_await(tq_task *t, int64_t timeout_ms);

/* Task.yield: like await, but when the timeout runs out returns
 * TQ_ERUNNING and leaves the task running; it may be yielded or awaited
 * again. */
TQ_EXPORT tq_err tq_task_yield(tq_task *t, int64_t timeout_ms);

/* Task.shutdown: stops the task.  A queued task is removed; a running one
 * is sent SIGTERM and, grace_ms later (at once for TQ_BRUTAL_KILL),
 * SIGKILL.  Returns TQ_OK if the result arrived meanwhile (in
 * tq_task_result), the task's failure if it failed meanwhile, TQ_EKILLED
 * when it still ran at the end of a grace_ms > 0 and was killed (Elixir's
 * {:exit, :killed}), or TQ_ECANCELLED when it was stopped otherwise:
 * removed from the queue, ended by the SIGTERM within its grace, killed
 * at once by TQ_BRUTAL_KILL, or no confirmation came in time (Elixir's
 * nil).  Waits at most grace_ms plus the broker timeout. */
TQ_EXPORT tq_err tq_task_shutdown(tq_task *t, int64_t grace_ms);

/* Task.ignore: lets the task run on with no one waiting (it then outlives
 * this client, like a start), and destroys the handle.  Accepts NULL; sets
 * *tp to NULL.
 *
 * It costs a round trip: it tells the broker and waits for its word, or
 * for the task's end - at most the client's broker timeout when the broker
 * does not answer.  A task that was lost with a broker and waits to be
 * resubmitted (it has retries) is resubmitted detached as soon as a broker
 * answers.  What the broker has not confirmed when the wait ends, the
 * client keeps and finishes (resubmits, or hears the confirmation) while
 * it waits in later calls.  tq_client_destroy stops there: a message
 * already queued still goes out (see there), but a task still waiting for
 * a broker is never run. */
TQ_EXPORT void tq_task_ignore(tq_task **tp);

/* Destroys the handle.  A task still pending is cancelled (use
 * tq_task_ignore to let it run on).  Accepts NULL; sets *tp to NULL. */
TQ_EXPORT void tq_task_destroy(tq_task **tp);

/* Task.await_many: waits for all n tasks with one overall deadline.
 * TQ_OK when every task succeeded (results in each task, in input order).
 * Otherwise returns the first failure to arrive, sets *failed (may be NULL)
 * to that task's index, and cancels the tasks still pending (those with
 * keep_on_timeout are left running); on timeout, TQ_ETIMEDOUT names the
 * first unfinished task.  Returns TQ_EINVAL, having waited for nothing,
 * when tasks is NULL, n is 0, or a task is NULL, belongs to a destroyed
 * client or to another client than tasks[0] (one call waits on one
 * client's socket); TQ_ESTATE, having waited for nothing, when a task's
 * outcome was already returned (by an await, a yield or a _many call):
 * the call answers for all its tasks at once, and that one has no answer
 * left to give. */
TQ_EXPORT tq_err tq_await_many(tq_task **tasks, size_t n, int64_t timeout_ms, size_t *failed);

/* Task.yield_many: waits until all n tasks have ended or the timeout runs
 * out; outcomes[i] is each task's outcome, or TQ_ERUNNING.  Nothing is
 * cancelled.  A task whose outcome was already returned (by this call
 * before, or an await or yield) gets TQ_ESTATE and counts as ended, so
 * calling it again on the same array, as Elixir's loops do, waits only for
 * the tasks that still run.  Returns TQ_OK, or TQ_EINVAL for bad
 * arguments: tasks or outcomes NULL, n 0, or a task NULL, of a destroyed
 * client or of another client than tasks[0] (as for tq_await_many). */
TQ_EXPORT tq_err tq_yield_many(tq_task **tasks, size_t n, int64_t timeout_ms, tq_err *outcomes);

/* ---- a task's outcome and identity ---- */

/* The result (one msgpack value) after TQ_OK, else NULL; valid until the
 * task is destroyed. */
TQ_EXPORT const uint8_t *tq_task_result(const tq_task *t, size_t *len);
/* The result read as an integer / written as JSON text (free it).
 * TQ_ESTATE when there is no result, TQ_ETYPE when it is not an int. */
TQ_EXPORT tq_err tq_task_result_int(const tq_task *t, int64_t *v);
TQ_EXPORT tq_err tq_task_result_json(const tq_task *t, char **json);
/* The outcome so far: TQ_OK, an error, or TQ_ERUNNING.  Never blocks, but
 * while the task has no outcome it reads what the broker has sent so far
 * (so a task that has ended says so without a wait): it is then a call on
 * the task's client (see Threads).  It does not consume the outcome: an
 * await or yield still returns it.  After tq_client_destroy, the outcome
 * the task had then (TQ_ECANCELLED if it was pending). */
TQ_EXPORT tq_err tq_task_status(const tq_task *t);
/* One line explaining the outcome, e.g. "task 3f2a1b0c (sleep) timed out
 * after 5000 ms"; "" while there is nothing to explain. */
TQ_EXPORT const char *tq_task_error(const tq_task *t);
/* The reference as 32 hex digits. */
TQ_EXPORT const char *tq_task_ref(const tq_task *t);
/* The function's name, and the worker that produced the outcome ("" if
 * none did).  Both strings belong to the client: "" once it is destroyed,
 * and what they returned before is freed with it. */
TQ_EXPORT const char *tq_task_function(const tq_task *t);
TQ_EXPORT const char *tq_task_worker(const tq_task *t);
/* The attempt that produced the outcome (1 = first dispatch). */
TQ_EXPORT unsigned tq_task_attempt(const tq_task *t);
/* The client that owns the task (NULL after tq_client_destroy). */
TQ_EXPORT tq_client *tq_task_owner(const tq_task *t);

/* ---- the client ---- */

/* Replies dropped because no task was waiting for them (late, duplicate
 * or stray), since the client was created: e.g. the late result of a task
 * an await left running (keep_on_timeout).  The broker's answer to a
 * cancel the client sent itself for a task it stopped waiting for
 * (tq_task_destroy of a pending task, an await that timed out, a stream
 * closed early) is expected and not counted: the client remembers such a
 * task's ref until that answer comes, for a minute at most, and 16384
 * refs at most (the oldest forgotten first); an answer that comes after
 * its ref was forgotten is counted. */
TQ_EXPORT uint64_t tq_client_strays(const tq_client *c);
/* Tasks resubmitted after a broker restart or loss. */
TQ_EXPORT uint64_t tq_client_resubmitted(const tq_client *c);
/* The endpoint the client talks to. */
TQ_EXPORT const char *tq_client_broker(const tq_client *c);

/* Asks the broker for its counters and live state: a msgpack map in *data
 * (free it; see PROTOCOL.md, STATS_REPLY, for its keys, and
 * tq_value_to_json to print it).  Waits at most timeout_ms; TQ_EBROKERLOST
 * when no answer came. */
TQ_EXPORT tq_err tq_client_stats(tq_client *c, int64_t timeout_ms, uint8_t **data, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
