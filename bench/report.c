/*
 * report.c - what a run says: the table on stdout, results.json, and the
 * data the plots are drawn from.
 *
 * Every target is a ratio of two figures from this run.  A target is
 * reported as met or missed; it never changes the exit status, because
 * timings do not belong in pass/fail checks.
 */
#include "bench/bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

/* The headline configuration of each figure. */
enum { HEAD_WINDOW = 1000, HEAD_SIZE = 16, HEAD_WORKERS = 1 };

static const char *const sys_name[SYS_N] = { "tq", "floor", "gearman", "tq-inline" };

const tqb_point *tqb_point_find(const tqb_results *r, int sys, unsigned window, size_t size,
                                unsigned workers)
{
	for (size_t i = 0; i < r->npoints[sys]; i++) {
		const tqb_point *p = &r->points[sys][i];
		if (p->have && p->window == window && p->size == size && p->workers == workers)
			return p;
	}
	return NULL;
}

tqb_point *tqb_point_add(tqb_results *r, int sys, unsigned window, size_t size, unsigned workers,
                         size_t n, double per_s)
{
	if (r->npoints[sys] == TQB_MAX_POINTS)
		return NULL;
	tqb_point *p = &r->points[sys][r->npoints[sys]++];
	*p = (tqb_point){ .have = true,
		          .window = window,
		          .size = size,
		          .workers = workers,
		          .n = n,
		          .per_s = per_s,
		          .vs_floor = NAN,
		          .vs_gearman = NAN };
	return p;
}

/* The paired ratio of tq (SYS_TQ or SYS_TQI) at a point, vs the floor or
 * Gearman, or NAN. */
static double ratio_of(const tqb_results *r, int sys, int vs, unsigned window, size_t size,
                       unsigned workers)
{
	const tqb_point *p = tqb_point_find(r, sys, window, size, workers);
	if (p == NULL)
		return NAN;
	return vs == SYS_FLOOR ? p->vs_floor : p->vs_gearman;
}

static double per_s_of(const tqb_results *r, int sys, unsigned window, size_t size,
                       unsigned workers)
{
	const tqb_point *p = tqb_point_find(r, sys, window, size, workers);
	return p ? p->per_s : NAN;
}

/* ---- the targets, as ratios ---- */

typedef struct {
	const char *key;  /* in results.json */
	const char *what; /* in the table */
	double value;
	double bound;
	bool at_most; /* value <= bound; else value >= bound */
	const char *unit;
} target;

static size_t targets_of(const tqb_results *r, target *t)
{
	size_t n = 0;
	/* The three speed targets, for tq's default and for handlers run in
	 * the worker's loop. */
	static const struct {
		int sys;
		const char *key[3], *what[3];
	} modes[2] = {
		{ SYS_TQ,
		  { "latency_p50_vs_floor", "throughput_vs_floor", "throughput_vs_gearman" },
		  { "latency p50, tq / floor", "throughput, tq / floor",
		    "throughput, tq / gearman" } },
		{ SYS_TQI,
		  { "inline_latency_p50_vs_floor", "inline_throughput_vs_floor",
		    "inline_throughput_vs_gearman" },
		  { "latency p50, tq inline / floor", "throughput, tq inline / floor",
		    "throughput, tq inline / gearman" } },
	};
	for (int m = 0; m < 2; m++) {
		int s = modes[m].sys;
		double fl = ratio_of(r, s, SYS_FLOOR, HEAD_WINDOW, HEAD_SIZE, HEAD_WORKERS);
		double gm = ratio_of(r, s, SYS_GEARMAN, HEAD_WINDOW, HEAD_SIZE, HEAD_WORKERS);
		double lat = r->lat[s].have && r->lat[SYS_FLOOR].have
		                 ? r->lat[s].p50_us / r->lat[SYS_FLOOR].p50_us
		                 : NAN;
		t[n++] = (target){ modes[m].key[0], modes[m].what[0], lat, 1.2, true, "x" };
		t[n++] = (target){ modes[m].key[1], modes[m].what[1], fl, 0.7, false, "x" };
		t[n++] = (target){ modes[m].key[2], modes[m].what[2], gm, 8.0, false, "x" };
	}
	t[n++] = (target){ "queued_big_vs_small",
		           "throughput, big queue / 1,000 queued",
		           r->have_scale ? r->scale_ratio : NAN,
		           0.8,
		           false,
		           "x" };
	t[n++] = (target){ "broker_bytes_per_queued_task",
		           "broker bytes per queued task",
		           r->have_scale ? r->broker_bytes_per_task : NAN,
		           300,
		           true,
		           " B" };
	t[n++] = (target){ "await_many_vs_pipelined",
		           "await_many time / pipelined time",
		           r->have_many ? r->many_ratio : NAN,
		           1.2,
		           true,
		           "x" };
	return n;
}

