/*
 * test_cli.c - the programs as a user runs them: `tq call` / `tq start` /
 * `tq stats` and their exit codes, --help everywhere, and a clear one-line
 * reason for every bad command line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs argv and checks its exit code; returns stdout (caller frees), and
 * stderr through *err when err is not NULL. */
static char *run(th_env *e, const char *const *argv, int want_rc, char **err)
{
	char *out, *er;
	int rc = th_run(e, argv, 20000, &out, &er);
	if (rc != want_rc)
		fprintf(stderr, "%s %s: exit %d, wanted %d\nstdout: %s\nstderr: %s\n", argv[0],
		        argv[1] ? argv[1] : "", rc, want_rc, out, er);
	assert_int_equal(rc, want_rc);
	if (err)
		*err = er;
	else
		free(er);
	return out;
}

static void test_call_prints_json_and_exit_codes_say_how_it_ended(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", NULL));
	const char *ep = e->client_ep;
	char *err;

	const char *dbl[] = { TQ_CLI_BIN, "call", "--broker", ep, "double", "21", NULL };
	char *out = run(e, dbl, 0, NULL);
	assert_string_equal(out, "42\n");
	free(out);

	/* Numbers are numbers, JSON is JSON, the rest are strings. */
	const char *echo[] = { TQ_CLI_BIN,  "call", "--broker", ep,        "echo", "hi", "[1,2]",
		               "{\"a\":1}", "2.5",  "-3",       "\"x y\"", "007x", NULL };
	out = run(e, echo, 0, NULL);
	assert_string_equal(out, "[\"hi\",[1,2],{\"a\":1},2.5,-3,\"x y\",\"007x\"]\n");
	free(out);

	const char *fail[] = { TQ_CLI_BIN, "call", "--broker", ep, "fail", "out of paper", NULL };
	out = run(e, fail, 1, &err);
	assert_non_null(strstr(err, "out of paper"));
	free(out);
	free(err);

	const char *slow[] = { TQ_CLI_BIN, "call",  "--broker", ep,  "--timeout",
		               "200",      "sleep", "3000",     NULL };
	out = run(e, slow, 3, &err);
	assert_non_null(strstr(err, "(sleep) timed out after 200 ms"));
	free(out);
	free(err);

	const char *none[] = { TQ_CLI_BIN,  "call", "--broker", ep,
		               "--timeout", "200",  "nosuch",   NULL };
	out = run(e, none, 3, &err);
	assert_non_null(strstr(err, "no worker offers 'nosuch'"));
	free(out);
	free(err);

	const char *start[] = { TQ_CLI_BIN, "start", "--broker", ep, "sleep", "10", NULL };
	out = run(e, start, 0, NULL);
	assert_int_equal(strlen(out), 33); /* a reference and a newline */
	free(out);

	const char *stats[] = { TQ_CLI_BIN, "stats", "--broker", ep, NULL };
	out = run(e, stats, 0, NULL);
	assert_non_null(strstr(out, "workers: 1"));
	assert_non_null(strstr(out, "w1"));
	assert_non_null(strstr(out, "completed"));
	free(out);

	const char *json[] = { TQ_CLI_BIN, "stats", "--json", "--broker", ep, NULL };
	out = run(e, json, 0, NULL);
	assert_non_null(strstr(out, "\"counters\":{"));
	free(out);
}

static void test_no_broker_is_exit_4(void **state)
{
	th_env *e = *state;
	/* Nothing listens there: the call fails after the broker timeout,
	 * not after its own (longer) timeout. */
	const char *call[] = { TQ_CLI_BIN,  "call",  "--broker", "tcp://127.0.0.1:9",
		               "--timeout", "20000", "double",   "1",
		               NULL };
	char *err;
	uint64_t t0 = th_now_ms();
	char *out = run(e, call, 4, &err);
	assert_true(th_now_ms() - t0 < 15000);
	assert_non_null(strstr(err, "was lost with the broker"));
	free(out);
	free(err);
	const char *stats[] = { TQ_CLI_BIN,  "stats", "--broker", "tcp://127.0.0.1:9",
		                "--timeout", "300",   NULL };
	out = run(e, stats, 4, &err);
	assert_non_null(strstr(err, "no answer from the broker"));
	free(out);
	free(err);
	/* No broker at the admin endpoint: said so, after --timeout. */
	const char *cancel[] = { TQ_CLI_BIN,
		                 "cancel",
		                 "--admin",
		                 "tcp://127.0.0.1:9",
		                 "--timeout",
		                 "300",
		                 "0123456789abcdef0123456789abcdef",
		                 NULL };
	out = run(e, cancel, 4, &err);
	assert_non_null(strstr(err, "no answer from the admin endpoint tcp://127.0.0.1:9"));
	free(out);
	free(err);
	/* An ipc:// endpoint with no socket there: said so at once. */
	const char *noipc[] = { TQ_CLI_BIN,
		                "cancel",
		                "--admin",
		                "ipc:///nonexistent/a.sock",
		                "0123456789abcdef0123456789abcdef",
		                NULL };
	out = run(e, noipc, 4, &err);
	assert_non_null(strstr(err, "cannot reach the admin endpoint ipc:///nonexistent/a.sock"));
	free(out);
	free(err);
}

