/*
 * gearman.c - the peer a C user would otherwise pick: the same no-op job
 * through gearmand with libgearman, on the same loopback.
 *
 * gearmand runs as a child (its defaults, in-memory queue, loopback only);
 * its workers are tq-bench in the `gearman-echo` role, one job at a time
 * each, as a libgearman worker runs.  A window of W is kept with the
 * non-blocking client: every completion makes room for one more task, as
 * tq's and the floor's windows do.  The scale step queues background jobs
 * with no worker (gearmand's memory), then measures how fast one worker
 * drains them, read from gearmand's admin `status`.
 *
 * Compiled with libgearman only (TQB_HAVE_GEARMAN); without it every entry
 * point says Gearman is absent and the report writes nulls.
 */
#include "bench/bench.h"

#include <stdio.h>
#include <string.h>

#ifdef TQB_HAVE_GEARMAN

#include <arpa/inet.h>
#include <errno.h>
#include <libgearman/gearman.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { MAX_GM_WORKERS = 8, CLIENT_TIMEOUT_MS = 10000, START_MS = 10000, FILL_BATCH = 1000 };

bool tqb_gearman_built(void)
{
	return true;
}

/* ---- the echo worker (child role) ---- */

static void *noop_job(gearman_job_st *job, void *context, size_t *result_size,
                      gearman_return_t *ret_ptr)
{
	(void)job;
	(void)context;
	/* msgpack nil, as tq's noop answers; libgearman frees it. */
	uint8_t *nil = malloc(1);
	if (nil == NULL) {
		*ret_ptr = GEARMAN_WORK_FAIL;
		*result_size = 0;
		return NULL;
	}
	*nil = 0xc0;
	*result_size = 1;
	*ret_ptr = GEARMAN_SUCCESS;
	return nil;
}

int tqb_gearman_echo_main(const char *port)
{
	gearman_worker_st *w = gearman_worker_create(NULL);
	if (w == NULL ||
	    gearman_worker_add_server(w, "127.0.0.1", (in_port_t)atoi(port)) != GEARMAN_SUCCESS ||
	    gearman_worker_add_function(w, "noop", 0, noop_job, NULL) != GEARMAN_SUCCESS) {
		fprintf(stderr, "gearman-echo: cannot set up the worker\n");
		return 1;
	}
	for (;;) {
		gearman_return_t r = gearman_worker_work(w);
		if (r != GEARMAN_SUCCESS) {
			fprintf(stderr, "gearman-echo: %s\n", gearman_worker_error(w));
			if (r == GEARMAN_LOST_CONNECTION || r == GEARMAN_COULD_NOT_CONNECT)
				return 1;
		}
	}
}

/* ---- gearmand and its admin protocol ---- */

struct tqb_gearman {
	tqb_proc gearmand;
	tqb_proc workers[MAX_GM_WORKERS];
	unsigned nworkers;
	int port;
	char portstr[16];
	const tqb_config *cfg;
	gearman_client_st *client;
	int admin; /* a connection for `status` */
	uint8_t args[2048];
	/* the window, updated by the completion callbacks */
	size_t inflight, done, want_size;
	bool failed;
};

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (s < 0)
		return -1;
	if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &al) != 0) {
		close(s);
		return -1;
	}
	close(s);
	return ntohs(a.sin_port);
}

static int connect_port(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_port = htons((uint16_t)port),
		                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0)
		return -1;
	if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		close(s);
		return -1;
	}
	struct timeval tv = { 5, 0 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return s;
}

