/*
 * frames.h - moving tq messages through ZeroMQ sockets.
 *
 * A frame carries one or more commands back to back, each an envelope
 * (header and msgpack body) and, for the commands that have one, its
 * payload as a msgpack bin (PROTOCOL.md 2).  Packing a peer's commands into
 * one frame is what makes tq cheap on the wire: ZeroMQ's cost is per frame,
 * not per byte, so a hundred results to one client cost one frame, one
 * routing lookup and one wake-up.  Receiving (tqi_rx) hands out one command
 * at a time; a command whose end cannot be found (no tq/1 header, a body
 * that is no msgpack value, a payload missing) takes the rest of its frame
 * with it, so a malformed frame cannot desynchronise the stream.  Sending
 * writes commands already packed (tqi_send), or gathers several for one
 * peer into one frame (tqi_batch).
 */
#ifndef TQI_FRAMES_H
#define TQI_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#include "proto/wbuf.h"
#include "proto/wire.h"
#include "tq/err.h"

#define TQI_MAX_ROUTING_ID 255

/* One command as a reader hands it out.  env and payload point into the
 * reader's current frame: they are valid until the next tqi_rx_recv or
 * tqi_rx_close on that reader. */
typedef struct {
	zmq_msg_t id;           /* routing id; only from a ROUTER socket */
	const uint8_t *env;     /* header and body (for a malformed command, all it took) */
	size_t envlen;          /* 0 for a message of a routing id alone, or an empty frame */
	const uint8_t *payload; /* the payload's bytes; NULL when none came */
	size_t payload_len;
	tq_err shape; /* TQ_OK, or TQ_EFRAMES: a command that carries a payload came without one */
	tq_err err;   /* the envelope decoded on arrival, before its route is known: */
	tqi_env e;    /* when err is TQ_OK, its fields (tqi_frames_decode checks the rest) */
	const zmq_msg_t *frame; /* the frame it came in, for its metadata (Peer-Address) */
	bool router;
} tqi_frames;

/* Told, as a command is handed out, the ref of the command after it in
 * the same frame (when that one's first field is a ref, as tq writes it):
 * the receiver can start loading what it will look up next. */
typedef void (*tqi_rx_ahead_fn)(void *arg, const uint8_t ref[TQI_REF_LEN]);

/* A socket's reader: the frame being read and where its next command
 * starts, and that frame's routing id. */
typedef struct {
	void *sock;
	bool router;
	bool open;       /* frame holds a frame of a message being read */
	zmq_msg_t id;    /* the message's routing id (router only) */
	zmq_msg_t frame; /* the frame being read */
	const uint8_t *data;
	size_t size;           /* frame's bytes, read once per frame */
	size_t off;            /* where its next command starts */
	tqi_rx_ahead_fn ahead; /* NULL, or told of the next command's ref */
	void *ahead_arg;
} tqi_rx;

void tqi_rx_init(tqi_rx *rx, void *sock, bool router);
/* Forgets a message begun (its rest is dropped with the socket); the
 * socket itself is the caller's. */
void tqi_rx_close(tqi_rx *rx);

/* Receives the next command.  Returns 1 when one arrived, 0 when none is
 * waiting (with ZMQ_DONTWAIT), -1 on a socket error (errno set: ETERM,
 * EINTR).  After 1 the caller must call tqi_frames_close. */
int tqi_rx_recv(tqi_rx *rx, tqi_frames *f, int flags);

/* Commands a loop reads from one socket in one turn, so that one busy
 * peer cannot keep the loop from its other socket, its timers and its
 * batches.  A frame may carry more: tqi_rx_pending says so. */
#define TQI_RX_TURN 256

/* True when the frame being read has commands not yet handed out.  They
 * are the reader's, no longer ZeroMQ's: the socket polls as readable only
 * when another message waits, so a loop that stops reading before the end
 * of a frame must not sleep on the socket while this is true. */
static inline bool tqi_rx_pending(const tqi_rx *rx)
{
	return rx->open && rx->off < rx->size;
}

/* Drops the commands left in the frame being read (a reader whose peer
 * was cut off does not read on); the next tqi_rx_recv reads the next
 * frame.  Call it after tqi_frames_close of the command last handed out. */
static inline void tqi_rx_skip_frame(tqi_rx *rx)
{
	rx->off = rx->size;
}

void tqi_frames_close(tqi_frames *f);

/* Copies the command's payload into *out (initialised here; empty when
 * none came).  0, or -1 when out of memory (*out is then empty). */