static void test_help_everywhere(void **state)
{
	th_env *e = *state;
	const char *cmds[][4] = {
		{ TQ_CLI_BIN, "--help", NULL, NULL },     { TQ_CLI_BIN, "call", "--help", NULL },
		{ TQ_CLI_BIN, "start", "--help", NULL },  { TQ_CLI_BIN, "stats", "--help", NULL },
		{ TQ_CLI_BIN, "cancel", "--help", NULL }, { TQ_BROKER_BIN, "--help", NULL, NULL },
		{ TQ_WORKER_BIN, "--help", NULL, NULL }
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		char *out = run(e, cmds[i], 0, NULL);
		assert_non_null(strstr(out, "usage:"));
		free(out);
	}
}

static void test_bad_command_lines_get_a_reason_and_the_usage(void **state)
{
	th_env *e = *state;
	unsetenv("TQ_ADMIN"); /* `tq cancel REF` alone then names no endpoint */
	const char *cases[][8] = {
		{ TQ_CLI_BIN, NULL },
		{ TQ_CLI_BIN, "frobnicate", NULL },
		{ TQ_CLI_BIN, "call", NULL },
		{ TQ_CLI_BIN, "call", "--timeout", "soon", "double", "1", NULL },
		{ TQ_CLI_BIN, "call", "--retries", "300", "double", "1", NULL },
		{ TQ_CLI_BIN, "call", "--bogus", "double", NULL },
		{ TQ_CLI_BIN, "start", "--keep", "double", "1", NULL },
		{ TQ_CLI_BIN, "stats", "extra", NULL },
		{ TQ_CLI_BIN, "cancel", "--admin", "ipc:///nonexistent/a.sock", NULL },
		{ TQ_CLI_BIN, "cancel", "--admin", "ipc:///nonexistent/a.sock", "3f2a1b0c", NULL },
		{ TQ_CLI_BIN, "cancel", "--admin", "ipc:///nonexistent/a.sock",
		  "0123456789abcdef0123456789abcdeg", NULL },
		{ TQ_CLI_BIN, "cancel", "--admin", "ipc:///nonexistent/a.sock",
		  "0123456789abcdef0123456789abcdef0", NULL },
		{ TQ_CLI_BIN, "cancel", "--grace", "soon", "--admin", "ipc:///nonexistent/a.sock",
		  "0123456789abcdef0123456789abcdef", NULL },
		/* no endpoint */
		{ TQ_CLI_BIN, "cancel", "0123456789abcdef0123456789abcdef", NULL },
		{ TQ_BROKER_BIN, "--max-task-time", "999", NULL },
		{ TQ_BROKER_BIN, "--max-task-time", "2147483648", NULL },
		{ TQ_BROKER_BIN, "--heartbeat", "fast", NULL },
		{ TQ_BROKER_BIN, "--liveness", "0", NULL },
		{ TQ_BROKER_BIN, "--max-tasks", "-5", NULL },
		{ TQ_BROKER_BIN, "stray", NULL },
		{ TQ_WORKER_BIN, "--concurrency", "0", NULL },
		{ TQ_WORKER_BIN, "--plugin", "/nonexistent/x.so", NULL },
		{ TQ_WORKER_BIN, "--prefetch", "lots", NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *err;
		char *out = run(e, cases[i], 2, &err);
		assert_true(strlen(err) > 0);
		/* One line of reason, then (except for a missing plugin) the usage. */
		assert_true(strchr(err, '\n') != NULL);
		free(out);
		free(err);
	}
	/* A bad endpoint is refused with a clear reason too. */
	const char *badep[] = { TQ_BROKER_BIN, "--clients", "nonsense://x", NULL };
	char *err;
	char *out = run(e, badep, 1, &err);
	assert_non_null(strstr(err, "cannot bind nonsense://x"));
	free(out);
	free(err);
}

static void test_every_command_says_why_it_cannot_use_the_broker(void **state)
{
	th_env *e = *state;
	/* One helper for all: the library's reason, not a guess. */
	const char *cmds[] = { "call", "start", "map", "stats", "demo" };
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		const char *argv[] = { TQ_CLI_BIN,
			               cmds[i],
			               "--broker",
			               "nonsense://x",
			               strcmp(cmds[i], "stats") && strcmp(cmds[i], "demo")
			                   ? "double"
			                   : NULL,
			               NULL };
		char *err, want[128];
		char *out = run(e, argv, 2, &err);
		snprintf(want, sizeof want,
		         "tq %s: cannot use broker nonsense://x: invalid argument\n", cmds[i]);
		assert_non_null(strstr(err, want));
		free(out);
		free(err);
	}
}

static void test_function_names_are_checked_before_anything_runs(void **state)
{
	th_env *e = *state;
	char longname[300];
	memset(longname, 'f', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	/* `tq map ''` said "out of memory" (and leaked), a long name was
	 * guessed from a copy of the limit. */
	const char *cases[][2] = {
		{ "map", "" }, { "call", "" }, { "map", longname }, { "call", longname }
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *argv[] = { TQ_CLI_BIN,   cases[i][0], "--broker",
			               e->client_ep, cases[i][1], NULL };
		char *err;
		char *out = run(e, argv, 2, &err);
		assert_non_null(strstr(err, *cases[i][1] ? "FUNCTION longer than 255 bytes"
		                                         : "FUNCTION is empty"));
		assert_non_null(strstr(err, "usage: tq "));
		assert_null(strstr(err, "out of memory"));
		free(out);
		free(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_call_prints_json_and_exit_codes_say_how_it_ended, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_no_broker_is_exit_4, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_help_everywhere, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_bad_command_lines_get_a_reason_and_the_usage,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_every_command_says_why_it_cannot_use_the_broker, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_function_names_are_checked_before_anything_runs, th_setup, th_teardown),
	};
	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
