/*
 * test_hostile.c - a broker that meets garbage: raw ZeroMQ peers send
 * malformed, misrouted, wrong-version and oversized messages to both of its
 * endpoints.  Each is dropped, counted and answered with ERROR (a version
 * mismatch gets EVERSION); the broker serves on.  Raw peers that speak the
 * protocol but push its limits - a worker that shrinks its capacity or
 * returns a result over the limit, a client with a timeout of 2^64-1 ms or
 * one that never reads - are answered by the rules and cannot hurt others.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "raw.h"
#include "proto/frames.h"
#include "proto/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static bool stat_is(th_env *e, const char *what, uint64_t want)
{
	uint64_t v = ~want;
	if (th_stat(e, what, &v) != 0)
		return false;
	if (v != want)
		fprintf(stderr, "stat %s is %llu, expected %llu\n", what, (unsigned long long)v,
		        (unsigned long long)want);
	return v == want;
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
	/* Two bad commands in one frame: each answered. */
	raw_send(&p, 1, "TQ\x01\x0b\x91\x00TQ\x01\x55\x90", (size_t)11);
	expect_error(&p, TQ_ETYPE);
	expect_error(&p, TQ_ECOMMAND);
	raw_send(&p, 1, "TQ\x01\x0b\x91\x00", (size_t)6); /* STATS with a field */
	expect_error(&p, TQ_ETYPE);
	/* An array claiming 4 billion fields in 5 bytes: refused, nothing reserved. */
	raw_send(&p, 1, "TQ\x01\x03\xdd\xff\xff\xff\xff", (size_t)9);
	expect_error(&p, TQ_ELENGTH);
	/* A SUBMIT whose payload is missing. */
	tqi_env submit = { .cmd = TQI_SUBMIT, .session = 1, .function = { "double", 6 } };
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	assert_int_equal(tqi_env_encode(&submit, &w), TQ_OK);
	raw_send(&p, 1, w.data, w.len);
	tqi_wbuf_free(&w);
	/* Its ref can be read: refused under it, not with ERROR. */
	raw_msg m;
	raw_expect(&p, TQI_REFUSED, &m);
	assert_int_equal(m.e.command, TQI_SUBMIT);
	assert_int_equal(m.e.code, TQ_EFRAMES);
	raw_msg_close(&m);

	uint64_t malformed = 0;
	assert_int_equal(th_stat(e, "counters.malformed", &malformed), 0);
	assert_int_equal(malformed, 10);
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
	memcpy(done + 26, "\xc4\x01\xc0", 3); /* result: nil */
	raw_send(&p, 1, done, (size_t)29);
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
	tq_client *c = th_start(e, small, NULL);
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
	memcpy(sub + 34, "\xc4\x02\x91\x01", 4); /* arguments: [1] */
	raw_send(&p, 1, sub, (size_t)38);
	int cmd = -1, code = -1;
	assert_int_equal(raw_reply(&p, &cmd, &code), 0);
	assert_int_equal(cmd, TQI_REFUSED);
	raw_close(&p);
	uint64_t submitted = 9, rejected = 0;
	assert_int_equal(th_stat(e, "counters.submitted", &submitted), 0);
	assert_int_equal(submitted, 0); /* neither was accepted */
	assert_int_equal(th_stat(e, "counters.rejected", &rejected), 0);
	assert_int_equal(rejected, 2);
	still_serves(e);
}

/* Packs [a string of n bytes] as a task's arguments. */
static tq_task *async_of_size(tq_client *c, const char *fn, size_t n)
{
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n);
	tq_pack_array(b, 1);
	tq_pack_strn(b, big, n);
	tq_task *t = NULL;
	assert_int_equal(tq_client_async(c, fn, tq_buf_data(b), tq_buf_size(b), NULL, &t), TQ_OK);
	free(big);
	tq_buf_destroy(&b);
	return t;
}

/* With --max-payload far below ZeroMQ's message limit, arguments and results
 * over it - up to the default 16 MiB - are answered with ETOOBIG; none of
 * them closes a connection, so no client waits in vain and no worker is
 * knocked off by a result. */
