/*
 * test_attack.c - the broker under attack by peers that need no credentials
 * (issue 13): raw ZeroMQ peers on loopback do what an attacker would, each
 * bounded in count and time.  Every test checks that the broker is still
 * there afterwards, that a steady legitimate client kept completing its
 * tasks during the attack, and that the broker's memory stayed bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/hex.h"
#include "harness.h"
#include "raw.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a legitimate client that keeps working during an attack ---- */

typedef struct {
	th_env *e;
	volatile int stop;
	pthread_t thread;
	uint64_t ok, failed; /* its tasks' outcomes */
	uint64_t worst_ms;   /* the longest any of its tasks took */
} steady;

static void *steady_main(void *arg)
{
	steady *s = arg;
	tq_client *c = th_client(s->e, 0);
	if (c == NULL) {
		s->failed++;
		return NULL;
	}
	while (!s->stop) {
		uint64_t t0 = th_now_ms();
		tq_task *t = th_async(c, "double", "[21]", NULL);
		tq_err rc = t ? tq_task_await(t, 5000) : TQ_ENOMEM;
		int64_t v = 0;
		if (rc == TQ_OK && tq_task_result_int(t, &v) == TQ_OK && v == 42)
			s->ok++;
		else
			s->failed++;
		uint64_t took = th_now_ms() - t0;
		if (took > s->worst_ms)
			s->worst_ms = took;
		tq_task_destroy(&t);
		usleep(20000);
	}
	tq_client_destroy(&c);
	return NULL;
}

static void steady_start(steady *s, th_env *e)
{
	memset(s, 0, sizeof *s);
	s->e = e;
	assert_int_equal(pthread_create(&s->thread, NULL, steady_main, s), 0);
}

/* Stops the client and asserts that it was served throughout: at least
 * min_ok tasks, none failed. */
static void steady_end(steady *s, uint64_t min_ok)
{
	s->stop = 1;
	pthread_join(s->thread, NULL);
	fprintf(stderr, "steady client: %llu ok, %llu failed, slowest %llu ms\n",
	        (unsigned long long)s->ok, (unsigned long long)s->failed,
	        (unsigned long long)s->worst_ms);
	assert_int_equal(s->failed, 0);
	assert_true(s->ok >= min_ok);
}

/* The broker is still running (not crashed) and serves a new client. */
static void broker_alive(th_env *e)
{
	assert_int_equal(kill(e->broker->pid, 0), 0);
	assert_int_equal(waitpid(e->broker->pid, NULL, WNOHANG), 0);
	tq_client *c = th_client(e, 0);
	assert_non_null(c);
	th_expect_int(c, "double", "[5]", 10, NULL);
	tq_client_destroy(&c);
}

/* ---- the broker's memory, watched while an attack runs ---- */

/* Under AddressSanitizer a process's resident size says little about what
 * it holds (freed memory waits in a quarantine, the shadow maps memory of
 * its own): the sizes are printed, and checked only without it. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEANINGFUL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_MEANINGFUL 0
#endif
#endif
#ifndef RSS_MEANINGFUL
#define RSS_MEANINGFUL 1
#endif

typedef struct {
	const th_proc *p;
	volatile int stop;
	pthread_t thread;
	uint64_t peak_kb; /* the highest resident size seen */
} rss_watch;

static void *rss_main(void *arg)
{
	rss_watch *w = arg;
	while (!w->stop) {
		uint64_t kb = th_rss_kb(w->p);
		if (kb > w->peak_kb)
			w->peak_kb = kb;
		usleep(10000);
	}
	return NULL;
}

static void rss_start(rss_watch *w, const th_proc *p)
{
	memset(w, 0, sizeof *w);
	w->p = p;
	w->peak_kb = th_rss_kb(p);
	assert_true(w->peak_kb > 0);
	assert_int_equal(pthread_create(&w->thread, NULL, rss_main, w), 0);
}

/* Stops watching; returns the peak resident size in MiB. */
static uint64_t rss_end(rss_watch *w)
{
	w->stop = 1;
	pthread_join(w->thread, NULL);
	return w->peak_kb / 1024;
}

/* For th_wait_for: true once the broker's resident size is at most
 * ((uint64_t *)arg)[1] MiB ([0] is the broker's pid). */
static bool rss_at_most(void *arg)
{
	const uint64_t *a = arg;
	th_proc p = { .pid = (pid_t)a[0] };
	uint64_t kb = th_rss_kb(&p);
	return kb > 0 && kb / 1024 <= a[1];
}

/* ---- 1. a remote crash: floods of STATS from clients that never read ---- */

typedef struct {
	const char *ep;
	uint64_t until_ms;
	int per_frame; /* STATS commands packed in one frame */
	uint64_t sent;
} flooder;

