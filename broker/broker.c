/*
 * broker.c - the broker's lifecycle and its one loop.
 *
 * The loop never blocks on a peer: every send is ZMQ_DONTWAIT, a peer at
 * its high-water mark gets an outbox, and a peer that is gone is found by
 * ROUTER_MANDATORY's EHOSTUNREACH.  zmq_poll sleeps until the earliest of
 * the next heartbeat tick, the next deadline and (while an outbox waits)
 * a short retry.
 */
#include "broker/broker.h"

#include "base/clock.h"
#include "base/hex.h"
#include "base/rand.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* SNDHWM counts messages, and a message may carry up to 256 commands
 * (outbox.c).  What ZeroMQ holds for a peer is outside the byte budget
 * (memory.c), so it is kept small - 64 messages, each at most 1 MiB
 * unless one command alone is bigger - and what a slow peer falls behind
 * beyond that waits in its outbox, where it is counted. */
enum { OUTBOX_RETRY_MS = 5, SNDHWM = 64, ENVELOPE_ROOM = 64 * 1024 };

static int ref_eq(const tqi_hnode *n, const void *key, size_t len)
{
	(void)len;
	return memcmp(tqi_container_of(n, btask, hnode)->ref, key, TQI_REF_LEN) == 0;
}

/* A worker's DONEs come many to a frame: the next one's task is looked
 * up while this one is handled (hmap.h). */
static void prefetch_task(void *arg, const uint8_t ref[TQI_REF_LEN])
{
	tqi_hmap_prefetch(&((tqi_broker *)arg)->tasks, ref, TQI_REF_LEN);
}

static int func_eq(const tqi_hnode *n, const void *key, size_t len)
{
	const bfunc *f = tqi_container_of(n, bfunc, hnode);
	return f->name_len == len && memcmp(f->name, key, len) == 0;
}

static int peer_eq(const tqi_hnode *n, const void *key, size_t len)
{
	const bpeer *p = tqi_container_of(n, bpeer, hnode);
	return p->idlen == len && memcmp(p->id, key, len) == 0;
}

void tqi_peer_init(bpeer *p, tqi_role role, const zmq_msg_t *id)
{
	p->role = role;
	size_t n = zmq_msg_size((zmq_msg_t *)id);
	if (n > TQI_MAX_ROUTING_ID)
		n = TQI_MAX_ROUTING_ID;
	memcpy(p->id, zmq_msg_data((zmq_msg_t *)id), n);
	p->idlen = (uint8_t)n;
	tqi_hex(p->id, n < 6 ? n : 6, p->idhex);
	p->name[0] = '\0';
	tqi_list_init(&p->outbox);
	p->outbox_bytes = 0;
	tqi_node_init(&p->blocked);
	tqi_batch_init(&p->batch);
	tqi_node_init(&p->batched);
	tqi_node_init(&p->gone_node);
	p->gone = false;
	p->gone_why = NULL;
	p->last_seen_ms = 0;
}

bpeer *tqi_peer_find(tqi_hmap *map, bpeer **last, const zmq_msg_t *id)
{
	const void *key = zmq_msg_data((zmq_msg_t *)id);
	size_t len = zmq_msg_size((zmq_msg_t *)id);
	bpeer *p = *last;
	if (p != NULL && p->idlen == len && memcmp(p->id, key, len) == 0)
		return p;
	tqi_hnode *n = tqi_hmap_find(map, key, len);
	return *last = n ? tqi_container_of(n, bpeer, hnode) : NULL;
}

