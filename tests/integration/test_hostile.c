/*
 * test_hostile.c - a broker that meets garbage: raw ZeroMQ peers send
 * malformed, misrouted, wrong-version and oversized messages to both of its
 * endpoints.  Each is dropped, counted and answered with ERROR (a version
 * mismatch gets EVERSION); the broker serves on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct {
	void *ctx, *sock;
} raw_peer;

static void raw_open(raw_peer *p, const char *ep)
{
	p->ctx = zmq_ctx_new();
	p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
	int linger = 0;
	zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
	assert_int_equal(zmq_connect(p->sock, ep), 0);
}

static void raw_close(raw_peer *p)
{
	zmq_close(p->sock);
	zmq_ctx_term(p->ctx);
}

/* Sends frames (each given as bytes + length), the last one without MORE. */
static void raw_send(raw_peer *p, int nframes, ...)
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
static int raw_reply(raw_peer *p, int *cmd, int *code)
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

static void expect_error(raw_peer *p, int want_code)
{
	int cmd = -1, code = -1;
	assert_int_equal(raw_reply(p, &cmd, &code), 0);
	assert_int_equal(cmd, 0x7f);
	assert_int_equal(code, want_code);
}

static void still_serves(th_env *e)
{
	tq_client *c = th_client(e, 0);
	tq_task *t = th_async(c, "double", "[3]", NULL);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_garbage_on_the_client_endpoint(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", NULL));
	raw_peer p;
	raw_open(&p, e->client_ep);

	raw_send(&p, 1, "hello", (size_t)5);
	expect_error(&p, TQ_EMAGIC);
	raw_send(&p, 1, "TQ\x02\x0b\x90", (size_t)5); /* version 2 STATS */
	expect_error(&p, TQ_EVERSION);
	raw_send(&p, 1, "TQ\x01\x55\x90", (size_t)5); /* unknown command */
	expect_error(&p, TQ_ECOMMAND);
	raw_send(&p, 1, "TQ\x01\x21\x90", (size_t)5); /* TASK is the broker's */
	expect_error(&p, TQ_ECOMMAND);
	raw_send(&p, 1, "TQ\x01", (size_t)3); /* truncated header */
	expect_error(&p, TQ_ETRUNCATED);
	raw_send(&p, 1, "TQ\x01\x0b\x90\x00", (size_t)6); /* trailing byte */
	expect_error(&p, TQ_ETRAILING);
	raw_send(&p, 1, "TQ\x01\x0b\x91\x00", (size_t)6); /* STATS with a field */
	expect_error(&p, TQ_ETYPE);
	/* An array claiming 4 billion fields in 5 bytes: refused, nothing reserved. */
	raw_send(&p, 1, "TQ\x01\x03\xdd\xff\xff\xff\xff", (size_t)9);
	expect_error(&p, TQ_ELENGTH);
	raw_send(&p, 3, "TQ\x01\x0b\x90", (size_t)5, "x", (size_t)1, "y", (size_t)1); /* frames */
	expect_error(&p, TQ_EFRAMES);

	uint64_t malformed = 0;
	assert_int_equal(th_stat(e, "counters.malformed", &malformed), 0);
	assert_int_equal(malformed, 9);
	raw_close(&p);
	still_serves(e);
}

static void test_garbage_on_the_worker_endpoint(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", NULL));
	raw_peer p;
	raw_open(&p, e->worker_ep);
	raw_send(&p, 1, "\x00\x01\x02", (size_t)3);
	expect_error(&p, TQ_EMAGIC);
	raw_send(&p, 1, "TQ\x01\x01\x90", (size_t)5); /* HELLO is a client's */
	expect_error(&p, TQ_ECOMMAND);
	/* A READY with 300 functions breaks the limit of 256. */
	uint8_t ready[4096];
	size_t n = 0;
	memcpy(ready, "TQ\x01\x20\x95\xa1w\x01\x01\xcc\xfa\xdc\x01\x2c", 14);
	n = 14;
	for (int i = 0; i < 300; i++)
		ready[n++] = 0xa1, ready[n++] = (uint8_t)('a' + i % 26);
	raw_send(&p, 1, ready, n);
	expect_error(&p, TQ_ERANGE);
	/* A DONE from a worker the broker never met: told to register, and
	 * the result is fenced. */
	uint8_t done[64] = "TQ\x01\x22\x94\xc4\x10";
	memset(done + 7, 0xab, 16);
	memcpy(done + 23, "\x01\x00\xa0", 3);
	raw_send(&p, 2, done, (size_t)26, "\xc0", (size_t)1);
	int cmd = -1, code = -1;
	assert_int_equal(raw_reply(&p, &cmd, &code), 0);
	assert_int_equal(cmd, 0x26); /* DISCONNECT */
	assert_true(th_stat_reaches(e, "counters.fenced", 1, 2000));
	raw_close(&p);
	still_serves(e);
}

static void test_oversized_and_unknown_session(void **state)
{
	th_env *e = *state;
	static const char *const small[] = { "--max-payload", "1024", NULL };
	assert_non_null(th_broker(e, small));
	assert_non_null(th_worker(e, "w1", NULL));
	tq_client *c = th_client(e, 0);
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	char big[2000];
	memset(big, 'x', sizeof big);
	tq_pack_array(b, 1);
	tq_pack_strn(b, big, sizeof big);
	tq_task *t;
	assert_int_equal(tq_client_async(c, "echo", tq_buf_data(b), tq_buf_size(b), NULL, &t),
	                 TQ_OK);
	assert_int_equal(tq_task_await(t, 5000), TQ_ETOOBIG);
	tq_task_destroy(&t);
	tq_buf_destroy(&b);
	tq_client_destroy(&c);

	/* A SUBMIT with no session before it is refused, not run. */
	raw_peer p;
	raw_open(&p, e->client_ep);
	uint8_t sub[64] = "TQ\x01\x03\x96\x01\xc4\x10";
	memset(sub + 8, 0xcd, 16);
	memcpy(sub + 24,
	       "\xa6"
	       "double"
	       "\x00\x00\x00",
	       10);
	raw_send(&p, 2, sub, (size_t)34, "\x91\x01", (size_t)2);
	int cmd = -1, code = -1;
	assert_int_equal(raw_reply(&p, &cmd, &code), 0);
	assert_int_equal(cmd, 0x06); /* FAILED */
	raw_close(&p);
	uint64_t submitted = 9, rejected = 0;
	assert_int_equal(th_stat(e, "counters.submitted", &submitted), 0);
	assert_int_equal(submitted, 0); /* neither was accepted */
	assert_int_equal(th_stat(e, "counters.rejected", &rejected), 0);
	assert_int_equal(rejected, 2);
	still_serves(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_garbage_on_the_client_endpoint, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_garbage_on_the_worker_endpoint, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_oversized_and_unknown_session, th_setup,
		                                th_teardown),
	};
	return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