static const char *verdict(const target *t)
{
	if (isnan(t->value))
		return "not measured";
	bool met = t->at_most ? t->value <= t->bound : t->value >= t->bound;
	return met ? "met" : "MISSED";
}

/* ---- the table ---- */

/* A rate, or a ratio (with an x); "-" for a figure not measured. */
static void cell(double v, bool ratio)
{
	if (isnan(v))
		printf("%11s", "-");
	else if (ratio)
		printf("%10.2fx", v);
	else
		printf("%11.0f", v);
}

static void machine(char *out, size_t n, unsigned ncpu)
{
	char model[256] = "unknown CPU";
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	while (f != NULL && fgets(line, sizeof line, f) != NULL) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c != NULL) {
			snprintf(model, sizeof model, "%s", c + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	}
	if (f != NULL)
		fclose(f);
	struct utsname u;
	uname(&u);
	snprintf(out, n, "%u CPUs, %s, Linux %s", ncpu, model, u.release);
}

static void latency_row(const char *name, const tqb_latency *l)
{
	printf("  %-22s", name);
	if (!l->have) {
		printf("%11s\n", "absent");
		return;
	}
	printf("%11.1f%11.1f%11.1f%11.1f\n", l->p50_us, l->p99_us, l->p999_us, l->mean_us);
}

