/* frames.c - commands in and out of ZeroMQ frames: one at a time in,
 * packed several to a frame out. */
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
	rx->open = false;
	rx->off = 0;
	rx->data = NULL;
	rx->size = 0;
	rx->ahead = NULL;
	rx->ahead_arg = NULL;
	zmq_msg_init(&rx->id);
	zmq_msg_init(&rx->frame);
}

/* Tells rx->ahead of the ref of the command at rx->off, when it starts
 * with one as tq writes it: header, a list of up to 15 fields, bin 16.
 * Only a hint: the command is checked when its turn comes. */
static void look_ahead(const tqi_rx *rx)
{
	enum { REF_AT = TQI_HDR_LEN + 3 };
	const uint8_t *q = rx->data + rx->off;
	if (rx->size - rx->off < REF_AT + TQI_REF_LEN || q[0] != TQI_MAGIC0 || q[1] != TQI_MAGIC1 ||
	    (q[TQI_HDR_LEN] & 0xf0) != 0x90 || q[TQI_HDR_LEN + 1] != 0xc4 ||
	    q[TQI_HDR_LEN + 2] != TQI_REF_LEN)
		return;
	rx->ahead(rx->ahead_arg, q + REF_AT);
}

/* Lets the frame being read go: no frame, nothing left of it. */
static void drop_frame(tqi_rx *rx)
{
	zmq_msg_close(&rx->frame);
	zmq_msg_init(&rx->frame);
	rx->open = false;
	rx->off = 0;
	rx->data = NULL;
	rx->size = 0;
}

void tqi_rx_close(tqi_rx *rx)
{
	zmq_msg_close(&rx->id);
	zmq_msg_init(&rx->id);
	drop_frame(rx);
}

/* Reads the next frame to take commands from: the next of the message
 * being read, or the first of a new one (after its routing id).  1, 0 when
 * none is waiting, -1 on a socket error; 2 for a message of a routing id
 * alone (rx->frame is then empty). */
static int next_frame(tqi_rx *rx, int flags)
{
	bool more = rx->open && zmq_msg_more(&rx->frame);
	drop_frame(rx);
	if (!more && rx->router) {
		zmq_msg_close(&rx->id);
		zmq_msg_init(&rx->id);
		if (zmq_msg_recv(&rx->id, rx->sock, flags) < 0)
			return errno == EAGAIN ? 0 : -1;
		if (!zmq_msg_more(&rx->id))
			return 2;
		more = true;
	}
	/* ZeroMQ delivers a message whole: the rest of one begun is here. */
	if (zmq_msg_recv(&rx->frame, rx->sock, more ? 0 : flags) < 0)
		return errno == EAGAIN ? 0 : -1;
	rx->open = true;
	rx->data = zmq_msg_data(&rx->frame);
	rx->size = zmq_msg_size(&rx->frame);
	return 1;
}

int tqi_rx_recv(tqi_rx *rx, tqi_frames *f, int flags)
{
	zmq_msg_init(&f->id);
	f->env = f->payload = NULL;
	f->envlen = f->payload_len = 0;
	f->shape = TQ_OK;
	f->err = TQ_ETRUNCATED; /* until an envelope is decoded */
	f->frame = &rx->frame;
	f->router = rx->router;
	if (!rx->open || rx->off >= rx->size) { /* used up: the next */
		int rc = next_frame(rx, flags);
		if (rc <= 0) {
			int err = errno;
			tqi_rx_close(rx);
			errno = err;
			return rc;
		}
		if (rc == 2 || rx->size == 0) {
			/* No command at all: one empty, so malformed, command -
			 * answered, never skipped in silence. */
			if (rx->router)
				zmq_msg_copy(&f->id, &rx->id);
			f->env = (const uint8_t *)"";
			return 1;
		}
	}
	const uint8_t *p = rx->data + rx->off;
	size_t left = rx->size - rx->off, used;
	tqi_split s;
	/* Decoded here, once: a well-formed envelope says where it ends.
	 * Only one that is not is cut by the splitter's own reading. */
	f->err = tqi_env_decode_prefix(p, left, &f->e, &used);
	if (f->err == TQ_OK)
		tqi_cmd_split_at(p, left, used, &s);
	else
		tqi_cmd_split(p, left, &s);
	rx->off += s.len;
	if (rx->ahead != NULL && rx->off < rx->size)
		look_ahead(rx);
	if (rx->router)
		zmq_msg_copy(&f->id, &rx->id);
	f->env = p;
	f->envlen = s.env_len;
	if (s.has_payload) {
		f->payload = p + s.payload_off;
		f->payload_len = s.payload_len;
	}
	if (s.payload_missing)
		f->shape = TQ_EFRAMES;
	return 1;
}