/* The broker's two ROUTER sockets.  What a peer sends must never be able
 * to abort libzmq 4.3.4's I/O thread (Debian's, as shipped): its engine
 * stops reading a connection whose pipe to the socket is full (or was
 * handed over to a newer connection of the same routing id), and if the
 * peer then resets the connection the engine marks an I/O error and stops
 * polling it; a ZMTP heartbeat timer, or a PING still in its buffer when
 * the pipe drains, then writes to it and fails `assert(!_io_error)`
 * (stream_engine_base.cpp:331).  So:
 *  - no receive high-water mark: a live connection's pipe never fills and
 *    its engine never stops reading.  What a peer can make the broker hold
 *    is bounded by the broker's own budgets (memory.c), checked on every
 *    message it reads; what libzmq buffers ahead of the loop is kept short
 *    by the loop's priority over libzmq's thread (lower_io_priority) and by
 *    cutting off a connection that floods it with commands that start no
 *    work (tqi_conns_chatter);
 *  - no ZMTP heartbeats of the broker's own: no timer ever writes on a
 *    connection.  A frozen or vanished owner is found instead by (a) the
 *    TTL of the ZMTP heartbeats tq's client sends (PROTOCOL.md section 1:
 *    its connection closes 3 s after its last PING when nothing followed),
 *    (b) on the client socket, a TCP user timeout: the HEARTBEATs the
 *    broker sends an owner every interval, unacknowledged for
 *    user_timeout_ms, close the connection of a dead host or a cut link,
 *    and (c) TCP keepalives for an idle one.  The next HEARTBEAT to a
 *    closed connection fails with EHOSTUNREACH, which names the peer.
 *    Workers are judged by their application heartbeats, and their
 *    connection is kept through a short cut so that a late result still
 *    arrives (and is fenced). */
static void *make_router(tqi_broker *b, const char *endpoint, int user_timeout_ms, char *bound,
                         size_t boundlen)
{
	void *s = zmq_socket(b->ctx, ZMQ_ROUTER);
	if (s == NULL)
		return NULL;
	int one = 1, zero = 0, hwm = SNDHWM;
	int ka_idle = 30, ka_intvl = 5, ka_cnt = 3;
	/* ZeroMQ drops the connection of a peer that sends more than this,
	 * without a word to it or to us.  So it stays at least the default
	 * payload limit: a payload between --max-payload and that gets an
	 * ETOOBIG answer from the handler instead (a SUBMIT is refused, a
	 * result fails its task), and only a message no tq peer sends by
	 * default closes a connection.  The margin holds the envelope. */
	uint64_t payload_max = b->opts.max_payload > TQI_DEFAULT_MAX_PAYLOAD
	                           ? b->opts.max_payload
	                           : TQI_DEFAULT_MAX_PAYLOAD;
	int64_t maxmsg = (int64_t)(payload_max + ENVELOPE_ROOM);
	zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
	zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
	zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
	zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE, &one, sizeof one);
	zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_IDLE, &ka_idle, sizeof ka_idle);
	zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_INTVL, &ka_intvl, sizeof ka_intvl);
	zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_CNT, &ka_cnt, sizeof ka_cnt);
	if (user_timeout_ms > 0)
		zmq_setsockopt(s, ZMQ_TCP_MAXRT, &user_timeout_ms, sizeof user_timeout_ms);
	if (zmq_bind(s, endpoint) != 0) {
		int err = errno;
		tqi_error("cannot bind %s: %s", endpoint, zmq_strerror(err));
		zmq_close(s);
		errno = err;
		return NULL;
	}
	size_t len = boundlen;
	if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
		snprintf(bound, boundlen, "%s", endpoint);
	return s;
}

/* With no receive high-water mark (make_router), what a flood of small
 * messages costs the broker is the backlog libzmq's I/O thread buffers
 * ahead of the loop, and the loop spends more per message than that thread
 * does.  So the I/O thread runs at a lower priority (nice 10: a tenth of
 * the loop's share of a core they contend for): under a flood the loop
 * reads faster than the thread can buffer, and when the loop waits the
 * thread has the core.  Linux's setpriority takes a thread id; libzmq
 * names its threads ZMQbg/IO/N.  Best effort: on failure nothing changes
 * but the flood's cost. */
static void lower_io_priority(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char path[64], comm[32] = "";
		snprintf(path, sizeof path, "/proc/self/task/%.16s/comm", de->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		bool io = fgets(comm, sizeof comm, f) != NULL && strncmp(comm, "ZMQbg/IO/", 9) == 0;
		fclose(f);
		if (io && setpriority(PRIO_PROCESS, (id_t)atoi(de->d_name), 10) != 0)
			tqi_warn("cannot lower the priority of libzmq's I/O thread: %s",
			         strerror(errno));
	}
	closedir(d);
}

