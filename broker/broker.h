/*
 * broker.h - the broker's data model, shared by the files of broker/.
 *
 * One thread, one zmq_poll loop over two ROUTER sockets (clients, workers).
 * Every task is in the task table by reference and in exactly one place:
 * its function's FIFO queue (QUEUED) or its worker's task list (ASSIGNED).
 * Every owned task is also in its owner's session list, and every task with
 * a deadline is in the deadline heap.  All of these are intrusive, so each
 * message costs O(1) table work (choosing among the workers that offer a
 * function is O(those workers)).
 *
 * The broker never decodes a payload: arguments arrive in a SUBMIT's second
 * frame, stay in the task as a zmq_msg_t, and go to workers by reference
 * count (zmq_msg_copy shares, it does not copy bytes); results are moved
 * from DONE to RESULT.
 */
#ifndef TQI_BROKER_H
#define TQI_BROKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "base/heap.h"
#include "base/hmap.h"
#include "base/list.h"
#include "base/log.h"
#include "base/slab.h"
#include "proto/frames.h"
#include "proto/wire.h"

typedef struct tqi_broker_opts {
	const char *client_endpoint; /* default: all interfaces, port 5555 */
	const char *worker_endpoint; /* default: all interfaces, port 5556 */
	uint32_t heartbeat_ms;       /* interval of heartbeats and probes; default 250 */
	uint32_t liveness;           /* intervals of silence before a peer is dead; default 3 */
	uint64_t max_tasks;          /* queued + running; SUBMIT beyond gets EBUSY */
	uint64_t max_payload;        /* bytes of arguments or result */
	uint64_t session_idle_ms;    /* a session with no tasks is dropped after this */
	uint64_t grace_ms;           /* on stop: time given to running tasks to finish */
	uint64_t max_outbox;         /* messages queued for a peer that is not reading */
} tqi_broker_opts;

/* A peer that does not read what it is sent fills its socket's high-water
 * mark, then its outbox; past these it is let go as if it had died
 * (outbox.c).  A worker may also queue two messages (TASK, CANCEL) per task
 * it holds; a TASK's arguments, shared with the task, are not counted. */
/* A client may fall this far behind - e.g. busy between two calls while its
 * results arrive - before it counts as not reading; the bytes bound below
 * is what keeps the broker's memory in check. */
#define TQI_DEFAULT_MAX_OUTBOX 1000000
#define TQI_OUTBOX_MAX_BYTES (256u << 20) /* beyond the first message */

/* The counters `tq stats` prints (PROTOCOL.md, STATS_REPLY). */
#define TQI_COUNTERS(X) \
	X(submitted)    \
	X(completed)    \
	X(failed)       \
	X(crashed)      \
	X(worker_lost)  \
	X(retried)      \
	X(expired)      \
	X(cancelled)    \
	X(fenced)       \
	X(malformed)    \
	X(rejected)     \
	X(no_worker)    \
	X(owners_lost)  \
	X(workers_lost)

typedef struct {
#define TQI_COUNTER_FIELD_(name) uint64_t name;
	TQI_COUNTERS(TQI_COUNTER_FIELD_)
#undef TQI_COUNTER_FIELD_
} tqi_counters;

typedef struct bworker bworker;
typedef struct bclient bclient;
typedef struct bfunc bfunc;

/* A command waiting for a peer that was at its high-water mark, packed
 * (frames.h) as it will go. */
typedef struct {
	tqi_node node;
	size_t bytes; /* counted in its peer's outbox_bytes */
	size_t len;
	uint8_t data[]; /* len bytes */
} boutmsg;

/* What clients and workers share: their routing id and send queue. */
typedef struct {
	tqi_hnode hnode; /* in clients or workers, by routing id */
	tqi_role role;   /* TQI_ROLE_CLIENT or TQI_ROLE_WORKER */
	uint8_t id[TQI_MAX_ROUTING_ID];
	uint8_t idlen;
	char name[TQI_MAX_NAME + 1];
	char idhex[13];      /* first 6 bytes of the id, for logs */
	tqi_list outbox;     /* boutmsg: sends that met EAGAIN, in order */
	size_t outbox_bytes; /* what the outbox holds (see TQI_OUTBOX_MAX_BYTES) */
	tqi_node blocked;    /* in broker.blocked while outbox is not empty */
	tqi_batch batch;     /* this loop turn's messages, sent as one at its end */
	tqi_node batched;    /* in broker.batched while batch is not empty */
	tqi_node gone_node;  /* in broker.gone once found dead */
	bool gone;           /* found dead; cleaned up at the end of the loop turn */
	const char *gone_why;
	uint64_t last_seen_ms;
} bpeer;

typedef struct boffer {
	tqi_node fnode; /* in bfunc.offers */
	bworker *worker;
	bfunc *fn;
} boffer;

