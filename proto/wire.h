/*
 * wire.h - the tq/1 wire protocol: commands, the envelope codec and frame I/O.
 *
 * A frame (after the routing id a ROUTER adds) carries one or more
 * commands: an envelope - four header bytes "TQ", version, command, then
 * one msgpack array of the command's fields - and, for the commands that
 * carry one, an opaque payload (task arguments or result) as a msgpack bin,
 * which the broker passes on without reading.  proto/PROTOCOL.md is the normative description;
 * the schema table in envelope.c is its executable form.
 */
#ifndef TQI_WIRE_H
#define TQI_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/wbuf.h"
#include "tq/err.h"

#define TQI_MAGIC0 0x54 /* 'T' */
#define TQI_MAGIC1 0x51 /* 'Q' */
#define TQI_VERSION 1
#define TQI_HDR_LEN 4
#define TQI_REF_LEN 16

/* Limits (PROTOCOL.md, "Limits"). */
#define TQI_MAX_NAME 255      /* peer and function names, bytes */
#define TQI_MAX_TEXT 4096     /* error messages and reasons, bytes */
#define TQI_MAX_FUNCTIONS 256 /* functions one worker offers */
#define TQI_MAX_DEADLINE_REFS 4096
#define TQI_MAX_CONCURRENCY 65535
#define TQI_MAX_CAPACITY (4u * TQI_MAX_CONCURRENCY) /* READY, CAPACITY */
#define TQI_MAX_RETRIES 255
#define TQI_MAX_GRACE_MS 86400000u
#define TQI_MIN_HEARTBEAT_MS 10
#define TQI_MAX_HEARTBEAT_MS 60000
#define TQI_STATS_DEPTH 8
#define TQI_DEFAULT_MAX_PAYLOAD (16u << 20)
/* The longest time left a broker passes on in a TASK (2^63-1 ms, 292
 * million years): a larger timeout is valid on the wire, but this one can
 * be added to any monotonic clock reading without overflow. */
#define TQI_MAX_TIMEOUT_MS ((uint64_t)INT64_MAX)

/* SUBMIT flags */
#define TQI_SUBMIT_DETACHED 0x1u /* start: no owner; broker answers ACCEPTED */
#define TQI_SUBMIT_FLAGS_ALL 0x1u

typedef enum {
	TQI_HELLO = 0x01,
	TQI_WELCOME = 0x02,
	TQI_SUBMIT = 0x03,
	TQI_ACCEPTED = 0x04,
	TQI_RESULT = 0x05,
	TQI_FAILED = 0x06,
	TQI_NOTICE = 0x07,
	TQI_CANCEL = 0x08,
	TQI_DETACH = 0x09,
	TQI_DEADLINE = 0x0a,
	TQI_STATS = 0x0b,
	TQI_STATS_REPLY = 0x0c,
	TQI_HEARTBEAT = 0x0d,
	TQI_REFUSED = 0x0e,
	TQI_CHECK = 0x0f,
	TQI_CHECKED = 0x10,
	TQI_READY = 0x20,
	TQI_TASK = 0x21,
	TQI_DONE = 0x22,
	TQI_PING = 0x23,
	TQI_DRAIN = 0x24,
	TQI_BYE = 0x25,
	TQI_DISCONNECT = 0x26,
	TQI_CAPACITY = 0x27,
	TQI_ERROR = 0x7f
} tqi_cmd;

/* The three kinds of peer, for checking who may send what to whom. */
typedef enum { TQI_ROLE_CLIENT = 1, TQI_ROLE_WORKER = 2, TQI_ROLE_BROKER = 4 } tqi_role;

typedef struct {
	const char *p; /* into the envelope; not NUL-terminated */
	uint32_t n;
} tqi_str;

/* A list field (READY functions, DEADLINE refs) or the STATS map, as the
 * validated msgpack bytes of its elements. */
typedef struct {
	const uint8_t *p;
	size_t len;
	uint32_t count;
} tqi_raw;

/* One decoded envelope.  Which fields are meaningful depends on cmd. */
typedef struct {
	uint8_t cmd;
	uint64_t session;
	uint64_t mark; /* HELLO, CHECK: the sender's mark, echoed by WELCOME, CHECKED */
	uint8_t ref[TQI_REF_LEN];
	uint8_t instance[TQI_REF_LEN];
	tqi_str name;        /* HELLO/READY: the sender; RESULT/FAILED: worker; TASK: owner */
	tqi_str function;    /* SUBMIT, TASK */
	tqi_str text;        /* FAILED/REFUSED/DONE message, DISCONNECT reason, ERROR message */
	uint64_t timeout_ms; /* relative: ms left when sent; 0 = none */
	uint32_t retries, flags, attempt, code, grace_ms;
	uint32_t command; /* REFUSED: the code of the command refused */
	uint32_t concurrency, capacity, heartbeat_ms;
	bool resumed;
	tqi_raw functions; /* READY: str elements */
	tqi_raw refs;      /* DEADLINE, CHECK, CHECKED: bin(16) elements */
	tqi_raw stats;     /* STATS_REPLY: one map, whole */
} tqi_env;

