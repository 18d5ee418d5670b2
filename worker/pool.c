/*
 * pool.c - the worker's executors: starting them through the zygote,
 * feeding them tasks, reading their results, and stopping them.
 *
 * Each executor runs one task at a time, but may hold up to
 * TQI_EXEC_DEPTH: the tasks after the running one wait, already written,
 * in its socket, so that a stream of short tasks costs one process wake-up
 * per batch rather than two per task.  A waiting task can still be taken
 * back - to cancel it, expire it, or give it to an idle executor - through
 * its ticket (worker/tickets.h); the executor then sets it SKIPPED.  A
 * result that fits comes back in the ticket too (DONE), collected by the
 * loop each turn without a system call on either side; a bigger one comes
 * as a frame on the socket.
 *
 * Invariants: an executor answers its tasks in the order they were
 * written, so the oldest entry of its pipe is the one the next result is
 * for: DONE and SKIPPED tickets are collected from the front, and a result
 * frame is for the first entry still RUNNING after them.  A ticket is
 * QUEUED from the moment its entry exists until the executor claims it or
 * the loop withdraws it.  Writes and reads never block, so a
 * slow or stuck executor never stalls the loop and its heartbeats.  When an
 * executor dies, what it wrote is read first; then its running task ends
 * with what killed it (our signal; its own crash, named by signal; or a
 * SIGKILL from outside the worker, reported as TQ_EWORKERLOST so that the
 * broker retries it) and the tasks it had not started go back to the local
 * queue.  An executor that writes a malformed frame or ticket is not read
 * again: its handler wrote over memory, so nothing after it can be
 * believed.
 */
#include "worker/loop.h"

#include "base/clock.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* READ_CHUNK: the read buffer's usual size.  MAX_RESULT_FRAME: the most a result frame
 * holds after its length (the executor answers ETOOBIG for a larger
 * result); a frame that says more is malformed. */
enum { RESPAWN_DELAY_MS = 100, READ_CHUNK = 1 << 16 };
#define MAX_RESULT_FRAME (TQI_EXEC_RESULT_HDR - 4 + TQI_MAX_TEXT + TQI_DEFAULT_MAX_PAYLOAD)

static void spawn(tq_worker *w, tqi_exec *ex)
{
	ex->state = EX_SPAWNING;
	ex->pid = -1;
	ex->fd = -1;
	if (tqi_zygote_spawn(&w->zygote, ex->slot) != 0) {
		ex->state = EX_DEAD;
		ex->respawn_at = w->now + RESPAWN_DELAY_MS;
	}
}

int tqi_pool_start(tq_worker *w)
{
	if (w->opts.isolation == TQ_ISOLATION_NONE)
		return tqi_inline_start(w);
	w->nexecs = w->opts.concurrency;
	/* The board is mapped before the zygote is forked, so that every
	 * executor shares it with the loop. */
	if (tqi_tickets_map(&w->tickets, w->nexecs * TQI_EXEC_DEPTH, w->nexecs) != 0)
		return -1;
	if (tqi_zygote_start(&w->zygote, &w->reg, w->name, &w->tickets) != 0) {
		tqi_tickets_unmap(&w->tickets);
		return -1;
	}
	w->execs = calloc(w->nexecs, sizeof *w->execs);
	if (w->execs == NULL) {
		tqi_zygote_stop(&w->zygote);
		tqi_tickets_unmap(&w->tickets);
		return -1;
	}
	for (uint32_t i = 0; i < w->nexecs; i++) {
		tqi_exec *ex = &w->execs[i];
		ex->slot = i;
		tqi_list_init(&ex->inpipe);
		tqi_list_init(&ex->spare);
		for (uint32_t j = 0; j < TQI_EXEC_DEPTH; j++) {
			ex->entries[j].ticket = i * TQI_EXEC_DEPTH + j;
			ex->entries[j].ex = ex;
			tqi_node_init(&ex->entries[j].node);
			tqi_list_push_back(&ex->spare, &ex->entries[j].node);
			zmq_msg_init(&ex->entries[j].args);
		}
		spawn(w, ex);
	}
	return 0;
}

static pentry *next_unwritten(tqi_exec *ex, pentry *after);

