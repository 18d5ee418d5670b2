/*
 * client.c - the client's connection, its session with the broker, and the
 * pump that turns broker messages into task outcomes.
 *
 * No thread of its own: messages are read while the owner waits in a
 * blocking call.  The broker heartbeats a client that has tasks with it, so
 * silence while waiting means trouble: after two heartbeat intervals the
 * client probes with HELLO (which also tells it whether the broker still
 * holds its session); after the broker timeout it fails the tasks that
 * have no retries with TQ_EBROKERLOST instead of letting them hang.
 */
#include "client/session.h"

#include "base/clock.h"
#include "base/hex.h"
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { DEFAULT_BROKER_TIMEOUT_MS = 2000, PROBE_GAP_MAX_MS = 5000 };

static int ref_eq(const tqi_hnode *n, const void *key, size_t len)
{
	(void)len;
	return memcmp(tqi_container_of(n, tq_task, hnode)->ref, key, TQI_REF_LEN) == 0;
}

/* Results come many to a frame: the next one's task is looked up while
 * this one is handled (hmap.h). */
static void prefetch_pending(void *arg, const uint8_t ref[TQI_REF_LEN])
{
	tqi_hmap_prefetch(&((tq_client *)arg)->pending, ref, TQI_REF_LEN);
}

static int dropped_eq(const tqi_hnode *n, const void *key, size_t len)
{
	(void)len;
	return memcmp(tqi_container_of(n, cdropped, hnode)->ref, key, TQI_REF_LEN) == 0;
}

static int name_eq(const tqi_hnode *n, const void *key, size_t len)
{
	const cname *c = tqi_container_of(n, cname, hnode);
	return c->len == len && memcmp(c->s, key, len) == 0;
}

const cname *tqi_intern(tq_client *c, const char *s, size_t len)
{
	/* Most tasks name the function (or worker) the previous one did. */
	const cname *last = c->last_name;
	if (last != NULL && last->len == len && memcmp(last->s, s, len) == 0)
		return last;
	tqi_hnode *n = tqi_hmap_find(&c->names, s, len);
	if (n != NULL)
		return c->last_name = tqi_container_of(n, cname, hnode);
	cname *e = malloc(sizeof *e + len + 1);
	if (e == NULL)
		return NULL;
	e->len = (uint32_t)len;
	memcpy(e->s, s, len);
	e->s[len] = '\0';
	tqi_hmap_insert(&c->names, &e->hnode, e->s, len);
	return c->last_name = e;
}

/* Sends one command, with its payload (copied) when it carries one. */
static int send_cmd(tq_client *c, const tqi_env *e, const void *payload, size_t len)
{
	tqi_wbuf_reset(&c->scratch);
	if (tqi_cmd_append(e, payload, len, &c->scratch) != TQ_OK)
		return -1;
	/* No high-water mark on the client's socket: this queues while the
	 * broker is away and never blocks. */
	return tqi_send(c->sock, NULL, 0, c->scratch.data, c->scratch.len, 0);
}

static void send_hello(tq_client *c)
{
	tqi_env e = { .cmd = TQI_HELLO,
		      .session = c->session,
		      .name = { c->name, (uint32_t)strlen(c->name) },
		      .mark = c->seq };
	c->last_hello_ms = tqi_now_ms();
	c->last_hello_seq = c->seq;
	send_cmd(c, &e, NULL, 0);
}

