/*
 * worker.c - the worker's loop: its connection to the broker (READY,
 * heartbeats both ways, reconnection with backoff), the tasks it holds,
 * cancellation, deadlines and draining.
 *
 * The loop thread never runs a handler (unless isolation is
 * TQ_ISOLATION_NONE: worker/inline.c), so a worker whose executors are all
 * busy for hours still answers heartbeats: a long task is not a dead
 * worker.  When the broker is lost (silent for `liveness` of its heartbeat
 * intervals, a DISCONNECT, or a new instance id), the worker kills what it
 * runs - the broker has already retried or failed those tasks - and
 * registers again on a fresh socket.
 */
#include "worker/loop.h"

#include "base/clock.h"
#include "base/hex.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BACKOFF_MIN_MS = 100, BACKOFF_MAX_MS = 5000, CONNECT_TIMEOUT_MIN_MS = 5000 };

static int ref_eq(const tqi_hnode *n, const void *key, size_t len)
{
	(void)len;
	return memcmp(tqi_container_of(n, wtask, hnode)->ref, key, TQI_REF_LEN) == 0;
}

tq_err tq_worker_new(tq_worker **out, const tq_worker_opts *opts)
{
	tq_worker_opts o = { 0 };
	if (opts != NULL)
		o = *opts;
	if (o.heartbeat_ms == 0)
		o.heartbeat_ms = 250;
	if (o.liveness == 0)
		o.liveness = 3;
	if (o.isolation > TQ_ISOLATION_NONE ||
	    (o.isolation == TQ_ISOLATION_NONE && o.concurrency > 1))
		return TQ_EINVAL;
	if (o.isolation == TQ_ISOLATION_NONE)
		o.concurrency = 1; /* the loop runs one task at a time */
	if (o.concurrency == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o.concurrency = n > 0 ? (unsigned)n : 1;
	}
	if (o.heartbeat_ms < TQI_MIN_HEARTBEAT_MS || o.heartbeat_ms > TQI_MAX_HEARTBEAT_MS ||
	    o.concurrency > TQI_MAX_CONCURRENCY ||
	    (o.prefetch > 3 * TQI_MAX_CONCURRENCY && o.prefetch != TQ_PREFETCH_NONE))
		return TQ_EINVAL;
	const char *ep = o.broker ? o.broker : getenv("TQ_BROKER");
	if (ep == NULL || *ep == '\0')
		ep = "tcp://127.0.0.1:5556";
	if (strlen(ep) >= 256 || (o.name != NULL && strlen(o.name) > TQI_MAX_NAME))
		return TQ_EINVAL;
	tq_worker *w = calloc(1, sizeof *w);
	if (w == NULL)
		return TQ_ENOMEM;
	w->opts = o;
	snprintf(w->broker, sizeof w->broker, "%s", ep);
	if (o.name != NULL) {
		snprintf(w->name, sizeof w->name, "%s", o.name);
	} else {
		char host[200] = "localhost";
		gethostname(host, sizeof host - 1);
		host[sizeof host - 1] = '\0';
		snprintf(w->name, sizeof w->name, "%s:%d", host, (int)getpid());
	}
	w->opts.broker = w->broker;
	w->opts.name = w->name;
	*out = w;
	return TQ_OK;
}

void tq_worker_destroy(tq_worker **wp)
{
	if (wp == NULL || *wp == NULL)
		return;
	tqi_registry_free(&(*wp)->reg);
	free(*wp);
	*wp = NULL;
}

tq_err tq_worker_register(tq_worker *w, const char *name, tq_handler fn, void *arg)
{
	if (w->running)
		return TQ_ESTATE;
	return tqi_registry_add(&w->reg, name, fn, arg);
}

void tq_worker_stop(tq_worker *w)
{
	w->stop_requests++;
}

/* ---- talking to the broker ---- */

/* Gathers a command (and its payload, copied) for the broker; the loop
 * sends what a turn gathered as one frame before it waits
 * (tqi_worker_flush). */
