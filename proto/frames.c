/* frames.c - commands in and out of ZeroMQ messages: one at a time in,
 * one or a batch per message out; payloads zero-copy. */
#include "proto/frames.h"

#include "proto/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

void tqi_rx_init(tqi_rx *rx, void *sock, bool router)
{
	rx->sock = sock;
	rx->router = router;
	rx->mid = false;
	zmq_msg_init(&rx->id);
}

void tqi_rx_close(tqi_rx *rx)
{
	zmq_msg_close(&rx->id);
	zmq_msg_init(&rx->id);
	rx->mid = false;
}

/* Reads and drops the rest of the message after `last`; counts it. */
static void take_rest(tqi_rx *rx, zmq_msg_t *last, tqi_frames *f)
{
	int more = zmq_msg_more(last);
	while (more) {
		zmq_msg_t extra;
		zmq_msg_init(&extra);
		if (zmq_msg_recv(&extra, rx->sock, 0) < 0) {
			zmq_msg_close(&extra);
			break;
		}
		f->nframes++;
		more = zmq_msg_more(&extra);
		zmq_msg_close(&extra);
	}
}

int tqi_rx_recv(tqi_rx *rx, tqi_frames *f, int flags)
{
	zmq_msg_init(&f->id);
	zmq_msg_init(&f->env);
	zmq_msg_init(&f->payload);
	f->nframes = 0;
	f->router = rx->router;
	if (!rx->mid && rx->router) {
		zmq_msg_close(&rx->id);
		zmq_msg_init(&rx->id);
		if (zmq_msg_recv(&rx->id, rx->sock, flags) < 0) {
			int err = errno;
			tqi_frames_close(f);
			errno = err;
			return err == EAGAIN ? 0 : -1;
		}
		flags = 0; /* ZeroMQ delivers a message whole: the rest is here */
		if (!zmq_msg_more(&rx->id)) { /* a routing id and nothing else */
			zmq_msg_copy(&f->id, &rx->id);
			return 1;
		}
	}
	if (rx->mid)
		flags = 0;
	if (zmq_msg_recv(&f->env, rx->sock, flags) < 0) {
		int err = errno;
		tqi_frames_close(f);
		tqi_rx_close(rx);
		errno = err;
		return err == EAGAIN ? 0 : -1;
	}
	if (rx->router)
		zmq_msg_copy(&f->id, &rx->id);
	f->nframes = 1;
	zmq_msg_t *last = &f->env;
	unsigned shape = tqi_cmd_frames(zmq_msg_data(&f->env), zmq_msg_size(&f->env));
	if (shape == 2 && zmq_msg_more(last)) {
		if (zmq_msg_recv(&f->payload, rx->sock, 0) < 0) {
			rx->mid = false; /* the socket failed; what it had is gone */
			return 1;
		}
		f->nframes = 2;
		last = &f->payload;
	} else if (shape == 0) {
		take_rest(rx, last, f); /* its shape is unknown: all of it is its */
		rx->mid = false;
		return 1;
	}
	rx->mid = zmq_msg_more(last);
	return 1;
}

void tqi_frames_close(tqi_frames *f)
{
	zmq_msg_close(&f->id);
	zmq_msg_close(&f->env);
	zmq_msg_close(&f->payload);
}

tq_err tqi_frames_check(const tqi_frames *f, unsigned char cmd)
{
	unsigned want = tqi_cmd_has_payload(cmd) ? 2 : 1;
	return f->nframes == want ? TQ_OK : TQ_EFRAMES;
}

void *tqi_dealer_open(void *ctx, const uint8_t id[16], const char *endpoint, int linger_ms,
                      int zmtp_ivl_ms)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	if (s == NULL)
		return NULL;
	uint8_t rid[16];
	memcpy(rid, id, sizeof rid);
	rid[0] |= 0x80; /* a routing id may not start with 0 */
	int zero = 0, rmin = 100, rmax = 5000, hbto = 3 * zmtp_ivl_ms;
	zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, sizeof rid);
	zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
	zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &rmin, sizeof rmin);
	zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &rmax, sizeof rmax);
	if (zmtp_ivl_ms > 0) {
		zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &zmtp_ivl_ms, sizeof zmtp_ivl_ms);
		zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &hbto, sizeof hbto);
	}
	if (zmq_connect(s, endpoint) != 0) {
		int err = errno;
		zmq_close(s);
		errno = err;
		return NULL;
	}
	return s;
}

