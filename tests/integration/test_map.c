/*
 * test_map.c - `tq map` as a user runs it (issue 5): a thousand lines in
 * order at a given concurrency, per-line errors for a failing line, a
 * timed-out line and malformed lines, lines the client refuses to submit,
 * --on-timeout fail stopping the run, --unordered, and bad command lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const conc4[] = { "--concurrency", "4", NULL };

/* Runs `tq map ARGS... < input` (input written to a file first) and returns
 * its exit code; *out and *err get stdout and stderr (free them). */
static int map(th_env *e, const char *input, const char *args, char **out, char **err)
{
	char path[400], cmd[1200];
	snprintf(path, sizeof path, "%s/map-input", e->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(input, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "exec %s map --broker %s %s < %s", TQ_CLI_BIN, e->client_ep, args,
	         path);
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	int rc = th_run(e, argv, 60000, out, err);
	unlink(path);
	if (getenv("TQ_TEST_LOGS"))
		fprintf(stderr, "tq map %s: exit %d\nstdout:\n%s\nstderr:\n%s\n", args, rc, *out,
		        *err);
	return rc;
}

/* The n-th line of s (from 0), copied into buf; false if s has fewer. */
static bool line_at(const char *s, int n, char *buf, size_t size)
{
	for (int i = 0; i < n; i++) {
		s = strchr(s, '\n');
		if (s == NULL)
			return false;
		s++;
	}
	if (*s == '\0')
		return false;
	size_t len = strcspn(s, "\n");
	snprintf(buf, size, "%.*s", (int)len, s);
	return true;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_a_thousand_lines_come_back_in_input_order(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	assert_non_null(th_worker(e, "w2", conc4));
	char *input = malloc(8 * 1000 + 1), *p = input;
	for (int i = 1; i <= 1000; i++)
		p += sprintf(p, "%d\n", i);
	char *out, *err;
	assert_int_equal(map(e, input, "--concurrency 8 double", &out, &err), 0);
	assert_int_equal(count_lines(out), 1000);
	const char *s = out;
	for (int i = 1; i <= 1000; i++) {
		char *end;
		long v = strtol(s, &end, 10);
		assert_int_equal(v, 2 * i);
		assert_int_equal(*end, '\n');
		s = end + 1;
	}
	assert_string_equal(err, ""); /* no progress line: stderr is not a terminal */
	/* Every line was one task. */
	uint64_t done = 0;
	assert_int_equal(th_stat(e, "counters.completed", &done), 0);
	assert_int_equal(done, 1000);
	free(input);
	free(out);
	free(err);
}

static void test_a_failing_and_a_timed_out_line_are_errors_in_their_place(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	char *out, *err, line[512];
	int rc = map(e, "10\nabc\n3000\n20\n", "--timeout 500 --on-timeout kill sleep", &out, &err);
	assert_int_equal(rc, 1); /* the first failure is the task's own: exit 1 */
	assert_int_equal(count_lines(out), 4);
	assert_true(line_at(out, 0, line, sizeof line));
	assert_string_equal(line, "10");
	assert_true(line_at(out, 1, line, sizeof line));
	assert_true(strncmp(line, "{\"error\":\"EFAILED\",\"message\":\"task ", 35) == 0);
	assert_non_null(strstr(line, "sleep: MS must be an integer"));
	assert_true(line_at(out, 2, line, sizeof line));
	assert_true(strncmp(line, "{\"error\":\"ETIMEDOUT\",\"message\":\"task ", 37) == 0);
	assert_non_null(strstr(line, "(sleep) timed out after 500 ms"));
	assert_true(line_at(out, 3, line, sizeof line));
	assert_string_equal(line, "20");
	/* The line that timed out was killed on its worker, not left to run. */
	assert_true(th_stat_reaches(e, "counters.cancelled", 1, 3000));
	free(out);
	free(err);
}

static void test_on_timeout_fail_stops_the_run(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	char *out, *err;
	uint64_t t0 = th_now_ms();
	int rc = map(e, "10\n3000\n20\n", "--timeout 500 --on-timeout fail sleep", &out, &err);
	assert_int_equal(rc, 3);
	assert_true(th_now_ms() - t0 >= 500);
	/* The line before the timeout is out; nothing after it is. */
	assert_string_equal(out, "10\n");
	assert_non_null(strstr(err, "tq map: stopped: task "));
	assert_non_null(strstr(err, "(sleep) timed out after 500 ms"));
	/* The run stopped: the task still running was cancelled. */
	assert_true(th_stat_reaches(e, "counters.cancelled", 1, 3000));
	free(out);
	free(err);
}

static void test_unordered_prints_as_tasks_finish(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	char *out, *err, line[256];
	assert_int_equal(map(e, "1500\n10\n700\n", "--unordered --concurrency 3 sleep", &out, &err),
	                 0);
	assert_int_equal(count_lines(out), 3);
	/* Each line names its input line; the 10 ms task cannot finish after
	 * the 1500 ms one, which started with it. */
	assert_true(line_at(out, 0, line, sizeof line));
	assert_string_equal(line, "{\"line\":2,\"result\":10}");
	assert_non_null(strstr(out, "{\"line\":1,\"result\":1500}\n"));
	assert_non_null(strstr(out, "{\"line\":3,\"result\":700}\n"));
	free(out);
	free(err);

	/* The same, ordered: input order whatever the finishing order. */
	assert_int_equal(map(e, "1500\n10\n700\n", "--concurrency 3 sleep", &out, &err), 0);
	assert_string_equal(out, "1500\n10\n700\n");
	free(out);
	free(err);
}

static void test_malformed_lines_are_reported_in_their_place(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	char *out, *err;
	const char *input = "1\n[1, 2\n3\n{\"a\":\n4\n";
	assert_int_equal(map(e, input, "double", &out, &err), 1);
	assert_string_equal(out,
	                    "2\n"
	                    "{\"error\":\"EINVAL\",\"message\":\"line 2: malformed JSON value\"}\n"
	                    "6\n"
	                    "{\"error\":\"EINVAL\",\"message\":\"line 4: malformed JSON value\"}\n"
	                    "8\n");
	free(out);
	free(err);

	assert_int_equal(map(e, input, "--unordered double", &out, &err), 1);
	assert_int_equal(count_lines(out), 5);
	assert_non_null(strstr(
	    out, "{\"line\":2,\"error\":\"EINVAL\",\"message\":\"line 2: malformed JSON value\"}"));
	assert_non_null(strstr(
	    out, "{\"line\":4,\"error\":\"EINVAL\",\"message\":\"line 4: malformed JSON value\"}"));
	assert_non_null(strstr(out, "{\"line\":5,\"result\":8}"));
	free(out);
	free(err);

	/* No input, no output. */
	assert_int_equal(map(e, "", "double", &out, &err), 0);
	assert_string_equal(out, "");
	free(out);
	free(err);
}

/* A word nested `depth` arrays deep: "[[...]]". */
static void nested(char *out, int depth)
{
	for (int i = 0; i < depth; i++)
		out[i] = '[';
	for (int i = 0; i < depth; i++)
		out[depth + i] = ']';
	out[2 * depth] = '\0';
}

static void test_a_line_the_client_refuses_is_an_error_in_its_place(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	/* Line 3 parses, but inside its argument list it is 65 deep, one more
	 * than a message may be: the client refuses to submit it.  That used
	 * to stop the run, naming it "input 1" (its index among the lines
	 * that parsed). */
	char deep[2 * 64 + 1], input[256];
	nested(deep, 64);
	snprintf(input, sizeof input, "1\n[1, 2\n%s\n4\n", deep);
	char *out, *err, line[512];
	assert_int_equal(map(e, input, "double", &out, &err), 1);
	assert_int_equal(count_lines(out), 4);
	assert_true(line_at(out, 0, line, sizeof line));
	assert_string_equal(line, "2");
	assert_true(line_at(out, 1, line, sizeof line));
	assert_string_equal(line,
	                    "{\"error\":\"EINVAL\",\"message\":\"line 2: malformed JSON value\"}");
	assert_true(line_at(out, 2, line, sizeof line));
	assert_true(strncmp(line, "{\"error\":\"EINVAL\",\"message\":\"not submitted: ", 43) == 0);
	assert_true(line_at(out, 3, line, sizeof line));
	assert_string_equal(line, "8");
	assert_null(strstr(err, "stopped"));
	free(out);
	free(err);

	/* Unordered, each error names its line in the input file. */
	assert_int_equal(map(e, input, "--unordered double", &out, &err), 1);
	assert_int_equal(count_lines(out), 4);
	assert_non_null(
	    strstr(out, "{\"line\":3,\"error\":\"EINVAL\",\"message\":\"not submitted: "));
	assert_non_null(strstr(out, "{\"line\":2,\"error\":\"EINVAL\""));
	assert_non_null(strstr(out, "{\"line\":4,\"result\":8}"));
	assert_null(strstr(out, "input 1"));
	free(out);
	free(err);
}

static void test_every_result_gets_its_line_however_deep(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	/* echo returns its argument list: for line 1 that is 64 deep, as deep
	 * as a value may be.  Unordered output used to pack it into
	 * {"line":1,"result":...}, one level too deep to write as JSON, and
	 * printed nothing for the line. */
	char deep[2 * 63 + 1], input[256], want[256];
	nested(deep, 63);
	snprintf(input, sizeof input, "%s\n1\n", deep);
	char *out, *err;
	assert_int_equal(map(e, input, "--unordered echo", &out, &err), 0);
	assert_int_equal(count_lines(out), 2);
	snprintf(want, sizeof want, "{\"line\":1,\"result\":[%s]}\n", deep);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "{\"line\":2,\"result\":[1]}\n"));
	free(out);
	free(err);

	assert_int_equal(map(e, input, "echo", &out, &err), 0);
	snprintf(want, sizeof want, "[%s]\n[1]\n", deep);
	assert_string_equal(out, want);
	free(out);
	free(err);
}