tq_err tqi_broker_new(tqi_broker **out, const tqi_broker_opts *opts)
{
	tqi_broker *b = calloc(1, sizeof *b);
	if (b == NULL)
		return TQ_ENOMEM;
	b->opts = *opts;
	if (b->opts.client_endpoint == NULL)
		b->opts.client_endpoint = "tcp://*:5555";
	if (b->opts.worker_endpoint == NULL)
		b->opts.worker_endpoint = "tcp://*:5556";
	if (b->opts.heartbeat_ms == 0)
		b->opts.heartbeat_ms = 250;
	if (b->opts.liveness == 0)
		b->opts.liveness = 3;
	if (b->opts.max_tasks == 0)
		b->opts.max_tasks = 2000000;
	if (b->opts.max_payload == 0)
		b->opts.max_payload = TQI_DEFAULT_MAX_PAYLOAD;
	if (b->opts.session_idle_ms == 0)
		b->opts.session_idle_ms = 60000;
	if (b->opts.max_outbox == 0)
		b->opts.max_outbox = TQI_DEFAULT_MAX_OUTBOX;
	if (b->opts.max_memory == 0)
		b->opts.max_memory = TQI_DEFAULT_MAX_MEMORY;
	if (b->opts.max_client_memory == 0 || b->opts.max_client_memory > b->opts.max_memory)
		b->opts.max_client_memory = b->opts.max_memory / 4;
	if (b->opts.max_task_time_ms == 0)
		b->opts.max_task_time_ms = TQI_DEFAULT_MAX_TASK_TIME_MS;
	if (b->opts.max_worker_capacity == 0)
		b->opts.max_worker_capacity = TQI_DEFAULT_MAX_WORKER_CAPACITY;
	if (b->opts.prefetch_timeout_ms == 0) {
		uint64_t four = 4 * (uint64_t)b->opts.heartbeat_ms;
		b->opts.prefetch_timeout_ms = four > 1000 ? four : 1000;
	}

	tqi_hmap_init(&b->tasks, ref_eq);
	tqi_slab_init(&b->task_slab, sizeof(btask));
	tqi_hmap_init(&b->functions, func_eq);
	tqi_hmap_init(&b->clients, peer_eq);
	tqi_hmap_init(&b->workers, peer_eq);
	tqi_list_init(&b->client_list);
	tqi_list_init(&b->live);
	tqi_list_init(&b->gone);
	tqi_list_init(&b->blocked);
	tqi_list_init(&b->batched);
	tqi_rx_init(&b->rx_clients, NULL, true); /* their sockets come below */
	tqi_rx_init(&b->rx_workers, NULL, true);
	tqi_rx_init(&b->rx_admin, NULL, true);
	b->rx_workers.ahead = prefetch_task;
	b->rx_workers.ahead_arg = b;
	tqi_heap_init(&b->deadlines);
	tqi_list_init(&b->bound);
	tqi_wbuf_init(&b->scratch);
	tqi_rand_os(b->instance, sizeof b->instance);
	tqi_hex(b->instance, sizeof b->instance, b->instance_hex);

	b->ctx = zmq_ctx_new();
	if (b->ctx == NULL)
		goto fail;
	/* At least 2 s, so that TCP's retransmissions (from 200 ms, doubling)
	 * get their chance on a slow link. */
	uint64_t user_timeout = (uint64_t)b->opts.heartbeat_ms * b->opts.liveness * 4;
	b->clients_sock =
	    make_router(b, b->opts.client_endpoint, user_timeout < 2000 ? 2000 : (int)user_timeout,
	                b->client_endpoint, sizeof b->client_endpoint);
	if (b->clients_sock == NULL)
		goto fail;
	b->worker_endpoint[0] = '\0';
	b->workers_sock = make_router(b, b->opts.worker_endpoint, 0, b->worker_endpoint,
	                              sizeof b->worker_endpoint);
	if (b->workers_sock == NULL)
		goto fail;
	if (b->opts.admin_endpoint != NULL) {
		b->admin_sock = make_router(b, b->opts.admin_endpoint, 0, b->admin_endpoint,
		                            sizeof b->admin_endpoint);
		if (b->admin_sock == NULL)
			goto fail;
	}
	if (tqi_conns_init(b) != TQ_OK)
		goto fail;
	lower_io_priority(); /* the sockets have started it */
	b->rx_clients.sock = b->clients_sock;
	b->rx_workers.sock = b->workers_sock;
	b->rx_admin.sock = b->admin_sock;
	b->started_ms = b->now_ms = tqi_now_ms();
	b->next_tick_ms = b->now_ms + b->opts.heartbeat_ms;
	*out = b;
	return TQ_OK;
fail:
	tqi_broker_destroy(&b);
	return TQ_ETRANSPORT;
}

