/*
 * raw.c - raw ZeroMQ peers for the integration tests (raw.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void raw_open(raw_peer *p, const char *ep)
{
	zmq_msg_init(&p->frame);
	p->off = 0;
	p->ctx = zmq_ctx_new();
	p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
	int linger = 0;
	zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
	if (ep != NULL)
		assert_int_equal(zmq_connect(p->sock, ep), 0);
}

/* A peer that reads slowly, if at all: ZeroMQ holds one message for it,
 * the kernel as little as it allows. */
void raw_open_reluctant(raw_peer *p, const char *ep)
{
	zmq_msg_init(&p->frame);
	p->off = 0;
	p->ctx = zmq_ctx_new();
	p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
	int linger = 0, one = 1, small = 4096, sndtimeo = 10000;
	zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(p->sock, ZMQ_RCVHWM, &one, sizeof one);
	zmq_setsockopt(p->sock, ZMQ_RCVBUF, &small, sizeof small);
	zmq_setsockopt(p->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
	assert_int_equal(zmq_connect(p->sock, ep), 0);
}

void raw_close(raw_peer *p)
{
	zmq_msg_close(&p->frame);
	zmq_close(p->sock);
	zmq_ctx_term(p->ctx);
}

/* Sends frames (each given as bytes + length), the last one without MORE. */
void raw_send(raw_peer *p, int nframes, ...)
{
	va_list ap;
	va_start(ap, nframes);
	for (int i = 0; i < nframes; i++) {
		const void *d = va_arg(ap, const void *);
		size_t n = va_arg(ap, size_t);
		assert_true(zmq_send(p->sock, d, n, i + 1 < nframes ? ZMQ_SNDMORE : 0) >= 0);
	}
	va_end(ap);
}

/* Waits for one message and returns its first frame's bytes 3..4 (command)
 * and, for ERROR, the code (msgpack positive fixint at byte 5). */
int raw_reply(raw_peer *p, int *cmd, int *code)
{
	zmq_pollitem_t it = { p->sock, 0, ZMQ_POLLIN, 0 };
	if (zmq_poll(&it, 1, 3000) <= 0)
		return -1;
	uint8_t buf[512];
	int n = zmq_recv(p->sock, buf, sizeof buf, 0);
	int more;
	size_t ms = sizeof more;
	do {
		zmq_getsockopt(p->sock, ZMQ_RCVMORE, &more, &ms);
		if (more) {
			uint8_t skip[16];
			zmq_recv(p->sock, skip, sizeof skip, 0);
		}
	} while (more);
	if (n < 6)
		return -1;
	*cmd = buf[3];
	*code = buf[5];
	return 0;
}

/* ---- raw peers that speak the protocol, through the codec ---- */

/* Sends e, with payload (plen bytes) when e->cmd carries one, as a frame
 * of its own. */
void raw_send_env(raw_peer *p, const tqi_env *e, const void *payload, size_t plen)
{
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	assert_int_equal(tqi_cmd_append(e, payload, plen, &w), TQ_OK);
	assert_true(zmq_send(p->sock, w.data, w.len, 0) >= 0);
	tqi_wbuf_free(&w);
}

void raw_msg_close(raw_msg *m)
{
	free(m->bytes);
	m->bytes = NULL;
}

/* Waits up to 5 s for the next command other than HEARTBEAT, and checks
 * that it is a well-formed `cmd`.  A frame may carry several commands
 * (PROTOCOL.md 2): this reads one, with its payload, split by the same
 * rule every reader uses, and leaves the rest for the next call.  Close m
 * afterwards. */
void raw_expect(raw_peer *p, uint8_t cmd, raw_msg *m)
{
	for (;;) {
		if (p->off >= zmq_msg_size(&p->frame)) {
			zmq_pollitem_t it = { p->sock, 0, ZMQ_POLLIN, 0 };
			assert_int_equal(zmq_poll(&it, 1, 5000), 1);
			zmq_msg_close(&p->frame);
			zmq_msg_init(&p->frame);
			assert_true(zmq_msg_recv(&p->frame, p->sock, 0) >= 0);
			p->off = 0;
		}
		const uint8_t *at = (const uint8_t *)zmq_msg_data(&p->frame) + p->off;
		tqi_split sp;
		tqi_cmd_split(at, zmq_msg_size(&p->frame) - p->off, &sp);
		assert_false(sp.payload_missing);
		assert_int_equal(sp.has_payload, tqi_cmd_has_payload(at[3]));
		p->off += sp.len;
		m->bytes = malloc(sp.len);
		assert_non_null(m->bytes);
		memcpy(m->bytes, at, sp.len);
		m->payload_len = sp.payload_len;
		assert_int_equal(tqi_env_decode(m->bytes, sp.env_len, &m->e, NULL, 0), TQ_OK);
		if (m->e.cmd != TQI_HEARTBEAT)
			break;
		raw_msg_close(m);
	}
	if (m->e.cmd != cmd)
		fail_msg("expected %s, got %s (code %u)", tqi_cmd_name(cmd), tqi_cmd_name(m->e.cmd),
		         m->e.code);
}

/* A raw worker: READY with one function, and the WELCOME that answers it. */
void raw_worker_ready_as(raw_peer *w, const char *name, const char *fn, uint32_t concurrency,
                         uint32_t capacity)
{
	tqi_wbuf fns;
	tqi_wbuf_init(&fns);
	assert_int_equal(tqi_raw_add_str(&fns, fn, strlen(fn)), 0);
	tqi_env e = { .cmd = TQI_READY,
		      .name = { name, (uint32_t)strlen(name) },
		      .concurrency = concurrency,
		      .capacity = capacity,
		      .heartbeat_ms = TQI_MAX_HEARTBEAT_MS, /* its silence is not death */
		      .functions = tqi_raw_of(&fns, 1) };
	raw_send_env(w, &e, NULL, 0);
	tqi_wbuf_free(&fns);
	raw_msg m;
	raw_expect(w, TQI_WELCOME, &m);
	raw_msg_close(&m);
}

void raw_worker_ready(raw_peer *w, const char *fn, uint32_t concurrency, uint32_t capacity)
{
	raw_worker_ready_as(w, "raw", fn, concurrency, capacity);
}

/* A raw worker receives one TASK; *ref and *attempt say which. */
void raw_worker_take(raw_peer *w, uint8_t ref[TQI_REF_LEN], uint32_t *attempt)
{
	raw_msg m;
	raw_expect(w, TQI_TASK, &m);
	memcpy(ref, m.e.ref, TQI_REF_LEN);
	*attempt = m.e.attempt;
	raw_msg_close(&m);
}

void raw_worker_done(raw_peer *w, const uint8_t ref[TQI_REF_LEN], uint32_t attempt,
                     const void *result, size_t len)
{
	tqi_env e = { .cmd = TQI_DONE, .attempt = attempt };
	memcpy(e.ref, ref, TQI_REF_LEN);
	raw_send_env(w, &e, result, len);
}

/* A raw client opens a session (HELLO, WELCOME). */
void raw_client_hello(raw_peer *c, uint64_t session)
{
	tqi_env e = { .cmd = TQI_HELLO, .session = session, .name = { "raw", 3 } };
	raw_send_env(c, &e, NULL, 0);
	raw_msg m;
	raw_expect(c, TQI_WELCOME, &m);
	raw_msg_close(&m);
}

void raw_client_submit(raw_peer *c, uint64_t session, uint8_t refbyte, const char *fn,
                       uint64_t timeout_ms, const char *args, size_t len)
{
	tqi_env e = { .cmd = TQI_SUBMIT,
		      .session = session,
		      .function = { fn, (uint32_t)strlen(fn) },
		      .timeout_ms = timeout_ms };
	memset(e.ref, refbyte, TQI_REF_LEN);
	raw_send_env(c, &e, args, len);
}

/* A round trip through the broker's loop: what the peer sent before has
 * been handled, and the loop turn that handled it has ended. */
void raw_client_sync(raw_peer *c)
{
	tqi_env e = { .cmd = TQI_STATS };
	raw_send_env(c, &e, NULL, 0);
	raw_msg m;
	raw_expect(c, TQI_STATS_REPLY, &m);
	raw_msg_close(&m);
}
