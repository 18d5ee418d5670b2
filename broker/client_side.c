/*
 * client_side.c - the broker's side of the client protocol: sessions,
 * submissions, cancellation, deadlines, and what happens when an owner dies.
 *
 * A client opens a session with HELLO and a nonce of its choosing; every
 * SUBMIT names that nonce, and a SUBMIT whose nonce the broker does not
 * hold (the broker restarted, or dropped the session) is refused with
 * TQ_ESESSION - so the client always knows which of its tasks the broker
 * still has.  An owner is dead when a heartbeat to it meets EHOSTUNREACH
 * (its connection closed, or ZMTP heartbeats found it frozen): its queued
 * and running async tasks are cancelled, as a linked Elixir task dies with
 * its caller; detached (start) tasks run on.
 */
#include "broker/broker.h"

#include "base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bclient *find_client(tqi_broker *b, const zmq_msg_t *id)
{
	bpeer *p = tqi_peer_find(&b->clients, &b->last_client, id);
	return p ? tqi_container_of(p, bclient, peer) : NULL;
}

/* Answers a message from a peer that may have no session. */
static void reply(tqi_broker *b, bclient *c, const zmq_msg_t *id, const tqi_env *e)
{
	if (c != NULL && !c->peer.gone) {
		tqi_send_to(b, b->clients_sock, &c->peer, e, NULL, 0);
		return;
	}
	if (tqi_send_raw(b, b->clients_sock, id, e) != 0)
		tqi_log_limited(&b->bad_log, TQI_LOG_WARN,
		                "could not answer a client without a session");
}

static void refuse(tqi_broker *b, bclient *c, const zmq_msg_t *id, const uint8_t *ref, tq_err code,
                   const char *msg)
{
	b->n.rejected++;
	tqi_env e = { .cmd = TQI_REFUSED,
		      .command = TQI_SUBMIT,
		      .code = code,
		      .text = { msg, (uint32_t)strlen(msg) } };
	memcpy(e.ref, ref, TQI_REF_LEN);
	reply(b, c, id, &e);
}

void tqi_client_free(tqi_broker *b, bclient *c)
{
	uint32_t cancelled = 0;
	tqi_node *n;
	while ((n = tqi_list_pop_front(&c->tasks)) != NULL) {
		btask *t = tqi_container_of(n, btask, cnode);
		t->owner = NULL;
		cancelled++;
		b->n.cancelled++;
		if (t->state == TASK_QUEUED) {
			tqi_task_free(b, t);
		} else {
			/* Stays until its worker confirms the stop. */
			t->flags |= TASKF_ANSWERED;
			if (!(t->flags & TASKF_CANCELLING))
				tqi_cancel_on_worker(b, t, 0);
		}
	}
	if (c->peer.gone && c->peer.gone_why != NULL) {
		b->n.owners_lost++;
		tqi_log_limited(cancelled > 0 ? &b->owner_log : &b->peer_log, TQI_LOG_INFO,
		                "client %s (%s) lost: %s; %u tasks cancelled", c->peer.name,
		                c->peer.idhex, c->peer.gone_why, cancelled);
	}
	tqi_hmap_remove(&b->clients, &c->peer.hnode);
	tqi_list_remove(&b->client_list, &c->all);
	if (b->last_client == &c->peer)
		b->last_client = NULL;
	tqi_outbox_clear(b, &c->peer);
	tqi_acct_put(&c->acct); /* its detached tasks may hold it on */
	free(c);
}

/* Opens a session for the peer `id`, not yet in the tables; NULL when out
 * of memory. */
static bclient *session_new(tqi_broker *b, const zmq_msg_t *id, const tqi_env *e)
{
	bclient *c = calloc(1, sizeof *c);
	bacct *acct = tqi_acct_new();
	if (c == NULL || acct == NULL) {
		free(c);
		tqi_acct_put(&acct);
		tqi_log_limited(&b->bad_log, TQI_LOG_ERROR, "out of memory opening a session");
		return NULL;
	}
	c->acct = acct;
	tqi_peer_init(&c->peer, TQI_ROLE_CLIENT, id);
	memcpy(c->peer.name, e->name.p, e->name.n);
	c->peer.name[e->name.n] = '\0';
	c->session = e->session;
	tqi_list_init(&c->tasks);
	return c;
}