/* Opens c->mon, a socket that receives c->sock's disconnections. */
static int watch_connection(tq_client *c)
{
	char ep[64];
	snprintf(ep, sizeof ep, "inproc://tq-client-monitor-%p", (void *)c);
	if (zmq_socket_monitor(c->sock, ep, ZMQ_EVENT_DISCONNECTED) != 0)
		return -1;
	c->mon = zmq_socket(c->ctx, ZMQ_PAIR);
	/* No receive high-water mark: libzmq's thread blocks on a full
	 * monitor pipe, and events are read only while a call waits. */
	int zero = 0;
	if (c->mon == NULL || zmq_setsockopt(c->mon, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
	    zmq_setsockopt(c->mon, ZMQ_RCVHWM, &zero, sizeof zero) != 0 ||
	    zmq_connect(c->mon, ep) != 0)
		return -1;
	return 0;
}

tq_err tq_client_new(tq_client **out, const tq_client_opts *opts)
{
	tq_client_opts o = { 0 };
	if (opts != NULL)
		o = *opts;
	const char *ep = o.broker ? o.broker : getenv("TQ_BROKER");
	if (ep == NULL || *ep == '\0')
		ep = "tcp://127.0.0.1:5555";
	if (strlen(ep) >= 256 || (o.name && strlen(o.name) > TQI_MAX_NAME) ||
	    o.broker_timeout_ms < 0)
		return TQ_EINVAL;
	tq_client *c = calloc(1, sizeof *c);
	if (c == NULL)
		return TQ_ENOMEM;
	snprintf(c->broker, sizeof c->broker, "%s", ep);
	if (o.name != NULL) {
		snprintf(c->name, sizeof c->name, "%s", o.name);
	} else {
		char host[200] = "localhost";
		gethostname(host, sizeof host - 1);
		host[sizeof host - 1] = '\0';
		snprintf(c->name, sizeof c->name, "%s:%d", host, (int)getpid());
	}
	c->broker_timeout_ms =
	    o.broker_timeout_ms ? o.broker_timeout_ms : DEFAULT_BROKER_TIMEOUT_MS;
	tqi_rand_seed(&c->rng);
	do
		c->session = tqi_rand_u64(&c->rng);
	while (c->session == 0);
	tqi_rand_bytes(&c->rng, c->next_ref, sizeof c->next_ref);
	tqi_wbuf_init(&c->scratch);
	tqi_hmap_init(&c->pending, ref_eq);
	tqi_hmap_init(&c->names, name_eq);
	tqi_hmap_init(&c->dropped, dropped_eq);
	tqi_list_init(&c->dropped_order);
	tqi_list_init(&c->tasks);
	tqi_list_init(&c->orphans);
	tqi_list_init(&c->waiting);
	tqi_list_init(&c->streams);
	c->probe_gap_ms = tqi_hb_ms(c);

	tq_err err = TQ_ETRANSPORT;
	c->ctx = zmq_ctx_new();
	if (c->ctx == NULL)
		goto fail;
	uint8_t id[TQI_REF_LEN];
	tqi_rand_bytes(&c->rng, id, sizeof id);
	/* On close, what is still queued (a cancellation, a detach) gets up to
	 * the broker timeout to go out.  ZMTP heartbeats drop a connection to a
	 * vanished broker so that ZeroMQ reconnects instead of writing into a
	 * dead TCP stream. */
	c->sock = tqi_dealer_open(c->ctx, id, c->broker, c->broker_timeout_ms, 250);
	if (c->sock == NULL) {
		err = errno == EINVAL || errno == EPROTONOSUPPORT ? TQ_EINVAL : TQ_ETRANSPORT;
		goto fail;
	}
	if (watch_connection(c) != 0)
		goto fail;
	tqi_rx_init(&c->rx, c->sock, false);
	c->rx.ahead = prefetch_pending;
	c->rx.ahead_arg = c;
	/* HELLO goes out with the first SUBMIT: a client that only asks for
	 * stats opens no session. */
	*out = c;
	return TQ_OK;
fail:
	tq_client_destroy(&c);
	return err;
}

/* ---- tasks cancelled and dropped (see cdropped) ---- */

static void forget_dropped(tq_client *c, cdropped *d)
{
	tqi_hmap_remove(&c->dropped, &d->hnode);
	tqi_list_remove(&c->dropped_order, &d->order);
	free(d);
}

/* Forgets the refs kept too long, and the oldest while there are `keep`
 * or more. */
static void expire_dropped(tq_client *c, uint64_t now, size_t keep)
{
	tqi_node *n;
	while ((n = tqi_list_front(&c->dropped_order)) != NULL) {
		cdropped *d = tqi_container_of(n, cdropped, order);
		if (tqi_hmap_count(&c->dropped) < keep && now - d->at_ms < TQI_DROPPED_MS)
			break;
		forget_dropped(c, d);
	}
}

static void remember_dropped(tq_client *c, const uint8_t ref[TQI_REF_LEN])
{
	uint64_t now = tqi_now_ms();
	expire_dropped(c, now, TQI_DROPPED_MAX);
	if (tqi_hmap_find(&c->dropped, ref, TQI_REF_LEN) != NULL)
		return;
	cdropped *d = malloc(sizeof *d);
	if (d == NULL)
		return; /* its answer will be counted as a stray */
	memcpy(d->ref, ref, TQI_REF_LEN);
	d->at_ms = now;
	tqi_hmap_insert(&c->dropped, &d->hnode, d->ref, TQI_REF_LEN);
	tqi_list_push_back(&c->dropped_order, &d->order);
}

static void free_name(tqi_hnode *n, void *arg)
{
	tq_client *c = arg;
	tqi_hmap_remove(&c->names, n);
	free(tqi_container_of(n, cname, hnode));
}

void tq_client_destroy(tq_client **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	tq_client *c = *cp;
	/* Streams first: their cancels must go out while the socket lives,
	 * and their tasks are handles that the loop below would detach. */
	tqi_streams_detach(c);
	tqi_reap_orphans(c, true); /* given up, like the tasks still pending */
	tqi_node *n;
	while ((n = tqi_list_pop_front(&c->tasks)) != NULL) {
		/* The handle outlives us: it keeps its outcome, if any, but
		 * can no longer wait for one. */
		tq_task *t = tqi_container_of(n, tq_task, all);
		if (t->state == CT_SUBMITTED || t->state == CT_WAITING) {
			char msg[TQI_MAX_NAME + 96];
			snprintf(msg, sizeof msg,
			         "task %.8s (%s) was given up: its client was destroyed",
			         tqi_task_refhex(t), t->fn->s);
			tqi_task_end(t, TQ_ECANCELLED, msg); /* also unlinks it */
		}
		t->fn = NULL; /* interned names die with the client */
		t->worker = NULL;
		t->client = NULL;
	}
	expire_dropped(c, tqi_now_ms(), 0);
	if (c->mon)
		zmq_close(c->mon);
	if (c->sock) {
		tqi_rx_close(&c->rx);
		zmq_close(c->sock);
	}
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	tqi_hmap_foreach(&c->names, free_name, c);
	tqi_hmap_destroy(&c->names);
	tqi_hmap_destroy(&c->dropped);
	tqi_hmap_destroy(&c->pending);
	tqi_wbuf_free(&c->scratch);
	free(c->stats);
	free(c);
	*cp = NULL;
}

uint64_t tq_client_strays(const tq_client *c)
{
	return c->strays;
}

uint64_t tq_client_resubmitted(const tq_client *c)
{
	return c->resubmitted;
}

const char *tq_client_broker(const tq_client *c)
{
	return c->broker;
}

/* ---- sending ---- */

tq_err tqi_submit(tq_client *c, tq_task *t)
{
	uint64_t now = tqi_now_ms();
	uint64_t timeout = 0;
	if (t->deadline_ms != 0) {
		if (t->deadline_ms <= now) {
			tqi_task_end(t, TQ_ETIMEDOUT, NULL);
			return TQ_ETIMEDOUT;
		}
		timeout = t->deadline_ms - now;
	}
	if (c->last_hello_ms == 0)
		send_hello(c);
	if (tqi_hmap_count(&c->pending) == 0)
		c->waiting_since_ms = now;
	if (t->state == CT_WAITING)
		tqi_list_remove(&c->waiting, &t->wnode);
	if (t->state != CT_SUBMITTED && t->state != CT_WAITING)
		tqi_hmap_insert(&c->pending, &t->hnode, t->ref, TQI_REF_LEN);
	t->state = CT_SUBMITTED;
	t->session = c->session;
	t->seq = ++c->seq;
	t->submitted_ms = now;
	t->deadline_sent = false;
	t->cancel_owed = false; /* a CANCEL before this SUBMIT is not answered for it */
	tqi_env e = { .cmd = TQI_SUBMIT,
		      .session = c->session,
		      .function = { t->fn->s, t->fn->len },
		      .timeout_ms = timeout,
		      .retries = t->retries_left,
		      .flags = t->detached ? TQI_SUBMIT_DETACHED : 0 };
	memcpy(e.ref, t->ref, TQI_REF_LEN);
	/* t->args stays with the task: kept for a resubmission. */
	int rc = send_cmd(c, &e, zmq_msg_data(&t->args), zmq_msg_size(&t->args));
	return rc == 0 ? TQ_OK : TQ_ETRANSPORT;
}

void tqi_send_cancel(tq_client *c, tq_task *t, uint32_t grace_ms)
{
	t->cancel_owed = true;
	tqi_env e = { .cmd = TQI_CANCEL, .grace_ms = grace_ms };
	memcpy(e.ref, t->ref, TQI_REF_LEN);
	send_cmd(c, &e, NULL, 0);
}

void tqi_send_detach(tq_client *c, const tq_task *t)
{
	tqi_env e = { .cmd = TQI_DETACH };
	memcpy(e.ref, t->ref, TQI_REF_LEN);
	send_cmd(c, &e, NULL, 0);
}

void tqi_send_deadline(tq_client *c, tq_task **tasks, size_t n, uint64_t timeout_ms)
{
	tqi_wbuf refs;
	tqi_wbuf_init(&refs);
	uint32_t count = 0;
	for (size_t i = 0; i <= n; i++) {
		if (count == TQI_MAX_DEADLINE_REFS || (i == n && count > 0)) {
			tqi_env e = { .cmd = TQI_DEADLINE,
				      .timeout_ms = timeout_ms,
				      .refs = tqi_raw_of(&refs, count) };
			send_cmd(c, &e, NULL, 0);
			tqi_wbuf_reset(&refs);
			count = 0;
		}
		if (i == n)
			break;
		tq_task *t = tasks[i];
		if (t->state != CT_SUBMITTED || t->keep_on_timeout || t->deadline_sent)
			continue;
		t->deadline_sent = true;
		tqi_raw_add_ref(&refs, t->ref);
		count++;
	}
	tqi_wbuf_free(&refs);
}

/* After the connection to the broker broke, asks which of the tasks in
 * flight the broker does not hold: an answer sent into the old connection
 * was lost with it, and so was a SUBMIT not yet through.  The CHECK goes
 * out on the next connection, behind what was queued before it. */
uint64_t tqi_deadline_lag(const tq_client *c, uint64_t until)
{
	uint64_t lag = tqi_now_ms() + tqi_hb_ms(c);
	return lag < until ? lag : until;
}

void tqi_send_await_deadline(tq_client *c, tq_task **tasks, size_t n, uint64_t until)
{
	uint64_t now = tqi_now_ms();
	if (until == UINT64_MAX || until <= now)
		return;
	uint64_t slack = tqi_hb_ms(c);
	tqi_send_deadline(c, tasks, n, until - now + slack);
}

void tqi_send_stats(tq_client *c)
{
	tqi_env e = { .cmd = TQI_STATS };
	send_cmd(c, &e, NULL, 0);
}

/* ---- task outcomes ---- */

void tqi_task_unlink(tq_task *t)
{
	tq_client *c = t->client;
	if (c == NULL)
		return;
	if (t->state == CT_SUBMITTED && t->cancel_owed) {
		/* Given up on before the broker confirmed the cancel: its
		 * answer is still to come. */
		remember_dropped(c, t->ref);
		t->cancel_owed = false;
	}
	if (t->state == CT_SUBMITTED || t->state == CT_WAITING)
		tqi_hmap_remove(&c->pending, &t->hnode);
	if (t->state == CT_WAITING)
		tqi_list_remove(&c->waiting, &t->wnode);
}

void tqi_task_end(tq_task *t, tq_err outcome, const char *why)
{
	if (t->state == CT_DONE || t->state == CT_CONSUMED)
		return;
	tqi_task_unlink(t);
	t->state = CT_DONE;
	t->outcome = outcome;
	free(t->error);
	t->error = why ? strdup(why) : NULL;
	/* Nothing will be resubmitted: let the arguments go. */
	zmq_msg_close(&t->args);
	zmq_msg_init(&t->args);
	if (t->group != NULL) {
		t->group->ended++;
		if (outcome != TQ_OK && t->group->first_bad == SIZE_MAX)
			t->group->first_bad = t->group_index;
	}
}

/* snprintf that may truncate: explanations are cut at the buffer's end. */
static void fit(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fit(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, n, fmt, ap);
	va_end(ap);
}

/* The explanation of a failure, as the user sees it. */
static void explain(const tq_task *t, tq_err code, const char *worker, const char *detail,
                    char *out, size_t n)
{
	char head[96];
	fit(head, sizeof head, "task %.8s (%s)", tq_task_ref(t), t->fn ? t->fn->s : "?");
	const char *on = worker && *worker ? " on worker " : "";
	if (worker == NULL)
		worker = "";
	switch (code) {
	case TQ_EFAILED:
		fit(out, n, "%s failed%s%s: %s", head, on, worker, detail);
		break;
	case TQ_ETASKCRASHED:
		fit(out, n, "%s crashed%s%s: %s", head, on, worker, detail);
		break;
	case TQ_EWORKERLOST:
		fit(out, n, "%s lost its worker: %s", head, detail);
		break;
	case TQ_ECANCELLED:
		fit(out, n, "%s was cancelled: %s", head, detail);
		break;
	case TQ_ETIMEDOUT:
		fit(out, n, "%s timed out: %s", head, detail);
		break;
	case TQ_EKILLED:
		fit(out, n, "%s was killed%s%s: %s", head, on, worker, detail);
		break;
	case TQ_ENOWORKER:
		fit(out, n, "%s found no worker: %s", head, detail);
		break;
	case TQ_EBROKERLOST:
		fit(out, n, "%s was lost with the broker: %s", head, detail);
		break;
	default:
		fit(out, n, "%s failed: %s (%s)", head, tq_strerror(code), detail);
		break;
	}
}

/* A task lost with the broker: retry it if it may be, else fail it. */
static void lost(tq_client *c, tq_task *t, const char *why)
{
	char msg[512];
	if (t->retries_left > 0) {
		t->retries_left--;
		c->resubmitted++;
		tqi_submit(c, t);
		return;
	}
	explain(t, TQ_EBROKERLOST, NULL, why, msg, sizeof msg);
	tqi_task_end(t, TQ_EBROKERLOST, msg);
}

typedef struct {
	tq_client *c;
	uint64_t upto;
	const char *why;
	tq_task **v;
	size_t n, cap;
} lost_walk;

static void collect_lost(tqi_hnode *n, void *arg)
{
	lost_walk *lw = arg;
	tq_task *t = tqi_container_of(n, tq_task, hnode);
	if (t->state != CT_SUBMITTED || t->seq > lw->upto)
		return;
	if (lw->n == lw->cap) {
		size_t cap = lw->cap ? lw->cap * 2 : 64;
		tq_task **v = realloc(lw->v, cap * sizeof *v);
		if (v == NULL)
			return;
		lw->v = v;
		lw->cap = cap;
	}
	lw->v[lw->n++] = t;
}

/* Every task submitted up to seq `upto` and still pending was lost. */
static void session_lost(tq_client *c, uint64_t upto, const char *why)
{
	lost_walk lw = { c, upto, why, NULL, 0, 0 };
	tqi_hmap_foreach(&c->pending, collect_lost, &lw);
	if (lw.n > 0)
		tqi_warn("%zu tasks lost: %s", lw.n, why);
	for (size_t i = 0; i < lw.n; i++)
		lost(c, lw.v[i], why);
	free(lw.v);
}

static void resubmit_waiting(tq_client *c)
{
	tqi_node *n;
	while ((n = tqi_list_front(&c->waiting)) != NULL) {
		tq_task *t = tqi_container_of(n, tq_task, wnode);
		c->resubmitted++;
		tqi_submit(c, t); /* takes it off the waiting list */
	}
}

/* ---- receiving ---- */

static void on_welcome(tq_client *c, const tqi_env *e)
{
	bool restarted = c->have_instance && memcmp(c->instance, e->instance, TQI_REF_LEN) != 0;
	memcpy(c->instance, e->instance, TQI_REF_LEN);
	c->have_instance = true;
	c->broker_hb_ms = e->heartbeat_ms;
	if (!e->resumed)
		session_lost(c, e->mark,
		             restarted ? "the broker restarted"
		                       : "the broker had dropped this client's session");
	if (!e->resumed || restarted)
		resubmit_waiting(c);
}

static void on_failed(tq_client *c, tq_task *t, const tqi_env *e)
{
	char detail[TQI_MAX_TEXT + 1], worker[TQI_MAX_NAME + 1], msg[TQI_MAX_TEXT + 256];
	snprintf(detail, sizeof detail, "%.*s", (int)e->text.n, e->text.p);
	snprintf(worker, sizeof worker, "%.*s", (int)e->name.n, e->name.p);
	switch (e->code) {
	case TQ_EBROKERLOST:
		if (t->retries_left > 0) {
			t->retries_left--;
			t->state = CT_WAITING;
			tqi_list_push_back(&c->waiting, &t->wnode);
			return;
		}
		break;
	default:
		break;
	}
	if (e->name.n > 0)
		t->worker = tqi_intern(c, e->name.p, e->name.n);
	t->attempt = e->attempt;
	explain(t, (tq_err)e->code, worker, detail, msg, sizeof msg);
	tqi_task_end(t, (tq_err)e->code, msg);
}

static void on_stats_reply(tq_client *c, const tqi_env *e)
{
	free(c->stats);
	c->stats = malloc(e->stats.len ? e->stats.len : 1);
	c->stats_len = c->stats ? e->stats.len : 0;
	if (c->stats != NULL)
		memcpy(c->stats, e->stats.p, e->stats.len);
	c->stats_ready = true;
}

static tq_task *find_pending(tq_client *c, const uint8_t *ref)
{
	tqi_hnode *n = tqi_hmap_find(&c->pending, ref, TQI_REF_LEN);
	return n ? tqi_container_of(n, tq_task, hnode) : NULL;
}

/* The pending task an answer is for.  An answer for none is either the
 * expected answer to a cancel of a task given up on (see cdropped), or a
 * stray: late, duplicate, or for a task this client never had. */
static tq_task *pending_task(tq_client *c, const uint8_t *ref)
{
	tq_task *t = find_pending(c, ref);
	if (t != NULL) {
		t->cancel_owed = false;
		return t;
	}
	tqi_hnode *n = tqi_hmap_find(&c->dropped, ref, TQI_REF_LEN);
	if (n != NULL)
		forget_dropped(c, tqi_container_of(n, cdropped, hnode));
	else
		c->strays++;
	return NULL;
}

typedef struct {
	tq_client *c;
	tqi_wbuf refs;
	uint32_t count;
} check_walk;

static void check_flush(check_walk *cw)
{
	tqi_env e = { .cmd = TQI_CHECK,
		      .mark = cw->c->seq,
		      .refs = tqi_raw_of(&cw->refs, cw->count) };
	send_cmd(cw->c, &e, NULL, 0);
	tqi_wbuf_reset(&cw->refs);
	cw->count = 0;
}

static void check_add(tqi_hnode *n, void *arg)
{
	check_walk *cw = arg;
	tq_task *t = tqi_container_of(n, tq_task, hnode);
	if (t->state != CT_SUBMITTED || tqi_raw_add_ref(&cw->refs, t->ref) != 0)
		return;
	if (++cw->count == TQI_MAX_DEADLINE_REFS)
		check_flush(cw);
}

static void send_check(tq_client *c)
{
	check_walk cw = { .c = c, .count = 0 };
	tqi_wbuf_init(&cw.refs);
	tqi_hmap_foreach(&c->pending, check_add, &cw);
	if (cw.count > 0)
		check_flush(&cw);
	tqi_wbuf_free(&cw.refs);
}

/* CHECKED: the tasks listed will get no answer from the broker.  Only a
 * task submitted no later than the CHECK (seq <= mark) is judged by it:
 * one submitted again since has its answer to come. */
static void on_checked(tq_client *c, const tqi_env *e)
{
	size_t cur = 0;
	const uint8_t *ref;
	while (tqi_raw_next_ref(&e->refs, &cur, &ref)) {
		tq_task *t = find_pending(c, ref);
		if (t != NULL && t->state == CT_SUBMITTED && t->seq <= e->mark)
			lost(c, t,
			     "the broker no longer holds it: its answer was lost with a broken "
			     "connection, or the broker dropped this client's session");
	}
}

/* Reads the monitor's events; after a disconnection, checks what is in
 * flight. */
static void watch_events(tq_client *c)
{
	bool broke = false;
	zmq_msg_t m;
	zmq_msg_init(&m);
	while (zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) >= 0) {
		uint16_t event = 0;
		if (zmq_msg_size(&m) == 6) /* [u16 event][u32 value] */
			memcpy(&event, zmq_msg_data(&m), 2);
		broke |= event == ZMQ_EVENT_DISCONNECTED;
		while (zmq_msg_more(&m) && zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) >= 0)
			; /* the endpoint */
	}
	zmq_msg_close(&m);
	if (broke)
		send_check(c);
}

