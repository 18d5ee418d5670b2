/*
 * test_plugin.c - functions the integration tests load into tq-worker with
 * --plugin, to observe what happens inside a worker:
 *
 *   span MS          sleeps MS, returns [start_us, end_us, worker name]
 *                    (CLOCK_MONOTONIC is shared by processes on one host)
 *   pid              returns the executor's pid
 *   touch PATH MS    sleeps MS, then creates PATH; returns true
 *   mark PATH MS     creates PATH, then sleeps MS; returns MS (the file says
 *                    "it is running now")
 *   stubborn MS      ignores SIGTERM, sleeps MS, returns MS
 *   pidfile PATH MS  writes the executor's pid to PATH (whole: through a
 *                    rename), then sleeps MS; returns MS (the file says
 *                    "this process runs it now")
 *   tally PATH       appends a byte to PATH, then aborts (SIGABRT): the
 *                    file's size counts the runs of a crashing handler
 *   segv             dereferences NULL
 *   left             returns [tq_ctx_time_left_ms, now_ms] (now on
 *                    CLOCK_MONOTONIC, as the tests' clock)
 *   big N            returns N bytes (bin), byte i being (uint8_t)(i * 7 + 1)
 *   forge HOW        plays a handler that wrote over its executor: writes a
 *                    malformed result frame and a well-formed one ("forged")
 *                    to the executor's socket in one writev, then, HOW "wait",
 *                    sleeps 10 s and returns "genuine", or, HOW "exit",
 *                    exits with status 3; HOW "ticket" instead sets its own
 *                    ticket (the only RUNNING one, with --concurrency 1)
 *                    DONE with a length past the ticket's end, then sleeps
 *                    10 s; HOW "behind" waits (up to 5 s) for tasks behind it
 *                    in its pipe, sets their tickets FREE and returns how many
 */
#include "tq/worker.h"
#include "worker/tickets.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static tq_err read_ms(tq_reader *args, tq_ctx *ctx, uint32_t want_args, int64_t *ms)
{
	uint32_t n;
	if (tq_read_array(args, &n) != TQ_OK || n != want_args)
		return tq_ctx_fail(ctx, "%s: wrong number of arguments", tq_ctx_function(ctx));
	if (want_args == 2) {
		const char *s;
		size_t len;
		if (tq_read_str(args, &s, &len) != TQ_OK)
			return tq_ctx_fail(ctx, "expected a path");
	}
	if (tq_read_int(args, ms) != TQ_OK || *ms < 0)
		return tq_ctx_fail(ctx, "expected milliseconds");
	return TQ_OK;
}

static tq_err span(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	int64_t ms;
	if (read_ms(args, ctx, 1, &ms) != TQ_OK)
		return TQ_EFAILED;
	uint64_t start = now_us();
	sleep_ms(ms);
	tq_pack_array(reply, 3);
	tq_pack_uint(reply, start);
	tq_pack_uint(reply, now_us());
	return tq_pack_str(reply, tq_ctx_worker(ctx));
}

static tq_err pid(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)args;
	(void)ctx;
	return tq_pack_int(reply, getpid());
}

static tq_err touch(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	uint32_t n;
	const char *s;
	size_t len;
	int64_t ms;
	if (tq_read_array(args, &n) != TQ_OK || n != 2 || tq_read_str(args, &s, &len) != TQ_OK ||
	    tq_read_int(args, &ms) != TQ_OK || len >= 512)
		return tq_ctx_fail(ctx, "usage: touch PATH MS");
	char path[512];
	memcpy(path, s, len);
	path[len] = '\0';
	sleep_ms(ms);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return tq_ctx_fail(ctx, "cannot create %s", path);
	close(fd);
	return tq_pack_bool(reply, true);
}

static tq_err mark(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	uint32_t n;
	const char *s;
	size_t len;
	int64_t ms;
	if (tq_read_array(args, &n) != TQ_OK || n != 2 || tq_read_str(args, &s, &len) != TQ_OK ||
	    tq_read_int(args, &ms) != TQ_OK || len >= 512)
		return tq_ctx_fail(ctx, "usage: mark PATH MS");
	char path[512];
	memcpy(path, s, len);
	path[len] = '\0';
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd >= 0)
		close(fd);
	sleep_ms(ms);
	return tq_pack_int(reply, ms);
}

