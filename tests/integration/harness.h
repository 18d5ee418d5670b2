/*
 * harness.h - real tq processes for integration tests.
 *
 * Each test gets its own broker on ephemeral loopback ports and its own
 * workers, with their logs in a temporary directory; teardown kills and
 * reaps every process it started, prints the last lines of every log when
 * the test failed an assertion (all of every log when TQ_TEST_LOGS is
 * set), and removes the directory with whatever the test left in it.
 * Waits poll a condition with a bound, never sleep blindly.
 */
#ifndef TQ_TEST_HARNESS_H
#define TQ_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tq/client.h"

/* Processes alive at once; a reaped process's slot is used again. */
#define TH_MAX_PROCS 32

typedef struct {
	pid_t pid;
	char log[512];
	char what[64];
	bool stopped; /* SIGSTOPped by the test */
} th_proc;

typedef struct {
	char dir[256];
	th_proc procs[TH_MAX_PROCS];
	int nprocs;  /* slots used so far */
	int started; /* processes started so far (numbers their logs) */
	char client_ep[128], worker_ep[128];
	th_proc *broker;
	char plugin[512]; /* the test plugin's path */
	/* When > 0, the processes th_spawn starts from now on run with this
	 * RLIMIT_NOFILE, soft and hard: how a test puts a broker under a low
	 * descriptor limit it cannot raise.  0 (th_setup's): the test's own. */
	int nofile;
} th_env;

/* cmocka fixtures: *state becomes a th_env. */
int th_setup(void **state);
int th_teardown(void **state);

/* Starts a broker with the given extra arguments (NULL-terminated list, or
 * NULL); waits until it listens.  A restart passes the old endpoints. */
th_proc *th_broker(th_env *e, const char *const *args);
/* Starts a broker again on the same endpoints as before. */
th_proc *th_broker_again(th_env *e, const char *const *args);

/* Starts tq-worker named `name` (with the test plugin loaded) and waits
 * until it has registered. */
th_proc *th_worker(th_env *e, const char *name, const char *const *args);

/* Starts any program; its output goes to a log file.  NULL when
 * TH_MAX_PROCS processes that were not reaped exist.  Once a process was
 * reaped (th_wait_exit returned its status), its th_proc may be reused by
 * the next start: don't use that pointer after starting another. */
th_proc *th_spawn(th_env *e, const char *what, const char *const *argv);

/* Runs argv to completion (at most timeout_ms, then SIGKILL) and returns
 * its exit code (128 + signal when killed, -1 if it could not run); *out
 * and *err receive its stdout and stderr (free them).  While it runs, they
 * are written to run.out and run.err in the test's directory. */
int th_run(th_env *e, const char *const *argv, int timeout_ms, char **out, char **err);

void th_signal(th_proc *p, int sig);
/* Waits up to timeout_ms for p to exit; returns its wait status or -1. */
int th_wait_exit(th_proc *p, int timeout_ms);

/* A client of the test's broker; broker_timeout_ms 0 keeps the default. */
tq_client *th_client(th_env *e, int broker_timeout_ms);

/* The usual start: a broker (broker_args may be NULL), one worker "w1"
 * (worker_args may be NULL) once registered, and a client; each asserted. */
tq_client *th_start(th_env *e, const char *const *broker_args, const char *const *worker_args);

/* Polls cond(arg) every few ms until it holds or timeout_ms passes. */
bool th_wait_for(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* True once `text` appears in p's log (waits up to timeout_ms). */
bool th_log_has(th_proc *p, const char *text, int timeout_ms);

/* True once a line of p's log has `text` and, after it on the same line,
 * `then` (waits up to timeout_ms). */
bool th_log_has_line(th_proc *p, const char *text, const char *then, int timeout_ms);

/* Reads a number from the broker's stats: "counters.NAME", "tasks",
 * "workers" (how many), "load" (tasks held by all workers), "capacity"
 * (tasks all workers may hold), "clients", or "workers.NAME.KEY" (KEY, a
 * uint, of the worker named NAME, e.g. "workers.w1.load").
 * Returns 0 or -1. */
int th_stat(th_env *e, const char *what, uint64_t *out);
/* Stat `what` as th_stat reads it, asserted to be there. */
uint64_t th_stat_of(th_env *e, const char *what);
/* Waits until stat `what` is >= want; true if it got there. */
bool th_stat_reaches(th_env *e, const char *what, uint64_t want, int timeout_ms);
/* Waits until stat `what` is exactly want; true if it got there. */
bool th_stat_is(th_env *e, const char *what, uint64_t want, int timeout_ms);

/* Watches stat `what` from a thread of its own, every few ms, while
 * gate(arg) holds (always when gate is NULL), until th_watch_end; that
 * returns the highest value seen and, in *samples (may be NULL), how many
 * samples counted.  How a test sees what held at one instant - two tasks
 * held at once is "load" 2 - while it waits for something else. */
typedef struct th_watch th_watch;
th_watch *th_watch_start(th_env *e, const char *what, bool (*gate)(void *arg), void *arg);
uint64_t th_watch_end(th_watch *w, uint64_t *samples);

uint64_t th_now_ms(void);

/* p's resident memory in KiB (VmRSS), or 0 when it cannot be read. */
uint64_t th_rss_kb(const th_proc *p);

/* A file that a task creates (the test plugin's touch and mark): how tests
 * see that a task ran, or is running. */
typedef struct {
	char path[512];
} th_path;

/* For th_wait_for: true once the file at ((th_path *)arg)->path exists. */
bool th_file_exists(void *arg);

/* Submits the test plugin's `mark`, which creates fw->path (set here to
 * the test's directory/tag) when it starts, then sleeps ms.  o may be NULL. */
tq_task *th_mark(th_env *e, tq_client *c, th_path *fw, const char *tag, int ms,
                 const tq_task_opts *o);
/* th_mark, then waits until the task runs (asserted, 5 s at most). */
tq_task *th_mark_running(th_env *e, tq_client *c, th_path *fw, const char *tag, int ms,
                         const tq_task_opts *o);
/* Asserts that the task that would create fw never ran: a probe submitted
 * now (double [1]) is answered only after the one worker has run or dropped
 * every task it held before it, and fw still does not exist then. */
void th_expect_never_ran(tq_client *c, th_path *fw);

/* Builds a msgpack argument list from JSON text into a static buffer and
 * submits fn with it. */
tq_task *th_async(tq_client *c, const char *fn, const char *json_args, const tq_task_opts *o);

/* The integer result of a task that succeeded (asserts that it is one). */
int64_t th_result_int(const tq_task *t);
/* Runs fn(json_args) on c and asserts that it succeeds within 5 s with the
 * integer result want, on `worker` unless that is NULL. */
void th_expect_int(tq_client *c, const char *fn, const char *json_args, int64_t want,
                   const char *worker);

#endif
