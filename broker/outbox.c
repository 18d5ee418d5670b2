/*
 * outbox.c - sending to a peer without blocking and without silent drops.
 *
 * A ROUTER with ROUTER_MANDATORY answers a send to a peer at its
 * high-water mark with EAGAIN and one to a departed peer with EHOSTUNREACH.
 * The first becomes a queued message (the peer's outbox, retried each loop
 * turn, in order); the second marks the peer gone, and its owner module
 * cleans up.  Invariant: while a peer's outbox is not empty, new messages
 * to it go to the back of the outbox, so order is kept.  The outbox is
 * bounded: a peer that lets it grow past --max-outbox messages or
 * TQI_OUTBOX_MAX_BYTES is not reading, and is let go like a dead one - a
 * client that keeps asking (STATS, refused SUBMITs) without reading the
 * answers cannot grow the broker.
 *
 * Within a loop turn, what goes to one peer is gathered in its batch and
 * sent at the end of the turn as one message (frames.h): a peer sent a
 * hundred results costs one routing lookup and one wake-up, not a
 * hundred.  A batch the peer's high-water mark refuses becomes outbox
 * entries, in order; a peer found gone then is cleaned up next turn.
 * Invariant: a peer has a batch only while its outbox is empty.
 */
#include "broker/broker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A batch goes early at this size: bounded memory, bounded delay. */
enum { BATCH_MAX_CMDS = 256, BATCH_MAX_BYTES = 1 << 20 };

static void outmsg_free(boutmsg *m)
{
	zmq_msg_close(&m->env);
	zmq_msg_close(&m->payload);
	free(m);
}

void tqi_outbox_clear(tqi_broker *b, bpeer *p)
{
	tqi_node *n;
	while ((n = tqi_list_pop_front(&p->outbox)) != NULL)
		outmsg_free(tqi_container_of(n, boutmsg, node));
	p->outbox_bytes = 0;
	tqi_list_remove(&b->blocked, &p->blocked);
	tqi_batch_clear(&p->batch);
	tqi_list_remove(&b->batched, &p->batched);
}

/* True when p's outbox cannot take `bytes` more: it is not reading. */
static bool outbox_full(const tqi_broker *b, bpeer *p, size_t bytes)
{
	uint64_t max_msgs = b->opts.max_outbox;
	if (p->role == TQI_ROLE_WORKER) /* each task it holds: a TASK, a CANCEL */
		max_msgs += 2 * (uint64_t)tqi_container_of(p, bworker, peer)->load;
	if (p->outbox.len >= max_msgs)
		return true;
	/* An empty outbox takes any one message: a result may be this big. */
	return !tqi_list_empty(&p->outbox) && p->outbox_bytes + bytes > TQI_OUTBOX_MAX_BYTES;
}

/* Queues env and *payload for p; returns 0, or -1 when out of memory or
 * when p's outbox is full (p is then marked gone). */
