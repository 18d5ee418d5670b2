/*
 * map.c - `tq map`: runs a function over one argument list per input line
 * with async_stream, and writes one JSON line per input line, in order (or
 * as they finish, with --unordered).  Lines are read only as tasks can be
 * submitted, so the input may be endless.  On a terminal, a progress line
 * on stderr shows done/total, rate, ETA and failures.
 */
#include "cli/args.h"
#include "cli/cli.h"
#include "tq/stream.h"

#include "base/clock.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char map_usage[] =
    "usage: tq map [--broker EP] [--concurrency N] [--unordered] [--timeout MS|infinity]\n"
    "              [--on-timeout fail|kill] [--retries N] [--fail-fast] FUNCTION < inputs\n"
    "  Runs FUNCTION over the argument list on each input line (words as in tq call;\n"
    "  a JSON array, object or string may contain blanks) and prints one JSON line\n"
    "  per input line: the result, or {\"error\":NAME,\"message\":TEXT}.\n"
    "  --concurrency  tasks at once [the slots of the workers that offer FUNCTION]\n"
    "  --unordered    print as tasks finish: {\"line\":N,\"result\":...}\n"
    "  --timeout      per task, from its submission [5000]\n"
    "  --on-timeout   fail: a timeout stops the run; kill: it is that line's error [kill]\n"
    "  --fail-fast    stop at the first failed line\n";

/* A line that could not be parsed.  It is still an input, with nothing
 * packed: the stream refuses it (a TQ_EINVAL item, no task) and yields it
 * in its place - in order, or at once when unordered - so every line is
 * input `line - 1` and the stream's window bounds what waits here. */
typedef struct {
	size_t index; /* the input's index: its line - 1 */
	const char *why;
} bad_line;

typedef struct {
	FILE *in;
	char *buf;
	size_t cap;
	size_t lines;  /* read so far: line n is input n - 1 */
	bad_line *bad; /* bad lines whose items are not yet printed */
	size_t nbad, capbad;
	size_t bad_total; /* bad lines read */
} reader;

/* Remembers that input `index` is a bad line; -1 when out of memory. */
static int note_bad(reader *r, size_t index, const char *why)
{
	if (r->nbad == r->capbad) {
		size_t cap = r->capbad ? r->capbad * 2 : 16;
		bad_line *b = realloc(r->bad, cap * sizeof *b);
		if (b == NULL)
			return -1;
		r->bad = b;
		r->capbad = cap;
	}
	r->bad[r->nbad++] = (bad_line){ index, why ? why : "unreadable" };
	r->bad_total++;
	return 0;
}