struct bworker {
	bpeer peer;
	uint32_t concurrency;  /* tasks it runs at once */
	uint32_t capacity;     /* tasks it may be given: concurrency + prefetch */
	uint32_t heartbeat_ms; /* its interval; it is dead after liveness of them */
	uint32_t load;         /* tasks assigned to it (may exceed a lowered capacity) */
	bool draining;
	tqi_list tasks; /* btask.qnode, assigned to this worker */
	tqi_node live;  /* in broker.live */
	boffer *offers;
	uint32_t noffers;
};

struct bclient {
	bpeer peer;
	uint64_t session; /* the client's nonce for this session */
	tqi_list tasks;   /* btask.cnode, owned async tasks */
	tqi_node all;     /* in broker.client_list */
};

struct bfunc {
	tqi_hnode hnode; /* in functions, by name */
	char name[TQI_MAX_NAME + 1];
	uint32_t name_len;
	tqi_list queue;  /* btask.qnode, QUEUED, oldest first */
	tqi_list offers; /* boffer.fnode */
	uint64_t running;
};

enum { TASK_QUEUED = 1, TASK_ASSIGNED = 2 };

enum {
	TASKF_DETACHED = 1,   /* start: nobody awaits it */
	TASKF_ANSWERED = 2,   /* its owner already has its outcome */
	TASKF_CANCELLING = 4, /* a CANCEL went to its worker */
	TASKF_NOWORKER = 8    /* queued when no worker offered its function */
};

typedef struct btask {
	tqi_hnode hnode; /* in tasks, by ref */
	uint8_t ref[TQI_REF_LEN];
	tqi_node qnode;         /* bfunc.queue or bworker.tasks */
	tqi_node cnode;         /* bclient.tasks */
	tqi_heap_node deadline; /* key: absolute ms, monotonic */
	bfunc *fn;
	bclient *owner;    /* NULL when detached or the owner is gone */
	bworker *worker;   /* when ASSIGNED */
	zmq_msg_t payload; /* the arguments, shared with each dispatch */
	uint64_t seq;      /* order of arrival, for FIFO across functions */
	uint32_t attempt;  /* of the current or last dispatch */
	uint8_t retries_left;
	uint8_t state;
	uint8_t flags;
} btask;

typedef struct tqi_broker {
	tqi_broker_opts opts;
	void *ctx;
	void *clients_sock, *workers_sock;
	char client_endpoint[256], worker_endpoint[256]; /* as bound */
	uint8_t instance[TQI_REF_LEN];
	char instance_hex[2 * TQI_REF_LEN + 1];

	tqi_hmap tasks;       /* btask by ref */
	tqi_hmap functions;   /* bfunc by name */
	tqi_hmap clients;     /* bclient by routing id */
	tqi_hmap workers;     /* bworker by routing id */
	tqi_list client_list; /* every bclient, for heartbeats */
	tqi_list live;        /* every registered bworker, in order of registration */
	tqi_list gone;        /* bpeer.gone_node: found dead, not yet cleaned up */
	tqi_list blocked;     /* peers with a non-empty outbox */
	tqi_list batched;     /* peers with a non-empty batch */
	tqi_rx rx_workers, rx_clients;
	tqi_heap deadlines;
	uint64_t ntasks;
	uint64_t nassigned; /* tasks held by workers: the sum of their loads */
	uint64_t seq;

	uint64_t now_ms;
	uint64_t next_tick_ms;
	uint64_t started_ms;
	volatile sig_atomic_t stop;
	uint64_t stop_at_ms; /* when stopping: the end of the grace period */

	bpeer *last_client; /* tqi_peer_find's cache: the previous message's client */
	bpeer *last_worker; /* and worker; cleared when that peer is freed */
	tqi_slab task_slab; /* task records: on huge pages (base/slab.h) */

	tqi_counters n;
	tqi_ratelimit bad_log; /* misbehaving peers */
	tqi_ratelimit bad_reply;
	tqi_wbuf scratch; /* envelope encoding */
} tqi_broker;

/* ---- broker.c: lifecycle and loop ---- */
tq_err tqi_broker_new(tqi_broker **out, const tqi_broker_opts *opts);
/* Serves until tqi_broker_stop; returns TQ_OK after a clean stop. */
tq_err tqi_broker_run(tqi_broker *b);
/* Asks the loop to stop (grace period, then exit).  Async-signal-safe. */
void tqi_broker_stop(tqi_broker *b);
void tqi_broker_destroy(tqi_broker **bp);

/* ---- outbox.c: sending to a peer without ever blocking ---- */
/* Encodes e for peer p, with its payload (len bytes, copied; NULL for
 * none) when e->cmd carries one, into p's batch for this loop turn
 * (tqi_outbox_flush sends it, on the socket of p's role: sock only names
 * it) - or into p's outbox while that holds messages.  A batch refused at
 * the high-water mark goes to the outbox; a peer that is gone (EHOSTUNREACH
 * when its batch goes), or whose outbox is full (it is not reading), is
 * marked gone.  Returns 0, or -1 when the peer is known gone or memory ran
 * out (the command is then dropped). */
