/*
 * test_stream.c - Task.async_stream across real processes (issue 5):
 * ordered and unordered, a failing element, a timeout under KILL_TASK and
 * under EXIT, max_concurrency (watched from inside the workers with the
 * test plugin's `span`), laziness, a failing input callback, destroy
 * cancelling what still runs, and a broker whose figures are absurd.
 *
 * Also tq_task_ignore on a task waiting for a lost broker: those tests
 * belong in test_tasks.c, which another change owns; they look inside the
 * handle (client/session.h) to be sure the task is waiting when ignored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "client/session.h"
#include "harness.h"
#include "proto/frames.h"
#include "proto/wbuf.h"
#include "tq/stream.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static const char *const conc4[] = { "--concurrency", "4", NULL };

/* Inputs: each a JSON argument list from a NULL-terminated array; a NULL
 * entry ends the inputs, "FAIL" makes the callback fail, and "NONE",
 * "TWO" and "HUGE" pack arguments that tq_client_async refuses: nothing,
 * two values, and a value over the payload limit. */
typedef struct {
	const char *const *json;
	size_t next;
	size_t pulled; /* times the callback produced an input */
} inputs;

static int next_json(void *arg, tq_buf *args)
{
	inputs *in = arg;
	const char *j = in->json[in->next];
	if (j == NULL)
		return 0;
	in->next++;
	if (strcmp(j, "FAIL") == 0)
		return -1;
	in->pulled++;
	if (strcmp(j, "NONE") == 0)
		return 1;
	if (strcmp(j, "TWO") == 0) {
		tq_pack_int(args, 1);
		return tq_pack_int(args, 2) == TQ_OK ? 1 : -1;
	}
	if (strcmp(j, "HUGE") == 0) {
		size_t n = (17u << 20);
		char *big = calloc(1, n);
		tq_pack_array(args, 1);
		tq_err e = big ? tq_pack_bin(args, big, n) : TQ_ENOMEM;
		free(big);
		return e == TQ_OK ? 1 : -1;
	}
	return tq_pack_json(args, j, strlen(j)) == TQ_OK ? 1 : -1;
}

/* Inputs [1], [2], ... [n], for `double`. */
typedef struct {
	int i, n;
} counter;

static int next_int(void *arg, tq_buf *args)
{
	counter *c = arg;
	if (c->i >= c->n)
		return 0;
	c->i++;
	tq_pack_array(args, 1);
	return tq_pack_int(args, c->i) == TQ_OK ? 1 : -1;
}

static int64_t item_int(const tq_stream_item *it)
{
	tq_reader r;
	int64_t v = -1;
	tq_reader_init(&r, it->result, it->len);
	assert_int_equal(tq_read_int(&r, &v), TQ_OK);
	return v;
}

static void test_ordered_stream_yields_in_input_order(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	assert_non_null(th_worker(e, "w2", conc4));
	tq_client *c = th_client(e, 0);
	counter in = { 0, 200 };
	tq_stream_opts o = { .max_concurrency = 4 };
	tq_stream *s;
	assert_int_equal(tq_client_async_stream(c, "double", next_int, &in, &o, &s), TQ_OK);
	/* Lazy: nothing is pulled or submitted before the first next. */
	assert_int_equal(in.i, 0);
	assert_int_equal(tq_stream_submitted(s), 0);
	tq_stream_item it;
	bool workers[2] = { false, false };
	for (size_t i = 0; i < 200; i++) {
		assert_int_equal(tq_stream_next(s, &it), TQ_OK);
		assert_int_equal(it.index, i);
		assert_int_equal(it.outcome, TQ_OK);
		assert_string_equal(it.error, "");
		assert_int_equal(item_int(&it), 2 * (int64_t)(i + 1));
		workers[strcmp(it.worker, "w1") != 0] = true;
		/* Inputs are pulled only as room frees up: at most 2 x 4 ahead. */
		assert_true(tq_stream_submitted(s) <= tq_stream_yielded(s) + 8);
		assert_int_equal((size_t)in.i, tq_stream_submitted(s));
	}
	assert_true(workers[0] && workers[1]);
	assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
	assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
	assert_int_equal(tq_stream_submitted(s), 200);
	assert_int_equal(tq_stream_yielded(s), 200);
	assert_string_equal(tq_stream_error(s), "");
	tq_stream_destroy(&s);
	assert_null(s);
	tq_stream_destroy(&s); /* NULL is fine */
	tq_client_destroy(&c);
}

