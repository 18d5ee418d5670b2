/*
 * tasks.c - the task table, deadlines, and telling owners about failures.
 *
 * Invariant: a task leaves the table only through tqi_task_free, which
 * unlinks it from every list and the heap first.  An owner hears about a
 * task at most once: TASKF_ANSWERED is set by whoever tells it.
 */
#include "broker/broker.h"

#include "base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

btask *tqi_task_find(tqi_broker *b, const uint8_t ref[TQI_REF_LEN])
{
	tqi_hnode *n = tqi_hmap_find(&b->tasks, ref, TQI_REF_LEN);
	return n ? tqi_container_of(n, btask, hnode) : NULL;
}

/* Task records come from the broker's slab (base/slab.h): a deep queue is
 * millions of them, touched in no order, and on huge pages they cost far
 * fewer TLB misses.  A freed record is reused by the next task. */
btask *tqi_task_new(tqi_broker *b, const uint8_t ref[TQI_REF_LEN], bfunc *fn)
{
	btask *t = tqi_slab_alloc(&b->task_slab);
	if (t == NULL)
		return NULL;
	memcpy(t->ref, ref, TQI_REF_LEN);
	tqi_node_init(&t->qnode);
	tqi_node_init(&t->cnode);
	tqi_heap_node_init(&t->deadline);
	tqi_node_init(&t->bnode);
	t->fn = fn;
	t->owner = NULL;
	t->worker = NULL;
	t->acct = NULL;
	zmq_msg_init(&t->payload);
	t->seq = ++b->seq;
	t->attempt = 0;
	t->retries_left = 0;
	t->state = TASK_QUEUED;
	t->flags = 0;
	tqi_hmap_insert(&b->tasks, &t->hnode, t->ref, TQI_REF_LEN);
	b->ntasks++;
	return t;
}

void tqi_task_free(tqi_broker *b, btask *t)
{
	if (t->state == TASK_QUEUED)
		tqi_list_remove(&t->fn->queue, &t->qnode);
	else
		tqi_unassign(b, t);
	if (t->owner != NULL)
		tqi_list_remove(&t->owner->tasks, &t->cnode);
	if (tqi_node_linked(&t->bnode))
		tqi_list_remove(&b->bound, &t->bnode);
	else
		tqi_heap_remove(&b->deadlines, &t->deadline);
	tqi_hmap_remove(&b->tasks, &t->hnode);
	if (t->acct != NULL) {
		tqi_budget_release(b, t->acct, tqi_task_cost(zmq_msg_size(&t->payload)));
		tqi_acct_put(&t->acct);
	}
	zmq_msg_close(&t->payload);
	bfunc *fn = t->fn;
	tqi_slab_free(&b->task_slab, t);
	b->ntasks--;
	tqi_func_release(b, fn);
}

/* Most tasks have no deadline but the broker's bound, which every task
 * gets at SUBMIT (now + --max-task-time): so their deadlines come in the
 * order they arrive, and a list keeps them in order at O(1) a task - a
 * million queued tasks cost the heap a slot each and O(log n) for each one
 * that ends.  The heap holds the others (and any task given an earlier
 * deadline since). */
void tqi_task_set_bound(tqi_broker *b, btask *t)
{
	t->deadline.key = tqi_deadline_after(b->now_ms, b->opts.max_task_time_ms);
	tqi_list_push_back(&b->bound, &t->bnode);
}

uint64_t tqi_tasks_next_deadline(const tqi_broker *b)
{
	uint64_t next = UINT64_MAX;
	tqi_heap_node *top = tqi_heap_top(&b->deadlines);
	if (top != NULL)
		next = top->key;
	tqi_node *n = tqi_list_front(&b->bound);
	if (n != NULL && tqi_container_of(n, btask, bnode)->deadline.key < next)
		next = tqi_container_of(n, btask, bnode)->deadline.key;
	return next;
}

