/*
 * outbox.c - sending to a peer without blocking and without silent drops.
 *
 * A ROUTER with ROUTER_MANDATORY answers a send to a peer at its
 * high-water mark with EAGAIN and one to a departed peer with EHOSTUNREACH.
 * The first becomes a queued message (the peer's outbox, retried each loop
 * turn, in order); the second marks the peer gone, and its owner module
 * cleans up.  Invariant: while a peer's outbox is not empty, new messages
 * to it go to the back of the outbox, so order is kept.  The outbox is
 * bounded, and counted in the byte budget (memory.c): a peer that lets it
 * grow past --max-outbox messages, past TQI_OUTBOX_MAX_BYTES, or past what
 * the budget has room for (for a client: its own share) is not reading,
 * and is let go like a dead one - a client that keeps asking (STATS,
 * refused SUBMITs) without reading the answers cannot grow the broker.
 *
 * A client's connection can break while the client lives (a reset, a NAT
 * timeout): its socket reconnects within a few hundred milliseconds.  So a
 * send to a client that finds no connection (EHOSTUNREACH) keeps what it
 * sent in the outbox, retried each turn, and the client is gone only when
 * none came back for reconnect_grace_ms; what a dead connection had
 * swallowed before, the client finds out with CHECK (client_side.c).
 * A worker without a connection is gone at once: its liveness is judged
 * by its heartbeats, and its tasks are retried elsewhere.
 *
 * Within a loop turn, what goes to one peer is gathered in its batch and
 * sent at the end of the turn as one frame (frames.h): a peer sent a
 * hundred results costs one frame, one routing lookup and one wake-up, not
 * a hundred.  A batch the peer's high-water mark refuses becomes outbox
 * entries, in order; a peer found gone then is cleaned up next turn.
 * Invariant: a peer has a batch only while its outbox is empty.
 */
#include "broker/broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void outmsg_free(boutmsg *m)
{
	free(m);
}

/* The account a peer's outbox is charged to: a client's share; a worker
 * counts in the broker's total only. */
static bacct *acct_of(bpeer *p)
{
	return p->role == TQI_ROLE_CLIENT ? tqi_container_of(p, bclient, peer)->acct : NULL;
}

void tqi_outbox_clear(tqi_broker *b, bpeer *p)
{
	tqi_node *n;
	while ((n = tqi_list_pop_front(&p->outbox)) != NULL)
		outmsg_free(tqi_container_of(n, boutmsg, node));
	tqi_budget_release(b, acct_of(p), p->outbox_bytes);
	p->outbox_bytes = 0;
	tqi_list_remove(&b->blocked, &p->blocked);
	tqi_batch_clear(&p->batch);
	tqi_list_remove(&b->batched, &p->batched);
}

/* True when p's outbox cannot take `bytes` more: it is not reading.  why
 * says which bound it met. */
static bool outbox_full(const tqi_broker *b, bpeer *p, size_t bytes, char *why, size_t whylen)
{
	uint64_t max_msgs = b->opts.max_outbox;
	if (p->role == TQI_ROLE_WORKER) /* each task it holds: a TASK, a CANCEL */
		max_msgs += 2 * (uint64_t)tqi_container_of(p, bworker, peer)->load;
	if (p->outbox.len >= max_msgs) {
		snprintf(why, whylen, "--max-outbox reached");
		return true;
	}
	/* An empty outbox takes any one message: a result may be this big. */
	if (tqi_list_empty(&p->outbox))
		return false;
	if (p->outbox_bytes + bytes > TQI_OUTBOX_MAX_BYTES) {
		snprintf(why, whylen, "%u bytes reached", TQI_OUTBOX_MAX_BYTES);
		return true;
	}
	return tqi_budget_admit(b, acct_of(p), bytes, why, whylen) != TQ_OK;
}

/* Queues one packed command (len bytes) for p; returns 0, or -1 when out
 * of memory or when p's outbox is full (p is then marked gone). */
static int enqueue(tqi_broker *b, bpeer *p, const uint8_t *cmd, size_t len)
{
	/* A TASK's arguments are bounded already, by the worker's capacity and
	 * --max-payload; what else waits for a peer is only bounded here. */
	size_t bytes = sizeof(boutmsg) + len;
	if (len > TQI_HDR_LEN && cmd[3] == TQI_TASK) {
		tqi_split s;
		tqi_cmd_split(cmd, len, &s);
		bytes -= s.payload_len;
	}
	char why[160];
	if (outbox_full(b, p, bytes, why, sizeof why)) {
		tqi_log_limited(&b->bad_log, TQI_LOG_WARN,
		                "%s %s (%s) is not reading: %zu messages (%zu bytes) wait for it "
		                "(%s); letting it go",
		                p->role == TQI_ROLE_WORKER ? "worker" : "client", p->name, p->idhex,
		                p->outbox.len, p->outbox_bytes, why);
		tqi_peer_gone(b, p, "not reading what it is sent");
		return -1;
	}
	boutmsg *m = malloc(sizeof *m + len);
	if (m == NULL)
		return -1;
	memcpy(m->data, cmd, len);
	m->len = len;
	m->bytes = bytes;
	p->outbox_bytes += bytes;
	tqi_budget_charge(b, acct_of(p), bytes);
	tqi_list_push_back(&p->outbox, &m->node);
	if (!tqi_node_linked(&p->blocked))
		tqi_list_push_back(&b->blocked, &p->blocked);
	return 0;
}