static void test_unordered_stream_yields_as_tasks_finish(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	const char *const json[] = { "[1500]", "[10]", "[700]", NULL };
	inputs in = { json, 0, 0 };
	tq_stream_opts o = { .max_concurrency = 3, .unordered = true };
	tq_stream *s;
	assert_int_equal(tq_client_async_stream(c, "sleep", next_json, &in, &o, &s), TQ_OK);
	tq_stream_item it;
	bool seen[3] = { false, false, false };
	const int64_t want[3] = { 1500, 10, 700 };
	for (int k = 0; k < 3; k++) {
		assert_int_equal(tq_stream_next(s, &it), TQ_OK);
		assert_true(it.index < 3);
		assert_false(seen[it.index]);
		seen[it.index] = true;
		assert_int_equal(it.outcome, TQ_OK);
		assert_int_equal(item_int(&it), want[it.index]);
		/* The 10 ms task started with the 1500 ms one: it comes first. */
		if (k == 0)
			assert_int_equal(it.index, 1);
	}
	assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
	tq_stream_destroy(&s);
	tq_client_destroy(&c);
}

static void test_unordered_stream_is_not_held_up_by_a_slow_task(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	const char *const json[] = { "[1500]", "[10]", "[10]", "[10]", "[10]", NULL };
	inputs in = { json, 0, 0 };
	tq_stream_opts o = { .max_concurrency = 2, .unordered = true };
	tq_stream *s;
	assert_int_equal(tq_client_async_stream(c, "sleep", next_json, &in, &o, &s), TQ_OK);
	/* One slot stays with the 1500 ms task; the short ones pass through
	 * the other.  Input 2 used to wait for the slot of input 0 (2 % 2),
	 * so the slow task came out second. */
	tq_stream_item it;
	for (int k = 0; k < 5; k++) {
		assert_int_equal(tq_stream_next(s, &it), TQ_OK);
		assert_int_equal(it.outcome, TQ_OK);
		if (k < 4)
			assert_int_not_equal(it.index, 0);
		else
			assert_int_equal(it.index, 0);
	}
	assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
	tq_stream_destroy(&s);
	tq_client_destroy(&c);
}

static void test_a_failing_element_is_an_item_and_the_stream_goes_on(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	const char *const json[] = { "[1]", "[\"x\"]", "[3]", NULL };
	inputs in = { json, 0, 0 };
	tq_stream *s;
	assert_int_equal(tq_client_async_stream(c, "double", next_json, &in, NULL, &s), TQ_OK);
	tq_stream_item it;
	assert_int_equal(tq_stream_next(s, &it), TQ_OK);
	assert_int_equal(item_int(&it), 2);
	assert_int_equal(tq_stream_next(s, &it), TQ_OK);
	assert_int_equal(it.index, 1);
	assert_int_equal(it.outcome, TQ_EFAILED);
	assert_null(it.result);
	assert_non_null(strstr(it.error, "double: N must be a number"));
	assert_string_equal(it.worker, "w1");
	assert_int_equal(tq_stream_next(s, &it), TQ_OK);
	assert_int_equal(it.index, 2);
	assert_int_equal(item_int(&it), 6);
	assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
	assert_string_equal(tq_stream_error(s), "");
	tq_stream_destroy(&s);
	tq_client_destroy(&c);
}

