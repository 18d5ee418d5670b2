/*
 * test_pipeline.c - a worker that holds more tasks than it has executors
 * (--prefetch): tasks wait in executors' pipes, yet a waiting task can be
 * cancelled without ever running, is taken by an executor that falls idle,
 * expires at its deadline, sees the time it has left net of its wait, and
 * survives the crash of the task ahead of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "proto/wire.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t span_end(tq_task *t)
{
	size_t len;
	const uint8_t *d = tq_task_result(t, &len);
	assert_non_null(d);
	tq_reader r;
	tq_reader_init(&r, d, len);
	uint32_t n;
	uint64_t start, end;
	assert_int_equal(tq_read_array(&r, &n), TQ_OK);
	assert_int_equal(tq_read_uint(&r, &start), TQ_OK);
	assert_int_equal(tq_read_uint(&r, &end), TQ_OK);
	return end;
}

static void test_cancelled_waiting_task_never_runs(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", "--prefetch", "4", NULL };
	tq_client *c = th_start(e, NULL, opts);
	th_path first, second;
	tq_task *a = th_mark_running(e, c, &first, "a", 800, NULL);
	/* b waits behind a in the one executor's pipe. */
	tq_task *b = th_mark(e, c, &second, "b", 0, NULL);
	assert_true(th_stat_reaches(e, "load", 2, 3000));
	assert_int_equal(tq_task_shutdown(b, 1000), TQ_ECANCELLED);
	assert_non_null(strstr(tq_task_error(b), "before it started"));
	assert_int_equal(tq_task_await(a, 5000), TQ_OK);
	/* The executor read b after a and skipped it: it never ran. */
	th_expect_never_ran(c, &second);
	tq_task_destroy(&a);
	tq_task_destroy(&b);
	tq_client_destroy(&c);
}

static void test_idle_executor_takes_waiting_tasks(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "2", "--prefetch", "8", NULL };
	tq_client *c = th_start(e, NULL, opts);
	/* One long task and six short ones: those queued behind the long one
	 * must not wait for it while the other executor is free. */
	tq_task *slow = th_async(c, "span", "[1500]", NULL);
	tq_task *quick[6];
	for (int i = 0; i < 6; i++)
		quick[i] = th_async(c, "span", "[20]", NULL);
	assert_int_equal(tq_task_await(slow, 10000), TQ_OK);
	uint64_t slow_end = span_end(slow);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(tq_task_await(quick[i], 10000), TQ_OK);
		assert_true(span_end(quick[i]) < slow_end);
		tq_task_destroy(&quick[i]);
	}
	tq_task_destroy(&slow);
	tq_client_destroy(&c);
}

static void test_waiting_task_expires_at_its_deadline(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", "--prefetch", "4", NULL };
	tq_client *c = th_start(e, NULL, opts);
	th_path first, second;
	tq_task *a = th_mark_running(e, c, &first, "a", 1500, NULL);
	tq_task_opts o = { .timeout_ms = 300 };
	tq_task *b = th_mark(e, c, &second, "late", 0, &o);
	assert_int_equal(tq_task_await(b, 5000), TQ_ETIMEDOUT);
	assert_int_equal(tq_task_await(a, 5000), TQ_OK);
	assert_false(th_file_exists(&second));
	tq_task_destroy(&a);
	tq_task_destroy(&b);
	tq_client_destroy(&c);
}

