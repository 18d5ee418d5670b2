/*
 * worker_side.c - the broker's side of the worker protocol: registration,
 * results, heartbeats, draining, and what happens when a worker dies.
 *
 * A worker is dead when its connection is gone (EHOSTUNREACH on a send:
 * the process died or the host went away) or when it has been silent for
 * `liveness` of its own heartbeat intervals (hung, or the network is cut).
 * Its tasks are then retried elsewhere if they have retries left, or fail
 * with TQ_EWORKERLOST naming the worker and the cause.  A task whose worker
 * reports DONE with TQ_EWORKERLOST (its executor was killed from outside
 * the worker) is retried or failed the same way.  A result that comes
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

/* The tasks w may hold, from what it asked for (READY, CAPACITY): never
 * below its concurrency, never above --max-worker-capacity, which bounds
 * its concurrency too (asked: the concurrency it announced).  Logged once
 * per worker when the bound held it.  A lower capacity than its current
 * load takes no task back; it only stops dispatch until the load falls
 * below. */
static uint32_t capacity_of(tqi_broker *b, bworker *w, uint32_t asked, uint32_t requested)
{
	uint32_t most = b->opts.max_worker_capacity;
	if ((asked > most || requested > most) && !w->clamp_logged) {
		w->clamp_logged = true;
		tqi_log_limited(&b->bad_log, TQI_LOG_INFO,
		                "worker %s (%s) asked for concurrency %u, capacity %u: held to %u "
		                "(--max-worker-capacity)",
		                w->peer.name, w->peer.idhex, asked, requested, most);
	}
	if (requested > most)
		requested = most;
	return requested < w->concurrency ? w->concurrency : requested;
}

static void welcome(tqi_broker *b, bworker *w)
{
	tqi_env e = { .cmd = TQI_WELCOME, .resumed = false, .heartbeat_ms = b->opts.heartbeat_ms };
	memcpy(e.instance, b->instance, TQI_REF_LEN);
	tqi_send_to(b, b->workers_sock, &w->peer, &e, NULL, 0);
}

/* Tells the peer `id`, which is not a registered worker, to register -
 * within the DISCONNECT allowance (TQI_DISCONNECT_*), so that a peer that
 * floods the broker without registering is not answered each time. */
static void disconnect(tqi_broker *b, const zmq_msg_t *id, const char *why)
{
	if (!tqi_ratelimit_take(&b->disconnects, b->now_ms, TQI_DISCONNECT_PER_SEC,
	                        TQI_DISCONNECT_BURST)) {
		b->n.throttled++;
		return;
	}
	tqi_env e = { .cmd = TQI_DISCONNECT, .text = { why, (uint32_t)strlen(why) } };
	tqi_send_raw(b, b->workers_sock, id, &e);
}

/* w, which served its functions until now (it was neither gone nor
 * draining), stops serving them: each that no other worker serves has its
 * queue told so (tqi_func_unserved).  O(w's functions x their workers),
 * plus the queues of the functions left with no worker. */
static void stop_serving(tqi_broker *b, bworker *w)
{
	for (uint32_t i = 0; i < w->noffers; i++)
		if (!tqi_func_served(w->offers[i].fn))
			tqi_func_unserved(b, w->offers[i].fn);
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
			tqi_log_limited(&b->peer_log, TQI_LOG_INFO,
			                "task %02x%02x%02x%02x (%s) attempt %u lost with worker %s "
			                "(%s): retrying",
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
		tqi_log_limited(&b->peer_log, TQI_LOG_WARN,
		                "worker %s (%s) lost: %s; %u tasks affected", w->peer.name,
		                w->peer.idhex, w->peer.gone_why, w->load);
	} else {
		tqi_log_limited(&b->peer_log, TQI_LOG_INFO, "worker %s (%s) left", w->peer.name,
		                w->peer.idhex);
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
	if (!w->draining)
		stop_serving(b, w); /* gone: it serves nothing */
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
	if (old != NULL && !old->peer.gone) {
		/* A worker registers once per routing id (PROTOCOL.md 4.3): a
		 * second READY is a broken or hostile peer's, and changes
		 * nothing - the tasks it holds stay its own, to be answered or
		 * to end at their deadlines, and no one else's task is failed
		 * or retried for it. */
		tqi_bad_message(b, b->workers_sock, "worker", f, TQ_ESTATE,
		                "already registered: a worker registers once per routing id");
		return;
	}
	if (old != NULL)
		tqi_peers_reap(b); /* found gone this turn: its tasks are dealt with first */
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
	w->concurrency = e->concurrency < b->opts.max_worker_capacity ? e->concurrency
	                                                              : b->opts.max_worker_capacity;
	w->capacity = capacity_of(b, w, e->concurrency, e->capacity);
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
	tqi_log_limited(&b->peer_log, TQI_LOG_INFO,
	                "worker %s (%s) ready: %u functions, concurrency %u, capacity %u",
	                w->peer.name, w->peer.idhex, w->noffers, w->concurrency, w->capacity);
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
	case TQ_EKILLED: /* cancelled, and killed when its grace ran out */
		b->n.cancelled++;
		break;
	case TQ_ETIMEDOUT:
		b->n.expired++;
		break;
	case TQ_EWORKERLOST:
		b->n.worker_lost++;
		break;
	default:
		b->n.failed++;
		break;
	}
}