static void test_kill_task_makes_a_timeout_an_item(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	const char *const json[] = { "[10]", "[3000]", "[20]", NULL };
	inputs in = { json, 0, 0 };
	tq_stream_opts o = { .timeout_ms = 500, .on_timeout = TQ_ON_TIMEOUT_KILL_TASK };
	tq_stream *s;
	uint64_t t0 = th_now_ms();
	assert_int_equal(tq_client_async_stream(c, "sleep", next_json, &in, &o, &s), TQ_OK);
	tq_stream_item it;
	assert_int_equal(tq_stream_next(s, &it), TQ_OK);
	assert_int_equal(item_int(&it), 10);
	assert_int_equal(tq_stream_next(s, &it), TQ_OK);
	assert_int_equal(it.index, 1);
	assert_int_equal(it.outcome, TQ_ETIMEDOUT);
	assert_true(th_now_ms() - t0 >= 500);
	assert_non_null(strstr(it.error, "(sleep) timed out after 500 ms"));
	assert_int_equal(tq_stream_next(s, &it), TQ_OK);
	assert_int_equal(it.index, 2);
	assert_int_equal(item_int(&it), 20);
	assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
	/* The task was killed on its worker, as Elixir's :kill_task does. */
	assert_true(th_stat_reaches(e, "counters.cancelled", 1, 3000));
	tq_stream_destroy(&s);
	tq_client_destroy(&c);
}

static void test_exit_makes_a_timeout_fail_the_stream(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	const char *const json[] = { "[10]", "[3000]", "[3000]", "[20]", NULL };
	inputs in = { json, 0, 0 };
	tq_stream_opts o = { .timeout_ms = 500, .max_concurrency = 3 };
	tq_stream *s; /* on_timeout defaults to TQ_ON_TIMEOUT_EXIT */
	assert_int_equal(tq_client_async_stream(c, "sleep", next_json, &in, &o, &s), TQ_OK);
	tq_stream_item it;
	assert_int_equal(tq_stream_next(s, &it), TQ_OK);
	assert_int_equal(item_int(&it), 10);
	assert_int_equal(tq_stream_next(s, &it), TQ_ETIMEDOUT);
	assert_non_null(strstr(tq_stream_error(s), "(sleep) timed out after 500 ms"));
	/* Failed for good, and the tasks still running were cancelled. */
	assert_int_equal(tq_stream_next(s, &it), TQ_ETIMEDOUT);
	assert_true(th_stat_reaches(e, "counters.cancelled", 2, 3000));
	assert_int_equal(tq_stream_yielded(s), 1);
	tq_stream_destroy(&s);
	tq_client_destroy(&c);
}

/* Reads a `span` result: [start_us, end_us, worker]. */
static void read_span(const tq_stream_item *it, uint64_t *start, uint64_t *end)
{
	tq_reader r;
	uint32_t n;
	tq_reader_init(&r, it->result, it->len);
	assert_int_equal(tq_read_array(&r, &n), TQ_OK);
	assert_int_equal(n, 3);
	assert_int_equal(tq_read_uint(&r, start), TQ_OK);
	assert_int_equal(tq_read_uint(&r, end), TQ_OK);
}

/* The most spans running at one instant, from each one's start and end. */
static int max_overlap(const uint64_t *start, const uint64_t *end, int n)
{
	int best = 0;
	for (int i = 0; i < n; i++) {
		int running = 0; /* at start[i] */
		for (int j = 0; j < n; j++)
			running += start[j] <= start[i] && start[i] < end[j];
		best = running > best ? running : best;
	}
	return best;
}

/* Maps `span ms` over n inputs and returns the most that ran at once. */
static int run_spans(tq_client *c, unsigned max_concurrency, int n, const char *ms)
{
	const char *json[33];
	assert_true(n < 33);
	for (int i = 0; i < n; i++)
		json[i] = ms;
	json[n] = NULL;
	inputs in = { json, 0, 0 };
	tq_stream_opts o = { .max_concurrency = max_concurrency, .unordered = true };
	tq_stream *s;
	assert_int_equal(tq_client_async_stream(c, "span", next_json, &in, &o, &s), TQ_OK);
	uint64_t start[32], end[32];
	tq_stream_item it;
	for (int i = 0; i < n; i++) {
		assert_int_equal(tq_stream_next(s, &it), TQ_OK);
		assert_int_equal(it.outcome, TQ_OK);
		read_span(&it, &start[it.index], &end[it.index]);
	}
	assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
	tq_stream_destroy(&s);
	return max_overlap(start, end, n);
}

