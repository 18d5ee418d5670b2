/*
 * envelope.c - the schema of every tq/1 command and the codec driven by it.
 *
 * Invariant: the encoder and the decoder read the same table, so nothing
 * is ever encoded that the decoder would reject, and the table is the one
 * place a field's type and limits are stated (PROTOCOL.md mirrors it).
 * Decoding works on the caller's buffer through the bounded tq_reader.
 */
#include "proto/wire.h"

#include "tq/value.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef enum { K_U64, K_U32, K_BOOL, K_BIN16, K_STR, K_STRS, K_REFS, K_MAP } kind;

typedef enum {
	F_SESSION,
	F_REF,
	F_INSTANCE,
	F_NAME,
	F_FUNCTION,
	F_TEXT,
	F_TIMEOUT,
	F_RETRIES,
	F_FLAGS,
	F_ATTEMPT,
	F_CODE,
	F_GRACE,
	F_CONCURRENCY,
	F_CAPACITY,
	F_HEARTBEAT,
	F_RESUMED,
	F_FUNCTIONS,
	F_REFS,
	F_STATS,
	F_MARK,
	F_COMMAND,
	F_MISSING,
	F_COUNT
} field_id;

typedef struct {
	const char *name;
	kind k;
	size_t off;
	uint64_t min, max; /* value range, or length range for STR, or count range for lists */
} field;

#define OFF(m) offsetof(tqi_env, m)

static const field fields[F_COUNT] = {
	[F_SESSION] = { "session", K_U64, OFF(session), 1, UINT64_MAX },
	[F_REF] = { "ref", K_BIN16, OFF(ref), 0, 0 },
	[F_INSTANCE] = { "instance", K_BIN16, OFF(instance), 0, 0 },
	[F_NAME] = { "name", K_STR, OFF(name), 0, TQI_MAX_NAME },
	[F_FUNCTION] = { "function", K_STR, OFF(function), 1, TQI_MAX_NAME },
	[F_TEXT] = { "message", K_STR, OFF(text), 0, TQI_MAX_TEXT },
	[F_TIMEOUT] = { "timeout_ms", K_U64, OFF(timeout_ms), 0, UINT64_MAX },
	[F_RETRIES] = { "retries", K_U32, OFF(retries), 0, TQI_MAX_RETRIES },
	[F_FLAGS] = { "flags", K_U32, OFF(flags), 0, TQI_SUBMIT_FLAGS_ALL },
	[F_ATTEMPT] = { "attempt", K_U32, OFF(attempt), 0, UINT32_MAX },
	[F_CODE] = { "code", K_U32, OFF(code), 0, UINT32_MAX },
	[F_GRACE] = { "grace_ms", K_U32, OFF(grace_ms), 0, TQI_MAX_GRACE_MS },
	[F_CONCURRENCY] = { "concurrency", K_U32, OFF(concurrency), 1, TQI_MAX_CONCURRENCY },
	[F_CAPACITY] = { "capacity", K_U32, OFF(capacity), 1, TQI_MAX_CAPACITY },
	[F_HEARTBEAT] = { "heartbeat_ms", K_U32, OFF(heartbeat_ms), TQI_MIN_HEARTBEAT_MS,
	                  TQI_MAX_HEARTBEAT_MS },
	[F_RESUMED] = { "resumed", K_BOOL, OFF(resumed), 0, 1 },
	[F_FUNCTIONS] = { "functions", K_STRS, OFF(functions), 1, TQI_MAX_FUNCTIONS },
	[F_REFS] = { "refs", K_REFS, OFF(refs), 1, TQI_MAX_DEADLINE_REFS },
	[F_STATS] = { "stats", K_MAP, OFF(stats), 0, 0 },
	[F_MARK] = { "mark", K_U64, OFF(mark), 0, UINT64_MAX },
	[F_COMMAND] = { "command", K_U32, OFF(command), 1, 0x7e },
	[F_MISSING] = { "refs", K_REFS, OFF(refs), 0, TQI_MAX_DEADLINE_REFS },
};

enum { C = TQI_ROLE_CLIENT, W = TQI_ROLE_WORKER, B = TQI_ROLE_BROKER };
#define ROUTE(from, to) ((from) << 4 | (to))

