/*
 * tq_runs.c - tq's side of the benchmark: a real tq-broker and real
 * tq-workers on loopback, driven through the public client API exactly as
 * a user would (tq_client_async + tq_task_await, tq_await_many).
 *
 * A window of W means W task handles outstanding: the oldest is awaited,
 * destroyed and replaced by a new submission, so W tasks are in flight at
 * every moment.  Every run is bounded: each await has a timeout, and a
 * task that does not end in TQ_OK fails the run.
 */
#include "bench/bench.h"

#include "tq/client.h"
#include "tq/value.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TQB_BROKER_PATH
#error "TQB_BROKER_PATH must name the tq-broker binary"
#endif
#ifndef TQB_WORKER_PATH
#error "TQB_WORKER_PATH must name the tq-worker binary"
#endif

enum { MAX_TQ_WORKERS = 16, AWAIT_MS = 30000, START_MS = 10000 };

struct tqb_tq {
	tqb_proc broker;
	tqb_proc workers[MAX_TQ_WORKERS];
	unsigned nworkers;
	unsigned capacity; /* of one worker: concurrency + prefetch */
	char cep[256], wep[256];
	tq_client *c;
	uint8_t args[2048];
	tq_task **ring;
	size_t ringcap;
};

/* ---- the broker's view, through STATS ---- */

/* Reads "tasks" and the length of "workers" from a STATS_REPLY map. */
static int parse_stats(const uint8_t *data, size_t len, uint64_t *tasks, uint32_t *workers)
{
	tq_reader r;
	uint32_t n;
	tq_reader_init(&r, data, len);
	if (tq_read_map(&r, &n) != TQ_OK)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		size_t kl;
		if (tq_read_str(&r, &k, &kl) != TQ_OK)
			return -1;
		if (kl == 5 && memcmp(k, "tasks", 5) == 0) {
			if (tq_read_uint(&r, tasks) != TQ_OK)
				return -1;
		} else if (kl == 7 && memcmp(k, "workers", 7) == 0) {
			if (tq_read_array(&r, workers) != TQ_OK)
				return -1;
			for (uint32_t j = 0; j < *workers; j++)
				if (tq_read_skip(&r) != TQ_OK)
					return -1;
		} else if (tq_read_skip(&r) != TQ_OK) {
			return -1;
		}
	}
	return 0;
}

static int broker_stats(tq_client *c, int64_t timeout_ms, uint64_t *tasks, uint32_t *workers)
{
	uint8_t *data;
	size_t len;
	*tasks = 0;
	*workers = 0;
	if (tq_client_stats(c, timeout_ms, &data, &len) != TQ_OK)
		return -1;
	int rc = parse_stats(data, len, tasks, workers);
	free(data);
	return rc;
}

/* ---- starting and stopping ---- */

static int start_broker(tqb_tq *t, const tqb_config *cfg)
{
	char live[16];
	snprintf(live, sizeof live, "%u", cfg->liveness ? cfg->liveness : 3);
	const char *argv[] = { TQB_BROKER_PATH,
		               "--clients",
		               "tcp://127.0.0.1:*",
		               "--workers",
		               "tcp://127.0.0.1:*",
		               "--liveness",
		               live,
		               NULL };
	char line[600];
	if (tqb_spawn(&t->broker, cfg->out_dir, "tq-broker", argv) != 0 ||
	    tqb_wait_log(&t->broker, "listening clients=", line, sizeof line, START_MS) != 0 ||
	    sscanf(line, "listening clients=%255s workers=%255s", t->cep, t->wep) != 2)
		return -1;
	return 0;
}

