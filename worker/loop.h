/*
 * loop.h - the worker's loop state, shared by worker.c (the broker side:
 * registration, heartbeats, tasks held) and pool.c (the executor side).
 *
 * Invariant: every task the worker holds is in `held` by reference, and is
 * either in the local queue or on exactly one executor; a held task with a
 * deadline is in `deadlines` until that passes; every held task gets
 * exactly one DONE, except when the broker connection is reset (the broker
 * has then given up on them).
 */
#ifndef TQI_WORKER_LOOP_H
#define TQI_WORKER_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <zmq.h>

#include "base/heap.h"
#include "base/hmap.h"
#include "base/list.h"
#include "base/rand.h"
#include "proto/frames.h"
#include "proto/wire.h"
#include "worker/executor.h"
#include "worker/registry.h"
#include "worker/tickets.h"
#include "worker/zygote.h"

typedef struct tqi_exec tqi_exec;
typedef struct pentry pentry;

typedef struct wtask {
	tqi_hnode hnode; /* in held, by ref */
	tqi_node qnode;  /* in the local queue while waiting for an executor */
	uint8_t ref[TQI_REF_LEN];
	uint32_t fn_index;
	uint32_t attempt;
	uint64_t seq; /* order of arrival: an idle executor takes the oldest */
	/* key: the deadline, ms on the monotonic clock, 0 = none; in
	 * tq_worker.deadlines while it has one */
	tqi_heap_node deadline;
	zmq_msg_t args;
	pentry *entry; /* while in an executor's pipe */
} wtask;

/* One task written (or being written) into an executor's socket; free
 * while its node is in no list. */
struct pentry {
	tqi_node node; /* in tqi_exec.inpipe, oldest first */
	wtask *t;      /* NULL: withdrawn (the executor will set it SKIPPED) or dropped */
	tqi_exec *ex;
	zmq_msg_t args;                 /* the arguments until the frame is written */
	uint8_t hdr[TQI_EXEC_TASK_HDR]; /* the frame's header */
	uint32_t ticket;                /* index on the ticket board */
};

/* SPAWNING: asked of the zygote; READY: may take tasks; DOOMED: signalled
 * by us, its results still count, it takes no task; DEAD: exited, to be
 * respawned at respawn_at. */
typedef enum { EX_SPAWNING, EX_READY, EX_DOOMED, EX_DEAD } ex_state;

struct tqi_exec {
	uint32_t slot;
	pid_t pid;
	int fd;
	ex_state state;
	pentry entries[TQI_EXEC_DEPTH]; /* ticket = slot * DEPTH + index */
	tqi_list inpipe;                /* pentry.node, in the order written */
	tqi_list spare;                 /* pentry.node of the entries in no pipe */
	uint32_t held;                  /* tasks (not withdrawn) in the pipe */
	tq_err stop_code;               /* why we signalled it; TQ_OK if we did not */
	uint64_t kill_at;               /* SIGKILL due (after a grace period); 0 = none */
	bool killed_late;               /* that SIGKILL went out: its grace ran out */
	uint64_t respawn_at;
	/* writing: the first entry not fully written, and how far */
	pentry *wcur;
	size_t woff;
	/* reading: result bytes not yet parsed */
	uint8_t *rbuf;
	size_t rlen, rcap;
};

struct tq_worker {
	tq_worker_opts opts;
	char broker[256];
	char name[TQI_MAX_NAME + 1];
	tqi_registry reg;
	bool running;

	void *ctx, *sock;
	tqi_rx rx;     /* reads sock: the broker may send several tasks in one message */
	tqi_batch out; /* what this loop turn sends, as one frame at its end */
	tqi_rand rng;
	enum { CONN_CONNECTING, CONN_READY } conn;
	uint8_t instance[TQI_REF_LEN];
	uint32_t broker_hb_ms;
	uint64_t conn_since, last_heard, last_sent;
	uint64_t backoff_ms;

	tqi_zygote zygote;
	tqi_tickets tickets;
	tqi_exec *execs;
	uint32_t nexecs;
	tqi_hmap held;
	tqi_list queue;
	uint32_t nheld;     /* tasks held: queued locally or in an executor */
	uint64_t arrived;   /* tasks received so far: the next one's seq */
	tqi_heap deadlines; /* the held tasks that have a deadline, soonest first */