typedef struct {
	const char *name;
	uint8_t payload;
	uint8_t nroutes;
	uint8_t routes[3]; /* ROUTE(from, to) */
	uint8_t nfields;
	uint8_t f[6];
} schema;

/* One command a line reads best as a table. */
/* clang-format off */
static const schema schemas[128] = {
	/*                 name           payload routes                            fields */
	[TQI_HELLO]       = {"HELLO",       0, 1, {ROUTE(C, B)},              3, {F_SESSION, F_NAME, F_MARK}},
	[TQI_WELCOME]     = {"WELCOME",     0, 2, {ROUTE(B, C), ROUTE(B, W)}, 4, {F_INSTANCE, F_RESUMED, F_HEARTBEAT, F_MARK}},
	[TQI_SUBMIT]      = {"SUBMIT",      1, 1, {ROUTE(C, B)},              6, {F_SESSION, F_REF, F_FUNCTION, F_TIMEOUT, F_RETRIES, F_FLAGS}},
	[TQI_ACCEPTED]    = {"ACCEPTED",    0, 1, {ROUTE(B, C)},              1, {F_REF}},
	[TQI_RESULT]      = {"RESULT",      1, 1, {ROUTE(B, C)},              3, {F_REF, F_NAME, F_ATTEMPT}},
	[TQI_FAILED]      = {"FAILED",      0, 1, {ROUTE(B, C)},              5, {F_REF, F_CODE, F_TEXT, F_NAME, F_ATTEMPT}},
	[TQI_NOTICE]      = {"NOTICE",      0, 1, {ROUTE(B, C)},              2, {F_REF, F_CODE}},
	[TQI_CANCEL]      = {"CANCEL",      0, 2, {ROUTE(C, B), ROUTE(B, W)}, 2, {F_REF, F_GRACE}},
	[TQI_DETACH]      = {"DETACH",      0, 1, {ROUTE(C, B)},              1, {F_REF}},
	[TQI_DEADLINE]    = {"DEADLINE",    0, 1, {ROUTE(C, B)},              2, {F_TIMEOUT, F_REFS}},
	[TQI_STATS]       = {"STATS",       0, 1, {ROUTE(C, B)},              0, {0}},
	[TQI_STATS_REPLY] = {"STATS_REPLY", 0, 1, {ROUTE(B, C)},              1, {F_STATS}},
	[TQI_HEARTBEAT]   = {"HEARTBEAT",   0, 2, {ROUTE(B, C), ROUTE(B, W)}, 1, {F_INSTANCE}},
	[TQI_REFUSED]     = {"REFUSED",     0, 1, {ROUTE(B, C)},              4, {F_REF, F_COMMAND, F_CODE, F_TEXT}},
	[TQI_CHECK]       = {"CHECK",       0, 1, {ROUTE(C, B)},              2, {F_MARK, F_REFS}},
	[TQI_CHECKED]     = {"CHECKED",     0, 1, {ROUTE(B, C)},              2, {F_MARK, F_MISSING}},
	[TQI_READY]       = {"READY",       0, 1, {ROUTE(W, B)},              5, {F_NAME, F_CONCURRENCY, F_CAPACITY, F_HEARTBEAT, F_FUNCTIONS}},
	[TQI_TASK]        = {"TASK",        1, 1, {ROUTE(B, W)},              5, {F_REF, F_FUNCTION, F_ATTEMPT, F_TIMEOUT, F_NAME}},
	[TQI_DONE]        = {"DONE",        1, 1, {ROUTE(W, B)},              4, {F_REF, F_ATTEMPT, F_CODE, F_TEXT}},
	[TQI_PING]        = {"PING",        0, 1, {ROUTE(W, B)},              0, {0}},
	[TQI_DRAIN]       = {"DRAIN",       0, 1, {ROUTE(W, B)},              0, {0}},
	[TQI_BYE]         = {"BYE",         0, 1, {ROUTE(W, B)},              0, {0}},
	[TQI_DISCONNECT]  = {"DISCONNECT",  0, 1, {ROUTE(B, W)},              1, {F_TEXT}},
	[TQI_CAPACITY]    = {"CAPACITY",    0, 1, {ROUTE(W, B)},              1, {F_CAPACITY}},
	[TQI_ERROR]       = {"ERROR",       0, 2, {ROUTE(B, C), ROUTE(B, W)}, 2, {F_CODE, F_TEXT}},
};
/* clang-format on */

