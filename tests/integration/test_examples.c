/*
 * test_examples.c - every program in examples/ run as a new user runs it,
 * against a real broker and two workers, with its output checked (issue 5):
 * values and error texts exactly; times only as lower bounds, or as
 * structure (which worker ran what, whose runs overlapped).  Also the
 * example plugin loaded into tq-worker and the example worker program.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *const one[] = { "--concurrency", "1", NULL };

/* A broker and two one-slot workers, w1 and w2, as the examples expect;
 * the examples find the broker in $TQ_BROKER. */
static void start(th_env *e)
{
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", one));
	assert_non_null(th_worker(e, "w2", one));
	setenv("TQ_BROKER", e->client_ep, 1);
}

/* Runs example `name`; checks it exits 0 and returns its stdout. */
static char *example(th_env *e, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", TQ_EXAMPLES_DIR, name);
	const char *argv[] = { path, NULL };
	char *out, *err;
	int rc = th_run(e, argv, 30000, &out, &err);
	printf("--- %s (exit %d)\n%s%s", name, rc, out, err);
	assert_int_equal(rc, 0);
	free(err);
	return out;
}

/* True when s is "task XXXXXXXX (fn) " + rest: tq_task_error's wording. */
static bool task_error_is(const char *s, const char *fn, const char *rest)
{
	char want[256];
	if (strncmp(s, "task ", 5) != 0)
		return false;
	for (int i = 5; i < 13; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	snprintf(want, sizeof want, " (%s) %s", fn, rest);
	return strcmp(s + 13, want) == 0;
}

/* Runs fn(json_args) on c: it must fail, and its error say `rest`. */
static void expect_failure(tq_client *c, const char *fn, const char *json_args, const char *rest)
{
	tq_task *t = th_async(c, fn, json_args, NULL);
	assert_non_null(t);
	assert_int_equal(tq_task_await(t, 5000), TQ_EFAILED);
	if (!task_error_is(tq_task_error(t), fn, rest))
		fail_msg("%s(%s) failed with \"%s\"", fn, json_args, tq_task_error(t));
	tq_task_destroy(&t);
}

static bool is_worker(const char *w)
{
	return strcmp(w, "w1") == 0 || strcmp(w, "w2") == 0;
}

static void test_01_start(void **state)
{
	th_env *e = *state;
	start(e);
	char *out = example(e, "01_start");
	char ref[64];
	assert_int_equal(sscanf(out, "started task %63[0-9a-f]; nobody waits for it\n", ref), 1);
	assert_int_equal(strlen(ref), 32);
	/* Nobody awaited it, and it ran all the same. */
	assert_true(th_stat_reaches(e, "counters.completed", 1, 5000));
	free(out);
}

static void test_02_async_await(void **state)
{
	th_env *e = *state;
	start(e);
	char *out = example(e, "02_async_await");
	char w[16];
	assert_int_equal(sscanf(out, "double(21) = 42, computed by %15s", w), 1);
	assert_true(is_worker(w));
	free(out);
}

static void test_03_tick_tock(void **state)
{
	th_env *e = *state;
	start(e);
	char *out = example(e, "03_tick_tock");
	long long at[6], last = -1;
	char word[6][8], on[6][16];
	const char *s = out;
	for (int i = 0; i < 6; i++) {
		assert_int_equal(sscanf(s, " %lld ms %7s (on %15[^)])", &at[i], word[i], on[i]), 3);
		assert_true(at[i] >= last); /* merged in time order */
		last = at[i];
		s = strchr(s, '\n');
		assert_non_null(s);
		s++;
	}
	assert_string_equal(s, "");
	assert_int_equal(at[0], 0);
	/* Three ticks on one worker, three tocks on the other... */
	int ticks = 0;
	long long first[2] = { -1, -1 }, end[2] = { 0, 0 };
	for (int i = 0; i < 6; i++) {
		int k = strcmp(word[i], "tock") == 0;
		assert_true(k || strcmp(word[i], "tick") == 0);
		ticks += !k;
		if (first[k] < 0)
			first[k] = at[i];
		end[k] = at[i];
	}
	assert_int_equal(ticks, 3);
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < 6; j++)
			if (strcmp(word[i], word[j]) == 0)
				assert_string_equal(on[i], on[j]);
			else
				assert_string_not_equal(on[i], on[j]);
	/* ...at the same time: each began before the other ended.  And each
	 * slept 2 x 500 ms between its first and last word. */
	assert_true(first[0] <= end[1] && first[1] <= end[0]);
	assert_true(end[0] - first[0] >= 1000 && end[1] - first[1] >= 1000);
	free(out);
}

static void test_04_parallel(void **state)
{
	th_env *e = *state;
	start(e);
	/* How many tasks the workers hold at once, while the example runs:
	 * one at a time in its sequential part, both in its parallel part. */
	th_watch *held = th_watch_start(e, "load", NULL, NULL);
	char *out = example(e, "04_parallel");
	uint64_t samples, most = th_watch_end(held, &samples);
	double seq, par, seq2, par2, speedup;
	char s1[16], s2[16], p1[16], p2[16];
	assert_int_equal(sscanf(out,
	                        "sequential: %lf s on %15[^,], then %15s\n"
	                        "parallel: %lf s on %15s and %15s\n"
	                        "sequential: %lf s parallel: %lf s speed-up %lfx\n",
	                        &seq, s1, s2, &par, p1, p2, &seq2, &par2, &speedup),
	                 9);
	assert_true(is_worker(s1) && is_worker(s2) && is_worker(p1) && is_worker(p2));
	/* Two 1 s tasks: one after the other they take 2 s or more. */
	assert_true(seq >= 2.0);
	assert_true(par >= 1.0);
	/* In parallel they ran on both workers, and overlapped: the two
	 * workers (one slot each) held both tasks at the same instant.  (How
	 * much sooner that makes it is the benchmark's to judge.) */
	assert_string_not_equal(p1, p2);
	assert_true(samples > 0);
	assert_int_equal(most, 2);
	/* The summary repeats the figures, and the speed-up is their ratio
	 * (to the printed rounding). */
	assert_true(seq2 == seq && par2 == par);
	assert_true(par > 0);
	/* And, in this one run, the parallel part was the quicker: a ratio of
	 * two figures from the same run, not a time target. */
	assert_true(speedup > 1.0);
	double off = speedup - seq / par;
	assert_true(off <= 0.02 * seq / par + 0.01 && -off <= 0.02 * seq / par + 0.01);
	free(out);
}

