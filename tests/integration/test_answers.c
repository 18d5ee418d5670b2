/*
 * test_answers.c - every answer unambiguous (issue 14): a task that waits
 * for a function no worker serves hears so (NOTICE{ENOWORKER}) and ends
 * with ENOWORKER at its deadline, whether no worker ever offered the
 * function, its only worker drains, or its only worker is killed; a
 * session replaced by a new HELLO has each of its tasks answered; and a
 * peer that is not a registered worker is told DISCONNECT at a bounded
 * rate, however much it sends.  Real broker and worker processes; raw
 * peers (raw.h) where the test must see each command on the wire.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "raw.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* The next command for raw client c is `cmd` about the task whose ref is
 * 16 x refbyte, with code `code`; returns when it arrived (th_now_ms). */
static uint64_t expect_about(raw_peer *c, uint8_t cmd, uint8_t refbyte, uint32_t code)
{
	raw_msg m;
	raw_expect(c, cmd, &m);
	uint64_t at = th_now_ms();
	assert_int_equal(m.e.ref[0], refbyte);
	if (m.e.code != code)
		fail_msg("%s for %02x: code %u, expected %u (%.*s)", tqi_cmd_name(cmd), refbyte,
		         m.e.code, code, (int)m.e.text.n, m.e.text.p);
	if (cmd == TQI_FAILED || cmd == TQI_REFUSED)
		fprintf(stderr, "task %02x: %s %u, \"%.*s\"\n", refbyte, tqi_cmd_name(cmd),
		        m.e.code, (int)m.e.text.n, m.e.text.p);
	raw_msg_close(&m);
	return at;
}

static void drain(raw_peer *w)
{
	tqi_env d = { .cmd = TQI_DRAIN };
	raw_send_env(w, &d, NULL, 0);
}

/* A broker with one raw worker for rawfn (capacity 1) and a raw client in
 * `session`, whose task refbyte x16 runs on the worker (taken: *ref,
 * *attempt). */
static void raw_pair_running(th_env *e, raw_peer *w, raw_peer *c, uint64_t session, uint8_t refbyte,
                             uint8_t ref[TQI_REF_LEN], uint32_t *attempt)
{
	assert_non_null(th_broker(e, NULL));
	raw_open(w, e->worker_ep);
	raw_worker_ready(w, "rawfn", 1, 1);
	raw_open(c, e->client_ep);
	raw_client_hello(c, session);
	raw_client_submit(c, session, refbyte, "rawfn", 60000, "\x90", 1);
	raw_worker_take(w, ref, attempt);
	assert_int_equal(ref[0], refbyte);
}

/* A task queued for a function whose only worker drains is told
 * NOTICE{ENOWORKER} at the DRAIN, and one submitted afterwards at once;
 * both end with ENOWORKER at their deadlines, not ETIMEDOUT.  A worker
 * that appears then takes the next one, and its owner hears NOTICE{0}. */
static void test_only_worker_drains(void **state)
{
	th_env *e = *state;
	raw_peer w, c;
	uint8_t ref[TQI_REF_LEN];
	uint32_t attempt;
	/* a1 runs on the only worker (capacity 1); b2 waits behind it. */
	raw_pair_running(e, &w, &c, 5, 0xa1, ref, &attempt);
	raw_client_submit(&c, 5, 0xb2, "rawfn", 1500, "\x90", 1);
	raw_client_sync(&c);
	uint64_t t0 = th_now_ms();
	drain(&w);
	expect_about(&c, TQI_NOTICE, 0xb2, TQ_ENOWORKER);
	/* Submitted to a function whose only worker drains: told at once. */
	raw_client_submit(&c, 5, 0xc3, "rawfn", 1500, "\x90", 1);
	expect_about(&c, TQI_NOTICE, 0xc3, TQ_ENOWORKER);
	assert_true(th_now_ms() - t0 < 1400); /* long before the deadlines */
	uint64_t at = expect_about(&c, TQI_FAILED, 0xb2, TQ_ENOWORKER);
	assert_true(at - t0 >= 1000);
	expect_about(&c, TQI_FAILED, 0xc3, TQ_ENOWORKER);
	assert_true(th_stat_reaches(e, "counters.no_worker", 2, 2000));

	/* A worker that appears serves what waits, and its owner hears so. */
	raw_client_submit(&c, 5, 0xd4, "rawfn", 60000, "\x90", 1);
	expect_about(&c, TQI_NOTICE, 0xd4, TQ_ENOWORKER);
	raw_peer w2;
	raw_open(&w2, e->worker_ep);
	raw_worker_ready(&w2, "rawfn", 1, 1);
	expect_about(&c, TQI_NOTICE, 0xd4, TQ_OK);
	raw_worker_take(&w2, ref, &attempt);
	assert_int_equal(ref[0], 0xd4);
	raw_worker_done(&w2, ref, attempt, "\x2a", 1);
	raw_msg m;
	raw_expect(&c, TQI_RESULT, &m);
	assert_int_equal(m.e.ref[0], 0xd4);
	raw_msg_close(&m);
	raw_close(&w2);
	raw_close(&w);
	raw_close(&c);
}

