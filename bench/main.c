/*
 * main.c - tq-bench: measures what tq adds around the work, next to the
 * floor of its own transport (a raw ZeroMQ relay) and Gearman, in one run.
 *
 *   tq-bench [--quick] [--json PATH] [--out DIR] [--concurrency N]
 *            [--prefetch N] [--only SECTIONS] [--no-gearman]
 *
 * Each measurement runs the floor, tq and Gearman back to back on the same
 * machine, so their ratios hold however busy the machine is.  The same
 * binary also runs the floor's relay and echo workers and the Gearman
 * workers as child processes (`--role ...`), so that every process in a
 * run is started, watched and killed by this one.
 */
#include "bench/bench.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TQB_OUT_DIR
#define TQB_OUT_DIR "bench/out"
#endif

enum { SEC_LATENCY = 1, SEC_THROUGHPUT = 2, SEC_SCALE = 4, SEC_MANY = 8, SEC_SPEEDUP = 16 };

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tq-bench [options]\n"
	        "\n"
	        "Measures tq's latency, throughput, scale, await_many and speed-up next to a\n"
	        "raw ZeroMQ relay (the floor) and Gearman, in one run.\n"
	        "\n"
	        "  --quick            the reduced run (under a minute)\n"
	        "  --json PATH        write the figures to PATH\n"
	        "  --out DIR          logs and plot data [" TQB_OUT_DIR "]\n"
	        "  --concurrency N    tq-worker --concurrency [the cores]\n"
	        "  --prefetch N|auto  tq-worker --prefetch [auto, tq-worker's default]\n"
	        "  --only LIST        sections: latency,throughput,scale,many,speedup\n"
	        "  --no-gearman       leave Gearman out\n"
	        "  --no-inline        leave out tq with --isolation none (handlers in the\n"
	        "                     worker's loop), measured beside tq's default\n"
	        "  --tq-only          only tq's side of each run (for profiling)\n"
	        "  -v, --verbose      also each round of the throughput points and the scale step\n"
	        "  -h, --help         this text\n");
}

static void sizes(tqb_config *c)
{
	if (c->quick) {
		c->lat_tasks = 2000;
		c->lat_warmup = 200;
		c->tput_tasks = 10000;
		c->scale_queued = 10000;
		c->scale_tasks = 8000;
		c->scale_rounds = 8;
		c->many_tasks = 10000;
		c->many_reps = 3;
		c->burn_tasks = 16;
		c->rounds = 2;
	} else {
		c->lat_tasks = 20000;
		c->lat_warmup = 2000;
		c->tput_tasks = 100000;
		c->scale_queued = 1000000;
		c->scale_tasks = 100000;
		c->scale_rounds = 20;
		c->many_tasks = 10000;
		c->many_reps = 7;
		c->burn_tasks = 100;
		c->rounds = 5;
	}
	c->scale_small = 1000;
	c->burn_ms = 10;
}

static int parse_sections(const char *s, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} all[] = { { "latency", SEC_LATENCY },
		    { "throughput", SEC_THROUGHPUT },
		    { "scale", SEC_SCALE },
		    { "many", SEC_MANY },
		    { "speedup", SEC_SPEEDUP } };
	*out = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		bool found = false;
		for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
			if (strlen(all[i].name) == n && strncmp(s, all[i].name, n) == 0) {
				*out |= all[i].bit;
				found = true;
			}
		if (!found)
			return -1;
		s += n;
		if (*s == ',')
			s++;
	}
	return *out ? 0 : -1;
}

/* The systems of one phase, started together so that each measurement
 * can run all three back to back. */
typedef struct {
	tqb_floor *floor;
	tqb_tq *tq;
	tqb_tq *tqi; /* tq-worker --isolation none; NULL when left out */
	tqb_gearman *gm;
} trio;