static int send_cmd(tq_worker *w, const tqi_env *e, const void *payload, size_t len)
{
	if (w->sock == NULL)
		return -1; /* between connections: the broker gave up what it was about */
	if (tqi_batch_no_room(&w->out, len))
		tqi_worker_flush(w);
	tq_err err = tqi_batch_add(&w->out, e, payload, len);
	if (err != TQ_OK) {
		/* Said, not silent: a DONE lost here leaves its task to the
		 * broker's deadline, or to its giving up on this worker. */
		tqi_error("cannot send %s to the broker: %s", tqi_cmd_name(e->cmd),
		          tq_strerror(err));
		return -1;
	}
	if (tqi_batch_full(&w->out))
		tqi_worker_flush(w);
	w->last_sent = w->now;
	return 0;
}

void tqi_worker_flush(tq_worker *w)
{
	if (w->sock == NULL) {
		tqi_batch_clear(&w->out);
		return;
	}
	/* The worker's DEALER has no high-water mark (what it sends is
	 * bounded by what it holds), so this does not block; it fails only
	 * on a socket that is closing, and then what it held is lost with it. */
	uint32_t n = w->out.cmds;
	if (tqi_batch_send(&w->out, w->sock, NULL, 0, 0) != 0) {
		tqi_warn("%u messages for the broker lost: %s", n, zmq_strerror(errno));
		tqi_batch_clear(&w->out);
	}
}

static void close_socket(tq_worker *w, int linger)
{
	tqi_worker_flush(w);
	tqi_rx_close(&w->rx);
	zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
	zmq_close(w->sock);
	w->sock = NULL;
}

static void send_simple(tq_worker *w, uint8_t cmd)
{
	tqi_env e = { .cmd = cmd };
	send_cmd(w, &e, NULL, 0);
}

/* Automatic prefetch starts at none and follows what tasks take. */
static uint32_t initial_capacity(tq_worker *w)
{
	uint32_t c = w->opts.concurrency;
	if (w->opts.prefetch != 0 && w->opts.prefetch != TQ_PREFETCH_NONE)
		c += w->opts.prefetch;
	w->capacity_sent = c;
	w->capacity_at = w->now;
	return c;
}

void tqi_measure_service(tq_worker *w, uint32_t run_us)
{
	double took = run_us > 0 ? (double)run_us : 1.0;
	w->service_us = w->service_us == 0 ? took : 0.9 * w->service_us + 0.1 * took;
}

/* Automatic prefetch: hold as many tasks as take about PREFETCH_BUDGET_US
 * to run, at most 4 x TQI_EXEC_DEPTH (256) per executor.  Announced with
 * CAPACITY when it moves by a quarter, at most every 50 ms. */
static void adjust_capacity(tq_worker *w)
{
	enum { PREFETCH_BUDGET_US = 2000, EVERY_MS = 50 };
	if (w->opts.prefetch != 0 || w->conn != CONN_READY || w->draining || w->service_us <= 0 ||
	    w->now - w->capacity_at < EVERY_MS)
		return;
	uint32_t conc = w->opts.concurrency;
	double fit = (double)conc * PREFETCH_BUDGET_US / w->service_us;
	/* The budget decides; the cap only bounds a stale measurement.  Tasks
	 * beyond the executors' pipes wait here, covering the round trip to
	 * the broker for the next ones. */
	double most = (double)conc * 4 * TQI_EXEC_DEPTH;
	uint32_t want = conc + (uint32_t)(fit < most ? fit : most);
	/* Beyond the protocol's bound the message would not even encode (and
	 * fail again every loop turn). */
	if (want > TQI_MAX_CAPACITY)
		want = TQI_MAX_CAPACITY;
	uint32_t have = w->capacity_sent;
	uint32_t step = have / 4 ? have / 4 : 1;
	if (want + step > have && want < have + step)
		return;
	tqi_env e = { .cmd = TQI_CAPACITY, .capacity = want };
	if (send_cmd(w, &e, NULL, 0) == 0) {
		tqi_debug("capacity %u -> %u (tasks take %.0f us)", have, want, w->service_us);
		w->capacity_sent = want;
		w->capacity_at = w->now;
	}
}