/* A SUBMIT the broker refused: the task was never accepted and never ran. */
static void on_submit_refused(tq_client *c, tq_task *t, const tqi_env *e)
{
	char detail[TQI_MAX_TEXT + 1], msg[TQI_MAX_TEXT + 256];
	switch (e->code) {
	case TQ_ESESSION:
		/* Submit again once a HELLO has gone out after the refused
		 * SUBMIT, which re-opens the session. */
		if (c->last_hello_seq < t->seq)
			send_hello(c);
		tqi_submit(c, t);
		return;
	case TQ_ESHUTDOWN:
		/* Refused by a broker on its way out: wait for the next one. */
		t->state = CT_WAITING;
		tqi_list_push_back(&c->waiting, &t->wnode);
		return;
	default:
		break;
	}
	snprintf(detail, sizeof detail, "%.*s", (int)e->text.n, e->text.p);
	fit(msg, sizeof msg, "task %.8s (%s) was refused by the broker: %s (%s)", tq_task_ref(t),
	    t->fn ? t->fn->s : "?", tq_strerror((tq_err)e->code), detail);
	tqi_task_end(t, (tq_err)e->code, msg);
}

/* REFUSED: the broker did not act on a command of ours about a task.  Only
 * a refused SUBMIT settles the task; the refusal of a CANCEL or a DETACH
 * leaves it as it was, and its outcome still comes. */
