/*
 * bench.h - tq-bench's shared model: the run's configuration, the figures
 * each part measures, and the functions of each file.
 *
 *   main.c     options, child roles, the order of the runs
 *   proc.c     spawning, watching and killing child processes
 *   stats.c    clocks, latency samples and percentiles
 *   floor.c    the raw ZeroMQ relay (the physical floor) and its runs
 *   tq_runs.c  tq's runs: latency, throughput, scale, await_many, speed-up
 *   gearman.c  Gearman's runs (compiled only where libgearman is found)
 *   report.c   the table on stdout, results.json and the plot data
 *
 * Every figure is measured in this one run and compared as a ratio with
 * its peers measured back to back, so that a noisy machine moves them
 * together.  Nothing here decides pass or fail: targets are reported.
 */
#ifndef TQB_BENCH_H
#define TQB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQB_PREFETCH_AUTO 0xffffffffu
#include <sys/types.h>

/* The systems compared side by side. */
/* SYS_TQI is tq with its handlers run in the worker's loop
 * (tq-worker --isolation none), as Gearman's and the floor's workers run
 * theirs; SYS_TQ, the default, runs them in executor processes. */
enum { SYS_TQ, SYS_FLOOR, SYS_GEARMAN, SYS_TQI, SYS_N };

/* Throughput runs: windows x sizes x worker counts. */
#define TQB_MAX_POINTS 32
#define TQB_MAX_K 8

typedef struct {
	bool quick;
	const char *json_path; /* NULL: no JSON */
	const char *out_dir;   /* logs and plot data */
	unsigned concurrency;  /* tq-worker --concurrency (its default: the cores) */
	unsigned prefetch;     /* tq-worker --prefetch; TQB_PREFETCH_AUTO: its default */
	unsigned liveness;     /* tq-broker and tq-worker --liveness; 0: theirs */
	bool gearman;          /* false: --no-gearman */
	bool with_inline;      /* false: --no-inline (SYS_TQI left out) */
	bool in_loop;          /* the tq-workers started run --isolation none */
	bool tq_only;          /* --tq-only: neither floor nor Gearman (profiling) */
	bool verbose;          /* -v: the figures of each round too */

	/* sizes of the runs, set from quick */
	size_t lat_tasks;      /* measured round trips, after the warm-up */
	size_t lat_warmup;     /* round trips thrown away first */
	size_t tput_tasks;     /* tasks per throughput point */
	size_t scale_queued;   /* the big queue: 1,000,000 (quick: 10,000) */
	size_t scale_small;    /* the small queue: 1,000 */
	size_t scale_tasks;    /* tasks timed on each queue */
	unsigned scale_rounds; /* alternating rounds they are timed in */
	unsigned rounds;       /* latency and throughput: rounds taking turns */
	size_t many_tasks;     /* await_many */
	unsigned many_reps;
	size_t burn_tasks; /* speed-up: tasks of ~burn_ms each */
	double burn_ms;
	unsigned ncpu;
} tqb_config;

typedef struct {
	bool have;
	size_t n;
	double p50_us, p99_us, p999_us, mean_us, max_us;
} tqb_latency;

typedef struct {
	bool have;
	unsigned window;
	size_t size; /* argument bytes */
	unsigned workers;
	size_t n;          /* tasks measured */
	double per_s;      /* tasks (messages, jobs) per second: median of rounds */
	double vs_floor;   /* tq and tq inline: median of paired rounds' ratios; NAN if none */
	double vs_gearman; /* likewise */
} tqb_point;

typedef struct {
	tqb_latency lat[SYS_N];
	tqb_point points[SYS_N][TQB_MAX_POINTS];
	size_t npoints[SYS_N];

	/* scale */
	bool have_scale;
	double tps_small_queued, tps_big_queued;
	double scale_ratio;           /* big / small: the median of paired rounds */
	double broker_bytes_per_task; /* beyond the payload */
	double broker_rss_before_kb, broker_rss_after_kb;
	double fill_s;                         /* time to queue the big queue */
	double broker_us_small, broker_us_big; /* broker CPU per task */
	bool have_gm_scale;
	double gm_jps_small_queued, gm_jps_big_queued;
	double gm_bytes_per_job; /* beyond the payload */

	/* many awaits */
	bool have_many;
	double many_ms, each_ms, pipelined_ms; /* medians of the reps */
	double many_ratio;                     /* median of the reps' many/pipelined */

	/* speed-up */
	size_t nk;
	unsigned k[TQB_MAX_K];
	double k_s[TQB_MAX_K];
	size_t k_most[TQB_MAX_K]; /* tasks run by the busiest worker */
	uint64_t burn_rounds;

	double elapsed_s;
	double load_before, load_after; /* 1-minute load average */
	bool gearman_built;             /* libgearman was found at build time */
	bool gearman_ran;
	char gearman_why[128]; /* why Gearman is absent */
	char tq_worker_opts[64];
} tqb_results;

/* ---- stats.c ---- */
uint64_t tqb_now_ns(void);
void tqb_sleep_ms(unsigned ms);
/* Sorts the n samples (ns) and fills *l in microseconds. */
void tqb_latency_of(uint64_t *ns, size_t n, tqb_latency *l);
/* Writes a CDF of the sorted samples (us, fraction) to path. */
int tqb_write_cdf(const char *path, const uint64_t *sorted_ns, size_t n);
double tqb_median(double *v, size_t n);
/* An argument of exactly size bytes of msgpack: [bin]. */
size_t tqb_make_args(uint8_t *buf, size_t size);
/* Runs n tasks of a system keeping `window` in flight, arguments len
 * bytes; *elapsed_ns is the time it took.  0 or -1. */
