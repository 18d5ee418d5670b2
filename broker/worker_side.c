/*
 * worker_side.c - the broker's side of the worker protocol: registration,
 * results, heartbeats, draining, and what happens when a worker dies.
 *
 * A worker is dead when its connection is gone (EHOSTUNREACH on a send:
 * the process died or the host went away) or when it has been silent for
 * `liveness` of its own heartbeat intervals (hung, or the network is cut).
 * Its tasks are then retried elsewhere if they have retries left, or fail
 * with TQ_EWORKERLOST naming the worker and the cause.  A result that comes
 * later from a worker that no longer holds the task's current attempt is
 * fenced: dropped and counted, never delivered.
 */
#include "broker/broker.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bworker *find_worker(tqi_broker *b, const zmq_msg_t *id)
{
	bpeer *p = tqi_peer_find(&b->workers, &b->last_worker, id);
	return p ? tqi_container_of(p, bworker, peer) : NULL;
}

/* The tasks a worker may hold, from what it asked for (READY, CAPACITY):
 * never below its concurrency.  A lower capacity than its current load
 * takes no task back; it only stops dispatch until the load falls below. */
static uint32_t capacity_of(uint32_t concurrency, uint32_t requested)
{
	return requested < concurrency ? concurrency : requested;
}

static void welcome(tqi_broker *b, bworker *w)
{
	tqi_env e = { .cmd = TQI_WELCOME, .resumed = false, .heartbeat_ms = b->opts.heartbeat_ms };
	memcpy(e.instance, b->instance, TQI_REF_LEN);
	tqi_send_to(b, b->workers_sock, &w->peer, &e, NULL, 0);
}

static void disconnect(tqi_broker *b, const zmq_msg_t *id, const char *why)
{
	tqi_env e = { .cmd = TQI_DISCONNECT, .text = { why, (uint32_t)strlen(why) } };
	tqi_send_raw(b, b->workers_sock, id, &e);
}

/* The worker's tasks after its death: retry or fail each. */
static void orphan_tasks(tqi_broker *b, bworker *w)
{
	char msg[TQI_MAX_TEXT];
	tqi_node *n;
	while ((n = tqi_list_front(&w->tasks)) != NULL) {
		btask *t = tqi_container_of(n, btask, qnode);
		if (t->flags & (TASKF_ANSWERED | TASKF_CANCELLING)) {
			/* Its owner has its answer, or asked for it to stop. */
			if (!(t->flags & TASKF_ANSWERED)) {
				b->n.cancelled++;
				tqi_task_fail(b, t, TQ_ECANCELLED,
				              "cancelled (its worker was lost meanwhile)");
			}
			tqi_task_free(b, t);
		} else if (t->retries_left > 0) {
			t->retries_left--;
			b->n.retried++;
			tqi_info("task %02x%02x%02x%02x (%s) attempt %u lost with worker %s (%s): "
			         "retrying",
			         t->ref[0], t->ref[1], t->ref[2], t->ref[3], t->fn->name,
			         t->attempt, w->peer.name, w->peer.gone_why);
			tqi_unassign(b, t);
			tqi_enqueue(b, t, true);
		} else {
			b->n.worker_lost++;
			snprintf(msg, sizeof msg, "worker %s lost: %s", w->peer.name,
			         w->peer.gone_why);
			/* Still assigned, so the answer names the worker. */
			tqi_task_fail(b, t, TQ_EWORKERLOST, msg);
			tqi_task_free(b, t);
		}
	}
}

void tqi_worker_free(tqi_broker *b, bworker *w)
{
	if (w->peer.gone_why != NULL && strcmp(w->peer.gone_why, "left") != 0) {
		b->n.workers_lost++;
		tqi_warn("worker %s (%s) lost: %s; %u tasks affected", w->peer.name, w->peer.idhex,
		         w->peer.gone_why, w->load);
	} else {
		tqi_info("worker %s (%s) left", w->peer.name, w->peer.idhex);
	}
	/* Out of the tables first; its offers stay linked (it is marked gone,
	 * so nothing is dispatched to it) until its tasks are dealt with, so
	 * that no function is freed under a task that still points to it. */
	assert(w->peer.gone); /* only tqi_peers_reap frees a worker */
	tqi_hmap_remove(&b->workers, &w->peer.hnode);
	tqi_list_remove(&b->live, &w->live);
	if (b->last_worker == &w->peer)
		b->last_worker = NULL;
	orphan_tasks(b, w);
	for (uint32_t i = 0; i < w->noffers; i++) {
		tqi_list_remove(&w->offers[i].fn->offers, &w->offers[i].fnode);
		tqi_func_release(b, w->offers[i].fn);
	}
	tqi_outbox_clear(b, &w->peer);
	free(w->offers);
	free(w);
}