static void on_refused(tq_client *c, const tqi_env *e)
{
	if (e->command == TQI_SUBMIT) {
		tq_task *t = pending_task(c, e->ref);
		if (t != NULL)
			on_submit_refused(c, t, e);
		return;
	}
	const char *cmd = tqi_cmd_name((uint8_t)e->command);
	char ref[2 * TQI_REF_LEN + 1];
	tqi_hex(e->ref, TQI_REF_LEN, ref);
	tqi_warn("the broker refused a %s for task %.8s: %s: %.*s", cmd ? cmd : "command", ref,
	         tq_errname((tq_err)e->code), (int)e->text.n, e->text.p);
}

/* Handles one message; false when it was malformed (and ignored). */
static bool on_message(tq_client *c, tqi_frames *f)
{
	char why[256];
	tq_err err = tqi_frames_decode(f, TQI_ROLE_BROKER, TQI_ROLE_CLIENT, why, sizeof why);
	if (err != TQ_OK) {
		tqi_warn("ignored a malformed message from the broker: %s %s", tq_errname(err),
		         why);
		return false;
	}
	const tqi_env *e = &f->e;
	c->probe_gap_ms = tqi_hb_ms(c);
	tq_task *t;
	switch (e->cmd) {
	case TQI_WELCOME:
		on_welcome(c, e);
		break;
	case TQI_HEARTBEAT:
		if (c->have_instance && memcmp(c->instance, e->instance, TQI_REF_LEN) != 0)
			send_hello(c); /* a new broker: find out what it holds */
		break;
	case TQI_RESULT:
		if ((t = pending_task(c, e->ref)) == NULL)
			break;
		t->worker = tqi_intern(c, e->name.p, e->name.n);
		t->attempt = e->attempt;
		zmq_msg_close(&t->result);
		if (tqi_frames_payload(f, &t->result) != 0) {
			tqi_task_end(t, TQ_ENOMEM, "client out of memory for the result");
			break;
		}
		tqi_task_end(t, TQ_OK, NULL);
		break;
	case TQI_FAILED:
		if ((t = pending_task(c, e->ref)) != NULL)
			on_failed(c, t, e);
		break;
	case TQI_ACCEPTED:
		if ((t = pending_task(c, e->ref)) != NULL)
			tqi_task_end(t, TQ_OK, NULL);
		break;
	case TQI_NOTICE:
		if ((t = find_pending(c, e->ref)) != NULL)
			t->noworker = e->code == TQ_ENOWORKER;
		break;
	case TQI_STATS_REPLY:
		on_stats_reply(c, e);
		break;
	case TQI_REFUSED:
		on_refused(c, e);
		break;
	case TQI_CHECKED:
		on_checked(c, e);
		break;
	case TQI_ERROR:
		tqi_warn("the broker refused a message: %s: %.*s", tq_errname((tq_err)e->code),
		         (int)e->text.n, e->text.p);
		break;
	default:
		break;
	}
	return true;
}

