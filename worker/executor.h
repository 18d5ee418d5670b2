/*
 * executor.h - the process that runs handlers, and the frames it exchanges
 * with the worker's loop over a local stream socket.
 *
 *   task   : u32 len | u8 1 | u32 function index | u32 attempt
 *            | u64 deadline | ref[16] | u32 ticket | arguments...
 *   result : u32 len | u8 2 | u32 code | u32 text length | u32 run time
 *            | text | result...
 *   bell   : u32 len (1) | u8 3
 *
 * Integers are little-endian; len counts the bytes after itself.  The
 * deadline is absolute, in ms on CLOCK_MONOTONIC (tqi_now_ms), which both
 * ends share since they run on one host; 0 means none.  It is fixed when
 * the task arrives, so the time a task waits in the pipe counts.  The run time is the
 * executor's own measure of the task, in microseconds (at most UINT32_MAX),
 * from when it took the task up to its result: what the automatic prefetch
 * averages, free of the time results wait to be read.  Results
 * come back in the order the tasks were written: most of them in their
 * tickets (worker/tickets.h), which the loop collects in pipe order, and a
 * result too big for a ticket as a result frame, for the oldest task whose
 * ticket is still RUNNING.  Before running a task the executor claims its
 * ticket; a task whose ticket was withdrawn is not run, and its ticket is
 * set SKIPPED.  A bell frame only wakes the loop (tickets.h).  Both ends are
 * processes of the same worker build, but the loop still checks every
 * result, since a handler can scribble over its executor's memory and the
 * tickets.
 */
#ifndef TQI_EXECUTOR_H
#define TQI_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "worker/registry.h"
#include "worker/tickets.h"

#define TQI_EXEC_TASK 1
#define TQI_EXEC_RESULT 2
#define TQI_EXEC_BELL 3
#define TQI_EXEC_TASK_HDR (4 + 1 + 4 + 4 + 8 + 16 + 4)
#define TQI_EXEC_RESULT_HDR (4 + 1 + 4 + 4 + 4)

/* The frames' integers, little-endian. */
static inline uint32_t tqi_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void tqi_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Serves tasks read from fd until it closes, then exits the process. */
void tqi_executor_main(int fd, const tqi_registry *reg, const char *worker_name,
                       tqi_tickets *tickets) __attribute__((noreturn));

/* A result frame, as parsed by tqi_exec_result_parse: pointers into the
 * frame's bytes. */
typedef struct {
	uint32_t code;
	uint32_t run_us; /* the executor's time on the task */
	const char *text;
	size_t text_len;
	size_t payload_off; /* the result's bytes start here in the frame */
} tqi_exec_result;

/* Parses the body of a result frame (the len bytes after its length).
 * Returns 0, or -1 when it is not a well-formed result frame. */
int tqi_exec_result_parse(const uint8_t *frame, size_t len, tqi_exec_result *out);

/* Writes the header of a task frame whose arguments are args_len bytes. */
void tqi_exec_task_header(uint8_t hdr[TQI_EXEC_TASK_HDR], uint32_t fn_index, uint32_t attempt,
                          uint64_t deadline_ms, const uint8_t ref[16], uint32_t ticket,
                          size_t args_len);

#endif