static void free_task_cb(tqi_hnode *n, void *arg)
{
	tqi_task_free(arg, tqi_container_of(n, btask, hnode));
}

static void free_func_cb(tqi_hnode *n, void *arg)
{
	tqi_broker *b = arg;
	bfunc *f = tqi_container_of(n, bfunc, hnode);
	tqi_hmap_remove(&b->functions, n);
	free(f);
}

void tqi_broker_destroy(tqi_broker **bp)
{
	if (bp == NULL || *bp == NULL)
		return;
	tqi_broker *b = *bp;
	tqi_hmap_foreach(&b->tasks, free_task_cb, b);
	tqi_workers_free_all(b);
	tqi_clients_free_all(b);
	tqi_hmap_foreach(&b->functions, free_func_cb, b);
	tqi_slab_destroy(&b->task_slab);
	tqi_hmap_destroy(&b->tasks);
	tqi_hmap_destroy(&b->functions);
	tqi_hmap_destroy(&b->clients);
	tqi_hmap_destroy(&b->workers);
	tqi_heap_destroy(&b->deadlines);
	tqi_wbuf_free(&b->scratch);
	tqi_rx_close(&b->rx_clients);
	tqi_rx_close(&b->rx_workers);
	tqi_rx_close(&b->rx_admin);
	tqi_conns_close(b);
	if (b->clients_sock)
		zmq_close(b->clients_sock);
	if (b->workers_sock)
		zmq_close(b->workers_sock);
	if (b->admin_sock)
		zmq_close(b->admin_sock);
	if (b->ctx)
		zmq_ctx_term(b->ctx);
	free(b);
	*bp = NULL;
}

void tqi_peer_gone(tqi_broker *b, bpeer *p, const char *why)
{
	if (p->gone)
		return;
	p->gone = true;
	p->gone_why = why;
	tqi_outbox_clear(b, p);
	tqi_list_push_back(&b->gone, &p->gone_node);
}

void tqi_peers_reap(tqi_broker *b)
{
	tqi_node *n;
	while ((n = tqi_list_pop_front(&b->gone)) != NULL) {
		bpeer *p = tqi_container_of(n, bpeer, gone_node);
		if (p->role == TQI_ROLE_WORKER)
			tqi_worker_free(b, tqi_container_of(p, bworker, peer));
		else
			tqi_client_free(b, tqi_container_of(p, bclient, peer));
	}
}

void tqi_broker_stop(tqi_broker *b)
{
	b->stop = 1;
}

