/*
 * probe.c - tq-compose-probe, the compose tests' client: it runs in a
 * container of the test's private network and prints what it sees as
 * plain lines that a shell script can read without a JSON parser.
 *
 *   tq-compose-probe idle
 *       waits for a signal: the test's client container runs it, and the
 *       test script runs the other commands in that container.
 *   tq-compose-probe stats
 *       instance HEX / workers N / worker NAME LOAD CAPACITY DRAINING /
 *       counter NAME VALUE; exit 4 when the broker does not answer.
 *   tq-compose-probe run [--count N] [--retries N] [--timeout MS]
 *                        [--stagger MS] [--linger PATH] FUNCTION [ARG...]
 *       submits COUNT tasks of FUNCTION(ARG...), one every STAGGER ms, each
 *       with the deadline TIMEOUT (an integer ARG is an integer, others are
 *       strings), and prints for each, once all have ended or TIMEOUT plus
 *       5 s has passed since the last submission:
 *         task I STATUS WORKER ATTEMPT SUBMIT END ELAPSED RESULT-OR-ERROR
 *       STATUS is OK, the error's name (EWORKERLOST, ...), or RUNNING for a
 *       task that had not ended; SUBMIT and END are wall-clock milliseconds
 *       since the epoch (comparable with the host's `date +%s%3N`); then
 *         done ELAPSED-MS
 *         strays N      (replies the client dropped: late or duplicate)
 *       With --linger, the client stays connected after `done`, reading
 *       what the broker sends it (a STATS round trip every 100 ms), until
 *       PATH exists (see release; at most 5 minutes); one more round trip,
 *       and strays come after it: so a late reply that arrives after the
 *       tasks ended is counted.
 *   tq-compose-probe release PATH
 *       creates PATH: ends a lingering run's wait.
 *
 * The broker is $TQ_BROKER (or --broker EP before the command's options).
 * Every outcome is printed, success or not: the test script judges them.
 */
#include "tq/client.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MAX_TASKS = 1000, SLACK_MS = 5000 };

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage(void)
{
	fprintf(stderr, "usage: tq-compose-probe [--broker EP] idle | stats | release PATH | run "
	                "[--count N] [--retries N] [--timeout MS] [--stagger MS] [--linger PATH] "
	                "FUNCTION [ARG...]\n");
	return 2;
}

