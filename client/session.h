/*
 * session.h - the client's state, shared by client.c (connection, session,
 * the message pump), task.c and many.c.
 *
 * Session rule.  The client opens a session with HELLO and a nonce; every
 * SUBMIT carries the nonce and a local sequence number.  The broker refuses
 * (TQ_ESESSION) any SUBMIT whose session it does not hold.  HELLOs are
 * answered in order, each WELCOME saying whether the session was already
 * held (resumed) or had to be opened anew; a fresh one means every task
 * submitted before that HELLO and still pending was lost with the old
 * session (broker restart, or the broker took this client for dead).  So
 * the client always knows which pending tasks the broker still holds, and
 * resubmits or fails exactly the lost ones.
 */
#ifndef TQI_CLIENT_SESSION_H
#define TQI_CLIENT_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "base/hmap.h"
#include "base/list.h"
#include "base/rand.h"
#include "proto/frames.h"
#include "proto/wire.h"
#include "tq/client.h"

/* Where a task is in its life, from the client's point of view. */
typedef enum {
	CT_SUBMITTED, /* sent; the broker has it or will answer for it */
	CT_WAITING,   /* lost with a broker; resubmitted when one is back */
	CT_DONE,      /* outcome known, not yet returned to the caller */
	CT_CONSUMED   /* outcome returned (or given up); answers are strays, but for
	               * the one owed to a cancel (cdropped) */
} ct_state;

/* The ref of a task the client cancelled and stopped waiting for before
 * the broker answered: that answer, when it comes, is expected and not a
 * stray.  Kept until the answer comes, for TQI_DROPPED_MS at most, and
 * TQI_DROPPED_MAX at once (the oldest forgotten first). */
typedef struct {
	tqi_hnode hnode; /* in client.dropped */
	tqi_node order;  /* in client.dropped_order, oldest first */
	uint64_t at_ms;  /* when it was dropped (monotonic) */
	uint8_t ref[TQI_REF_LEN];
} cdropped;

#define TQI_DROPPED_MAX 16384
#define TQI_DROPPED_MS 60000

/* An interned name (function or worker): tasks point at these. */
typedef struct {
	tqi_hnode hnode;
	uint32_t len;
	char s[];
} cname;

/* A group of tasks waited on together (await_many / yield_many, and a
 * stream's running tasks). */
typedef struct {
	size_t ended;     /* tasks of the group that have an outcome */
	size_t first_bad; /* await_many: index of the first failure, or SIZE_MAX */
} cgroup;

struct tq_task {
	tqi_hnode hnode; /* in client.pending while SUBMITTED or WAITING */
	tqi_node all;    /* in client.tasks while the handle exists, else orphans */
	tqi_node wnode;  /* in client.waiting while WAITING */
	tq_client *client;
	uint8_t ref[TQI_REF_LEN];
	char refhex[2 * TQI_REF_LEN + 1]; /* ref in hex; "" until tqi_task_refhex */
	const cname *fn;
	const cname *worker;
	zmq_msg_t args;        /* kept for resubmission until the task ends */
	zmq_msg_t result;      /* after TQ_OK */
	char *error;           /* explanation of a failure (malloc'd) */
	uint64_t session;      /* nonce it was last submitted under */
	uint64_t seq;          /* order of that submission */
	uint64_t submitted_ms; /* when (monotonic) */
	uint64_t deadline_ms;  /* absolute, monotonic; 0 = none */
	unsigned retries_left;
	unsigned attempt;
	ct_state state;
	tq_err outcome;
	bool detached; /* start */
	bool keep_on_timeout;
	bool noworker; /* the broker said no worker offers fn */
	bool deadline_sent;
	bool orphan;      /* ignored before the broker confirmed it: no handle */
	bool cancel_owed; /* a CANCEL went out and no answer has come since */
	cgroup *group;
	size_t group_index;
};

struct tq_client {
	void *ctx, *sock;
	void *mon; /* sock's monitor: its disconnections (send_check) */
	tqi_rx rx; /* reads sock: the broker may send several answers in one message */
	char broker[256];
	char name[TQI_MAX_NAME + 1];
	int broker_timeout_ms;
	tqi_rand rng;
	/* The ref of the next task, drawn one task early so that its bucket
	 * in `pending` is loading by the time the task is submitted. */
	uint8_t next_ref[TQI_REF_LEN];
	tqi_wbuf scratch;