static void test_waiting_task_sees_the_time_it_has_left(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", "--prefetch", "4", NULL };
	tq_client *c = th_start(e, NULL, opts);
	enum { WAIT_MS = 2000, TIMEOUT_MS = 6000 };
	th_path first;
	tq_task *a = th_mark_running(e, c, &first, "a", WAIT_MS, NULL);
	/* b waits behind a in the executor's pipe for about WAIT_MS. */
	uint64_t submitted = th_now_ms();
	tq_task_opts o = { .timeout_ms = TIMEOUT_MS };
	tq_task *b = th_async(c, "left", "[]", &o);
	assert_true(th_stat_reaches(e, "load", 2, 3000));
	assert_int_equal(tq_task_await(a, 10000), TQ_OK);
	assert_int_equal(tq_task_await(b, 10000), TQ_OK);
	size_t len;
	const uint8_t *d = tq_task_result(b, &len);
	assert_non_null(d);
	tq_reader r;
	tq_reader_init(&r, d, len);
	uint32_t n;
	int64_t left;
	uint64_t at;
	assert_int_equal(tq_read_array(&r, &n), TQ_OK);
	assert_int_equal(tq_read_int(&r, &left), TQ_OK);
	assert_int_equal(tq_read_uint(&r, &at), TQ_OK);
	assert_true(left > 0);
	/* The deadline the handler sees is the task's own: no later than the
	 * client's, but for the trip to the worker (far less than half the
	 * wait).  Counting the time left from when the task started would push
	 * it back by the whole wait in the pipe. */
	printf("b started %llu ms after submission with %lld ms left of %d\n",
	       (unsigned long long)(at - submitted), (long long)left, TIMEOUT_MS);
	assert_true(at + (uint64_t)left <= submitted + TIMEOUT_MS + WAIT_MS / 2);
	tq_task_destroy(&a);
	tq_task_destroy(&b);
	tq_client_destroy(&c);
}

static void test_tasks_behind_a_crash_run_elsewhere(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", "--prefetch", "4", NULL };
	tq_client *c = th_start(e, NULL, opts);
	tq_task *boom = th_async(c, "crash", "[]", NULL);
	tq_task *after[3];
	for (int i = 0; i < 3; i++) {
		char args[16];
		snprintf(args, sizeof args, "[%d]", i);
		after[i] = th_async(c, "double", args, NULL);
	}
	assert_int_equal(tq_task_await(boom, 5000), TQ_ETASKCRASHED);
	for (int i = 0; i < 3; i++) {
		int64_t v;
		assert_int_equal(tq_task_await(after[i], 5000), TQ_OK);
		assert_int_equal(tq_task_result_int(after[i], &v), TQ_OK);
		assert_int_equal(v, 2 * i);
		tq_task_destroy(&after[i]);
	}
	tq_task_destroy(&boom);
	tq_client_destroy(&c);
}

static void test_forged_results_are_not_believed(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", "--prefetch", "4", NULL };
	assert_non_null(th_broker(e, NULL));
	th_proc *w = th_worker(e, "w1", opts);
	assert_non_null(w);
	tq_client *c = th_client(e, 0);
	/* A handler writes a malformed result frame and, behind it, one that
	 * looks right: its executor is replaced and the forged answer is not
	 * taken for its task's - whether the executor then waits to be killed
	 * or exits by itself (which the loop's SIGKILL may forestall); the
	 * tasks behind it run elsewhere.  The same for a handler that leaves a
	 * malformed result in its ticket. */
	static const struct {
		const char *args, *why, *or_why;
	} cases[] = { { "[\"wait\"]", "SIGKILL", "SIGKILL" },
		      { "[\"exit\"]", "status 3", "SIGKILL" },
		      { "[\"ticket\"]", "SIGKILL", "SIGKILL" } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tq_task *t = th_async(c, "forge", cases[i].args, NULL);
		tq_task *behind = th_async(c, "double", "[21]", NULL);
		assert_int_equal(tq_task_await(t, 8000), TQ_ETASKCRASHED);
		const char *why = tq_task_error(t);
		printf("forge %s: %s\n", cases[i].args, why);
		assert_true(strstr(why, cases[i].why) != NULL ||
		            strstr(why, cases[i].or_why) != NULL);
		int64_t v;
		assert_int_equal(tq_task_await(behind, 5000), TQ_OK);
		assert_int_equal(tq_task_result_int(behind, &v), TQ_OK);
		assert_int_equal(v, 42);
		tq_task_destroy(&t);
		tq_task_destroy(&behind);
	}
	assert_true(th_log_has(w, "malformed result", 2000));
	/* A handler that sets the tickets of the tasks behind it FREE: its
	 * own result counts; its executor, finding a task in no state the
	 * loop leaves one in, exits rather than pass it over in silence, and
	 * the tasks behind run on the next executor. */
	tq_task *f = th_async(c, "forge", "[\"behind\"]", NULL);
	tq_task *b1 = th_async(c, "double", "[1]", NULL);
	tq_task *b2 = th_async(c, "double", "[2]", NULL);
	int64_t n = -1, v1 = -1, v2 = -1;
	assert_int_equal(tq_task_await(f, 5000), TQ_OK);
	assert_int_equal(tq_task_result_int(f, &n), TQ_OK);
	printf("forge behind: %lld tickets set FREE\n", (long long)n);
	assert_true(n >= 1);
	assert_int_equal(tq_task_await(b1, 5000), TQ_OK);
	assert_int_equal(tq_task_await(b2, 5000), TQ_OK);
	assert_int_equal(tq_task_result_int(b1, &v1), TQ_OK);
	assert_int_equal(tq_task_result_int(b2, &v2), TQ_OK);
	assert_int_equal(v1 + v2, 6);
	tq_task_destroy(&f);
	tq_task_destroy(&b1);
	tq_task_destroy(&b2);
	tq_client_destroy(&c);
}

