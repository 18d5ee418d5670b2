/*
 * frames.h - moving tq messages through ZeroMQ sockets.
 *
 * A message carries one or more commands, each an envelope frame and, for
 * the commands that have one, a payload frame (PROTOCOL.md 2).  Receiving
 * (tqi_rx) hands out one command at a time; a frame that is no tq/1
 * header of a known command takes the rest of its message with it, so a
 * malformed message cannot desynchronise the stream.  Sending writes one
 * command as a message of its own (tqi_send), or gathers several for one
 * peer into one message (tqi_batch): one routing lookup, one wake-up of
 * the peer, for all of them.  Payloads are zmq_msg_t, moved (zero-copy).
 */
#ifndef TQI_FRAMES_H
#define TQI_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#include "proto/wire.h"
#include "tq/err.h"

#define TQI_MAX_ROUTING_ID 255

typedef struct {
	zmq_msg_t id;      /* routing id; only from a ROUTER socket */
	zmq_msg_t env;     /* the envelope frame */
	zmq_msg_t payload; /* the payload frame; empty when none came */
	unsigned nframes;  /* frames after the routing id, extra ones included */
	bool router;
} tqi_frames;

/* A socket's reader.  A message may carry several commands, so the reader
 * remembers whether the last command it returned ended its message, and
 * that message's routing id. */
typedef struct {
	void *sock;
	bool router;
	bool mid;     /* the message of the last command goes on */
	zmq_msg_t id; /* its routing id, while mid (router only) */
} tqi_rx;

void tqi_rx_init(tqi_rx *rx, void *sock, bool router);
/* Forgets a message begun (its rest is dropped with the socket); the
 * socket itself is the caller's. */
void tqi_rx_close(tqi_rx *rx);

/* Receives the next command: its envelope, its payload when its command has
 * one, and any frames that belong to it (nframes counts them all, so
 * tqi_frames_check finds a missing payload or a malformed rest).  Returns 1
 * when one arrived, 0 when none is waiting (with ZMQ_DONTWAIT), -1 on a
 * socket error (errno set: ETERM, EINTR).  After 1 the caller must call
 * tqi_frames_close. */
int tqi_rx_recv(tqi_rx *rx, tqi_frames *f, int flags);

void tqi_frames_close(tqi_frames *f);

/* TQ_OK when the frame count fits the command in the envelope: one frame,
 * or two for commands with a payload.  TQ_EFRAMES otherwise. */
tq_err tqi_frames_check(const tqi_frames *f, unsigned char cmd);

/* Decodes the envelope of a message that a peer of role `from` sent to one
 * of role `to`, and checks its route and frame count: the one check every
 * receiver makes.  Errors as tqi_env_decode_from, or TQ_EFRAMES; why (may be
 * NULL) explains. */
tq_err tqi_frames_decode(const tqi_frames *f, tqi_role from, tqi_role to, tqi_env *e, char *why,
                         size_t whylen);

/* Opens the DEALER a client or worker talks to the broker with, and
 * connects it to endpoint: a random 16-byte routing id (never starting with
 * 0), no high-water marks (what it holds is bounded by its tasks), the
 * given linger, reconnection backoff from 100 ms to 5 s, and, when
 * zmtp_ivl_ms > 0, ZMTP heartbeats that drop a connection silent for three
 * intervals.  Returns the socket, or NULL with errno set. */
void *tqi_dealer_open(void *ctx, const uint8_t id[16], const char *endpoint, int linger_ms,
                      int zmtp_ivl_ms);

/* Sends one message.  id may be NULL (DEALER).  The envelope bytes are
 * copied; *payload, when not NULL, is moved into the message on success and
 * left with the caller on failure; a command with a payload and a NULL
 * payload gets an empty payload frame.  Returns 0, or -1 with errno set
 * (EAGAIN at the high-water mark with ZMQ_DONTWAIT, EHOSTUNREACH when a
 * ROUTER_MANDATORY peer is gone). */
int tqi_send(void *sock, const void *id, size_t idlen, const void *env, size_t envlen,
             zmq_msg_t *payload, int flags);

/* Commands gathered for one peer, to go as one message. */
typedef struct {
	zmq_msg_t *v; /* frames, in order */
	uint32_t n, cap;
	uint32_t cmds;
	size_t bytes; /* of the frames */
} tqi_batch;

void tqi_batch_init(tqi_batch *b);
/* Drops what the batch holds and frees its memory. */
void tqi_batch_clear(tqi_batch *b);

/* Appends one command: the envelope bytes are copied; *payload, when not
 * NULL, is moved in (a command with a payload and a NULL payload gets an
 * empty frame; one without takes none).  0, or -1 when out of memory
 * (*payload is then left with the caller). */
int tqi_batch_add(tqi_batch *b, const void *env, size_t envlen, zmq_msg_t *payload);

/* Sends every command of the batch as one message (after id, unless NULL)
 * and empties it.  -1 with errno set when the socket refused the message
 * (EAGAIN at the high-water mark with ZMQ_DONTWAIT, EHOSTUNREACH): the
 * batch is then left as it was. */
int tqi_batch_send(tqi_batch *b, void *sock, const void *id, size_t idlen, int flags);

#endif