/* One input per line: its argument list, or nothing for a bad line. */
static int next_input(void *arg, tq_buf *args)
{
	reader *r = arg;
	ssize_t n = getline(&r->buf, &r->cap, r->in);
	if (n < 0)
		return 0;
	r->lines++;
	while (n > 0 && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r'))
		n--;
	const char *why = NULL;
	if (tqc_pack_line(args, r->buf, (size_t)n, &why) == TQ_OK)
		return 1;
	tq_buf_reset(args); /* nothing: the stream refuses it */
	return note_bad(r, r->lines - 1, why) == 0 ? 1 : -1;
}

/* If `it` is a bad line's item, forgets the line and returns why it is
 * bad; else NULL.  Only refused items can be, and at most
 * the stream's window of bad lines wait here. */
static const char *take_bad(reader *r, const tq_stream_item *it)
{
	if (it->outcome != TQ_EINVAL || it->worker[0] != '\0')
		return NULL;
	for (size_t i = 0; i < r->nbad; i++) {
		if (r->bad[i].index == it->index) {
			const char *why = r->bad[i].why;
			r->bad[i] = r->bad[--r->nbad];
			return why;
		}
	}
	return NULL;
}

/* Every input line gets exactly one output line: each printer below
 * prints one, falling back to an error object when its value cannot be
 * written as JSON. */

static void print_error(tq_buf *b, bool unordered, size_t line, tq_err code, const char *msg)
{
	tq_buf_reset(b);
	tq_pack_map(b, unordered ? 3 : 2);
	if (unordered) {
		tq_pack_str(b, "line");
		tq_pack_uint(b, line);
	}
	tq_pack_str(b, "error");
	tq_pack_str(b, tq_errname(code));
	tq_pack_str(b, "message");
	tq_pack_str(b, msg);
	char *json;
	if (tq_value_to_json(tq_buf_data(b), tq_buf_size(b), &json) == TQ_OK) {
		printf("%s\n", json);
		free(json);
		return;
	}
	/* Out of memory, most likely: the same shape, from text that needs
	 * no escaping. */
	if (unordered)
		printf("{\"line\":%zu,", line);
	else
		putchar('{');
	printf("\"error\":\"%s\",\"message\":\"error not representable as JSON\"}\n",
	       tq_errname(code));
}

static void print_result(tq_buf *b, bool unordered, size_t line, const tq_stream_item *it)
{
	char *json;
	tq_err e = tq_value_to_json(it->result, it->len, &json);
	if (e != TQ_OK) {
		print_error(b, unordered, line, e, "result not representable as JSON");
		return;
	}
	/* Written around the result's text rather than packed into a map:
	 * a map would nest the result one level deeper than it came, past
	 * what a value may be for a result as deep as allowed. */
	if (unordered)
		printf("{\"line\":%zu,\"result\":%s}\n", line, json);
	else
		printf("%s\n", json);
	free(json);
}

static void print_item(tq_buf *b, bool unordered, size_t line, const tq_stream_item *it)
{
	if (it->outcome != TQ_OK)
		print_error(b, unordered, line, it->outcome, it->error);
	else
		print_result(b, unordered, line, it);
}

/* Lines in a regular file, counted without keeping them; 0 if unknown. */
static size_t count_lines(FILE *in)
{
	struct stat st;
	if (fstat(fileno(in), &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	off_t start = ftello(in);
	size_t n = 0;
	int c, last = '\n';
	while ((c = getc(in)) != EOF) {
		if (c == '\n')
			n++;
		last = c;
	}
	if (last != '\n')
		n++;
	clearerr(in);
	fseeko(in, start, SEEK_SET);
	return n;
}

static void progress(size_t done, size_t total, size_t failed, uint64_t t0, bool final)
{
	double secs = (double)(tqi_now_ms() - t0) / 1000.0;
	double rate = secs > 0 ? (double)done / secs : 0;
	char eta[32] = "";
	if (total > done && rate > 0)
		snprintf(eta, sizeof eta, "  ETA %.0fs", (double)(total - done) / rate);
	if (total > 0)
		fprintf(stderr, "\r  %zu/%zu  %.0f/s%s  failures %zu   ", done, total, rate, eta,
		        failed);
	else
		fprintf(stderr, "\r  %zu done  %.0f/s  failures %zu   ", done, rate, failed);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

int tqc_map(int argc, char **argv)
{
	static const struct option longs[] = { { "broker", required_argument, 0, 'b' },
		                               { "concurrency", required_argument, 0, 'c' },
		                               { "unordered", no_argument, 0, 'u' },
		                               { "timeout", required_argument, 0, 't' },
		                               { "on-timeout", required_argument, 0, 'o' },
		                               { "retries", required_argument, 0, 'r' },
		                               { "fail-fast", no_argument, 0, 'f' },
		                               { "help", no_argument, 0, 'h' },
		                               { 0, 0, 0, 0 } };
	const char *broker = NULL;
	tq_stream_opts so = { .on_timeout = TQ_ON_TIMEOUT_KILL_TASK };
	unsigned long v;
	int fail_fast = 0, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
		switch (c) {
		case 'b':
			broker = optarg;
			break;
		case 'c':
			if (tqc_parse_count(optarg, 100000, &v) != 0 || v == 0)
				return tqc_usage_error("map", map_usage,
				                       "--concurrency %s: expected 1..100000",
				                       optarg);
			so.max_concurrency = (unsigned)v;
			break;
		case 'u':
			so.unordered = true;
			break;
		case 't':
			if (tqc_parse_timeout(optarg, &so.timeout_ms) != 0 || so.timeout_ms == 0)
				return tqc_usage_error(
				    "map", map_usage,
				    "--timeout %s: expected milliseconds or infinity", optarg);
			break;
		case 'o':
			if (strcmp(optarg, "fail") == 0)
				so.on_timeout = TQ_ON_TIMEOUT_EXIT;
			else if (strcmp(optarg, "kill") == 0)
				so.on_timeout = TQ_ON_TIMEOUT_KILL_TASK;
			else
				return tqc_usage_error("map", map_usage,
				                       "--on-timeout %s: expected fail or kill",
				                       optarg);
			break;
		case 'r':
			if (tqc_parse_count(optarg, 255, &v) != 0)
				return tqc_usage_error("map", map_usage,
				                       "--retries %s: expected 0..255", optarg);
			so.retries = (unsigned)v;
			break;
		case 'f':
			fail_fast = 1;
			break;
		case 'h':
			fputs(map_usage, stdout);
			return TQC_OK;
		default:
			return tqc_usage_error("map", map_usage,
			                       "unknown or incomplete option '%s'",
			                       argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return tqc_usage_error("map", map_usage,
		                       optind >= argc ? "missing FUNCTION" : "one FUNCTION only");
	const char *fn = argv[optind];
	const char *why = tqc_bad_function(fn);
	if (why != NULL)
		return tqc_usage_error("map", map_usage, "%s", why);
	tq_client *cl;
	int rc = tqc_connect("map", tqc_broker(broker), &cl);
	if (rc != TQC_OK)
		return rc;
	reader r = { .in = stdin };
	bool tty = isatty(STDERR_FILENO);
	size_t total = tty ? count_lines(stdin) : 0;
	tq_stream *s = NULL;
	tq_buf *out = NULL;
	tq_err e = tq_buf_new(&out);
	if (e == TQ_OK)
		e = tq_client_async_stream(cl, fn, next_input, &r, &so, &s);
	if (e != TQ_OK) {
		fprintf(stderr, "tq map: cannot start: %s\n", tq_strerror(e));
		tq_buf_destroy(&out);
		tq_client_destroy(&cl);
		return e == TQ_EINVAL ? TQC_USAGE : tqc_exit_code(e);
	}
	uint64_t t0 = tqi_now_ms(), last = 0;
	size_t done = 0, failed = 0;
	tq_err first_failure = TQ_OK;
	bool stopped = false;
	tq_stream_item it;
	while ((e = tq_stream_next(s, &it)) == TQ_OK) {
		size_t line = it.index + 1;
		const char *bad = take_bad(&r, &it);
		done++;
		failed += it.outcome != TQ_OK;
		if (bad != NULL) {
			/* Reported, never run: no task failed. */
			char msg[128];
			snprintf(msg, sizeof msg, "line %zu: %s", line, bad);
			print_error(out, so.unordered, line, TQ_EINVAL, msg);
		} else {
			print_item(out, so.unordered, line, &it);
			if (it.outcome != TQ_OK && first_failure == TQ_OK)
				first_failure = it.outcome;
			if (it.outcome != TQ_OK && fail_fast) {
				stopped = true;
				break;
			}
		}
		if (tty && tqi_now_ms() - last >= 100) {
			progress(done, total, failed, t0, false);
			last = tqi_now_ms();
		}
	}
	fflush(stdout);
	if (tty)
		progress(done, total, failed, t0, true);
	if (e != TQ_OK && e != TQ_EEND) {
		fprintf(stderr, "tq map: stopped: %s\n",
		        *tq_stream_error(s) ? tq_stream_error(s) : tq_strerror(e));
		rc = tqc_exit_code(e);
	} else if (first_failure != TQ_OK || r.bad_total > 0) {
		if (stopped)
			fprintf(stderr, "tq map: stopped at the first failure (--fail-fast)\n");
		rc = first_failure != TQ_OK ? tqc_exit_code(first_failure) : TQC_TASK_FAILED;
	}
	tq_stream_destroy(&s);
	tq_buf_destroy(&out);
	free(r.buf);
	free(r.bad);
	tq_client_destroy(&cl);
	return rc;
}
