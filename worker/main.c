/*
 * main.c - tq-worker: serves the built-in functions and those of any
 * plugins to a broker, until SIGTERM or SIGINT (the first drains, the
 * second stops at once).
 *
 * A plugin is a shared object exporting
 *     tq_err tq_plugin_init(tq_worker *w);
 * which registers its functions with tq_worker_register.
 */
#include "base/log.h"
#include "tq/client.h"
#include "tq/worker.h"
#include "worker/builtins.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tq_worker *the_worker;

static void on_signal(int sig)
{
	(void)sig;
	if (the_worker != NULL)
		tq_worker_stop(the_worker);
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tq-worker [options]\n"
	        "\n"
	        "Serves functions to a tq broker: sleep MS, echo ARGS..., double N, fail REASON,\n"
	        "crash, noop, burn N, and those of --plugin shared objects.\n"
	        "\n"
	        "  --broker EP        broker's worker endpoint [$TQ_BROKER, tcp://127.0.0.1:5556]\n"
	        "  --concurrency N    tasks run at once, one executor process each\n"
	        "                     [$TQ_CONCURRENCY, cores]\n"
	        "  --prefetch N|none  tasks held beyond concurrency [auto: about 2 ms of work]\n"
	        "  --isolation MODE   process: handlers run in executor processes (a crash\n"
	        "                     fails its task, a running task can be stopped) [default];\n"
	        "                     none: in the worker's loop, one at a time, no process\n"
	        "                     hop - for short trusted functions (see tq/worker.h)\n"
	        "  --name NAME        name in logs, stats and results [host:pid]\n"
	        "  --heartbeat MS     heartbeat interval [$TQ_HEARTBEAT_MS, 250]\n"
	        "  --liveness N       silent intervals before the broker is lost\n"
	        "                     [$TQ_LIVENESS, 3]\n"
	        "  --drain MS         on SIGTERM, time for held tasks to finish\n"
	        "                     [$TQ_DRAIN_MS, no limit]\n"
	        "  --plugin PATH      load functions from a shared object (repeatable)\n"
	        "  --no-builtins      serve only plugin functions\n"
	        "  --health EP        check, do not serve: exit 0 if the broker whose client\n"
	        "                     endpoint is EP lists this worker (--name NAME, else any\n"
	        "                     HOST:*) as registered and not draining, else 1\n"
	        "  -h, --help         this text\n"
	        "\n"
	        "SIGTERM or SIGINT drains (finishes held tasks, takes no new ones); a second one\n"
	        "stops at once.  Log level: TQ_LOG=error|warn|info|debug.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "tq-worker: %s %s: expected %s\n", opt, val ? val : "(missing)", want);
	usage(stderr);
	return 2;
}

static int load_plugin(tq_worker *w, const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		fprintf(stderr, "tq-worker: --plugin %s: %s\n", path, dlerror());
		return -1;
	}
	tq_err (*init)(tq_worker *);
	*(void **)&init = dlsym(h, "tq_plugin_init");
	if (init == NULL) {
		fprintf(stderr, "tq-worker: --plugin %s: no tq_plugin_init function\n", path);
		return -1;
	}
	tq_err e = init(w);
	if (e != TQ_OK) {
		fprintf(stderr, "tq-worker: --plugin %s: tq_plugin_init failed: %s\n", path,
		        tq_strerror(e));
		return -1;
	}
	return 0; /* the library stays loaded: its handlers run in executors */
}

/* --health: asks the broker whether this worker is registered.  A
 * container's healthcheck runs in a process of its own and cannot see the
 * worker's state; the broker's view is the one that matters.  Without
 * --name, a worker of this host counts (the default name is HOST:PID),
 * which in a container is the one it runs. */
static int health(const char *endpoint, const char *name)
{
	char want[300], host[200] = "localhost";
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	snprintf(want, sizeof want, "%s%s", name ? name : host, name ? "" : ":");
	size_t wlen = strlen(want);
	tq_client_opts co = { .broker = endpoint };
	tq_client *c;
	uint8_t *data;
	size_t len;
	if (tq_client_new(&c, &co) != TQ_OK) {
		printf("unhealthy: bad broker endpoint %s\n", endpoint);
		return 1;
	}
	tq_err e = tq_client_stats(c, 2000, &data, &len);
	tq_client_destroy(&c);
	if (e != TQ_OK) {
		printf("unhealthy: no answer from the broker at %s: %s\n", endpoint,
		       tq_strerror(e));
		return 1;
	}
	tq_reader m, ws, v;
	uint32_t nw = 0;
	bool found = false, draining = false;
	tq_reader_init(&m, data, len);
	if (tq_read_find(&m, "workers", &ws) != TQ_OK || tq_read_array(&ws, &nw) != TQ_OK)
		nw = 0;
	for (uint32_t i = 0; i < nw && !found; i++) {
		const char *s;
		size_t slen;
		if (tq_read_find(&ws, "name", &v) == TQ_OK && tq_read_str(&v, &s, &slen) == TQ_OK &&
		    (name ? slen == wlen : slen > wlen) && memcmp(s, want, wlen) == 0) {
			bool d = false;
			if (tq_read_find(&ws, "draining", &v) == TQ_OK)
				tq_read_bool(&v, &d);
			found = !d;
			draining = draining || d;
		}
		if (tq_read_skip(&ws) != TQ_OK)
			break;
	}
	free(data);
	printf("%s: worker %s%s %s the broker at %s\n", found ? "healthy" : "unhealthy", want,
	       name ? "" : "*",
	       found      ? "is registered with"
	       : draining ? "is draining at"
	                  : "is not registered with",
	       endpoint);
	return found ? 0 : 1;
}

