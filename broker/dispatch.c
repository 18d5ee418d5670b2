/*
 * dispatch.c - functions, their FIFO queues, and who gets which task.
 *
 * A task goes to the least-loaded worker that offers its function and has
 * room (load < capacity, not draining); otherwise it waits in its
 * function's queue, oldest first.  When a worker gets room it takes the
 * oldest task among the queues of the functions it offers.  Retries go to
 * the front of their queue: they have waited longest, and so do tasks
 * taken back from a worker that did not start them (tqi_reclaim).
 *
 * A function is *served* while a worker that is neither gone nor draining
 * offers it.  Invariant: every queued task of a function that is not
 * served has TASKF_NOWORKER, and its owner was told NOTICE{ENOWORKER} -
 * when it was queued, or when the function lost its last such worker (at
 * its DRAIN, or where the worker is freed at the end of the loop turn
 * that found it gone: tqi_func_unserved) - so no wait for a worker is
 * silent.
 */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>

bfunc *tqi_func_get(tqi_broker *b, const char *name, uint32_t len, bool create)
{
	tqi_hnode *n = tqi_hmap_find(&b->functions, name, len);
	if (n != NULL)
		return tqi_container_of(n, bfunc, hnode);
	if (!create || len > TQI_MAX_NAME)
		return NULL;
	bfunc *f = malloc(sizeof *f);
	if (f == NULL)
		return NULL;
	memcpy(f->name, name, len);
	f->name[len] = '\0';
	f->name_len = len;
	tqi_list_init(&f->queue);
	tqi_list_init(&f->offers);
	f->running = 0;
	tqi_hmap_insert(&b->functions, &f->hnode, f->name, len);
	return f;
}

void tqi_func_release(tqi_broker *b, bfunc *f)
{
	/* A function lives while a task or a worker refers to it, so that a
	 * stream of made-up names cannot grow the table. */
	if (!tqi_list_empty(&f->queue) || !tqi_list_empty(&f->offers) || f->running > 0)
		return;
	tqi_hmap_remove(&b->functions, &f->hnode);
	free(f);
}

static bool has_room(const bworker *w)
{
	/* A stalled worker did not start what it was given beyond its
	 * concurrency: it gets no more of that until it shows progress. */
	uint32_t room = w->stalled ? w->concurrency : w->capacity;
	return !w->peer.gone && !w->draining && w->load < room;
}

static bworker *least_loaded(bfunc *f)
{
	boffer *best = NULL;
	tqi_node *it, *nx;
	tqi_list_each(&f->offers, it, nx)
	{
		boffer *o = tqi_container_of(it, boffer, fnode);
		bworker *w = o->worker;
		if (!has_room(w))
			continue;
		/* Compare load as a fraction of concurrency, so a big worker
		 * is not starved by small idle ones. */
		if (best == NULL || (uint64_t)w->load * best->worker->concurrency <
		                        (uint64_t)best->worker->load * w->concurrency)
			best = o;
	}
	if (best == NULL)
		return NULL;
	/* Rotate so that equal loads take turns. */
	tqi_list_move_back(&f->offers, &best->fnode);
	return best->worker;
}

static void assign(tqi_broker *b, btask *t, bworker *w)
{
	tqi_list_remove(&t->fn->queue, &t->qnode);
	t->state = TASK_ASSIGNED;
	t->worker = w;
	t->attempt++;
	tqi_list_push_back(&w->tasks, &t->qnode);
	if (w->fresh == NULL) {
		w->fresh = t;
		w->fresh_ms = b->now_ms;
	}
	w->load++;
	b->nassigned++;
	t->fn->running++;
	if (t->flags & TASKF_NOWORKER) {
		/* The owner was told no worker served the function; now one
		 * does. */
		t->flags &= (uint8_t)~TASKF_NOWORKER;
		if (t->owner != NULL) {
			tqi_env n = { .cmd = TQI_NOTICE, .code = TQ_OK };
			memcpy(n.ref, t->ref, TQI_REF_LEN);
			tqi_send_to(b, b->clients_sock, &t->owner->peer, &n, NULL, 0);
		}
	}
	const char *owner = t->owner ? t->owner->peer.name : "";
	tqi_env e = { .cmd = TQI_TASK,
		      .function = { t->fn->name, t->fn->name_len },
		      .attempt = t->attempt,
		      .timeout_ms = tqi_task_timeout_left(b, t),
		      .name = { owner, (uint32_t)strlen(owner) } };
	memcpy(e.ref, t->ref, TQI_REF_LEN);
	/* The arguments stay with the task for a retry; the TASK takes a copy.
	 * A worker found gone here is cleaned up later, which retries or
	 * fails t. */
	tqi_send_to(b, b->workers_sock, &w->peer, &e, zmq_msg_data(&t->payload),
	            zmq_msg_size(&t->payload));
}