/* True when t's result is what `big n` makes. */
static bool is_big_result(const tq_task *t, size_t n)
{
	size_t len;
	const uint8_t *d = tq_task_result(t, &len);
	if (d == NULL)
		return false;
	tq_reader r;
	tq_reader_init(&r, d, len);
	const uint8_t *b;
	size_t blen;
	if (tq_read_bin(&r, &b, &blen) != TQ_OK || blen != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (b[i] != (uint8_t)(i * 7 + 1))
			return false;
	return true;
}

static int64_t executor_pid(tq_client *c)
{
	tq_task *t = th_async(c, "pid", "[]", NULL);
	int64_t pid = -1;
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	assert_int_equal(tq_task_result_int(t, &pid), TQ_OK);
	tq_task_destroy(&t);
	return pid;
}

static void test_tasks_and_results_of_every_size_arrive_whole(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", "--prefetch", "8", NULL };
	tq_client *c = th_start(e, NULL, opts);
	/* Around the size where a result stops fitting in its ticket (236
	 * bytes: a bin of 234 is the largest that fits) and where the worker
	 * reads a frame on its own, each behind or before a small one, so that
	 * results in tickets and on the socket interleave and several share a
	 * read. */
	static const size_t sizes[] = { 0,     1,     233,   234,   235,    236,     300,
		                        65530, 65535, 65536, 65537, 200000, 3 << 20, 70000 };
	enum { N = sizeof sizes / sizeof sizes[0] };
	tq_task *big[N], *small[N];
	for (size_t i = 0; i < N; i++) {
		char args[32];
		snprintf(args, sizeof args, "[%zu]", sizes[i]);
		big[i] = th_async(c, "big", args, NULL);
		snprintf(args, sizeof args, "[%zu]", i);
		small[i] = th_async(c, "double", args, NULL);
	}
	for (size_t i = 0; i < N; i++) {
		int64_t v;
		assert_int_equal(tq_task_await(big[i], 20000), TQ_OK);
		assert_true(is_big_result(big[i], sizes[i]));
		assert_int_equal(tq_task_await(small[i], 20000), TQ_OK);
		assert_int_equal(tq_task_result_int(small[i], &v), TQ_OK);
		assert_int_equal(v, 2 * (int64_t)i);
		tq_task_destroy(&big[i]);
		tq_task_destroy(&small[i]);
	}
	/* Large arguments, each with a small task behind it, reach the
	 * executor whole too (it grows its buffer for them, then shrinks it). */
	static const size_t arg_sizes[] = { 300000, 1 << 20, 70000, 10 };
	enum { M = sizeof arg_sizes / sizeof arg_sizes[0] };
	tq_task *echo[M];
	for (size_t i = 0; i < M; i++) {
		char *json = malloc(arg_sizes[i] + 8);
		assert_non_null(json);
		memcpy(json, "[\"", 2);
		memset(json + 2, 'a' + (int)i, arg_sizes[i]);
		strcpy(json + 2 + arg_sizes[i], "\"]");
		echo[i] = th_async(c, "echo", json, NULL);
		free(json);
		char args[32];
		snprintf(args, sizeof args, "[%zu]", i);
		small[i] = th_async(c, "double", args, NULL);
	}
	for (size_t i = 0; i < M; i++) {
		int64_t v;
		assert_int_equal(tq_task_await(echo[i], 20000), TQ_OK);
		size_t len;
		const uint8_t *d = tq_task_result(echo[i], &len);
		tq_reader r;
		tq_reader_init(&r, d, len);
		uint32_t n;
		const char *str;
		size_t slen;
		assert_int_equal(tq_read_array(&r, &n), TQ_OK);
		assert_int_equal(tq_read_str(&r, &str, &slen), TQ_OK);
		assert_int_equal(slen, arg_sizes[i]);
		assert_true(str[0] == 'a' + (int)i && str[slen - 1] == 'a' + (int)i);
		assert_int_equal(tq_task_await(small[i], 20000), TQ_OK);
		assert_int_equal(tq_task_result_int(small[i], &v), TQ_OK);
		assert_int_equal(v, 2 * (int64_t)i);
		tq_task_destroy(&echo[i]);
		tq_task_destroy(&small[i]);
	}
	tq_client_destroy(&c);
}

static void test_too_large_a_result_is_refused_clearly(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", NULL };
	tq_client *c = th_start(e, NULL, opts);
	int64_t pid = executor_pid(c);
	/* The largest result there is (bin32: 5 bytes of header) arrives
	 * whole; one byte more is refused with a reason, and the executor that
	 * made it serves on. */
	char args[32];
	snprintf(args, sizeof args, "[%u]", TQI_DEFAULT_MAX_PAYLOAD - 5);
	tq_task *t = th_async(c, "big", args, NULL);
	assert_int_equal(tq_task_await(t, 20000), TQ_OK);
	assert_true(is_big_result(t, TQI_DEFAULT_MAX_PAYLOAD - 5));
	tq_task_destroy(&t);
	static const unsigned over[] = { TQI_DEFAULT_MAX_PAYLOAD - 4,
		                         TQI_DEFAULT_MAX_PAYLOAD + (1 << 20) };
	for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
		snprintf(args, sizeof args, "[%u]", over[i]);
		t = th_async(c, "big", args, NULL);
		assert_int_equal(tq_task_await(t, 20000), TQ_ETOOBIG);
		printf("%s\n", tq_task_error(t));
		assert_non_null(strstr(tq_task_error(t), "result too large"));
		tq_task_destroy(&t);
		assert_int_equal(executor_pid(c), pid);
	}
	/* The builtin `ticks` refuses to copy its word past the limit before
	 * it packs a byte. */
	enum { WORD = 20000 };
	char *json = malloc(WORD + 32);
	assert_non_null(json);
	memcpy(json, "[\"", 2);
	memset(json + 2, 'w', WORD);
	strcpy(json + 2 + WORD, "\", 1000, 0]");
	t = th_async(c, "ticks", json, NULL);
	free(json);
	assert_int_equal(tq_task_await(t, 20000), TQ_EFAILED);
	printf("%s\n", tq_task_error(t));
	assert_non_null(strstr(tq_task_error(t), "result limit"));
	tq_task_destroy(&t);
	assert_int_equal(executor_pid(c), pid);
	tq_client_destroy(&c);
}