static int trio_start(trio *t, const tqb_config *cfg, unsigned workers, tqb_results *r)
{
	memset(t, 0, sizeof *t);
	if (!cfg->tq_only && tqb_floor_start(&t->floor, cfg, workers) != 0) {
		fprintf(stderr, "tq-bench: cannot start the floor relay\n");
		return -1;
	}
	if (tqb_tq_start(&t->tq, cfg, workers) != 0) {
		fprintf(stderr, "tq-bench: cannot start tq\n");
		return -1;
	}
	tqb_config in_loop = *cfg;
	in_loop.in_loop = true;
	if (cfg->with_inline && tqb_tq_start(&t->tqi, &in_loop, workers) != 0) {
		fprintf(stderr, "tq-bench: cannot start tq with --isolation none\n");
		return -1;
	}
	if (cfg->gearman && r->gearman_built &&
	    tqb_gearman_start(&t->gm, cfg, workers, r->gearman_why, sizeof r->gearman_why) != 0) {
		fprintf(stderr, "tq-bench: Gearman absent: %s\n", r->gearman_why);
		t->gm = NULL;
	}
	r->gearman_ran = t->gm != NULL;
	return 0;
}

static void trio_stop(trio *t)
{
	tqb_floor_stop(&t->floor);
	tqb_tq_stop(&t->tq);
	tqb_tq_stop(&t->tqi);
	tqb_gearman_stop(&t->gm);
}

/* One throughput point for each system, timed in rounds that take turns
 * (floor, tq, Gearman, floor, ...).  Each system's rate is the median of
 * its rounds and tq's ratios are medians of the rounds' paired ratios, so
 * a burst of other work on the machine spoils a round, not the figure. */
static int point(trio *t, const tqb_config *cfg, tqb_results *r, unsigned window, size_t size,
                 unsigned workers, size_t n)
{
	enum { MAX_ROUNDS = 16 };
	unsigned rounds = cfg->rounds < MAX_ROUNDS ? cfg->rounds : MAX_ROUNDS;
	double rate[SYS_N][MAX_ROUNDS], vs_floor[2][MAX_ROUNDS], vs_gm[2][MAX_ROUNDS];
	size_t chunk = n / rounds;
	fprintf(stderr, "tq-bench: throughput window %u, %zu B, %u worker%s\n", window, size,
	        workers, workers > 1 ? "s" : "");
	for (unsigned i = 0; i < rounds; i++) {
		if (t->floor != NULL &&
		    tqb_floor_throughput(t->floor, window, size, chunk, &rate[SYS_FLOOR][i]) != 0)
			return -1;
		if (tqb_tq_throughput(t->tq, window, size, chunk, &rate[SYS_TQ][i]) != 0)
			return -1;
		if (t->gm != NULL &&
		    tqb_gearman_throughput(t->gm, window, size, chunk, &rate[SYS_GEARMAN][i]) != 0)
			return -1;
		if (t->tqi != NULL &&
		    tqb_tq_throughput(t->tqi, window, size, chunk, &rate[SYS_TQI][i]) != 0)
			return -1;
		if (cfg->verbose)
			fprintf(stderr,
			        "tq-bench: round %u: floor %.0f/s, tq %.0f/s, gearman %.0f/s, "
			        "inline %.0f/s\n",
			        i, t->floor != NULL ? rate[SYS_FLOOR][i] : 0.0, rate[SYS_TQ][i],
			        t->gm != NULL ? rate[SYS_GEARMAN][i] : 0.0,
			        t->tqi != NULL ? rate[SYS_TQI][i] : 0.0);
		for (int k = 0; k < (t->tqi != NULL ? 2 : 1); k++) {
			double mine = rate[k == 0 ? SYS_TQ : SYS_TQI][i];
			if (t->floor != NULL)
				vs_floor[k][i] = mine / rate[SYS_FLOOR][i];
			if (t->gm != NULL)
				vs_gm[k][i] = mine / rate[SYS_GEARMAN][i];
		}
	}
	if (t->floor != NULL)
		tqb_point_add(r, SYS_FLOOR, window, size, workers, chunk * rounds,
		              tqb_median(rate[SYS_FLOOR], rounds));
	if (t->gm != NULL)
		tqb_point_add(r, SYS_GEARMAN, window, size, workers, chunk * rounds,
		              tqb_median(rate[SYS_GEARMAN], rounds));
	for (int k = 0; k < 2; k++) {
		int sys = k == 0 ? SYS_TQ : SYS_TQI;
		if (sys == SYS_TQI && t->tqi == NULL)
			continue;
		tqb_point *p = tqb_point_add(r, sys, window, size, workers, chunk * rounds,
		                             tqb_median(rate[sys], rounds));
		if (p != NULL && t->floor != NULL)
			p->vs_floor = tqb_median(vs_floor[k], rounds);
		if (p != NULL && t->gm != NULL)
			p->vs_gearman = tqb_median(vs_gm[k], rounds);
	}
	return 0;
}