static void entry_release(tq_worker *w, pentry *e)
{
	tqi_exec *ex = e->ex;
	if (e->t != NULL) {
		e->t->entry = NULL;
		ex->held--;
	}
	e->t = NULL;
	if (ex->wcur == e) {
		ex->wcur = next_unwritten(ex, e);
		ex->woff = 0;
	}
	zmq_msg_close(&e->args);
	zmq_msg_init(&e->args);
	tqi_list_remove(&ex->inpipe, &e->node);
	tqi_list_push_back(&ex->spare, &e->node);
	tqi_ticket_set(&w->tickets, e->ticket, TQI_TICKET_FREE);
}

void tqi_pool_stop(tq_worker *w)
{
	if (w->opts.isolation == TQ_ISOLATION_NONE) {
		tqi_inline_stop(w);
		return;
	}
	for (uint32_t i = 0; i < w->nexecs; i++) {
		tqi_exec *ex = &w->execs[i];
		if (ex->fd >= 0)
			close(ex->fd);
		for (uint32_t j = 0; j < TQI_EXEC_DEPTH; j++)
			zmq_msg_close(&ex->entries[j].args);
		free(ex->rbuf);
	}
	tqi_zygote_stop(&w->zygote); /* kills and reaps the executors */
	tqi_tickets_unmap(&w->tickets);
	free(w->execs);
	w->execs = NULL;
	w->nexecs = 0;
}

/* ---- writing tasks ---- */

static pentry *next_unwritten(tqi_exec *ex, pentry *after)
{
	tqi_node *n = after ? after->node.next : ex->inpipe.head.next;
	return n == &ex->inpipe.head ? NULL : tqi_container_of(n, pentry, node);
}

/* Writes the frames not yet written, in order, as far as the socket takes
 * them: all of them in one writev when they fit. */
static void write_pending(tqi_exec *ex)
{
	while (ex->wcur != NULL && ex->fd >= 0) {
		struct iovec iov[2 * TQI_EXEC_DEPTH];
		int n = 0;
		size_t skip = ex->woff;
		for (pentry *e = ex->wcur; e != NULL; e = next_unwritten(ex, e)) {
			size_t hl = sizeof e->hdr, al = zmq_msg_size(&e->args);
			if (skip < hl) {
				iov[n].iov_base = e->hdr + skip;
				iov[n++].iov_len = hl - skip;
				skip = 0;
			} else {
				skip -= hl;
			}
			if (al > skip) {
				iov[n].iov_base = (uint8_t *)zmq_msg_data(&e->args) + skip;
				iov[n++].iov_len = al - skip;
			}
			skip = 0;
		}
		ssize_t r = writev(ex->fd, iov, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN: POLLOUT resumes; EPIPE: the exit event tells */
		}
		/* Advance past what went out, entry by entry. */
		size_t done = ex->woff + (size_t)r;
		while (ex->wcur != NULL) {
			pentry *e = ex->wcur;
			size_t total = sizeof e->hdr + zmq_msg_size(&e->args);
			if (done < total) {
				ex->woff = done;
				return; /* the socket is full: POLLOUT resumes */
			}
			done -= total;
			/* Written: the executor has it; the bytes may go. */
			zmq_msg_close(&e->args);
			zmq_msg_init(&e->args);
			ex->woff = 0;
			ex->wcur = next_unwritten(ex, e);
		}
	}
}

/* Puts t at the end of ex's pipe. */
static void give(tq_worker *w, tqi_exec *ex, wtask *t)
{
	/* The caller checked free_entry: a spare one is there. */
	pentry *e = tqi_container_of(tqi_list_pop_front(&ex->spare), pentry, node);
	e->t = t;
	t->entry = e;
	zmq_msg_copy(&e->args, &t->args); /* shares the bytes */
	tqi_exec_task_header(e->hdr, t->fn_index, t->attempt, t->deadline.key, t->ref, e->ticket,
	                     zmq_msg_size(&e->args));
	tqi_ticket_set(&w->tickets, e->ticket, TQI_TICKET_QUEUED);
	tqi_list_push_back(&ex->inpipe, &e->node);
	ex->held++;
	if (ex->wcur == NULL) {
		ex->wcur = e;
		ex->woff = 0;
	}
	/* Written by tqi_pool_schedule once every executor has its share. */
}

