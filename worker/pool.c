/*
 * pool.c - the worker's executors: starting them through the zygote,
 * feeding them tasks, reading their results, and stopping them.
 *
 * Each executor runs one task at a time.  Writes and reads are non-blocking
 * so a slow or stuck executor never stalls the loop (and its heartbeats).
 * When an executor dies, its result - if it wrote one - is read first;
 * otherwise its task ends with what killed it: our signal (cancelled, past
 * its deadline) or its own crash, named by signal.
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

enum { RESPAWN_DELAY_MS = 100 };

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
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
	if (tqi_zygote_start(&w->zygote, &w->reg, w->name) != 0)
		return -1;
	w->nexecs = w->opts.concurrency;
	w->execs = calloc(w->nexecs, sizeof *w->execs);
	if (w->execs == NULL) {
		tqi_zygote_stop(&w->zygote);
		return -1;
	}
	for (uint32_t i = 0; i < w->nexecs; i++) {
		w->execs[i].slot = i;
		spawn(w, &w->execs[i]);
	}
	return 0;
}

static void reset_io(tqi_exec *ex)
{
	free(ex->buf);
	ex->buf = NULL;
	ex->need = ex->got = 0;
	ex->lenoff = 0;
	ex->writing = false;
	ex->woff = 0;
}

void tqi_pool_stop(tq_worker *w)
{
	for (uint32_t i = 0; i < w->nexecs; i++) {
		tqi_exec *ex = &w->execs[i];
		if (ex->fd >= 0)
			close(ex->fd);
		reset_io(ex);
	}
	tqi_zygote_stop(&w->zygote); /* kills and reaps the executors */
	free(w->execs);
	w->execs = NULL;
	w->nexecs = 0;
}

static void describe_exit(int status, char *out, size_t n)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		const char *abbrev = sigabbrev_np(sig);
		snprintf(out, n, "killed by signal %d (SIG%s%s%s)", sig, abbrev ? abbrev : "?",
		         WCOREDUMP(status) ? ", core dumped" : "", "");
	} else {
		snprintf(out, n, "its executor exited with status %d",
		         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
}

static void finish_task(tq_worker *w, tqi_exec *ex, tq_err code, const char *text,
                        zmq_msg_t *payload)
{
	wtask *t = ex->task;
	ex->task = NULL;
	if (t == NULL)
		return;
	t->exec = NULL;
	tqi_task_done(w, t, code, text, payload);
}

static void free_hint(void *data, void *hint)
{
	(void)data;
	free(hint);
}

/* A complete result frame is in ex->buf (ex->need bytes after the length). */
static void on_result(tq_worker *w, tqi_exec *ex)
{
	uint8_t *b = ex->buf;
	size_t n = ex->need;
	tqi_exec_result res;
	if (tqi_exec_result_parse(b, n, &res) != 0) {
		/* A handler wrote over its executor's memory: trust nothing
		 * it says and replace it. */
		tqi_warn("executor %u sent a malformed result; restarting it", ex->slot);
		if (ex->stop_code == TQ_OK)
			ex->stop_code = TQ_ETASKCRASHED;
		ex->state = EX_DOOMED;
		kill(ex->pid, SIGKILL);
		return;
	}
	uint32_t code = res.code;
	char text[TQI_MAX_TEXT + 1];
	memcpy(text, res.text, res.text_len);
	text[res.text_len] = '\0';
	size_t off = res.payload_off;
	zmq_msg_t payload;
	ex->buf = NULL;
	if (zmq_msg_init_data(&payload, b + off, n - off, free_hint, b) != 0) {
		free(b);
		zmq_msg_init(&payload);
		code = TQ_ENOMEM;
	}
	ex->need = ex->got = 0;
	ex->lenoff = 0;
	if (ex->state == EX_BUSY)
		ex->state = EX_IDLE; /* a DOOMED one stays so until it exits */
	finish_task(w, ex, (tq_err)code, text, &payload);
	zmq_msg_close(&payload);
}

static void read_results(tq_worker *w, tqi_exec *ex)
{
	for (;;) {
		ssize_t r;
		if (ex->lenoff < 4) {
			r = read(ex->fd, ex->lenb + ex->lenoff, 4 - ex->lenoff);
			if (r <= 0)
				return;
			ex->lenoff += (size_t)r;
			if (ex->lenoff < 4)
				continue;
			ex->need = get32(ex->lenb);
			if (ex->need > TQI_DEFAULT_MAX_PAYLOAD + TQI_MAX_TEXT + 64 ||
			    ex->need < TQI_EXEC_RESULT_HDR - 4) {
				tqi_warn("executor %u sent a frame of %zu bytes; restarting it",
				         ex->slot, ex->need);
				if (ex->stop_code == TQ_OK)
					ex->stop_code = TQ_ETASKCRASHED;
				ex->state = EX_DOOMED;
				kill(ex->pid, SIGKILL);
				ex->lenoff = 0;
				return;
			}
			ex->buf = malloc(ex->need);
			ex->got = 0;
			if (ex->buf == NULL) {
				ex->state = EX_DOOMED;
				kill(ex->pid, SIGKILL);
				ex->lenoff = 0;
				return;
			}
		}
		r = read(ex->fd, ex->buf + ex->got, ex->need - ex->got);
		if (r <= 0)
			return;
		ex->got += (size_t)r;
		if (ex->got == ex->need)
			on_result(w, ex);
	}
}

static void write_task(tqi_exec *ex)
{
	wtask *t = ex->task;
	size_t hl = sizeof ex->hdr, al = zmq_msg_size(&t->args);
	while (ex->woff < hl + al) {
		struct iovec iov[2];
		int n = 0;
		if (ex->woff < hl) {
			iov[n].iov_base = ex->hdr + ex->woff;
			iov[n++].iov_len = hl - ex->woff;
			iov[n].iov_base = zmq_msg_data(&t->args);
			iov[n++].iov_len = al;
		} else {
			iov[n].iov_base = (uint8_t *)zmq_msg_data(&t->args) + (ex->woff - hl);
			iov[n++].iov_len = al - (ex->woff - hl);
		}
		ssize_t r = writev(ex->fd, iov, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN: wait for POLLOUT; EPIPE: the exit event ends the task. */
			ex->writing = errno == EAGAIN;
			return;
		}
		ex->woff += (size_t)r;
	}
	ex->writing = false;
}

void tqi_pool_io(tq_worker *w, tqi_exec *ex, short revents)
{
	if ((revents & ZMQ_POLLOUT) && ex->writing && ex->task != NULL)
		write_task(ex);
	if (revents & (ZMQ_POLLIN | ZMQ_POLLERR))
		read_results(w, ex);
}

static tqi_exec *find_pid(tq_worker *w, pid_t pid)
{
	for (uint32_t i = 0; i < w->nexecs; i++)
		if (w->execs[i].pid == pid && w->execs[i].state != EX_DEAD)
			return &w->execs[i];
	return NULL;
}

static void on_exit_event(tq_worker *w, tqi_exec *ex, int status)
{
	/* Whatever it wrote before dying counts. */
	if (ex->fd >= 0)
		read_results(w, ex);
	if (ex->task != NULL) {
		char text[128];
		tq_err code = ex->stop_code;
		switch (code) {
		case TQ_ECANCELLED:
			snprintf(text, sizeof text, "cancelled while running");
			break;
		case TQ_ETIMEDOUT:
			snprintf(text, sizeof text, "stopped: ran past its deadline");
			break;
		case TQ_ESHUTDOWN:
			code = TQ_ECANCELLED;
			snprintf(text, sizeof text, "cancelled: the worker is shutting down");
			break;
		default:
			code = TQ_ETASKCRASHED;
			describe_exit(status, text, sizeof text);
			break;
		}
		tqi_info("executor %u (pid %d): %s", ex->slot, (int)ex->pid, text);
		finish_task(w, ex, code, text, NULL);
	}
	if (ex->fd >= 0)
		close(ex->fd);
	reset_io(ex);
	ex->fd = -1;
	ex->pid = -1;
	ex->stop_code = TQ_OK;
	ex->kill_at = 0;
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
			ex->state = EX_IDLE;
		} else if (ev.type == TQI_ZY_EXITED) {
			tqi_exec *ex = find_pid(w, ev.pid);
			if (ex != NULL)
				on_exit_event(w, ex, ev.status);
		}
	}
	return rc < 0 ? -1 : 0;
}