static const schema *lookup(uint8_t cmd)
{
	if (cmd >= 128 || schemas[cmd].name == NULL)
		return NULL;
	return &schemas[cmd];
}

const char *tqi_cmd_name(uint8_t cmd)
{
	const schema *s = lookup(cmd);
	return s ? s->name : NULL;
}

bool tqi_cmd_has_payload(uint8_t cmd)
{
	const schema *s = lookup(cmd);
	return s != NULL && s->payload;
}

void tqi_cmd_split(const uint8_t *p, size_t len, tqi_split *s)
{
	memset(s, 0, sizeof *s);
	s->env_len = s->len = len; /* unless its end is found below */
	if (len < TQI_HDR_LEN || p[0] != TQI_MAGIC0 || p[1] != TQI_MAGIC1 || p[2] != TQI_VERSION)
		return;
	const schema *sc = lookup(p[3]);
	if (sc == NULL)
		return;
	tq_reader r;
	tq_reader_init(&r, p + TQI_HDR_LEN, len - TQI_HDR_LEN);
	if (tq_read_skip(&r) != TQ_OK)
		return;
	tqi_cmd_split_at(p, len, len - tq_reader_left(&r), s);
}

void tqi_cmd_split_at(const uint8_t *p, size_t len, size_t env_len, tqi_split *s)
{
	memset(s, 0, sizeof *s);
	s->env_len = env_len;
	s->len = len; /* unless its payload is found below */
	if (!tqi_cmd_has_payload(p[3])) {
		s->len = env_len;
		return;
	}
	tq_reader r;
	tq_reader_init(&r, p + env_len, len - env_len);
	const uint8_t *data;
	size_t n;
	if (tq_read_bin(&r, &data, &n) != TQ_OK) {
		s->payload_missing = true; /* what follows is not its: all of it goes */
		return;
	}
	s->has_payload = true;
	s->payload_off = (size_t)(data - p);
	s->payload_len = n;
	s->len = len - tq_reader_left(&r);
}

static bool has_route(const schema *s, int route)
{
	for (int i = 0; i < s->nroutes; i++)
		if (s->routes[i] == route)
			return true;
	return false;
}

bool tqi_cmd_allowed(uint8_t cmd, tqi_role from, tqi_role to)
{
	const schema *s = lookup(cmd);
	return s != NULL && has_route(s, ROUTE(from, to));
}

/* ---- msgpack, written in place --------------------------------------
 * The few msgpack forms an envelope holds, written straight into the
 * buffer, each in its smallest form (as msgpack-c writes them).  Through
 * msgpack_packer's callback, a few bytes a call, encoding a SUBMIT took
 * ~670 instructions in the client (callgrind). */

enum { MP_HEAD_MAX = 9 }; /* the longest header or number: a type byte and 8 */

static size_t put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = n; i > 0; i--, v >>= 8)
		p[i - 1] = (uint8_t)v;
	return n;
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static size_t mp_uint(uint8_t *p, uint64_t v)
{
	if (v < 0x80) {
		p[0] = (uint8_t)v;
		return 1;
	}
	size_t n = v <= UINT8_MAX ? 1 : v <= UINT16_MAX ? 2 : v <= UINT32_MAX ? 4 : 8;
	p[0] = n == 1 ? 0xcc : n == 2 ? 0xcd : n == 4 ? 0xce : 0xcf;
	return 1 + put_be(p + 1, v, n);
}

/* The header forms of a sized type: a fix form (type bits | n, up to
 * fixmax) where it has one, then 8-, 16- and 32-bit lengths (code8 0:
 * none, as for arrays and maps). */
typedef struct {
	uint8_t fix, fixmax, code8, code16, code32;
} mp_form;

static const mp_form MP_STR = { 0xa0, 31, 0xd9, 0xda, 0xdb };
static const mp_form MP_BIN = { 0, 0, 0xc4, 0xc5, 0xc6 };
static const mp_form MP_ARRAY = { 0x90, 15, 0, 0xdc, 0xdd };
static const mp_form MP_MAP = { 0x80, 15, 0, 0xde, 0xdf };

