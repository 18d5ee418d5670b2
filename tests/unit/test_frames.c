/*
 * test_frames.c - commands in and out of messages, over a real inproc
 * ROUTER/DEALER pair: a frame that is no tq header takes the rest of its
 * message with it, counted (so it cannot shift the next one); frame counts
 * are checked per command; a batch carries several commands in one message,
 * each received on its own, in order, with its sender's id; a payload is
 * moved on send and kept on failure, and a refused batch is kept whole.
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

/* An envelope of cmd with no fields (enough for the frame layer, which
 * only looks at the command byte). */
static void env_of(uint8_t env[5], uint8_t cmd)
{
	env[0] = TQI_MAGIC0;
	env[1] = TQI_MAGIC1;
	env[2] = TQI_VERSION;
	env[3] = cmd;
	env[4] = 0x90;
}

static void send_frames(void *sock, const char *const *frames, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(
		    zmq_send(sock, frames[i], strlen(frames[i]), i + 1 < n ? ZMQ_SNDMORE : 0),
		    (int)strlen(frames[i]));
}

static void assert_msg(zmq_msg_t *m, const void *data, size_t len)
{
	assert_int_equal(zmq_msg_size(m), len);
	if (len > 0)
		assert_memory_equal(zmq_msg_data(m), data, len);
}

static void test_extra_frames_consumed_whole(void **state)
{
	pair *p = *state;
	static const char *const five[] = { "env", "payload", "x", "y", "z" };
	static const char *const one[] = { "next" };
	send_frames(p->dealer, five, 5);
	send_frames(p->dealer, one, 1);

	tqi_frames f;
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_int_equal(f.nframes, 5);
	assert_true(f.router);
	assert_msg(&f.id, dealer_id, strlen(dealer_id));
	assert_msg(&f.env, "env", 3);
	assert_int_equal(zmq_msg_size(&f.payload), 0); /* no header: no command's payload */
	assert_int_equal(tqi_frames_check(&f, TQI_PING), TQ_EFRAMES);
	assert_int_equal(tqi_frames_check(&f, TQI_SUBMIT), TQ_EFRAMES);
	tqi_frames_close(&f);

	/* the next message starts where it should */
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_int_equal(f.nframes, 1);
	assert_msg(&f.env, "next", 4);
	assert_int_equal(zmq_msg_size(&f.payload), 0);
	tqi_frames_close(&f);

	/* and nothing else is waiting */
	assert_int_equal(recv_cmd(p, true, &f, ZMQ_DONTWAIT), 0);
	assert_int_equal(errno, EAGAIN);
}

static void test_dealer_side_counts(void **state)
{
	pair *p = *state;
	static const char *const three[] = { "a", "b", "c" };
	/* ROUTER -> DEALER: [id] a b c; the DEALER sees 3 frames */
	assert_int_equal(zmq_send(p->router, dealer_id, strlen(dealer_id), ZMQ_SNDMORE),
	                 (int)strlen(dealer_id));
	send_frames(p->router, three, 3);
	tqi_frames f;
	assert_int_equal(recv_cmd(p, false, &f, 0), 1);
	assert_false(f.router);
	assert_int_equal(f.nframes, 3);
	assert_msg(&f.env, "a", 1);
	assert_int_equal(zmq_msg_size(&f.payload), 0);
	assert_int_equal(zmq_msg_size(&f.id), 0);
	tqi_frames_close(&f);
	assert_int_equal(recv_cmd(p, false, &f, ZMQ_DONTWAIT), 0);
}

static void test_frames_check_every_command(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++) {
		tqi_frames f;
		memset(&f, 0, sizeof f);
		unsigned want = tqi_cmd_has_payload((uint8_t)c) ? 2 : 1;
		for (unsigned n = 0; n <= 4; n++) {
			f.nframes = n;
			assert_int_equal(tqi_frames_check(&f, (uint8_t)c),
			                 n == want ? TQ_OK : TQ_EFRAMES);
		}
	}
}

static void test_send_moves_payload(void **state)
{
	pair *p = *state;
	uint8_t env[5];
	env_of(env, TQI_TASK);
	/* big enough that ZeroMQ keeps it out of line, so a move shows as the
	 * same bytes arriving */
	uint8_t args[100];
	for (size_t i = 0; i < sizeof args; i++)
		args[i] = (uint8_t)i;
	zmq_msg_t payload;
	assert_int_equal(zmq_msg_init_size(&payload, sizeof args), 0);
	memcpy(zmq_msg_data(&payload), args, sizeof args);
	void *before = zmq_msg_data(&payload);

	assert_int_equal(
	    tqi_send(p->router, dealer_id, strlen(dealer_id), env, sizeof env, &payload, 0), 0);
	/* moved: the caller's message is now empty */
	assert_int_equal(zmq_msg_size(&payload), 0);
	zmq_msg_close(&payload);

	tqi_frames f;
	assert_int_equal(recv_cmd(p, false, &f, 0), 1);
	assert_int_equal(f.nframes, 2);
	assert_msg(&f.env, env, sizeof env);
	assert_msg(&f.payload, args, sizeof args);
	assert_ptr_equal(zmq_msg_data(&f.payload), before); /* not copied */
	assert_int_equal(tqi_frames_check(&f, TQI_TASK), TQ_OK);
	tqi_frames_close(&f);
}