static void test_over_the_limit_below_16_mib(void **state)
{
	th_env *e = *state;
	static const char *const small[] = { "--max-payload", "1024", NULL };
	assert_non_null(th_broker(e, small));
	raw_peer w;
	raw_open(&w, e->worker_ep);
	raw_worker_ready(&w, "rawfn", 1, 1);
	tq_client *c = th_client(e, 0);

	/* 200 KB of arguments: refused, not a dropped connection. */
	tq_task *t = async_of_size(c, "rawfn", 200 * 1024);
	assert_int_equal(tq_task_await(t, 5000), TQ_ETOOBIG);
	tq_task_destroy(&t);

	/* A result of 200 KB: that task fails with ETOOBIG, naming the worker. */
	uint8_t ref[TQI_REF_LEN];
	uint32_t attempt;
	assert_non_null(t = th_async(c, "rawfn", "[1]", NULL));
	raw_worker_take(&w, ref, &attempt);
	size_t big = 200 * 1024;
	char *result = malloc(big);
	assert_non_null(result);
	memset(result, 0xc0, big); /* 200k msgpack nils: well-formed, but too big */
	raw_worker_done(&w, ref, attempt, result, big);
	free(result);
	assert_int_equal(tq_task_await(t, 5000), TQ_ETOOBIG);
	assert_non_null(strstr(tq_task_error(t), "exceeds the limit of 1024"));
	assert_string_equal(tq_task_worker(t), "raw");
	tq_task_destroy(&t);

	/* The worker is still registered and connected: it gets the next task. */
	assert_non_null(t = th_async(c, "rawfn", "[2]", NULL));
	raw_worker_take(&w, ref, &attempt);
	raw_worker_done(&w, ref, attempt, "\x2a", 1);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	tq_task_destroy(&t);
	assert_true(stat_is(e, "counters.workers_lost", 0));
	assert_true(stat_is(e, "counters.submitted", 2));
	assert_true(stat_is(e, "counters.rejected", 1));
	tq_client_destroy(&c);
	raw_close(&w);
}

/* A timeout of 2^64-1 ms (any u64 is valid on the wire) means a deadline
 * that never comes, not one that wrapped around into the past: neither the
 * broker nor the worker may expire the task at once. */
static void test_huge_timeout_is_not_expired(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", NULL));
	raw_peer c;
	raw_open(&c, e->client_ep);
	raw_client_hello(&c, 77);
	raw_msg m;

	/* Queued (nobody offers "nobody"): told ENOWORKER, and waits. */
	raw_client_submit(&c, 77, 0xa1, "nobody", UINT64_MAX, "\x90", 1);
	raw_expect(&c, TQI_NOTICE, &m);
	assert_int_equal(m.e.code, TQ_ENOWORKER);
	raw_msg_close(&m);
	/* The same through DEADLINE, for a task that had no deadline. */
	raw_client_submit(&c, 77, 0xa2, "nobody", 0, "\x90", 1);
	raw_expect(&c, TQI_NOTICE, &m);
	raw_msg_close(&m);
	tqi_wbuf refs;
	tqi_wbuf_init(&refs);
	uint8_t ref[TQI_REF_LEN];
	memset(ref, 0xa2, sizeof ref);
	assert_int_equal(tqi_raw_add_ref(&refs, ref), 0);
	tqi_env d = { .cmd = TQI_DEADLINE, .timeout_ms = UINT64_MAX, .refs = tqi_raw_of(&refs, 1) };
	raw_send_env(&c, &d, NULL, 0);
	tqi_wbuf_free(&refs);
	raw_client_sync(&c);
	assert_true(stat_is(e, "counters.expired", 0));
	assert_true(stat_is(e, "tasks", 2));

	/* Dispatched: the worker is given a time left it can add to its own
	 * clock, and runs the task. */
	raw_client_submit(&c, 77, 0xa3, "double", UINT64_MAX, "\x91\x15", 2);
	raw_expect(&c, TQI_RESULT, &m);
	assert_int_equal(m.e.ref[0], 0xa3);
	raw_msg_close(&m);
	/* What a worker is told: a time left that fits in an int64_t. */
	raw_peer w;
	raw_open(&w, e->worker_ep);
	raw_worker_ready(&w, "rawfn", 1, 1);
	raw_client_submit(&c, 77, 0xa4, "rawfn", UINT64_MAX, "\x90", 1);
	raw_expect(&w, TQI_TASK, &m);
	assert_int_equal(m.e.ref[0], 0xa4);
	assert_true(m.e.timeout_ms > 0);
	assert_true(m.e.timeout_ms <= (uint64_t)INT64_MAX);
	raw_msg_close(&m);
	assert_true(stat_is(e, "counters.expired", 0));
	raw_close(&w);
	raw_close(&c);
}

/* A client with a session that keeps asking for STATS and never reads the
 * answers: once the broker's socket holds all it will for it, the answers
 * queue in the broker - up to --max-outbox, where the broker lets that
 * client go like a dead one (logged) instead of growing without bound, and
 * serves the others on. */