/* The command's name ("SUBMIT"), or NULL for an unknown command. */
const char *tqi_cmd_name(uint8_t cmd);

/* True when cmd carries a payload (a msgpack bin after its body). */
bool tqi_cmd_has_payload(uint8_t cmd);

/* Where one command ends in a frame (PROTOCOL.md 2). */
typedef struct {
	size_t env_len;     /* header and body */
	size_t payload_off; /* the payload's bytes, when has_payload */
	size_t payload_len;
	size_t len;           /* the whole command: the next one starts here */
	bool has_payload;     /* a payload came (its command carries one) */
	bool payload_missing; /* its command carries one, and no bin followed the body */
} tqi_split;

/* Finds the end of the command that starts at p, with len bytes left in
 * its frame.  A command whose end cannot be found takes all len bytes: one
 * without a tq/1 header of a known command, or whose body is not one
 * msgpack value (env_len = len: the decoder says what is wrong), or one that
 * carries a payload and is not followed by a msgpack bin (payload_missing).
 * Never reads past len; len > 0 always gives a command of at least one
 * byte. */
void tqi_cmd_split(const uint8_t *p, size_t len, tqi_split *s);
/* The same for a command whose envelope is known to end at env_len (as
 * tqi_env_decode_prefix found): only its payload is looked for. */
void tqi_cmd_split_at(const uint8_t *p, size_t len, size_t env_len, tqi_split *s);

/* True when a peer of role `from` may send cmd to a peer of role `to`. */
bool tqi_cmd_allowed(uint8_t cmd, tqi_role from, tqi_role to);

/* Decodes an envelope frame into *e.  Fields point into buf, which must
 * outlive their use.  On error returns the distinct code for the fault
 * (EMAGIC, EVERSION, ECOMMAND, ETRUNCATED, ETRAILING, ETYPE, ERANGE,
 * ELENGTH, EDEPTH) and, when why is not NULL, a one-line explanation naming
 * the field.  Never allocates, never asserts. */
tq_err tqi_env_decode(const uint8_t *buf, size_t len, tqi_env *e, char *why, size_t whylen);

/* Like tqi_env_decode, for an envelope at the start of buf that may be
 * followed by more bytes (the next thing in its frame): on TQ_OK, *used is
 * the envelope's length.  No explanation: a caller that wants one decodes
 * again with tqi_env_decode_from. */
tq_err tqi_env_decode_prefix(const uint8_t *buf, size_t len, tqi_env *e, size_t *used);

/* For a command that a peer of role `from` sent to one of role `to` and
 * that failed to decode: when its header names a command allowed on that
 * route whose body carries a ref, and the body can be read as far as that
 * ref (an array, the fields before it skipped, then a bin of 16 bytes),
 * sets *cmd and ref and returns true, so that the refusal can name the
 * task.  Nothing after the ref is read.  Never allocates. */
bool tqi_env_peek_ref(const uint8_t *buf, size_t len, tqi_role from, tqi_role to, uint8_t *cmd,
                      uint8_t ref[TQI_REF_LEN]);

/* Like tqi_env_decode, for a message that a peer of role `from` sent to one
 * of role `to`: a command not allowed on that route is refused with
 * TQ_ECOMMAND before its body is read. */
tq_err tqi_env_decode_from(const uint8_t *buf, size_t len, tqi_role from, tqi_role to, tqi_env *e,
                           char *why, size_t whylen);

/* Test seam: with on = false the decoder reads every field through the
 * general msgpack reader only, not through its fast path for the forms tq
 * writes.  The envelope fuzzer decodes each input both ways and requires
 * the same outcome; nothing else calls it (not thread-safe). */
void tqi_env_fast_path(bool on);

/* Encodes e (e->cmd's fields) into out, which is reset first.  Returns
 * TQ_OK, TQ_ENOMEM, or TQ_EINVAL when a field breaks a limit (a bug in the
 * caller: the encoder refuses to emit what a decoder would reject). */
tq_err tqi_env_encode(const tqi_env *e, tqi_wbuf *out);

/* Appends one whole command to out: e encoded, then, when e->cmd carries
 * one, the payload (len bytes; NULL for an empty one) as a msgpack bin.
 * Errors as tqi_env_encode; out is then left as it was. */
tq_err tqi_cmd_append(const tqi_env *e, const void *payload, size_t len, tqi_wbuf *out);

/* Helpers for list fields: append one element to a list being built in a
 * wbuf, then make the tqi_raw that tqi_env_encode takes. */
int tqi_raw_add_str(tqi_wbuf *w, const char *s, size_t n);
int tqi_raw_add_ref(tqi_wbuf *w, const uint8_t ref[TQI_REF_LEN]);
tqi_raw tqi_raw_of(const tqi_wbuf *w, uint32_t count);

/* Iterates a validated list field: returns 1 and the next element, or 0 at
 * the end.  *cursor starts at 0. */
int tqi_raw_next_str(const tqi_raw *l, size_t *cursor, tqi_str *out);
int tqi_raw_next_ref(const tqi_raw *l, size_t *cursor, const uint8_t **ref);

#endif