/* Reads [PATH, ...] into path (NUL-terminated); n is the array's length
 * wanted.  -1 when the arguments are not that. */
static int read_path(tq_reader *args, uint32_t want, char *path, size_t cap)
{
	uint32_t n;
	const char *s;
	size_t len;
	if (tq_read_array(args, &n) != TQ_OK || n != want || tq_read_str(args, &s, &len) != TQ_OK ||
	    len >= cap)
		return -1;
	memcpy(path, s, len);
	path[len] = '\0';
	return 0;
}

static tq_err pidfile(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	char path[512], tmp[520];
	int64_t ms;
	if (read_path(args, 2, path, sizeof path) != 0 || tq_read_int(args, &ms) != TQ_OK || ms < 0)
		return tq_ctx_fail(ctx, "usage: pidfile PATH MS");
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return tq_ctx_fail(ctx, "cannot create %s", tmp);
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return tq_ctx_fail(ctx, "cannot write %s", path);
	sleep_ms(ms);
	return tq_pack_int(reply, ms);
}

static tq_err tally(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)reply;
	char path[512];
	if (read_path(args, 1, path, sizeof path) != 0)
		return tq_ctx_fail(ctx, "usage: tally PATH");
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	bool written = fd >= 0 && write(fd, "x", 1) == 1;
	if (fd >= 0)
		close(fd);
	if (!written)
		return tq_ctx_fail(ctx, "cannot append to %s", path);
	abort();
}

static tq_err stubborn(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	int64_t ms;
	if (read_ms(args, ctx, 1, &ms) != TQ_OK)
		return TQ_EFAILED;
	signal(SIGTERM, SIG_IGN);
	sleep_ms(ms);
	return tq_pack_int(reply, ms);
}

static tq_err segv(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)args;
	(void)reply;
	(void)ctx;
	volatile int *p = NULL;
	return (tq_err)*p;
}

static tq_err left(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	(void)args;
	int64_t ms = tq_ctx_time_left_ms(ctx);
	tq_pack_array(reply, 2);
	tq_pack_int(reply, ms);
	return tq_pack_uint(reply, now_us() / 1000);
}

static tq_err big(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	int64_t n;
	if (read_ms(args, ctx, 1, &n) != TQ_OK || n > (64 << 20))
		return tq_ctx_fail(ctx, "usage: big N (N up to 64 MiB)");
	uint8_t *b = malloc(n ? (size_t)n : 1);
	if (b == NULL)
		return tq_ctx_fail(ctx, "big: out of memory");
	for (int64_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 7 + 1);
	tq_err e = tq_pack_bin(reply, b, (size_t)n);
	free(b);
	return e;
}

/* The executor's end of its socketpair with the loop: its only Unix stream
 * socket.  -1 unless there is exactly one. */
static int executor_socket(void)
{
	int found = -1, count = 0;
	for (int fd = 3; fd < 1024; fd++) {
		struct stat st;
		struct sockaddr_storage sa;
		socklen_t salen = sizeof sa;
		int type = 0;
		socklen_t tlen = sizeof type;
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM ||
		    getsockname(fd, (struct sockaddr *)&sa, &salen) != 0 || sa.ss_family != AF_UNIX)
			continue;
		found = fd;
		count++;
	}
	return count == 1 ? found : -1;
}

/* The ticket board (worker/tickets.h): the process's one shared anonymous
 * mapping, which Linux names "/dev/zero (deleted)".  NULL if not found. */
static tqi_ticket *ticket_board(size_t *n)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return NULL;
	char line[512];
	tqi_ticket *board = NULL;
	while (board == NULL && fgets(line, sizeof line, f) != NULL) {
		unsigned long start, end;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 && perms[3] == 's' &&
		    strstr(line, "/dev/zero") != NULL) {
			board = (tqi_ticket *)start;
			*n = (end - start) / sizeof *board;
		}
	}
	fclose(f);
	return board;
}

/* Sets the one RUNNING ticket - this task's - DONE, with a length past its
 * end.  0, or -1 when there is not exactly one. */
