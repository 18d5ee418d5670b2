/*
 * test_frames.c - commands in and out of frames, over a real inproc
 * ROUTER/DEALER pair: a frame carries several commands, each received on its
 * own, in order, with its sender's id and its payload; a command whose end
 * cannot be found (no tq header, a body that is no msgpack value, a payload
 * missing) takes the rest of its frame and only that, so it cannot shift the
 * next frame or message; a batch goes as one frame and a refused batch is
 * kept whole; the splitter finds every command's end and never reads past
 * its frame.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/frames.h"
#include "proto/wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char dealer_id[] = "dealer-1";

typedef struct {
	void *ctx;
	void *router;
	void *dealer;
	tqi_rx rrx, drx; /* their readers */
} pair;

/* Receives one command on the pair's router or dealer. */
static int recv_cmd(pair *p, bool router, tqi_frames *f, int flags)
{
	return tqi_rx_recv(router ? &p->rrx : &p->drx, f, flags);
}

static void *socket_of(void *ctx, int type)
{
	void *s = zmq_socket(ctx, type);
	assert_non_null(s);
	int linger = 0, timeout = 5000; /* a lost message fails the test, not hangs it */
	assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout), 0);
	return s;
}

static int setup(void **state)
{
	static int seq;
	static pair p;
	char ep[64];
	snprintf(ep, sizeof ep, "inproc://test-frames-%d", seq++);
	p.ctx = zmq_ctx_new();
	assert_non_null(p.ctx);
	p.router = socket_of(p.ctx, ZMQ_ROUTER);
	p.dealer = socket_of(p.ctx, ZMQ_DEALER);
	assert_int_equal(zmq_setsockopt(p.dealer, ZMQ_ROUTING_ID, dealer_id, strlen(dealer_id)), 0);
	assert_int_equal(zmq_bind(p.router, ep), 0);
	assert_int_equal(zmq_connect(p.dealer, ep), 0);
	/* one message each way so both ends know the route */
	assert_int_equal(zmq_send(p.dealer, "hi", 2, 0), 2);
	char buf[32];
	assert_int_equal(zmq_recv(p.router, buf, sizeof buf, 0), (int)strlen(dealer_id));
	assert_int_equal(zmq_recv(p.router, buf, sizeof buf, 0), 2);
	tqi_rx_init(&p.rrx, p.router, true);
	tqi_rx_init(&p.drx, p.dealer, false);
	*state = &p;
	return 0;
}

static int teardown(void **state)
{
	pair *p = *state;
	tqi_rx_close(&p->rrx);
	tqi_rx_close(&p->drx);
	zmq_close(p->router);
	zmq_close(p->dealer);
	zmq_ctx_term(p->ctx);
	return 0;
}

/* A command of cmd with an empty body ([]: enough for the frame layer,
 * which finds its end without checking its fields), then, when pl is not
 * NULL, the payload bin.  Appended to w. */
static void raw_cmd(tqi_wbuf *w, uint8_t cmd, const char *pl)
{
	const uint8_t env[5] = { TQI_MAGIC0, TQI_MAGIC1, TQI_VERSION, cmd, 0x90 };
	assert_int_equal(tqi_wbuf_append(w, env, sizeof env), 0);
	if (pl != NULL) {
		uint8_t bin[2] = { 0xc4, (uint8_t)strlen(pl) };
		assert_int_equal(tqi_wbuf_append(w, bin, 2), 0);
		assert_int_equal(tqi_wbuf_append(w, pl, strlen(pl)), 0);
	}
}

static void send_raw(void *sock, const tqi_wbuf *w, int flags)
{
	assert_int_equal(zmq_send(sock, w->data, w->len, flags), (int)w->len);
}

/* Receives one command and checks its command byte, payload and (on the
 * router) sender. */
static void expect_cmd(pair *p, bool router, uint8_t cmd, const char *pl)
{
	tqi_frames f;
	assert_int_equal(recv_cmd(p, router, &f, 0), 1);
	assert_true(f.envlen >= 4);
	assert_int_equal(f.env[3], cmd);
	assert_int_equal(f.shape, TQ_OK);
	if (router)
		assert_int_equal(zmq_msg_size(&f.id), strlen(dealer_id));
	if (pl == NULL) {
		assert_null(f.payload);
	} else {
		assert_non_null(f.payload);
		assert_int_equal(f.payload_len, strlen(pl));
		assert_memory_equal(f.payload, pl, f.payload_len);
	}
	tqi_frames_close(&f);
}

