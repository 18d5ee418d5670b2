/*
 * broker.h - the broker's data model, shared by the files of broker/.
 *
 * One thread, one zmq_poll loop over two ROUTER sockets (clients, workers).
 * Every task is in the task table by reference and in exactly one place:
 * its function's FIFO queue (QUEUED) or its worker's task list (ASSIGNED).
 * Every owned task is also in its owner's session list, and every task is
 * in the deadline heap or, when its deadline is the broker's bound, on the
 * bound list.  All of these are intrusive, so each
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
	uint64_t max_connections;    /* clients + workers at once; 0: see tqi_conns_init */
	uint64_t max_task_time_ms;   /* every task's deadline is at most this far off; 0: default */
	const char *admin_endpoint;  /* operators' endpoint (admin.c); NULL: none */
	uint64_t max_memory;         /* bytes held for tasks and peers (memory.c); 0: default */
	uint64_t max_client_memory;  /* of which one client's; 0: a quarter of max_memory */
	/* What one worker may hold; when what it has not started is taken back. */
	uint32_t max_worker_capacity; /* its concurrency and capacity at most; 0: default */
	uint64_t prefetch_timeout_ms; /* see tqi_workers_tick; 0: max(1000, 4 x heartbeat) */
} tqi_broker_opts;

/* The byte budget (tq-broker --max-memory, --max-client-memory). */
#define TQI_DEFAULT_MAX_MEMORY ((uint64_t)2 << 30)
#define TQI_MIN_MAX_MEMORY ((uint64_t)1 << 20)

/* The bound on every task's deadline (tq-broker --max-task-time): a task
 * submitted without a timeout, or with a longer one, ends by then, so no
 * task - detached ones included - holds a worker for ever. */
#define TQI_DEFAULT_MAX_TASK_TIME_MS 3600000u
#define TQI_MIN_MAX_TASK_TIME_MS 1000u
#define TQI_MAX_MAX_TASK_TIME_MS 2147483647u /* 2^31-1: fits a signed 32-bit int */

/* The most tasks one worker is given at once, and the most it may say it
 * runs, whatever it announces (tq-broker --max-worker-capacity): above
 * what tq-worker's automatic prefetch asks for on a few cores, far below
 * what would let one peer empty a queue into itself. */
#define TQI_DEFAULT_MAX_WORKER_CAPACITY 1024u

/* A peer that does not read what it is sent fills its socket's high-water
 * mark, then its outbox; past these it is let go as if it had died
 * (outbox.c).  A worker may also queue two messages (TASK, CANCEL) per task
 * it holds; a TASK's arguments, shared with the task, are not counted. */
/* A client may fall this far behind - e.g. busy between two calls while its
 * results arrive - before it counts as not reading; the bytes bound below
 * is what keeps the broker's memory in check. */
#define TQI_DEFAULT_MAX_OUTBOX 1000000
#define TQI_OUTBOX_MAX_BYTES (256u << 20) /* beyond the first message */

/* ERROR answers (malformed messages, throttled STATS), all peers
 * together: a burst of 100, then 20 a second. */
#define TQI_BAD_REPLY_BURST 100.0
#define TQI_BAD_REPLY_PER_SEC 20.0

/* DISCONNECT answers to commands from workers the broker does not know,
 * all such peers together, apart from ERROR's allowance: a burst of 100,
 * then 20 a second.  Beyond, the command is not answered (counted as
 * throttled); the worker finds the broker lost by its silence instead. */
#define TQI_DISCONNECT_BURST 100.0
#define TQI_DISCONNECT_PER_SEC 20.0

/* The counters `tq stats` prints (PROTOCOL.md, STATS_REPLY). */
#define TQI_COUNTERS(X)        \
	X(submitted)           \
	X(completed)           \
	X(failed)              \
	X(crashed)             \
	X(worker_lost)         \
	X(retried)             \
	X(expired)             \
	X(cancelled)           \
	X(fenced)              \
	X(malformed)           \
	X(rejected)            \
	X(no_worker)           \
	X(owners_lost)         \
	X(workers_lost)        \
	X(throttled)           \
	X(reclaimed)           \
	X(refused_connections) \
	X(cut_off)

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

/* What a client holds against the byte budget (memory.c): its tasks,
 * owned and detached, and its outbox.  Shared by the client and each task
 * it submitted, and freed with the last of them. */
typedef struct bacct {
	uint64_t bytes;
	uint64_t refs;
} bacct;