static void test_client_that_never_reads(void **state)
{
	th_env *e = *state;
	static const char *const args[] = { "--max-outbox", "1000", NULL };
	assert_non_null(th_broker(e, args));
	raw_peer c;
	raw_open_reluctant(&c, e->client_ep);
	raw_client_hello(&c, 99);
	/* It submits tasks for a function no worker offers - accepted work,
	 * each answered with a NOTICE - and reads none of the answers.  The
	 * broker's socket holds 64 messages (its high-water mark) of up to
	 * 256 answers, the kernel some more, then the outbox 1000: some tens
	 * of thousands of requests get there.  The bound only stops a broken
	 * broker. */
	tqi_env sub = { .cmd = TQI_SUBMIT, .session = 99, .function = { "nobody", 6 } };
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	bool let_go = false;
	uint64_t n = 0;
	for (int batch = 0; batch < 400 && !let_go; batch++) {
		for (int i = 0; i < 5000; i++, n++) {
			memset(sub.ref, 0x5a, TQI_REF_LEN);
			memcpy(sub.ref, &n, sizeof n); /* a ref each */
			tqi_wbuf_reset(&w);
			assert_int_equal(tqi_cmd_append(&sub, "\x90", 1, &w), TQ_OK);
			raw_send(&c, 1, w.data, w.len);
		}
		let_go = th_log_has(e->broker, "is not reading", 0);
	}
	tqi_wbuf_free(&w);
	assert_true(let_go);
	assert_true(th_log_has(e->broker, "lost: not reading what it is sent", 5000));
	assert_true(th_stat_reaches(e, "counters.owners_lost", 1, 5000));
	/* Its tasks went with it (the owner is gone); once it is gone the
	 * broker serves others as before. */
	raw_close(&c);
	assert_non_null(th_worker(e, "w1", NULL));
	still_serves(e);
}

/* CAPACITY may lower a worker's capacity below the tasks it holds: none is
 * taken back, and it gets no new task until its load is below the new
 * capacity (ARCHITECTURE.md, broker invariants). */
static void test_capacity_below_load(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	raw_peer w;
	raw_open(&w, e->worker_ep);
	raw_worker_ready(&w, "rawfn", 1, 3);
	tq_client *c = th_client(e, 0);
	tq_task *t[4];
	for (int i = 0; i < 4; i++)
		assert_non_null(t[i] = th_async(c, "rawfn", "[1]", NULL));
	uint8_t ref[4][TQI_REF_LEN];
	uint32_t attempt[4];
	for (int i = 0; i < 3; i++)
		raw_worker_take(&w, ref[i], &attempt[i]);
	tqi_env cap = { .cmd = TQI_CAPACITY, .capacity = 1 };
	raw_send_env(&w, &cap, NULL, 0);
	raw_worker_done(&w, ref[0], attempt[0], "\x01", 1);
	assert_true(th_stat_reaches(e, "counters.completed", 1, 5000));
	/* One finished, two held, capacity 1: nothing new was given. */
	assert_true(stat_is(e, "capacity", 1));
	assert_true(stat_is(e, "load", 2));
	raw_worker_done(&w, ref[1], attempt[1], "\x02", 1);
	raw_worker_done(&w, ref[2], attempt[2], "\x03", 1);
	/* Load 0 < 1: the queued task goes out now. */
	raw_worker_take(&w, ref[3], &attempt[3]);
	raw_worker_done(&w, ref[3], attempt[3], "\x04", 1);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(tq_task_await(t[i], 5000), TQ_OK);
		tq_task_destroy(&t[i]);
	}
	tq_client_destroy(&c);
	raw_close(&w);
}

/* ---- a frame of more commands than a loop turn reads ---- */

enum { MANY = TQI_RX_TURN + 44 }; /* more than a loop turn reads */

/* A worker's DONEs in one frame, more of them than the broker reads in a
 * turn: the rest are read on the next turn, though no other message comes
 * to wake the broker.  Its heartbeat (20 s) is the only timer it has: a
 * rest left for it would fail the await. */
static void test_broker_reads_a_long_frame_to_its_end(void **state)
{
	th_env *e = *state;
	static const char *const slow_tick[] = { "--heartbeat", "20000", NULL };
	assert_non_null(th_broker(e, slow_tick));
	raw_peer w;
	raw_open(&w, e->worker_ep);
	raw_worker_ready(&w, "rawfn", 1, MANY);
	tq_client *c = th_client(e, 0);
	static tq_task *t[MANY];
	static uint8_t ref[MANY][TQI_REF_LEN];
	uint32_t attempt[MANY];
	for (int i = 0; i < MANY; i++)
		assert_non_null(t[i] = th_async(c, "rawfn", "[1]", NULL));
	for (int i = 0; i < MANY; i++)
		raw_worker_take(&w, ref[i], &attempt[i]);
	tqi_wbuf frame;
	tqi_wbuf_init(&frame);
	for (int i = 0; i < MANY; i++) {
		tqi_env d = { .cmd = TQI_DONE, .attempt = attempt[i] };
		memcpy(d.ref, ref[i], TQI_REF_LEN);
		assert_int_equal(tqi_cmd_append(&d, "\x07", 1, &frame), TQ_OK);
	}
	assert_true(zmq_send(w.sock, frame.data, frame.len, 0) >= 0);
	tqi_wbuf_free(&frame);
	for (int i = 0; i < MANY; i++) {
		assert_int_equal(tq_task_await(t[i], 10000), TQ_OK);
		tq_task_destroy(&t[i]);
	}
	tq_client_destroy(&c);
	raw_close(&w);
}