static void on_ready(tqi_broker *b, tqi_frames *f, const tqi_env *e)
{
	bworker *old = find_worker(b, &f->id);
	if (old != NULL) {
		/* The same connection registering again: it restarted, so the
		 * tasks it had are lost. */
		tqi_peer_gone(b, &old->peer, "re-registered");
		tqi_peers_reap(b);
	}
	bworker *w = calloc(1, sizeof *w);
	boffer *offers = calloc(e->functions.count, sizeof *offers);
	if (w == NULL || offers == NULL) {
		free(w);
		free(offers);
		tqi_error("out of memory registering a worker");
		return;
	}
	tqi_peer_init(&w->peer, TQI_ROLE_WORKER, &f->id);
	memcpy(w->peer.name, e->name.p, e->name.n);
	w->peer.name[e->name.n] = '\0';
	w->concurrency = e->concurrency;
	w->capacity = capacity_of(e->concurrency, e->capacity);
	w->heartbeat_ms = e->heartbeat_ms;
	w->peer.last_seen_ms = b->now_ms;
	tqi_list_init(&w->tasks);
	w->offers = offers;
	size_t cur = 0;
	tqi_str s;
	while (tqi_raw_next_str(&e->functions, &cur, &s)) {
		bfunc *fn = tqi_func_get(b, s.p, s.n, true);
		if (fn == NULL)
			continue;
		bool dup = false;
		for (uint32_t i = 0; i < w->noffers; i++)
			dup = dup || w->offers[i].fn == fn;
		if (dup)
			continue;
		boffer *o = &w->offers[w->noffers++];
		o->worker = w;
		o->fn = fn;
		tqi_list_push_back(&fn->offers, &o->fnode);
	}
	tqi_hmap_insert(&b->workers, &w->peer.hnode, w->peer.id, w->peer.idlen);
	tqi_list_push_back(&b->live, &w->live);
	tqi_info("worker %s (%s) ready: %u functions, concurrency %u, capacity %u", w->peer.name,
	         w->peer.idhex, w->noffers, w->concurrency, w->capacity);
	welcome(b, w);
	tqi_worker_pull(b, w);
}

static void count_outcome(tqi_broker *b, uint32_t code)
{
	switch (code) {
	case TQ_OK:
		b->n.completed++;
		break;
	case TQ_ETASKCRASHED:
		b->n.crashed++;
		break;
	case TQ_ECANCELLED:
		b->n.cancelled++;
		break;
	case TQ_ETIMEDOUT:
		b->n.expired++;
		break;
	default:
		b->n.failed++;
		break;
	}
}

static void on_done(tqi_broker *b, bworker *w, tqi_frames *f, const tqi_env *e)
{
	btask *t = tqi_task_find(b, e->ref);
	if (t == NULL || t->worker != w || t->attempt != e->attempt) {
		/* Not the current attempt of a task this worker holds: a late
		 * result from an attempt already given up on. */
		b->n.fenced++;
		tqi_debug("fenced a result from %s for attempt %u", w->peer.name, e->attempt);
		return;
	}
	uint32_t code = e->code;
	char msg[TQI_MAX_TEXT + 1];
	if (code == TQ_OK && f->payload_len > b->opts.max_payload) {
		/* The same handler would make the same result again: no retry. */
		code = TQ_ETOOBIG;
		snprintf(msg, sizeof msg, "result of %zu bytes exceeds the limit of %llu",
		         f->payload_len, (unsigned long long)b->opts.max_payload);
		tqi_log_limited(&b->bad_log, TQI_LOG_WARN,
		                "task %02x%02x%02x%02x (%s) on worker %s (%s): %s", t->ref[0],
		                t->ref[1], t->ref[2], t->ref[3], t->fn->name, w->peer.name,
		                w->peer.idhex, msg);
	} else if (code != TQ_OK) {
		memcpy(msg, e->text.p, e->text.n);
		msg[e->text.n] = '\0';
	}
	if (!(t->flags & TASKF_ANSWERED)) {
		count_outcome(b, code);
		if (code == TQ_OK && t->owner != NULL) {
			t->flags |= TASKF_ANSWERED;
			tqi_env r = { .cmd = TQI_RESULT,
				      .name = { w->peer.name, (uint32_t)strlen(w->peer.name) },
				      .attempt = t->attempt };
			memcpy(r.ref, t->ref, TQI_REF_LEN);
			tqi_send_to(b, b->clients_sock, &t->owner->peer, &r, f->payload,
			            f->payload_len);
		} else if (code != TQ_OK) {
			tqi_task_fail(b, t, (tq_err)code, msg);
		}
	}
	tqi_task_free(b, t);
	tqi_worker_pull(b, w);
}