static size_t mp_head(uint8_t *p, const mp_form *f, uint32_t n)
{
	if (f->fix != 0 && n <= f->fixmax) {
		p[0] = (uint8_t)(f->fix | n);
		return 1;
	}
	if (f->code8 != 0 && n <= UINT8_MAX) {
		p[0] = f->code8;
		p[1] = (uint8_t)n;
		return 2;
	}
	p[0] = n <= UINT16_MAX ? f->code16 : f->code32;
	return 1 + put_be(p + 1, n, n <= UINT16_MAX ? 2 : 4);
}

/* Appends a header for n (at most UINT32_MAX).  0, or -1 when out of
 * memory. */
static int put_head(tqi_wbuf *w, const mp_form *f, size_t n)
{
	uint8_t *p = tqi_wbuf_room(w, MP_HEAD_MAX);
	if (p == NULL)
		return -1;
	w->len += mp_head(p, f, (uint32_t)n);
	return 0;
}

/* Appends a str or bin of n bytes (at most UINT32_MAX; body may be NULL
 * when n is 0).  0, or -1 when out of memory. */
static int put_bytes(tqi_wbuf *w, const mp_form *f, const void *body, size_t n)
{
	uint8_t *p = tqi_wbuf_room(w, MP_HEAD_MAX + n);
	if (p == NULL)
		return -1;
	size_t h = mp_head(p, f, (uint32_t)n);
	if (n > 0)
		memcpy(p + h, body, n);
	w->len += h + n;
	return 0;
}

static int put_uint(tqi_wbuf *w, uint64_t v)
{
	uint8_t *p = tqi_wbuf_room(w, MP_HEAD_MAX);
	if (p == NULL)
		return -1;
	w->len += mp_uint(p, v);
	return 0;
}

/* ---- decoding --------------------------------------------------------- */

static const char *type_name(tq_reader *r)
{
	static const char *const names[] = { "nil", "bool", "negative int", "uint", "float",
		                             "str", "bin",  "array",        "map",  "ext" };
	tq_type t;
	if (tq_reader_peek(r, &t) != TQ_OK)
		return "nothing";
	return names[t];
}

/* Records "<cmd> field <name>: <detail>" (or just the detail when cmd is
 * empty) as the reason for e. */
static tq_err fail(tq_err e, char *why, size_t n, const char *cmd, const char *name,
                   const char *detail)
{
	if (why != NULL && n > 0) {
		if (cmd[0] == '\0')
			snprintf(why, n, "%s", detail);
		else
			snprintf(why, n, "%s field %s: %s", cmd, name, detail);
	}
	return e;
}

static tq_err fail_type(tq_err e, char *why, size_t n, const char *cmd, const char *name,
                        const char *want, const char *got)
{
	char d[64];
	if (e == TQ_ETYPE)
		snprintf(d, sizeof d, "expected %s, got %s", want, got);
	else
		snprintf(d, sizeof d, "%s", tq_strerror(e));
	return fail(e, why, n, cmd, name, d);
}

/* The field describing one element of list field f. */
static field element_of(const field *f)
{
	field elem = { f->name, f->k == K_STRS ? K_STR : K_BIN16,
		       f->k == K_STRS ? OFF(name) : OFF(ref), 1, TQI_MAX_NAME };
	return elem;
}

static tq_err decode_field(tq_reader *r, const field *f, tqi_env *e, const char *cmd, char *why,
                           size_t whylen);

/* True when the raw bytes of list or map field f are what its decoder
 * accepts: the encoder refuses to emit anything else. */
static bool raw_valid(const field *f, const tqi_raw *l)
{
	tq_reader r;
	tq_reader_init(&r, l->p, l->len);
	if (f->k == K_MAP) {
		tq_type t;
		return tq_reader_peek(&r, &t) == TQ_OK && t == TQ_TYPE_MAP &&
		       tq_value_check(l->p, l->len, TQI_STATS_DEPTH) == TQ_OK;
	}
	field elem = element_of(f);
	for (uint32_t i = 0; i < l->count; i++) {
		tqi_env scratch;
		if (decode_field(&r, &elem, &scratch, "", NULL, 0) != TQ_OK)
			return false;
	}
	return tq_reader_end(&r) == TQ_OK;
}

