/*
 * main.c - `tq`, the command line: call, start, map, stats, demo, cancel.
 */
#include "cli/cli.h"

#include "base/log.h"
#include "proto/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tq COMMAND [options] ...\n"
	        "\n"
	        "  call FUNCTION [ARG...]   run a task and print its result (async + await)\n"
	        "  start FUNCTION [ARG...]  fire and forget: returns once the broker accepted it\n"
	        "  map FUNCTION < inputs    run FUNCTION over one argument list per line\n"
	        "  stats                    the broker's counters, workers and queues\n"
	        "  demo                     the Elixir Task lesson, step by step, measured\n"
	        "  cancel REF               an operator stops any task (the broker's --admin)\n"
	        "\n"
	        "Arguments that are JSON numbers, arrays, objects or strings are those values;\n"
	        "anything else is a string.  Results print as JSON.  Every command takes\n"
	        "--help, and all but cancel --broker EP (default $TQ_BROKER, else\n"
	        "tcp://127.0.0.1:5555); cancel takes --admin EP (default $TQ_ADMIN).\n"
	        "\n"
	        "Exit codes: 0 success, 1 the task failed, 2 usage, 3 timed out, 4 broker lost.\n");
}

int tqc_usage_error(const char *cmd, const char *use, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tq %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", use);
	return TQC_USAGE;
}

int tqc_parse_timeout(const char *s, int64_t *out)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "infinity") == 0) {
		*out = TQ_INFINITY;
		return 0;
	}
	unsigned long v;
	if (tqc_parse_count(s, 86400000UL * 365, &v) != 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

int tqc_parse_count(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

int tqc_exit_code(tq_err e)
{
	switch (e) {
	case TQ_OK:
		return TQC_OK;
	case TQ_ETIMEDOUT:
	case TQ_ENOWORKER:
		return TQC_TIMEOUT;
	case TQ_EBROKERLOST:
	case TQ_ETRANSPORT:
	case TQ_ESHUTDOWN:
	case TQ_EBUSY:
		return TQC_BROKER;
	default:
		return TQC_TASK_FAILED;
	}
}

const char *tqc_broker(const char *opt)
{
	if (opt != NULL)
		return opt;
	const char *env = getenv("TQ_BROKER");
	return env && *env ? env : "tcp://127.0.0.1:5555";
}

int tqc_connect(const char *cmd, const char *endpoint, tq_client **out)
{
	tq_client_opts co = { .broker = endpoint };
	*out = NULL;
	tq_err e = tq_client_new(out, &co);
	if (e == TQ_OK)
		return TQC_OK;
	fprintf(stderr, "tq %s: cannot use broker %s: %s\n", cmd, endpoint, tq_strerror(e));
	return e == TQ_EINVAL ? TQC_USAGE : tqc_exit_code(e);
}

const char *tqc_bad_function(const char *fn)
{
	size_t n = strlen(fn);
	if (n == 0)
		return "FUNCTION is empty";
	if (n > TQI_MAX_NAME) {
		static char why[64];
		snprintf(why, sizeof why, "FUNCTION longer than %d bytes", TQI_MAX_NAME);
		return why;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	tqi_log_set_component("tq");
	if (argc < 2) {
		usage(stderr);
		return TQC_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return TQC_OK;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = { { "call", tqc_call }, { "start", tqc_start }, { "stats", tqc_stats },
		     { "map", tqc_map },   { "demo", tqc_demo },   { "cancel", tqc_cancel } };
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "tq: unknown command '%s'\n", cmd);
	usage(stderr);
	return TQC_USAGE;
}