int tqi_frames_payload(const tqi_frames *f, zmq_msg_t *out);

/* Checks the command that a peer of role `from` sent to one of role `to`:
 * its envelope, its route and its payload - the one check every receiver
 * makes.  On TQ_OK its fields are in f->e (pointing into the frame, like
 * f->env).  Errors as tqi_env_decode_from, or TQ_EFRAMES (a command that
 * carries a payload without one); why (may be NULL) explains. */
tq_err tqi_frames_decode(tqi_frames *f, tqi_role from, tqi_role to, char *why, size_t whylen);

/* Opens the DEALER a client or worker talks to the broker with, and
 * connects it to endpoint: a random 16-byte routing id (never starting with
 * 0), no high-water marks (what it holds is bounded by its tasks), the
 * given linger, reconnection backoff from 100 ms to 5 s, and, when
 * zmtp_ivl_ms > 0, ZMTP heartbeats every zmtp_ivl_ms that drop a
 * connection silent for twelve intervals on this side and, by their TTL,
 * ask the broker to drop it after twelve intervals too (at least 100 ms)
 * without a word from here: the broker keeps no ZMTP heartbeats of its own
 * (broker.c), so this is how it tells a frozen peer from a busy one.  The
 * TTL is judged by the broker's I/O thread, which runs at a lower priority
 * than its loop: on a host whose CPUs are all busy it may read a live
 * peer's PINGs late, and a TTL of a few intervals would then close the
 * connection of a client that is alive, and cancel its tasks.
 * Returns the socket, or NULL with errno set. */
void *tqi_dealer_open(void *ctx, const uint8_t id[16], const char *endpoint, int linger_ms,
                      int zmtp_ivl_ms);

/* Sends one message: the routing id (unless id is NULL, for a DEALER) and
 * one frame of `len` bytes of packed commands (tqi_cmd_append).  The bytes
 * are copied.  Returns 0, or -1 with errno set (EAGAIN at the high-water
 * mark with ZMQ_DONTWAIT, EHOSTUNREACH when a ROUTER_MANDATORY peer is
 * gone). */
int tqi_send(void *sock, const void *id, size_t idlen, const void *cmds, size_t len, int flags);

/* Commands gathered for one peer, to go as one frame.  Not to be copied by
 * value: w may point into itself. */
typedef struct {
	tqi_wbuf w;    /* the packed commands */
	uint32_t cmds; /* how many */
} tqi_batch;

/* A batch goes early at TQI_BATCH_MAX_CMDS commands or TQI_BATCH_MAX_BYTES
 * (bounded memory, bounded delay), and a frame passes TQI_BATCH_MAX_BYTES
 * only when one command alone is bigger: a peer's ZMQ_MAXMSGSIZE bounds a
 * frame, so it must bound what one command carries, not how many went
 * together. */
#define TQI_BATCH_MAX_CMDS 256
#define TQI_BATCH_MAX_BYTES ((size_t)1 << 20)

/* True when a command with len payload bytes must not join the batch: send
 * the batch first. */
static inline bool tqi_batch_no_room(const tqi_batch *b, size_t len)
{
	return b->cmds > 0 && b->w.len + len > TQI_BATCH_MAX_BYTES;
}

/* True when the batch is to go now, without waiting for the loop turn's
 * end. */
static inline bool tqi_batch_full(const tqi_batch *b)
{
	return b->cmds >= TQI_BATCH_MAX_CMDS || b->w.len >= TQI_BATCH_MAX_BYTES;
}

void tqi_batch_init(tqi_batch *b);
/* Drops what the batch holds and frees its memory. */
void tqi_batch_clear(tqi_batch *b);

/* Appends one command: e encoded, then, when its command carries one, the
 * payload (len bytes, copied; NULL for an empty one).  TQ_OK; TQ_ENOMEM or
 * TQ_EINVAL (as tqi_env_encode) leave the batch as it was. */
tq_err tqi_batch_add(tqi_batch *b, const tqi_env *e, const void *payload, size_t len);

/* Sends every command of the batch as one frame (after id, unless NULL)
 * and empties it.  -1 with errno set when the socket refused the message
 * (EAGAIN at the high-water mark with ZMQ_DONTWAIT, EHOSTUNREACH): the
 * batch is then left as it was. */
int tqi_batch_send(tqi_batch *b, void *sock, const void *id, size_t idlen, int flags);

#endif