static void test_max_concurrency_is_respected(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	assert_non_null(th_worker(e, "w2", conc4));
	tq_client *c = th_client(e, 0);
	/* 8 slots offered, 3 allowed: never more than 3 at once, and the
	 * stream does run several at once. */
	int most = run_spans(c, 3, 12, "[100]");
	printf("max_concurrency 3: at most %d at once\n", most);
	assert_true(most <= 3);
	assert_true(most >= 2);
	/* 0: as many as the workers that offer the function have slots (8). */
	most = run_spans(c, 0, 24, "[200]");
	printf("max_concurrency 0 (8 slots): at most %d at once\n", most);
	assert_true(most <= 8);
	assert_true(most >= 3);
	tq_client_destroy(&c);
}

static void test_a_failing_input_callback_fails_the_stream(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	const char *const json[] = { "[1]", "[2]", "FAIL", "[4]", NULL };
	inputs in = { json, 0, 0 };
	tq_stream_opts o = { .max_concurrency = 1 };
	tq_stream *s;
	assert_int_equal(tq_client_async_stream(c, "double", next_json, &in, &o, &s), TQ_OK);
	/* Every item before the failure, in order, then TQ_EINVAL for good. */
	tq_stream_item it;
	tq_err err;
	int64_t want = 2;
	while ((err = tq_stream_next(s, &it)) == TQ_OK) {
		assert_true(want <= 4);
		assert_int_equal(item_int(&it), want);
		want += 2;
	}
	assert_int_equal(want, 6); /* both items before the failure */
	assert_int_equal(err, TQ_EINVAL);
	assert_string_equal(tq_stream_error(s), "the input callback failed after 2 inputs");
	assert_int_equal(tq_stream_next(s, &it), TQ_EINVAL);
	assert_int_equal(in.pulled, 2); /* nothing after the failure was pulled */
	assert_int_equal(in.next, 3);
	tq_stream_destroy(&s);

	/* Bad options are refused up front. */
	tq_stream_opts bad = { .on_timeout = (tq_on_timeout)7 };
	assert_int_equal(tq_client_async_stream(c, "double", next_json, &in, &bad, &s), TQ_EINVAL);
	/* A negative timeout is TQ_INFINITY or a mistake, as in tq_task_opts. */
	tq_stream_opts negative = { .timeout_ms = -5 };
	assert_int_equal(tq_client_async_stream(c, "double", next_json, &in, &negative, &s),
	                 TQ_EINVAL);
	tq_stream_opts too_many = { .max_concurrency = 1000001 };
	assert_int_equal(tq_client_async_stream(c, "double", next_json, &in, &too_many, &s),
	                 TQ_EINVAL);
	assert_int_equal(tq_client_async_stream(c, "", next_json, &in, NULL, &s), TQ_EINVAL);
	assert_int_equal(tq_client_async_stream(c, "double", NULL, &in, NULL, &s), TQ_EINVAL);
	tq_client_destroy(&c);
}

static void test_any_timeout_up_to_int64_max_works(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	/* The tasks' own deadline is one heartbeat later than the stream's:
	 * for INT64_MAX that sum overflowed and every input was refused. */
	const int64_t timeouts[] = { TQ_INFINITY, INT64_MAX, INT64_MAX - 1, 1000 };
	for (size_t k = 0; k < sizeof timeouts / sizeof timeouts[0]; k++) {
		counter in = { 0, 3 };
		tq_stream_opts o = { .max_concurrency = 2, .timeout_ms = timeouts[k] };
		tq_stream *s;
		assert_int_equal(tq_client_async_stream(c, "double", next_int, &in, &o, &s), TQ_OK);
		tq_stream_item it;
		for (int i = 1; i <= 3; i++) {
			assert_int_equal(tq_stream_next(s, &it), TQ_OK);
			assert_int_equal(it.outcome, TQ_OK);
			assert_int_equal(item_int(&it), 2 * i);
		}
		assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
		tq_stream_destroy(&s);
	}
	tq_client_destroy(&c);
}