	/* session */
	uint64_t session;
	uint64_t seq;
	uint64_t last_hello_ms;
	uint64_t last_hello_seq; /* seq when the newest HELLO was sent (its mark) */
	uint64_t probe_gap_ms;   /* between HELLO probes while the broker is silent */
	uint8_t instance[TQI_REF_LEN];
	bool have_instance;
	uint32_t broker_hb_ms; /* from the last WELCOME; 0 until one came */
	uint64_t last_heard_ms;
	uint64_t waiting_since_ms; /* when pending went from none to some */

	tqi_hmap pending;       /* tq_task by ref: SUBMITTED and WAITING */
	tqi_list tasks;         /* every live handle */
	tqi_list orphans;       /* tasks ignored but not yet confirmed (see task.c) */
	tqi_list waiting;       /* CT_WAITING */
	tqi_list streams;       /* live tq_streams, detached by tq_client_destroy */
	tqi_hmap dropped;       /* cdropped by ref */
	tqi_list dropped_order; /* cdropped, oldest first */
	tqi_hmap names;
	const cname *last_name; /* the last one interned or found */

	/* answers to requests that are not tasks */
	uint8_t *stats;
	size_t stats_len;
	bool stats_ready;

	uint64_t strays, resubmitted;
	unsigned since_read; /* submissions since the last read */
};

/* The broker's heartbeat interval assumed until a WELCOME tells the real
 * one (the broker's own default). */
#define TQI_DEFAULT_HB_MS 250

/* The broker's heartbeat interval in ms: what its WELCOME said, else the
 * default.  Every timer that is "one heartbeat" uses this. */
static inline uint64_t tqi_hb_ms(const tq_client *c)
{
	return c->broker_hb_ms ? c->broker_hb_ms : TQI_DEFAULT_HB_MS;
}

/* ---- client.c ---- */
const cname *tqi_intern(tq_client *c, const char *s, size_t len);
/* Sends SUBMIT for t under the current session with a new seq. */
tq_err tqi_submit(tq_client *c, tq_task *t);
/* Sends a CANCEL / DETACH / DEADLINE.  A task that leaves `pending`
 * after its CANCEL went out and before an answer came has its ref kept in
 * `dropped` (see cdropped). */
void tqi_send_cancel(tq_client *c, tq_task *t, uint32_t grace_ms);
void tqi_send_detach(tq_client *c, const tq_task *t);
void tqi_send_deadline(tq_client *c, tq_task **tasks, size_t n, uint64_t timeout_ms);
void tqi_send_stats(tq_client *c);
/* An await tells the broker its deadline only once it has waited a
 * heartbeat interval, so fast tasks never pay a message for it.  Returns
 * the time to wait before sending it. */
uint64_t tqi_deadline_lag(const tq_client *c, uint64_t until);
/* Sends the deadline `until` of an await for tasks[0..n).  The broker gets
 * it one heartbeat interval late on purpose: the client's own timer, which
 * cancels the tasks and names the timeout, always speaks first; the
 * broker's copy is the backstop for an owner that never cancels. */
void tqi_send_await_deadline(tq_client *c, tq_task **tasks, size_t n, uint64_t until);
/* Processes messages and watches the broker until done(arg) or until
 * `until` (absolute ms; UINT64_MAX: no limit).  TQ_OK when done,
 * TQ_ETIMEDOUT otherwise. */
tq_err tqi_pump(tq_client *c, uint64_t until, bool (*done)(tq_client *c, void *arg), void *arg);
/* Reads what has arrived without waiting, once every 64 calls: for bursts
 * of submissions. */
void tqi_read_ahead(tq_client *c);
/* ---- task.c ---- */
/* Frees the orphans that have ended (all of them when `all`). */
void tqi_reap_orphans(tq_client *c, bool all);

/* ---- stream.c ---- */
/* Called by tq_client_destroy while c still works: each of c's streams
 * that has not ended cancels what it runs and fails with TQ_ESTATE, and
 * forgets c, so that its later calls never reach freed memory. */
void tqi_streams_detach(tq_client *c);

/* ---- client.c ---- */
/* Ends t with an outcome (and an explanation, formatted by the caller). */
void tqi_task_end(tq_task *t, tq_err outcome, const char *why);
/* t's ref in hex, made on first use (most tasks never need it). */
const char *tqi_task_refhex(tq_task *t);
/* Takes t out of pending/waiting. */
void tqi_task_unlink(tq_task *t);

#endif