/* Receives one malformed command: all of `rest` (its envelope is what it
 * took), with shape. */
static void expect_bad(pair *p, bool router, const void *rest, size_t len, tq_err shape)
{
	tqi_frames f;
	assert_int_equal(recv_cmd(p, router, &f, 0), 1);
	assert_int_equal(f.envlen, len);
	if (len > 0)
		assert_memory_equal(f.env, rest, len);
	assert_int_equal(f.shape, shape);
	assert_int_not_equal(tqi_frames_decode(&f, TQI_ROLE_WORKER, TQI_ROLE_BROKER, NULL, 0),
	                     TQ_OK);
	tqi_frames_close(&f);
}

static void expect_none(pair *p, bool router)
{
	tqi_frames f;
	assert_int_equal(recv_cmd(p, router, &f, ZMQ_DONTWAIT), 0);
}

static void test_frame_carries_commands_in_order(void **state)
{
	pair *p = *state;
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	raw_cmd(&w, TQI_DONE, "r1");
	raw_cmd(&w, TQI_PING, NULL);
	raw_cmd(&w, TQI_DONE, "");
	send_raw(p->dealer, &w, 0);
	expect_cmd(p, true, TQI_DONE, "r1");
	expect_cmd(p, true, TQI_PING, NULL);
	expect_cmd(p, true, TQI_DONE, "");
	expect_none(p, true);
	/* and on a DEALER, a message of several frames */
	assert_int_equal(zmq_send(p->router, dealer_id, strlen(dealer_id), ZMQ_SNDMORE),
	                 (int)strlen(dealer_id));
	tqi_wbuf_reset(&w);
	raw_cmd(&w, TQI_TASK, "a");
	send_raw(p->router, &w, ZMQ_SNDMORE);
	tqi_wbuf_reset(&w);
	raw_cmd(&w, TQI_TASK, "bb");
	raw_cmd(&w, TQI_HEARTBEAT, NULL);
	send_raw(p->router, &w, 0);
	expect_cmd(p, false, TQI_TASK, "a");
	expect_cmd(p, false, TQI_TASK, "bb");
	expect_cmd(p, false, TQI_HEARTBEAT, NULL);
	expect_none(p, false);
	tqi_wbuf_free(&w);
}

static void test_bad_command_takes_rest_of_frame_only(void **state)
{
	pair *p = *state;
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	/* PING, then bytes that are no header, then a PING they swallow; the
	 * next frame of the same message is read as it is. */
	raw_cmd(&w, TQI_PING, NULL);
	size_t bad_at = w.len;
	assert_int_equal(tqi_wbuf_append(&w, "xx", 2), 0);
	raw_cmd(&w, TQI_PING, NULL);
	send_raw(p->dealer, &w, ZMQ_SNDMORE);
	tqi_wbuf v;
	tqi_wbuf_init(&v);
	raw_cmd(&v, TQI_PING, NULL);
	send_raw(p->dealer, &v, 0);
	expect_cmd(p, true, TQI_PING, NULL);
	expect_bad(p, true, w.data + bad_at, w.len - bad_at, TQ_OK);
	expect_cmd(p, true, TQI_PING, NULL);
	expect_none(p, true);

	/* A body that is no whole msgpack value (an array of 3, one given). */
	tqi_wbuf_reset(&w);
	const uint8_t cut[] = { TQI_MAGIC0, TQI_MAGIC1, TQI_VERSION, TQI_PING, 0x93, 0x01 };
	assert_int_equal(tqi_wbuf_append(&w, cut, sizeof cut), 0);
	send_raw(p->dealer, &w, 0);
	expect_bad(p, true, cut, sizeof cut, TQ_OK);

	/* A DONE whose body is not followed by a bin: EFRAMES, and the PING
	 * after it goes with it. */
	tqi_wbuf_reset(&w);
	raw_cmd(&w, TQI_DONE, NULL);
	raw_cmd(&w, TQI_PING, NULL);
	send_raw(p->dealer, &w, 0);
	tqi_frames f;
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_int_equal(f.shape, TQ_EFRAMES);
	assert_int_equal(f.envlen, 5);
	assert_null(f.payload);
	tqi_frames_close(&f);
	expect_none(p, true);

	/* A payload bin that says more than the frame holds. */
	tqi_wbuf_reset(&w);
	raw_cmd(&w, TQI_DONE, NULL);
	assert_int_equal(tqi_wbuf_append(&w,
	                                 "\xc4\x09"
	                                 "abc",
	                                 5),
	                 0);
	send_raw(p->dealer, &w, 0);
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_int_equal(f.shape, TQ_EFRAMES);
	tqi_frames_close(&f);
	expect_none(p, true);
	tqi_wbuf_free(&v);
	tqi_wbuf_free(&w);
}

