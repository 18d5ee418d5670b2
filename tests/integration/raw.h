/*
 * raw.h - raw ZeroMQ peers for the integration tests: a DEALER that sends
 * what a test chooses, well-formed (through tq's own codec) or not, and
 * reads what the broker answers command by command.  How tests play a
 * misbehaving client or worker - an attacker - against a real broker.
 * Every wait is bounded; failures are cmocka assertions.
 */
#ifndef TQ_TEST_RAW_H
#define TQ_TEST_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "proto/frames.h"
#include "proto/wire.h"

typedef struct {
	void *ctx, *sock;
	zmq_msg_t frame; /* the frame being read by raw_expect */
	size_t off;      /* where its next command starts */
} raw_peer;

/* Opens p: its own context and a DEALER connected to ep (linger 0); with
 * ep NULL, not connected yet (the test sets options, then connects). */
void raw_open(raw_peer *p, const char *ep);
/* raw_open for a peer that reads slowly, if at all: ZeroMQ holds one
 * message for it, the kernel as little as it allows. */
void raw_open_reluctant(raw_peer *p, const char *ep);
void raw_close(raw_peer *p);
/* Sends frames (each given as bytes + length), the last one without MORE. */
void raw_send(raw_peer *p, int nframes, ...);
/* Waits up to 3 s for one message: -1 if none came; else its first
 * frame's command byte in *cmd and, for ERROR, the code in *code. */
int raw_reply(raw_peer *p, int *cmd, int *code);
/* Sends e, with payload (plen bytes) when e->cmd carries one, as a frame
 * of its own. */
void raw_send_env(raw_peer *p, const tqi_env *e, const void *payload, size_t plen);

/* One command received by a raw peer: its bytes (a copy), its envelope
 * decoded (e's fields point into bytes) and its payload's size. */
typedef struct {
	uint8_t *bytes;
	tqi_env e;
	size_t payload_len;
} raw_msg;
void raw_msg_close(raw_msg *m);
/* Waits up to 5 s for the next command other than HEARTBEAT, and checks
 * that it is a well-formed `cmd` (one command of a frame: the rest is left
 * for the next call).  Close m afterwards. */
void raw_expect(raw_peer *p, uint8_t cmd, raw_msg *m);

/* A raw worker: READY with one function, and the WELCOME that answers it. */
void raw_worker_ready(raw_peer *w, const char *fn, uint32_t concurrency, uint32_t capacity);
/* raw_worker_ready under the worker name `name` (raw_worker_ready's: "raw"). */
void raw_worker_ready_as(raw_peer *w, const char *name, const char *fn, uint32_t concurrency,
                         uint32_t capacity);
/* A raw worker receives one TASK; *ref and *attempt say which. */
void raw_worker_take(raw_peer *w, uint8_t ref[TQI_REF_LEN], uint32_t *attempt);
/* A raw worker reports a task done with result (len bytes: a msgpack value). */
void raw_worker_done(raw_peer *w, const uint8_t ref[TQI_REF_LEN], uint32_t attempt,
                     const void *result, size_t len);

/* A raw client opens a session (HELLO, WELCOME). */
void raw_client_hello(raw_peer *c, uint64_t session);
/* A raw client submits fn(args) under ref 16 x refbyte. */
void raw_client_submit(raw_peer *c, uint64_t session, uint8_t refbyte, const char *fn,
                       uint64_t timeout_ms, const char *args, size_t len);
/* A round trip through the broker's loop: what the peer sent before has
 * been handled, and the loop turn that handled it has ended. */
void raw_client_sync(raw_peer *c);

#endif