static void test_send_empty_payload(void **state)
{
	pair *p = *state;
	uint8_t env[5];
	/* a command with a payload and none given: an empty payload frame */
	env_of(env, TQI_DONE);
	assert_int_equal(tqi_send(p->dealer, NULL, 0, env, sizeof env, NULL, 0), 0);
	tqi_frames f;
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_int_equal(f.nframes, 2);
	assert_msg(&f.id, dealer_id, strlen(dealer_id));
	assert_msg(&f.env, env, sizeof env);
	assert_int_equal(zmq_msg_size(&f.payload), 0);
	assert_int_equal(tqi_frames_check(&f, TQI_DONE), TQ_OK);
	tqi_frames_close(&f);

	/* a command without one: one frame */
	env_of(env, TQI_PING);
	assert_int_equal(tqi_send(p->dealer, NULL, 0, env, sizeof env, NULL, 0), 0);
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_int_equal(f.nframes, 1);
	assert_int_equal(tqi_frames_check(&f, TQI_PING), TQ_OK);
	tqi_frames_close(&f);

	/* an envelope too short to name a command: one frame */
	assert_int_equal(tqi_send(p->dealer, NULL, 0, "TQ", 2, NULL, 0), 0);
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_int_equal(f.nframes, 1);
	assert_msg(&f.env, "TQ", 2);
	tqi_frames_close(&f);
}

static void test_send_failure_keeps_payload(void **state)
{
	pair *p = *state;
	int on = 1;
	assert_int_equal(zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &on, sizeof on), 0);
	uint8_t env[5];
	env_of(env, TQI_TASK);
	zmq_msg_t payload;
	assert_int_equal(zmq_msg_init_size(&payload, 4), 0);
	memcpy(zmq_msg_data(&payload), "abcd", 4);
	assert_int_equal(tqi_send(p->router, "nobody", 6, env, sizeof env, &payload, ZMQ_DONTWAIT),
	                 -1);
	assert_int_equal(errno, EHOSTUNREACH);
	assert_msg(&payload, "abcd", 4); /* still the caller's */
	/* and the caller can send it again, to a peer that exists */
	assert_int_equal(
	    tqi_send(p->router, dealer_id, strlen(dealer_id), env, sizeof env, &payload, 0), 0);
	zmq_msg_close(&payload);
	tqi_frames f;
	assert_int_equal(recv_cmd(p, false, &f, 0), 1);
	assert_msg(&f.payload, "abcd", 4);
	tqi_frames_close(&f);
}

/* Adds cmd (a payload of `pl` when not NULL) to b. */
static void add(tqi_batch *b, uint8_t cmd, const char *pl)
{
	uint8_t env[5];
	env_of(env, cmd);
	zmq_msg_t m;
	if (pl != NULL) {
		assert_int_equal(zmq_msg_init_size(&m, strlen(pl)), 0);
		memcpy(zmq_msg_data(&m), pl, strlen(pl));
	}
	assert_int_equal(tqi_batch_add(b, env, sizeof env, pl ? &m : NULL), 0);
	if (pl != NULL)
		zmq_msg_close(&m);
}

static void expect_cmd(pair *p, bool router, uint8_t cmd, const char *pl)
{
	tqi_frames f;
	assert_int_equal(recv_cmd(p, router, &f, 0), 1);
	assert_int_equal(((const uint8_t *)zmq_msg_data(&f.env))[3], cmd);
	assert_int_equal(tqi_frames_check(&f, cmd), TQ_OK);
	if (router)
		assert_msg(&f.id, dealer_id, strlen(dealer_id));
	if (pl != NULL)
		assert_msg(&f.payload, pl, strlen(pl));
	tqi_frames_close(&f);
}

