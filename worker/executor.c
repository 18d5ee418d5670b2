/*
 * executor.c - runs inside an executor process: reads task frames, a batch
 * at a time, calls the handler for each, and hands each result back - in
 * its ticket when it fits (no system call), else as a result frame on the
 * socket.  It is single-threaded and blocking on purpose: the worker's loop
 * does all the waiting and watching, and stops an executor by signalling
 * it.
 */
#include "worker/executor.h"

#include "worker/invoke.h"

#include "base/clock.h"
#include "proto/wire.h"
#include "tq/value.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

enum { READ_CHUNK = 1 << 16 }; /* the task buffer's usual size */

void tqi_exec_task_header(uint8_t hdr[TQI_EXEC_TASK_HDR], uint32_t fn_index, uint32_t attempt,
                          uint64_t deadline_ms, const uint8_t ref[16], uint32_t ticket,
                          size_t args_len)
{
	tqi_put_le32(hdr, (uint32_t)(TQI_EXEC_TASK_HDR - 4 + args_len));
	hdr[4] = TQI_EXEC_TASK;
	tqi_put_le32(hdr + 5, fn_index);
	tqi_put_le32(hdr + 9, attempt);
	tqi_put_le32(hdr + 13, (uint32_t)deadline_ms);
	tqi_put_le32(hdr + 17, (uint32_t)(deadline_ms >> 32));
	memcpy(hdr + 21, ref, 16);
	tqi_put_le32(hdr + 37, ticket);
}

int tqi_exec_result_parse(const uint8_t *frame, size_t len, tqi_exec_result *out)
{
	enum { FIXED = TQI_EXEC_RESULT_HDR - 4 };
	if (len < FIXED || frame[0] != TQI_EXEC_RESULT)
		return -1;
	size_t tlen = tqi_get_le32(frame + 5);
	if (tlen > len - FIXED || tlen > TQI_MAX_TEXT)
		return -1;
	out->code = tqi_get_le32(frame + 1);
	out->run_us = tqi_get_le32(frame + 9);
	out->text = (const char *)frame + FIXED;
	out->text_len = tlen;
	out->payload_off = FIXED + tlen;
	return 0;
}

/* Writes a result frame for a task taken up at start_us (tqi_now_us). */
static void send_result(int fd, uint64_t start_us, uint32_t code, const char *text,
                        const uint8_t *data, size_t len)
{
	size_t tlen = text ? strlen(text) : 0;
	if (tlen > TQI_MAX_TEXT)
		tlen = TQI_MAX_TEXT;
	uint64_t run_us = tqi_now_us() - start_us;
	uint8_t hdr[TQI_EXEC_RESULT_HDR];
	tqi_put_le32(hdr, (uint32_t)(TQI_EXEC_RESULT_HDR - 4 + tlen + len));
	hdr[4] = TQI_EXEC_RESULT;
	tqi_put_le32(hdr + 5, code);
	tqi_put_le32(hdr + 9, (uint32_t)tlen);
	tqi_put_le32(hdr + 13, run_us > UINT32_MAX ? UINT32_MAX : (uint32_t)run_us);
	/* One write for the whole frame: the loop wakes once per result. */
	struct iovec iov[3] = { { hdr, sizeof hdr },
		                { (void *)text, tlen },
		                { (void *)data, len } };
	int n = 3, i = 0;
	while (i < n) {
		ssize_t w = writev(fd, iov + i, n - i);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(0); /* the loop is gone */
		size_t left = (size_t)w;
		while (i < n && left >= iov[i].iov_len)
			left -= iov[i++].iov_len;
		if (i < n) {
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + left;
			iov[i].iov_len -= left;
		}
	}
}

/* Tells the loop that ticket's executor published a ticket, if the loop
 * armed the bell before it went to sleep (tickets.h). */
static void ring(int fd, tqi_tickets *tickets, uint32_t ticket)
{
	if (!tqi_bell_take(tickets, ticket / TQI_EXEC_DEPTH))
		return;
	uint8_t bell[5];
	tqi_put_le32(bell, 1);
	bell[4] = TQI_EXEC_BELL;
	while (write(fd, bell, sizeof bell) < 0)
		if (errno != EINTR)
			_exit(0); /* the loop is gone */
}

/* Hands the result back: in the ticket when text and payload fit there,
 * else as a frame on the socket. */