static bool free_entry(const tqi_exec *ex)
{
	return ex->inpipe.len < TQI_EXEC_DEPTH;
}

/* True when no byte of e's frame has been written yet. */
static bool unwritten(const tqi_exec *ex, const pentry *e)
{
	if (ex->wcur == NULL)
		return false;
	if (ex->wcur == e)
		return ex->woff == 0;
	for (const tqi_node *n = ex->wcur->node.next; n != &ex->inpipe.head; n = n->next)
		if (n == &e->node)
			return true;
	return false;
}

/* Takes t back from its executor's pipe if it has not started.  True when
 * it is the loop's again. */
static bool withdraw(tq_worker *w, wtask *t)
{
	pentry *e = t->entry;
	if (e == NULL)
		return true;
	tqi_exec *ex = e->ex;
	if (unwritten(ex, e)) {
		entry_release(w, e); /* the executor never saw it */
		return true;
	}
	if (!tqi_ticket_move(&w->tickets, e->ticket, TQI_TICKET_QUEUED, TQI_TICKET_WITHDRAWN))
		return false; /* running */
	/* The executor will read it and answer SKIPPED; the entry stays until
	 * then (and its bytes until they are written). */
	e->t = NULL;
	t->entry = NULL;
	ex->held--;
	return true;
}

/* Takes back every task of ex that has not started, to the front of the
 * local queue, in order. */
static void withdraw_waiting(tq_worker *w, tqi_exec *ex)
{
	tqi_node *it = ex->inpipe.head.prev;
	while (it != &ex->inpipe.head) {
		tqi_node *prev = it->prev;
		pentry *e = tqi_container_of(it, pentry, node);
		wtask *t = e->t;
		if (t != NULL && withdraw(w, t))
			tqi_list_push_front(&w->queue, &t->qnode);
		it = prev;
	}
}

/* ---- reading results ---- */

static void finish(tq_worker *w, pentry *e, tq_err code, const char *text, const void *payload,
                   size_t len)
{
	wtask *t = e->t;
	entry_release(w, e);
	if (t != NULL)
		tqi_task_done(w, t, code, text, payload, len);
}

/* Ends ex's service: it takes no new task, the tasks waiting in its pipe go
 * back to the local queue, and it is signalled - SIGKILL now when grace_ms
 * is 0, else SIGTERM now and SIGKILL grace_ms later.  why is what its
 * running task will end with: the first reason stands, except that a
 * shutdown overrides any.  An executor already reaped (pid <= 0) is not
 * signalled: its pid may be another process's by now. */
static void doom(tq_worker *w, tqi_exec *ex, tq_err why, uint32_t grace_ms)
{
	if (ex->stop_code == TQ_OK || why == TQ_ESHUTDOWN)
		ex->stop_code = why;
	ex->state = EX_DOOMED;
	withdraw_waiting(w, ex);
	if (ex->pid <= 0)
		return;
	if (grace_ms == 0) {
		kill(ex->pid, SIGKILL);
		ex->kill_at = 0;
		return;
	}
	kill(ex->pid, SIGTERM);
	uint64_t at = w->now + grace_ms;
	if (ex->kill_at == 0 || at < ex->kill_at)
		ex->kill_at = at;
}

/* ex sent what no healthy executor sends: a handler wrote over its memory.
 * Nothing more it says is read - its socket is closed - and it is replaced;
 * its running task ends as crashed. */
static void distrust(tq_worker *w, tqi_exec *ex)
{
	doom(w, ex, TQ_ETASKCRASHED, 0);
	close(ex->fd);
	ex->fd = -1;
}

/* Collects the results ex left in its tickets, oldest first, up to the
 * first entry it has not answered that way: SKIPPED entries are released,
 * DONE ones finished.  Returns how many, or -1 when a ticket is malformed
 * and ex no longer believed (distrust). */