void tqi_bad_message(tqi_broker *b, void *sock, const char *role, tqi_frames *f, tq_err code,
                     const char *why)
{
	char idhex[2 * 8 + 1];
	size_t idlen = zmq_msg_size(&f->id);
	tqi_hex(zmq_msg_data(&f->id), idlen < 8 ? idlen : 8, idhex);
	const char *addr = zmq_msg_gets((zmq_msg_t *)f->frame, "Peer-Address");
	b->n.malformed++;
	if (sock == b->clients_sock || sock == b->workers_sock)
		tqi_conns_chatter(b, sock == b->workers_sock ? TQI_ROLE_WORKER : TQI_ROLE_CLIENT,
		                  f->frame);
	tqi_log_limited(&b->bad_log, TQI_LOG_WARN,
	                "dropped malformed command from %s %s (%s): %s: %s", role, idhex,
	                addr ? addr : "address unknown", tq_errname(code), why);
	/* Answer with an ERROR in our version so that the peer can tell what
	 * went wrong, at a bounded rate so that a flood cannot amplify. */
	if (!tqi_ratelimit_take(&b->bad_reply, b->now_ms, TQI_BAD_REPLY_PER_SEC,
	                        TQI_BAD_REPLY_BURST))
		return;
	char text[TQI_MAX_TEXT];
	snprintf(text, sizeof text, "%s: %s (this broker speaks tq/%d)", tq_strerror(code), why,
	         TQI_VERSION);
	tqi_env e = { .cmd = TQI_ERROR, .code = code, .text = { text, (uint32_t)strlen(text) } };
	/* A client's command that names a task is refused under its ref, so
	 * that the task it meant is settled instead of waiting out its
	 * timeout (PROTOCOL.md 4.4). */
	uint8_t cmd;
	if (sock == b->clients_sock &&
	    tqi_env_peek_ref(f->env, f->envlen, TQI_ROLE_CLIENT, TQI_ROLE_BROKER, &cmd, e.ref)) {
		e.cmd = TQI_REFUSED;
		e.command = cmd;
	}
	tqi_send_raw(b, sock, &f->id, &e);
}

static void drain_socket(tqi_broker *b, tqi_rx *rx, bool workers)
{
	for (int i = 0; i < TQI_RX_TURN; i++) {
		tqi_frames f;
		int rc = tqi_rx_recv(rx, &f, ZMQ_DONTWAIT);
		if (rc <= 0)
			return;
		if (workers)
			tqi_worker_message(b, &f);
		else
			tqi_client_message(b, &f);
		tqi_frames_close(&f);
		if (b->conns.just_cut) { /* what else it packed in the frame goes unread */
			b->conns.just_cut = false;
			tqi_rx_skip_frame(rx);
		}
	}
}

static void tick(tqi_broker *b)
{
	tqi_workers_tick(b);
	tqi_clients_tick(b);
	tqi_memory_tick(b);
	tqi_log_suppressed(&b->bad_log, TQI_LOG_WARN, "lines about misbehaving peers");
	tqi_log_suppressed(&b->peer_log, TQI_LOG_INFO, "lines about peers coming and going");
	tqi_log_suppressed(&b->owner_log, TQI_LOG_INFO, "lines about owners lost");
	b->next_tick_ms = b->now_ms + b->opts.heartbeat_ms;
}

static long poll_timeout(tqi_broker *b)
{
	uint64_t until = b->next_tick_ms;
	uint64_t deadline = tqi_tasks_next_deadline(b);
	if (deadline < until)
		until = deadline;
	if (!tqi_list_empty(&b->blocked) && b->now_ms + OUTBOX_RETRY_MS < until)
		until = b->now_ms + OUTBOX_RETRY_MS;
	if (!tqi_list_empty(&b->gone)) /* found gone by the last flush: clean up now */
		until = b->now_ms;
	if (b->stop_at_ms && b->stop_at_ms < until)
		until = b->stop_at_ms;
	return until > b->now_ms ? (long)(until - b->now_ms) : 0;
}

/* Stopping: nothing new is dispatched; once the running tasks are done (or
 * the grace period ends) every owner still waiting is told and every
 * worker is let go. */
static bool stopping(tqi_broker *b)
{
	if (b->stop_at_ms == 0) {
		b->stop_at_ms = b->now_ms + (b->opts.grace_ms ? b->opts.grace_ms : 1);
		tqi_info("stopping: %llu tasks in flight, up to %llu ms for running ones to finish",
		         (unsigned long long)b->ntasks, (unsigned long long)b->opts.grace_ms);
	}
	return b->nassigned == 0 || b->now_ms >= b->stop_at_ms;
}