static const char *find_gearmand(void)
{
	static const char *const where[] = { "/usr/sbin/gearmand", "/usr/bin/gearmand",
		                             "/usr/local/sbin/gearmand",
		                             "/usr/local/bin/gearmand" };
	for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

/* Asks gearmand for `status`; returns the queued+running jobs and the
 * available workers of "noop" (0 and 0 before anyone mentioned it). */
static int admin_status(tqb_gearman *g, long *jobs, long *workers)
{
	static const char cmd[] = "status\n";
	if (write(g->admin, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1))
		return -1;
	char buf[8192];
	size_t len = 0;
	/* The answer ends with a line holding a single dot. */
	for (;;) {
		ssize_t r = read(g->admin, buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = '\0';
		if ((len >= 2 && strcmp(buf + len - 2, ".\n") == 0 &&
		     (len == 2 || buf[len - 3] == '\n')) ||
		    len == sizeof buf - 1)
			break;
	}
	*jobs = 0;
	*workers = 0;
	for (char *line = buf; line != NULL && *line != '\0';) {
		char *nl = strchr(line, '\n');
		long total, running, avail;
		if (strncmp(line, "noop\t", 5) == 0 &&
		    sscanf(line + 5, "%ld\t%ld\t%ld", &total, &running, &avail) == 3) {
			*jobs = total;
			*workers = avail;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

static int wait_workers(tqb_gearman *g, long want)
{
	for (unsigned waited = 0; waited < START_MS; waited += 10) {
		long jobs, workers;
		if (admin_status(g, &jobs, &workers) != 0)
			return -1;
		if (workers >= want)
			return 0;
		tqb_sleep_ms(10);
	}
	fprintf(stderr, "tq-bench: %ld gearman workers did not register\n", want);
	return -1;
}

static int start_worker(tqb_gearman *g)
{
	const char *argv[] = { tqb_self(), "--role", "gearman-echo", g->portstr, NULL };
	if (g->nworkers == MAX_GM_WORKERS ||
	    tqb_spawn(&g->workers[g->nworkers], g->cfg->out_dir, "gearman-echo", argv) != 0)
		return -1;
	g->nworkers++;
	return 0;
}

void tqb_gearman_stop(tqb_gearman **gp)
{
	if (gp == NULL || *gp == NULL)
		return;
	tqb_gearman *g = *gp;
	for (unsigned i = 0; i < g->nworkers; i++)
		tqb_stop(&g->workers[i], SIGKILL, 1000);
	if (g->client != NULL)
		gearman_client_free(g->client);
	if (g->admin >= 0)
		close(g->admin);
	tqb_stop(&g->gearmand, SIGKILL, 1000);
	free(g);
	*gp = NULL;
}

/* gearmand, a client and an admin connection; no workers yet. */
static int start_server(tqb_gearman **out, const tqb_config *cfg, char *why, size_t whylen)
{
	const char *bin = find_gearmand();
	if (bin == NULL) {
		snprintf(why, whylen, "gearmand is not installed");
		return -1;
	}
	tqb_gearman *g = calloc(1, sizeof *g);
	if (g == NULL)
		return -1;
	g->cfg = cfg;
	g->admin = -1;
	g->gearmand.pid = -1;
	g->port = free_port();
	snprintf(g->portstr, sizeof g->portstr, "%d", g->port);
	char pidfile[600];
	snprintf(pidfile, sizeof pidfile, "%s/gearmand.pid", cfg->out_dir);
	/* gearmand's job tables have 991 buckets by default, which makes
	 * queueing O(n) per job long before a million (300,000 queued: 13,000
	 * jobs/s and falling); its documentation says to size them to the
	 * queue, so they are sized for the largest queue of the run. */
	char buckets[32];
	snprintf(buckets, sizeof buckets, "%zu", cfg->scale_queued | 1);
	const char *argv[] = {
		bin,          "--listen", "127.0.0.1",  "--port", g->portstr,
		"--log-file", "stderr",   "--pid-file", pidfile,  "--hashtable-buckets",
		buckets,      NULL
	};
	if (g->port <= 0 || tqb_spawn(&g->gearmand, cfg->out_dir, "gearmand", argv) != 0) {
		snprintf(why, whylen, "cannot start gearmand");
		goto fail;
	}
	for (unsigned waited = 0; g->admin < 0; waited += 10) {
		if (waited >= START_MS || !tqb_alive(&g->gearmand)) {
			snprintf(why, whylen, "gearmand did not start (see %s)", g->gearmand.log);
			goto fail;
		}
		tqb_sleep_ms(10);
		g->admin = connect_port(g->port);
	}
	g->client = gearman_client_create(NULL);
	if (g->client == NULL || gearman_client_add_server(g->client, "127.0.0.1",
	                                                   (in_port_t)g->port) != GEARMAN_SUCCESS) {
		snprintf(why, whylen, "libgearman cannot set up a client");
		goto fail;
	}
	gearman_client_set_timeout(g->client, CLIENT_TIMEOUT_MS);
	*out = g;
	return 0;
fail:
	tqb_gearman_stop(&g);
	return -1;
}

int tqb_gearman_start(tqb_gearman **out, const tqb_config *cfg, unsigned workers, char *why,
                      size_t whylen)
{
	tqb_gearman *g;
	if (start_server(&g, cfg, why, whylen) != 0)
		return -1;
	for (unsigned i = 0; i < workers; i++)
		if (start_worker(g) != 0) {
			snprintf(why, whylen, "cannot start gearman workers");
			goto fail;
		}
	if (wait_workers(g, workers) != 0) {
		snprintf(why, whylen, "gearman workers did not register");
		goto fail;
	}
	*out = g;
	return 0;
fail:
	tqb_gearman_stop(&g);
	return -1;
}

/* ---- the runs ---- */

int tqb_gearman_latency(tqb_gearman *g, size_t warm, size_t n, uint64_t *ns)
{
	size_t len = tqb_make_args(g->args, 16);
	for (size_t i = 0; i < warm + n; i++) {
		uint64_t t0 = tqb_now_ns();
		size_t rsz = 0;
		gearman_return_t ret;
		void *res = gearman_client_do(g->client, "noop", NULL, g->args, len, &rsz, &ret);
		free(res);
		if (ret != GEARMAN_SUCCESS || rsz != 1) {
			fprintf(stderr, "tq-bench: gearman do: %s\n",
			        gearman_client_error(g->client));
			return -1;
		}
		if (i >= warm)
			ns[i - warm] = tqb_now_ns() - t0;
	}
	return 0;
}

static gearman_return_t on_complete(gearman_task_st *task)
{
	tqb_gearman *g = gearman_task_context(task);
	g->inflight--;
	g->done++;
	if (gearman_task_data_size(task) != 1)
		g->failed = true;
	return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task)
{
	tqb_gearman *g = gearman_task_context(task);
	g->inflight--;
	g->failed = true;
	return GEARMAN_SUCCESS;
}

/* n jobs with up to `window` in flight; *elapsed in ns. */
static int run_window(void *sys, unsigned window, size_t len, size_t n, uint64_t *elapsed)
{
	tqb_gearman *g = sys;
	gearman_client_st *c = g->client;
	gearman_client_add_options(c, GEARMAN_CLIENT_NON_BLOCKING | GEARMAN_CLIENT_FREE_TASKS);
	gearman_client_set_complete_fn(c, on_complete);
	gearman_client_set_fail_fn(c, on_fail);
	gearman_client_set_exception_fn(c, on_fail);
	g->inflight = g->done = 0;
	g->failed = false;
	size_t sent = 0;
	int rc = 0;
	uint64_t t0 = tqb_now_ns();
	while (g->done < n && !g->failed) {
		while (g->inflight < window && sent < n) {
			gearman_return_t ret;
			if (gearman_client_add_task(c, NULL, g, "noop", NULL, g->args, len, &ret) ==
			    NULL) {
				g->failed = true;
				break;
			}
			g->inflight++;
			sent++;
		}
		gearman_return_t ret = gearman_client_run_tasks(c);
		if (ret == GEARMAN_IO_WAIT)
			ret = gearman_client_wait(c);
		if (ret != GEARMAN_SUCCESS && ret != GEARMAN_IO_WAIT) {
			fprintf(stderr, "tq-bench: gearman run_tasks: %s\n",
			        gearman_client_error(c));
			rc = -1;
			break;
		}
	}
	*elapsed = tqb_now_ns() - t0;
	if (g->failed)
		rc = -1;
	gearman_client_task_free_all(c);
	gearman_client_clear_fn(c);
	gearman_client_remove_options(c, GEARMAN_CLIENT_NON_BLOCKING);
	return rc;
}

int tqb_gearman_throughput(tqb_gearman *g, unsigned window, size_t size, size_t n, double *per_s)
{
	return tqb_throughput(run_window, g, window, tqb_make_args(g->args, size), n, per_s);
}

/* Queues q background jobs, a batch at a time. */
static int fill(tqb_gearman *g, size_t q, size_t len)
{
	gearman_client_st *c = g->client;
	gearman_client_add_options(c, GEARMAN_CLIENT_FREE_TASKS);
	for (size_t sent = 0; sent < q;) {
		size_t batch = q - sent < FILL_BATCH ? q - sent : FILL_BATCH;
		for (size_t i = 0; i < batch; i++) {
			gearman_return_t ret;
			if (gearman_client_add_task_background(c, NULL, NULL, "noop", NULL, g->args,
			                                       len, &ret) == NULL)
				return -1;
		}
		if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS) {
			fprintf(stderr, "tq-bench: gearman background: %s\n",
			        gearman_client_error(c));
			return -1;
		}
		sent += batch;
	}
	return 0;
}

int tqb_gearman_scale(const tqb_config *cfg, size_t q, double *per_s, double *bytes_per_job)
{
	tqb_gearman *g;
	char why[128];
	if (start_server(&g, cfg, why, sizeof why) != 0) {
		fprintf(stderr, "tq-bench: gearman: %s\n", why);
		return -1;
	}
	int rc = -1;
	size_t len = tqb_make_args(g->args, 16);
	long jobs, workers;
	/* The baseline after one small fill, so that the connection's
	 * buffers are counted in it, not per job. */
	if (fill(g, 100, len) != 0 || admin_status(g, &jobs, &workers) != 0)
		goto out;
	long rss0 = tqb_rss_kb(g->gearmand.pid);
	if (fill(g, q, len) != 0 || admin_status(g, &jobs, &workers) != 0 || jobs < (long)q + 100) {
		fprintf(stderr, "tq-bench: gearmand holds %ld jobs, not %zu\n", jobs, q + 100);
		goto out;
	}
	long rss1 = tqb_rss_kb(g->gearmand.pid);

	*bytes_per_job = ((double)(rss1 - rss0) * 1024.0) / (double)q - (double)len;

	/* One worker drains: measured from the first `warm` jobs done to
	 * `measured` more, as tq's step measures its completions. */
	long total = jobs;
	size_t measured = cfg->scale_tasks < q / 2 ? cfg->scale_tasks : q / 2;
	size_t warm = cfg->scale_tasks / 4 < q / 10 ? cfg->scale_tasks / 4 : q / 10;
	if (start_worker(g) != 0)
		goto out;
	uint64_t t0 = 0, deadline = tqb_now_ns() + 120ull * 1000000000u;
	for (;;) {
		if (admin_status(g, &jobs, &workers) != 0 || tqb_now_ns() > deadline)
			goto out;
		if (t0 == 0 && jobs <= total - (long)warm) {
			t0 = tqb_now_ns();
			total = jobs;
		}

		if (t0 != 0 && jobs <= total - (long)measured) {
			*per_s = (double)(total - jobs) / ((double)(tqb_now_ns() - t0) / 1e9);
			break;
		}
		tqb_sleep_ms(1);
	}
	rc = 0;
out:
	tqb_gearman_stop(&g);
	return rc;
}

#else /* no libgearman: Gearman is absent, its figures are null */

bool tqb_gearman_built(void)
{
	return false;
}

int tqb_gearman_echo_main(const char *port)
{
	(void)port;
	fprintf(stderr, "tq-bench was built without libgearman\n");
	return 1;
}

int tqb_gearman_start(tqb_gearman **out, const tqb_config *cfg, unsigned workers, char *why,
                      size_t whylen)
{
	(void)out;
	(void)cfg;
	(void)workers;
	snprintf(why, whylen, "tq-bench was built without libgearman");
	return -1;
}

void tqb_gearman_stop(tqb_gearman **gp)
{
	(void)gp;
}

int tqb_gearman_latency(tqb_gearman *g, size_t warm, size_t n, uint64_t *ns)
{
	(void)g;
	(void)warm;
	(void)n;
	(void)ns;
	return -1;
}

int tqb_gearman_throughput(tqb_gearman *g, unsigned window, size_t size, size_t n, double *per_s)
{
	(void)g;
	(void)window;
	(void)size;
	(void)n;
	(void)per_s;
	return -1;
}

int tqb_gearman_scale(const tqb_config *cfg, size_t q, double *per_s, double *bytes_per_job)
{
	(void)cfg;
	(void)q;
	(void)per_s;
	(void)bytes_per_job;
	return -1;
}

#endif