/* A task queued behind the only worker's running task when that worker is
 * killed (SIGKILL) is told NOTICE{ENOWORKER} when the broker finds the
 * worker gone, and ends with ENOWORKER at its deadline. */
static void test_only_worker_killed(void **state)
{
	th_env *e = *state;
	const char *const wargs[] = { "--concurrency", "1", "--prefetch", "0", NULL };
	assert_non_null(th_broker(e, NULL));
	th_proc *w1 = th_worker(e, "w1", wargs);
	assert_non_null(w1);
	tq_client *tc = th_client(e, 0);
	assert_non_null(tc);
	th_path fw;
	tq_task *running = th_mark_running(e, tc, &fw, "long", 60000, NULL);
	raw_peer c;
	raw_open(&c, e->client_ep);
	raw_client_hello(&c, 6);
	raw_client_submit(&c, 6, 0xe1, "mark", 3000, "\x90", 1);
	raw_client_sync(&c);
	uint64_t t0 = th_now_ms();
	assert_true(th_stat_is(e, "tasks", 2, 2000)); /* e1 is queued, not refused */
	th_signal(w1, SIGKILL);
	uint64_t told = expect_about(&c, TQI_NOTICE, 0xe1, TQ_ENOWORKER);
	fprintf(stderr, "told ENOWORKER %llu ms after SIGKILL\n", (unsigned long long)(told - t0));
	assert_true(told - t0 < 2500);
	uint64_t at = expect_about(&c, TQI_FAILED, 0xe1, TQ_ENOWORKER);
	assert_true(at - t0 >= 2500);
	assert_int_equal(tq_task_await(running, 5000), TQ_EWORKERLOST);
	tq_task_destroy(&running);
	raw_close(&c);
	tq_client_destroy(&tc);
}

/* A HELLO with a new nonce replaces the session: each task of the old one
 * that had no answer gets FAILED{ECANCELLED} - the running one and the
 * queued one - before the WELCOME, on the same routing id; the running
 * one is stopped on its worker, whose late result goes nowhere. */
static void test_new_session_answers_the_old(void **state)
{
	th_env *e = *state;
	raw_peer w, c;
	uint8_t ref[TQI_REF_LEN];
	uint32_t attempt;
	raw_pair_running(e, &w, &c, 7, 0xf1, ref, &attempt);
	raw_client_submit(&c, 7, 0xf2, "rawfn", 60000, "\x90", 1);
	raw_client_sync(&c);

	tqi_env h = { .cmd = TQI_HELLO, .session = 8, .name = { "raw", 3 }, .mark = 2 };
	raw_send_env(&c, &h, NULL, 0);
	expect_about(&c, TQI_FAILED, 0xf1, TQ_ECANCELLED);
	expect_about(&c, TQI_FAILED, 0xf2, TQ_ECANCELLED);
	raw_msg m;
	raw_expect(&c, TQI_WELCOME, &m);
	assert_false(m.e.resumed);
	assert_int_equal(m.e.mark, 2);
	raw_msg_close(&m);

	/* The running one is stopped; what its worker says of it is not
	 * delivered. */
	raw_expect(&w, TQI_CANCEL, &m);
	assert_int_equal(m.e.ref[0], 0xf1);
	raw_msg_close(&m);
	raw_worker_done(&w, ref, attempt, "\x2a", 1);
	assert_true(th_stat_is(e, "tasks", 0, 2000));
	raw_client_sync(&c); /* nothing came before the STATS_REPLY */
	assert_int_equal(th_stat_of(e, "counters.cancelled"), 2);

	/* The new session serves; the old one is gone. */
	raw_client_submit(&c, 7, 0xf3, "rawfn", 60000, "\x90", 1);
	expect_about(&c, TQI_REFUSED, 0xf3, TQ_ESESSION);
	raw_client_submit(&c, 8, 0xf4, "rawfn", 60000, "\x90", 1);
	raw_worker_take(&w, ref, &attempt);
	assert_int_equal(ref[0], 0xf4);
	raw_worker_done(&w, ref, attempt, "\x2a", 1);
	raw_expect(&c, TQI_RESULT, &m);
	assert_int_equal(m.e.ref[0], 0xf4);
	raw_msg_close(&m);
	raw_close(&w);
	raw_close(&c);
}

/* A refusal is never taken for an outcome (issue 14, points 1 and 2): a
 * SUBMIT under a ref in use, or one too malformed to accept whose ref can
 * be read, is answered REFUSED{SUBMIT} under that ref - and the live
 * task's RESULT still comes, once, under the same ref. */