/* Checks that `it` is the item of a refused input. */
static void assert_refused(const tq_stream_item *it, tq_err want)
{
	assert_int_equal(it->outcome, want);
	assert_null(it->result);
	assert_int_equal(it->len, 0);
	assert_string_equal(it->worker, "");
	assert_non_null(strstr(it->error, "not submitted: "));
}

static void test_refused_inputs_are_items_and_the_stream_goes_on(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	const char *const json[] = { "[1]", "NONE", "[3]", "TWO", "HUGE", "[6]", NULL };
	const tq_err refused[] = { TQ_OK, TQ_EINVAL, TQ_OK, TQ_EINVAL, TQ_ETOOBIG, TQ_OK };
	for (int unordered = 0; unordered <= 1; unordered++) {
		inputs in = { json, 0, 0 };
		tq_stream_opts o = { .max_concurrency = 2, .unordered = unordered };
		tq_stream *s;
		assert_int_equal(tq_client_async_stream(c, "double", next_json, &in, &o, &s),
		                 TQ_OK);
		/* Every input has its item: the refused ones with their error,
		 * the tasks before and after them with their results; the
		 * stream neither fails nor cancels anything. */
		tq_stream_item it;
		bool seen[6] = { false };
		for (size_t k = 0; k < 6; k++) {
			assert_int_equal(tq_stream_next(s, &it), TQ_OK);
			assert_true(it.index < 6);
			if (!unordered)
				assert_int_equal(it.index, k);
			assert_false(seen[it.index]);
			seen[it.index] = true;
			if (refused[it.index] != TQ_OK) {
				assert_refused(&it, refused[it.index]);
			} else {
				assert_int_equal(it.outcome, TQ_OK);
				assert_int_equal(item_int(&it), 2 * (int64_t)(it.index + 1));
			}
		}
		assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
		assert_string_equal(tq_stream_error(s), "");
		assert_int_equal(tq_stream_submitted(s), 6);
		assert_int_equal(tq_stream_yielded(s), 6);
		tq_stream_destroy(&s);
	}
	uint64_t n = 0;
	assert_int_equal(th_stat(e, "counters.cancelled", &n), 0);
	assert_int_equal(n, 0);
	assert_true(th_stat_reaches(e, "counters.completed", 6, 3000)); /* 3 a run */
	tq_client_destroy(&c);
}

static void test_destroy_cancels_what_still_runs(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	const char *const json[] = { "[10]", "[5000]", "[5000]", NULL };
	inputs in = { json, 0, 0 };
	tq_stream_opts o = { .max_concurrency = 3, .timeout_ms = 10000 };
	tq_stream *s;
	assert_int_equal(tq_client_async_stream(c, "sleep", next_json, &in, &o, &s), TQ_OK);
	tq_stream_item it;
	assert_int_equal(tq_stream_next(s, &it), TQ_OK);
	assert_int_equal(item_int(&it), 10);
	assert_true(th_stat_reaches(e, "load", 2, 3000)); /* both 5 s tasks run */
	tq_stream_destroy(&s);
	/* The stream halted: its running tasks are shut down. */
	assert_true(th_stat_reaches(e, "counters.cancelled", 2, 3000));
	uint64_t completed = 99;
	assert_int_equal(th_stat(e, "counters.completed", &completed), 0);
	assert_int_equal(completed, 1);
	tq_client_destroy(&c);
}

/* A stand-in broker on a raw ROUTER socket: answers one STATS with a
 * reply whose workers claim `concurrency` slots each for `double`. */
typedef struct {
	void *ctx, *sock;
	char ep[64];
	uint64_t concurrency;
	int workers;
	pthread_t thread;
} fake_broker;