static void test_unordered_prints_bad_lines_as_they_come(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", conc4));
	/* The bad line 2 is known at once; it used to wait for the end of
	 * the run, after the 1500 ms task of line 1. */
	char *out, *err, line[256];
	assert_int_equal(map(e, "1500\n[1, 2\n", "--unordered sleep", &out, &err), 1);
	assert_int_equal(count_lines(out), 2);
	assert_true(line_at(out, 0, line, sizeof line));
	assert_string_equal(
	    line, "{\"line\":2,\"error\":\"EINVAL\",\"message\":\"line 2: malformed JSON value\"}");
	assert_true(line_at(out, 1, line, sizeof line));
	assert_string_equal(line, "{\"line\":1,\"result\":1500}");
	free(out);
	free(err);

	/* Many bad lines among good ones: each output names its own line. */
	enum { N = 600 };
	char *input = malloc(16 * N + 1), *p = input;
	for (int i = 1; i <= N; i++)
		p += i % 3 ? sprintf(p, "%d\n", i) : sprintf(p, "{\"x\":\n");
	assert_int_equal(map(e, input, "--unordered --concurrency 8 double", &out, &err), 1);
	assert_int_equal(count_lines(out), N);
	for (int i = 1; i <= N; i++) {
		char want[128];
		if (i % 3)
			snprintf(want, sizeof want, "{\"line\":%d,\"result\":%d}\n", i, 2 * i);
		else
			snprintf(want, sizeof want,
			         "{\"line\":%d,\"error\":\"EINVAL\",\"message\":\"line %d: "
			         "malformed JSON value\"}\n",
			         i, i);
		assert_non_null(strstr(out, want));
	}
	free(out);
	free(err);

	/* And ordered, each in its place. */
	assert_int_equal(map(e, input, "--concurrency 8 double", &out, &err), 1);
	const char *s = out;
	for (int i = 1; i <= N; i++) {
		char want[128];
		if (i % 3)
			snprintf(want, sizeof want, "%d\n", 2 * i);
		else
			snprintf(want, sizeof want,
			         "{\"error\":\"EINVAL\",\"message\":\"line %d: malformed JSON "
			         "value\"}\n",
			         i);
		assert_int_equal(strncmp(s, want, strlen(want)), 0);
		s += strlen(want);
	}
	assert_string_equal(s, "");
	free(out);
	free(err);
	free(input);
}