/* What clients and workers share: their routing id and send queue. */
typedef struct {
	tqi_hnode hnode; /* in clients or workers, by routing id */
	tqi_role role;   /* TQI_ROLE_CLIENT or TQI_ROLE_WORKER */
	uint8_t id[TQI_MAX_ROUTING_ID];
	uint8_t idlen;
	char name[TQI_MAX_NAME + 1];
	char idhex[13];          /* first 6 bytes of the id, for logs */
	tqi_list outbox;         /* boutmsg: sends that met EAGAIN, in order */
	size_t outbox_bytes;     /* what the outbox holds (see TQI_OUTBOX_MAX_BYTES) */
	tqi_node blocked;        /* in broker.blocked while outbox is not empty */
	tqi_batch batch;         /* this loop turn's messages, sent as one at its end */
	tqi_node batched;        /* in broker.batched while batch is not empty */
	tqi_node gone_node;      /* in broker.gone once found dead */
	bool gone;               /* found dead; cleaned up at the end of the loop turn */
	uint64_t unreachable_ms; /* a client: when a send found it without a
	                          * connection (0: reachable); see outbox.c */
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
	/* For taking back what it does not start (tqi_workers_tick): fresh is
	 * the oldest task given to it since it last reported a DONE that was
	 * not fenced (NULL: none) - it and every task after it on `tasks` were
	 * given since - and fresh_ms when it was given (monotonic ms).  A
	 * stalled worker sat on tasks it had not started: it is given no more
	 * than its concurrency until its next such DONE. */
	struct btask *fresh;
	uint64_t fresh_ms;
	bool stalled;
	bool clamp_logged; /* it asked for more than --max-worker-capacity */
	tqi_list tasks;    /* btask.qnode, assigned to this worker */
	tqi_node live;     /* in broker.live */
	boffer *offers;
	uint32_t noffers;
};

struct bclient {
	bpeer peer;
	bacct *acct;              /* its share of the byte budget */
	tqi_ratelimit stats_rate; /* STATS it may ask for */
	uint64_t session;         /* the client's nonce for this session */
	tqi_list tasks;           /* btask.cnode, owned async tasks */
	tqi_node all;             /* in broker.client_list */
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
	TASKF_ANSWERED = 2,   /* its outcome is settled: counted, and told to its owner if any */
	TASKF_CANCELLING = 4, /* a CANCEL went to its worker */
	TASKF_NOWORKER = 8    /* its owner was told no worker serves its function
	                       * (NOTICE{ENOWORKER}); cleared when it is dispatched */
};

typedef struct btask {
	tqi_hnode hnode; /* in tasks, by ref */
	uint8_t ref[TQI_REF_LEN];
	tqi_node qnode;         /* bfunc.queue or bworker.tasks */
	tqi_node cnode;         /* bclient.tasks */
	tqi_heap_node deadline; /* key: absolute ms, monotonic; in the heap, or
	                         * (the broker's bound) on the bound list */
	tqi_node bnode;         /* broker.bound, while its deadline is the bound */
	bfunc *fn;
	bclient *owner;    /* NULL when detached or the owner is gone */
	bworker *worker;   /* when ASSIGNED */
	bacct *acct;       /* its submitter's: holds the task's cost (memory.c) */
	zmq_msg_t payload; /* the arguments, shared with each dispatch */
	uint64_t seq;      /* order of arrival, for FIFO across functions */
	uint32_t attempt;  /* of the current or last dispatch */
	uint8_t retries_left;
	uint8_t state;
	uint8_t flags;
} btask;

/* Descriptors the connection cap leaves to the broker (conns.c): its own
 * - about 20: standard streams, libzmq's mailboxes and pollers, the
 * listeners - and the connections libzmq's I/O thread accepts in a burst
 * before the loop has read their events and refused those beyond the cap.
 * Past it, accept() fails with EMFILE until refusals free descriptors. */
#define TQI_CONNS_RESERVE 64

/* One ROUTER's connections, watched through its monitor (conns.c). */
typedef struct {
	void *monitor;    /* PAIR: the ROUTER's monitor events, in order */
	const char *role; /* "client" or "worker", for logs */
	int family;       /* of the listener's address: AF_INET (either IP), AF_UNIX, 0 */
	uint16_t port;    /* tcp: the listener's port */
	char path[108];   /* ipc: its path ('\0' first for an abstract name) */
	size_t pathlen;
	uint8_t *state;         /* by descriptor: what it is to this listener */
	tqi_ratelimit *chatter; /* by descriptor: what it may still send (tqi_conns_chatter) */
	size_t nstate;          /* of both */
	uint32_t ncut;          /* descriptors FD_CUT: shut down, their DISCONNECTED to come */
} tqi_conn_watch;