/* The same for a worker: a broker's TASKs in one frame, more than the
 * worker reads in a turn.  Its heartbeat (60 s) is its only timer; every
 * DONE must come back long before. */
static void run_long_task_frame(th_env *e, const char *isolation, const char *concurrency)
{
	void *ctx = zmq_ctx_new();
	void *router = zmq_socket(ctx, ZMQ_ROUTER);
	int linger = 0;
	zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
	assert_int_equal(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
	char ep[128];
	size_t eplen = sizeof ep;
	assert_int_equal(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &eplen), 0);
	const char *argv[] = { TQ_WORKER_BIN, "--broker",      ep,          "--name",
		               "long",        "--plugin",      e->plugin,   "--heartbeat",
		               "60000",       "--concurrency", concurrency, "--prefetch",
		               "400",         "--isolation",   isolation,   NULL };
	assert_non_null(th_spawn(e, "long", argv));
	/* READY, answered with WELCOME */
	uint8_t id[256];
	zmq_pollitem_t it = { router, 0, ZMQ_POLLIN, 0 };
	assert_int_equal(zmq_poll(&it, 1, 10000), 1);
	int idlen = zmq_recv(router, id, sizeof id, 0);
	assert_true(idlen > 0);
	uint8_t buf[4096];
	int n = zmq_recv(router, buf, sizeof buf, 0);
	assert_true(n > TQI_HDR_LEN);
	assert_int_equal(buf[3], TQI_READY);
	tqi_env wel = { .cmd = TQI_WELCOME, .heartbeat_ms = TQI_MAX_HEARTBEAT_MS };
	tqi_wbuf f;
	tqi_wbuf_init(&f);
	assert_int_equal(tqi_cmd_append(&wel, NULL, 0, &f), TQ_OK);
	for (int i = 0; i < MANY; i++) {
		tqi_env task = { .cmd = TQI_TASK,
			         .function = { "double", 6 },
			         .attempt = 1,
			         .name = { "c", 1 } };
		memset(task.ref, 0, sizeof task.ref);
		memcpy(task.ref, &i, sizeof i);
		assert_int_equal(tqi_cmd_append(&task, "\x91\x03", 2, &f), TQ_OK);
	}
	/* WELCOME and every TASK in one frame */
	assert_true(zmq_send(router, id, (size_t)idlen, ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(router, f.data, f.len, 0) >= 0);
	tqi_wbuf_free(&f);
	static bool seen[MANY];
	memset(seen, 0, sizeof seen);
	int done = 0;
	while (done < MANY) {
		assert_int_equal(zmq_poll(&it, 1, 10000), 1); /* not 60 s */
		zmq_msg_t m;
		zmq_msg_init(&m);
		assert_true(zmq_msg_recv(&m, router, 0) >= 0); /* routing id */
		zmq_msg_close(&m);
		zmq_msg_init(&m);
		assert_true(zmq_msg_recv(&m, router, 0) >= 0);
		const uint8_t *d = zmq_msg_data(&m);
		size_t len = zmq_msg_size(&m), off = 0;
		while (off < len) {
			tqi_split sp;
			tqi_cmd_split(d + off, len - off, &sp);
			tqi_env r;
			assert_int_equal(tqi_env_decode(d + off, sp.env_len, &r, NULL, 0), TQ_OK);
			if (r.cmd == TQI_DONE) {
				int i;
				memcpy(&i, r.ref, sizeof i);
				assert_true(i >= 0 && i < MANY && !seen[i]);
				assert_int_equal(r.code, TQ_OK);
				seen[i] = true;
				done++;
			}
			off += sp.len;
		}
		zmq_msg_close(&m);
	}
	zmq_close(router);
	zmq_ctx_term(ctx);
}

static void test_worker_reads_a_long_frame_to_its_end(void **state)
{
	run_long_task_frame(*state, "process", "2");
}

static void test_inline_worker_reads_a_long_frame_to_its_end(void **state)
{
	run_long_task_frame(*state, "none", "1");
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
		cmocka_unit_test_setup_teardown(test_over_the_limit_below_16_mib, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_capacity_below_load, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_broker_reads_a_long_frame_to_its_end, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_worker_reads_a_long_frame_to_its_end, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_inline_worker_reads_a_long_frame_to_its_end,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_client_that_never_reads, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_huge_timeout_is_not_expired, th_setup,
		                                th_teardown),
	};
	return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
