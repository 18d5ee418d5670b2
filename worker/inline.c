/*
 * inline.c - handlers run in the worker's loop itself
 * (tq_worker_opts.isolation = TQ_ISOLATION_NONE): no executor process, no
 * zygote, no ticket board.  A task is taken from the local queue, run to
 * its end, and answered; the loop reads its socket between turns.
 *
 * What this gives up is listed in tq/worker.h ("Isolation").  What it
 * keeps: a task whose deadline passed before it started is not run, a
 * queued task can be cancelled, and the automatic prefetch measures run
 * times the same way.
 *
 * Answers are gathered (worker.c's batch) while the next task is one
 * whose function ran in under FAST_US last time, and sent before any
 * other: a quick answer waits behind quick tasks only - or behind one slow
 * run of a function that was quick before.
 */
#include "worker/invoke.h"
#include "worker/loop.h"

#include "base/clock.h"

#include <errno.h>
#include <string.h>

/* One loop turn runs tasks for at most this long (plus the last task's
 * own time), so that cancellations, new tasks and heartbeats are read in
 * between. */
enum { TURN_US = 2000, FAST_US = 50, REPLY_KEEP = 1 << 18 };

int tqi_inline_start(tq_worker *w)
{
	w->nexecs = 0;
	w->execs = NULL;
	w->zygote.fd = -1;
	w->zygote.pid = -1;
	if (tq_buf_new(&w->reply) != TQ_OK) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void tqi_inline_stop(tq_worker *w)
{
	tq_buf_destroy(&w->reply);
}

/* Runs t (out of the queue), taken up at start (tqi_now_us), and answers
 * it; returns when it ended, on the same clock.  One clock reading ends a
 * task and starts the next: the loop runs many short ones in a row. */
static uint64_t run(tq_worker *w, wtask *t, uint64_t start)
{
	tqi_call call = { .entry = &w->reg.v[t->fn_index],
		          .worker = w->name,
		          .attempt = t->attempt,
		          .deadline_ms = t->deadline.key,
		          .ref = t->ref };
	tqi_outcome out;
	tqi_invoke(&call, zmq_msg_data(&t->args), zmq_msg_size(&t->args), w->reply, &out);
	uint64_t end = tqi_now_us();
	uint64_t took = end - start;
	uint32_t us = took > UINT32_MAX ? UINT32_MAX : (uint32_t)took;
	tqi_measure_service(w, us);
	w->reg.v[t->fn_index].last_us = us < UINT32_MAX ? us + 1 : us;
	w->now = end / 1000; /* tqi_now_ms's clock, CLOCK_MONOTONIC */
	if (out.code != TQ_OK) {
		tqi_task_done(w, t, (tq_err)out.code, out.text, NULL, 0);
		return end;
	}
	tqi_task_done(w, t, TQ_OK, NULL, out.data, out.len);
	/* A big result passed: give its memory back. */
	if (tq_buf_size(w->reply) > REPLY_KEEP) {
		tq_buf_destroy(&w->reply);
		if (tq_buf_new(&w->reply) != TQ_OK)
			w->reply = NULL; /* tqi_inline_run tries again */
	}
	return end;
}

/* True when the next queued task's function ran quickly last time. */
static bool next_is_quick(tq_worker *w)
{
	tqi_node *n = tqi_list_front(&w->queue);
	if (n == NULL)
		return false;
	uint32_t last = w->reg.v[tqi_container_of(n, wtask, qnode)->fn_index].last_us;
	return last > 0 && last <= FAST_US;
}

bool tqi_inline_run(tq_worker *w)
{
	if (w->reply == NULL && tq_buf_new(&w->reply) != TQ_OK)
		return false; /* out of memory: the tasks wait for a later turn */
	uint64_t start = tqi_now_us(), now = start;
	tqi_node *n;
	while (w->reply != NULL && (n = tqi_list_front(&w->queue)) != NULL) {
		wtask *t = tqi_container_of(n, wtask, qnode);
		if (t->deadline.key != 0 && t->deadline.key <= now / 1000) {
			w->now = now / 1000;
			tqi_pool_stop_task(w, t, TQ_ETIMEDOUT, "deadline passed before it started",
			                   0);
			continue;
		}
		tqi_list_remove(&w->queue, &t->qnode);
		now = run(w, t, now);
		if (!next_is_quick(w))
			tqi_worker_flush(w);
		if (now - start >= TURN_US)
			break;
	}
	return !tqi_list_empty(&w->queue);
}