static tq_err send_ready(tq_worker *w)
{
	tqi_wbuf fns;
	tqi_wbuf_init(&fns);
	for (uint32_t i = 0; i < w->reg.n; i++)
		tqi_raw_add_str(&fns, w->reg.v[i].name, w->reg.v[i].name_len);
	tqi_env e = { .cmd = TQI_READY,
		      .name = { w->name, (uint32_t)strlen(w->name) },
		      .concurrency = w->opts.concurrency,
		      .capacity = initial_capacity(w),
		      .heartbeat_ms = w->opts.heartbeat_ms,
		      .functions = tqi_raw_of(&fns, w->reg.n) };
	int rc = send_cmd(w, &e, NULL, 0);
	tqi_wbuf_free(&fns);
	return rc == 0 ? TQ_OK : TQ_ETRANSPORT;
}

static tq_err open_socket(tq_worker *w)
{
	/* A fresh identity per connection: the broker sees a new worker and
	 * lets the old registration expire, so nothing from before can be
	 * confused with what comes now. */
	uint8_t id[TQI_REF_LEN];
	tqi_rand_bytes(&w->rng, id, sizeof id);
	w->sock = tqi_dealer_open(w->ctx, id, w->broker, 0, 0);
	if (w->sock == NULL) {
		tqi_error("cannot connect to %s: %s", w->broker, zmq_strerror(errno));
		return TQ_EINVAL;
	}
	tqi_rx_init(&w->rx, w->sock, false);
	w->conn = CONN_CONNECTING;
	w->conn_since = w->now;
	return send_ready(w);
}

static void reset_connection(tq_worker *w, const char *why)
{
	tqi_warn("broker lost (%s): stopping %u held tasks, reconnecting", why, w->nheld);
	tqi_pool_drop_all(w); /* the broker gave up on them */
	if (w->sock != NULL) {
		/* Results already written still go out (a broker that gave us
		 * up fences them): let the old socket linger a while. */
		close_socket(w, 1000);
	}
	w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (w->backoff_ms > BACKOFF_MAX_MS)
		w->backoff_ms = BACKOFF_MAX_MS;
	w->conn_since = w->now;
}

void tqi_task_done(tq_worker *w, wtask *t, tq_err code, const char *text, const void *payload,
                   size_t len)
{
	tqi_env e = { .cmd = TQI_DONE, .attempt = t->attempt, .code = (uint32_t)code };
	memcpy(e.ref, t->ref, TQI_REF_LEN);
	if (text != NULL)
		e.text = (tqi_str){ text, (uint32_t)strnlen(text, TQI_MAX_TEXT) };
	send_cmd(w, &e, payload, code == TQ_OK ? len : 0);
	tqi_task_forget(w, t);
}

void tqi_task_forget(tq_worker *w, wtask *t)
{
	tqi_hmap_remove(&w->held, &t->hnode);
	tqi_heap_remove(&w->deadlines, &t->deadline);
	zmq_msg_close(&t->args);
	free(t);
	w->nheld--;
}