static int collect(tq_worker *w, tqi_exec *ex)
{
	int got = 0;
	tqi_node *n;
	while (ex->fd >= 0 && (n = tqi_list_front(&ex->inpipe)) != NULL) {
		pentry *e = tqi_container_of(n, pentry, node);
		uint32_t state = tqi_ticket_get(&w->tickets, e->ticket);
		if (state == TQI_TICKET_SKIPPED) {
			entry_release(w, e);
			got++;
			continue;
		}
		if (state != TQI_TICKET_DONE)
			break;
		const tqi_ticket *tk = &w->tickets.v[e->ticket];
		uint32_t tlen = tk->text_len, len = tk->len;
		if (len > TQI_TICKET_DATA || tlen > len) {
			tqi_warn("executor %u left a malformed result; restarting it", ex->slot);
			distrust(w, ex);
			return -1;
		}
		tqi_measure_service(w, tk->run_us);
		char text[TQI_TICKET_DATA + 1];
		memcpy(text, tk->data, tlen);
		text[tlen] = '\0';
		/* The ticket's bytes stay put until the loop gives it out again,
		 * after finish copied them into the batch. */
		finish(w, e, (tq_err)tk->code, text, tk->data + tlen, len - tlen);
		got++;
	}
	return got;
}

/* One result frame: it answers the oldest entry of the pipe (once the
 * results in tickets before it are collected).  Returns 0, or -1 when the
 * frame is malformed and ex no longer read (distrust). */
static int on_result(tq_worker *w, tqi_exec *ex, const uint8_t *frame, size_t len)
{
	if (collect(w, ex) < 0)
		return -1;
	if (len == 1 && frame[0] == TQI_EXEC_BELL)
		return 0; /* it only woke the loop */
	tqi_exec_result res;
	tqi_node *front = tqi_list_front(&ex->inpipe);
	pentry *e = front ? tqi_container_of(front, pentry, node) : NULL;
	/* The ticket says what the executor did with the entry: it answers
	 * on the socket only a task it claimed and left RUNNING.  (e->t is no
	 * guide: tqi_pool_drop_all clears it on a running entry too.) */
	if (e == NULL || tqi_exec_result_parse(frame, len, &res) != 0 ||
	    tqi_ticket_get(&w->tickets, e->ticket) != TQI_TICKET_RUNNING) {
		tqi_warn("executor %u sent a malformed result; restarting it", ex->slot);
		distrust(w, ex);
		return -1;
	}
	tqi_measure_service(w, res.run_us);
	char text[TQI_MAX_TEXT + 1];
	memcpy(text, res.text, res.text_len);
	text[res.text_len] = '\0';
	/* Only a success carries its result; it is copied into the batch. */
	finish(w, e, (tq_err)res.code, text, frame + res.payload_off, len - res.payload_off);
	return 0;
}

/* Answers every whole frame in ex's buffer and keeps the rest, at most one
 * frame's beginning, at the buffer's start.  -1 when ex is no longer read
 * (distrust). */
static int parse_results(tq_worker *w, tqi_exec *ex)
{
	size_t at = 0;
	while (ex->rlen - at >= 4) {
		size_t len = tqi_get_le32(ex->rbuf + at);
		if (len > MAX_RESULT_FRAME || len < 1) {
			tqi_warn("executor %u sent a frame of %zu bytes; restarting it", ex->slot,
			         len);
			distrust(w, ex);
			ex->rlen = 0;
			return -1;
		}
		if (ex->rlen - at - 4 < len)
			break;
		if (on_result(w, ex, ex->rbuf + at + 4, len) != 0) {
			ex->rlen = 0; /* what follows is not believed either */
			return -1;
		}
		at += 4 + len;
	}
	if (at > 0) {
		memmove(ex->rbuf, ex->rbuf + at, ex->rlen - at);
		ex->rlen -= at;
	}
	return 0;
}

/* Reads what ex wrote and answers each whole result.  Once a frame's length
 * is known the buffer is made to hold all of it at once; a big frame is
 * read by itself, so that the buffer grows to it and no further. */