static void answer(int fd, tqi_tickets *tickets, uint32_t ticket, uint64_t start_us, uint32_t code,
                   const char *text, const uint8_t *data, size_t len)
{
	size_t tlen = text ? strnlen(text, TQI_MAX_TEXT) : 0;
	if (tlen + len > TQI_TICKET_DATA) {
		send_result(fd, start_us, code, text, data, len);
		return;
	}
	tqi_ticket *tk = &tickets->v[ticket];
	uint64_t run_us = tqi_now_us() - start_us;
	tk->code = code;
	tk->run_us = run_us > UINT32_MAX ? UINT32_MAX : (uint32_t)run_us;
	tk->text_len = (uint32_t)tlen;
	tk->len = (uint32_t)(tlen + len);
	if (tlen > 0)
		memcpy(tk->data, text, tlen);
	if (len > 0)
		memcpy(tk->data + tlen, data, len);
	tqi_ticket_set(tickets, ticket, TQI_TICKET_DONE); /* after the fields */
	ring(fd, tickets, ticket);
}

static void run_one(int fd, const tqi_registry *reg, const char *worker, const uint8_t *frame,
                    size_t len, tq_buf *reply, tqi_tickets *tickets)
{
	uint64_t start = tqi_now_us(); /* the task's run time counts from here */
	uint32_t idx = tqi_get_le32(frame + 1);
	uint32_t ticket = tqi_get_le32(frame + 33);
	if (ticket >= tickets->n)
		_exit(1); /* not a frame the loop wrote */
	/* Claim the task; the loop may have withdrawn it meanwhile. */
	if (!tqi_ticket_move(tickets, ticket, TQI_TICKET_QUEUED, TQI_TICKET_RUNNING)) {
		/* Withdrawn: passed over.  Any other state is none the loop
		 * leaves a written task in - memory was written over - and the
		 * loop learns of it by this exit, not by a pipe that stalls. */
		if (!tqi_ticket_move(tickets, ticket, TQI_TICKET_WITHDRAWN, TQI_TICKET_SKIPPED))
			_exit(1);
		ring(fd, tickets, ticket);
		return;
	}
	if (idx >= reg->n) {
		answer(fd, tickets, ticket, start, TQ_EPROTO, "no such function index", NULL, 0);
		return;
	}
	/* The deadline is absolute on the host's monotonic clock: used as it
	 * is, so the time the task waited in the pipe is not given to it again. */
	tqi_call call = { .entry = &reg->v[idx],
		          .worker = worker,
		          .attempt = tqi_get_le32(frame + 5),
		          .deadline_ms = (uint64_t)tqi_get_le32(frame + 9) |
		                         (uint64_t)tqi_get_le32(frame + 13) << 32,
		          .ref = frame + 17 };
	tqi_outcome out;
	tqi_invoke(&call, frame + TQI_EXEC_TASK_HDR - 4, len - (TQI_EXEC_TASK_HDR - 4), reply,
	           &out);
	answer(fd, tickets, ticket, start, out.code, out.code == TQ_OK ? NULL : out.text, out.data,
	       out.len);
}

void tqi_executor_main(int fd, const tqi_registry *reg, const char *worker_name,
                       tqi_tickets *tickets)
{
	/* Ctrl-C at a terminal reaches the whole process group; the worker's
	 * loop decides what happens to running tasks, not the keyboard. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	tq_buf *reply;
	if (tq_buf_new(&reply) != TQ_OK)
		_exit(1);
	/* Tasks come in batches: read what is there, then run each whole
	 * frame in it, so a batch costs one read. */
	size_t cap = READ_CHUNK, have = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		_exit(1);
	for (;;) {
		ssize_t r = read(fd, buf + have, cap - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(0);
		have += (size_t)r;
		size_t at = 0;
		while (have - at >= 4) {
			size_t len = tqi_get_le32(buf + at);
			if (len < TQI_EXEC_TASK_HDR - 4)
				_exit(1);
			if (have - at - 4 < len) {
				if (len + 4 > cap) { /* a big task: grow to hold it */
					memmove(buf, buf + at, have - at);
					have -= at;
					at = 0;
					uint8_t *b = realloc(buf, len + 4);
					if (b == NULL)
						_exit(1);
					buf = b;
					cap = len + 4;
				}
				break;
			}
			const uint8_t *frame = buf + at + 4;
			if (frame[0] != TQI_EXEC_TASK)
				_exit(1);
			run_one(fd, reg, worker_name, frame, len, reply, tickets);
			at += 4 + len;
			if (tq_buf_size(reply) > 4 * READ_CHUNK) {
				/* A big result went out: give its memory back. */
				tq_buf_destroy(&reply);
				if (tq_buf_new(&reply) != TQ_OK)
					_exit(1);
			}
		}
		memmove(buf, buf + at, have - at);
		have -= at;
		/* A big task passed: give its memory back, unless the next one
		 * (whose beginning is here) is big too. */
		size_t next = have >= 4 ? 4 + (size_t)tqi_get_le32(buf) : 0;
		if (cap > 4 * READ_CHUNK && next <= READ_CHUNK) {
			uint8_t *b = realloc(buf, READ_CHUNK);
			if (b != NULL) {
				buf = b;
				cap = READ_CHUNK;
			}
		}
	}
}