typedef struct {
	uint64_t fd_limit; /* the soft RLIMIT_NOFILE, once raised */
	uint64_t max;      /* connections at once, clients and workers together */
	uint64_t count;    /* connections open now (at most max) */
	bool just_cut;     /* a connection was cut off by the command just handled */
	tqi_conn_watch clients, workers;
	tqi_ratelimit refused_log, accept_log;
} tqi_conns;

typedef struct tqi_broker {
	tqi_broker_opts opts;
	void *ctx;
	void *clients_sock, *workers_sock;
	void *admin_sock;         /* NULL without an admin endpoint */
	char admin_endpoint[256]; /* as bound */
	tqi_rx rx_admin;
	tqi_ratelimit admin_log;                         /* operators' repeated or vain CANCELs */
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
	tqi_list bound; /* btask.bnode: tasks whose deadline is the broker's bound,
	                 * given at SUBMIT, so in deadline order (tasks.c) */
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
	tqi_ratelimit bad_log;     /* misbehaving peers */
	tqi_ratelimit peer_log;    /* peers' comings and goings, which a peer can repeat */
	tqi_ratelimit owner_log;   /* owners lost with tasks: apart, so a flood of
	                            * idle sessions cannot hide them */
	tqi_ratelimit bad_reply;   /* ERROR answers (TQI_BAD_REPLY_*) */
	tqi_ratelimit disconnects; /* to unknown workers (TQI_DISCONNECT_*) */
	tqi_ratelimit stats_anon;  /* STATS from peers without a session, all together */
	struct {
		uint64_t held; /* bytes of tasks and outboxes (memory.c) */
		uint64_t peak; /* of held since the last trim */
	} mem;
	tqi_wbuf scratch; /* envelope encoding */
	tqi_conns conns;  /* connections counted and capped (conns.c) */
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
/* The same, told to the client peer `to` (an owner's new session, which
 * has the owner's routing id) unless t was answered already. */
void tqi_task_fail_to(tqi_broker *b, btask *t, bpeer *to, tq_err code, const char *msg);
/* Gives t, a new task, the broker's bound as its deadline. */
void tqi_task_set_bound(tqi_broker *b, btask *t);
/* The earliest deadline of any task, UINT64_MAX for none. */
uint64_t tqi_tasks_next_deadline(const tqi_broker *b);
/* Expires every task whose deadline has passed. */
void tqi_tasks_expire(tqi_broker *b);
/* Milliseconds left before t's deadline, 0 for none; at least 1 if set,
 * at most TQI_MAX_TIMEOUT_MS. */
uint64_t tqi_task_timeout_left(const tqi_broker *b, const btask *t);

/* ---- dispatch.c: functions, queues and workers' offers ---- */
bfunc *tqi_func_get(tqi_broker *b, const char *name, uint32_t len, bool create);
/* Frees f if nothing refers to it any more. */
void tqi_func_release(tqi_broker *b, bfunc *f);
/* True when a worker that is neither gone nor draining offers f: one that
 * serves it.  O(the workers that offer f). */
bool tqi_func_served(const bfunc *f);
/* f has just lost the last worker that served it: each task in its queue
 * is marked TASKF_NOWORKER, and its owner told NOTICE{ENOWORKER}, unless
 * it was told already.  O(f's queue); for the moment of that loss only. */
void tqi_func_unserved(tqi_broker *b, bfunc *f);
/* Queues t (at the front for a retry) and dispatches what can be.  A task
 * left queued while no worker serves its function is marked and its owner
 * told, as tqi_func_unserved does. */
void tqi_enqueue(tqi_broker *b, btask *t, bool front);
/* Gives queued work to worker w while it has room. */
void tqi_worker_pull(tqi_broker *b, bworker *w);
/* Unassigns t from its worker (load, lists). */
void tqi_unassign(tqi_broker *b, btask *t);
/* Sends CANCEL for t to its worker. */
void tqi_cancel_on_worker(tqi_broker *b, btask *t, uint32_t grace_ms);
/* Takes t, which its worker holds and has not started, back for the other
 * workers that offer t's function: CANCEL{grace 0} to the holder, and t
 * requeued at the front of its queue with its retries intact - dispatched
 * at once if one has room - so that its next dispatch is its next attempt
 * and whatever the holder still says of it is fenced.  The holder must be
 * stalled, so that t does not go back to it.  Returns false, changing
 * nothing, when no other live worker that is neither draining nor stalled
 * offers the function. */
bool tqi_reclaim(tqi_broker *b, btask *t);

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

/* ---- admin.c: the operators' endpoint ----
 * A peer on the admin endpoint is an operator: whoever can reach it (the
 * file-system permissions of an ipc:// socket) may cancel any task, owned
 * or detached, and read the stats.  It speaks the client's CANCEL and
 * STATS; anything else is refused with ECOMMAND.  Answers go once, without
 * an outbox: an operator that does not read loses them. */
/* Logs where operators reach the broker, if anywhere, and warns when that
 * is a tcp:// endpoint other hosts may reach. */
void tqi_admin_announce(tqi_broker *b);
/* Reads and handles what operators sent, up to TQI_RX_TURN commands. */
void tqi_admin_drain(tqi_broker *b);

/* ---- conns.c: connections counted, and refused beyond the cap ----
 * Clients and workers together hold at most conns.max connections, so the
 * broker never runs out of descriptors: one accepted beyond is shut down
 * at once (counted in refused_connections, logged at a bounded rate); the
 * peer sees its connection closed. */
/* Raises the soft RLIMIT_NOFILE to the hard limit (a failure is a warning,
 * and the soft limit stays), sets the cap - opts.max_connections, or the
 * limit less TQI_CONNS_RESERVE - and logs both, then watches both ROUTER
 * sockets, already bound.  Returns TQ_EINVAL, logged, when the cap leaves
 * the broker fewer than TQI_CONNS_RESERVE descriptors; TQ_ETRANSPORT when
 * a monitor cannot be started.  tqi_conns_close undoes it either way. */
tq_err tqi_conns_init(tqi_broker *b);
/* Reads the monitor events waiting on both watches, in order (a bounded
 * number a call: conns.clients.monitor and conns.workers.monitor stay
 * readable for the loop's zmq_poll while more wait), keeps conns.count,
 * and shuts down each connection accepted at the cap.  Never blocks. */
void tqi_conns_read(tqi_broker *b);
/* Counts one command that starts no work (anything but an accepted SUBMIT
 * or a worker's DONE of a task it holds) against the connection `frame`
 * came on (of role's listener), and shuts that connection down (counted
 * in cut_off, logged at a bounded rate) once it sends more than a peer of
 * tq ever would; then sets conns.just_cut, and the loop's reader drops the
 * rest of the frame.  The peer may connect again. */
void tqi_conns_chatter(tqi_broker *b, tqi_role role, const zmq_msg_t *frame);
/* True when `frame` came on a connection that was cut off and is not yet
 * closed: its commands are dropped unread.  Free while none is. */
bool tqi_conns_dropping(tqi_broker *b, tqi_role role, const zmq_msg_t *frame);
/* Closes the watches' sockets and frees their state; accepts a broker
 * whose tqi_conns_init failed or never ran.  Before the ROUTERs close. */
void tqi_conns_close(tqi_broker *b);

/* ---- memory.c: the byte budget ---- */
/* A new account with one reference (its client's), or NULL. */
bacct *tqi_acct_new(void);
/* Takes a reference to a (for a task); returns a. */
bacct *tqi_acct_get(bacct *a);
/* Drops a reference, freeing the account with the last; clears *ap. */
void tqi_acct_put(bacct **ap);
/* What a task with args_len bytes of arguments costs the budget. */
uint64_t tqi_task_cost(size_t args_len);
/* TQ_OK when `bytes` more fit both the broker's budget and a's share (a
 * may be NULL: a worker's, counted in the total only); else TQ_EBUSY with
 * why (whylen bytes) saying which is full. */
tq_err tqi_budget_admit(const tqi_broker *b, const bacct *a, uint64_t bytes, char *why,
                        size_t whylen);
/* Counts bytes as held (by a, when not NULL); release gives them back. */
void tqi_budget_charge(tqi_broker *b, bacct *a, uint64_t bytes);
void tqi_budget_release(tqi_broker *b, bacct *a, uint64_t bytes);
/* Each tick: after a burst has gone, gives malloc's free pages back to
 * the system. */
void tqi_memory_tick(tqi_broker *b);

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