/* Latency in rounds that take turns, for the same reason; the percentiles
 * are over every round's samples. */
static int latency(trio *t, const tqb_config *cfg, tqb_results *r)
{
	uint64_t *ns[SYS_N] = { 0 };
	size_t per = cfg->lat_tasks / cfg->rounds, warm = cfg->lat_warmup / cfg->rounds;
	size_t n = per * cfg->rounds;
	int rc = -1;
	fprintf(stderr, "tq-bench: latency\n");
	for (int s = 0; s < SYS_N; s++)
		if ((ns[s] = malloc(n * sizeof *ns[s])) == NULL)
			goto out;
	for (unsigned i = 0; i < cfg->rounds; i++) {
		if (t->floor != NULL &&
		    tqb_floor_latency(t->floor, warm, per, ns[SYS_FLOOR] + i * per))
			goto out;
		if (tqb_tq_latency(t->tq, warm, per, ns[SYS_TQ] + i * per) != 0)
			goto out;
		if (t->gm != NULL &&
		    tqb_gearman_latency(t->gm, warm, per, ns[SYS_GEARMAN] + i * per))
			goto out;
		if (t->tqi != NULL && tqb_tq_latency(t->tqi, warm, per, ns[SYS_TQI] + i * per) != 0)
			goto out;
	}
	static const char *const file[SYS_N] = { "latency-tq.dat", "latency-floor.dat",
		                                 "latency-gearman.dat", "latency-tq-inline.dat" };
	bool ran[SYS_N] = { true, t->floor != NULL, t->gm != NULL, t->tqi != NULL };
	for (int s = 0; s < SYS_N; s++) {
		char cdf[600];
		snprintf(cdf, sizeof cdf, "%s/%s", cfg->out_dir, file[s]);
		if (!ran[s]) {
			remove(cdf);
			continue;
		}
		tqb_latency_of(ns[s], n, &r->lat[s]); /* sorts */
		tqb_write_cdf(cdf, ns[s], n);
	}
	rc = 0;
out:
	for (int s = 0; s < SYS_N; s++)
		free(ns[s]);
	return rc;
}

static int phase_one_worker(const tqb_config *cfg, unsigned sections, tqb_results *r)
{
	trio t;
	int rc = -1;
	if (trio_start(&t, cfg, 1, r) != 0)
		goto out;
	if ((sections & SEC_LATENCY) && latency(&t, cfg, r) != 0)
		goto out;
	if (sections & SEC_THROUGHPUT) {
		/* Small windows are slow per task: fewer tasks, same clarity. */
		static const unsigned windows[] = { 1, 10, 100, 1000 };
		for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
			size_t n = windows[i] < 100 ? cfg->tput_tasks / 5 : cfg->tput_tasks;
			if (point(&t, cfg, r, windows[i], 16, 1, n) != 0)
				goto out;
		}
		if (point(&t, cfg, r, 100, 1024, 1, cfg->tput_tasks) != 0 ||
		    point(&t, cfg, r, 1000, 1024, 1, cfg->tput_tasks) != 0)
			goto out;
	}
	if (sections & SEC_MANY) {
		fprintf(stderr, "tq-bench: await_many over %zu tasks\n", cfg->many_tasks);
		if (tqb_tq_many(t.tq, cfg, r) != 0)
			goto out;
	}
	rc = 0;
out:
	trio_stop(&t);
	return rc;
}