void tqb_report_table(const tqb_config *cfg, const tqb_results *r)
{
	char m[400];
	machine(m, sizeof m, cfg->ncpu);
	printf("\ntq-bench (%s run, %.0f s) on %s\n", cfg->quick ? "QUICK" : "full", r->elapsed_s,
	       m);
	printf("load average %.2f before, %.2f after; tq-worker options: %s; Gearman: %s\n\n",
	       r->load_before, r->load_after, r->tq_worker_opts,
	       r->gearman_ran ? "gearmand + libgearman" : r->gearman_why);

	printf("Latency: no-op round trip, 16 B argument, one in flight (%zu tasks in %u rounds "
	       "taking turns), us\n",
	       r->lat[SYS_TQ].n, cfg->rounds);
	printf("  %-22s%11s%11s%11s%11s\n", "", "p50", "p99", "p99.9", "mean");
	latency_row("floor (raw ZeroMQ)", &r->lat[SYS_FLOOR]);
	latency_row("tq", &r->lat[SYS_TQ]);
	latency_row("tq inline", &r->lat[SYS_TQI]);
	latency_row("gearman", &r->lat[SYS_GEARMAN]);

	printf(
	    "\nThroughput: no-op tasks per second (%zu tasks per point, %u rounds taking turns;\n"
	    "  rates are the rounds' medians, ratios the medians of paired rounds;\n"
	    "  inline: tq-worker --isolation none, handlers run in the worker's loop)\n",
	    cfg->tput_tasks, cfg->rounds);
	printf("  %6s %6s %7s %11s%11s%11s%11s%11s%11s%11s%12s\n", "window", "size", "workers",
	       "floor", "tq", "inline", "gearman", "tq/floor", "tq/gearman", "inl/floor",
	       "inl/gearman");
	for (size_t i = 0; i < r->npoints[SYS_TQ]; i++) {
		const tqb_point *p = &r->points[SYS_TQ][i];
		const tqb_point *q = tqb_point_find(r, SYS_TQI, p->window, p->size, p->workers);
		double fl = per_s_of(r, SYS_FLOOR, p->window, p->size, p->workers);
		double gm = per_s_of(r, SYS_GEARMAN, p->window, p->size, p->workers);
		printf("  %6u %4zu B %7u ", p->window, p->size, p->workers);
		cell(fl, false);
		cell(p->per_s, false);
		cell(q ? q->per_s : NAN, false);
		cell(gm, false);
		cell(p->vs_floor, true);
		cell(p->vs_gearman, true);
		cell(q ? q->vs_floor : NAN, true);
		cell(q ? q->vs_gearman : NAN, true);
		printf("\n");
	}

	printf("\nScale: one worker, 16 B, throughput while N tasks stay queued\n");
	if (r->have_scale) {
		printf("  tq:      %zu queued %.0f tasks/s, %zu queued %.0f tasks/s: %.2fx (median "
		       "of %u paired rounds)\n",
		       cfg->scale_small, r->tps_small_queued, cfg->scale_queued, r->tps_big_queued,
		       r->scale_ratio, cfg->scale_rounds);
		printf("           broker %.0f bytes per queued task beyond its payload\n",
		       r->broker_bytes_per_task);
		printf("           broker CPU per task %.1f us with %zu queued, %.1f us with %zu "
		       "queued\n",
		       r->broker_us_small, cfg->scale_small, r->broker_us_big, cfg->scale_queued);
		printf("           (broker RSS %.0f -> %.0f kB; queueing %zu took %.1f s)\n",
		       r->broker_rss_before_kb, r->broker_rss_after_kb, cfg->scale_queued,
		       r->fill_s);
	} else {
		printf("  tq:      not measured\n");
	}
	if (r->have_gm_scale)
		printf("  gearman: %zu queued %.0f jobs/s, %zu queued %.0f jobs/s (%.2fx); "
		       "gearmand %.0f bytes per queued job beyond its payload\n",
		       cfg->scale_small, r->gm_jps_small_queued, cfg->scale_queued,
		       r->gm_jps_big_queued, r->gm_jps_big_queued / r->gm_jps_small_queued,
		       r->gm_bytes_per_job);

	printf("\nMany awaits: %zu tasks submitted at once (medians of %u reps; the ratio is the "
	       "median of each rep's)\n",
	       cfg->many_tasks, cfg->many_reps);
	if (r->have_many)
		printf("  await_many %.1f ms, one by one %.1f ms, pipelined (window 1,000) %.1f "
		       "ms\n",
		       r->many_ms, r->each_ms, r->pipelined_ms);

	printf("\nParallel speed-up: %zu `burn` tasks of ~%.0f ms, K workers of one executor\n",
	       cfg->burn_tasks, cfg->burn_ms);
	for (size_t i = 0; i < r->nk; i++)
		printf("  K=%u  %.3f s  speed-up %.2fx  (busiest worker ran %zu of %zu)\n", r->k[i],
		       r->k_s[i], r->k_s[0] / r->k_s[i], r->k_most[i], cfg->burn_tasks);

	target t[12];
	size_t nt = targets_of(r, t);
	printf("\nTargets (ratios from this run; reported, never pass/fail)\n");
	for (size_t i = 0; i < nt; i++) {
		printf("  %-40s", t[i].what);
		if (isnan(t[i].value))
			printf("%10s", "-");
		else
			printf("%9.2f%s", t[i].value, t[i].unit);
		printf("   %s %g%s   %s\n", t[i].at_most ? "<=" : ">=", t[i].bound, t[i].unit,
		       verdict(&t[i]));
	}
	printf("\n");
}

/* ---- results.json ---- */

static void jnum(FILE *f, const char *key, double v, bool last)
{
	if (isnan(v) || isinf(v))
		fprintf(f, "  \"%s\": null%s\n", key, last ? "" : ",");
	else
		fprintf(f, "  \"%s\": %.3f%s\n", key, v, last ? "" : ",");
}