static void test_empty_frames_are_malformed_commands(void **state)
{
	pair *p = *state;
	/* an empty message (a ROUTER reads it as the routing id and one empty
	 * frame), then an empty frame between two commands */
	assert_int_equal(zmq_send(p->dealer, "", 0, 0), 0);
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	raw_cmd(&w, TQI_PING, NULL);
	send_raw(p->dealer, &w, ZMQ_SNDMORE);
	assert_int_equal(zmq_send(p->dealer, "", 0, ZMQ_SNDMORE), 0);
	send_raw(p->dealer, &w, 0);
	expect_bad(p, true, "", 0, TQ_OK);
	expect_cmd(p, true, TQI_PING, NULL);
	expect_bad(p, true, "", 0, TQ_OK);
	expect_cmd(p, true, TQI_PING, NULL);
	expect_none(p, true);
	/* and on a DEALER */
	assert_int_equal(zmq_send(p->router, dealer_id, strlen(dealer_id), ZMQ_SNDMORE),
	                 (int)strlen(dealer_id));
	assert_int_equal(zmq_send(p->router, "", 0, 0), 0);
	expect_bad(p, false, "", 0, TQ_OK);
	expect_none(p, false);
	tqi_wbuf_free(&w);
}

/* A real TASK (or DONE) for ref n. */
static tqi_env task_env(uint8_t cmd, uint8_t n)
{
	tqi_env e = { .cmd = cmd, .function = { "f", 1 }, .attempt = 1 };
	memset(e.ref, n, sizeof e.ref);
	return e;
}

static void expect_env(pair *p, bool router, uint8_t cmd, uint8_t n, const char *pl)
{
	tqi_frames f;
	assert_int_equal(recv_cmd(p, router, &f, 0), 1);
	tqi_role from = router ? TQI_ROLE_WORKER : TQI_ROLE_BROKER;
	tqi_role to = router ? TQI_ROLE_BROKER : TQI_ROLE_WORKER;
	assert_int_equal(tqi_frames_decode(&f, from, to, NULL, 0), TQ_OK);
	assert_int_equal(f.e.cmd, cmd);
	assert_int_equal(f.e.ref[0], n);
	/* misrouted, the same command is refused */
	assert_int_equal(tqi_frames_decode(&f, to, from, NULL, 0), TQ_ECOMMAND);
	if (pl != NULL) {
		assert_int_equal(f.payload_len, strlen(pl));
		assert_memory_equal(f.payload, pl, f.payload_len);
		zmq_msg_t m;
		assert_int_equal(tqi_frames_payload(&f, &m), 0);
		assert_int_equal(zmq_msg_size(&m), strlen(pl));
		zmq_msg_close(&m);
	}
	tqi_frames_close(&f);
}