void tqi_frames_close(tqi_frames *f)
{
	zmq_msg_close(&f->id);
}

int tqi_frames_payload(const tqi_frames *f, zmq_msg_t *out)
{
	if (f->payload_len == 0) {
		zmq_msg_init(out);
		return 0;
	}
	if (zmq_msg_init_size(out, f->payload_len) != 0) {
		zmq_msg_init(out);
		return -1;
	}
	memcpy(zmq_msg_data(out), f->payload, f->payload_len);
	return 0;
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
	int zero = 0, rmin = 100, rmax = 5000, hbto = 12 * zmtp_ivl_ms;
	int ttl = hbto < 100 ? 100 : hbto;
	zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, sizeof rid);
	zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
	zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &rmin, sizeof rmin);
	zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &rmax, sizeof rmax);
	if (zmtp_ivl_ms > 0) {
		zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &zmtp_ivl_ms, sizeof zmtp_ivl_ms);
		zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &hbto, sizeof hbto);
		zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl);
	}
	if (zmq_connect(s, endpoint) != 0) {
		int err = errno;
		zmq_close(s);
		errno = err;
		return NULL;
	}
	return s;
}

tq_err tqi_frames_decode(tqi_frames *f, tqi_role from, tqi_role to, char *why, size_t whylen)
{
	tq_err err;
	if (f->err == TQ_OK && tqi_cmd_allowed(f->e.cmd, from, to)) {
		err = TQ_OK; /* decoded on arrival */
		if (why != NULL && whylen > 0)
			why[0] = '\0';
	} else { /* decoded again, with the route, for the verdict and why */
		err = tqi_env_decode_from(f->env, f->envlen, from, to, &f->e, why, whylen);
	}
	if (err == TQ_OK && f->shape != TQ_OK) {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen,
			         "%s without its payload (a msgpack bin after the body)",
			         tqi_cmd_name(f->e.cmd));
		err = f->shape;
	}
	f->err = err;
	return err;
}

int tqi_send(void *sock, const void *id, size_t idlen, const void *cmds, size_t len, int flags)
{
	if (id != NULL && zmq_send(sock, id, idlen, flags | ZMQ_SNDMORE) < 0)
		return -1;
	/* Once the routing id is accepted the rest of the message is too:
	 * ZeroMQ checks the high-water mark per message, at its first frame. */
	return zmq_send(sock, cmds, len, flags) < 0 ? -1 : 0;
}

void tqi_batch_init(tqi_batch *b)
{
	tqi_wbuf_init(&b->w);
	b->cmds = 0;
}

void tqi_batch_clear(tqi_batch *b)
{
	tqi_wbuf_free(&b->w);
	tqi_batch_init(b);
}

tq_err tqi_batch_add(tqi_batch *b, const tqi_env *e, const void *payload, size_t len)
{
	tq_err err = tqi_cmd_append(e, payload, len, &b->w);
	if (err == TQ_OK)
		b->cmds++;
	return err;
}

int tqi_batch_send(tqi_batch *b, void *sock, const void *id, size_t idlen, int flags)
{
	if (b->cmds == 0)
		return 0;
	if (tqi_send(sock, id, idlen, b->w.data, b->w.len, flags) != 0)
		return -1; /* refused whole (ZeroMQ takes a message whole or not at all) */
	tqi_wbuf_reset(&b->w);
	b->cmds = 0;
	return 0;
}
