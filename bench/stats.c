/*
 * stats.c - the clock the runs are timed with, latency percentiles, and
 * the task arguments every system is given.
 *
 * Percentiles are read from the sorted samples by the nearest-rank
 * method, so p99.9 of 20,000 samples is a sample that was really seen
 * (the 19,980th), never an interpolation between two.
 */
#include "bench/bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t tqb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tqb_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least q of them at or below. */
static double rank_us(const uint64_t *sorted, size_t n, double q)
{
	size_t k = (size_t)ceil(q * (double)n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)sorted[k - 1] / 1000.0;
}

void tqb_latency_of(uint64_t *ns, size_t n, tqb_latency *l)
{
	memset(l, 0, sizeof *l);
	if (n == 0)
		return;
	qsort(ns, n, sizeof *ns, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)ns[i];
	l->have = true;
	l->n = n;
	l->p50_us = rank_us(ns, n, 0.50);
	l->p99_us = rank_us(ns, n, 0.99);
	l->p999_us = rank_us(ns, n, 0.999);
	l->mean_us = sum / (double)n / 1000.0;
	l->max_us = (double)ns[n - 1] / 1000.0;
}

int tqb_write_cdf(const char *path, const uint64_t *sorted_ns, size_t n)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "# latency_us fraction_at_or_below\n");
	/* About 2,000 points: every sample of the tail above p99, a stride
	 * through the body, so the plot shows the tail in full. */
	size_t stride = n > 2000 ? n / 2000 : 1;
	size_t tail = n - n / 100;
	for (size_t i = 0; i < n; i++) {
		if (i < tail && i % stride != 0 && i != n - 1)
			continue;
		fprintf(f, "%.3f %.6f\n", (double)sorted_ns[i] / 1000.0,
		        (double)(i + 1) / (double)n);
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double tqb_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

size_t tqb_make_args(uint8_t *buf, size_t size)
{
	/* A one-element argument list holding a binary, sized so that the
	 * whole msgpack value is `size` bytes: what every system carries. */
	if (size < 4)
		return 0;
	size_t i = 0;
	buf[i++] = 0x91; /* array of 1 */
	size_t body;
	if (size - 3 <= 0xff) {
		body = size - 3;
		buf[i++] = 0xc4; /* bin 8 */
		buf[i++] = (uint8_t)body;
	} else {
		body = size - 4;
		buf[i++] = 0xc5; /* bin 16 */
		buf[i++] = (uint8_t)(body >> 8);
		buf[i++] = (uint8_t)body;
	}
	for (size_t k = 0; k < body; k++)
		buf[i++] = (uint8_t)('a' + k % 26);
	return i;
}

int tqb_throughput(tqb_window_fn run, void *sys, unsigned window, size_t len, size_t n,
                   double *per_s)
{
	uint64_t ns;
	size_t warm = 2 * (size_t)window < 1000 ? 1000 : 2 * (size_t)window;
	if (run(sys, window, len, warm < n ? warm : n, &ns) != 0 ||
	    run(sys, window, len, n, &ns) != 0)
		return -1;
	*per_s = (double)n / ((double)ns / 1e9);
	return 0;
}