static bool fast_path = true; /* off only in the fuzzer's comparison */

void tqi_env_fast_path(bool on)
{
	fast_path = on;
}

/* The forms tq's own encoder writes, read without the general reader:
 * a field decoded here is what decode_field would make of it.  Anything
 * else - another form, too few bytes, a value out of range - returns
 * false and goes the general way, which also says what is wrong. */
static bool fast_field(tq_reader *r, const field *f, tqi_env *e)
{
	const uint8_t *p = r->p_;
	size_t left = (size_t)(r->end_ - p), used;
	char *dst = (char *)e + f->off;
	if (left == 0)
		return false;
	switch (f->k) {
	case K_U64:
	case K_U32: {
		uint64_t v;
		if (p[0] < 0x80) {
			v = p[0];
			used = 1;
		} else if (p[0] >= 0xcc && p[0] <= 0xcf) {
			used = 1 + ((size_t)1 << (p[0] - 0xcc));
			if (left < used)
				return false;
			v = get_be(p + 1, used - 1);
		} else {
			return false;
		}
		if (v < f->min || v > f->max)
			return false;
		if (f->k == K_U64) {
			memcpy(dst, &v, sizeof v);
		} else {
			uint32_t v32 = (uint32_t)v;
			memcpy(dst, &v32, sizeof v32);
		}
		break;
	}
	case K_BIN16:
		if (left < 2 + TQI_REF_LEN || p[0] != 0xc4 || p[1] != TQI_REF_LEN)
			return false;
		memcpy(dst, p + 2, TQI_REF_LEN);
		used = 2 + TQI_REF_LEN;
		break;
	case K_STR: {
		size_t h, n;
		if ((p[0] & 0xe0) == 0xa0) {
			h = 1;
			n = p[0] & 0x1f;
		} else if (p[0] == 0xd9 && left >= 2) {
			h = 2;
			n = p[1];
		} else {
			return false;
		}
		if (n > left - h || n < f->min || n > f->max)
			return false;
		tqi_str str = { (const char *)p + h, (uint32_t)n };
		memcpy(dst, &str, sizeof str);
		used = h + n;
		break;
	}
	case K_BOOL: {
		if (p[0] != 0xc2 && p[0] != 0xc3)
			return false;
		bool b = p[0] == 0xc3;
		memcpy(dst, &b, sizeof b);
		used = 1;
		break;
	}
	default:
		return false;
	}
	r->p_ += used;
	return true;
}