typedef struct {
	uint64_t now, limit;
	uint64_t last_heard;
	size_t n, cap;
	tq_task **v;
} silent_walk;

/* A task without retries that has had no word from the broker for the
 * broker timeout since it was submitted. */
static void collect_unretryable(tqi_hnode *n, void *arg)
{
	silent_walk *sw = arg;
	tq_task *t = tqi_container_of(n, tq_task, hnode);
	if (t->state != CT_SUBMITTED || t->retries_left > 0)
		return;
	uint64_t since = sw->last_heard > t->submitted_ms ? sw->last_heard : t->submitted_ms;
	if (sw->now - since <= sw->limit)
		return;
	if (sw->n == sw->cap) {
		size_t cap = sw->cap ? 2 * sw->cap : 64;
		tq_task **v = realloc(sw->v, cap * sizeof *v);
		if (v == NULL)
			return;
		sw->v = v;
		sw->cap = cap;
	}
	sw->v[sw->n++] = t;
}

/* Called while waiting: probe a silent broker, and give up on it for the
 * tasks that cannot be retried once it has been silent for the broker
 * timeout since each was submitted. */
static void watch_broker(tq_client *c, uint64_t now)
{
	if (tqi_hmap_count(&c->pending) == 0)
		return;
	uint64_t hb = tqi_hb_ms(c);
	uint64_t since =
	    c->last_heard_ms > c->waiting_since_ms ? c->last_heard_ms : c->waiting_since_ms;
	uint64_t silent = now > since ? now - since : 0;
	if (silent > 2 * hb && now - c->last_hello_ms >= c->probe_gap_ms) {
		send_hello(c);
		c->probe_gap_ms =
		    c->probe_gap_ms * 2 > PROBE_GAP_MAX_MS ? PROBE_GAP_MAX_MS : c->probe_gap_ms * 2;
	}
	if (now - c->last_heard_ms <= (uint64_t)c->broker_timeout_ms)
		return;
	silent_walk sw = { now, (uint64_t)c->broker_timeout_ms, c->last_heard_ms, 0, 0, NULL };
	tqi_hmap_foreach(&c->pending, collect_unretryable, &sw);
	if (sw.n > 0) {
		char why[320];
		snprintf(why, sizeof why, "no word from the broker at %s for %llu ms", c->broker,
		         (unsigned long long)(now - (c->last_heard_ms ? c->last_heard_ms : since)));
		tqi_warn("%s: failing %zu tasks that have no retries", why, sw.n);
		for (size_t i = 0; i < sw.n; i++) {
			/* If the broker is only cut off, let it know when it
			 * hears from us again. */
			tqi_send_cancel(c, sw.v[i], 0);
			lost(c, sw.v[i], why);
		}
	}
	free(sw.v);
}

