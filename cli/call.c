/*
 * call.c - `tq call` (async + await, print the result) and `tq start`
 * (fire and forget).
 */
#include "cli/args.h"
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char call_usage[] =
    "usage: tq call [--broker EP] [--timeout MS|infinity] [--retries N] [--keep]\n"
    "               FUNCTION [ARG...]\n"
    "  Runs FUNCTION(ARG...) on a worker and prints its result as JSON.\n"
    "  --timeout   how long to await the result [5000]\n"
    "  --retries   re-dispatches allowed if a worker or the broker is lost [0]\n"
    "  --keep      on timeout, leave the task running instead of cancelling it\n";

static const char start_usage[] =
    "usage: tq start [--broker EP] [--timeout MS] [--retries N] FUNCTION [ARG...]\n"
    "  Submits FUNCTION(ARG...) and returns once the broker has accepted it;\n"
    "  prints the task's reference.\n"
    "  --timeout   the task's deadline: it is stopped if not done by then\n"
    "              [the broker's bound, tq-broker --max-task-time]\n"
    "  --retries   re-dispatches allowed if a worker or the broker is lost [0]\n";

typedef struct {
	const char *broker;
	int64_t timeout;
	unsigned long retries;
	int keep;
	int help;
} call_opts;

static int parse(const char *cmd, const char *use, int argc, char **argv, call_opts *o)
{
	static const struct option longs[] = {
		{ "broker", required_argument, 0, 'b' },  { "timeout", required_argument, 0, 't' },
		{ "retries", required_argument, 0, 'r' }, { "keep", no_argument, 0, 'k' },
		{ "help", no_argument, 0, 'h' },          { 0, 0, 0, 0 }
	};
	optind = 1;
	opterr = 0;
	int c;
	/* '+': stop at the function name, so task arguments may start with '-'. */
	while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->broker = optarg;
			break;
		case 't':
			if (tqc_parse_timeout(optarg, &o->timeout) != 0)
				return tqc_usage_error(
				    cmd, use, "--timeout %s: expected milliseconds or infinity",
				    optarg);
			break;
		case 'r':
			if (tqc_parse_count(optarg, 255, &o->retries) != 0)
				return tqc_usage_error(cmd, use, "--retries %s: expected 0..255",
				                       optarg);
			break;
		case 'k':
			o->keep = 1;
			break;
		case 'h':
			o->help = 1;
			return 0;
		default:
			return tqc_usage_error(cmd, use, "unknown or incomplete option '%s'",
			                       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return tqc_usage_error(cmd, use, "missing FUNCTION");
	const char *why = tqc_bad_function(argv[optind]);
	if (why != NULL)
		return tqc_usage_error(cmd, use, "%s", why);
	return 0;
}

static int connect_and_pack(const char *cmd, const call_opts *o, int argc, char **argv,
                            tq_client **c, tq_buf **args)
{
	int rc = tqc_connect(cmd, tqc_broker(o->broker), c);
	if (rc != TQC_OK)
		return rc;
	if (tq_buf_new(args) != TQ_OK ||
	    tqc_pack_argv(*args, argv + optind + 1, argc - optind - 1) != TQ_OK) {
		fprintf(stderr, "tq %s: out of memory\n", cmd);
		tq_client_destroy(c);
		tq_buf_destroy(args);
		return TQC_TASK_FAILED;
	}
	return 0;
}

int tqc_call(int argc, char **argv)
{
	call_opts o = { .timeout = TQ_DEFAULT_TIMEOUT };
	int rc = parse("call", call_usage, argc, argv, &o);
	if (rc != 0 || o.help) {
		if (o.help)
			fputs(call_usage, stdout);
		return rc;
	}
	tq_client *c;
	tq_buf *args;
	if ((rc = connect_and_pack("call", &o, argc, argv, &c, &args)) != 0)
		return rc;
	tq_task_opts to = { .retries = (unsigned)o.retries, .keep_on_timeout = o.keep != 0 };
	tq_task *t = NULL;
	tq_err e = tq_client_async(c, argv[optind], tq_buf_data(args), tq_buf_size(args), &to, &t);
	if (e == TQ_OK)
		e = tq_task_await(t, o.timeout);
	if (e == TQ_OK) {
		char *json;
		if (tq_task_result_json(t, &json) == TQ_OK) {
			printf("%s\n", json);
			free(json);
		}
	} else {
		fprintf(stderr, "tq call: %s\n",
		        t && *tq_task_error(t) ? tq_task_error(t) : tq_strerror(e));
	}
	tq_task_destroy(&t);
	tq_buf_destroy(&args);
	tq_client_destroy(&c);
	return tqc_exit_code(e);
}

int tqc_start(int argc, char **argv)
{
	call_opts o = { .timeout = 0 };
	int rc = parse("start", start_usage, argc, argv, &o);
	if (rc != 0 || o.help) {
		if (o.help)
			fputs(start_usage, stdout);
		return rc;
	}
	if (o.keep)
		return tqc_usage_error("start", start_usage, "--keep applies to call only");
	if (o.timeout < 0)
		o.timeout = 0; /* infinity: the broker's bound */
	tq_client *c;
	tq_buf *args;
	if ((rc = connect_and_pack("start", &o, argc, argv, &c, &args)) != 0)
		return rc;
	tq_task_opts to = { .timeout_ms = o.timeout, .retries = (unsigned)o.retries };
	char ref[33];
	tq_err e = tq_client_start(c, argv[optind], tq_buf_data(args), tq_buf_size(args), &to, ref);
	if (e == TQ_OK)
		printf("%s\n", ref);
	else
		fprintf(stderr, "tq start: %s not accepted: %s\n", argv[optind], tq_strerror(e));
	tq_buf_destroy(&args);
	tq_client_destroy(&c);
	return tqc_exit_code(e);
}