typedef int (*tqb_window_fn)(void *sys, unsigned window, size_t len, size_t n,
                             uint64_t *elapsed_ns);
/* One throughput point the same way for every system: a warm-up of
 * max(2 x window, 1,000) tasks (at most n), then n timed. */
int tqb_throughput(tqb_window_fn run, void *sys, unsigned window, size_t len, size_t n,
                   double *per_s);

/* ---- proc.c ---- */
typedef struct {
	pid_t pid; /* also its process group: each child leads its own */
	char log[512];
	char what[32];
} tqb_proc;

/* Installs the clean-up that kills every child on exit, on SIGINT/SIGTERM
 * and when the watchdog (limit_s of wall time) fires. */
void tqb_proc_init(unsigned limit_s);
/* Starts argv[0] with stdout and stderr to out_dir/what-N.log, in its own
 * process group, killed when tq-bench dies.  Returns 0 or -1. */
int tqb_spawn(tqb_proc *p, const char *out_dir, const char *what, const char *const argv[]);
/* Sends sig to p's process group, waits up to grace_ms for p to exit,
 * then kills the group.  Accepts a stopped or never-started p. */
void tqb_stop(tqb_proc *p, int sig, unsigned grace_ms);
/* True while p has not exited. */
bool tqb_alive(tqb_proc *p);
/* Waits up to timeout_ms for a line containing needle in p's log; copies
 * the line (from needle on) into line.  Returns 0, or -1 on timeout or
 * when p died. */
int tqb_wait_log(tqb_proc *p, const char *needle, char *line, size_t n, unsigned timeout_ms);
/* Resident memory of pid in kB (VmRSS), or -1. */
long tqb_rss_kb(pid_t pid);
/* This program's own path, for starting child roles. */
const char *tqb_self(void);

/* ---- floor.c ---- */
/* Child roles: `--role floor-relay` and `--role floor-echo EP`. */
int tqb_floor_relay_main(void);
int tqb_floor_echo_main(const char *endpoint);

typedef struct tqb_floor tqb_floor;
/* Starts a relay and `workers` echo workers, connects a client. */
int tqb_floor_start(tqb_floor **out, const tqb_config *cfg, unsigned workers);
void tqb_floor_stop(tqb_floor **fp);
/* Round trips of a 16 B no-op, one at a time: warm ones, then n timed
 * into ns. */
int tqb_floor_latency(tqb_floor *f, size_t warm, size_t n, uint64_t *ns);
int tqb_floor_throughput(tqb_floor *f, unsigned window, size_t size, size_t n, double *per_s);
/* Child role `floor-load`: a throughput run against a running relay. */
int tqb_floor_load_main(const char *endpoint, unsigned window, size_t n, size_t size);

/* ---- tq_runs.c ---- */
typedef struct tqb_tq tqb_tq;
/* Starts a broker and `workers` tq-workers with the configured options,
 * connects a client and waits until every worker has registered. */
int tqb_tq_start(tqb_tq **out, const tqb_config *cfg, unsigned workers);
void tqb_tq_stop(tqb_tq **tp);
int tqb_tq_latency(tqb_tq *t, size_t warm, size_t n, uint64_t *ns);
int tqb_tq_throughput(tqb_tq *t, unsigned window, size_t size, size_t n, double *per_s);
/* await_many vs one by one vs a pipelined window, medians of reps. */
int tqb_tq_many(tqb_tq *t, const tqb_config *cfg, tqb_results *r);
/* The scale step: two brokers, one holding scale_small tasks and one
 * scale_queued (its memory is measured), each with one worker; their
 * throughput is timed in alternating rounds while the queues stay full. */
int tqb_tq_scale(const tqb_config *cfg, tqb_results *r);
/* Child role `tq-load`: a throughput run against a running broker. */
int tqb_tq_load_main(const char *endpoint, unsigned window, size_t n, size_t size);
/* Speed-up of `burn` over k = 1, 2, 4... workers (up to the cores). */
int tqb_tq_speedup(const tqb_config *cfg, tqb_results *r);

/* ---- gearman.c ---- */
/* True when tq-bench was built with libgearman. */
bool tqb_gearman_built(void);
int tqb_gearman_echo_main(const char *port);

typedef struct tqb_gearman tqb_gearman;
/* Starts gearmand and `workers` echo workers.  -1 (with why) when
 * gearmand cannot be started or Gearman is not built in. */
int tqb_gearman_start(tqb_gearman **out, const tqb_config *cfg, unsigned workers, char *why,
                      size_t whylen);
void tqb_gearman_stop(tqb_gearman **gp);
int tqb_gearman_latency(tqb_gearman *g, size_t warm, size_t n, uint64_t *ns);
int tqb_gearman_throughput(tqb_gearman *g, unsigned window, size_t size, size_t n, double *per_s);
/* The scale step through gearmand: q background jobs with no worker
 * (memory), then one worker drains them. */
int tqb_gearman_scale(const tqb_config *cfg, size_t q, double *per_s, double *bytes_per_job);

/* ---- report.c ---- */
/* The throughput point of sys for (window, size, workers), or NULL. */
const tqb_point *tqb_point_find(const tqb_results *r, int sys, unsigned window, size_t size,
                                unsigned workers);
/* Adds a point; returns it (NULL when full). */
tqb_point *tqb_point_add(tqb_results *r, int sys, unsigned window, size_t size, unsigned workers,
                         size_t n, double per_s);
void tqb_report_table(const tqb_config *cfg, const tqb_results *r);
int tqb_report_json(const tqb_config *cfg, const tqb_results *r, const char *path);
/* Writes out_dir/throughput.dat (window vs tasks/s per system). */
int tqb_report_dat(const tqb_config *cfg, const tqb_results *r);

#endif