static void test_stopping_at_once_answers_every_held_task(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", "--prefetch", "4", NULL };
	assert_non_null(th_broker(e, NULL));
	th_proc *w = th_worker(e, "w1", opts);
	assert_non_null(w);
	tq_client *c = th_client(e, 0);
	tq_task *ts[5];
	for (int i = 0; i < 5; i++)
		ts[i] = th_async(c, "sleep", "[3000]", NULL);
	assert_true(th_stat_reaches(e, "load", 5, 3000));
	/* The first signal drains; the second stops at once, with four tasks
	 * waiting in the executor's pipe behind the running one. */
	th_signal(w, SIGTERM);
	assert_true(th_log_has(w, "draining", 2000));
	th_signal(w, SIGTERM);
	int status = th_wait_exit(w, 5000);
	assert_true(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(tq_task_await(ts[i], 5000), TQ_ECANCELLED);
		tq_task_destroy(&ts[i]);
	}
	tq_client_destroy(&c);
}

typedef struct {
	th_env *e;
	uint64_t at_most;
} cap_wait;

static bool capacity_down(void *arg)
{
	cap_wait *cw = arg;
	uint64_t cap;
	return th_stat(cw->e, "capacity", &cap) == 0 && cap <= cw->at_most;
}

static void test_automatic_prefetch_follows_task_times(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", NULL };
	tq_client *c = th_start(e, NULL, opts);
	/* Short tasks: the worker asks for more than one at a time. */
	enum { N = 400 };
	tq_task *ts[N];
	for (int i = 0; i < N; i++)
		ts[i] = th_async(c, "noop", "[]", NULL);
	assert_int_equal(tq_await_many(ts, N, 30000, NULL), TQ_OK);
	for (int i = 0; i < N; i++)
		tq_task_destroy(&ts[i]);
	/* (It announces a new capacity at most every 50 ms.) */
	assert_true(th_stat_reaches(e, "capacity", 2, 2000));
	uint64_t cap = 0;
	assert_int_equal(th_stat(e, "capacity", &cap), 0);
	printf("after %d short tasks the worker holds up to %llu\n", N, (unsigned long long)cap);
	/* Long tasks: it goes back to one at a time, so nothing waits behind
	 * a long task on a busy worker. */
	for (int i = 0; i < 2; i++) {
		tq_task *t = th_async(c, "sleep", "[300]", NULL);
		assert_int_equal(tq_task_await(t, 5000), TQ_OK);
		tq_task_destroy(&t);
	}
	cap_wait cw = { e, 1 };
	assert_true(th_wait_for(capacity_down, &cw, 3000));
	tq_client_destroy(&c);
}