static int enqueue(tqi_broker *b, bpeer *p, const void *env, size_t envlen, zmq_msg_t *payload)
{
	/* A TASK's arguments are shared with the task, which --max-tasks and
	 * --max-payload bound already; every other payload is only here. */
	size_t bytes = sizeof(boutmsg) + envlen;
	if (payload != NULL && ((const uint8_t *)env)[3] != TQI_TASK)
		bytes += zmq_msg_size(payload);
	if (outbox_full(b, p, bytes)) {
		tqi_log_limited(&b->bad_log, TQI_LOG_WARN,
		                "%s %s (%s) is not reading: %zu messages (%zu bytes) wait for it; "
		                "letting it go",
		                p->role == TQI_ROLE_WORKER ? "worker" : "client", p->name, p->idhex,
		                p->outbox.len, p->outbox_bytes);
		tqi_peer_gone(b, p, "not reading what it is sent");
		return -1;
	}
	boutmsg *m = malloc(sizeof *m);
	if (m == NULL)
		return -1;
	if (zmq_msg_init_size(&m->env, envlen) != 0) {
		free(m);
		return -1;
	}
	memcpy(zmq_msg_data(&m->env), env, envlen);
	zmq_msg_init(&m->payload);
	m->has_payload = payload != NULL;
	if (payload != NULL)
		zmq_msg_move(&m->payload, payload);
	m->bytes = bytes;
	p->outbox_bytes += bytes;
	tqi_list_push_back(&p->outbox, &m->node);
	if (!tqi_node_linked(&p->blocked))
		tqi_list_push_back(&b->blocked, &p->blocked);
	return 0;
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
	tqi_batch bt = p->batch;
	tqi_batch_init(&p->batch);
	for (uint32_t i = 0; i < bt.n && !p->gone;) {
		zmq_msg_t *env = &bt.v[i++];
		bool with_payload = tqi_cmd_frames(zmq_msg_data(env), zmq_msg_size(env)) == 2;
		zmq_msg_t *payload = with_payload && i < bt.n ? &bt.v[i++] : NULL;
		if (enqueue(b, p, zmq_msg_data(env), zmq_msg_size(env), payload) != 0)
			break; /* p is gone (not reading), or memory ran out */
	}
	tqi_batch_clear(&bt);
}

/* Sends p its batch as one message and takes p off the batched list. */
static void send_batch(tqi_broker *b, bpeer *p)
{
	tqi_list_remove(&b->batched, &p->batched);
	if (p->batch.n == 0 || p->gone) {
		tqi_batch_clear(&p->batch);
		return;
	}
	if (tqi_batch_send(&p->batch, sock_of(b, p), p->id, p->idlen, ZMQ_DONTWAIT) == 0)
		return;
	if (errno == EAGAIN)
		batch_to_outbox(b, p);
	else
		tqi_peer_gone(b, p, "disconnected"); /* EHOSTUNREACH: its connection is gone */
}

int tqi_send_to(tqi_broker *b, void *sock, bpeer *p, const tqi_env *e, zmq_msg_t *payload)
{
	if (p->gone)
		return -1;
	if (tqi_env_encode(e, &b->scratch) != TQ_OK) {
		tqi_error("cannot encode %s for %s", tqi_cmd_name(e->cmd), p->idhex);
		return -1;
	}
	(void)sock; /* the peer's role names its socket when the batch goes */
	if (!tqi_list_empty(&p->outbox))
		return enqueue(b, p, b->scratch.data, b->scratch.len, payload);
	if (tqi_batch_add(&p->batch, b->scratch.data, b->scratch.len, payload) != 0)
		return -1;
	if (!tqi_node_linked(&p->batched))
		tqi_list_push_back(&b->batched, &p->batched);
	/* A long turn does not hold a peer's messages back without end. */
	if (p->batch.cmds >= BATCH_MAX_CMDS || p->batch.bytes >= BATCH_MAX_BYTES)
		send_batch(b, p);
	return 0;
}

int tqi_send_raw(tqi_broker *b, void *sock, const zmq_msg_t *id, const tqi_env *e)
{
	if (tqi_env_encode(e, &b->scratch) != TQ_OK) {
		tqi_error("cannot encode %s", tqi_cmd_name(e->cmd));
		return -1;
	}
	return tqi_send(sock, zmq_msg_data((zmq_msg_t *)id), zmq_msg_size((zmq_msg_t *)id),
	                b->scratch.data, b->scratch.len, NULL, ZMQ_DONTWAIT);
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
			int rc = tqi_send(sock, p->id, p->idlen, zmq_msg_data(&m->env),
			                  zmq_msg_size(&m->env),
			                  m->has_payload ? &m->payload : NULL, ZMQ_DONTWAIT);
			if (rc != 0) {
				if (errno != EAGAIN)
					tqi_peer_gone(b, p, "disconnected");
				break;
			}
			tqi_list_remove(&p->outbox, n);
			p->outbox_bytes -= m->bytes;
			outmsg_free(m);
		}
		if (tqi_list_empty(&p->outbox))
			tqi_list_remove(&b->blocked, &p->blocked);
	}
}