static int start_worker(tqb_tq *t, const tqb_config *cfg)
{
	char conc[16], pre[16], name[32], live[16];
	snprintf(live, sizeof live, "%u", cfg->liveness ? cfg->liveness : 3);
	snprintf(conc, sizeof conc, "%u", cfg->in_loop ? 1 : cfg->concurrency);
	if (cfg->prefetch == TQB_PREFETCH_AUTO)
		snprintf(pre, sizeof pre, "auto");
	else
		snprintf(pre, sizeof pre, "%u", cfg->prefetch);
	snprintf(name, sizeof name, "bench-w%u", t->nworkers);
	const char *argv[] = { TQB_WORKER_PATH,
		               "--broker",
		               t->wep,
		               "--concurrency",
		               conc,
		               "--prefetch",
		               pre,
		               "--liveness",
		               live,
		               "--name",
		               name,
		               "--isolation",
		               cfg->in_loop ? "none" : "process",
		               NULL };
	if (tqb_spawn(&t->workers[t->nworkers], cfg->out_dir, "tq-worker", argv) != 0)
		return -1;
	t->nworkers++;
	return 0;
}

/* Waits until the broker lists `want` workers. */
static int wait_workers(tqb_tq *t, uint32_t want)
{
	uint64_t until = tqb_now_ns() + (uint64_t)START_MS * 1000000u;
	while (tqb_now_ns() < until) {
		uint64_t tasks;
		uint32_t n;
		if (broker_stats(t->c, 2000, &tasks, &n) == 0 && n >= want)
			return 0;
		tqb_sleep_ms(10);
	}
	fprintf(stderr, "tq-bench: %u tq-workers did not register (see %s)\n", want,
	        t->workers[0].log);
	return -1;
}

void tqb_tq_stop(tqb_tq **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	tqb_tq *t = *tp;
	/* Peers first: the client then has nothing to say goodbye to. */
	for (unsigned i = 0; i < t->nworkers; i++)
		tqb_stop(&t->workers[i], SIGKILL, 1000);
	tqb_stop(&t->broker, SIGKILL, 1000);
	tq_client_destroy(&t->c);
	for (size_t i = 0; i < t->ringcap; i++)
		tq_task_destroy(&t->ring[i]);
	free(t->ring);
	free(t);
	*tp = NULL;
}

int tqb_tq_start(tqb_tq **out, const tqb_config *cfg, unsigned workers)
{
	if (workers > MAX_TQ_WORKERS)
		return -1;
	tqb_tq *t = calloc(1, sizeof *t);
	if (t == NULL)
		return -1;
	t->broker.pid = -1;
	t->capacity = (cfg->in_loop ? 1 : cfg->concurrency) +
	              (cfg->prefetch == TQB_PREFETCH_AUTO ? 0 : cfg->prefetch);
	tq_client_opts o = { .name = "tq-bench" };
	if (start_broker(t, cfg) != 0)
		goto fail;
	o.broker = t->cep;
	if (tq_client_new(&t->c, &o) != TQ_OK)
		goto fail;
	for (unsigned i = 0; i < workers; i++)
		if (start_worker(t, cfg) != 0)
			goto fail;
	if (wait_workers(t, workers) != 0)
		goto fail;
	*out = t;
	return 0;
fail:
	tqb_tq_stop(&t);
	return -1;
}

static int ring_reserve(tqb_tq *t, size_t n)
{
	if (t->ringcap >= n)
		return 0;
	tq_task **r = realloc(t->ring, n * sizeof *r);
	if (r == NULL)
		return -1;
	memset(r + t->ringcap, 0, (n - t->ringcap) * sizeof *r);
	t->ring = r;
	t->ringcap = n;
	return 0;
}

/* ---- one task ---- */

static int submit(tqb_tq *t, const char *fn, const void *args, size_t len, tq_task **slot)
{
	tq_err e = tq_client_async(t->c, fn, args, len, NULL, slot);
	if (e != TQ_OK) {
		fprintf(stderr, "tq-bench: async %s: %s\n", fn, tq_strerror(e));
		return -1;
	}
	return 0;
}

static int finish(tq_task **slot)
{
	tq_err e = tq_task_await(*slot, AWAIT_MS);
	if (e != TQ_OK) {
		fprintf(stderr, "tq-bench: await: %s: %s\n", tq_strerror(e), tq_task_error(*slot));
		tq_task_destroy(slot);
		return -1;
	}
	tq_task_destroy(slot);
	return 0;
}