static void test_batch_carries_commands_in_order(void **state)
{
	pair *p = *state;
	tqi_batch b;
	tqi_batch_init(&b);
	/* ROUTER -> DEALER: tasks and a heartbeat in one message */
	add(&b, TQI_TASK, "args-1");
	add(&b, TQI_HEARTBEAT, NULL);
	add(&b, TQI_TASK, "args-2");
	assert_int_equal(b.cmds, 3);
	assert_int_equal(b.n, 5);
	assert_int_equal(tqi_batch_send(&b, p->router, dealer_id, strlen(dealer_id), 0), 0);
	assert_int_equal(b.n, 0);
	expect_cmd(p, false, TQI_TASK, "args-1");
	expect_cmd(p, false, TQI_HEARTBEAT, NULL);
	expect_cmd(p, false, TQI_TASK, "args-2");
	tqi_frames f;
	assert_int_equal(recv_cmd(p, false, &f, ZMQ_DONTWAIT), 0);

	/* DEALER -> ROUTER: each command carries the sender's routing id; a
	 * payload command given no payload gets an empty frame */
	add(&b, TQI_DONE, "r1");
	add(&b, TQI_PING, NULL);
	add(&b, TQI_DONE, NULL);
	assert_int_equal(tqi_batch_send(&b, p->dealer, NULL, 0, 0), 0);
	expect_cmd(p, true, TQI_DONE, "r1");
	expect_cmd(p, true, TQI_PING, NULL);
	expect_cmd(p, true, TQI_DONE, "");
	assert_int_equal(recv_cmd(p, true, &f, ZMQ_DONTWAIT), 0);
	tqi_batch_clear(&b);
}

static void test_bad_frame_in_a_batch_takes_the_rest(void **state)
{
	pair *p = *state;
	uint8_t ping[5], done[5];
	env_of(ping, TQI_PING);
	env_of(done, TQI_DONE);
	/* PING, then a frame that is no header, then a PING it swallows */
	assert_int_equal(zmq_send(p->dealer, ping, sizeof ping, ZMQ_SNDMORE), 5);
	assert_int_equal(zmq_send(p->dealer, "xx", 2, ZMQ_SNDMORE), 2);
	assert_int_equal(zmq_send(p->dealer, ping, sizeof ping, 0), 5);
	/* then PING and a DONE whose payload is missing */
	assert_int_equal(zmq_send(p->dealer, ping, sizeof ping, ZMQ_SNDMORE), 5);
	assert_int_equal(zmq_send(p->dealer, done, sizeof done, 0), 5);
	expect_cmd(p, true, TQI_PING, NULL);
	tqi_frames f;
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_msg(&f.env, "xx", 2);
	assert_int_equal(f.nframes, 2);
	tqi_frames_close(&f);
	expect_cmd(p, true, TQI_PING, NULL);
	assert_int_equal(recv_cmd(p, true, &f, 0), 1);
	assert_int_equal(f.nframes, 1);
	assert_int_equal(tqi_frames_check(&f, TQI_DONE), TQ_EFRAMES);
	assert_msg(&f.id, dealer_id, strlen(dealer_id));
	tqi_frames_close(&f);
	assert_int_equal(recv_cmd(p, true, &f, ZMQ_DONTWAIT), 0);
}

static void test_refused_batch_is_kept(void **state)
{
	pair *p = *state;
	int on = 1;
	assert_int_equal(zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &on, sizeof on), 0);
	tqi_batch b;
	tqi_batch_init(&b);
	add(&b, TQI_TASK, "abcd");
	add(&b, TQI_CANCEL, NULL);
	assert_int_equal(tqi_batch_send(&b, p->router, "nobody", 6, ZMQ_DONTWAIT), -1);
	assert_int_equal(errno, EHOSTUNREACH);
	assert_int_equal(b.cmds, 2);
	assert_msg(&b.v[1], "abcd", 4);
	assert_int_equal(tqi_batch_send(&b, p->router, dealer_id, strlen(dealer_id), 0), 0);
	expect_cmd(p, false, TQI_TASK, "abcd");
	expect_cmd(p, false, TQI_CANCEL, NULL);
	tqi_batch_clear(&b);
}

static void test_cmd_frames_every_command(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++) {
		uint8_t env[5];
		env_of(env, (uint8_t)c);
		unsigned want = tqi_cmd_name((uint8_t)c) == NULL  ? 0
		                : tqi_cmd_has_payload((uint8_t)c) ? 2
		                                                  : 1;
		assert_int_equal(tqi_cmd_frames(env, sizeof env), want);
		env[2] = TQI_VERSION + 1; /* another version's shape is unknown */
		assert_int_equal(tqi_cmd_frames(env, sizeof env), 0);
	}
	assert_int_equal(tqi_cmd_frames((const uint8_t *)"TQ", 2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_extra_frames_consumed_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dealer_side_counts, setup, teardown),
		cmocka_unit_test(test_frames_check_every_command),
		cmocka_unit_test_setup_teardown(test_send_moves_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_empty_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_failure_keeps_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_carries_commands_in_order, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_bad_frame_in_a_batch_takes_the_rest, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_refused_batch_is_kept, setup, teardown),
		cmocka_unit_test(test_cmd_frames_every_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