static void on_task(tq_worker *w, tqi_frames *f, const tqi_env *e)
{
	if (tqi_hmap_find(&w->held, e->ref, TQI_REF_LEN) != NULL) {
		tqi_warn("broker sent a task this worker already holds; ignored");
		return;
	}
	wtask *t = calloc(1, sizeof *t);
	if (t == NULL || tqi_frames_payload(f, &t->args) != 0) {
		free(t);
		tqi_env d = { .cmd = TQI_DONE, .attempt = e->attempt, .code = TQ_ENOMEM };
		memcpy(d.ref, e->ref, TQI_REF_LEN);
		send_cmd(w, &d, NULL, 0);
		return;
	}
	memcpy(t->ref, e->ref, TQI_REF_LEN);
	t->attempt = e->attempt;
	t->seq = w->arrived++;
	tqi_node_init(&t->qnode);
	tqi_heap_node_init(&t->deadline);
	tqi_hmap_insert(&w->held, &t->hnode, t->ref, TQI_REF_LEN);
	w->nheld++;
	int idx = tqi_registry_find(&w->reg, e->function.p, e->function.n);
	if (idx < 0) {
		tqi_task_done(w, t, TQ_ENOWORKER, "function not served by this worker", NULL, 0);
		return;
	}
	/* Fixed now: the time the task then waits here or in a pipe counts. */
	if (e->timeout_ms != 0) {
		t->deadline.key = tqi_deadline_after(w->now, e->timeout_ms);
		if (tqi_heap_push(&w->deadlines, &t->deadline) != 0) {
			tqi_task_done(w, t, TQ_ENOMEM, "worker out of memory", NULL, 0);
			return;
		}
	}
	t->fn_index = (uint32_t)idx;
	tqi_list_push_back(&w->queue, &t->qnode);
}

static void on_cancel(tq_worker *w, const tqi_env *e)
{
	tqi_hnode *n = tqi_hmap_find(&w->held, e->ref, TQI_REF_LEN);
	if (n == NULL)
		return; /* finished already: its DONE is on the way */
	tqi_pool_stop_task(w, tqi_container_of(n, wtask, hnode), TQ_ECANCELLED,
	                   "cancelled before it started", e->grace_ms);
}

static void on_message(tq_worker *w, tqi_frames *f)
{
	char why[256];
	tq_err err = tqi_frames_decode(f, TQI_ROLE_BROKER, TQI_ROLE_WORKER, why, sizeof why);
	if (err != TQ_OK) {
		tqi_warn("malformed message from the broker ignored: %s: %s", tq_errname(err), why);
		return;
	}
	const tqi_env *e = &f->e;
	w->last_heard = w->now;
	switch (e->cmd) {
	case TQI_WELCOME:
		if (w->conn == CONN_CONNECTING) {
			char hex[2 * TQI_REF_LEN + 1];
			tqi_hex(e->instance, TQI_REF_LEN, hex);
			memcpy(w->instance, e->instance, TQI_REF_LEN);
			w->broker_hb_ms = e->heartbeat_ms;
			w->conn = CONN_READY;
			w->backoff_ms = 0;
			tqi_info(
			    "registered with broker %s at %s as %s: %u functions, concurrency %u",
			    hex, w->broker, w->name, w->reg.n, w->opts.concurrency);
			if (w->draining)
				send_simple(w, TQI_DRAIN);
		}
		break;
	case TQI_HEARTBEAT:
		if (w->conn == CONN_READY && memcmp(e->instance, w->instance, TQI_REF_LEN) != 0)
			reset_connection(w, "the broker restarted");
		break;
	case TQI_TASK:
		if (w->conn == CONN_READY)
			on_task(w, f, e);
		break;
	case TQI_CANCEL:
		on_cancel(w, e);
		break;
	case TQI_DISCONNECT: {
		char text[TQI_MAX_TEXT + 1];
		snprintf(text, sizeof text, "told to reconnect: %.*s", (int)e->text.n, e->text.p);
		reset_connection(w, text);
		w->backoff_ms = BACKOFF_MIN_MS;
		break;
	}
	case TQI_ERROR:
		tqi_error("broker refused us: %.*s", (int)e->text.n, e->text.p);
		reset_connection(w, "protocol error");
		w->backoff_ms = BACKOFF_MAX_MS;
		break;
	default:
		break;
	}
}

