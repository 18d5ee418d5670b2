/* frames.c - whole-message receive and zero-copy send over ZeroMQ. */
#include "proto/frames.h"

#include "proto/wire.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>

int tqi_frames_recv(void *sock, bool router, tqi_frames *f, int flags)
{
	zmq_msg_init(&f->id);
	zmq_msg_init(&f->env);
	zmq_msg_init(&f->payload);
	f->nframes = 0;
	f->router = router;
	zmq_msg_t *first = router ? &f->id : &f->env;
	if (zmq_msg_recv(first, sock, flags) < 0) {
		int err = errno;
		tqi_frames_close(f);
		errno = err;
		return err == EAGAIN ? 0 : -1;
	}
	if (!router)
		f->nframes = 1;
	/* The rest of a message is already here: ZeroMQ delivers messages
	 * whole, so these receives never block. */
	zmq_msg_t *last = first;
	while (zmq_msg_more(last)) {
		zmq_msg_t *dst;
		zmq_msg_t extra;
		if (f->nframes == 0)
			dst = &f->env;
		else if (f->nframes == 1)
			dst = &f->payload;
		else {
			zmq_msg_init(&extra);
			dst = &extra;
		}
		if (zmq_msg_recv(dst, sock, 0) < 0)
			break;
		f->nframes++;
		if (dst == &extra) {
			int more = zmq_msg_more(&extra);
			zmq_msg_close(&extra);
			if (!more)
				break;
			continue;
		}
		last = dst;
	}
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