int tqb_tq_latency(tqb_tq *t, size_t warm, size_t n, uint64_t *ns)
{
	size_t len = tqb_make_args(t->args, 16);
	if (ring_reserve(t, 1) != 0)
		return -1;
	for (size_t i = 0; i < warm + n; i++) {
		uint64_t t0 = tqb_now_ns();
		if (submit(t, "noop", t->args, len, &t->ring[0]) != 0 || finish(&t->ring[0]) != 0)
			return -1;
		if (i >= warm)
			ns[i - warm] = tqb_now_ns() - t0;
	}
	return 0;
}

/* n tasks with `window` outstanding; *elapsed from the first submission
 * to the last completion. */
static int run_window(tqb_tq *t, const char *fn, const void *args, size_t len, size_t window,
                      size_t n, uint64_t *elapsed)
{
	if (ring_reserve(t, window) != 0)
		return -1;
	size_t sent = 0, done = 0;
	uint64_t t0 = tqb_now_ns();
	for (; sent < n && sent < window; sent++)
		if (submit(t, fn, args, len, &t->ring[sent % window]) != 0)
			return -1;
	while (done < n) {
		tq_task **slot = &t->ring[done % window];
		if (finish(slot) != 0)
			return -1;
		done++;
		if (sent < n) {
			if (submit(t, fn, args, len, slot) != 0)
				return -1;
			sent++;
		}
	}
	*elapsed = tqb_now_ns() - t0;
	return 0;
}

/* run_window with the no-op function, for tqb_throughput. */
static int noop_window(void *sys, unsigned window, size_t len, size_t n, uint64_t *elapsed)
{
	tqb_tq *t = sys;
	return run_window(t, "noop", t->args, len, window, n, elapsed);
}

int tqb_tq_throughput(tqb_tq *t, unsigned window, size_t size, size_t n, double *per_s)
{
	return tqb_throughput(noop_window, t, window, tqb_make_args(t->args, size), n, per_s);
}

/* A load against a broker someone else started, for profiling one
 * process at a time: `tq-bench --role tq-load EP WINDOW N SIZE`. */
int tqb_tq_load_main(const char *endpoint, unsigned window, size_t n, size_t size)
{
	tqb_tq t = { .broker.pid = -1 };
	tq_client_opts o = { .broker = endpoint, .name = "tq-bench-load" };
	if (size > sizeof t.args || tq_client_new(&t.c, &o) != TQ_OK)
		return 1;
	size_t len = tqb_make_args(t.args, size);
	uint64_t ns;
	int rc = run_window(&t, "noop", t.args, len, window, n, &ns);
	if (rc == 0)
		printf("%zu tasks, window %u, %zu B: %.0f tasks/s\n", n, window, size,
		       (double)n / ((double)ns / 1e9));
	tq_client_destroy(&t.c);
	for (size_t i = 0; i < t.ringcap; i++)
		tq_task_destroy(&t.ring[i]);
	free(t.ring);
	return rc == 0 ? 0 : 1;
}

/* ---- many awaits ---- */

static int submit_all(tqb_tq *t, size_t n, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (submit(t, "noop", t->args, len, &t->ring[i]) != 0)
			return -1;
	return 0;
}

static void destroy_all(tqb_tq *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tq_task_destroy(&t->ring[i]);
}