static void say_goodbye(tqi_broker *b)
{
	static const char why[] = "broker shutting down";
	tqi_node *it, *nx;
	tqi_list_each(&b->client_list, it, nx)
	{
		bclient *c = tqi_container_of(it, bclient, all);
		tqi_node *t, *tn;
		tqi_list_each(&c->tasks, t, tn)
		{
			tqi_task_fail(b, tqi_container_of(t, btask, cnode), TQ_EBROKERLOST, why);
		}
	}
	tqi_env e = { .cmd = TQI_DISCONNECT, .text = { why, sizeof why - 1 } };
	tqi_list_each(&b->live, it, nx)
	{
		bworker *w = tqi_container_of(it, bworker, live);
		tqi_send_to(b, b->workers_sock, &w->peer, &e, NULL, 0);
	}
	if (b->ntasks > 0)
		tqi_warn("stopped with %llu tasks unfinished", (unsigned long long)b->ntasks);
}

tq_err tqi_broker_run(tqi_broker *b)
{
	tqi_info("listening clients=%s workers=%s instance=%s heartbeat=%ums liveness=%u",
	         b->client_endpoint, b->worker_endpoint, b->instance_hex, b->opts.heartbeat_ms,
	         b->opts.liveness);
	tqi_admin_announce(b);
	zmq_pollitem_t items[5] = { { b->workers_sock, 0, ZMQ_POLLIN, 0 },
		                    { b->clients_sock, 0, ZMQ_POLLIN, 0 } };
	int nitems = 2, admin_item = -1;
	if (b->admin_sock != NULL) {
		admin_item = nitems++;
		items[admin_item] = (zmq_pollitem_t){ b->admin_sock, 0, ZMQ_POLLIN, 0 };
	}
	/* The connection watches (conns.c): each ROUTER's monitor events. */
	int conns_item = nitems;
	items[nitems++] = (zmq_pollitem_t){ b->conns.clients.monitor, 0, ZMQ_POLLIN, 0 };
	items[nitems++] = (zmq_pollitem_t){ b->conns.workers.monitor, 0, ZMQ_POLLIN, 0 };
	for (;;) {
		b->now_ms = tqi_now_ms();
		/* Commands left in a frame by the last turn's batch limit are
		 * read now: the sockets would not wake the loop for them. */
		bool left[2] = { tqi_rx_pending(&b->rx_workers), tqi_rx_pending(&b->rx_clients) };
		bool left_admin = tqi_rx_pending(&b->rx_admin);
		int rc =
		    zmq_poll(items, nitems, left[0] || left[1] || left_admin ? 0 : poll_timeout(b));
		if (rc < 0 && errno != EINTR) {
			tqi_error("poll failed: %s", zmq_strerror(errno));
			return TQ_ETRANSPORT;
		}
		b->now_ms = tqi_now_ms();
		/* Workers first: their results free capacity for clients. */
		if ((rc > 0 && (items[0].revents & ZMQ_POLLIN)) || left[0])
			drain_socket(b, &b->rx_workers, true);
		if ((rc > 0 && (items[1].revents & ZMQ_POLLIN)) || left[1])
			drain_socket(b, &b->rx_clients, false);
		if ((rc > 0 && admin_item >= 0 && (items[admin_item].revents & ZMQ_POLLIN)) ||
		    left_admin)
			tqi_admin_drain(b);
		if (rc > 0 &&
		    ((items[conns_item].revents | items[conns_item + 1].revents) & ZMQ_POLLIN))
			tqi_conns_read(b);
		if (b->now_ms >= b->next_tick_ms)
			tick(b);
		tqi_tasks_expire(b);
		tqi_peers_reap(b);
		tqi_outbox_flush(b);
		if (b->stop && stopping(b)) {
			say_goodbye(b);
			tqi_outbox_flush(b);
			tqi_info("stopped");
			return TQ_OK;
		}
	}
}