static int phase_four_workers(const tqb_config *cfg, tqb_results *r)
{
	trio t;
	int rc = -1;
	bool gm = r->gearman_ran;
	if (trio_start(&t, cfg, 4, r) != 0)
		goto out;
	if (point(&t, cfg, r, 100, 16, 4, cfg->tput_tasks) != 0 ||
	    point(&t, cfg, r, 1000, 16, 4, cfg->tput_tasks) != 0 ||
	    point(&t, cfg, r, 100, 1024, 4, cfg->tput_tasks) != 0 ||
	    point(&t, cfg, r, 1000, 1024, 4, cfg->tput_tasks) != 0)
		goto out;
	rc = 0;
out:
	r->gearman_ran = gm && r->gearman_ran;
	trio_stop(&t);
	return rc;
}

static int phase_scale(const tqb_config *cfg, tqb_results *r)
{
	double b;
	if (tqb_tq_scale(cfg, r) != 0)
		return -1;
	if (!cfg->gearman || !r->gearman_built)
		return 0;
	fprintf(stderr, "tq-bench: scale: gearman with %zu and %zu queued\n", cfg->scale_small,
	        cfg->scale_queued);
	if (tqb_gearman_scale(cfg, cfg->scale_small, &r->gm_jps_small_queued, &b) != 0 ||
	    tqb_gearman_scale(cfg, cfg->scale_queued, &r->gm_jps_big_queued,
	                      &r->gm_bytes_per_job) != 0)
		/* Absent is not a failure; failing after it ran is. */
		return r->gearman_ran ? -1 : 0;
	r->have_gm_scale = true;
	return 0;
}

/* Logs of an earlier run would confuse whoever reads this one's. */
static void remove_old_logs(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[1024];
	while (d != NULL && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0) {
			snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			unlink(path);
		}
	}
	if (d != NULL)
		closedir(d);
}