static void test_refusals_are_not_outcomes(void **state)
{
	th_env *e = *state;
	raw_peer w, c;
	uint8_t ref[TQI_REF_LEN];
	uint32_t attempt;
	raw_pair_running(e, &w, &c, 5, 0xa1, ref, &attempt);

	/* The same ref again, while the task runs. */
	raw_client_submit(&c, 5, 0xa1, "rawfn", 60000, "\x90", 1);
	raw_msg m;
	raw_expect(&c, TQI_REFUSED, &m);
	assert_int_equal(m.e.ref[0], 0xa1);
	assert_int_equal(m.e.command, TQI_SUBMIT);
	assert_int_equal(m.e.code, TQ_EEXIST);
	raw_msg_close(&m);

	/* A SUBMIT whose timeout is a string: malformed, its ref readable. */
	static const uint8_t bad[] = { 'T',  'Q',  1,    TQI_SUBMIT, 0x96, 0x05, 0xc4, 16,
		                       0xa2, 0xa2, 0xa2, 0xa2,       0xa2, 0xa2, 0xa2, 0xa2,
		                       0xa2, 0xa2, 0xa2, 0xa2,       0xa2, 0xa2, 0xa2, 0xa2,
		                       0xa5, 'r',  'a',  'w',        'f',  'n',  0xa4, 's',
		                       'o',  'o',  'n',  0,          0,    0xc4, 1,    0x90 };
	raw_send(&c, 1, bad, sizeof bad);
	raw_expect(&c, TQI_REFUSED, &m);
	assert_int_equal(m.e.ref[0], 0xa2);
	assert_int_equal(m.e.command, TQI_SUBMIT);
	assert_int_equal(m.e.code, TQ_ETYPE);
	fprintf(stderr, "malformed SUBMIT: REFUSED \"%.*s\"\n", (int)m.e.text.n, m.e.text.p);
	raw_msg_close(&m);

	/* Neither touched the live task: its result arrives, once. */
	raw_worker_done(&w, ref, attempt, "\x2a", 1);
	raw_expect(&c, TQI_RESULT, &m);
	assert_int_equal(m.e.ref[0], 0xa1);
	raw_msg_close(&m);
	raw_client_sync(&c); /* and nothing else came */
	assert_int_equal(th_stat_of(e, "counters.completed"), 1);
	raw_close(&w);
	raw_close(&c);
}

/* A peer that never registered sends 10,000 PINGs: it is told DISCONNECT,
 * but at DISCONNECT's bounded rate (a burst of 100, then 20 a second),
 * not once per command; the rest is counted as throttled. */
static void test_unregistered_worker_disconnects_bounded(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	raw_peer w;
	raw_open(&w, e->worker_ep);
	enum { N = 10000 };
	uint64_t t0 = th_now_ms();
	tqi_env ping = { .cmd = TQI_PING };
	for (int i = 0; i < N; i++)
		raw_send_env(&w, &ping, NULL, 0);
	/* Read what comes until the broker has been silent for a second. */
	uint64_t disconnects = 0, others = 0;
	for (;;) {
		zmq_pollitem_t it = { w.sock, 0, ZMQ_POLLIN, 0 };
		int n = zmq_poll(&it, 1, 1000);
		assert_true(n >= 0);
		if (n == 0)
			break;
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		assert_true(zmq_msg_recv(&msg, w.sock, 0) >= 0);
		const uint8_t *d = zmq_msg_data(&msg);
		if (zmq_msg_size(&msg) >= 4 && d[3] == TQI_DISCONNECT)
			disconnects++;
		else
			others++;
		zmq_msg_close(&msg);
		assert_true(th_now_ms() - t0 < 60000);
	}
	double secs = (double)(th_now_ms() - t0) / 1000.0;
	fprintf(stderr, "%d PINGs: %llu DISCONNECTs in %.1f s\n", N,
	        (unsigned long long)disconnects, secs);
	assert_int_equal(others, 0);
	assert_true(disconnects >= 1);
	assert_true((double)disconnects <= 100.0 + 20.0 * (secs + 1.0));
	/* Each DISCONNECT the allowance let go took a token, whether or not
	 * ZeroMQ could take it (one to a peer at its high-water mark is
	 * dropped): the others were throttled. */
	assert_true((double)th_stat_of(e, "counters.throttled") >= N - 100.0 - 20.0 * (secs + 1.0));
	assert_int_equal(th_stat_of(e, "counters.cut_off"), 0);
	/* It may still register, and then it is served. */
	raw_worker_ready(&w, "rawfn", 1, 1);
	raw_close(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_only_worker_drains, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_only_worker_killed, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_new_session_answers_the_old, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_refusals_are_not_outcomes, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_unregistered_worker_disconnects_bounded,
		                                th_setup, th_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