void tqi_worker_message(tqi_broker *b, tqi_frames *f)
{
	char why[256];
	tq_err err = tqi_frames_decode(f, TQI_ROLE_WORKER, TQI_ROLE_BROKER, why, sizeof why);
	if (err != TQ_OK) {
		tqi_bad_message(b, b->workers_sock, "worker", f, err, why);
		return;
	}
	const tqi_env *e = &f->e;
	if (e->cmd == TQI_READY) {
		on_ready(b, f, e);
		return;
	}
	bworker *w = find_worker(b, &f->id);
	if (w == NULL || w->peer.gone) {
		/* A worker we do not know (the broker restarted, or we gave it
		 * up for dead): tell it to register again. */
		b->n.fenced += e->cmd == TQI_DONE;
		if (e->cmd != TQI_BYE)
			disconnect(b, &f->id, "unknown worker: register with READY");
		return;
	}
	w->peer.last_seen_ms = b->now_ms;
	switch (e->cmd) {
	case TQI_DONE:
		on_done(b, w, f, e);
		break;
	case TQI_PING:
		break;
	case TQI_CAPACITY:
		/* The worker's prefetch changed. */
		w->capacity = capacity_of(w->concurrency, e->capacity);
		tqi_worker_pull(b, w);
		break;
	case TQI_DRAIN:
		if (!w->draining)
			tqi_info("worker %s draining (%u tasks left)", w->peer.name, w->load);
		w->draining = true;
		break;
	case TQI_BYE:
		tqi_peer_gone(b, &w->peer, "left");
		break;
	default:
		break;
	}
}

void tqi_workers_tick(tqi_broker *b)
{
	tqi_node *it, *nx;
	tqi_list_each(&b->live, it, nx)
	{
		bworker *w = tqi_container_of(it, bworker, live);
		if (w->peer.gone)
			continue;
		uint64_t limit = (uint64_t)w->heartbeat_ms * b->opts.liveness;
		if (b->now_ms - w->peer.last_seen_ms > limit) {
			tqi_peer_gone(b, &w->peer,
			              "missed heartbeats (hung, or the network is cut)");
			continue;
		}
		if (!tqi_list_empty(&w->peer.outbox))
			continue; /* it is not reading; a heartbeat would only queue */
		tqi_env e = { .cmd = TQI_HEARTBEAT };
		memcpy(e.instance, b->instance, TQI_REF_LEN);
		tqi_send_to(b, b->workers_sock, &w->peer, &e, NULL, 0);
	}
}

void tqi_workers_free_all(tqi_broker *b)
{
	tqi_node *n;
	while ((n = tqi_list_pop_front(&b->live)) != NULL) {
		bworker *w = tqi_container_of(n, bworker, live);
		tqi_node_init(&w->live);
		tqi_hmap_remove(&b->workers, &w->peer.hnode);
		if (b->last_worker == &w->peer)
			b->last_worker = NULL;
		for (uint32_t i = 0; i < w->noffers; i++)
			tqi_list_remove(&w->offers[i].fn->offers, &w->offers[i].fnode);
		tqi_outbox_clear(b, &w->peer);
		free(w->offers);
		free(w);
	}
}
