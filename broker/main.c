/*
 * main.c - tq-broker: parses the command line and environment, runs the
 * broker until SIGTERM or SIGINT, then stops gracefully.
 */
#include "broker/broker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tqi_broker *the_broker;

static void on_signal(int sig)
{
	(void)sig;
	if (the_broker != NULL)
		tqi_broker_stop(the_broker);
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tq-broker [options]\n"
	        "\n"
	        "Routes tasks from tq clients to tq workers.\n"
	        "\n"
	        "  --clients EP       endpoint clients connect to   [$TQ_CLIENTS_ENDPOINT, "
	        "tcp://*:5555]\n"
	        "  --workers EP       endpoint workers connect to   [$TQ_WORKERS_ENDPOINT, "
	        "tcp://*:5556]\n"
	        "  --heartbeat MS     heartbeat interval            [$TQ_HEARTBEAT_MS, 250]\n"
	        "  --liveness N       silent intervals before a peer is dead [$TQ_LIVENESS, 3]\n"
	        "  --max-tasks N      tasks held at once (queued + running) [2000000]\n"
	        "  --max-payload B    largest arguments or result in bytes [16777216]\n"
	        "  --grace MS         on SIGTERM, time for running tasks to finish [5000]\n"
	        "  --max-outbox N     messages queued for a peer that does not read them, beyond\n"
	        "                     what its socket holds (1000 messages of up to 256), before\n"
	        "                     it is let go [1000000]\n"
	        "  -h, --help         this text\n"
	        "\n"
	        "Endpoints may be tcp://, ipc:// or inproc://; a tcp port of * picks a free one.\n"
	        "Log level: TQ_LOG=error|warn|info|debug.\n");
}

/* Parses a whole decimal number within [min, max]; -1 on anything else. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "tq-broker: %s %s: expected %s\n", opt, val ? val : "(missing)", want);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	tqi_broker_opts o = { 0 };
	uint64_t v;
	o.client_endpoint = getenv("TQ_CLIENTS_ENDPOINT");
	o.worker_endpoint = getenv("TQ_WORKERS_ENDPOINT");
	o.grace_ms = 5000;
	const char *env = getenv("TQ_HEARTBEAT_MS");
	if (env != NULL) {
		if (parse_u64(env, TQI_MIN_HEARTBEAT_MS, TQI_MAX_HEARTBEAT_MS, &v) != 0)
			return bad("TQ_HEARTBEAT_MS", env, "milliseconds, 10..60000");
		o.heartbeat_ms = (uint32_t)v;
	}
	env = getenv("TQ_LIVENESS");
	if (env != NULL) {
		if (parse_u64(env, 1, 100, &v) != 0)
			return bad("TQ_LIVENESS", env, "a count, 1..100");
		o.liveness = (uint32_t)v;
	}
	static const struct option longs[] = { { "clients", required_argument, 0, 'c' },
		                               { "workers", required_argument, 0, 'w' },
		                               { "heartbeat", required_argument, 0, 'b' },
		                               { "liveness", required_argument, 0, 'l' },
		                               { "max-tasks", required_argument, 0, 'm' },
		                               { "max-payload", required_argument, 0, 'p' },
		                               { "grace", required_argument, 0, 'g' },
		                               { "max-outbox", required_argument, 0, 'o' },
		                               { "help", no_argument, 0, 'h' },
		                               { 0, 0, 0, 0 } };
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.client_endpoint = optarg;
			break;
		case 'w':
			o.worker_endpoint = optarg;
			break;
		case 'b':
			if (parse_u64(optarg, TQI_MIN_HEARTBEAT_MS, TQI_MAX_HEARTBEAT_MS, &v) != 0)
				return bad("--heartbeat", optarg, "milliseconds, 10..60000");
			o.heartbeat_ms = (uint32_t)v;
			break;
		case 'l':
			if (parse_u64(optarg, 1, 100, &v) != 0)
				return bad("--liveness", optarg, "a count, 1..100");
			o.liveness = (uint32_t)v;
			break;
		case 'm':
			if (parse_u64(optarg, 1, UINT32_MAX, &v) != 0)
				return bad("--max-tasks", optarg, "a count, 1..4294967295");
			o.max_tasks = v;
			break;
		case 'p':
			if (parse_u64(optarg, 1, 1u << 30, &v) != 0)
				return bad("--max-payload", optarg, "bytes, 1..1073741824");
			o.max_payload = v;
			break;
		case 'g':
			if (parse_u64(optarg, 0, 3600000, &v) != 0)
				return bad("--grace", optarg, "milliseconds, 0..3600000");
			o.grace_ms = v;
			break;
		case 'o':
			if (parse_u64(optarg, 1, UINT32_MAX, &v) != 0)
				return bad("--max-outbox", optarg, "a count, 1..4294967295");
			o.max_outbox = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "tq-broker: unknown or incomplete option '%s'\n",
			        argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tq-broker: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	tqi_log_set_component("broker");
	tqi_broker *b;
	if (tqi_broker_new(&b, &o) != TQ_OK)
		return 1;
	the_broker = b;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	tq_err err = tqi_broker_run(b);
	the_broker = NULL;
	tqi_broker_destroy(&b);
	return err == TQ_OK ? 0 : 1;
}