int main(int argc, char **argv)
{
	tq_worker_opts o = { 0 };
	const char *plugins[64];
	const char *health_of = NULL;
	int nplugins = 0, builtins = 1;
	static const struct option longs[] = { { "broker", required_argument, 0, 'b' },
		                               { "concurrency", required_argument, 0, 'c' },
		                               { "prefetch", required_argument, 0, 'p' },
		                               { "isolation", required_argument, 0, 'i' },
		                               { "name", required_argument, 0, 'n' },
		                               { "heartbeat", required_argument, 0, 'H' },
		                               { "liveness", required_argument, 0, 'l' },
		                               { "drain", required_argument, 0, 'd' },
		                               { "plugin", required_argument, 0, 'P' },
		                               { "no-builtins", no_argument, 0, 'N' },
		                               { "health", required_argument, 0, 'C' },
		                               { "help", no_argument, 0, 'h' },
		                               { 0, 0, 0, 0 } };
	/* The environment first, so that flags override it; empty is unset. */
	const struct {
		const char *var;
		unsigned *out;
		unsigned min, max;
		const char *want;
	} envs[] = { { "TQ_CONCURRENCY", &o.concurrency, 1, 65535, "a count, 1..65535" },
		     { "TQ_HEARTBEAT_MS", &o.heartbeat_ms, 10, 60000, "milliseconds, 10..60000" },
		     { "TQ_LIVENESS", &o.liveness, 1, 100, "a count, 1..100" },
		     { "TQ_DRAIN_MS", &o.drain_ms, 0, 86400000, "milliseconds, 0..86400000" } };
	for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
		const char *env = getenv(envs[i].var);
		if (env != NULL && *env != '\0' &&
		    (parse_uint(env, envs[i].max, envs[i].out) != 0 || *envs[i].out < envs[i].min))
			return bad(envs[i].var, env, envs[i].want);
	}
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'b':
			o.broker = optarg;
			break;
		case 'c':
			if (parse_uint(optarg, 65535, &o.concurrency) != 0 || o.concurrency == 0)
				return bad("--concurrency", optarg, "a count, 1..65535");
			break;
		case 'p':
			if (strcmp(optarg, "none") == 0)
				o.prefetch = TQ_PREFETCH_NONE;
			else if (strcmp(optarg, "auto") == 0)
				o.prefetch = 0;
			else if (parse_uint(optarg, 65535, &o.prefetch) != 0)
				return bad("--prefetch", optarg, "a count 0..65535, auto or none");
			else if (o.prefetch == 0)
				o.prefetch = TQ_PREFETCH_NONE; /* an explicit 0 means none */
			break;
		case 'i':
			if (strcmp(optarg, "process") == 0)
				o.isolation = TQ_ISOLATION_PROCESS;
			else if (strcmp(optarg, "none") == 0)
				o.isolation = TQ_ISOLATION_NONE;
			else
				return bad("--isolation", optarg, "process or none");
			break;
		case 'n':
			if (strlen(optarg) == 0 || strlen(optarg) > 255)
				return bad("--name", optarg, "1 to 255 bytes");
			o.name = optarg;
			break;
		case 'H':
			if (parse_uint(optarg, 60000, &o.heartbeat_ms) != 0 || o.heartbeat_ms < 10)
				return bad("--heartbeat", optarg, "milliseconds, 10..60000");
			break;
		case 'l':
			if (parse_uint(optarg, 100, &o.liveness) != 0 || o.liveness == 0)
				return bad("--liveness", optarg, "a count, 1..100");
			break;
		case 'd':
			if (parse_uint(optarg, 86400000, &o.drain_ms) != 0)
				return bad("--drain", optarg, "milliseconds, 0..86400000");
			break;
		case 'P':
			if (nplugins == (int)(sizeof plugins / sizeof plugins[0]))
				return bad("--plugin", optarg, "at most 64 plugins");
			plugins[nplugins++] = optarg;
			break;
		case 'N':
			builtins = 0;
			break;
		case 'C':
			health_of = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "tq-worker: unknown or incomplete option '%s'\n",
			        argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tq-worker: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (health_of != NULL)
		return health(health_of, o.name);
	if (o.isolation == TQ_ISOLATION_NONE && o.concurrency > 1) {
		fprintf(stderr,
		        "tq-worker: --isolation none runs one task at a time: --concurrency "
		        "(or $TQ_CONCURRENCY) must be 1; run one worker per core instead\n");
		return 2;
	}
	tqi_log_set_component("worker");
	tq_worker *w;
	tq_err e = tq_worker_new(&w, &o);
	if (e != TQ_OK) {
		fprintf(stderr, "tq-worker: %s\n", tq_strerror(e));
		return 2;
	}
	if (builtins && tqi_builtins_register(w) != TQ_OK) {
		fprintf(stderr, "tq-worker: cannot register the built-in functions\n");
		return 1;
	}
	for (int i = 0; i < nplugins; i++)
		if (load_plugin(w, plugins[i]) != 0) {
			tq_worker_destroy(&w);
			return 2;
		}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	the_worker = w;
	e = tq_worker_run(w);
	the_worker = NULL;
	tq_worker_destroy(&w);
	if (e == TQ_EINVAL) {
		fprintf(stderr, "tq-worker: no functions to serve\n");
		return 2;
	}
	return e == TQ_OK ? 0 : 1;
}