/* The 1-minute load average: how busy the machine was around the run. */
static double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f != NULL) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static int run_role(int argc, char **argv)
{
	const char *role = argv[2];
	if (strcmp(role, "floor-relay") == 0)
		return tqb_floor_relay_main();
	if (strcmp(role, "floor-echo") == 0 && argc > 3)
		return tqb_floor_echo_main(argv[3]);
	if (strcmp(role, "gearman-echo") == 0 && argc > 3)
		return tqb_gearman_echo_main(argv[3]);
	if (strcmp(role, "floor-load") == 0 && argc > 6)
		return tqb_floor_load_main(argv[3], (unsigned)strtoul(argv[4], NULL, 10),
		                           strtoul(argv[5], NULL, 10), strtoul(argv[6], NULL, 10));
	if (strcmp(role, "tq-load") == 0 && argc > 6)
		return tqb_tq_load_main(argv[3], (unsigned)strtoul(argv[4], NULL, 10),
		                        strtoul(argv[5], NULL, 10), strtoul(argv[6], NULL, 10));
	fprintf(stderr, "tq-bench: unknown role '%s'\n", role);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--role") == 0)
		return run_role(argc, argv);

	tqb_config cfg = { .out_dir = TQB_OUT_DIR, .gearman = true, .with_inline = true };
	unsigned sections = SEC_LATENCY | SEC_THROUGHPUT | SEC_SCALE | SEC_MANY | SEC_SPEEDUP;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cfg.ncpu = n > 0 ? (unsigned)n : 1;
	cfg.concurrency = cfg.ncpu;
	/* Prefetch hides the broker round trip between a worker's tasks;
	 * bench/README.md gives the figures with tq-worker's default (0) too. */
	cfg.prefetch = TQB_PREFETCH_AUTO;
	static const struct option longs[] = { { "quick", no_argument, 0, 'q' },
		                               { "json", required_argument, 0, 'j' },
		                               { "out", required_argument, 0, 'o' },
		                               { "concurrency", required_argument, 0, 'c' },
		                               { "prefetch", required_argument, 0, 'p' },
		                               { "only", required_argument, 0, 's' },
		                               { "no-gearman", no_argument, 0, 'G' },
		                               { "no-inline", no_argument, 0, 'I' },
		                               { "tq-only", no_argument, 0, 'T' },
		                               { "verbose", no_argument, 0, 'v' },
		                               { "help", no_argument, 0, 'h' },
		                               { 0, 0, 0, 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "hv", longs, NULL)) != -1) {
		switch (c) {
		case 'q':
			cfg.quick = true;
			break;
		case 'j':
			cfg.json_path = optarg;
			break;
		case 'o':
			cfg.out_dir = optarg;
			break;
		case 'c':
			cfg.concurrency = (unsigned)strtoul(optarg, NULL, 10);
			if (cfg.concurrency == 0 || cfg.concurrency > 1024) {
				fprintf(stderr, "tq-bench: --concurrency: 1..1024\n");
				return 2;
			}
			break;
		case 'p':
			cfg.prefetch = strcmp(optarg, "auto") == 0
			                   ? TQB_PREFETCH_AUTO
			                   : (unsigned)strtoul(optarg, NULL, 10);
			if (cfg.prefetch > 65535 && cfg.prefetch != TQB_PREFETCH_AUTO) {
				fprintf(stderr, "tq-bench: --prefetch: 0..65535\n");
				return 2;
			}
			break;
		case 's':
			if (parse_sections(optarg, &sections) != 0) {
				fprintf(stderr, "tq-bench: --only %s: unknown section\n", optarg);
				return 2;
			}
			break;
		case 'G':
			cfg.gearman = false;
			break;
		case 'I':
			cfg.with_inline = false;
			break;
		case 'v':
			cfg.verbose = true;
			break;
		case 'T':
			cfg.tq_only = true;
			cfg.gearman = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	sizes(&cfg);
	if (mkdir(cfg.out_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "tq-bench: cannot create %s: %s\n", cfg.out_dir, strerror(errno));
		return 1;
	}
	remove_old_logs(cfg.out_dir);
	/* Everything stops by itself: the watchdog bounds the whole run. */
	tqb_proc_init(cfg.quick ? 150 : 1800);

	static tqb_results r; /* large: off the stack */
	if (cfg.prefetch == TQB_PREFETCH_AUTO)
		snprintf(r.tq_worker_opts, sizeof r.tq_worker_opts,
		         "--concurrency %u --prefetch auto (the default)", cfg.concurrency);
	else
		snprintf(r.tq_worker_opts, sizeof r.tq_worker_opts,
		         "--concurrency %u --prefetch %u", cfg.concurrency, cfg.prefetch);
	r.gearman_built = tqb_gearman_built();
	if (!r.gearman_built)
		snprintf(r.gearman_why, sizeof r.gearman_why, "tq-bench built without libgearman");
	if (!cfg.gearman)
		snprintf(r.gearman_why, sizeof r.gearman_why, "left out (--no-gearman)");
	uint64_t t0 = tqb_now_ns();
	r.load_before = loadavg();
	int rc = 0;
	if ((sections & (SEC_LATENCY | SEC_THROUGHPUT | SEC_MANY)) &&
	    phase_one_worker(&cfg, sections, &r) != 0)
		rc = 1;
	if (rc == 0 && (sections & SEC_THROUGHPUT) && phase_four_workers(&cfg, &r) != 0)
		rc = 1;
	if (rc == 0 && (sections & SEC_SCALE) && phase_scale(&cfg, &r) != 0)
		rc = 1;
	if (rc == 0 && (sections & SEC_SPEEDUP)) {
		fprintf(stderr, "tq-bench: parallel speed-up\n");
		if (tqb_tq_speedup(&cfg, &r) != 0)
			rc = 1;
	}
	r.elapsed_s = (double)(tqb_now_ns() - t0) / 1e9;
	r.load_after = loadavg();
	if (rc != 0)
		fprintf(stderr,
		        "tq-bench: a run failed; the figures below are incomplete "
		        "(logs in %s)\n",
		        cfg.out_dir);
	tqb_report_table(&cfg, &r);
	tqb_report_dat(&cfg, &r);
	if (cfg.json_path != NULL && tqb_report_json(&cfg, &r, cfg.json_path) != 0) {
		fprintf(stderr, "tq-bench: cannot write %s\n", cfg.json_path);
		rc = 1;
	}
	return rc;
}
