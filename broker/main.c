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
	        "                     what its socket holds (64 messages of up to 256), before\n"
	        "                     it is let go [1000000]\n"
	        "  --max-connections N\n"
	        "                     clients and workers connected at once.  At start the open\n"
	        "                     file limit is raised to its hard limit (ulimit -Hn); the\n"
	        "                     broker keeps 64 descriptors of it for itself, and refuses\n"
	        "                     to start with a value that leaves it fewer.  A connection\n"
	        "                     beyond is closed at once (logged, counted in stats as\n"
	        "                     refused_connections): a tq client sees a broker it cannot\n"
	        "                     reach [the open file limit - 64]\n"
	        "  --max-task-time MS the longest any task may take, queued and running: one\n"
	        "                     submitted with no timeout, or a longer one, ends by then\n"
	        "                     (ETIMEDOUT, or ENOWORKER if no worker offers its\n"
	        "                     function), so that no task holds a worker for ever.\n"
	        "                     1000..2147483647: at least a second; at most 24.8 days,\n"
	        "                     so that every timeout a worker is told fits a signed\n"
	        "                     32-bit int [3600000, one hour]\n"
	        "  --admin EP         endpoint for operators, off by default: a peer there may\n"
	        "                     cancel any task (`tq cancel`) and read stats.  Reaching\n"
	        "                     it is the right: use ipc:// in a directory only operators\n"
	        "                     may enter (e.g. ipc:///run/tq/admin.sock), or\n"
	        "                     tcp://127.0.0.1:PORT where every local user is one\n"
	        "  --max-memory B     bytes the broker holds for tasks (about 230 each, plus\n"
	        "                     their arguments) and for replies waiting for peers that\n"
	        "                     read slowly.  A SUBMIT beyond gets EBUSY; a peer whose\n"
	        "                     replies would pass it is not reading, and is let go\n"
	        "                     [2147483648, 2 GiB]\n"
	        "  --max-client-memory B\n"
	        "                     the part of --max-memory one client's tasks (owned or\n"
	        "                     started) and replies may take, so that no one client\n"
	        "                     takes it all [a quarter of --max-memory]\n"
	        "  --max-worker-capacity N\n"
	        "                     the most tasks one worker is given at once, and the most\n"
	        "                     it may say it runs, whatever it announces (logged once\n"
	        "                     per worker when held to it): a peer that takes tasks and\n"
	        "                     never runs them keeps at most this many, until their\n"
	        "                     deadlines.  tq-worker asks for its concurrency plus about\n"
	        "                     2 ms of work, at most 256 tasks a process: a few hundred\n"
	        "                     for quick tasks on a few cores; less only costs a busy\n"
	        "                     worker round trips.  1..262140 [1024]\n"
	        "  --prefetch-timeout MS\n"
	        "                     how long a worker may sit on tasks without reporting a\n"
	        "                     result: then those it cannot have started (given since\n"
	        "                     its last result, beyond its concurrency) are taken back -\n"
	        "                     CANCEL to it, and to the front of their queue for the\n"
	        "                     other workers that offer their function, using no retry\n"
	        "                     (counted in stats as reclaimed); it gets no more than its\n"
	        "                     concurrency until its next result.  10..86400000\n"
	        "                     [4 heartbeats, and at least 1000]\n"
	        "  -h, --help         this text\n"
	        "\n"
	        "Fixed limits on what a peer may send (PROTOCOL.md section 7):\n"
	        "  STATS              10 a second per client (after 20); beyond: ERROR EBUSY or\n"
	        "                     no answer, counted as throttled\n"
	        "  ERROR answers      20 a second (after 100), all peers together\n"
	        "  chatter            a connection that sends more than 5000 commands a\n"
	        "                     second that start no work - anything but an accepted\n"
	        "                     SUBMIT or a worker's DONE: HELLO, STATS, CANCEL, PING,\n"
	        "                     refused or malformed ones - (after 50000) is shut down,\n"
	        "                     counted as cut_off\n"
	        "  READY              once per routing id: again is ERROR ESTATE, no change\n"
	        "  log lines          each kind a peer can cause: 5 a second (after 20), with\n"
	        "                     the count of those left out\n"
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
		                               { "max-connections", required_argument, 0, 'C' },
		                               { "max-task-time", required_argument, 0, 'T' },
		                               { "admin", required_argument, 0, 'A' },
		                               { "max-memory", required_argument, 0, 'M' },
		                               { "max-client-memory", required_argument, 0, 'N' },
		                               { "max-worker-capacity", required_argument, 0, 'K' },
		                               { "prefetch-timeout", required_argument, 0, 'P' },
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
		case 'T':
			if (parse_u64(optarg, TQI_MIN_MAX_TASK_TIME_MS, TQI_MAX_MAX_TASK_TIME_MS,
			              &v) != 0)
				return bad("--max-task-time", optarg,
				           "milliseconds, 1000..2147483647");
			o.max_task_time_ms = v;
			break;
		case 'A':
			o.admin_endpoint = optarg;
			break;
		case 'C':
			if (parse_u64(optarg, 1, UINT32_MAX, &v) != 0)
				return bad("--max-connections", optarg, "a count, 1..4294967295");
			o.max_connections = v;
			break;
		case 'M':
			if (parse_u64(optarg, TQI_MIN_MAX_MEMORY, UINT64_MAX / 2, &v) != 0)
				return bad("--max-memory", optarg, "bytes, at least 1048576");
			o.max_memory = v;
			break;
		case 'N':
			if (parse_u64(optarg, TQI_MIN_MAX_MEMORY, UINT64_MAX / 2, &v) != 0)
				return bad("--max-client-memory", optarg,
				           "bytes, at least 1048576");
			o.max_client_memory = v;
			break;
		case 'K':
			if (parse_u64(optarg, 1, TQI_MAX_CAPACITY, &v) != 0)
				return bad("--max-worker-capacity", optarg, "a count, 1..262140");
			o.max_worker_capacity = (uint32_t)v;
			break;
		case 'P':
			if (parse_u64(optarg, 10, 86400000, &v) != 0)
				return bad("--prefetch-timeout", optarg,
				           "milliseconds, 10..86400000");
			o.prefetch_timeout_ms = v;
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
	if (o.max_client_memory > (o.max_memory ? o.max_memory : TQI_DEFAULT_MAX_MEMORY)) {
		fprintf(stderr, "tq-broker: --max-client-memory %llu is more than --max-memory\n",
		        (unsigned long long)o.max_client_memory);
		return 2;
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