static void read_results(tq_worker *w, tqi_exec *ex)
{
	for (;;) {
		size_t want = READ_CHUNK, until = 0;
		if (ex->rlen >= 4) {
			/* checked by parse_results when it arrived */
			size_t frame = 4 + (size_t)tqi_get_le32(ex->rbuf);
			if (frame > READ_CHUNK)
				want = until = frame;
		}
		if (ex->rcap < want) {
			uint8_t *b = realloc(ex->rbuf, want);
			if (b == NULL) {
				tqi_warn(
				    "executor %u: no memory for a %zu-byte result; restarting it",
				    ex->slot, want);
				doom(w, ex, TQ_ETASKCRASHED, 0);
				return;
			}
			ex->rbuf = b;
			ex->rcap = want;
		}
		size_t room = (until ? until : ex->rcap) - ex->rlen;
		ssize_t r = read(ex->fd, ex->rbuf + ex->rlen, room);
		if (r <= 0)
			break;
		ex->rlen += (size_t)r;
		if (parse_results(w, ex) != 0)
			return;
		if ((size_t)r < room)
			break; /* drained: spare the read that would say EAGAIN */
	}
	if (ex->rlen == 0 && ex->rcap > 4 * READ_CHUNK) {
		free(ex->rbuf); /* a big result was copied: give the memory back */
		ex->rbuf = NULL;
		ex->rcap = 0;
	}
}

void tqi_pool_io(tq_worker *w, tqi_exec *ex, short revents)
{
	if ((revents & ZMQ_POLLOUT) && ex->wcur != NULL)
		write_pending(ex);
	if (revents & (ZMQ_POLLIN | ZMQ_POLLERR))
		read_results(w, ex);
}

/* ---- executors coming and going ---- */

static tqi_exec *find_pid(tq_worker *w, pid_t pid)
{
	for (uint32_t i = 0; i < w->nexecs; i++)
		if (w->execs[i].pid == pid && w->execs[i].state != EX_DEAD)
			return &w->execs[i];
	return NULL;
}