static void check_broker(tq_worker *w)
{
	if (w->sock == NULL) {
		if (w->now - w->conn_since >= w->backoff_ms && !w->draining)
			open_socket(w);
		return;
	}
	uint64_t hb = w->broker_hb_ms ? w->broker_hb_ms : w->opts.heartbeat_ms;
	if (w->conn == CONN_CONNECTING) {
		uint64_t limit = hb * w->opts.liveness * 4;
		if (limit < CONNECT_TIMEOUT_MIN_MS)
			limit = CONNECT_TIMEOUT_MIN_MS;
		if (w->now - w->conn_since > limit)
			reset_connection(w, "no answer to READY");
		return;
	}
	/* Three times as patient as the broker is with us: after a short cut
	 * the broker has already retried our tasks, and what we finish
	 * meanwhile reaches it to be fenced, instead of being thrown away. */
	if (w->now - w->last_heard > 3 * hb * w->opts.liveness) {
		reset_connection(w, "missed heartbeats");
		return;
	}
	if (w->now - w->last_sent >= w->opts.heartbeat_ms)
		send_simple(w, TQI_PING);
}

/* ---- stopping ---- */

static void begin_drain(tq_worker *w)
{
	w->draining = true;
	w->drain_until = w->opts.drain_ms ? w->now + w->opts.drain_ms : 0;
	tqi_info("draining: %u tasks held", w->nheld);
	if (w->conn == CONN_READY)
		send_simple(w, TQI_DRAIN);
}

/* True when the loop should end. */
static bool check_stop(tq_worker *w)
{
	if (w->stop_requests == 0)
		return false;
	if (!w->draining)
		begin_drain(w);
	bool now = w->stop_requests > 1 || (w->drain_until && w->now >= w->drain_until) ||
	           w->conn != CONN_READY;
	if (now && w->nheld > 0 && !w->stopping_now) {
		w->stopping_now = true;
		/* Held tasks end now; the killed executors' exits report the
		 * running ones. */
		tqi_pool_stop_all(w, TQ_ESHUTDOWN, "cancelled: the worker is shutting down");
	}
	return w->nheld == 0 || w->conn != CONN_READY;
}

/* ---- the loop ---- */

static uint64_t next_wakeup(tq_worker *w)
{
	uint64_t t = w->opts.heartbeat_ms;
	uint64_t pool = tqi_pool_timers(w);
	if (pool < t)
		t = pool;
	if (w->sock == NULL) {
		uint64_t due = w->conn_since + w->backoff_ms;
		t = due > w->now ? (due - w->now < t ? due - w->now : t) : 0;
	}
	return t;
}