/* Handles a DONE from w; false when it was fenced (not the current
 * attempt of a task w holds), true when it settled or retried its task. */
static bool on_done(tqi_broker *b, bworker *w, tqi_frames *f, const tqi_env *e)
{
	btask *t = tqi_task_find(b, e->ref);
	if (t == NULL || t->worker != w || t->attempt != e->attempt) {
		/* Not the current attempt of a task this worker holds: a late
		 * result from an attempt already given up on. */
		b->n.fenced++;
		tqi_log_limited(&b->peer_log, TQI_LOG_DEBUG,
		                "fenced a result from %s for attempt %u", w->peer.name, e->attempt);
		return false;
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
	} else if (code == TQ_EWORKERLOST) {
		/* As orphan_tasks words it: the answer names the worker. */
		snprintf(msg, sizeof msg, "worker %s: %.*s", w->peer.name, (int)e->text.n,
		         e->text.p);
	} else if (code != TQ_OK) {
		memcpy(msg, e->text.p, e->text.n);
		msg[e->text.n] = '\0';
	}
	if (code == TQ_EWORKERLOST && t->retries_left > 0 &&
	    !(t->flags & (TASKF_ANSWERED | TASKF_CANCELLING))) {
		/* Its executor was killed from outside (the OOM killer): not the
		 * task's fault, so it is retried as for a lost worker. */
		t->retries_left--;
		b->n.retried++;
		tqi_log_limited(
		    &b->bad_log, TQI_LOG_WARN,
		    "task %02x%02x%02x%02x (%s) attempt %u lost on worker %s (%s): %.*s: "
		    "retrying",
		    t->ref[0], t->ref[1], t->ref[2], t->ref[3], t->fn->name, t->attempt,
		    w->peer.name, w->peer.idhex, (int)e->text.n, e->text.p);
		tqi_unassign(b, t);
		tqi_enqueue(b, t, true);
		tqi_worker_pull(b, w);
		return true;
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
	return true;
}

/* A DONE, and what it says of w: one that is not fenced shows w moving,
 * so the tasks it is given from then on (on_done's pull first) are the
 * fresh ones, and a stalled w may prefetch again.  A fenced one changes
 * nothing (on_done then returns at once). */
static void done_and_progress(tqi_broker *b, bworker *w, tqi_frames *f, const tqi_env *e)
{
	btask *fresh = w->fresh;
	uint64_t fresh_ms = w->fresh_ms;
	w->fresh = NULL;
	if (!on_done(b, w, f, e)) {
		tqi_conns_chatter(b, TQI_ROLE_WORKER, f->frame);
		w->fresh = fresh;
		w->fresh_ms = fresh_ms;
	} else if (w->stalled) {
		w->stalled = false;
		tqi_worker_pull(b, w);
	}
}

void tqi_worker_message(tqi_broker *b, tqi_frames *f)
{
	if (tqi_conns_dropping(b, TQI_ROLE_WORKER, f->frame))
		return; /* from a connection cut off for its chatter */
	char why[256];
	tq_err err = tqi_frames_decode(f, TQI_ROLE_WORKER, TQI_ROLE_BROKER, why, sizeof why);
	if (err != TQ_OK) {
		tqi_bad_message(b, b->workers_sock, "worker", f, err, why);
		return;
	}
	const tqi_env *e = &f->e;
	if (e->cmd != TQI_DONE)
		tqi_conns_chatter(b, TQI_ROLE_WORKER, f->frame);
	if (e->cmd == TQI_READY) {
		on_ready(b, f, e);
		return;
	}
	bworker *w = find_worker(b, &f->id);
	if (w == NULL || w->peer.gone) {
		/* A worker we do not know (the broker restarted, or we gave it
		 * up for dead): tell it to register again. */
		if (e->cmd == TQI_DONE) {
			b->n.fenced++;
			tqi_conns_chatter(b, TQI_ROLE_WORKER, f->frame);
		}
		if (e->cmd != TQI_BYE)
			disconnect(b, &f->id, "unknown worker: register with READY");
		return;
	}
	w->peer.last_seen_ms = b->now_ms;
	switch (e->cmd) {
	case TQI_DONE:
		done_and_progress(b, w, f, e);
		break;
	case TQI_PING:
		break;
	case TQI_CAPACITY:
		/* The worker's prefetch changed. */
		w->capacity = capacity_of(b, w, w->concurrency, e->capacity);
		tqi_worker_pull(b, w);
		break;
	case TQI_DRAIN:
		if (!w->draining)
			tqi_log_limited(&b->peer_log, TQI_LOG_INFO,
			                "worker %s draining (%u tasks left)", w->peer.name,
			                w->load);
		if (!w->draining) {
			w->draining = true;
			stop_serving(b, w);
		}
		break;
	case TQI_BYE:
		tqi_peer_gone(b, &w->peer, "left");
		break;
	default:
		break;
	}
}

/* Takes back from w the tasks it sits on without starting them.
 *
 * A worker starts its tasks in the order it was given them, except that
 * when one ends, the process that ran it may go on with any task it holds
 * (PROTOCOL.md 4.3): tq-worker's executors, each with tasks written into
 * its pipe, go on with their own at their own speeds.  So the broker
 * cannot tell which of the tasks given before a worker's last DONE have
 * started - the oldest `concurrency` it holds need not be the ones running.
 * But with no DONE since, no process of the worker's has finished a task,
 * so one given since has started only on a process that was idle, and an
 * idle one takes the oldest task waiting: of the tasks given since its last
 * DONE (w->fresh on), those beyond the oldest `concurrency` it holds have
 * not started.  Once the first of them has waited --prefetch-timeout with
 * no DONE, those are taken back, newest first (tqi_reclaim), and w is
 * stalled (no prefetch) so that none comes back to it.  So a peer that
 * runs nothing keeps at most its concurrency, bounded by
 * --max-worker-capacity, until those tasks' deadlines - as a worker
 * running long tasks would, which the broker cannot tell from it.
 *
 * Cost: nothing for a worker with no such tasks (tqi_workers_tick visits
 * every worker anyway), O(1) for each task taken back. */
static void reclaim_from(tqi_broker *b, bworker *w)
{
	if (w->fresh == NULL || w->load <= w->concurrency ||
	    b->now_ms - w->fresh_ms < b->opts.prefetch_timeout_ms)
		return;
	uint64_t quiet = b->now_ms - w->fresh_ms;
	w->stalled = true;
	uint32_t beyond = w->load - w->concurrency, taken = 0;
	tqi_node *n = w->tasks.head.prev;
	for (; beyond > 0; beyond--) {
		btask *t = tqi_container_of(n, btask, qnode);
		tqi_node *prev = n->prev;
		bool oldest = t == w->fresh;
		/* A task whose owner was answered, or that is being cancelled,
		 * waits for the worker's word where it is. */
		if (!(t->flags & (TASKF_ANSWERED | TASKF_CANCELLING))) {
			if (!tqi_reclaim(b, t))
				break; /* no other worker: the next tick tries again */
			taken++;
		}
		if (oldest)
			break;
		n = prev;
	}
	if (taken > 0)
		tqi_log_limited(&b->bad_log, TQI_LOG_WARN,
		                "worker %s (%s) holds %u tasks it has not started for %llu ms: "
		                "given to others",
		                w->peer.name, w->peer.idhex, taken, (unsigned long long)quiet);
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
		reclaim_from(b, w);
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