static void on_hello(tqi_broker *b, tqi_frames *f, bclient *c, const tqi_env *e)
{
	bool resumed = c != NULL && !c->peer.gone && c->session == e->session;
	if (!resumed) {
		bclient *old = c;
		c = session_new(b, &f->id, e);
		if (old != NULL && !old->peer.gone) {
			/* A new session replaces the old: the client has given up
			 * on what the old one held, which is cancelled.  It hears
			 * so for each task, before WELCOME, on the new session
			 * (same routing id): ECANCELLED, as for a CANCEL - the
			 * client's own act ended them, and ESESSION would say they
			 * were never accepted. */
			tqi_node *it, *nx;
			tqi_list_each(&old->tasks, it, nx)
			{
				if (c == NULL)
					break; /* out of memory: no session to tell */
				tqi_task_fail_to(b, tqi_container_of(it, btask, cnode), &c->peer,
				                 TQ_ECANCELLED,
				                 "its session was replaced by a new HELLO");
			}
			tqi_peer_gone(b, &old->peer, "started a new session");
		}
		if (old != NULL)
			tqi_peers_reap(b);
		if (c == NULL)
			return;
		tqi_hmap_insert(&b->clients, &c->peer.hnode, c->peer.id, c->peer.idlen);
		tqi_list_push_back(&b->client_list, &c->all);
		tqi_log_limited(&b->peer_log, TQI_LOG_DEBUG, "client %s (%s) opened a session",
		                c->peer.name, c->peer.idhex);
	}
	c->peer.last_seen_ms = b->now_ms;
	tqi_env w = { .cmd = TQI_WELCOME,
		      .resumed = resumed,
		      .heartbeat_ms = b->opts.heartbeat_ms,
		      .mark = e->mark };
	memcpy(w.instance, b->instance, TQI_REF_LEN);
	tqi_send_to(b, b->clients_sock, &c->peer, &w, NULL, 0);
}

/* Handles a SUBMIT; true when the task was accepted. */
static bool on_submit(tqi_broker *b, tqi_frames *f, bclient *c, const tqi_env *e)
{
	char msg[TQI_MAX_NAME + 64];
	if (c == NULL || c->peer.gone || c->session != e->session) {
		refuse(b, c, &f->id, e->ref, TQ_ESESSION, "no such session: send HELLO first");
		return false;
	}
	if (b->stop) {
		refuse(b, c, &f->id, e->ref, TQ_ESHUTDOWN, "broker shutting down");
		return false;
	}
	if (tqi_task_find(b, e->ref) != NULL) {
		refuse(b, c, &f->id, e->ref, TQ_EEXIST, "task reference already in use");
		return false;
	}
	if (b->ntasks >= b->opts.max_tasks) {
		snprintf(msg, sizeof msg, "broker holds its maximum of %llu tasks",
		         (unsigned long long)b->opts.max_tasks);
		refuse(b, c, &f->id, e->ref, TQ_EBUSY, msg);
		return false;
	}
	if (f->payload_len > b->opts.max_payload) {
		snprintf(msg, sizeof msg, "arguments of %zu bytes exceed the limit of %llu",
		         f->payload_len, (unsigned long long)b->opts.max_payload);
		refuse(b, c, &f->id, e->ref, TQ_ETOOBIG, msg);
		return false;
	}
	uint64_t cost = tqi_task_cost(f->payload_len);
	if (tqi_budget_admit(b, c->acct, cost, msg, sizeof msg) != TQ_OK) {
		refuse(b, c, &f->id, e->ref, TQ_EBUSY, msg);
		return false;
	}
	zmq_msg_t args; /* out of the frame, to stay with the task */
	bfunc *fn = NULL;
	btask *t = NULL;
	if (tqi_frames_payload(f, &args) == 0 &&
	    (fn = tqi_func_get(b, e->function.p, e->function.n, true)) != NULL)
		t = tqi_task_new(b, e->ref, fn);
	if (t == NULL) {
		if (fn != NULL)
			tqi_func_release(b, fn);
		zmq_msg_close(&args);
		refuse(b, c, &f->id, e->ref, TQ_ENOMEM, "broker out of memory");
		return false;
	}
	b->n.submitted++;
	zmq_msg_move(&t->payload, &args);
	zmq_msg_close(&args);
	t->acct = tqi_acct_get(c->acct);
	tqi_budget_charge(b, t->acct, cost);
	t->retries_left = (uint8_t)e->retries;
	/* Every task ends by the broker's bound: none asked for (0), or a
	 * longer one, gets the bound, so no task holds a worker for ever. */
	if (e->timeout_ms > 0 && e->timeout_ms < b->opts.max_task_time_ms)
		tqi_task_set_deadline(b, t, tqi_deadline_after(b->now_ms, e->timeout_ms));
	else
		tqi_task_set_bound(b, t);
	if (e->flags & TQI_SUBMIT_DETACHED) {
		t->flags |= TASKF_DETACHED;
		tqi_env a = { .cmd = TQI_ACCEPTED };
		memcpy(a.ref, t->ref, TQI_REF_LEN);
		tqi_send_to(b, b->clients_sock, &c->peer, &a, NULL, 0);
	} else {
		t->owner = c;
		tqi_list_push_back(&c->tasks, &t->cnode);
	}
	tqi_enqueue(b, t, false); /* NOTICE{ENOWORKER} if no worker serves fn */
	return true;
}