static tq_err decode_field(tq_reader *r, const field *f, tqi_env *e, const char *cmd, char *why,
                           size_t whylen)
{
	if (fast_path && fast_field(r, f, e))
		return TQ_OK;
	char *dst = (char *)e + f->off;
	tq_err err;
	/* On error the reader has not moved: type_name(r) names what is there. */
	switch (f->k) {
	case K_U64:
	case K_U32: {
		uint64_t v;
		err = tq_read_uint(r, &v);
		if (err == TQ_ERANGE)
			return fail(TQ_ERANGE, why, whylen, cmd, f->name, "negative");
		if (err != TQ_OK)
			return fail_type(err, why, whylen, cmd, f->name, "uint", type_name(r));
		if (v < f->min || v > f->max)
			return fail(TQ_ERANGE, why, whylen, cmd, f->name, "value out of range");
		if (f->k == K_U64)
			memcpy(dst, &v, sizeof v);
		else {
			uint32_t v32 = (uint32_t)v;
			memcpy(dst, &v32, sizeof v32);
		}
		return TQ_OK;
	}
	case K_BOOL: {
		bool b;
		err = tq_read_bool(r, &b);
		if (err != TQ_OK)
			return fail_type(err, why, whylen, cmd, f->name, "bool", type_name(r));
		memcpy(dst, &b, sizeof b);
		return TQ_OK;
	}
	case K_BIN16: {
		const uint8_t *d;
		size_t n;
		err = tq_read_bin(r, &d, &n);
		if (err != TQ_OK)
			return fail_type(err, why, whylen, cmd, f->name, "bin", type_name(r));
		if (n != TQI_REF_LEN)
			return fail(TQ_ERANGE, why, whylen, cmd, f->name, "must be 16 bytes");
		memcpy(dst, d, TQI_REF_LEN);
		return TQ_OK;
	}
	case K_STR: {
		tqi_str s;
		size_t n;
		err = tq_read_str(r, &s.p, &n);
		if (err != TQ_OK)
			return fail_type(err, why, whylen, cmd, f->name, "str", type_name(r));
		if (n < f->min || n > f->max)
			return fail(TQ_ERANGE, why, whylen, cmd, f->name, "length out of range");
		s.n = (uint32_t)n;
		memcpy(dst, &s, sizeof s);
		return TQ_OK;
	}
	case K_STRS:
	case K_REFS: {
		tqi_raw l;
		err = tq_read_array(r, &l.count);
		if (err != TQ_OK)
			return fail_type(err, why, whylen, cmd, f->name, "array", type_name(r));
		if (l.count < f->min || l.count > f->max)
			return fail(TQ_ERANGE, why, whylen, cmd, f->name, "count out of range");
		l.p = r->p_;
		field elem = element_of(f);
		for (uint32_t i = 0; i < l.count; i++) {
			tqi_env scratch;
			err = decode_field(r, &elem, &scratch, cmd, why, whylen);
			if (err != TQ_OK)
				return err;
		}
		l.len = (size_t)(r->p_ - l.p);
		memcpy(dst, &l, sizeof l);
		return TQ_OK;
	}
	case K_MAP: {
		tqi_raw m;
		tq_type t;
		err = tq_reader_peek(r, &t);
		if (err == TQ_OK && t != TQ_TYPE_MAP)
			err = TQ_ETYPE;
		if (err != TQ_OK)
			return fail_type(err, why, whylen, cmd, f->name, "map", type_name(r));
		m.p = r->p_;
		/* The stats map is opaque here but must be well-formed and shallow. */
		tq_reader sub = *r;
		tq_err depth_err = TQ_OK;
		err = tq_read_skip(&sub);
		if (err == TQ_OK) {
			depth_err = tq_value_check(m.p, (size_t)(sub.p_ - m.p), TQI_STATS_DEPTH);
			err = depth_err;
		}
		if (err != TQ_OK)
			return fail(err, why, whylen, cmd, f->name, tq_strerror(err));
		m.len = (size_t)(sub.p_ - m.p);
		m.count = 1;
		*r = sub;
		memcpy(dst, &m, sizeof m);
		return TQ_OK;
	}
	}
	return TQ_ETYPE;
}

/* The decoder behind both entry points: the header, then the route (when
 * `route` is ROUTE(from, to); 0 checks none), then the body.  A misrouted
 * command is refused before its body is read. */
static tq_err decode(const uint8_t *buf, size_t len, int route, tqi_env *e, char *why,
                     size_t whylen, size_t *used)
{
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	memset(e, 0, sizeof *e);
	if (len < TQI_HDR_LEN) {
		if (len >= 1 && buf[0] != TQI_MAGIC0)
			return fail(TQ_EMAGIC, why, whylen, "", "", "bad magic (not a tq message)");
		return fail(TQ_ETRUNCATED, why, whylen, "", "", "envelope shorter than its header");
	}
	if (buf[0] != TQI_MAGIC0 || buf[1] != TQI_MAGIC1)
		return fail(TQ_EMAGIC, why, whylen, "", "", "bad magic (not a tq message)");
	if (buf[2] != TQI_VERSION) {
		char v[48];
		snprintf(v, sizeof v, "protocol version %u, expected %u", buf[2], TQI_VERSION);
		return fail(TQ_EVERSION, why, whylen, "", "", v);
	}
	const schema *s = lookup(buf[3]);
	if (s == NULL) {
		char c[32];
		snprintf(c, sizeof c, "unknown command 0x%02x", buf[3]);
		return fail(TQ_ECOMMAND, why, whylen, "", "", c);
	}
	if (route != 0 && !has_route(s, route)) {
		char d[64];
		snprintf(d, sizeof d, "%s is not allowed on this route", s->name);
		return fail(TQ_ECOMMAND, why, whylen, "", "", d);
	}
	e->cmd = buf[3];
	tq_reader r;
	tq_reader_init(&r, buf + TQI_HDR_LEN, len - TQI_HDR_LEN);
	uint32_t n;
	tq_err err = TQ_OK;
	if (fast_path && len > TQI_HDR_LEN && (buf[TQI_HDR_LEN] & 0xf0) == 0x90 &&
	    (size_t)(buf[TQI_HDR_LEN] & 0x0f) < len - TQI_HDR_LEN) { /* a fixarray, as sent */
		n = buf[TQI_HDR_LEN] & 0x0f;
		r.p_++;
	} else {
		err = tq_read_array(&r, &n);
	}
	if (err != TQ_OK)
		return fail_type(err, why, whylen, s->name, "list", "array", type_name(&r));
	if (n != s->nfields) {
		char d[48];
		snprintf(d, sizeof d, "%u fields, expected %u", n, s->nfields);
		return fail(TQ_ETYPE, why, whylen, s->name, "list", d);
	}
	for (uint32_t i = 0; i < n; i++) {
		err = decode_field(&r, &fields[s->f[i]], e, s->name, why, whylen);
		if (err != TQ_OK)
			return err;
	}
	if (used != NULL) { /* what follows is the next thing in the frame */
		*used = len - tq_reader_left(&r);
		return TQ_OK;
	}
	if (tq_reader_end(&r) != TQ_OK)
		return fail(TQ_ETRAILING, why, whylen, s->name, "list",
		            "trailing bytes after the fields");
	return TQ_OK;
}