static void test_batch_goes_as_one_frame(void **state)
{
	pair *p = *state;
	tqi_batch b;
	tqi_batch_init(&b);
	tqi_env t1 = task_env(TQI_TASK, 1), hb = { .cmd = TQI_HEARTBEAT },
	        t2 = task_env(TQI_TASK, 2);
	assert_int_equal(tqi_batch_add(&b, &t1, "args-1", 6), TQ_OK);
	assert_int_equal(tqi_batch_add(&b, &hb, "ignored", 7), TQ_OK); /* carries none */
	assert_int_equal(tqi_batch_add(&b, &t2, NULL, 0), TQ_OK);      /* an empty one */
	tqi_env bad = { .cmd = TQI_TASK };                             /* no function */
	size_t before = b.w.len;
	assert_int_equal(tqi_batch_add(&b, &bad, "x", 1), TQ_EINVAL);
	assert_int_equal(b.w.len, before); /* left as it was */
	assert_int_equal(b.cmds, 3);
	assert_int_equal(tqi_batch_send(&b, p->router, dealer_id, strlen(dealer_id), 0), 0);
	assert_int_equal(b.cmds, 0);
	assert_int_equal(b.w.len, 0);
	/* one frame on the wire */
	zmq_msg_t m;
	zmq_msg_init(&m);
	assert_true(zmq_msg_recv(&m, p->dealer, 0) >= 0);
	assert_false(zmq_msg_more(&m));
	assert_int_equal(zmq_msg_size(&m), before);
	/* which the reader splits into the three, in order */
	assert_int_equal(zmq_send(p->dealer, zmq_msg_data(&m), zmq_msg_size(&m), 0), (int)before);
	zmq_msg_close(&m);
	zmq_msg_init(&m);
	assert_true(zmq_msg_recv(&m, p->router, 0) >= 0); /* the id */
	assert_true(zmq_msg_more(&m));
	assert_true(zmq_msg_recv(&m, p->router, 0) >= 0);
	assert_int_equal(zmq_send(p->router, dealer_id, strlen(dealer_id), ZMQ_SNDMORE),
	                 (int)strlen(dealer_id));
	assert_true(zmq_msg_send(&m, p->router, 0) >= 0);
	zmq_msg_close(&m);
	expect_env(p, false, TQI_TASK, 1, "args-1");
	expect_cmd(p, false, TQI_HEARTBEAT, NULL);
	expect_env(p, false, TQI_TASK, 2, "");
	expect_none(p, false);
	tqi_batch_clear(&b);
}

/* What the look-ahead hook was told, in order. */
typedef struct {
	uint8_t refs[8];
	int n;
} told;

static void note_ahead(void *arg, const uint8_t ref[TQI_REF_LEN])
{
	told *t = arg;
	for (int i = 1; i < TQI_REF_LEN; i++)
		assert_int_equal(ref[i], ref[0]); /* a whole ref, from its command */
	if (t->n < 8)
		t->refs[t->n] = ref[0];
	t->n++;
}

/* As each command is handed out, the hook hears the ref of the next one in
 * the same frame - when that one starts with a ref - and nothing of the
 * next frame. */
static void test_reader_looks_ahead(void **state)
{
	pair *p = *state;
	told t = { { 0 }, 0 };
	p->drx.ahead = note_ahead;
	p->drx.ahead_arg = &t;
	tqi_batch b;
	tqi_batch_init(&b);
	tqi_env t1 = task_env(TQI_TASK, 1), hb = { .cmd = TQI_HEARTBEAT },
	        t2 = task_env(TQI_TASK, 2), t3 = task_env(TQI_TASK, 3);
	memset(hb.instance, 9, sizeof hb.instance); /* a ref-like first field, and no ref */
	assert_int_equal(tqi_batch_add(&b, &t1, "a", 1), TQ_OK);
	assert_int_equal(tqi_batch_add(&b, &t2, "b", 1), TQ_OK);
	assert_int_equal(tqi_batch_add(&b, &hb, NULL, 0), TQ_OK);
	assert_int_equal(tqi_batch_add(&b, &t3, "c", 1), TQ_OK);
	assert_int_equal(tqi_batch_send(&b, p->router, dealer_id, strlen(dealer_id), 0), 0);
	memset(t1.ref, 4, sizeof t1.ref);
	assert_int_equal(tqi_batch_add(&b, &t1, "d", 1), TQ_OK);
	assert_int_equal(tqi_batch_send(&b, p->router, dealer_id, strlen(dealer_id), 0), 0);
	expect_env(p, false, TQI_TASK, 1, "a");
	assert_int_equal(t.n, 1);
	assert_int_equal(t.refs[0], 2);
	expect_env(p, false, TQI_TASK, 2, "b");
	/* the HEARTBEAT's instance is a 16-byte bin first too: a hint only */
	assert_int_equal(t.n, 2);
	assert_int_equal(t.refs[1], 9);
	expect_cmd(p, false, TQI_HEARTBEAT, NULL);
	assert_int_equal(t.n, 3);
	assert_int_equal(t.refs[2], 3);
	expect_env(p, false, TQI_TASK, 3, "c"); /* the last of its frame */
	assert_int_equal(t.n, 3);
	expect_env(p, false, TQI_TASK, 4, "d");
	assert_int_equal(t.n, 3);
	expect_none(p, false);
	tqi_batch_clear(&b);
	p->drx.ahead = NULL;
}