static void test_05_await_many(void **state)
{
	th_env *e = *state;
	start(e);
	char *out = example(e, "05_await_many");
	assert_string_equal(out, "[2, 4, 6, 8, 10]\n");
	free(out);
}

static void test_06_await_timeout(void **state)
{
	th_env *e = *state;
	start(e);
	char *out = example(e, "06_await_timeout");
	double after;
	char line[256];
	assert_int_equal(
	    sscanf(out, "await returned ETIMEDOUT after %lf s\n%255[^\n]", &after, line), 2);
	assert_true(after >= 5.0);
	assert_true(task_error_is(line, "sleep", "timed out after 5000 ms"));
	/* Given up on, the task was cancelled on its worker. */
	assert_true(th_stat_reaches(e, "counters.cancelled", 1, 3000));
	free(out);
}

static void test_07_await_longer(void **state)
{
	th_env *e = *state;
	start(e);
	char *out = example(e, "07_await_longer");
	double after;
	char w[16];
	assert_int_equal(sscanf(out, "6000 after %lf s, on %15s", &after, w), 2);
	assert_true(after >= 6.0);
	assert_true(is_worker(w));
	free(out);
}

static void test_08_await_many_timeout(void **state)
{
	th_env *e = *state;
	start(e);
	char *out = example(e, "08_await_many_timeout");
	double after;
	char w1[16], w2[16];
	assert_int_equal(sscanf(out, "[6000, 5000] after %lf s, on %15s and %15s", &after, w1, w2),
	                 3);
	assert_true(after >= 6.0);
	/* One slot each: the two ran on both workers at once. */
	assert_true(is_worker(w1) && is_worker(w2));
	assert_string_not_equal(w1, w2);
	free(out);
}

static void test_09_exercise(void **state)
{
	th_env *e = *state;
	start(e);
	char *out = example(e, "09_exercise");
	const char prefix[] = "await(task, 1000) returned ETIMEDOUT: ";
	assert_true(strncmp(out, prefix, strlen(prefix)) == 0);
	assert_true(task_error_is(out + strlen(prefix), "sleep", "timed out after 1000 ms\n"));
	free(out);
}

static void test_plugin_wordcount(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	const char *const plugin[] = { "--plugin", TQ_WORDCOUNT_PLUGIN, NULL };
	assert_non_null(th_worker(e, "wc", plugin));
	tq_client *c = th_client(e, 0);
	const struct {
		const char *args;
		int64_t words;
	} cases[] = { { "[\"the quick  brown\\tfox\"]", 4 },
		      { "[\"\"]", 0 },
		      { "[\"  one \"]", 1 } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		th_expect_int(c, "wordcount", cases[i].args, cases[i].words, "wc");
	expect_failure(c, "wordcount", "[1]", "failed on worker wc: usage: wordcount TEXT");
	/* The built-in functions are still there beside the plugin's. */
	th_expect_int(c, "double", "[4]", 8, "wc");
	tq_client_destroy(&c);
}

static bool no_workers(void *arg)
{
	uint64_t n = 99;
	return th_stat(arg, "workers", &n) == 0 && n == 0;
}

static void test_fib_worker(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	/* A worker program finds its broker (the worker endpoint) in $TQ_BROKER. */
	setenv("TQ_BROKER", e->worker_ep, 1);
	const char *argv[] = { TQ_EXAMPLES_DIR "/fib_worker", NULL };
	th_proc *p = th_spawn(e, "fib_worker", argv);
	unsetenv("TQ_BROKER");
	assert_non_null(p);
	assert_true(th_log_has(p, "registered with broker", 10000));
	tq_client *c = th_client(e, 0);
	const struct {
		const char *args;
		int64_t fib;
	} cases[] = { { "[0]", 0 }, { "[10]", 55 }, { "[90]", 2880067194370816120LL } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		th_expect_int(c, "fib", cases[i].args, cases[i].fib, "fib-worker");
	expect_failure(c, "fib", "[100]",
	               "failed on worker fib-worker: fib: N must be 0..93, not 100");
	tq_client_destroy(&c);
	/* SIGTERM: it drains, says goodbye and exits 0. */
	th_signal(p, SIGTERM);
	int status = th_wait_exit(p, 10000);
	assert_true(status >= 0 && WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The broker saw a goodbye, not a lost worker. */
	assert_true(th_wait_for(no_workers, e, 5000));
	uint64_t lost = 99;
	assert_int_equal(th_stat(e, "counters.workers_lost", &lost), 0);
	assert_int_equal(lost, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_01_start, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_02_async_await, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_03_tick_tock, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_04_parallel, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_05_await_many, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_06_await_timeout, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_07_await_longer, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_08_await_many_timeout, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_09_exercise, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_wordcount, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_fib_worker, th_setup, th_teardown),
	};
	return cmocka_run_group_tests_name("examples", tests, NULL, NULL);
}