void tqi_task_set_deadline(tqi_broker *b, btask *t, uint64_t deadline_ms)
{
	if (tqi_node_linked(&t->bnode)) {
		if (t->deadline.key <= deadline_ms)
			return; /* deadlines only get earlier */
		tqi_list_remove(&b->bound, &t->bnode);
	} else if (tqi_heap_node_queued(&t->deadline)) {
		if (t->deadline.key <= deadline_ms)
			return; /* deadlines only get earlier */
		tqi_heap_remove(&b->deadlines, &t->deadline);
	}
	t->deadline.key = deadline_ms;
	if (tqi_heap_push(&b->deadlines, &t->deadline) != 0)
		tqi_warn("out of memory: a deadline is not enforced by the broker");
}

uint64_t tqi_task_timeout_left(const tqi_broker *b, const btask *t)
{
	if (!tqi_heap_node_queued(&t->deadline) && !tqi_node_linked(&t->bnode))
		return 0;
	uint64_t left = t->deadline.key > b->now_ms ? t->deadline.key - b->now_ms : 1;
	/* A worker adds it to its own clock: keep room for that. */
	return left < TQI_MAX_TIMEOUT_MS ? left : TQI_MAX_TIMEOUT_MS;
}

void tqi_task_fail(tqi_broker *b, btask *t, tq_err code, const char *msg)
{
	if (t->owner != NULL)
		tqi_task_fail_to(b, t, &t->owner->peer, code, msg);
}

void tqi_task_fail_to(tqi_broker *b, btask *t, bpeer *to, tq_err code, const char *msg)
{
	if (t->flags & TASKF_ANSWERED)
		return;
	t->flags |= TASKF_ANSWERED;
	const char *wname = t->worker ? t->worker->peer.name : "";
	tqi_env e = { .cmd = TQI_FAILED,
		      .code = code,
		      .text = { msg, (uint32_t)strnlen(msg, TQI_MAX_TEXT) },
		      .name = { wname, (uint32_t)strlen(wname) },
		      .attempt = t->attempt };
	memcpy(e.ref, t->ref, TQI_REF_LEN);
	tqi_send_to(b, b->clients_sock, to, &e, NULL, 0);
}

static void expire(tqi_broker *b, btask *t)
{
	char msg[TQI_MAX_NAME + 96];
	if (t->flags & TASKF_CANCELLING)
		return; /* already being stopped; its worker will confirm */
	b->n.expired++;
	if (t->state == TASK_QUEUED) {
		/* A task that waited for a function no worker serves now (none
		 * offers it, or those that do are draining) names that cause;
		 * otherwise it waited behind others and ran out of time. */
		bool none = !tqi_func_served(t->fn);
		if (none) {
			b->n.no_worker++;
			snprintf(msg, sizeof msg, "no worker offers '%s'%s", t->fn->name,
			         tqi_list_empty(&t->fn->offers) ? ""
			                                        : " (those that did are draining)");
		} else {
			snprintf(msg, sizeof msg, "deadline passed while queued for '%s'",
			         t->fn->name);
		}
		tqi_task_fail(b, t, none ? TQ_ENOWORKER : TQ_ETIMEDOUT, msg);
		tqi_task_free(b, t);
		return;
	}
	/* Running: the owner hears now; the worker is told to stop, and the
	 * task stays (answered) until the worker confirms, so that the
	 * worker's load stays right. */
	snprintf(msg, sizeof msg, "deadline passed while running on %s", t->worker->peer.name);
	tqi_task_fail(b, t, TQ_ETIMEDOUT, msg);
	t->flags |= TASKF_ANSWERED; /* counted: the worker's confirmation is not */
	if (t->owner != NULL) {
		tqi_list_remove(&t->owner->tasks, &t->cnode);
		t->owner = NULL;
	}
	tqi_cancel_on_worker(b, t, 0);
}

void tqi_tasks_expire(tqi_broker *b)
{
	tqi_heap_node *top;
	while ((top = tqi_heap_top(&b->deadlines)) != NULL && top->key <= b->now_ms) {
		btask *t = tqi_container_of(top, btask, deadline);
		tqi_heap_remove(&b->deadlines, top);
		expire(b, t);
	}
	tqi_node *n;
	while ((n = tqi_list_front(&b->bound)) != NULL &&
	       tqi_container_of(n, btask, bnode)->deadline.key <= b->now_ms) {
		tqi_list_remove(&b->bound, n);
		expire(b, tqi_container_of(n, btask, bnode));
	}
}