int tqi_send_to(tqi_broker *b, void *sock, bpeer *p, const tqi_env *e, const void *payload,
                size_t len);
/* Encodes e and sends it once, without an outbox, to the routing id `id` on
 * sock: for a peer the broker keeps no record of (a client without a
 * session, an unknown worker) and for answers that may be lost (ERROR).
 * Returns 0, or -1 when it could not be encoded or sent (EAGAIN,
 * EHOSTUNREACH): the message is then dropped. */
int tqi_send_raw(tqi_broker *b, void *sock, const zmq_msg_t *id, const tqi_env *e);
/* Sends every peer its batch of this loop turn, and retries queued sends
 * of blocked peers. */
void tqi_outbox_flush(tqi_broker *b);
void tqi_outbox_clear(tqi_broker *b, bpeer *p);

/* ---- tasks.c: the task table and deadlines ---- */
btask *tqi_task_find(tqi_broker *b, const uint8_t ref[TQI_REF_LEN]);
btask *tqi_task_new(tqi_broker *b, const uint8_t ref[TQI_REF_LEN], bfunc *fn);
/* Unlinks t from every structure and frees it (keeping the record for
 * reuse). */
void tqi_task_free(tqi_broker *b, btask *t);
void tqi_task_set_deadline(tqi_broker *b, btask *t, uint64_t deadline_ms);
/* Tells t's owner (if any, and not told yet) that t failed. */
void tqi_task_fail(tqi_broker *b, btask *t, tq_err code, const char *msg);
/* Expires every task whose deadline has passed. */
void tqi_tasks_expire(tqi_broker *b);
/* Milliseconds left before t's deadline, 0 for none; at least 1 if set,
 * at most TQI_MAX_TIMEOUT_MS. */
uint64_t tqi_task_timeout_left(const tqi_broker *b, const btask *t);

/* ---- dispatch.c: functions, queues and workers' offers ---- */
bfunc *tqi_func_get(tqi_broker *b, const char *name, uint32_t len, bool create);
/* Frees f if nothing refers to it any more. */
void tqi_func_release(tqi_broker *b, bfunc *f);
/* Queues t (at the front for a retry) and dispatches what can be. */
void tqi_enqueue(tqi_broker *b, btask *t, bool front);
/* Gives queued work to worker w while it has room. */
void tqi_worker_pull(tqi_broker *b, bworker *w);
/* Unassigns t from its worker (load, lists). */
void tqi_unassign(tqi_broker *b, btask *t);
/* Sends CANCEL for t to its worker. */
void tqi_cancel_on_worker(tqi_broker *b, btask *t, uint32_t grace_ms);

/* ---- client_side.c ---- */
void tqi_client_message(tqi_broker *b, tqi_frames *f);
void tqi_clients_tick(tqi_broker *b);
/* The owner is gone: cancels its async tasks, frees the session. */
void tqi_client_free(tqi_broker *b, bclient *c);
void tqi_clients_free_all(tqi_broker *b);

/* ---- worker_side.c ---- */
void tqi_worker_message(tqi_broker *b, tqi_frames *f);
void tqi_workers_tick(tqi_broker *b);
/* The worker is gone: retries or fails its tasks, frees it.  Only for a
 * worker marked gone (tqi_peer_gone); tqi_peers_reap calls it. */
void tqi_worker_free(tqi_broker *b, bworker *w);
void tqi_workers_free_all(tqi_broker *b);

/* ---- stats.c ---- */
tq_err tqi_stats_encode(tqi_broker *b, tqi_wbuf *out);

/* ---- peer helpers (broker.c) ---- */
void tqi_peer_init(bpeer *p, tqi_role role, const zmq_msg_t *id);
/* The peer with routing id `id` in map (clients or workers), or NULL.
 * *last remembers the answer, and is checked first: a burst of messages
 * comes from one peer, and skips the hash.  Whoever frees a peer clears a
 * *last that points to it. */
bpeer *tqi_peer_find(tqi_hmap *map, bpeer **last, const zmq_msg_t *id);
/* Marks p dead (why: a static string).  Nothing is freed until
 * tqi_peers_reap at the end of the loop turn, so callers deep inside a
 * handler may call it safely. */
void tqi_peer_gone(tqi_broker *b, bpeer *p, const char *why);
/* Cleans up every peer marked gone. */
void tqi_peers_reap(tqi_broker *b);
/* Logs and counts a message that broke the protocol, and answers ERROR. */
void tqi_bad_message(tqi_broker *b, void *sock, const char *role, tqi_frames *f, tq_err code,
                     const char *why);

#endif