static int parse_ms(const char *s, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ---- stats -------------------------------------------------------------- */

static uint64_t get_uint(tq_reader m, const char *k)
{
	tq_reader v;
	uint64_t u = 0;
	if (tq_read_find(&m, k, &v) == TQ_OK)
		tq_read_uint(&v, &u);
	return u;
}

static void print_str(tq_reader m, const char *k)
{
	tq_reader v;
	const char *s = "-";
	size_t len = 1;
	if (tq_read_find(&m, k, &v) == TQ_OK && tq_read_str(&v, &s, &len) == TQ_OK && len == 0)
		s = "-", len = 1;
	printf("%.*s", (int)len, s);
}

static int cmd_stats(tq_client *c)
{
	uint8_t *data;
	size_t len;
	tq_err e = tq_client_stats(c, 2000, &data, &len);
	if (e != TQ_OK) {
		fprintf(stderr, "tq-compose-probe: no stats from %s: %s\n", tq_client_broker(c),
		        tq_errname(e));
		return 4;
	}
	tq_reader m, v;
	uint32_t n;
	tq_reader_init(&m, data, len);
	printf("instance ");
	print_str(m, "instance");
	printf("\n");
	if (tq_read_find(&m, "workers", &v) == TQ_OK && tq_read_array(&v, &n) == TQ_OK) {
		printf("workers %u\n", n);
		for (uint32_t i = 0; i < n; i++) {
			tq_reader d;
			bool draining = false;
			if (tq_read_find(&v, "draining", &d) == TQ_OK)
				tq_read_bool(&d, &draining);
			printf("worker ");
			print_str(v, "name");
			printf(" %llu %llu %d\n", (unsigned long long)get_uint(v, "load"),
			       (unsigned long long)get_uint(v, "capacity"), draining);
			if (tq_read_skip(&v) != TQ_OK)
				break;
		}
	}
	if (tq_read_find(&m, "counters", &v) == TQ_OK && tq_read_map(&v, &n) == TQ_OK) {
		for (uint32_t i = 0; i < n; i++) {
			const char *k;
			size_t kl;
			uint64_t u = 0;
			if (tq_read_str(&v, &k, &kl) != TQ_OK || tq_read_uint(&v, &u) != TQ_OK)
				break;
			printf("counter %.*s %llu\n", (int)kl, k, (unsigned long long)u);
		}
	}
	free(data);
	return 0;
}

/* ---- run ---------------------------------------------------------------- */

typedef struct {
	tq_task *task;
	tq_err outcome;
	int64_t submit_ms, end_ms;
} probe_task;

static tq_err pack_args(tq_buf *b, char **argv, int argc)
{
	tq_pack_array(b, (uint32_t)argc);
	for (int i = 0; i < argc; i++) {
		char *end;
		errno = 0;
		long long v = strtoll(argv[i], &end, 10);
		if (argv[i][0] != '\0' && *end == '\0' && errno == 0)
			tq_pack_int(b, v);
		else
			tq_pack_str(b, argv[i]);
	}
	return tq_buf_error(b);
}

/* Waits up to wait_ms for the tasks still running, noting when each ends. */
static void collect(probe_task *pt, int n, int64_t wait_ms)
{
	tq_task *pending[MAX_TASKS];
	int which[MAX_TASKS], np = 0;
	tq_err out[MAX_TASKS];
	for (int i = 0; i < n; i++)
		if (pt[i].task != NULL && pt[i].outcome == TQ_ERUNNING) {
			pending[np] = pt[i].task;
			which[np++] = i;
		}
	if (np == 0)
		return;
	/* Short rounds, so that each task's end is seen within ~10 ms. */
	int64_t until = wall_ms() + wait_ms;
	do {
		if (tq_yield_many(pending, (size_t)np, 10, out) != TQ_OK)
			return;
		int64_t now = wall_ms();
		int k = 0;
		for (int j = 0; j < np; j++) {
			if (out[j] != TQ_ERUNNING) {
				pt[which[j]].outcome = out[j];
				pt[which[j]].end_ms = now;
			} else {
				pending[k] = pending[j];
				which[k++] = which[j];
			}
		}
		np = k;
	} while (np > 0 && wall_ms() < until);
}

/* One STATS round trip: whatever the broker sent this client before its
 * reply has been read (and a reply for no pending task counted a stray). */
static void round_trip(tq_client *c)
{
	uint8_t *data;
	size_t len;
	if (tq_client_stats(c, 2000, &data, &len) == TQ_OK)
		free(data);
}

/* Keeps the client reading until `path` exists, then one more round trip. */
static void linger_until(tq_client *c, const char *path)
{
	int64_t until = wall_ms() + 300000;
	while (access(path, F_OK) != 0 && wall_ms() < until) {
		round_trip(c);
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	round_trip(c);
}

static int cmd_release(int argc, char **argv)
{
	if (argc != 2)
		return usage();
	FILE *f = fopen(argv[1], "w");
	if (f == NULL) {
		fprintf(stderr, "tq-compose-probe: cannot create %s: %s\n", argv[1],
		        strerror(errno));
		return 1;
	}
	fclose(f);
	return 0;
}

static int cmd_run(tq_client *c, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "count", required_argument, 0, 'n' },   { "retries", required_argument, 0, 'r' },
		{ "timeout", required_argument, 0, 't' }, { "stagger", required_argument, 0, 's' },
		{ "linger", required_argument, 0, 'l' },  { 0, 0, 0, 0 }
	};
	long count = 1, retries = 0, timeout = 10000, stagger = 0;
	const char *linger = NULL;
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+", longs, NULL)) != -1) {
		if (ch == '?')
			return usage();
		if (ch == 'l') {
			linger = optarg;
			continue;
		}
		long *into = ch == 'n'   ? &count
		             : ch == 'r' ? &retries
		             : ch == 't' ? &timeout
		                         : &stagger;
		if (parse_ms(optarg, 86400000, into) != 0)
			return usage();
	}
	if (optind >= argc || count < 1 || count > MAX_TASKS || retries > 255 || timeout < 1)
		return usage();
	const char *fn = argv[optind];
	tq_buf *args;
	if (tq_buf_new(&args) != TQ_OK || pack_args(args, argv + optind + 1, argc - optind - 1))
		return 1;
	probe_task *pt = calloc((size_t)count, sizeof *pt);
	if (pt == NULL)
		return 1;
	tq_task_opts o = { .timeout_ms = timeout, .retries = (unsigned)retries };
	int64_t start = wall_ms();
	for (int i = 0; i < count; i++) {
		pt[i].submit_ms = wall_ms();
		pt[i].outcome =
		    tq_client_async(c, fn, tq_buf_data(args), tq_buf_size(args), &o, &pt[i].task);
		if (pt[i].outcome == TQ_OK)
			pt[i].outcome = TQ_ERUNNING;
		else
			pt[i].end_ms = pt[i].submit_ms; /* not submitted: the error is its end */
		/* Pump while waiting to submit the next, so ends are seen on time. */
		if (stagger > 0 && i + 1 < count)
			collect(pt, i + 1, stagger);
	}
	collect(pt, (int)count, timeout + SLACK_MS);
	for (int i = 0; i < count; i++) {
		tq_task *t = pt[i].task;
		const char *w = t != NULL && *tq_task_worker(t) ? tq_task_worker(t) : "-";
		printf("task %d %s %s %u %lld %lld %lld ", i,
		       pt[i].outcome == TQ_OK ? "OK" : tq_errname(pt[i].outcome), w,
		       t != NULL ? tq_task_attempt(t) : 0, (long long)pt[i].submit_ms,
		       (long long)pt[i].end_ms,
		       pt[i].end_ms ? (long long)(pt[i].end_ms - pt[i].submit_ms) : -1LL);
		char *json = NULL;
		if (pt[i].outcome == TQ_OK && tq_task_result_json(t, &json) == TQ_OK)
			printf("%s\n", json);
		else
			printf("%s\n", t != NULL ? tq_task_error(t) : tq_strerror(pt[i].outcome));
		free(json);
		tq_task_destroy(&pt[i].task);
	}
	printf("done %lld\n", (long long)(wall_ms() - start));
	if (linger != NULL)
		linger_until(c, linger);
	printf("strays %llu\n", (unsigned long long)tq_client_strays(c));
	free(pt);
	tq_buf_destroy(&args);
	return 0;
}

int main(int argc, char **argv)
{
	const char *broker = NULL;
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "--broker") == 0) {
		broker = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		return usage();
	if (strcmp(argv[i], "release") == 0)
		return cmd_release(argc - i, argv + i);
	if (strcmp(argv[i], "idle") == 0) {
		/* Ends on SIGTERM's default action, which the init process of
		 * the container forwards. */
		for (;;)
			pause();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	tq_client_opts co = { .broker = broker };
	tq_client *c;
	tq_err ce = tq_client_new(&c, &co);
	if (ce != TQ_OK) {
		fprintf(stderr, "tq-compose-probe: cannot connect to %s: %s\n", broker,
		        tq_strerror(ce));
		return 2;
	}
	int rc;
	if (strcmp(argv[i], "stats") == 0)
		rc = cmd_stats(c);
	else if (strcmp(argv[i], "run") == 0)
		rc = cmd_run(c, argc - i, argv + i);
	else
		rc = usage();
	tq_client_destroy(&c);
	return rc;
}