	/* automatic prefetch: what tasks take, and the capacity announced */
	double service_us;      /* moving average of tasks' run times (executors' measure) */
	uint32_t capacity_sent; /* in READY or the last CAPACITY */
	uint64_t capacity_at;   /* when it was sent, ms */

	volatile sig_atomic_t stop_requests;
	bool draining;
	bool stopping_now; /* held tasks were told to stop */
	uint64_t drain_until;
	uint64_t now;
	tq_buf *reply; /* handlers' result buffer when they run in the loop */
};

/* ---- pool.c ---- */
int tqi_pool_start(tq_worker *w);
void tqi_pool_stop(tq_worker *w);
/* Handles zygote events (spawns, exits); -1 when the zygote is gone. */
int tqi_pool_zygote_events(tq_worker *w);
/* Reads results from (and writes tasks to) executor ex. */
void tqi_pool_io(tq_worker *w, tqi_exec *ex, short revents);
/* Starts queued tasks on executors (the least loaded first); an executor
 * that has none takes the oldest task that waits, from the queue or from
 * behind another's running task (PROTOCOL.md 4.3). */
void tqi_pool_schedule(tq_worker *w);
/* Ends t with `code` and `text` (cancelled, past its deadline, worker
 * stopping): at once if it has not started, else by signalling its executor
 * (SIGTERM now, SIGKILL after grace_ms, at once when 0), whose exit then
 * reports it - unless its result comes first. */
void tqi_pool_stop_task(tq_worker *w, wtask *t, tq_err code, const char *text, uint32_t grace_ms);
/* Forgets every held task without a word (the broker gave up on them):
 * the running ones are killed. */
void tqi_pool_drop_all(tq_worker *w);
/* Stops every held task as tqi_pool_stop_task does, at once. */
void tqi_pool_stop_all(tq_worker *w, tq_err code, const char *text);
/* Kills overdue executors; returns ms until the next timer (or UINT64_MAX). */
uint64_t tqi_pool_timers(tq_worker *w);
/* Fills zmq_poll items for the executors; returns how many. */
int tqi_pool_poll_items(tq_worker *w, zmq_pollitem_t *items, tqi_exec **owners);
/* Collects the results executors left in their tickets (tickets.h), in
 * each pipe's order.  True when there were any. */
bool tqi_pool_collect(tq_worker *w);
/* Before the loop sleeps (armed): arms the bell of every executor that
 * holds tasks, then collects once more; true when that found results, and
 * the loop must not sleep.  After it wakes (!armed): disarms them, so that
 * executors ring no bell while it is busy. */
bool tqi_pool_arm(tq_worker *w, bool armed);
/* Before the loop sleeps: when it holds one task, in an executor, and
 * tasks take a few microseconds, watches that executor's tickets for about
 * as long as the task and a wake-up take instead, and collects the result;
 * true when it came.  One task in flight is where latency is all there is:
 * a sleeping loop costs it a wake-up, while the other cores are idle. */
bool tqi_pool_spin(tq_worker *w);

/* ---- inline.c: handlers run in the loop (TQ_ISOLATION_NONE) ---- */
int tqi_inline_start(tq_worker *w);
void tqi_inline_stop(tq_worker *w);
/* Runs queued tasks, oldest first, for about one loop turn's budget; true
 * when some are left for the next turn. */
bool tqi_inline_run(tq_worker *w);

/* ---- worker.c ---- */
/* Sends what the loop gathered for the broker (tqi_batch) now. */
void tqi_worker_flush(tq_worker *w);
/* Feeds the automatic prefetch one task's run time, as measured where it
 * ran (not when the loop learnt of it: several results may come at once). */
void tqi_measure_service(tq_worker *w, uint32_t run_us);
/* Reports a held task's outcome to the broker and forgets it.  The
 * payload (len bytes; NULL for none) is copied, and sent only with TQ_OK. */
void tqi_task_done(tq_worker *w, wtask *t, tq_err code, const char *text, const void *payload,
                   size_t len);
/* Forgets a held task without reporting it. */
void tqi_task_forget(tq_worker *w, wtask *t);

#endif