tq_err tqi_frames_decode(const tqi_frames *f, tqi_role from, tqi_role to, tqi_env *e, char *why,
                         size_t whylen)
{
	zmq_msg_t *env = (zmq_msg_t *)&f->env;
	tq_err err =
	    tqi_env_decode_from(zmq_msg_data(env), zmq_msg_size(env), from, to, e, why, whylen);
	if (err == TQ_OK && tqi_frames_check(f, e->cmd) != TQ_OK) {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "%s with %u frames", tqi_cmd_name(e->cmd),
			         f->nframes);
		err = TQ_EFRAMES;
	}
	return err;
}

int tqi_send(void *sock, const void *id, size_t idlen, const void *env, size_t envlen,
             zmq_msg_t *payload, int flags)
{
	bool with_payload = envlen >= 4 && tqi_cmd_has_payload(((const unsigned char *)env)[3]);
	if (id != NULL && zmq_send(sock, id, idlen, flags | ZMQ_SNDMORE) < 0)
		return -1;
	/* Once the routing id is accepted the rest of the message is too:
	 * ZeroMQ checks the high-water mark per message, at its first frame. */
	if (zmq_send(sock, env, envlen, flags | (with_payload ? ZMQ_SNDMORE : 0)) < 0)
		return -1;
	if (!with_payload) {
		if (payload != NULL) /* nothing to carry it: still "moved" */
			zmq_msg_close(payload), zmq_msg_init(payload);
		return 0;
	}
	if (payload != NULL)
		return zmq_msg_send(payload, sock, flags) < 0 ? -1 : 0;
	return zmq_send(sock, "", 0, flags) < 0 ? -1 : 0;
}

void tqi_batch_init(tqi_batch *b)
{
	b->v = NULL;
	b->n = b->cap = b->cmds = 0;
	b->bytes = 0;
}

void tqi_batch_clear(tqi_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		zmq_msg_close(&b->v[i]);
	free(b->v);
	tqi_batch_init(b);
}

static int batch_room(tqi_batch *b, uint32_t more)
{
	if (b->n + more <= b->cap)
		return 0;
	uint32_t cap = b->cap ? 2 * b->cap : 16;
	while (cap < b->n + more)
		cap *= 2;
	zmq_msg_t *v = realloc(b->v, cap * sizeof *v);
	if (v == NULL)
		return -1;
	b->v = v;
	b->cap = cap;
	return 0;
}

int tqi_batch_add(tqi_batch *b, const void *env, size_t envlen, zmq_msg_t *payload)
{
	bool with_payload = envlen >= 4 && tqi_cmd_has_payload(((const unsigned char *)env)[3]);
	if (batch_room(b, with_payload ? 2 : 1) != 0)
		return -1;
	zmq_msg_t *e = &b->v[b->n];
	if (zmq_msg_init_size(e, envlen) != 0)
		return -1;
	memcpy(zmq_msg_data(e), env, envlen);
	b->n++;
	b->bytes += envlen;
	if (with_payload) {
		zmq_msg_t *p = &b->v[b->n++];
		zmq_msg_init(p);
		if (payload != NULL) {
			zmq_msg_move(p, payload);
			b->bytes += zmq_msg_size(p);
		}
	} else if (payload != NULL) { /* nothing to carry it: still "moved" */
		zmq_msg_close(payload);
		zmq_msg_init(payload);
	}
	b->cmds++;
	return 0;
}

int tqi_batch_send(tqi_batch *b, void *sock, const void *id, size_t idlen, int flags)
{
	if (b->n == 0)
		return 0;
	if (id != NULL && zmq_send(sock, id, idlen, flags | ZMQ_SNDMORE) < 0)
		return -1;
	/* Once the first frame is taken the rest is too: ZeroMQ checks the
	 * high-water mark per message. */
	for (uint32_t i = 0; i < b->n; i++) {
		int more = i + 1 < b->n ? ZMQ_SNDMORE : 0;
		if (zmq_msg_send(&b->v[i], sock, flags | more) < 0) {
			if (i == 0 && id == NULL)
				return -1; /* refused whole: the batch is intact */
			/* Cannot happen after the first frame; if it did, the
			 * message is lost either way: do not send its rest twice. */
			for (uint32_t j = i; j < b->n; j++)
				zmq_msg_close(&b->v[j]);
			b->n = b->cmds = 0;
			b->bytes = 0;
			return -1;
		}
	}
	b->n = b->cmds = 0;
	b->bytes = 0;
	return 0;
}
