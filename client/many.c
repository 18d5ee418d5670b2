/*
 * many.c - await_many and yield_many: many tasks, one deadline.
 *
 * The tasks waited on form a group; each outcome that arrives bumps the
 * group's count (and records the first failure) as it is processed, so
 * waiting on 10,000 tasks costs O(1) per answer, not O(n).
 */
#include "client/session.h"

#include "base/clock.h"

#include <stdio.h>
#include <string.h>

typedef struct {
	cgroup g;
	size_t n;
	bool stop_at_failure;
} waitset;

static bool set_over(tq_client *c, void *arg)
{
	(void)c;
	waitset *w = arg;
	return (w->stop_at_failure && w->g.first_bad != SIZE_MAX) || w->g.ended == w->n;
}

/* Puts the tasks into ws's group; returns TQ_EINVAL for mixed clients.
 * A task whose outcome was already returned has nothing more to wait for:
 * await_many, which answers for all its tasks at once, refuses the call
 * (TQ_ESTATE); yield_many (`per_task`) counts it as ended and leaves it
 * out of the group, so that calling it again on the same array waits only
 * for the tasks still running. */
static tq_err join(waitset *ws, tq_task **tasks, size_t n, bool stop_at_failure, bool per_task)
{
	ws->g.ended = 0;
	ws->g.first_bad = SIZE_MAX;
	ws->n = n;
	ws->stop_at_failure = stop_at_failure;
	tq_client *c = tasks[0] != NULL ? tasks[0]->client : NULL;
	for (size_t i = 0; i < n; i++) {
		tq_task *t = tasks[i];
		if (t == NULL || t->client == NULL || t->client != c)
			return TQ_EINVAL;
		if (t->state == CT_CONSUMED && !per_task)
			return TQ_ESTATE;
	}
	for (size_t i = 0; i < n; i++) {
		tq_task *t = tasks[i];
		if (t->state == CT_CONSUMED) {
			ws->g.ended++;
			continue;
		}
		t->group = &ws->g;
		t->group_index = i;
		if (t->state == CT_DONE) {
			ws->g.ended++;
			if (t->outcome != TQ_OK && ws->g.first_bad == SIZE_MAX)
				ws->g.first_bad = i;
		}
	}
	return TQ_OK;
}

static void leave(tq_task **tasks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tasks[i]->group = NULL;
}

tq_err tq_await_many(tq_task **tasks, size_t n, int64_t timeout_ms, size_t *failed)
{
	if (tasks == NULL || n == 0)
		return TQ_EINVAL;
	waitset ws;
	tq_err e = join(&ws, tasks, n, true, false);
	if (e != TQ_OK)
		return e;
	tq_client *c = tasks[0]->client;
	uint64_t until = timeout_ms < 0 ? UINT64_MAX : tqi_now_ms() + (uint64_t)timeout_ms;
	e = tqi_pump(c, tqi_deadline_lag(c, until), set_over, &ws);
	if (e == TQ_ETIMEDOUT && tqi_now_ms() < until) {
		tqi_send_await_deadline(c, tasks, n, until);
		e = tqi_pump(c, until, set_over, &ws);
	}
	leave(tasks, n);
	if (e != TQ_OK && e != TQ_ETIMEDOUT)
		return e;
	size_t bad = ws.g.first_bad;
	tq_err result = TQ_OK;
	if (bad != SIZE_MAX) {
		result = tasks[bad]->outcome;
	} else if (e == TQ_ETIMEDOUT) {
		for (size_t i = 0; i < n && bad == SIZE_MAX; i++)
			if (tasks[i]->state != CT_DONE)
				bad = i;
		result = TQ_ETIMEDOUT;
	}
	/* Every task's outcome is now the caller's; those without one are
	 * given up on, as one await would give each up. */
	for (size_t i = 0; i < n; i++) {
		tq_task *t = tasks[i];
		if (t->state != CT_DONE) {
			char msg[TQI_MAX_NAME + 160];
			tq_err code = TQ_ETIMEDOUT;
			if (result == TQ_ETIMEDOUT)
				snprintf(msg, sizeof msg,
				         "task %.8s (%s) timed out after %lld ms (await_many)",
				         tqi_task_refhex(t), t->fn->s, (long long)timeout_ms);
			else {
				code = TQ_ECANCELLED;
				snprintf(msg, sizeof msg,
				         "task %.8s (%s) was cancelled: task %zu of the same "
				         "await_many failed",
				         tqi_task_refhex(t), t->fn->s, bad);
			}
			if (t->state == CT_SUBMITTED && !t->keep_on_timeout)
				tqi_send_cancel(c, t, 0);
			tqi_task_end(t, code, msg);
		}
		t->state = CT_CONSUMED;
	}
	if (failed != NULL)
		*failed = bad == SIZE_MAX ? 0 : bad;
	return result;
}

tq_err tq_yield_many(tq_task **tasks, size_t n, int64_t timeout_ms, tq_err *outcomes)
{
	if (tasks == NULL || n == 0 || outcomes == NULL)
		return TQ_EINVAL;
	waitset ws;
	tq_err e = join(&ws, tasks, n, false, true);
	if (e != TQ_OK)
		return e;
	tq_client *c = tasks[0]->client;
	uint64_t until = timeout_ms < 0 ? UINT64_MAX : tqi_now_ms() + (uint64_t)timeout_ms;
	e = tqi_pump(c, until, set_over, &ws);
	leave(tasks, n);
	if (e != TQ_OK && e != TQ_ETIMEDOUT)
		return e;
	/* The wait moves tasks from SUBMITTED to DONE only: a task CONSUMED
	 * now was so before the call. */
	for (size_t i = 0; i < n; i++) {
		tq_task *t = tasks[i];
		if (t->state == CT_CONSUMED) {
			outcomes[i] = TQ_ESTATE;
		} else if (t->state == CT_DONE) {
			outcomes[i] = t->outcome;
			t->state = CT_CONSUMED;
		} else {
			outcomes[i] = TQ_ERUNNING;
		}
	}
	return TQ_OK;
}
