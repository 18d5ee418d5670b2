/*
 * stats.c - `tq stats`: the broker's counters of every outcome and its live
 * state, as a table (or the raw map as JSON with --json).
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char stats_usage[] = "usage: tq stats [--broker EP] [--timeout MS] [--json]\n"
                                  "  Prints the broker's counters, workers and queues.\n";

static uint64_t get_u(tq_reader m, const char *k)
{
	tq_reader v;
	uint64_t u = 0;
	if (tq_read_find(&m, k, &v) == TQ_OK)
		tq_read_uint(&v, &u);
	return u;
}

static void get_s(tq_reader m, const char *k, char *out, size_t n)
{
	tq_reader v;
	const char *s;
	size_t len;
	out[0] = '\0';
	if (tq_read_find(&m, k, &v) == TQ_OK && tq_read_str(&v, &s, &len) == TQ_OK)
		snprintf(out, n, "%.*s", (int)len, s);
}

static void print_counters(tq_reader m)
{
	tq_reader v;
	uint32_t n;
	if (tq_read_find(&m, "counters", &v) != TQ_OK || tq_read_map(&v, &n) != TQ_OK)
		return;
	printf("counters:\n");
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		size_t kl;
		uint64_t u = 0;
		if (tq_read_str(&v, &k, &kl) != TQ_OK || tq_read_uint(&v, &u) != TQ_OK)
			return;
		printf("  %-14.*s %llu\n", (int)kl, k, (unsigned long long)u);
	}
}

static void print_workers(tq_reader m)
{
	tq_reader v;
	uint32_t n;
	if (tq_read_find(&m, "workers", &v) != TQ_OK || tq_read_array(&v, &n) != TQ_OK)
		return;
	printf("workers: %u\n", n);
	if (n > 0)
		printf("  %-28s %-12s %5s %5s %5s  %s\n", "NAME", "ID", "LOAD", "CONC", "CAP",
		       "FUNCTIONS");
	for (uint32_t i = 0; i < n; i++) {
		char name[256], id[64], fns[1024] = "";
		get_s(v, "name", name, sizeof name);
		get_s(v, "id", id, sizeof id);
		tq_reader f;
		uint32_t nf;
		if (tq_read_find(&v, "functions", &f) == TQ_OK && tq_read_array(&f, &nf) == TQ_OK) {
			size_t used = 0;
			for (uint32_t j = 0; j < nf && used < sizeof fns - 1; j++) {
				const char *s;
				size_t len;
				if (tq_read_str(&f, &s, &len) != TQ_OK)
					break;
				int w = snprintf(fns + used, sizeof fns - used, "%s%.*s",
				                 j ? "," : "", (int)len, s);
				if (w < 0)
					break;
				used += (size_t)w;
			}
		}
		tq_reader dv;
		bool draining = false;
		if (tq_read_find(&v, "draining", &dv) == TQ_OK)
			tq_read_bool(&dv, &draining);
		printf("  %-28s %-12s %5llu %5llu %5llu  %s%s\n", name, id,
		       (unsigned long long)get_u(v, "load"),
		       (unsigned long long)get_u(v, "concurrency"),
		       (unsigned long long)get_u(v, "capacity"), fns,
		       draining ? "  (draining)" : "");
		if (tq_read_skip(&v) != TQ_OK)
			return;
	}
}

static void print_functions(tq_reader m)
{
	tq_reader v;
	uint32_t n;
	if (tq_read_find(&m, "functions", &v) != TQ_OK || tq_read_array(&v, &n) != TQ_OK)
		return;
	printf("functions: %u\n", n);
	if (n > 0)
		printf("  %-28s %8s %8s %8s\n", "NAME", "QUEUED", "RUNNING", "WORKERS");
	for (uint32_t i = 0; i < n; i++) {
		char name[256];
		get_s(v, "name", name, sizeof name);
		printf("  %-28s %8llu %8llu %8llu\n", name, (unsigned long long)get_u(v, "queued"),
		       (unsigned long long)get_u(v, "running"),
		       (unsigned long long)get_u(v, "workers"));
		if (tq_read_skip(&v) != TQ_OK)
			return;
	}
}

int tqc_stats(int argc, char **argv)
{
	static const struct option longs[] = { { "broker", required_argument, 0, 'b' },
		                               { "timeout", required_argument, 0, 't' },
		                               { "json", no_argument, 0, 'j' },
		                               { "help", no_argument, 0, 'h' },
		                               { 0, 0, 0, 0 } };
	const char *broker = NULL;
	int64_t timeout = 2000;
	int json = 0, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'b':
			broker = optarg;
			break;
		case 't':
			if (tqc_parse_timeout(optarg, &timeout) != 0)
				return tqc_usage_error("stats", stats_usage,
				                       "--timeout %s: expected milliseconds",
				                       optarg);
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(stats_usage, stdout);
			return TQC_OK;
		default:
			return tqc_usage_error("stats", stats_usage,
			                       "unknown or incomplete option '%s'",
			                       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return tqc_usage_error("stats", stats_usage, "unexpected argument '%s'",
		                       argv[optind]);
	const char *ep = tqc_broker(broker);
	tq_client *cl;
	int rc = tqc_connect("stats", ep, &cl);
	if (rc != TQC_OK)
		return rc;
	uint8_t *data;
	size_t len;
	tq_err e = tq_client_stats(cl, timeout, &data, &len);
	if (e != TQ_OK) {
		fprintf(stderr, "tq stats: no answer from the broker at %s: %s\n", ep,
		        tq_strerror(e));
		tq_client_destroy(&cl);
		return TQC_BROKER;
	}
	if (json) {
		char *text;
		if (tq_value_to_json(data, len, &text) == TQ_OK) {
			printf("%s\n", text);
			free(text);
		}
	} else {
		tq_reader m;
		tq_reader_init(&m, data, len);
		char instance[64];
		get_s(m, "instance", instance, sizeof instance);
		printf("broker %s at %s: up %.1f s, %llu tasks held, %llu clients, heartbeat %llu "
		       "ms\n",
		       instance, ep, (double)get_u(m, "uptime_ms") / 1000.0,
		       (unsigned long long)get_u(m, "tasks"),
		       (unsigned long long)get_u(m, "clients"),
		       (unsigned long long)get_u(m, "heartbeat_ms"));
		print_counters(m);
		print_workers(m);
		print_functions(m);
	}
	free(data);
	tq_client_destroy(&cl);
	return TQC_OK;
}