static void test_refused_batch_is_kept(void **state)
{
	pair *p = *state;
	int on = 1;
	assert_int_equal(zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &on, sizeof on), 0);
	tqi_batch b;
	tqi_batch_init(&b);
	tqi_env t = task_env(TQI_TASK, 7), c = { .cmd = TQI_CANCEL };
	assert_int_equal(tqi_batch_add(&b, &t, "abcd", 4), TQ_OK);
	assert_int_equal(tqi_batch_add(&b, &c, NULL, 0), TQ_OK);
	size_t len = b.w.len;
	assert_int_equal(tqi_batch_send(&b, p->router, "nobody", 6, ZMQ_DONTWAIT), -1);
	assert_int_equal(errno, EHOSTUNREACH);
	assert_int_equal(b.cmds, 2);
	assert_int_equal(b.w.len, len);
	assert_int_equal(tqi_batch_send(&b, p->router, dealer_id, strlen(dealer_id), 0), 0);
	expect_env(p, false, TQI_TASK, 7, "abcd");
	expect_cmd(p, false, TQI_CANCEL, NULL);
	tqi_batch_clear(&b);
}

static void test_send_from_dealer(void **state)
{
	pair *p = *state;
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	tqi_env d = task_env(TQI_DONE, 3);
	assert_int_equal(tqi_cmd_append(&d, "[21]", 4, &w), TQ_OK);
	assert_int_equal(tqi_send(p->dealer, NULL, 0, w.data, w.len, 0), 0);
	expect_env(p, true, TQI_DONE, 3, "[21]");
	tqi_wbuf_free(&w);
}

static void test_split_every_command(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++) {
		tqi_wbuf w;
		tqi_wbuf_init(&w);
		raw_cmd(&w, (uint8_t)c, "pl");
		raw_cmd(&w, TQI_PING, NULL);
		tqi_split s;
		tqi_cmd_split(w.data, w.len, &s);
		if (tqi_cmd_name((uint8_t)c) == NULL) { /* its shape is unknown: all of it */
			assert_int_equal(s.len, w.len);
			assert_int_equal(s.env_len, w.len);
		} else if (tqi_cmd_has_payload((uint8_t)c)) {
			assert_int_equal(s.env_len, 5);
			assert_true(s.has_payload);
			assert_int_equal(s.payload_off, 7);
			assert_int_equal(s.payload_len, 2);
			assert_int_equal(s.len, 9);
		} else { /* the bin is no part of it: the next command is */
			assert_int_equal(s.env_len, 5);
			assert_int_equal(s.len, 5);
			assert_false(s.has_payload);
		}
		w.data[2] = TQI_VERSION + 1; /* another version's shape is unknown */
		tqi_cmd_split(w.data, w.len, &s);
		assert_int_equal(s.len, w.len);
		/* never past its length: every prefix splits within itself */
		w.data[2] = TQI_VERSION;
		for (size_t n = 1; n <= w.len; n++) {
			tqi_cmd_split(w.data, n, &s);
			assert_true(s.len >= 1 && s.len <= n);
			assert_true(s.env_len <= s.len);
			if (s.has_payload)
				assert_true(s.payload_off + s.payload_len <= s.len);
		}
		tqi_cmd_split(w.data, 0, &s);
		assert_int_equal(s.len, 0);
		tqi_wbuf_free(&w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_frame_carries_commands_in_order, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_bad_command_takes_rest_of_frame_only, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_empty_frames_are_malformed_commands, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_batch_goes_as_one_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_looks_ahead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_batch_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_from_dealer, setup, teardown),
		cmocka_unit_test(test_split_every_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
