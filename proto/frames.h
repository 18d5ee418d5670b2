/*
 * frames.h - moving tq messages through ZeroMQ sockets.
 *
 * Receiving takes every frame of one message, however many the peer sent,
 * so a malformed message is consumed whole and cannot desynchronise the
 * stream.  Sending writes [routing id][envelope][payload]; the payload is a
 * zmq_msg_t that is moved (zero-copy) and only consumed on success.
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

/* Receives one whole message.  Returns 1 when one arrived, 0 when none is
 * waiting (with ZMQ_DONTWAIT), -1 on a socket error (errno set: ETERM,
 * EINTR).  After 1 the caller must call tqi_frames_close. */
int tqi_frames_recv(void *sock, bool router, tqi_frames *f, int flags);

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

#endif