static tq_err serve(tq_worker *w)
{
	size_t cap = 2 + w->nexecs;
	zmq_pollitem_t *items = calloc(cap, sizeof *items);
	tqi_exec **owners = calloc(cap, sizeof *owners);
	if (items == NULL || owners == NULL) {
		free(items);
		free(owners);
		return TQ_ENOMEM;
	}
	tq_err result = TQ_OK;
	bool in_loop = w->opts.isolation == TQ_ISOLATION_NONE;
	for (;;) {
		w->now = tqi_now_ms();
		/* Run in the loop, a turn's worth of tasks at a time: what is
		 * left waits for the next turn, after the socket is read. */
		bool more = false;
		if (in_loop) {
			more = tqi_inline_run(w);
			w->now = tqi_now_ms();
		} else {
			tqi_pool_collect(w); /* frees entries for the schedule */
			tqi_pool_schedule(w);
		}
		int n = 0;
		int zyg_at = -1;
		if (!in_loop) {
			zyg_at = n;
			items[n++] = (zmq_pollitem_t){ NULL, w->zygote.fd, ZMQ_POLLIN, 0 };
		}
		int sock_at = -1;
		if (w->sock != NULL) {
			sock_at = n;
			items[n++] = (zmq_pollitem_t){ w->sock, 0, ZMQ_POLLIN, 0 };
		}
		tqi_worker_flush(w); /* what this turn said goes before the wait */
		/* Commands left in a frame by the last turn's limit are read
		 * this turn: the socket would not wake the loop for them. */
		bool left = w->sock != NULL && tqi_rx_pending(&w->rx);
		more = more || left;
		/* A lone quick task is waited for a moment; else the bells are
		 * armed.  Either may bring results: then no sleep. */
		if (!in_loop && !more)
			more = tqi_pool_spin(w);
		bool armed = !in_loop && !more;
		if (armed)
			more = tqi_pool_arm(w, true);
		int first_exec = n;
		n += tqi_pool_poll_items(w, items + n, owners + n);
		int rc = zmq_poll(items, n, more ? 0L : (long)next_wakeup(w));
		if (armed) /* a busy loop rings no bells */
			tqi_pool_arm(w, false);
		w->now = tqi_now_ms();
		if (rc < 0 && errno != EINTR) {
			tqi_error("poll failed: %s", zmq_strerror(errno));
			result = TQ_ETRANSPORT;
			break;
		}
		/* What arrived comes first, liveness after: a worker thawed
		 * from SIGSTOP reports the results it has (the broker fences
		 * them) before it notices how long it was away. */
		for (int i = first_exec; rc > 0 && i < n; i++)
			if (items[i].revents)
				tqi_pool_io(w, owners[i], items[i].revents);
		if (rc > 0 && zyg_at >= 0 && items[zyg_at].revents &&
		    tqi_pool_zygote_events(w) < 0) {
			tqi_error("the executor zygote died; the worker cannot run tasks");
			result = TQ_ESYS;
			break;
		}
		if ((rc > 0 && sock_at >= 0 && (items[sock_at].revents & ZMQ_POLLIN)) || left) {
			for (int k = 0; k < TQI_RX_TURN && w->sock != NULL; k++) {
				tqi_frames f;
				if (tqi_rx_recv(&w->rx, &f, ZMQ_DONTWAIT) <= 0)
					break;
				on_message(w, &f);
				tqi_frames_close(&f);
			}
		}
		check_broker(w);
		adjust_capacity(w);
		if (check_stop(w))
			break;
	}
	free(items);
	free(owners);
	return result;
}

tq_err tq_worker_run(tq_worker *w)
{
	if (w->running)
		return TQ_ESTATE;
	if (w->reg.n == 0)
		return TQ_EINVAL;
	w->running = true;
	w->stop_requests = 0;
	w->draining = false;
	w->stopping_now = false;
	w->now = tqi_now_ms();
	tqi_rand_seed(&w->rng);
	tqi_hmap_init(&w->held, ref_eq);
	tqi_heap_init(&w->deadlines);
	tqi_list_init(&w->queue);
	tqi_batch_init(&w->out);
	/* Executors first: the zygote must be forked before ZeroMQ starts
	 * its threads. */
	tq_err result = TQ_OK;
	if (tqi_pool_start(w) != 0) {
		tqi_error("cannot start executors: %s", strerror(errno));
		result = TQ_ESYS;
		goto out;
	}
	w->ctx = zmq_ctx_new();
	if (w->ctx == NULL) {
		result = TQ_ETRANSPORT;
		goto out_pool;
	}
	result = open_socket(w);
	if (result == TQ_EINVAL)
		goto out_ctx;
	result = serve(w);
	if (w->sock != NULL) {
		if (w->conn == CONN_READY)
			send_simple(w, TQI_BYE);
		close_socket(w, 1000); /* let the last DONEs and BYE out */
	}
	tqi_pool_drop_all(w);
out_ctx:
	zmq_ctx_term(w->ctx);
	w->ctx = NULL;
out_pool:
	tqi_pool_stop(w);
out:
	tqi_hmap_destroy(&w->held);
	tqi_heap_destroy(&w->deadlines);
	tqi_batch_clear(&w->out);
	w->running = false;
	tqi_info("stopped");
	return result;
}