/* How long a client may be without a connection before it is taken for
 * gone: four heartbeat intervals, at least a second - a reconnection takes
 * ZeroMQ's reconnect interval (100 ms) and a handshake. */
static uint64_t reconnect_grace_ms(const tqi_broker *b)
{
	uint64_t g = 4 * (uint64_t)b->opts.heartbeat_ms;
	return g < 1000 ? 1000 : g;
}

/* A send to p found no connection.  Returns true when p is let go; false
 * when what it was sent stays queued for its reconnection. */
static bool unreachable(tqi_broker *b, bpeer *p)
{
	if (p->role == TQI_ROLE_CLIENT) {
		if (p->unreachable_ms == 0)
			p->unreachable_ms = b->now_ms > 0 ? b->now_ms : 1;
		if (b->now_ms - p->unreachable_ms < reconnect_grace_ms(b))
			return false;
	}
	tqi_peer_gone(b, p, "disconnected");
	return true;
}

static void *sock_of(tqi_broker *b, bpeer *p)
{
	return p->role == TQI_ROLE_WORKER ? b->workers_sock : b->clients_sock;
}

/* p's batch was refused (high-water mark): each of its commands becomes an
 * outbox entry, in order, to be retried. */
static void batch_to_outbox(tqi_broker *b, bpeer *p)
{
	/* Taken out first: enqueue may find p not reading and clear p. */
	size_t len;
	uint8_t *buf = tqi_wbuf_release(&p->batch.w, &len);
	tqi_batch_clear(&p->batch);
	if (buf == NULL) {
		tqi_peer_gone(b, p, "broker out of memory for what it is sent");
		return;
	}
	for (size_t at = 0; at < len && !p->gone;) {
		tqi_split s; /* the broker's own packing: every command whole */
		tqi_cmd_split(buf + at, len - at, &s);
		if (enqueue(b, p, buf + at, s.len) != 0)
			break; /* p is gone (not reading), or memory ran out */
		at += s.len;
	}
	free(buf);
}

/* Sends p its batch as one frame and takes p off the batched list. */
static void send_batch(tqi_broker *b, bpeer *p)
{
	tqi_list_remove(&b->batched, &p->batched);
	if (p->batch.cmds == 0 || p->gone) {
		tqi_batch_clear(&p->batch);
		return;
	}
	if (tqi_batch_send(&p->batch, sock_of(b, p), p->id, p->idlen, ZMQ_DONTWAIT) == 0) {
		p->unreachable_ms = 0;
		return;
	}
	/* EAGAIN: at its high-water mark; EHOSTUNREACH: no connection. */
	if (errno == EAGAIN || !unreachable(b, p))
		batch_to_outbox(b, p);
}

int tqi_send_to(tqi_broker *b, void *sock, bpeer *p, const tqi_env *e, const void *payload,
                size_t len)
{
	(void)sock; /* the peer's role names its socket when the batch goes */
	if (tqi_batch_no_room(&p->batch, len))
		send_batch(b, p);
	if (p->gone)
		return -1;
	if (!tqi_list_empty(&p->outbox)) {
		tqi_wbuf_reset(&b->scratch);
		if (tqi_cmd_append(e, payload, len, &b->scratch) != TQ_OK) {
			tqi_error("cannot encode %s for %s", tqi_cmd_name(e->cmd), p->idhex);
			return -1;
		}
		return enqueue(b, p, b->scratch.data, b->scratch.len);
	}
	if (tqi_batch_add(&p->batch, e, payload, len) != TQ_OK) {
		tqi_error("cannot encode %s for %s", tqi_cmd_name(e->cmd), p->idhex);
		return -1;
	}
	if (!tqi_node_linked(&p->batched))
		tqi_list_push_back(&b->batched, &p->batched);
	/* A long turn does not hold a peer's messages back without end. */
	if (tqi_batch_full(&p->batch))
		send_batch(b, p);
	return 0;
}

int tqi_send_raw(tqi_broker *b, void *sock, const zmq_msg_t *id, const tqi_env *e)
{
	tqi_wbuf_reset(&b->scratch);
	if (tqi_cmd_append(e, NULL, 0, &b->scratch) != TQ_OK) {
		tqi_error("cannot encode %s", tqi_cmd_name(e->cmd));
		return -1;
	}
	return tqi_send(sock, zmq_msg_data((zmq_msg_t *)id), zmq_msg_size((zmq_msg_t *)id),
	                b->scratch.data, b->scratch.len, ZMQ_DONTWAIT);
}

void tqi_outbox_flush(tqi_broker *b)
{
	tqi_node *it, *nx;
	while ((it = tqi_list_front(&b->batched)) != NULL)
		send_batch(b, tqi_container_of(it, bpeer, batched));
	tqi_list_each(&b->blocked, it, nx)
	{
		bpeer *p = tqi_container_of(it, bpeer, blocked);
		void *sock = sock_of(b, p);
		tqi_node *n;
		while ((n = tqi_list_front(&p->outbox)) != NULL) {
			boutmsg *m = tqi_container_of(n, boutmsg, node);
			if (tqi_send(sock, p->id, p->idlen, m->data, m->len, ZMQ_DONTWAIT) != 0) {
				if (errno != EAGAIN)
					unreachable(b, p);
				break;
			}
			p->unreachable_ms = 0;
			tqi_list_remove(&p->outbox, n);
			p->outbox_bytes -= m->bytes;
			tqi_budget_release(b, acct_of(p), m->bytes);
			outmsg_free(m);
		}
		if (tqi_list_empty(&p->outbox))
			tqi_list_remove(&b->blocked, &p->blocked);
	}
}