static void test_bad_map_command_lines(void **state)
{
	th_env *e = *state;
	const char *cases[][6] = {
		{ TQ_CLI_BIN, "map", NULL },
		{ TQ_CLI_BIN, "map", "--concurrency", "0", "double", NULL },
		{ TQ_CLI_BIN, "map", "--timeout", "0", "double", NULL },
		{ TQ_CLI_BIN, "map", "--on-timeout", "maybe", "double", NULL },
		{ TQ_CLI_BIN, "map", "double", "extra", NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out, *err;
		assert_int_equal(th_run(e, cases[i], 10000, &out, &err), 2);
		assert_non_null(strstr(err, "tq map: "));
		assert_non_null(strstr(err, "usage: tq map"));
		free(out);
		free(err);
	}
	const char *help[] = { TQ_CLI_BIN, "map", "--help", NULL };
	char *out, *err;
	assert_int_equal(th_run(e, help, 10000, &out, &err), 0);
	assert_non_null(strstr(out, "usage: tq map"));
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_thousand_lines_come_back_in_input_order,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_failing_and_a_timed_out_line_are_errors_in_their_place, th_setup,
		    th_teardown),
		cmocka_unit_test_setup_teardown(test_on_timeout_fail_stops_the_run, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_unordered_prints_as_tasks_finish, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_lines_are_reported_in_their_place,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_line_the_client_refuses_is_an_error_in_its_place, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_every_result_gets_its_line_however_deep,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_unordered_prints_bad_lines_as_they_come,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_bad_map_command_lines, th_setup, th_teardown),
	};
	return cmocka_run_group_tests_name("map", tests, NULL, NULL);
}