static void fake_stats(const fake_broker *fb, tq_buf *b)
{
	tq_pack_map(b, 1);
	tq_pack_str(b, "workers");
	tq_pack_array(b, (uint32_t)fb->workers);
	for (int i = 0; i < fb->workers; i++) {
		tq_pack_map(b, 2);
		tq_pack_str(b, "functions");
		tq_pack_array(b, 1);
		tq_pack_str(b, "double");
		tq_pack_str(b, "concurrency");
		tq_pack_uint(b, fb->concurrency);
	}
}

static void *fake_broker_run(void *arg)
{
	fake_broker *fb = arg;
	zmq_pollitem_t item = { fb->sock, 0, ZMQ_POLLIN, 0 };
	tqi_frames f;
	tqi_rx rx;
	tqi_rx_init(&rx, fb->sock, true);
	int got = zmq_poll(&item, 1, 10000) == 1 ? tqi_rx_recv(&rx, &f, 0) : 0;
	tqi_rx_close(&rx);
	if (got != 1)
		return NULL;
	if (tqi_frames_decode(&f, TQI_ROLE_CLIENT, TQI_ROLE_BROKER, NULL, 0) == TQ_OK &&
	    f.e.cmd == TQI_STATS) {
		tq_buf *b;
		tqi_wbuf w;
		tqi_wbuf_init(&w);
		if (tq_buf_new(&b) == TQ_OK) {
			fake_stats(fb, b);
			tqi_env out = { .cmd = TQI_STATS_REPLY,
				        .stats = { tq_buf_data(b), tq_buf_size(b), 1 } };
			if (tqi_env_encode(&out, &w) == TQ_OK)
				tqi_send(fb->sock, zmq_msg_data(&f.id), zmq_msg_size(&f.id), w.data,
				         w.len, 0);
			tq_buf_destroy(&b);
		}
		tqi_wbuf_free(&w);
	}
	tqi_frames_close(&f);
	return NULL;
}

static void fake_broker_start(fake_broker *fb)
{
	fb->ctx = zmq_ctx_new();
	fb->sock = zmq_socket(fb->ctx, ZMQ_ROUTER);
	int linger = 1000;
	zmq_setsockopt(fb->sock, ZMQ_LINGER, &linger, sizeof linger);
	assert_int_equal(zmq_bind(fb->sock, "tcp://127.0.0.1:*"), 0);
	size_t n = sizeof fb->ep;
	assert_int_equal(zmq_getsockopt(fb->sock, ZMQ_LAST_ENDPOINT, fb->ep, &n), 0);
	assert_int_equal(pthread_create(&fb->thread, NULL, fake_broker_run, fb), 0);
}

static void fake_broker_stop(fake_broker *fb)
{
	pthread_join(fb->thread, NULL);
	zmq_close(fb->sock);
	zmq_ctx_term(fb->ctx);
}

static int no_inputs(void *arg, tq_buf *args)
{
	(void)arg;
	(void)args;
	return 0;
}

static void test_absurd_worker_slots_are_capped(void **state)
{
	(void)state;
	/* Two workers claiming 3e9 slots each: cast to unsigned and summed,
	 * that wrapped to 1.7e9 slots and asked calloc for ~80 GB.  Capped,
	 * the stream gets 1,000,000 and works. */
	fake_broker fb = { .concurrency = 3000000000u, .workers = 2 };
	fake_broker_start(&fb);
	tq_client_opts co = { .broker = fb.ep, .broker_timeout_ms = 5000 };
	tq_client *c;
	assert_int_equal(tq_client_new(&c, &co), TQ_OK);
	tq_stream *s = NULL;
	assert_int_equal(tq_client_async_stream(c, "double", no_inputs, NULL, NULL, &s), TQ_OK);
	tq_stream_item it;
	assert_int_equal(tq_stream_next(s, &it), TQ_EEND);
	tq_stream_destroy(&s);
	tq_client_destroy(&c);
	fake_broker_stop(&fb);
}

/* For th_wait_for: reads what came for the task, true once the client
 * holds it for the next broker (lost with one, retries left). */