static int forge_ticket(void)
{
	size_t n = 0;
	tqi_ticket *board = ticket_board(&n), *mine = NULL;
	if (n > TQI_EXEC_DEPTH)
		n = TQI_EXEC_DEPTH; /* one executor's (--concurrency 1); the bells follow */
	int running = 0;
	for (size_t i = 0; board != NULL && i < n; i++) {
		if (__atomic_load_n(&board[i].state, __ATOMIC_SEQ_CST) == TQI_TICKET_RUNNING) {
			mine = &board[i];
			running++;
		}
	}
	if (running != 1)
		return -1;
	mine->code = 0;
	mine->text_len = 0;
	mine->len = TQI_TICKET_DATA + 1;
	__atomic_store_n(&mine->state, TQI_TICKET_DONE, __ATOMIC_SEQ_CST);
	return 0;
}

/* Sets every QUEUED ticket - the tasks waiting behind this one - FREE, a
 * state the loop never leaves a written task in.  Returns how many. */
static int forge_behind(void)
{
	size_t n = 0;
	tqi_ticket *board = ticket_board(&n);
	int count = 0;
	if (n > TQI_EXEC_DEPTH)
		n = TQI_EXEC_DEPTH; /* one executor's (--concurrency 1); the bells follow */
	for (size_t i = 0; board != NULL && i < n; i++)
		if (__atomic_load_n(&board[i].state, __ATOMIC_SEQ_CST) == TQI_TICKET_QUEUED) {
			__atomic_store_n(&board[i].state, TQI_TICKET_FREE, __ATOMIC_SEQ_CST);
			count++;
		}
	return count;
}

static tq_err forge(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	uint32_t n;
	const char *how;
	size_t len;
	if (tq_read_array(args, &n) != TQ_OK || n != 1 || tq_read_str(args, &how, &len) != TQ_OK)
		return tq_ctx_fail(ctx, "usage: forge wait|exit|ticket|behind");
	bool exit_after = len == 4 && memcmp(how, "exit", 4) == 0;
	if (len == 6 && memcmp(how, "behind", 6) == 0) {
		/* Waits, bounded, for the tasks behind it to reach its pipe. */
		int freed = 0;
		for (int i = 0; i < 5000 && (freed = forge_behind()) == 0; i++)
			sleep_ms(1);
		return tq_pack_int(reply, freed);
	}
	if (len == 6 && memcmp(how, "ticket", 6) == 0) {
		if (forge_ticket() != 0)
			return tq_ctx_fail(ctx, "forge: cannot find this task's ticket");
		sleep_ms(10000);
		return tq_pack_str(reply, "genuine");
	}
	int fd = executor_socket();
	if (fd < 0)
		return tq_ctx_fail(ctx, "forge: cannot find the executor's socket");
	/* worker/executor.h: u32 len | u8 2 | u32 code | u32 text length
	 * | u32 run time | text | result.  A malformed frame - of no known
	 * type - and behind it a well-formed one: TQ_OK, no text, "forged". */
	static const uint8_t bad[] = { 13, 0, 0, 0, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t good[] = { 20, 0, 0, 0, 2, 0,    0,   0,   0,   0,   0,   0,
		                        0,  1, 0, 0, 0, 0xa6, 'f', 'o', 'r', 'g', 'e', 'd' };
	struct iovec iov[2] = { { (void *)bad, sizeof bad }, { (void *)good, sizeof good } };
	if (writev(fd, iov, 2) != (ssize_t)(sizeof bad + sizeof good))
		return tq_ctx_fail(ctx, "forge: short write");
	if (exit_after)
		_exit(3);
	sleep_ms(10000);
	return tq_pack_str(reply, "genuine");
}

tq_err tq_plugin_init(tq_worker *w)
{
	tq_err e = tq_worker_register(w, "span", span, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "pid", pid, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "touch", touch, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "mark", mark, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "stubborn", stubborn, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "pidfile", pidfile, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "tally", tally, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "segv", segv, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "left", left, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "big", big, NULL);
	if (e == TQ_OK)
		e = tq_worker_register(w, "forge", forge, NULL);
	return e;
}