int tqb_tq_many(tqb_tq *t, const tqb_config *cfg, tqb_results *r)
{
	size_t n = cfg->many_tasks;
	size_t len = tqb_make_args(t->args, 16);
	double many[16], each[16], piped[16], ratio[16];
	unsigned reps = cfg->many_reps < 16 ? cfg->many_reps : 16;
	if (ring_reserve(t, n) != 0)
		return -1;
	for (unsigned k = 0; k < reps; k++) {
		/* All n submitted, then one await_many. */
		uint64_t t0 = tqb_now_ns();
		if (submit_all(t, n, len) != 0)
			return -1;
		size_t failed = 0;
		tq_err e = tq_await_many(t->ring, n, AWAIT_MS, &failed);
		many[k] = (double)(tqb_now_ns() - t0) / 1e6;
		if (e != TQ_OK) {
			fprintf(stderr, "tq-bench: await_many: %s: %s\n", tq_strerror(e),
			        tq_task_error(t->ring[failed]));
			destroy_all(t, n);
			return -1;
		}
		destroy_all(t, n);

		/* The same, awaited one by one in order. */
		t0 = tqb_now_ns();
		if (submit_all(t, n, len) != 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (finish(&t->ring[i]) != 0) {
				destroy_all(t, n);
				return -1;
			}
		each[k] = (double)(tqb_now_ns() - t0) / 1e6;

		/* The pipelined run of the same n tasks: a window of 1,000. */
		uint64_t ns;
		if (run_window(t, "noop", t->args, len, 1000, n, &ns) != 0)
			return -1;
		piped[k] = (double)ns / 1e6;
		ratio[k] = many[k] / piped[k];
	}
	r->have_many = true;
	r->many_ratio = tqb_median(ratio, reps);
	r->many_ms = tqb_median(many, reps);
	r->each_ms = tqb_median(each, reps);
	r->pipelined_ms = tqb_median(piped, reps);
	return 0;
}

/* ---- scale ---- */

/* One side of the scale step: a broker holding q tasks for one worker. */
typedef struct {
	tqb_tq *t;
	size_t q;
	size_t done;       /* completions so far */
	size_t measured;   /* completions timed */
	double seconds;    /* time of the timed ones */
	long cpu_ticks;    /* the broker's CPU time over the timed ones */
	double last_per_s; /* of the latest round */
} scale_side;

/* The broker's user + system CPU time, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the command name's closing paren. */
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (long)(ut + st);
}

/* Stops or continues the side's worker (its loop, zygote and executors). */
static void worker_signal(scale_side *s, int sig)
{
	kill(-s->t->workers[0].pid, sig);
}

/* Starts the side and queues q tasks behind a worker with no room: plugs
 * (sleeps) take all its capacity first, so the queue builds in the broker
 * while the function still has a worker (a function with none would make
 * the broker send a NOTICE per task, which is not the cost measured here).
 * Leaves the worker stopped (SIGSTOP) with its plugs cancelled. */
static int side_fill(scale_side *s, const tqb_config *cfg, size_t q, tqb_results *r)
{
	tqb_config patient = *cfg;
	/* The worker is stopped between the timed parts: give it and the
	 * broker 25 s of silence before either gives up on the other. */
	patient.liveness = 100;
	/* The plugs must fill a known capacity: a fixed prefetch here. */
	if (patient.prefetch == TQB_PREFETCH_AUTO)
		patient.prefetch = 64;
	s->q = q;
	if (tqb_tq_start(&s->t, &patient, 1) != 0)
		return -1;
	tqb_tq *t = s->t;
	size_t len = tqb_make_args(t->args, 16);
	size_t plugs = t->capacity;
	tq_task **plug = calloc(plugs, sizeof *plug);
	tq_buf *sleep_args = NULL;
	int rc = -1;
	if (plug == NULL || ring_reserve(t, q) != 0 || tq_buf_new(&sleep_args) != TQ_OK)
		goto out;
	tq_pack_array(sleep_args, 1);
	tq_pack_int(sleep_args, 600000);
	for (size_t i = 0; i < plugs; i++)
		if (submit(t, "sleep", tq_buf_data(sleep_args), tq_buf_size(sleep_args),
		           &plug[i]) != 0)
			goto out;
	uint64_t ntasks;
	uint32_t nw;
	/* The baseline: the broker has served this client and worker. */
	if (broker_stats(t->c, AWAIT_MS, &ntasks, &nw) != 0)
		goto out;
	long rss0 = tqb_rss_kb(t->broker.pid);
	uint64_t f0 = tqb_now_ns();
	if (submit_all(t, q, len) != 0)
		goto out;
	/* STATS queues behind the submissions: its answer comes when the
	 * broker holds them all. */
	if (broker_stats(t->c, 120000, &ntasks, &nw) != 0 || ntasks < q + plugs) {
		fprintf(stderr, "tq-bench: the broker holds %llu tasks, not %zu\n",
		        (unsigned long long)ntasks, q + plugs);
		goto out;
	}
	double fill_s = (double)(tqb_now_ns() - f0) / 1e9;
	long rss1 = tqb_rss_kb(t->broker.pid);
	if (r != NULL) {
		r->broker_rss_before_kb = (double)rss0;
		r->broker_rss_after_kb = (double)rss1;
		r->broker_bytes_per_task =
		    ((double)(rss1 - rss0) * 1024.0) / (double)q - (double)len;
		r->fill_s = fill_s;
	}
	worker_signal(s, SIGSTOP);
	rc = 0;
out:
	if (plug != NULL)
		for (size_t i = 0; i < plugs; i++)
			tq_task_destroy(&plug[i]); /* cancels: the worker kills them */
	free(plug);
	tq_buf_destroy(&sleep_args);
	return rc;
}