static bool waiting_for_a_broker(void *arg)
{
	tq_task *t = arg;
	tq_task_yield(t, 20);
	return t->state == CT_WAITING;
}

/* Runs `touch PATH 2000` with a retry, stops the broker under it (its
 * grace is shorter than the task) and returns the task once the client
 * waits to resubmit it. */
static tq_task *task_waiting_for_a_broker(th_env *e, tq_client *c, th_path *file)
{
	char args[600];
	snprintf(args, sizeof args, "[\"%s\", 2000]", file->path);
	tq_task_opts o = { .retries = 1 };
	tq_task *t = th_async(c, "touch", args, &o);
	assert_non_null(t);
	assert_true(th_stat_reaches(e, "load", 1, 5000));
	th_signal(e->broker, SIGTERM);
	assert_true(th_wait_for(waiting_for_a_broker, t, 10000));
	assert_true(th_wait_exit(e->broker, 5000) >= 0);
	assert_false(th_file_exists(file));
	return t;
}

static void test_an_ignored_task_waiting_for_a_broker_runs_when_one_is_back(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", NULL));
	/* A broker timeout long enough for ZeroMQ's reconnection backoff:
	 * the ignore below sees the new broker within its wait. */
	tq_client *c = th_client(e, 10000);
	th_path fw;
	snprintf(fw.path, sizeof fw.path, "%s/ignored-waiting", e->dir);
	tq_task *t = task_waiting_for_a_broker(e, c, &fw);
	assert_non_null(th_broker_again(e, NULL));
	/* Ignored while waiting: it used to be dropped, and never ran. */
	tq_task_ignore(&t);
	assert_null(t);
	tq_client_destroy(&c);
	assert_true(th_wait_for(th_file_exists, &fw, 20000));
	assert_true(th_stat_reaches(e, "counters.completed", 1, 5000)); /* on the new broker */
	unlink(fw.path);
}

static void test_an_ignored_task_the_broker_has_not_confirmed_stays_with_the_client(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", NULL));
	tq_client *c = th_client(e, 1000);
	th_path fw;
	snprintf(fw.path, sizeof fw.path, "%s/ignored-orphan", e->dir);
	tq_task *t = task_waiting_for_a_broker(e, c, &fw);
	/* No broker: the ignore gives up waiting after the broker timeout,
	 * and the client keeps the task. */
	tq_task_ignore(&t);
	assert_null(t);
	assert_false(th_file_exists(&fw));
	assert_non_null(th_broker_again(e, NULL));
	/* The next wait on this client resubmits it, detached. */
	tq_task_opts o = { .retries = 3 };
	tq_task *t2 = th_async(c, "double", "[21]", &o);
	assert_non_null(t2);
	assert_int_equal(tq_task_await(t2, 30000), TQ_OK);
	tq_task_destroy(&t2);
	tq_client_destroy(&c);
	assert_true(th_wait_for(th_file_exists, &fw, 20000));
	assert_true(th_stat_reaches(e, "counters.completed", 2, 5000));
	unlink(fw.path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ordered_stream_yields_in_input_order, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_unordered_stream_yields_as_tasks_finish,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_unordered_stream_is_not_held_up_by_a_slow_task,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_failing_element_is_an_item_and_the_stream_goes_on, th_setup,
		    th_teardown),
		cmocka_unit_test_setup_teardown(test_kill_task_makes_a_timeout_an_item, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_exit_makes_a_timeout_fail_the_stream, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_max_concurrency_is_respected, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_a_failing_input_callback_fails_the_stream,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_any_timeout_up_to_int64_max_works, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_refused_inputs_are_items_and_the_stream_goes_on, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_destroy_cancels_what_still_runs, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_absurd_worker_slots_are_capped, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_an_ignored_task_waiting_for_a_broker_runs_when_one_is_back, th_setup,
		    th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_an_ignored_task_the_broker_has_not_confirmed_stays_with_the_client,
		    th_setup, th_teardown),
	};
	return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
