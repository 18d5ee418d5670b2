/*
 * zygote.h - the process executors are forked from.
 *
 * The zygote is forked by tq_worker_run before the worker creates its
 * ZeroMQ context or any thread, so every executor starts as a copy of a
 * single-threaded process holding the registered handlers and nothing
 * else: no sockets, no locks held by threads that do not exist in the
 * child.  The loop asks for executors over a SOCK_SEQPACKET pair and gets
 * each one's socket back with SCM_RIGHTS; the zygote reaps executors and
 * reports how each one ended.  Executors die with the zygote, and the
 * zygote with the worker (PR_SET_PDEATHSIG), so no process outlives the
 * worker.
 */
#ifndef TQI_ZYGOTE_H
#define TQI_ZYGOTE_H

#include <stdint.h>
#include <sys/types.h>

#include "worker/registry.h"
#include "worker/tickets.h"

typedef struct {
	pid_t pid;
	int fd; /* the loop's end of the control pair; -1 when stopped */
} tqi_zygote;

enum { TQI_ZY_SPAWNED = 1, TQI_ZY_EXITED = 2 };

typedef struct {
	int type;
	uint32_t slot;
	pid_t pid;
	int status; /* EXITED: as from waitpid */
	int fd;     /* SPAWNED: the loop's end of the executor's socket */
} tqi_zygote_event;

/* Forks the zygote.  Returns 0, or -1 with errno set. */
int tqi_zygote_start(tqi_zygote *z, const tqi_registry *reg, const char *worker_name,
                     tqi_tickets *tickets);

/* Asks for an executor for slot; the answer is a SPAWNED event.  0 or -1. */
int tqi_zygote_spawn(tqi_zygote *z, uint32_t slot);

/* Reads one event without blocking: 1 read, 0 none waiting, -1 the zygote
 * is gone. */
int tqi_zygote_read(tqi_zygote *z, tqi_zygote_event *ev);

/* Closes the control pair (the zygote then kills its executors and exits)
 * and reaps the zygote. */
void tqi_zygote_stop(tqi_zygote *z);

#endif