void tqi_unassign(tqi_broker *b, btask *t)
{
	bworker *w = t->worker;
	if (w == NULL)
		return;
	if (w->fresh == t) {
		/* The tasks after it were given later still. */
		tqi_node *next = t->qnode.next;
		w->fresh = next == &w->tasks.head ? NULL : tqi_container_of(next, btask, qnode);
	}
	tqi_list_remove(&w->tasks, &t->qnode);
	w->load--;
	b->nassigned--;
	t->fn->running--;
	t->worker = NULL;
	t->state = TASK_QUEUED; /* in no queue until someone queues it */
}

bool tqi_func_served(const bfunc *f)
{
	tqi_node *it, *nx;
	tqi_list_each(&f->offers, it, nx)
	{
		const bworker *w = tqi_container_of(it, boffer, fnode)->worker;
		if (!w->peer.gone && !w->draining)
			return true;
	}
	return false;
}

/* Tells t's owner, once, that no worker serves t's function now. */
static void notice_no_worker(tqi_broker *b, btask *t)
{
	if (t->flags & TASKF_NOWORKER)
		return;
	t->flags |= TASKF_NOWORKER;
	if (t->owner == NULL)
		return;
	tqi_env n = { .cmd = TQI_NOTICE, .code = TQ_ENOWORKER };
	memcpy(n.ref, t->ref, TQI_REF_LEN);
	tqi_send_to(b, b->clients_sock, &t->owner->peer, &n, NULL, 0);
}

void tqi_func_unserved(tqi_broker *b, bfunc *f)
{
	tqi_node *it, *nx;
	tqi_list_each(&f->queue, it, nx)
	{
		notice_no_worker(b, tqi_container_of(it, btask, qnode));
	}
}

void tqi_enqueue(tqi_broker *b, btask *t, bool front)
{
	t->state = TASK_QUEUED;
	if (front)
		tqi_list_push_front(&t->fn->queue, &t->qnode);
	else
		tqi_list_push_back(&t->fn->queue, &t->qnode);
	if (b->stop)
		return; /* stopping: nothing new starts */
	bworker *w = least_loaded(t->fn);
	if (w != NULL)
		assign(b, t, w);
	else if (!tqi_func_served(t->fn))
		notice_no_worker(b, t);
}

/* The oldest queued task among the functions w offers. */
static btask *oldest_for(bworker *w)
{
	btask *best = NULL;
	for (uint32_t i = 0; i < w->noffers; i++) {
		tqi_node *n = tqi_list_front(&w->offers[i].fn->queue);
		if (n == NULL)
			continue;
		btask *t = tqi_container_of(n, btask, qnode);
		if (best == NULL || t->seq < best->seq)
			best = t;
	}
	return best;
}

void tqi_worker_pull(tqi_broker *b, bworker *w)
{
	if (b->stop)
		return;
	while (has_room(w)) {
		btask *t = oldest_for(w);
		if (t == NULL)
			return;
		assign(b, t, w);
	}
}

void tqi_cancel_on_worker(tqi_broker *b, btask *t, uint32_t grace_ms)
{
	if (t->worker == NULL)
		return;
	t->flags |= TASKF_CANCELLING;
	tqi_env e = { .cmd = TQI_CANCEL, .grace_ms = grace_ms };
	memcpy(e.ref, t->ref, TQI_REF_LEN);
	tqi_send_to(b, b->workers_sock, &t->worker->peer, &e, NULL, 0);
}

bool tqi_reclaim(tqi_broker *b, btask *t)
{
	bworker *from = t->worker;
	if (from == NULL || b->stop)
		return false;
	/* Room now is not asked for: while a queue is long, the others fill
	 * up again at each DONE and are never seen with room, and t is better
	 * at the front of the queue than with a worker that does not start it. */
	bool elsewhere = false;
	tqi_node *it, *nx;
	tqi_list_each(&t->fn->offers, it, nx)
	{
		bworker *w = tqi_container_of(it, boffer, fnode)->worker;
		if (w != from && !w->peer.gone && !w->draining && !w->stalled) {
			elsewhere = true;
			break;
		}
	}
	if (!elsewhere)
		return false;
	/* Not TASKF_CANCELLING: the task goes on, only this attempt ends.  A
	 * worker drops a task it has not started and answers ECANCELLED for
	 * this attempt, which is fenced like anything else it says of it. */
	tqi_env e = { .cmd = TQI_CANCEL, .grace_ms = 0 };
	memcpy(e.ref, t->ref, TQI_REF_LEN);
	tqi_send_to(b, b->workers_sock, &from->peer, &e, NULL, 0);
	tqi_unassign(b, t);
	tqi_enqueue(b, t, true);
	b->n.reclaimed++;
	return true;
}