/* Reads what is waiting until done; true when a well-formed message came
 * (the caller, who reads the clock anyway, records when). */
static bool drain(tq_client *c, bool (*done)(tq_client *c, void *arg), void *arg)
{
	bool heard = false;
	for (;;) {
		tqi_frames f;
		if (tqi_rx_recv(&c->rx, &f, ZMQ_DONTWAIT) <= 0)
			return heard;
		heard |= on_message(c, &f);
		tqi_frames_close(&f);
		if (done(c, arg))
			return heard;
	}
}

static bool never(tq_client *c, void *arg)
{
	(void)c;
	(void)arg;
	return false;
}

void tqi_read_ahead(tq_client *c)
{
	/* A burst of submissions reads what came back meanwhile every so
	 * often, so the answers are processed while the broker works rather
	 * than all at once after the burst. */
	if (++c->since_read < 64)
		return;
	c->since_read = 0;
	if (drain(c, never, NULL))
		c->last_heard_ms = tqi_now_ms();
}

static tq_err pump(tq_client *c, uint64_t until, bool (*done)(tq_client *c, void *arg), void *arg)
{
	for (;;) {
		if (done(c, arg))
			return TQ_OK; /* it came while waiting for something else */
		bool heard = drain(c, done, arg);
		uint64_t now = tqi_now_ms();
		if (heard)
			c->last_heard_ms = now;
		if (done(c, arg))
			return TQ_OK;
		watch_broker(c, now);
		if (done(c, arg))
			return TQ_OK;
		if (until != UINT64_MAX && now >= until)
			return TQ_ETIMEDOUT;
		uint64_t hb = tqi_hb_ms(c);
		uint64_t wait = hb;
		if (until != UINT64_MAX && until - now < wait)
			wait = until - now;
		zmq_pollitem_t items[] = { { c->sock, 0, ZMQ_POLLIN, 0 },
			                   { c->mon, 0, ZMQ_POLLIN, 0 } };
		if (zmq_poll(items, 2, (long)wait) < 0 && errno != EINTR)
			return TQ_ETRANSPORT;
		if (items[1].revents & ZMQ_POLLIN)
			watch_events(c);
		/* A deadline that has passed wins over a reply that came after
		 * it: an await of 1000 ms on a 1 s task fails every time. */
		if (until != UINT64_MAX && tqi_now_ms() >= until && !done(c, arg))
			return TQ_ETIMEDOUT;
	}
}