static void test_automatic_prefetch_counts_the_time_tasks_take(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "1", NULL };
	tq_client *c = th_start(e, NULL, opts);
	/* Tasks of at least 1 ms each, many at once: however their results are
	 * read (several in one read, late), the worker holds no more than its
	 * 2 ms budget of them - one running and two more - because the time it
	 * averages is the executor's own measure of each task. */
	enum { N = 300 };
	tq_task *ts[N];
	for (int i = 0; i < N; i++)
		ts[i] = th_async(c, "sleep", "[1]", NULL);
	uint64_t most = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(tq_task_await(ts[i], 30000), TQ_OK);
		tq_task_destroy(&ts[i]);
		uint64_t cap;
		if (i % 50 == 49 && th_stat(e, "capacity", &cap) == 0 && cap > most)
			most = cap;
	}
	printf("1 ms tasks: the worker held up to %llu\n", (unsigned long long)most);
	assert_true(most >= 1 && most <= 3);
	tq_client_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cancelled_waiting_task_never_runs, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_idle_executor_takes_waiting_tasks, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_waiting_task_expires_at_its_deadline, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_waiting_task_sees_the_time_it_has_left,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_tasks_behind_a_crash_run_elsewhere, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_forged_results_are_not_believed, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_tasks_and_results_of_every_size_arrive_whole,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_too_large_a_result_is_refused_clearly,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_automatic_prefetch_follows_task_times,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_automatic_prefetch_counts_the_time_tasks_take,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_stopping_at_once_answers_every_held_task,
		                                th_setup, th_teardown),
	};
	return cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
}