static void start_task(tq_worker *w, tqi_exec *ex, wtask *t)
{
	int64_t left = -1;
	if (t->deadline_ms != 0)
		left = t->deadline_ms > w->now ? (int64_t)(t->deadline_ms - w->now) : 0;
	tqi_exec_task_header(ex->hdr, t->fn_index, t->attempt, left, t->ref,
	                     zmq_msg_size(&t->args));
	ex->woff = 0;
	ex->task = t;
	ex->state = EX_BUSY;
	ex->stop_code = TQ_OK;
	t->exec = ex;
	write_task(ex);
}

void tqi_pool_schedule(tq_worker *w)
{
	for (uint32_t i = 0; i < w->nexecs && !tqi_list_empty(&w->queue); i++) {
		tqi_exec *ex = &w->execs[i];
		if (ex->state != EX_IDLE)
			continue;
		while (!tqi_list_empty(&w->queue)) {
			wtask *t = tqi_container_of(tqi_list_pop_front(&w->queue), wtask, qnode);
			if (t->deadline_ms != 0 && t->deadline_ms <= w->now) {
				tqi_task_done(w, t, TQ_ETIMEDOUT,
				              "deadline passed before it started", NULL);
				continue;
			}
			start_task(w, ex, t);
			break;
		}
	}
}

void tqi_pool_stop_task(tq_worker *w, wtask *t, tq_err code, uint32_t grace_ms)
{
	tqi_exec *ex = t->exec;
	if (ex == NULL || ex->pid <= 0)
		return;
	if (ex->stop_code == TQ_OK || code == TQ_ESHUTDOWN)
		ex->stop_code = code;
	ex->state = EX_DOOMED;
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
				kill(ex->pid, SIGKILL);
				ex->kill_at = 0;
			} else if (ex->kill_at < next) {
				next = ex->kill_at;
			}
		}
		wtask *t = ex->task;
		if (t != NULL && t->deadline_ms != 0 && ex->stop_code == TQ_OK) {
			if (t->deadline_ms <= w->now)
				tqi_pool_stop_task(w, t, TQ_ETIMEDOUT, 0);
			else if (t->deadline_ms < next)
				next = t->deadline_ms;
		}
	}
	tqi_node *it, *nx;
	tqi_list_each(&w->queue, it, nx)
	{
		wtask *t = tqi_container_of(it, wtask, qnode);
		if (t->deadline_ms == 0)
			continue;
		if (t->deadline_ms <= w->now) {
			tqi_list_remove(&w->queue, &t->qnode);
			tqi_task_done(w, t, TQ_ETIMEDOUT, "deadline passed before it started",
			              NULL);
		} else if (t->deadline_ms < next) {
			next = t->deadline_ms;
		}
	}
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
		items[n].events = ZMQ_POLLIN | (ex->writing ? ZMQ_POLLOUT : 0);
		items[n].revents = 0;
		owners[n++] = ex;
	}
	return n;
}