static void *flood_stats(void *arg)
{
	flooder *f = arg;
	raw_peer p;
	raw_open(&p, NULL);
	/* It reads nothing (ZeroMQ holds one message for it, the kernel as
	 * little as it allows), and libzmq sends a ZMTP PING between its
	 * messages every millisecond: a PING left in the broker's buffer
	 * when it stopped reading is what aborted libzmq without heartbeats
	 * of the broker's own. */
	int one = 1, small = 4096, ivl = 1;
	zmq_setsockopt(p.sock, ZMQ_RCVHWM, &one, sizeof one);
	zmq_setsockopt(p.sock, ZMQ_RCVBUF, &small, sizeof small);
	zmq_setsockopt(p.sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
	assert_int_equal(zmq_connect(p.sock, f->ep), 0);
	/* One frame of per_frame STATS commands, each "TQ\x01\x0b\x90". */
	size_t n = (size_t)f->per_frame * 5;
	uint8_t *frame = malloc(n);
	for (int i = 0; i < f->per_frame; i++)
		memcpy(frame + 5 * i, "TQ\x01\x0b\x90", 5);
	while (th_now_ms() < f->until_ms) /* as fast as it can, for a bounded time */
		for (int i = 0; i < 1000; i++)
			f->sent += zmq_send(p.sock, frame, n, ZMQ_DONTWAIT) >= 0;
	free(frame);
	raw_close(&p);
	return NULL;
}

static void run_flood(th_env *e, int nflooders, int per_frame, int ms)
{
	pthread_t th[8];
	flooder f[8];
	uint64_t until = th_now_ms() + (uint64_t)ms;
	for (int i = 0; i < nflooders; i++) {
		f[i] = (flooder){ .ep = e->client_ep, .until_ms = until, .per_frame = per_frame };
		assert_int_equal(pthread_create(&th[i], NULL, flood_stats, &f[i]), 0);
	}
	for (int i = 0; i < nflooders; i++)
		pthread_join(th[i], NULL);
}

/* Four clients send STATS as fast as they can and never read the answers,
 * with two workers registered (libzmq 4.3.4 aborted the broker in its I/O
 * thread within seconds: stream_engine_base.cpp:331).  The broker lives,
 * and a client beside the flood keeps being served. */
static void test_stats_flood_from_clients_that_never_read(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	assert_non_null(th_worker(e, "w2", NULL));
	tq_client_destroy(&c);
	uint64_t base_mb = th_rss_kb(e->broker) / 1024;
	steady s;
	rss_watch w;
	steady_start(&s, e);
	rss_start(&w, e->broker);
	run_flood(e, 4, 1, 6000);
	uint64_t peak_mb = rss_end(&w);
	steady_end(&s, 20);
	broker_alive(e);
	/* The answers it would not read are throttled, not queued: the
	 * broker's memory barely moves. */
	fprintf(stderr, "broker: %llu MiB before, %llu MiB at most during the flood\n",
	        (unsigned long long)base_mb, (unsigned long long)peak_mb);
	assert_true(th_stat_of(e, "counters.throttled") > 0);
	assert_true(!RSS_MEANINGFUL || peak_mb < base_mb + 64);
}

/* Four clients flood the broker with what it answers in full - HELLO
 * resuming their session - never read, send ZMTP PINGs between their
 * messages (libzmq does, on its own timer), and reset their connections
 * (or are cut off for their chatter).  A broker whose pipe from a peer can
 * fill stops reading it; the reset then marks the connection broken, and
 * the PING left in its buffer - or a heartbeat timer of the broker's -
 * aborts libzmq (stream_engine_base.cpp:331).  This broker reads on. */
typedef struct {
	const char *ep;
	uint64_t until_ms;
	uint64_t session;
} hello_flooder;

static void *flood_hello(void *arg)
{
	hello_flooder *f = arg;
	raw_peer p;
	raw_open(&p, NULL);
	int one = 1, small = 4096, ivl = 1;
	zmq_setsockopt(p.sock, ZMQ_RCVHWM, &one, sizeof one);
	zmq_setsockopt(p.sock, ZMQ_RCVBUF, &small, sizeof small);
	zmq_setsockopt(p.sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
	assert_int_equal(zmq_connect(p.sock, f->ep), 0);
	tqi_env hello = { .cmd = TQI_HELLO, .session = f->session, .name = { "flood", 5 } };
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	/* 100 to a message: cheap for libzmq's thread, a hundred commands
	 * for the loop, so that the thread gets far ahead. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(tqi_cmd_append(&hello, NULL, 0, &w), TQ_OK);
	while (th_now_ms() < f->until_ms)
		if (zmq_send(p.sock, w.data, w.len, ZMQ_DONTWAIT) < 0)
			usleep(100);
	tqi_wbuf_free(&w);
	raw_close(&p); /* linger 0: a reset */
	return NULL;
}

static void test_hello_flood_with_pings_from_clients_that_never_read(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_client_destroy(&c);
	steady s;
	steady_start(&s, e);
	for (int round = 0; round < 3; round++) {
		pthread_t th[4];
		hello_flooder f[4];
		uint64_t until = th_now_ms() + 1500;
		for (int i = 0; i < 4; i++) {
			f[i] = (hello_flooder){ .ep = e->client_ep,
				                .until_ms = until,
				                .session = 1 + i };
			assert_int_equal(pthread_create(&th[i], NULL, flood_hello, &f[i]), 0);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		broker_alive(e);
	}
	steady_end(&s, 20);
}

/* A peer connects twice under one routing id (ZeroMQ hands the id over to
 * the newer connection), keeps sending on the older one, then resets it:
 * libzmq 4.3.4 stops reading the older connection, then marks it broken,
 * and a ZMTP heartbeat timer of the broker's would then abort it. */
static void test_handover_then_reset(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_client_destroy(&c);
	steady s;
	steady_start(&s, e);
	for (int r = 0; r < 40; r++) {
		raw_peer a, b;
		raw_open(&a, NULL);
		raw_open(&b, NULL);
		uint8_t id[16];
		memset(id, 0x80 | r, sizeof id);
		id[1] = (uint8_t)getpid();
		zmq_setsockopt(a.sock, ZMQ_ROUTING_ID, id, sizeof id);
		zmq_setsockopt(b.sock, ZMQ_ROUTING_ID, id, sizeof id);
		assert_int_equal(zmq_connect(a.sock, e->client_ep), 0);
		raw_client_hello(&a, 7);
		assert_int_equal(zmq_connect(b.sock, e->client_ep), 0);
		raw_client_hello(&b, 7); /* the id is b's now */
		for (int i = 0; i < 200; i++)
			zmq_send(a.sock, "TQ\x01\x0b\x90", 5, ZMQ_DONTWAIT);
		raw_close(&a); /* linger 0: a reset */
		raw_close(&b);
	}
	/* Long enough for any heartbeat timer of the broker's to fire on
	 * the broken connections. */
	uint64_t until = th_now_ms() + 1500;
	while (th_now_ms() < until)
		broker_alive(e);
	steady_end(&s, 20);
}

/* ---- 2. memory without a byte bound ---- */

/* Submits n owned tasks of `fn` with args_len bytes of arguments each (a
 * 60 s timeout), then makes a round trip through the broker, after which
 * every refusal has arrived: returns how many were accepted, and puts the
 * refusals' last message in why (may be NULL). */
static int submit_big(th_env *e, tq_client *c, tq_task **ts, int n, size_t args_len, char *why,
                      size_t whylen)
{
	tq_buf *buf;
	assert_int_equal(tq_buf_new(&buf), TQ_OK);
	char *big = malloc(args_len);
	assert_non_null(big);
	memset(big, 'a', args_len);
	tq_pack_array(buf, 1);
	tq_pack_strn(buf, big, args_len - 8); /* the bin, array and str headers */
	free(big);
	tq_task_opts o = { .timeout_ms = 60000 };
	for (int i = 0; i < n; i++)
		assert_int_equal(
		    tq_client_async(c, "nobody", tq_buf_data(buf), tq_buf_size(buf), &o, &ts[i]),
		    TQ_OK);
	tq_buf_destroy(&buf);
	uint8_t *data;
	size_t len;
	assert_int_equal(tq_client_stats(c, 5000, &data, &len), TQ_OK);
	free(data);
	(void)e;
	int accepted = 0;
	for (int i = 0; i < n; i++) {
		tq_err rc = tq_task_yield(ts[i], 0);
		if (rc == TQ_ERUNNING)
			accepted++;
		else if (rc == TQ_EBUSY && why != NULL)
			snprintf(why, whylen, "%s", tq_task_error(ts[i]));
		else
			assert_int_equal(rc, TQ_EBUSY);
	}
	return accepted;
}

/* Tasks of 64 KiB arguments from one client fill its share of the broker's
 * budget (16 MiB of 64), then get EBUSY, while another client is served;
 * four more such clients fill the budget, and everyone gets EBUSY; the
 * broker's memory stays within the budget all along, and what the tasks
 * held goes back to the system once they are gone. */
static void test_a_byte_budget_with_client_shares(void **state)
{
	th_env *e = *state;
	static const char *const budget[] = { "--max-memory", "67108864", "--max-client-memory",
		                              "16777216", NULL };
	tq_client *c = th_start(e, budget, NULL);
	tq_client_destroy(&c);
	uint64_t base_mb = th_rss_kb(e->broker) / 1024;
	enum { N = 400, ARGS = 64 * 1024, ATTACKERS = 5 };
	tq_client *att[ATTACKERS];
	tq_task **ts = calloc((size_t)ATTACKERS * N, sizeof *ts);
	assert_non_null(ts);
	rss_watch w;
	rss_start(&w, e->broker);
	char why[512] = "";
	att[0] = th_client(e, 0);
	int got = submit_big(e, att[0], ts, N, ARGS, why, sizeof why);
	fprintf(stderr, "one client: %d tasks of 64 KiB accepted, then: %s\n", got, why);
	assert_true(got >= 200 && got < 256); /* 16 MiB / (64 KiB + a record) */
	assert_non_null(strstr(why, "this client's share"));
	/* Another client is served beside it. */
	tq_client *other = th_client(e, 0);
	for (int i = 0; i < 10; i++)
		th_expect_int(other, "double", "[4]", 8, NULL);
	tq_client_destroy(&other);
	int total = got;
	for (int a = 1; a < ATTACKERS; a++) {
		att[a] = th_client(e, 0);
		total += submit_big(e, att[a], ts + (size_t)a * N, N, ARGS, why, sizeof why);
	}
	fprintf(stderr, "five clients: %d tasks accepted, then: %s\n", total, why);
	assert_true(total < 64 * 16);
	assert_non_null(strstr(why, "memory budget is full"));
	uint64_t peak_mb = rss_end(&w);
	fprintf(stderr, "broker: %llu MiB before, %llu MiB at most (budget 64 MiB)\n",
	        (unsigned long long)base_mb, (unsigned long long)peak_mb);
	assert_true(!RSS_MEANINGFUL || peak_mb < base_mb + 64 + 32);
	/* The owners leave: their tasks are cancelled, and the memory goes
	 * back to the system. */
	for (int a = 0; a < ATTACKERS; a++) {
		for (int i = 0; i < N; i++)
			tq_task_destroy(&ts[(size_t)a * N + i]);
		tq_client_destroy(&att[a]);
	}
	free(ts);
	assert_true(th_stat_is(e, "tasks", 0, 10000));
	uint64_t want[2] = { (uint64_t)e->broker->pid, base_mb + 16 };
	assert_true(!RSS_MEANINGFUL || th_wait_for(rss_at_most, want, 10000));
	broker_alive(e);
}

/* ---- 3. reply amplification ---- */

/* One 500 KB frame of 100,000 STATS, from a client that opened a session
 * and from one that did not, neither reading: each is answered at most at
 * its STATS rate; the rest is counted as throttled, not answered. */
static void test_one_frame_of_100000_stats(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	assert_non_null(th_worker(e, "w2", NULL));
	tq_client_destroy(&c);
	uint64_t base_mb = th_rss_kb(e->broker) / 1024;
	enum { N = 100000 };
	uint8_t *frame = malloc((size_t)N * 5);
	assert_non_null(frame);
	for (int i = 0; i < N; i++)
		memcpy(frame + 5 * i, "TQ\x01\x0b\x90", 5);
	raw_peer with, without;
	raw_open_reluctant(&with, e->client_ep);
	raw_client_hello(&with, 9);
	raw_open_reluctant(&without, e->client_ep);
	rss_watch w;
	rss_start(&w, e->broker);
	assert_true(zmq_send(with.sock, frame, (size_t)N * 5, 0) >= 0);
	assert_true(zmq_send(without.sock, frame, (size_t)N * 5, 0) >= 0);
	free(frame);
	/* Both frames read: the first STATS of each answered at its rate,
	 * the next tens of thousands throttled, then each connection cut
	 * off and the rest of its frame dropped unread; a client beside
	 * them is served meanwhile. */
	tq_client *other = th_client(e, 0);
	for (int i = 0; i < 10; i++)
		th_expect_int(other, "double", "[4]", 8, NULL);
	tq_client_destroy(&other);
	assert_true(th_stat_reaches(e, "counters.cut_off", 2, 10000));
	uint64_t throttled = th_stat_of(e, "counters.throttled");
	fprintf(stderr, "%llu STATS throttled, the rest dropped\n", (unsigned long long)throttled);
	assert_true(throttled >= 2 * 40000 && throttled < 2 * N);
	uint64_t peak_mb = rss_end(&w);
	fprintf(stderr, "broker: %llu MiB before, %llu MiB at most\n", (unsigned long long)base_mb,
	        (unsigned long long)peak_mb);
	assert_true(!RSS_MEANINGFUL || peak_mb < base_mb + 32);
	raw_close(&with);
	raw_close(&without);
	broker_alive(e);
}

/* ---- 4. log floods; 8. a second READY ---- */

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Appends n copies of e (no payload) to one frame in w. */
static void pack_n(tqi_wbuf *w, const tqi_env *e, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(tqi_cmd_append(e, NULL, 0, w), TQ_OK);
}

/* A registered raw worker that holds a client's task (no retries) says
 * READY again a hundred times: refused, and its task stays its own - its
 * result reaches the owner.  Another registered peer repeats READY
 * 100,000 times, and a third registers and leaves (READY, BYE) 20,000
 * times: the broker's log grows by a few lines a second, with counts of
 * what it left out, and the repeater is cut off. */
static void test_repeated_ready_floods_no_log_and_loses_no_task(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	raw_peer rw, rep, churn;
	raw_open(&rw, e->worker_ep);
	raw_worker_ready(&rw, "rawfn", 1, 1);
	tq_task *t = th_async(c, "rawfn", "[1]", NULL);
	assert_non_null(t);
	uint8_t ref[TQI_REF_LEN];
	uint32_t attempt;
	raw_worker_take(&rw, ref, &attempt);
	raw_open(&rep, e->worker_ep);
	raw_worker_ready(&rep, "other", 1, 1);
	uint64_t log0 = file_size(e->broker->log);

	tqi_wbuf fns;
	tqi_wbuf_init(&fns);
	assert_int_equal(tqi_raw_add_str(&fns, "rawfn", 5), 0);
	tqi_env ready = { .cmd = TQI_READY,
		          .name = { "raw", 3 },
		          .concurrency = 1,
		          .capacity = 1,
		          .heartbeat_ms = TQI_MAX_HEARTBEAT_MS,
		          .functions = tqi_raw_of(&fns, 1) };
	tqi_env bye = { .cmd = TQI_BYE };
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	pack_n(&w, &ready, 100);
	assert_true(zmq_send(rw.sock, w.data, w.len, 0) >= 0);
	tqi_wbuf_reset(&w);
	pack_n(&w, &ready, 1000);
	for (int i = 0; i < 100; i++)
		assert_true(zmq_send(rep.sock, w.data, w.len, 0) >= 0);
	tqi_wbuf_reset(&w);
	for (int i = 0; i < 500; i++) {
		assert_int_equal(tqi_cmd_append(&ready, NULL, 0, &w), TQ_OK);
		assert_int_equal(tqi_cmd_append(&bye, NULL, 0, &w), TQ_OK);
	}
	raw_open(&churn, e->worker_ep);
	for (int i = 0; i < 40; i++)
		assert_true(zmq_send(churn.sock, w.data, w.len, 0) >= 0);
	tqi_wbuf_free(&w);
	tqi_wbuf_free(&fns);
	/* All of it read: the repeated READYs refused (malformed), the
	 * repeater cut off, the churn gone: w1 and rw are left. */
	assert_true(th_stat_reaches(e, "counters.malformed", 10000, 20000));
	assert_true(th_stat_reaches(e, "counters.cut_off", 1, 20000));
	assert_true(th_stat_is(e, "workers", 2, 20000));
	/* The task is still rw's, attempt 1: it answers, and the owner has
	 * the result. */
	raw_worker_done(&rw, ref, attempt, "\x2a", 1);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	assert_int_equal(th_result_int(t), 42);
	tq_task_destroy(&t);
	uint64_t grew = file_size(e->broker->log) - log0;
	fprintf(stderr, "the broker's log grew by %llu bytes\n", (unsigned long long)grew);
	assert_true(grew < 256 * 1024);
	assert_true(th_log_has(e->broker, "suppressed", 3000));
	raw_close(&churn);
	raw_close(&rep);
	raw_close(&rw);
	tq_client_destroy(&c);
	broker_alive(e);
}

/* ---- 7. tasks no one can stop: the broker's bound, and operators ---- */

/* Every task ends by the broker's bound (--max-task-time): a detached task
 * that would run for a minute is stopped there and its worker serves
 * again; an owned task with no timeout, for a function no worker offers,
 * ends with ENOWORKER there instead of waiting for ever; and a longer
 * timeout is cut to the bound. */
static void test_every_task_ends_by_the_brokers_bound(void **state)
{
	th_env *e = *state;
	const char *bargs[] = { "--max-task-time", "1500", NULL };
	const char *wargs[] = { "--concurrency", "1", NULL };
	tq_client *c = th_start(e, bargs, wargs);

	/* A detached task of 60 s on the worker's only executor. */
	th_path fw;
	snprintf(fw.path, sizeof fw.path, "%s/detached", e->dir);
	char args[640], ref[33];
	snprintf(args, sizeof args, "[\"%s\", 60000]", fw.path);
	uint64_t t0 = th_now_ms();
	assert_int_equal(tq_client_start_json(c, "mark", args, NULL, ref), TQ_OK);
	assert_true(th_wait_for(th_file_exists, &fw, 5000));
	assert_true(th_stat_reaches(e, "counters.expired", 1, 10000));
	uint64_t took = th_now_ms() - t0;
	fprintf(stderr, "detached task of 60 s ended after %llu ms\n", (unsigned long long)took);
	assert_true(took >= 1400 && took < 6000);
	/* Its executor was stopped: the one-executor worker serves at once. */
	assert_true(th_stat_is(e, "load", 0, 5000));
	th_expect_int(c, "double", "[21]", 42, "w1");
	uint64_t expired;
	assert_int_equal(th_stat(e, "counters.expired", &expired), 0);
	assert_int_equal(expired, 1); /* counted once, not again at the worker's word */

	/* No timeout (0) and no worker for the function: ENOWORKER at the bound. */
	t0 = th_now_ms();
	tq_task *t = th_async(c, "nosuch", "[]", NULL);
	assert_non_null(t);
	assert_int_equal(tq_task_await(t, 20000), TQ_ENOWORKER);
	took = th_now_ms() - t0;
	assert_true(took >= 1400 && took < 6000);
	assert_non_null(strstr(tq_task_error(t), "no worker offers 'nosuch'"));
	tq_task_destroy(&t);

	/* Ten minutes asked for: the worker is told the bound ... */
	tq_task_opts ten_min = { .timeout_ms = 600000 };
	t = th_async(c, "left", "[]", &ten_min);
	assert_non_null(t);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	tq_reader r;
	size_t len;
	const uint8_t *res = tq_task_result(t, &len);
	tq_reader_init(&r, res, len);
	uint32_t n;
	int64_t left;
	assert_int_equal(tq_read_array(&r, &n), TQ_OK);
	assert_int_equal(tq_read_int(&r, &left), TQ_OK);
	assert_true(left > 0 && left <= 1500);
	tq_task_destroy(&t);
	/* ... and a task that would run for a minute ends there. */
	t0 = th_now_ms();
	t = th_mark_running(e, c, &fw, "clamped", 60000, &ten_min);
	assert_int_equal(tq_task_await(t, 20000), TQ_ETIMEDOUT);
	took = th_now_ms() - t0;
	assert_true(took >= 1400 && took < 6000);
	tq_task_destroy(&t);
	th_expect_int(c, "double", "[2]", 4, "w1");
	tq_client_destroy(&c);
	broker_alive(e);
}

/* Runs `tq cancel --grace GRACE` against the admin endpoint; returns its
 * exit code and its stderr through *err (free it). */
static int tq_cancel_grace(th_env *e, const char *admin, const char *ref, const char *grace,
                           char **err)
{
	const char *argv[] = {
		TQ_CLI_BIN, "cancel", "--admin", admin, "--grace", grace, ref, NULL
	};
	char *out;
	int rc = th_run(e, argv, 20000, &out, err);
	if (rc != 0)
		fprintf(stderr, "tq cancel %s: exit %d: %s", ref, rc, *err);
	free(out);
	return rc;
}

static int tq_cancel(th_env *e, const char *admin, const char *ref, char **err)
{
	return tq_cancel_grace(e, admin, ref, "5000", err);
}

/* An operator, on the admin endpoint, stops any task - a detached one
 * running, an owned one running (its owner hears ECANCELLED), an owned one
 * queued - and learns when there is no such task; the executor is
 * stopped and the worker serves on.  The admin endpoint takes CANCEL and
 * STATS only, and on the client endpoint no one cancels another's task. */
static void test_an_operator_cancels_any_task(void **state)
{
	th_env *e = *state;
	char admin[400];
	snprintf(admin, sizeof admin, "ipc://%s/admin.sock", e->dir);
	const char *bargs[] = { "--admin", admin, NULL };
	const char *wargs[] = { "--concurrency", "1", NULL };
	tq_client *c = th_start(e, bargs, wargs);
	char *err;

	/* A detached task of a minute, on the worker's only executor. */
	th_path fw;
	snprintf(fw.path, sizeof fw.path, "%s/detached", e->dir);
	char args[640], ref[33];
	snprintf(args, sizeof args, "[\"%s\", 60000]", fw.path);
	assert_int_equal(tq_client_start_json(c, "mark", args, NULL, ref), TQ_OK);
	assert_true(th_wait_for(th_file_exists, &fw, 5000));
	assert_int_equal(tq_cancel(e, admin, ref, &err), 0);
	free(err);
	assert_true(th_log_has_line(e->broker, ref, "cancelled by an operator", 5000));
	assert_true(th_stat_is(e, "load", 0, 5000));
	th_expect_int(c, "double", "[21]", 42, "w1");
	uint64_t cancelled;
	assert_int_equal(th_stat_of(e, "counters.cancelled"), 1);
	/* It has ended: a second cancel finds nothing. */
	assert_int_equal(tq_cancel(e, admin, ref, &err), 1);
	assert_non_null(strstr(err, "no such task"));
	free(err);

	/* A task that ignores SIGTERM, given a minute's grace: a second
	 * cancel cuts the grace short. */
	assert_int_equal(tq_client_start_json(c, "stubborn", "[60000]", NULL, ref), TQ_OK);
	assert_true(th_stat_is(e, "load", 1, 5000));
	assert_int_equal(tq_cancel_grace(e, admin, ref, "60000", &err), 0);
	free(err);
	assert_int_equal(tq_cancel_grace(e, admin, ref, "0", &err), 0);
	free(err);
	assert_true(th_stat_is(e, "load", 0, 5000));
	th_expect_int(c, "double", "[3]", 6, "w1");
	assert_int_equal(th_stat(e, "counters.cancelled", &cancelled), 0);
	assert_int_equal(cancelled, 2); /* one task, counted once */

	/* An owned task, running: its owner hears who stopped it. */
	tq_task *t = th_mark_running(e, c, &fw, "owned", 60000, NULL);
	assert_int_equal(tq_cancel(e, admin, tq_task_ref(t), &err), 0);
	free(err);
	assert_int_equal(tq_task_await(t, 5000), TQ_ECANCELLED);
	assert_non_null(strstr(tq_task_error(t), "cancelled by an operator"));
	tq_task_destroy(&t);
	/* An owned task, queued (no worker offers its function). */
	t = th_async(c, "nosuch", "[]", NULL);
	assert_non_null(t);
	assert_int_equal(tq_task_yield(t, 300), TQ_ERUNNING);
	assert_int_equal(tq_cancel(e, admin, tq_task_ref(t), &err), 0);
	free(err);
	assert_int_equal(tq_task_await(t, 5000), TQ_ECANCELLED);
	tq_task_destroy(&t);
	th_expect_int(c, "double", "[4]", 8, "w1");

	/* The admin endpoint: STATS is answered, a client's HELLO refused. */
	raw_peer op;
	raw_open(&op, admin);
	tqi_env stats = { .cmd = TQI_STATS };
	raw_send_env(&op, &stats, NULL, 0);
	raw_msg m;
	raw_expect(&op, TQI_STATS_REPLY, &m);
	raw_msg_close(&m);
	tqi_env hello = { .cmd = TQI_HELLO, .session = 7, .name = { "op", 2 } };
	raw_send_env(&op, &hello, NULL, 0);
	int cmd, code;
	assert_int_equal(raw_reply(&op, &cmd, &code), 0);
	assert_int_equal(cmd, TQI_ERROR);
	assert_int_equal(code, TQ_ECOMMAND);
	raw_close(&op);

	/* On the client endpoint, a CANCEL of another's task - owned or
	 * detached - changes nothing: both complete. */
	th_path dfw;
	snprintf(dfw.path, sizeof dfw.path, "%s/detached2", e->dir);
	snprintf(args, sizeof args, "[\"%s\", 1500]", dfw.path);
	assert_int_equal(tq_client_start_json(c, "mark", args, NULL, ref), TQ_OK);
	assert_true(th_wait_for(th_file_exists, &dfw, 5000));
	uint64_t completed0;
	assert_int_equal(th_stat(e, "counters.completed", &completed0), 0);
	raw_peer intruder;
	raw_open(&intruder, e->client_ep);
	raw_client_hello(&intruder, 99);
	tqi_env cancel = { .cmd = TQI_CANCEL, .grace_ms = 0 };
	assert_int_equal(tqi_unhex(ref, 32, cancel.ref, TQI_REF_LEN), 0);
	raw_send_env(&intruder, &cancel, NULL, 0);
	raw_client_sync(&intruder);
	assert_true(th_stat_reaches(e, "counters.completed", completed0 + 1, 5000));
	t = th_mark_running(e, c, &fw, "owned2", 1000, NULL);
	assert_int_equal(tqi_unhex(tq_task_ref(t), 32, cancel.ref, TQI_REF_LEN), 0);
	raw_send_env(&intruder, &cancel, NULL, 0);
	raw_client_sync(&intruder);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	assert_int_equal(th_result_int(t), 1000);
	tq_task_destroy(&t);
	raw_close(&intruder);
	assert_int_equal(th_stat_of(e, "counters.cancelled"), 4);
	tq_client_destroy(&c);
	broker_alive(e);
}

/* ---- 6. a worker that lies about its capacity, or sits on its tasks ---- */

/* Reads `key` (a uint) of the worker named `name` from the broker's stats;
 * 0 or -1. */
static int worker_stat(th_env *e, const char *name, const char *key, uint64_t *out)
{
	char what[128];
	snprintf(what, sizeof what, "workers.%s.%s", name, key);
	return th_stat(e, what, out);
}

typedef struct {
	th_env *e;
	const char *name, *key;
	uint64_t want;
} worker_wait;

static bool worker_stat_is(void *arg)
{
	worker_wait *ww = arg;
	uint64_t v;
	return worker_stat(ww->e, ww->name, ww->key, &v) == 0 && v == ww->want;
}

/* The task succeeded with the integer result want, on `worker`, at
 * `attempt`. */
static void expect_done(tq_task *t, int64_t want, const char *worker, unsigned attempt)
{
	tq_err rc = tq_task_await(t, 20000);
	if (rc != TQ_OK)
		fail_msg("task %s: %s: %s", tq_task_ref(t), tq_strerror(rc), tq_task_error(t));
	assert_int_equal(th_result_int(t), want);
	assert_string_equal(tq_task_worker(t), worker);
	assert_int_equal(tq_task_attempt(t), attempt);
}

enum { LIE_BOUND = 64, LIE_TASKS = 3000 };

/* The attack of finding 6: a registered peer announcing concurrency 65,535
 * took 2,988 of another client's 3,000 tasks and never ran them.  Now the
 * broker holds every worker's concurrency and capacity to
 * --max-worker-capacity (logged, and shown in stats), and a second liar,
 * which says it runs one task but asks to hold 262,140, loses what it holds
 * beyond that one to the real worker.  What the first holds as "running"
 * the broker cannot tell from long tasks: it keeps at most the bound until
 * it goes (or the tasks' deadlines), and then they are retried.  Every one
 * of the 3,000 completes correctly on the real worker, and a steady client
 * is served throughout. */
static void test_a_worker_that_lies_about_its_capacity(void **state)
{
	th_env *e = *state;
	char bound[16];
	snprintf(bound, sizeof bound, "%d", LIE_BOUND);
	const char *bargs[] = { "--max-worker-capacity", bound, NULL };
	assert_non_null(th_broker(e, bargs));
	raw_peer hoarder, prefetcher;
	raw_open(&hoarder, e->worker_ep);
	raw_worker_ready_as(&hoarder, "hoarder", "double", 65535, 262140);
	raw_open(&prefetcher, e->worker_ep);
	raw_worker_ready_as(&prefetcher, "prefetcher", "double", 1, 262140);
	assert_non_null(th_worker(e, "w1", NULL));
	tq_client *c = th_client(e, 0);
	assert_non_null(c);
	char clamped[128];
	snprintf(clamped, sizeof clamped,
	         "asked for concurrency 65535, capacity 262140: held to %d", LIE_BOUND);
	assert_true(th_log_has(e->broker, clamped, 2000));
	snprintf(clamped, sizeof clamped, "asked for concurrency 1, capacity 262140: held to %d",
	         LIE_BOUND);
	assert_true(th_log_has(e->broker, clamped, 2000));
	uint64_t v;
	assert_int_equal(worker_stat(e, "hoarder", "concurrency", &v), 0);
	assert_int_equal(v, LIE_BOUND);
	assert_int_equal(worker_stat(e, "hoarder", "capacity", &v), 0);
	assert_int_equal(v, LIE_BOUND);
	assert_int_equal(worker_stat(e, "prefetcher", "concurrency", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(worker_stat(e, "prefetcher", "capacity", &v), 0);
	assert_int_equal(v, LIE_BOUND);

	uint64_t t0 = th_now_ms();
	tq_task_opts o = { .timeout_ms = 20000, .retries = 1 };
	tq_task **ts = calloc(LIE_TASKS, sizeof *ts);
	assert_non_null(ts);
	for (int i = 0; i < LIE_TASKS; i++) {
		char args[32];
		snprintf(args, sizeof args, "[%d]", i);
		ts[i] = th_async(c, "double", args, &o);
		assert_non_null(ts[i]);
	}
	/* Full, it takes no more: the steady client's tasks go to w1. */
	worker_wait full = { e, "hoarder", "load", LIE_BOUND };
	assert_true(th_wait_for(worker_stat_is, &full, 10000));
	steady s;
	steady_start(&s, e);
	/* All but the hoarder's bound and the prefetcher's one complete; the
	 * prefetcher's others were taken back from it. */
	assert_true(th_stat_reaches(e, "counters.completed", LIE_TASKS - LIE_BOUND - 1, 15000));
	assert_true(th_stat_reaches(e, "counters.reclaimed", LIE_BOUND - 1, 5000));
	assert_true(
	    th_log_has_line(e->broker, "worker prefetcher", "tasks it has not started for", 2000));
	assert_int_equal(worker_stat(e, "prefetcher", "load", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(worker_stat(e, "hoarder", "load", &v), 0);
	assert_int_equal(v, LIE_BOUND);
	/* The liars go: what they held is retried on w1. */
	raw_close(&hoarder);
	raw_close(&prefetcher);
	for (int i = 0; i < LIE_TASKS; i++) {
		tq_err rc = tq_task_await(ts[i], 20000);
		if (rc != TQ_OK)
			fail_msg("task %d: %s: %s", i, tq_strerror(rc), tq_task_error(ts[i]));
		assert_int_equal(th_result_int(ts[i]), 2 * i);
		assert_string_equal(tq_task_worker(ts[i]), "w1");
		tq_task_destroy(&ts[i]);
	}
	uint64_t took = th_now_ms() - t0;
	fprintf(stderr, "%d tasks done on w1 in %llu ms\n", LIE_TASKS, (unsigned long long)took);
	assert_true(took < 15000);
	free(ts);
	steady_end(&s, 5);
	tq_client_destroy(&c);
	broker_alive(e);
}

enum { SIT_TASKS = 10 };

/* A raw worker that says it runs one task and holds fifty takes ten tasks
 * and answers none.  Once it has been silent for --prefetch-timeout (1 s by
 * default), the nine it cannot have started are taken back - CANCEL{grace
 * 0} to it, no retry used - and complete on a real worker (their next
 * attempt) long before their deadline; the one it may be running stays with
 * it; its late DONE for a task taken back is fenced. */
static void test_a_worker_that_sits_on_its_tasks_loses_them(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	raw_peer sitter;
	raw_open(&sitter, e->worker_ep);
	raw_worker_ready_as(&sitter, "sitter", "echo", 1, 50);
	tq_client *c = th_client(e, 0);
	assert_non_null(c);
	tq_task_opts o = { .timeout_ms = 20000 };
	tq_task *ts[SIT_TASKS];
	uint8_t refs[SIT_TASKS][TQI_REF_LEN];
	uint32_t attempt;
	uint64_t t0 = th_now_ms();
	for (int i = 0; i < SIT_TASKS; i++) {
		char args[32];
		snprintf(args, sizeof args, "[%d]", i);
		ts[i] = th_async(c, "echo", args, &o);
		assert_non_null(ts[i]);
	}
	for (int i = 0; i < SIT_TASKS; i++) {
		raw_worker_take(&sitter, refs[i], &attempt);
		assert_int_equal(attempt, 1);
		char hex[33];
		tqi_hex(refs[i], TQI_REF_LEN, hex);
		assert_string_equal(hex, tq_task_ref(ts[i])); /* in the order given */
	}
	assert_non_null(th_worker(e, "w1", NULL));
	steady s;
	steady_start(&s, e);

	/* The nine beyond its concurrency: on w1, attempt 2, well before the
	 * deadline. */
	for (int i = 1; i < SIT_TASKS; i++) {
		tq_err rc = tq_task_await(ts[i], 10000);
		if (rc != TQ_OK)
			fail_msg("task %d: %s: %s", i, tq_strerror(rc), tq_task_error(ts[i]));
		size_t len;
		const uint8_t *res = tq_task_result(ts[i], &len);
		assert_int_equal(len, 2);
		assert_int_equal(res[0], 0x91);
		assert_int_equal(res[1], i);
		assert_string_equal(tq_task_worker(ts[i]), "w1");
		assert_int_equal(tq_task_attempt(ts[i]), 2);
	}
	uint64_t took = th_now_ms() - t0;
	fprintf(stderr, "taken back and done elsewhere after %llu ms\n", (unsigned long long)took);
	assert_true(took < 6000);
	uint64_t v;
	assert_int_equal(th_stat_of(e, "counters.reclaimed"), SIT_TASKS - 1);
	assert_true(th_log_has_line(e->broker, "worker sitter",
	                            "holds 9 tasks it has not started for", 2000));
	/* Each with CANCEL{grace 0}, newest first. */
	for (int i = SIT_TASKS - 1; i >= 1; i--) {
		raw_msg m;
		raw_expect(&sitter, TQI_CANCEL, &m);
		assert_memory_equal(m.e.ref, refs[i], TQI_REF_LEN);
		assert_int_equal(m.e.grace_ms, 0);
		raw_msg_close(&m);
	}
	/* Its late word on a task taken back is fenced: the result stands. */
	uint64_t fenced;
	assert_int_equal(th_stat(e, "counters.fenced", &fenced), 0);
	raw_worker_done(&sitter, refs[5], 1, "\x91\x63", 2);
	assert_true(th_stat_reaches(e, "counters.fenced", fenced + 1, 5000));
	size_t len;
	assert_int_equal(tq_task_result(ts[5], &len)[1], 5);
	/* The one it may be running is its own still, and it may finish it. */
	assert_int_equal(tq_task_yield(ts[0], 0), TQ_ERUNNING);
	assert_int_equal(worker_stat(e, "sitter", "load", &v), 0);
	assert_int_equal(v, 1);
	raw_worker_done(&sitter, refs[0], 1, "\x91\x00", 2);
	assert_int_equal(tq_task_await(ts[0], 5000), TQ_OK);
	assert_string_equal(tq_task_worker(ts[0]), "sitter");
	assert_int_equal(tq_task_attempt(ts[0]), 1);
	for (int i = 0; i < SIT_TASKS; i++)
		tq_task_destroy(&ts[i]);
	raw_close(&sitter);
	steady_end(&s, 5);
	tq_client_destroy(&c);
	broker_alive(e);
}

/* An honest worker that is slow is not robbed of what it runs: with one
 * executor and a prefetch of 3, running a long task, the three it holds
 * behind it go to a second worker once it has reported nothing for
 * --prefetch-timeout (it answers each CANCEL: fenced); the long task stays
 * and completes there, attempt 1. */
static void test_a_slow_worker_keeps_its_running_task(void **state)
{
	th_env *e = *state;
	const char *one[] = { "--concurrency", "1", "--prefetch", "3", NULL };
	tq_client *c = th_start(e, NULL, one);
	th_path fw;
	tq_task *slow = th_mark_running(e, c, &fw, "slow", 3000, NULL);
	tq_task *behind[3];
	for (int i = 0; i < 3; i++) {
		char args[32];
		snprintf(args, sizeof args, "[%d]", i);
		behind[i] = th_async(c, "double", args, NULL);
		assert_non_null(behind[i]);
	}
	assert_true(th_stat_is(e, "load", 4, 5000));
	assert_non_null(th_worker(e, "w2", NULL));
	for (int i = 0; i < 3; i++) {
		expect_done(behind[i], 2 * i, "w2", 2);
		tq_task_destroy(&behind[i]);
	}
	assert_int_equal(tq_task_yield(slow, 0), TQ_ERUNNING);
	expect_done(slow, 3000, "w1", 1);
	tq_task_destroy(&slow);
	assert_int_equal(th_stat_of(e, "counters.reclaimed"), 3);
	/* w1 answered each CANCEL: fenced, as the attempt had moved on. */
	assert_true(th_stat_reaches(e, "counters.fenced", 3, 5000));
	assert_int_equal(th_stat_of(e, "counters.workers_lost"), 0);
	tq_client_destroy(&c);
	broker_alive(e);
}

/* With two executors, tq-worker starts its tasks out of order: each
 * executor's pipe goes on at its own speed.  Long tasks 0 and 5 among quick
 * ones, with a prefetch of 4: the worker spreads 0..5 over its executors
 * (0, 2, 4 and 1, 3, 5), the second runs 1 and 3, then 5, while 2 and 4
 * wait behind 0 - so the oldest two it holds (0, 2) are not the two it
 * runs (0, 5).  The broker takes back only what it was given since its
 * last DONE (6 or 7), which it cannot have started, and both long tasks
 * complete where they started. */
static void test_out_of_order_tasks_are_not_taken_back_running(void **state)
{
	th_env *e = *state;
	const char *two[] = { "--concurrency", "2", "--prefetch", "4", NULL };
	tq_client *c = th_start(e, NULL, two);
	enum { MIX = 8 };
	tq_task *ts[MIX];
	th_path marks[MIX];
	for (int i = 0; i < MIX; i++) {
		if (i == 0 || i == 5) {
			char tag[16];
			snprintf(tag, sizeof tag, "long%d", i);
			ts[i] = th_mark(e, c, &marks[i], tag, 4000, NULL);
		} else {
			char args[32];
			snprintf(args, sizeof args, "[%d]", i);
			ts[i] = th_async(c, "double", args, NULL);
		}
		assert_non_null(ts[i]);
	}
	assert_true(th_wait_for(th_file_exists, &marks[0], 5000));
	assert_true(th_wait_for(th_file_exists, &marks[5], 5000));
	assert_non_null(th_worker(e, "w2", NULL));
	assert_true(th_stat_reaches(e, "counters.reclaimed", 1, 5000));
	for (int i = 0; i < MIX; i++) {
		tq_err rc = tq_task_await(ts[i], 20000);
		if (rc != TQ_OK)
			fail_msg("task %d: %s: %s", i, tq_strerror(rc), tq_task_error(ts[i]));
		fprintf(stderr, "task %d: %s, attempt %u\n", i, tq_task_worker(ts[i]),
		        tq_task_attempt(ts[i]));
		if (i == 0 || i == 5) {
			assert_int_equal(th_result_int(ts[i]), 4000);
			assert_string_equal(tq_task_worker(ts[i]), "w1");
			assert_int_equal(tq_task_attempt(ts[i]), 1);
		} else {
			assert_int_equal(th_result_int(ts[i]), 2 * i);
		}
		tq_task_destroy(&ts[i]);
	}
	assert_int_equal(th_stat_of(e, "counters.workers_lost"), 0);
	tq_client_destroy(&c);
	broker_alive(e);
}

/* What the broker counts on to take back only tasks not started: an
 * executor with nothing to do takes the oldest task that waits.  Two
 * executors, a prefetch of 4: 0 (long) and 2, 4 on the first, 1 (crashes
 * its executor), 3, 5 on the second; 3 and 5 move behind 0, and 6 (long),
 * given for the crashed one, queues behind them.  The new executor takes
 * 2, not 6 (taking the newest, it would run 6, which the broker, having
 * heard nothing since it gave it, takes back and has killed). */
static void test_a_new_executor_takes_the_oldest_task(void **state)
{
	th_env *e = *state;
	const char *two[] = { "--concurrency", "2", "--prefetch", "4", NULL };
	tq_client *c = th_start(e, NULL, two);
	enum { N = 7 };
	tq_task *ts[N];
	th_path marks[N];
	for (int i = 0; i < N; i++) {
		if (i == 0 || i == 6) {
			char tag[16];
			snprintf(tag, sizeof tag, "long%d", i);
			ts[i] = th_mark(e, c, &marks[i], tag, 4000, NULL);
		} else if (i == 1) {
			ts[i] = th_async(c, "segv", "[]", NULL);
		} else {
			char args[32];
			snprintf(args, sizeof args, "[%d]", i);
			ts[i] = th_async(c, "double", args, NULL);
		}
		assert_non_null(ts[i]);
	}
	assert_true(th_wait_for(th_file_exists, &marks[0], 5000));
	assert_true(th_wait_for(th_file_exists, &marks[6], 5000));
	assert_non_null(th_worker(e, "w2", NULL));
	for (int i = 0; i < N; i++) {
		tq_err rc = tq_task_await(ts[i], 20000);
		fprintf(stderr, "task %d: %s, %s, attempt %u\n", i, tq_errname(rc),
		        tq_task_worker(ts[i]), tq_task_attempt(ts[i]));
		if (i == 1) {
			assert_int_equal(rc, TQ_ETASKCRASHED);
		} else {
			if (rc != TQ_OK)
				fail_msg("task %d: %s", i, tq_task_error(ts[i]));
			assert_int_equal(th_result_int(ts[i]), i == 0 || i == 6 ? 4000 : 2 * i);
		}
		if (i == 0 || i == 6) {
			assert_string_equal(tq_task_worker(ts[i]), "w1");
			assert_int_equal(tq_task_attempt(ts[i]), 1);
		}
		tq_task_destroy(&ts[i]);
	}
	tq_client_destroy(&c);
	broker_alive(e);
}

/* ---- 5. descriptor exhaustion: more connections than descriptors ---- */

enum {
	FD_NOFILE = 256,        /* the broker's descriptor limit, soft and hard */
	FD_CAP = 256 - 64,      /* its default cap: the limit less the reserve */
	FD_ATTACKERS = 320,     /* more connections than the limit */
	FD_CLOSED = 20,         /* attackers that leave, making room */
	FD_MAX_CPU_PERCENT = 50 /* of one core; it spun at ~90-100% without the cap */
};

/* Attackers: DEALERs on one context (a raw_peer each would cost a context
 * apiece, two threads and ~5 descriptors), each of which opens a session
 * (HELLO) so that its connection is really made, and the broker's WELCOME
 * says it holds it.  They do not reconnect once the broker closes them: an
 * attacker that holds on to what it got. */
typedef struct {
	void *ctx;
	void *sock[FD_ATTACKERS];
	bool answered[FD_ATTACKERS]; /* its HELLO was answered: the broker holds it */
	int nanswered;
} fd_attack;

static void fd_attack_open(fd_attack *a, const char *ep)
{
	memset(a, 0, sizeof *a);
	tqi_wbuf hello;
	tqi_wbuf_init(&hello);
	tqi_env e = { .cmd = TQI_HELLO, .session = 1, .name = { "attacker", 8 } };
	assert_int_equal(tqi_cmd_append(&e, NULL, 0, &hello), TQ_OK);
	a->ctx = zmq_ctx_new();
	assert_non_null(a->ctx);
	for (int i = 0; i < FD_ATTACKERS; i++) {
		void *s = zmq_socket(a->ctx, ZMQ_DEALER);
		assert_non_null(s);
		int zero = 0, never = -1;
		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
		zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &never, sizeof never);
		assert_int_equal(zmq_connect(s, ep), 0);
		assert_true(zmq_send(s, hello.data, hello.len, ZMQ_DONTWAIT) == (int)hello.len);
		a->sock[i] = s;
	}
	tqi_wbuf_free(&hello);
}

/* Reads the answers that came within wait_ms; returns how many did. */
static int fd_attack_read(fd_attack *a, int wait_ms)
{
	zmq_pollitem_t items[FD_ATTACKERS];
	for (int i = 0; i < FD_ATTACKERS; i++)
		items[i] = (zmq_pollitem_t){ a->sock[i], 0, a->sock[i] ? ZMQ_POLLIN : 0, 0 };
	int got = 0;
	if (zmq_poll(items, FD_ATTACKERS, wait_ms) <= 0)
		return 0;
	for (int i = 0; i < FD_ATTACKERS; i++) {
		if (!(items[i].revents & ZMQ_POLLIN))
			continue;
		char buf[4096];
		while (zmq_recv(a->sock[i], buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
			;
		if (!a->answered[i]) {
			a->answered[i] = true;
			a->nanswered++;
			got++;
		}
	}
	return got;
}

static void fd_attack_close_answered(fd_attack *a, int n)
{
	for (int i = 0; i < FD_ATTACKERS && n > 0; i++) {
		if (a->sock[i] != NULL && a->answered[i]) {
			zmq_close(a->sock[i]);
			a->sock[i] = NULL;
			a->answered[i] = false;
			a->nanswered--;
			n--;
		}
	}
}

static void fd_attack_close(fd_attack *a)
{
	for (int i = 0; i < FD_ATTACKERS; i++)
		if (a->sock[i] != NULL)
			zmq_close(a->sock[i]);
	zmq_ctx_term(a->ctx);
}

/* CPU time of process pid so far, user and system, in clock ticks
 * (/proc/PID/stat fields 14 and 15). */
static uint64_t cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the name before it may hold anything */
	assert_non_null(p);
	unsigned long long user, sys;
	assert_int_equal(
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &user, &sys),
	    2);
	return user + sys;
}

typedef struct {
	steady *s;
	uint64_t until_ms, ok_before;
} fd_window;

/* The measuring window has passed and the steady client completed tasks
 * in it. */
static bool fd_window_done(void *arg)
{
	fd_window *w = arg;
	return th_now_ms() >= w->until_ms && w->s->ok >= w->ok_before + 10;
}

typedef struct {
	th_env *e;
	uint64_t want;
} fd_room;

/* The broker holds at most `want` connections, the stats client's own
 * included (when it gets in at all): it has seen attackers leave. */
static bool fd_room_made(void *arg)
{
	fd_room *r = arg;
	uint64_t n;
	return th_stat(r->e, "connections", &n) == 0 && n <= r->want;
}

/* More connections than the broker has descriptors (issue 13, finding 5):
 * without a cap it spun at ~90% of a core in libzmq's accept loop (EMFILE,
 * polled level-triggered), new clients failed with EBROKERLOST, and nothing
 * was logged.  Now the connections beyond the cap are closed at once and
 * logged, the broker stays idle, a client connected before the flood keeps
 * being served, and a new one is served once some attackers have left. */
static void test_more_connections_than_descriptors(void **state)
{
	th_env *e = *state;
	e->nofile = FD_NOFILE;
	/* A cap that leaves the broker no descriptors of its own is refused
	 * at start. */
	const char *greedy[] = { TQ_BROKER_BIN,
		                 "--clients",
		                 "tcp://127.0.0.1:*",
		                 "--workers",
		                 "tcp://127.0.0.1:*",
		                 "--max-connections",
		                 "250",
		                 NULL };
	th_proc *p = th_spawn(e, "greedy-broker", greedy);
	assert_non_null(p);
	int status = th_wait_exit(p, 5000);
	assert_true(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1);
	assert_true(th_log_has(p, "--max-connections 250 leaves the broker too few", 0));

	assert_non_null(th_broker(e, NULL));
	e->nofile = 0;
	char limit_line[128];
	snprintf(limit_line, sizeof limit_line, "open file limit %d: at most %d connections",
	         FD_NOFILE, FD_CAP);
	assert_true(th_log_has(e->broker, limit_line, 2000));
	assert_non_null(th_worker(e, "w1", NULL));
	steady s;
	steady_start(&s, e);
	/* The worker, the steady client and the stats client itself. */
	assert_true(th_stat_is(e, "connections", 3, 5000));

	fd_attack a;
	fd_attack_open(&a, e->client_ep);
	/* All the room left goes to attackers; the rest are refused.  Wait
	 * until the room is taken, and then for a second with no new answer. */
	uint64_t until = th_now_ms() + 15000, quiet_since = th_now_ms();
	while (th_now_ms() < until) {
		if (fd_attack_read(&a, 100) > 0)
			quiet_since = th_now_ms();
		else if (a.nanswered >= FD_CAP - 2 && th_now_ms() - quiet_since >= 1000)
			break;
	}
	fprintf(stderr, "attackers: %d of %d held by the broker\n", a.nanswered, FD_ATTACKERS);
	assert_true(a.nanswered <= FD_CAP - 2);
	assert_true(a.nanswered >= FD_CAP - 2 - 5);
	char refused_line[128];
	snprintf(refused_line, sizeof refused_line,
	         "connection limit %d reached: refused a connection from 127.0.0.1:", FD_CAP);
	assert_true(th_log_has(e->broker, refused_line, 5000));

	/* While the attackers hold their connections, the broker idles and
	 * the steady client is served. */
	pid_t pid = e->broker->pid;
	uint64_t t0 = th_now_ms(), c0 = cpu_ticks(pid);
	fd_window w = { &s, t0 + 2000, s.ok };
	assert_true(th_wait_for(fd_window_done, &w, 10000));
	uint64_t t1 = th_now_ms(), c1 = cpu_ticks(pid);
	double percent =
	    100.0 * (double)(c1 - c0) / (double)sysconf(_SC_CLK_TCK) / ((double)(t1 - t0) / 1000.0);
	fprintf(stderr, "broker CPU with %d connections held: %.1f%% of a core over %llu ms\n",
	        a.nanswered + 2, percent, (unsigned long long)(t1 - t0));
	assert_true(percent < FD_MAX_CPU_PERCENT);
	assert_int_equal(kill(pid, 0), 0);

	/* The cap is on clients and workers together: the worker endpoint
	 * refuses too. */
	raw_peer intruder;
	raw_open(&intruder, e->worker_ep);
	assert_true(th_log_has_line(e->broker, refused_line, "(worker endpoint)", 5000));
	raw_close(&intruder);

	/* Some attackers leave: a new client is served. */
	fd_attack_close_answered(&a, FD_CLOSED);
	fd_room r = { e, FD_CAP - FD_CLOSED / 2 };
	assert_true(th_wait_for(fd_room_made, &r, 5000));
	tq_client *c = th_client(e, 0);
	assert_non_null(c);
	th_expect_int(c, "double", "[5]", 10, NULL);
	tq_client_destroy(&c);
	uint64_t refused;
	assert_int_equal(th_stat(e, "counters.refused_connections", &refused), 0);
	fprintf(stderr, "refused connections: %llu\n", (unsigned long long)refused);
	assert_true(refused >= (uint64_t)(FD_ATTACKERS - (FD_CAP - 2)));

	fd_attack_close(&a);
	steady_end(&s, 20);
	broker_alive(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stats_flood_from_clients_that_never_read,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_hello_flood_with_pings_from_clients_that_never_read, th_setup,
		    th_teardown),
		cmocka_unit_test_setup_teardown(test_handover_then_reset, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_a_byte_budget_with_client_shares, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_one_frame_of_100000_stats, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_repeated_ready_floods_no_log_and_loses_no_task,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_every_task_ends_by_the_brokers_bound, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_an_operator_cancels_any_task, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_more_connections_than_descriptors, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_a_worker_that_lies_about_its_capacity,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_a_worker_that_sits_on_its_tasks_loses_them,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_a_slow_worker_keeps_its_running_task, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order_tasks_are_not_taken_back_running,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_a_new_executor_takes_the_oldest_task, th_setup,
		                                th_teardown),
	};
	/* TQ_TEST_ONLY=PATTERN runs the tests whose names match it. */
	if (getenv("TQ_TEST_ONLY") != NULL)
		cmocka_set_test_filter(getenv("TQ_TEST_ONLY"));
	return cmocka_run_group_tests_name("attack", tests, NULL, NULL);
}