static btask *owned(tqi_broker *b, bclient *c, const uint8_t *ref)
{
	btask *t = tqi_task_find(b, ref);
	return t != NULL && c != NULL && t->owner == c ? t : NULL;
}

static void on_cancel(tqi_broker *b, bclient *c, const tqi_env *e)
{
	btask *t = owned(b, c, e->ref);
	if (t == NULL)
		return; /* finished already, or not this client's */
	if (t->state == TASK_QUEUED) {
		b->n.cancelled++;
		tqi_task_fail(b, t, TQ_ECANCELLED, "cancelled while queued");
		tqi_task_free(b, t);
	} else if (!(t->flags & TASKF_CANCELLING)) {
		tqi_cancel_on_worker(b, t, e->grace_ms);
	}
}

static void on_detach(tqi_broker *b, bclient *c, const tqi_env *e)
{
	btask *t = owned(b, c, e->ref);
	if (t == NULL)
		return;
	tqi_list_remove(&c->tasks, &t->cnode);
	t->owner = NULL;
	t->flags |= TASKF_DETACHED;
	/* Acknowledged, so that a client may ignore a task and exit at once:
	 * its disconnection can be noticed before the DETACH behind it is
	 * read, and would cancel the task. */
	tqi_env a = { .cmd = TQI_ACCEPTED };
	memcpy(a.ref, t->ref, TQI_REF_LEN);
	tqi_send_to(b, b->clients_sock, &c->peer, &a, NULL, 0);
}

static void on_deadline(tqi_broker *b, bclient *c, const tqi_env *e)
{
	size_t cur = 0;
	const uint8_t *ref;
	while (tqi_raw_next_ref(&e->refs, &cur, &ref)) {
		btask *t = owned(b, c, ref);
		if (t != NULL)
			tqi_task_set_deadline(b, t, tqi_deadline_after(b->now_ms, e->timeout_ms));
	}
}

/* CHECK: which of these tasks, submitted by this client, does the broker
 * not hold?  After its connection broke, a client cannot tell an answer
 * lost with the old connection from one still to come; CHECKED lists the
 * refs that will get no answer from here, whatever the reason (ended,
 * and the answer was lost; submitted, and the SUBMIT was lost; or the
 * session is gone).  The answer is never larger than the question. */
static void on_check(tqi_broker *b, tqi_frames *f, bclient *c, const tqi_env *e)
{
	tqi_wbuf missing;
	tqi_wbuf_init(&missing);
	uint32_t n = 0;
	size_t cur = 0;
	const uint8_t *ref;
	bool live = c != NULL && !c->peer.gone, oom = false;
	while (!oom && tqi_raw_next_ref(&e->refs, &cur, &ref)) {
		btask *t = live ? owned(b, c, ref) : NULL;
		if (t != NULL && !(t->flags & TASKF_ANSWERED))
			continue;
		oom = tqi_raw_add_ref(&missing, ref) != 0;
		n++;
	}
	/* A partial list would say the others are held: none at all, and the
	 * client asks again at its next reconnection or await. */
	if (!oom) {
		tqi_env r = { .cmd = TQI_CHECKED,
			      .mark = e->mark,
			      .refs = tqi_raw_of(&missing, n) };
		reply(b, c, &f->id, &r);
	}
	tqi_wbuf_free(&missing);
}