tq_err tqi_pump(tq_client *c, uint64_t until, bool (*done)(tq_client *c, void *arg), void *arg)
{
	c->since_read = 0;
	tq_err e = pump(c, until, done, arg);
	/* Here, not where tasks end: no caller holds an orphan, and the
	 * code that ends a task goes on using it. */
	if (!tqi_list_empty(&c->orphans))
		tqi_reap_orphans(c, false);
	return e;
}

/* ---- stats ---- */

static bool stats_done(tq_client *c, void *arg)
{
	(void)arg;
	return c->stats_ready;
}

tq_err tq_client_stats(tq_client *c, int64_t timeout_ms, uint8_t **data, size_t *len)
{
	c->stats_ready = false;
	/* With a session the broker counts this client's STATS apart from
	 * those of peers without one, which share one allowance. */
	if (c->last_hello_ms == 0)
		send_hello(c);
	tqi_send_stats(c);
	uint64_t until = timeout_ms < 0 ? UINT64_MAX : tqi_now_ms() + (uint64_t)timeout_ms;
	tq_err e = tqi_pump(c, until, stats_done, NULL);
	if (e != TQ_OK)
		return e == TQ_ETIMEDOUT ? TQ_EBROKERLOST : e;
	c->stats_ready = false;
	if (c->stats == NULL)
		return TQ_ENOMEM;
	*data = c->stats;
	*len = c->stats_len;
	c->stats = NULL;
	return TQ_OK;
}