tq_err tqi_env_decode(const uint8_t *buf, size_t len, tqi_env *e, char *why, size_t whylen)
{
	return decode(buf, len, 0, e, why, whylen, NULL);
}

tq_err tqi_env_decode_from(const uint8_t *buf, size_t len, tqi_role from, tqi_role to, tqi_env *e,
                           char *why, size_t whylen)
{
	return decode(buf, len, ROUTE(from, to), e, why, whylen, NULL);
}

tq_err tqi_env_decode_prefix(const uint8_t *buf, size_t len, tqi_env *e, size_t *used)
{
	return decode(buf, len, 0, e, NULL, 0, used);
}

bool tqi_env_peek_ref(const uint8_t *buf, size_t len, tqi_role from, tqi_role to, uint8_t *cmd,
                      uint8_t ref[TQI_REF_LEN])
{
	if (len < TQI_HDR_LEN || buf[0] != TQI_MAGIC0 || buf[1] != TQI_MAGIC1 ||
	    buf[2] != TQI_VERSION)
		return false;
	const schema *s = lookup(buf[3]);
	if (s == NULL || !has_route(s, ROUTE(from, to)))
		return false;
	uint32_t at = 0;
	while (at < s->nfields && s->f[at] != F_REF)
		at++;
	if (at == s->nfields)
		return false;
	tq_reader r;
	tq_reader_init(&r, buf + TQI_HDR_LEN, len - TQI_HDR_LEN);
	uint32_t n;
	if (tq_read_array(&r, &n) != TQ_OK || n <= at)
		return false;
	for (uint32_t i = 0; i < at; i++)
		if (tq_read_skip(&r) != TQ_OK)
			return false;
	const uint8_t *p;
	size_t plen;
	if (tq_read_bin(&r, &p, &plen) != TQ_OK || plen != TQI_REF_LEN)
		return false;
	memcpy(ref, p, TQI_REF_LEN);
	*cmd = buf[3];
	return true;
}

/* ---- encoding --------------------------------------------------------- */

/* 0, -1 when out of memory, 1 when the field breaks its limits. */
static int encode_field(tqi_wbuf *w, const field *f, const tqi_env *e)
{
	const char *src = (const char *)e + f->off;
	switch (f->k) {
	case K_U64: {
		uint64_t v;
		memcpy(&v, src, sizeof v);
		if (v < f->min || v > f->max)
			return 1;
		return put_uint(w, v);
	}
	case K_U32: {
		uint32_t v;
		memcpy(&v, src, sizeof v);
		if (v < f->min || v > f->max)
			return 1;
		return put_uint(w, v);
	}
	case K_BOOL: {
		bool b;
		memcpy(&b, src, sizeof b);
		uint8_t c = b ? 0xc3 : 0xc2;
		return tqi_wbuf_append(w, &c, 1);
	}
	case K_BIN16:
		return put_bytes(w, &MP_BIN, src, TQI_REF_LEN);
	case K_STR: {
		tqi_str s;
		memcpy(&s, src, sizeof s);
		if (s.n < f->min || s.n > f->max || (s.n > 0 && s.p == NULL))
			return 1;
		return put_bytes(w, &MP_STR, s.p, s.n);
	}
	case K_STRS:
	case K_REFS: {
		tqi_raw l;
		memcpy(&l, src, sizeof l);
		if (l.count < f->min || l.count > f->max || !raw_valid(f, &l))
			return 1;
		if (put_head(w, &MP_ARRAY, l.count) != 0)
			return -1;
		return tqi_wbuf_append(w, l.p, l.len);
	}
	case K_MAP: {
		tqi_raw m;
		memcpy(&m, src, sizeof m);
		if (m.len == 0)
			return put_head(w, &MP_MAP, 0);
		if (!raw_valid(f, &m))
			return 1;
		return tqi_wbuf_append(w, m.p, m.len);
	}
	}
	return 1;
}