/* Lets the side's worker run for `n` completions, each replaced by a new
 * submission so that q stay queued; times the last `timed` of them. */
static int side_run(scale_side *s, size_t n, size_t timed)
{
	tqb_tq *t = s->t;
	size_t len = tqb_make_args(t->args, 16);
	uint64_t t0 = 0;
	long c0 = 0;
	worker_signal(s, SIGCONT);
	for (size_t i = 0; i < n; i++) {
		if (i == n - timed) {
			t0 = tqb_now_ns();
			c0 = cpu_ticks(t->broker.pid);
		}
		tq_task **slot = &t->ring[s->done % s->q];
		if (finish(slot) != 0 || submit(t, "noop", t->args, len, slot) != 0)
			return -1;
		s->done++;
	}
	double took = (double)(tqb_now_ns() - t0) / 1e9;
	s->seconds += took;
	s->cpu_ticks += cpu_ticks(t->broker.pid) - c0;
	s->measured += timed;
	s->last_per_s = (double)timed / took;
	worker_signal(s, SIGSTOP);
	return 0;
}

int tqb_tq_scale(const tqb_config *cfg, tqb_results *r)
{
	/* Both queues are held at once and timed in short alternating rounds;
	 * the ratio is the median of the rounds' paired ratios, so that a
	 * burst of other work on the machine spoils a pair, not the figure. */
	enum { MAX_ROUNDS = 64 };
	unsigned rounds = cfg->scale_rounds < MAX_ROUNDS ? cfg->scale_rounds : MAX_ROUNDS;
	double ratio[MAX_ROUNDS];
	scale_side small = { 0 }, big = { 0 };
	int rc = -1;
	fprintf(stderr, "tq-bench: scale: queueing %zu and %zu tasks\n", cfg->scale_small,
	        cfg->scale_queued);
	if (side_fill(&small, cfg, cfg->scale_small, NULL) != 0 ||
	    side_fill(&big, cfg, cfg->scale_queued, r) != 0)
		goto out;
	size_t chunk = cfg->scale_tasks / rounds, warm = chunk / 4;
	for (unsigned i = 0; i < rounds; i++) {
		/* Round 0 also absorbs the cancelled plugs and new executors;
		 * the order alternates so that neither side always goes first. */
		size_t lead = i == 0 ? chunk : warm;
		scale_side *first = i % 2 ? &big : &small, *second = i % 2 ? &small : &big;
		if (side_run(first, lead + chunk, chunk) != 0 ||
		    side_run(second, lead + chunk, chunk) != 0)
			goto out;
		ratio[i] = big.last_per_s / small.last_per_s;
		if (cfg->verbose)
			fprintf(stderr,
			        "tq-bench: scale round %u: %zu queued %.0f/s, %zu queued %.0f/s\n",
			        i, cfg->scale_small, small.last_per_s, cfg->scale_queued,
			        big.last_per_s);
	}
	long hz = sysconf(_SC_CLK_TCK);
	r->tps_small_queued = (double)small.measured / small.seconds;
	r->tps_big_queued = (double)big.measured / big.seconds;
	r->scale_ratio = tqb_median(ratio, rounds);
	r->broker_us_small = (double)small.cpu_ticks / (double)hz * 1e6 / (double)small.measured;
	r->broker_us_big = (double)big.cpu_ticks / (double)hz * 1e6 / (double)big.measured;
	r->have_scale = true;
	rc = 0;
out:
	if (small.t != NULL)
		worker_signal(&small, SIGCONT);
	if (big.t != NULL)
		worker_signal(&big, SIGCONT);
	tqb_tq_stop(&small.t);
	tqb_tq_stop(&big.t);
	return rc;
}