/* STATS replies are the one answer much bigger than its question (up to a
 * thousand workers and functions): each client may ask STATS_PER_SEC a
 * second (after a burst), and peers without a session share one such
 * allowance, so that no peer can make the broker write more than it
 * reads.  One over it is answered, at ERROR's bounded rate, with EBUSY. */
#define STATS_PER_SEC 10.0
#define STATS_BURST 20.0

static bool stats_allowed(tqi_broker *b, bclient *c, tqi_frames *f)
{
	tqi_ratelimit *rl = c != NULL && !c->peer.gone ? &c->stats_rate : &b->stats_anon;
	if (tqi_ratelimit_take(rl, b->now_ms, STATS_PER_SEC, STATS_BURST))
		return true;
	b->n.throttled++;
	if (tqi_ratelimit_take(&b->bad_reply, b->now_ms, TQI_BAD_REPLY_PER_SEC,
	                       TQI_BAD_REPLY_BURST)) {
		static const char why[] = "STATS asked for more than 10 times a second";
		tqi_env e = { .cmd = TQI_ERROR, .code = TQ_EBUSY, .text = { why, sizeof why - 1 } };
		tqi_send_raw(b, b->clients_sock, &f->id, &e);
	}
	return false;
}

static void on_stats(tqi_broker *b, bclient *c, tqi_frames *f)
{
	if (!stats_allowed(b, c, f))
		return;
	tqi_wbuf map;
	tqi_wbuf_init(&map);
	if (tqi_stats_encode(b, &map) == TQ_OK) {
		tqi_env e = { .cmd = TQI_STATS_REPLY, .stats = { map.data, map.len, 1 } };
		reply(b, c, &f->id, &e);
	}
	tqi_wbuf_free(&map);
}

void tqi_client_message(tqi_broker *b, tqi_frames *f)
{
	if (tqi_conns_dropping(b, TQI_ROLE_CLIENT, f->frame))
		return; /* from a connection cut off for its chatter */
	char why[256];
	tq_err err = tqi_frames_decode(f, TQI_ROLE_CLIENT, TQI_ROLE_BROKER, why, sizeof why);
	if (err != TQ_OK) {
		tqi_bad_message(b, b->clients_sock, "client", f, err, why);
		return;
	}
	const tqi_env *e = &f->e;
	bclient *c = find_client(b, &f->id);
	if (c != NULL && !c->peer.gone)
		c->peer.last_seen_ms = b->now_ms;
	if (e->cmd == TQI_SUBMIT && on_submit(b, f, c, e))
		return; /* work: the only command not counted as chatter */
	tqi_conns_chatter(b, TQI_ROLE_CLIENT, f->frame);
	switch (e->cmd) {
	case TQI_HELLO:
		on_hello(b, f, c, e);
		break;
	case TQI_CANCEL:
		on_cancel(b, c, e);
		break;
	case TQI_DETACH:
		on_detach(b, c, e);
		break;
	case TQI_DEADLINE:
		on_deadline(b, c, e);
		break;
	case TQI_CHECK:
		on_check(b, f, c, e);
		break;
	case TQI_STATS:
		on_stats(b, c, f);
		break;
	default:
		break;
	}
}

void tqi_clients_tick(tqi_broker *b)
{
	tqi_node *it, *nx;
	tqi_list_each(&b->client_list, it, nx)
	{
		bclient *c = tqi_container_of(it, bclient, all);
		if (c->peer.gone)
			continue;
		if (tqi_list_empty(&c->tasks)) {
			/* Nothing to cancel if it dies: an idle session is only
			 * kept for a while, to spare a HELLO. */
			if (b->now_ms - c->peer.last_seen_ms > b->opts.session_idle_ms)
				tqi_client_free(b, c);
			continue;
		}
		if (!tqi_list_empty(&c->peer.outbox))
			continue; /* not reading; it is alive as far as we know */
		/* The probe: EHOSTUNREACH here means the owner is gone. */
		tqi_env e = { .cmd = TQI_HEARTBEAT };
		memcpy(e.instance, b->instance, TQI_REF_LEN);
		tqi_send_to(b, b->clients_sock, &c->peer, &e, NULL, 0);
	}
}

void tqi_clients_free_all(tqi_broker *b)
{
	tqi_node *n;
	while ((n = tqi_list_front(&b->client_list)) != NULL) {
		bclient *c = tqi_container_of(n, bclient, all);
		c->peer.gone_why = NULL;
		tqi_client_free(b, c);
	}
}