static void describe_exit(int status, char *out, size_t n)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		const char *abbrev = sigabbrev_np(sig);
		snprintf(out, n, "killed by signal %d (SIG%s%s)", sig, abbrev ? abbrev : "?",
		         WCOREDUMP(status) ? ", core dumped" : "");
	} else {
		snprintf(out, n, "its executor exited with status %d",
		         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
}

/* True when ex died of a SIGKILL the loop did not send: someone else -
 * the kernel's OOM killer, an operator - killed it, and its task is not to
 * blame.  The loop sends SIGKILL only to an executor it doomed first
 * (stop_code set), and a handler's own faults end in other signals. */
static bool killed_from_outside(const tqi_exec *ex, int status)
{
	return ex->stop_code == TQ_OK && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* The executor is gone: end its running task, requeue the others.  Its
 * running task ends with the loop's reason for stopping it; else
 * TQ_EWORKERLOST when it was killed from outside (the broker retries it
 * as for a lost worker), else TQ_ETASKCRASHED naming how it ended. */
static void on_exit_event(tq_worker *w, tqi_exec *ex, int status)
{
	/* The zygote has reaped it: its pid may already be another process's,
	 * so nothing from here on (a bad frame read below) may signal it. */
	pid_t pid = ex->pid;
	ex->pid = -1;
	if (ex->fd >= 0) {
		read_results(w, ex); /* whatever it wrote before dying counts, */
		collect(w, ex);      /* and what it left in its tickets */
	}
	tqi_node *n;
	wtask *back[TQI_EXEC_DEPTH];
	int nback = 0;
	while ((n = tqi_list_front(&ex->inpipe)) != NULL) {
		pentry *e = tqi_container_of(n, pentry, node);
		wtask *t = e->t;
		/* DONE here: left by an executor no longer believed. */
		uint32_t state = tqi_ticket_get(&w->tickets, e->ticket);
		bool ran = state == TQI_TICKET_RUNNING || state == TQI_TICKET_DONE;
		if (t == NULL || !ran) {
			entry_release(w, e);
			if (t != NULL)
				back[nback++] = t; /* never started: another executor takes it */
			continue;
		}
		char text[128];
		tq_err code = ex->stop_code;
		switch (code) {
		case TQ_ECANCELLED:
			/* Elixir's Task.shutdown tells these apart: a task that
			 * still ran when its grace ran out was killed. */
			if (ex->killed_late && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
				code = TQ_EKILLED;
				snprintf(text, sizeof text,
				         "killed: still running when its grace period ran out");
			} else {
				snprintf(text, sizeof text, "cancelled while running");
			}
			break;
		case TQ_ETIMEDOUT:
			snprintf(text, sizeof text, "stopped: ran past its deadline");
			break;
		case TQ_ESHUTDOWN:
			code = TQ_ECANCELLED;
			snprintf(text, sizeof text, "cancelled: the worker is shutting down");
			break;
		default:
			if (killed_from_outside(ex, status)) {
				code = TQ_EWORKERLOST;
				snprintf(text, sizeof text,
				         "executor killed by SIGKILL from outside the worker "
				         "(the OOM killer?)");
			} else {
				code = TQ_ETASKCRASHED;
				describe_exit(status, text, sizeof text);
			}
			break;
		}
		if (code == TQ_EWORKERLOST)
			tqi_warn("executor %u (pid %d): %s", ex->slot, (int)pid, text);
		else
			tqi_info("executor %u (pid %d): %s", ex->slot, (int)pid, text);
		finish(w, e, code, text, NULL, 0);
	}
	while (nback > 0)
		tqi_list_push_front(&w->queue, &back[--nback]->qnode);
	if (ex->fd >= 0)
		close(ex->fd);
	ex->fd = -1;
	ex->rlen = 0;
	ex->wcur = NULL;
	ex->woff = 0;
	ex->stop_code = TQ_OK;
	ex->kill_at = 0;
	ex->killed_late = false;
	ex->state = EX_DEAD;
	ex->respawn_at = w->now; /* a fresh one at once */
}

int tqi_pool_zygote_events(tq_worker *w)
{
	tqi_zygote_event ev;
	int rc;
	while ((rc = tqi_zygote_read(&w->zygote, &ev)) > 0) {
		if (ev.type == TQI_ZY_SPAWNED) {
			if (ev.slot >= w->nexecs) {
				if (ev.fd >= 0)
					close(ev.fd);
				continue;
			}
			tqi_exec *ex = &w->execs[ev.slot];
			if (ev.pid <= 0 || ev.fd < 0) {
				tqi_warn("could not start executor %u; retrying", ev.slot);
				ex->state = EX_DEAD;
				ex->respawn_at = w->now + RESPAWN_DELAY_MS;
				continue;
			}
			fcntl(ev.fd, F_SETFL, fcntl(ev.fd, F_GETFL) | O_NONBLOCK);
			ex->pid = ev.pid;
			ex->fd = ev.fd;
			ex->state = EX_READY;
		} else if (ev.type == TQI_ZY_EXITED) {
			tqi_exec *ex = find_pid(w, ev.pid);
			if (ex != NULL)
				on_exit_event(w, ex, ev.status);
		}
	}
	return rc < 0 ? -1 : 0;
}

/* ---- scheduling ---- */

static bool ready(const tqi_exec *ex)
{
	return ex->state == EX_READY;
}

/* The first task in ex's pipe that waits behind the one ex runs (or takes
 * next): not withdrawn, not claimed.  NULL if none. */
static wtask *first_waiting(const tq_worker *w, const tqi_exec *ex)
{
	bool current = false;
	for (const tqi_node *n = ex->inpipe.head.next; n != &ex->inpipe.head; n = n->next) {
		const pentry *e = tqi_container_of(n, pentry, node);
		if (e->t == NULL)
			continue;
		uint32_t s = tqi_ticket_get(&w->tickets, e->ticket);
		if (!current)
			current = s == TQI_TICKET_QUEUED || s == TQI_TICKET_RUNNING;
		else if (s == TQI_TICKET_QUEUED)
			return e->t;
	}
	return NULL;
}

/* The oldest task that waits: the local queue's first, or the first
 * waiting in a busy executor's pipe.  Both hold tasks in the order they
 * came, but for those of a stopped executor, handed on behind newer ones
 * until its own task ends. */
static wtask *oldest_waiting(tq_worker *w)
{
	tqi_node *q = tqi_list_front(&w->queue);
	wtask *best = q ? tqi_container_of(q, wtask, qnode) : NULL;
	for (uint32_t i = 0; i < w->nexecs; i++) {
		if (w->execs[i].held < 2)
			continue;
		wtask *t = first_waiting(w, &w->execs[i]);
		if (t != NULL && (best == NULL || t->seq < best->seq))
			best = t;
	}
	return best;
}

void tqi_pool_schedule(tq_worker *w)
{
	/* An idle executor takes the oldest task that waits - here, or behind
	 * a busy executor's task.  So a task starts out of order only where an
	 * executor, its task ended, goes on with the next in its own pipe: the
	 * broker counts on it (PROTOCOL.md 4.3) to take back, from a worker
	 * that reports nothing, tasks it cannot have started. */
	for (uint32_t i = 0; i < w->nexecs; i++) {
		tqi_exec *ex = &w->execs[i];
		if (!ready(ex) || ex->held > 0 || !free_entry(ex))
			continue;
		/* A task claimed by its executor meanwhile is not taken: look
		 * again, a few times. */
		for (int tries = 0; tries < 4; tries++) {
			wtask *t = oldest_waiting(w);
			if (t == NULL)
				break;
			if (t->entry == NULL) {
				tqi_list_remove(&w->queue, &t->qnode);
			} else if (!withdraw(w, t)) {
				continue;
			}
			give(w, ex, t);
			break;
		}
	}
	/* Breadth first: every ready executor gets one task before any gets a
	 * second, so parallel work spreads before it queues up. */
	for (uint32_t depth = 1; depth <= TQI_EXEC_DEPTH && !tqi_list_empty(&w->queue); depth++) {
		for (uint32_t i = 0; i < w->nexecs && !tqi_list_empty(&w->queue); i++) {
			tqi_exec *ex = &w->execs[i];
			if (!ready(ex) || ex->held >= depth || !free_entry(ex))
				continue;
			wtask *t = tqi_container_of(tqi_list_pop_front(&w->queue), wtask, qnode);
			give(w, ex, t);
		}
	}
	/* One write per executor for all it was given. */
	for (uint32_t i = 0; i < w->nexecs; i++)
		if (w->execs[i].wcur != NULL)
			write_pending(&w->execs[i]);
}

void tqi_pool_stop_task(tq_worker *w, wtask *t, tq_err code, const char *text, uint32_t grace_ms)
{
	tqi_exec *ex = t->entry ? t->entry->ex : NULL;
	if (withdraw(w, t)) {
		/* It never started: out of the local queue, if it was there. */
		tqi_list_remove(&w->queue, &t->qnode);
		tqi_task_done(w, t, code == TQ_ESHUTDOWN ? TQ_ECANCELLED : code, text, NULL, 0);
		return;
	}
	/* Running: its executor's exit reports it.  Its other tasks find
	 * other executors. */
	doom(w, ex, code, grace_ms);
}

/* The tasks in ex's pipe, oldest first. */
static uint32_t pipe_tasks(tqi_exec *ex, wtask **out)
{
	uint32_t n = 0;
	tqi_node *it, *nx;
	tqi_list_each(&ex->inpipe, it, nx)
	{
		wtask *t = tqi_container_of(it, pentry, node)->t;
		if (t != NULL)
			out[n++] = t;
	}
	return n;
}

void tqi_pool_stop_all(tq_worker *w, tq_err code, const char *text)
{
	tqi_node *n;
	while ((n = tqi_list_front(&w->queue)) != NULL)
		tqi_pool_stop_task(w, tqi_container_of(n, wtask, qnode), code, text, 0);
	for (uint32_t i = 0; i < w->nexecs; i++) {
		/* Stopping one task may take the others out of the pipe (its
		 * executor is doomed): list them first. */
		wtask *ts[TQI_EXEC_DEPTH];
		uint32_t count = pipe_tasks(&w->execs[i], ts);
		for (uint32_t j = 0; j < count; j++)
			if (ts[j]->entry != NULL || tqi_node_linked(&ts[j]->qnode))
				tqi_pool_stop_task(w, ts[j], code, text, 0);
	}
}

void tqi_pool_drop_all(tq_worker *w)
{
	tqi_node *n;
	while ((n = tqi_list_pop_front(&w->queue)) != NULL)
		tqi_task_forget(w, tqi_container_of(n, wtask, qnode));
	for (uint32_t i = 0; i < w->nexecs; i++) {
		tqi_exec *ex = &w->execs[i];
		bool running = false;
		tqi_node *it, *nx;
		tqi_list_each(&ex->inpipe, it, nx)
		{
			pentry *e = tqi_container_of(it, pentry, node);
			wtask *t = e->t;
			if (t == NULL)
				continue;
			if (withdraw(w, t)) {
				tqi_task_forget(w, t);
			} else {
				running = true;
				e->t = NULL; /* the executor dies with it, unreported */
				t->entry = NULL;
				ex->held--;
				tqi_task_forget(w, t);
			}
		}
		if (running)
			doom(w, ex, TQ_ESHUTDOWN, 0);
	}
}

/* ---- timers ---- */

/* The text is used only when t never started (queued here, or waiting in
 * a pipe); a running task's end is told by its executor's exit. */
static void expire(tq_worker *w, wtask *t)
{
	tqi_pool_stop_task(w, t, TQ_ETIMEDOUT, "deadline passed before it started", 0);
}

uint64_t tqi_pool_timers(tq_worker *w)
{
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < w->nexecs; i++) {
		tqi_exec *ex = &w->execs[i];
		if (ex->state == EX_DEAD) {
			if (ex->respawn_at <= w->now)
				spawn(w, ex);
			else if (ex->respawn_at < next)
				next = ex->respawn_at;
			continue;
		}
		if (ex->kill_at != 0) {
			if (ex->kill_at <= w->now) {
				if (ex->pid > 0)
					kill(ex->pid, SIGKILL);
				ex->kill_at = 0;
				ex->killed_late = true;
			} else if (ex->kill_at < next) {
				next = ex->kill_at;
			}
		}
	}
	/* Deadlines: the soonest first, each taken out before it is acted on
	 * (stopping one may move others, never into the past). */
	tqi_heap_node *top;
	while ((top = tqi_heap_top(&w->deadlines)) != NULL && top->key <= w->now) {
		tqi_heap_remove(&w->deadlines, top);
		expire(w, tqi_container_of(top, wtask, deadline));
	}
	if (top != NULL && top->key < next)
		next = top->key;
	return next == UINT64_MAX ? next : next - w->now;
}

int tqi_pool_poll_items(tq_worker *w, zmq_pollitem_t *items, tqi_exec **owners)
{
	int n = 0;
	for (uint32_t i = 0; i < w->nexecs; i++) {
		tqi_exec *ex = &w->execs[i];
		if (ex->fd < 0)
			continue;
		items[n].socket = NULL;
		items[n].fd = ex->fd;
		items[n].events = ZMQ_POLLIN | (ex->wcur != NULL ? ZMQ_POLLOUT : 0);
		items[n].revents = 0;
		owners[n++] = ex;
	}
	return n;
}

/* ---- results left in tickets ---- */

bool tqi_pool_collect(tq_worker *w)
{
	bool got = false;
	for (uint32_t i = 0; i < w->nexecs; i++)
		if (w->execs[i].inpipe.len > 0 && collect(w, &w->execs[i]) > 0)
			got = true;
	return got;
}

bool tqi_pool_arm(tq_worker *w, bool armed)
{
	for (uint32_t i = 0; i < w->nexecs; i++)
		tqi_bell_arm(&w->tickets, i, armed && w->execs[i].inpipe.len > 0);
	/* Armed, then looked at again: what was published before the bell
	 * was armed is seen here, what comes after it rings. */
	return armed && tqi_pool_collect(w);
}

bool tqi_pool_spin(tq_worker *w)
{
	/* SPIN_MAX_US: the longest wait; a task's expected time counts only
	 * when it is below a third of that. */
	enum { SPIN_MAX_US = 60, WAKE_US = 30 };
	if (w->nheld != 1 || !tqi_list_empty(&w->queue) || w->service_us <= 0 ||
	    w->service_us * 3 > SPIN_MAX_US)
		return false;
	uint64_t until = tqi_now_us() + (uint64_t)w->service_us + WAKE_US;
	do {
		if (tqi_pool_collect(w))
			return true;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause(); /* a spinning core yields to its sibling */
#endif
	} while (tqi_now_us() < until);
	return false;
}