static tq_err env_append(const tqi_env *e, tqi_wbuf *out)
{
	const schema *s = lookup(e->cmd);
	if (s == NULL)
		return TQ_EINVAL;
	/* The header, then the fields' list: 6 fields at most, one byte. */
	uint8_t *p = tqi_wbuf_room(out, TQI_HDR_LEN + 1);
	if (p == NULL)
		return TQ_ENOMEM;
	p[0] = TQI_MAGIC0;
	p[1] = TQI_MAGIC1;
	p[2] = TQI_VERSION;
	p[3] = e->cmd;
	out->len += TQI_HDR_LEN + mp_head(p + TQI_HDR_LEN, &MP_ARRAY, s->nfields);
	for (int i = 0; i < s->nfields; i++) {
		int rc = encode_field(out, &fields[s->f[i]], e);
		if (rc > 0)
			return TQ_EINVAL;
		if (rc < 0)
			return TQ_ENOMEM;
	}
	return out->oom ? TQ_ENOMEM : TQ_OK;
}

tq_err tqi_env_encode(const tqi_env *e, tqi_wbuf *out)
{
	tqi_wbuf_reset(out);
	return env_append(e, out);
}

tq_err tqi_cmd_append(const tqi_env *e, const void *payload, size_t len, tqi_wbuf *out)
{
	size_t start = out->len;
	tq_err err = out->oom ? TQ_ENOMEM : env_append(e, out);
	if (err == TQ_OK && tqi_cmd_has_payload(e->cmd) &&
	    (len > UINT32_MAX || put_bytes(out, &MP_BIN, payload, len) != 0))
		err = TQ_ENOMEM;
	if (err != TQ_OK) { /* as it was: a batch goes on without the command */
		out->len = start;
		out->oom = 0;
	}
	return err;
}

int tqi_raw_add_str(tqi_wbuf *w, const char *s, size_t n)
{
	if (n > UINT32_MAX)
		return -1;
	return put_bytes(w, &MP_STR, s, n);
}

int tqi_raw_add_ref(tqi_wbuf *w, const uint8_t ref[TQI_REF_LEN])
{
	return put_bytes(w, &MP_BIN, ref, TQI_REF_LEN);
}

tqi_raw tqi_raw_of(const tqi_wbuf *w, uint32_t count)
{
	tqi_raw l = { w->data, w->len, count };
	return l;
}

int tqi_raw_next_str(const tqi_raw *l, size_t *cursor, tqi_str *out)
{
	if (*cursor >= l->len)
		return 0;
	tq_reader r;
	tq_reader_init(&r, l->p + *cursor, l->len - *cursor);
	size_t n;
	if (tq_read_str(&r, &out->p, &n) != TQ_OK)
		return 0;
	out->n = (uint32_t)n;
	*cursor = (size_t)(r.p_ - l->p);
	return 1;
}

int tqi_raw_next_ref(const tqi_raw *l, size_t *cursor, const uint8_t **ref)
{
	if (*cursor >= l->len)
		return 0;
	tq_reader r;
	tq_reader_init(&r, l->p + *cursor, l->len - *cursor);
	size_t n;
	if (tq_read_bin(&r, ref, &n) != TQ_OK || n != TQI_REF_LEN)
		return 0;
	*cursor = (size_t)(r.p_ - l->p);
	return 1;
}