/* ---- parallel speed-up ---- */

static uint64_t burn(uint64_t rounds)
{
	/* The loop of tq-worker's `burn`, to size its tasks. */
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	for (uint64_t i = 0; i < rounds; i++) {
		h ^= i;
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	return h;
}

static uint64_t calibrate(double ms)
{
	uint64_t rounds = 1u << 20;
	volatile uint64_t sink;
	double best = 1e30;
	for (int i = 0; i < 5; i++) {
		uint64_t t0 = tqb_now_ns();
		sink = burn(rounds);
		double took = (double)(tqb_now_ns() - t0);
		if (took < best)
			best = took;
	}
	(void)sink;
	return (uint64_t)((double)rounds * ms * 1e6 / best);
}

int tqb_tq_speedup(const tqb_config *cfg, tqb_results *r)
{
	r->burn_rounds = calibrate(cfg->burn_ms);
	tq_buf *args;
	if (tq_buf_new(&args) != TQ_OK)
		return -1;
	tq_pack_array(args, 1);
	tq_pack_int(args, (int64_t)r->burn_rounds);
	int rc = 0;
	for (unsigned k = 1; k <= cfg->ncpu && k <= MAX_TQ_WORKERS && r->nk < TQB_MAX_K; k *= 2) {
		tqb_tq *t;
		/* One executor per worker, no prefetch: the broker spreads the
		 * tasks evenly and the last ones are not stuck behind others. */
		tqb_config one = *cfg;
		one.concurrency = 1;
		one.prefetch = 0;
		if (tqb_tq_start(&t, &one, k) != 0) {
			rc = -1;
			break;
		}
		size_t n = cfg->burn_tasks;
		uint64_t t0 = tqb_now_ns();
		rc = ring_reserve(t, n);
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = submit(t, "burn", tq_buf_data(args), tq_buf_size(args), &t->ring[i]);
		size_t failed = 0;
		if (rc == 0 && tq_await_many(t->ring, n, 120000, &failed) != TQ_OK) {
			fprintf(stderr, "tq-bench: burn: %s\n", tq_task_error(t->ring[failed]));
			rc = -1;
		}
		double s = (double)(tqb_now_ns() - t0) / 1e9;
		/* How evenly the broker spread them: the busiest worker's share. */
		size_t most = 0;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			size_t same = 0;
			for (size_t j = 0; j < n; j++)
				same += strcmp(tq_task_worker(t->ring[i]),
				               tq_task_worker(t->ring[j])) == 0;
			if (same > most)
				most = same;
		}
		destroy_all(t, n);
		tqb_tq_stop(&t);
		if (rc != 0)
			break;
		r->k[r->nk] = k;
		r->k_s[r->nk] = s;
		r->k_most[r->nk] = most;
		r->nk++;
	}
	tq_buf_destroy(&args);
	return rc;
}