static void jstr(FILE *f, const char *key, const char *s)
{
	fprintf(f, "  \"%s\": \"", key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fprintf(f, "\",\n");
}

static double lat_or_nan(const tqb_latency *l, int which)
{
	if (!l->have)
		return NAN;
	return which == 0 ? l->p50_us : which == 1 ? l->p99_us : l->p999_us;
}

int tqb_report_json(const tqb_config *cfg, const tqb_results *r, const char *path)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	char m[400], date[32];
	machine(m, sizeof m, cfg->ncpu);
	time_t now = time(NULL);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "{\n");
	fprintf(f, "  \"quick\": %s,\n", cfg->quick ? "true" : "false");
	jstr(f, "date", date);
	jstr(f, "machine", m);
	jstr(f, "tq_worker_options", r->tq_worker_opts);
	fprintf(f, "  \"gearman_present\": %s,\n", r->gearman_ran ? "true" : "false");
	jnum(f, "elapsed_s", r->elapsed_s, false);
	jnum(f, "load_average_before", r->load_before, false);
	jnum(f, "load_average_after", r->load_after, false);

	fprintf(f, "  \"latency_tasks\": %zu,\n", cfg->lat_tasks);
	static const char *const lk[3] = { "p50", "p99", "p999" };
	for (int w = 0; w < 3; w++) {
		char key[64];
		snprintf(key, sizeof key, "latency_%s_us", lk[w]);
		jnum(f, key, lat_or_nan(&r->lat[SYS_TQ], w), false);
		snprintf(key, sizeof key, "floor_latency_%s_us", lk[w]);
		jnum(f, key, lat_or_nan(&r->lat[SYS_FLOOR], w), false);
		snprintf(key, sizeof key, "gearman_latency_%s_us", lk[w]);
		jnum(f, key, lat_or_nan(&r->lat[SYS_GEARMAN], w), false);
		snprintf(key, sizeof key, "inline_latency_%s_us", lk[w]);
		jnum(f, key, lat_or_nan(&r->lat[SYS_TQI], w), false);
	}

	jnum(f, "throughput_tps", per_s_of(r, SYS_TQ, HEAD_WINDOW, HEAD_SIZE, HEAD_WORKERS), false);
	jnum(f, "floor_throughput_mps",
	     per_s_of(r, SYS_FLOOR, HEAD_WINDOW, HEAD_SIZE, HEAD_WORKERS), false);
	jnum(f, "gearman_throughput_jps",
	     per_s_of(r, SYS_GEARMAN, HEAD_WINDOW, HEAD_SIZE, HEAD_WORKERS), false);
	jnum(f, "inline_throughput_tps", per_s_of(r, SYS_TQI, HEAD_WINDOW, HEAD_SIZE, HEAD_WORKERS),
	     false);
	fprintf(f, "  \"throughput\": [\n");
	bool first = true;
	for (int s = 0; s < SYS_N; s++)
		for (size_t i = 0; i < r->npoints[s]; i++) {
			const tqb_point *p = &r->points[s][i];
			fprintf(f,
			        "%s    {\"system\": \"%s\", \"window\": %u, \"size\": %zu, "
			        "\"workers\": %u, \"tasks\": %zu, \"per_s\": %.1f",
			        first ? "" : ",\n", sys_name[s], p->window, p->size, p->workers,
			        p->n, p->per_s);
			bool tq = s == SYS_TQ || s == SYS_TQI;
			if (tq && !isnan(p->vs_floor))
				fprintf(f, ", \"vs_floor\": %.4f", p->vs_floor);
			if (tq && !isnan(p->vs_gearman))
				fprintf(f, ", \"vs_gearman\": %.4f", p->vs_gearman);
			fprintf(f, "}");
			first = false;
		}
	fprintf(f, "\n  ],\n");

	fprintf(f, "  \"scale_queued\": %zu,\n", cfg->scale_queued);
	fprintf(f, "  \"scale_small_queued\": %zu,\n", cfg->scale_small);
	jnum(f, "throughput_1k_queued_tps", r->have_scale ? r->tps_small_queued : NAN, false);
	jnum(f, "throughput_1m_queued_tps", r->have_scale ? r->tps_big_queued : NAN, false);
	jnum(f, "throughput_1m_vs_1k_queued", r->have_scale ? r->scale_ratio : NAN, false);
	jnum(f, "broker_bytes_per_queued_task", r->have_scale ? r->broker_bytes_per_task : NAN,
	     false);
	jnum(f, "broker_cpu_us_per_task_1k_queued", r->have_scale ? r->broker_us_small : NAN,
	     false);
	jnum(f, "broker_cpu_us_per_task_1m_queued", r->have_scale ? r->broker_us_big : NAN, false);
	jnum(f, "broker_rss_before_kb", r->have_scale ? r->broker_rss_before_kb : NAN, false);
	jnum(f, "broker_rss_after_kb", r->have_scale ? r->broker_rss_after_kb : NAN, false);
	jnum(f, "gearman_throughput_1k_queued_jps", r->have_gm_scale ? r->gm_jps_small_queued : NAN,
	     false);
	jnum(f, "gearman_throughput_1m_queued_jps", r->have_gm_scale ? r->gm_jps_big_queued : NAN,
	     false);
	jnum(f, "gearman_bytes_per_queued_job", r->have_gm_scale ? r->gm_bytes_per_job : NAN,
	     false);

	fprintf(f, "  \"await_many_tasks\": %zu,\n", cfg->many_tasks);
	jnum(f, "await_many_ms", r->have_many ? r->many_ms : NAN, false);
	jnum(f, "await_one_by_one_ms", r->have_many ? r->each_ms : NAN, false);
	jnum(f, "pipelined_ms", r->have_many ? r->pipelined_ms : NAN, false);

	fprintf(f, "  \"burn_tasks\": %zu,\n", cfg->burn_tasks);
	fprintf(f, "  \"burn_rounds\": %llu,\n", (unsigned long long)r->burn_rounds);
	fprintf(f, "  \"speedup\": [");
	for (size_t i = 0; i < r->nk; i++)
		fprintf(f, "%s{\"workers\": %u, \"seconds\": %.3f, \"speedup\": %.3f}",
		        i ? ", " : "", r->k[i], r->k_s[i], r->k_s[0] / r->k_s[i]);
	fprintf(f, "],\n");

	target t[12];
	size_t nt = targets_of(r, t);
	fprintf(f, "  \"targets\": {\n");
	for (size_t i = 0; i < nt; i++) {
		fprintf(f, "    \"%s\": {\"value\": ", t[i].key);
		if (isnan(t[i].value) || isinf(t[i].value))
			fprintf(f, "null");
		else
			fprintf(f, "%.3f", t[i].value);
		fprintf(f, ", \"target\": \"%s %g\", \"met\": ", t[i].at_most ? "<=" : ">=",
		        t[i].bound);
		if (isnan(t[i].value) || isinf(t[i].value))
			fprintf(f, "null");
		else
			fprintf(f, "%s", strcmp(verdict(&t[i]), "met") == 0 ? "true" : "false");
		fprintf(f, "}%s\n", i + 1 < nt ? "," : "");
	}
	fprintf(f, "  }\n}\n");
	return fclose(f) == 0 ? 0 : -1;
}

/* ---- plot data ---- */

int tqb_report_dat(const tqb_config *cfg, const tqb_results *r)
{
	char path[600];
	snprintf(path, sizeof path, "%s/throughput.dat", cfg->out_dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "# window tq floor gearman tq-inline  (no-op tasks/s, 16 B, one worker; ? = "
	           "absent)\n");
	static const unsigned windows[] = { 1, 10, 100, 1000 };
	for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
		fprintf(f, "%u", windows[i]);
		for (int s = 0; s < SYS_N; s++) {
			double v = per_s_of(r, s, windows[i], HEAD_SIZE, HEAD_WORKERS);
			if (isnan(v))
				fprintf(f, " ?");
			else
				fprintf(f, " %.1f", v);
		}
		fprintf(f, "\n");
	}
	return fclose(f) == 0 ? 0 : -1;
}
