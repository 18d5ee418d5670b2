/*
 * test_envelope.c - the tq/1 envelope codec: a round trip of every command,
 * and every kind of hostile input rejected with its own error, without a
 * crash and without allocating.
 *
 * The protocol table below restates the commands (names, payloads, routes,
 * field types) independently of proto/envelope.c, so a change to the
 * schema there that is not a deliberate protocol change fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/wire.h"
#include "tests/unit/messages.h"
#include "tq/value.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- counting allocations (linked with -Wl,--wrap=malloc,...) ---------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

/* volatile: the compiler takes malloc for the builtin, which touches no
 * global of ours, and would fold the counts */
static volatile size_t allocations;

void *__wrap_malloc(size_t n)
{
	allocations++;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	allocations++;
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	allocations++;
	return __real_realloc(p, n);
}

/* ---- the protocol, restated ------------------------------------------ */

enum { C = TQI_ROLE_CLIENT, W = TQI_ROLE_WORKER, B = TQI_ROLE_BROKER };

/* Field kinds: u uint, b bool, r bin(16), s str, l list (array), m map. */
static const struct {
	uint8_t cmd;
	const char *name;
	const char *kinds;
	bool payload;
	uint8_t routes[2][2]; /* {from, to}; {0, 0} ends */
} protocol[] = {
	{ TQI_HELLO, "HELLO", "usu", false, { { C, B } } },
	{ TQI_WELCOME, "WELCOME", "rbuu", false, { { B, C }, { B, W } } },
	{ TQI_SUBMIT, "SUBMIT", "ursuuu", true, { { C, B } } },
	{ TQI_ACCEPTED, "ACCEPTED", "r", false, { { B, C } } },
	{ TQI_RESULT, "RESULT", "rsu", true, { { B, C } } },
	{ TQI_FAILED, "FAILED", "russu", false, { { B, C } } },
	{ TQI_NOTICE, "NOTICE", "ru", false, { { B, C } } },
	{ TQI_CANCEL, "CANCEL", "ru", false, { { C, B }, { B, W } } },
	{ TQI_DETACH, "DETACH", "r", false, { { C, B } } },
	{ TQI_DEADLINE, "DEADLINE", "ul", false, { { C, B } } },
	{ TQI_STATS, "STATS", "", false, { { C, B } } },
	{ TQI_STATS_REPLY, "STATS_REPLY", "m", false, { { B, C } } },
	{ TQI_HEARTBEAT, "HEARTBEAT", "r", false, { { B, C }, { B, W } } },
	{ TQI_REFUSED, "REFUSED", "ruus", false, { { B, C } } },
	{ TQI_CHECK, "CHECK", "ul", false, { { C, B } } },
	{ TQI_CHECKED, "CHECKED", "ul", false, { { B, C } } },
	{ TQI_READY, "READY", "suuul", false, { { W, B } } },
	{ TQI_TASK, "TASK", "rsuus", true, { { B, W } } },
	{ TQI_DONE, "DONE", "ruus", true, { { W, B } } },
	{ TQI_PING, "PING", "", false, { { W, B } } },
	{ TQI_DRAIN, "DRAIN", "", false, { { W, B } } },
	{ TQI_BYE, "BYE", "", false, { { W, B } } },
	{ TQI_DISCONNECT, "DISCONNECT", "s", false, { { B, W } } },
	{ TQI_CAPACITY, "CAPACITY", "u", false, { { W, B } } },
	{ TQI_ERROR, "ERROR", "us", false, { { B, C }, { B, W } } },
};

#define NPROTOCOL (sizeof protocol / sizeof protocol[0])

static int protocol_index(uint8_t cmd)
{
	for (size_t i = 0; i < NPROTOCOL; i++)
		if (protocol[i].cmd == cmd)
			return (int)i;
	return -1;
}

/* ---- helpers ----------------------------------------------------------- */

/* Decodes a copy of data in a buffer of exactly len bytes, so that ASan sees
 * any read past the end.  The copy is returned in *keep (free it) when keep
 * is not NULL, since e points into it; otherwise it is freed here. */
static tq_err decode_exact(const uint8_t *data, size_t len, tqi_env *e, char *why, size_t whylen,
                           uint8_t **keep)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, data, len);
	tq_err err = tqi_env_decode(copy, len, e, why, whylen);
	if (keep != NULL)
		*keep = copy;
	else
		free(copy);
	return err;
}

/* An envelope for cmd whose field list is the bytes of fields. */
static void envelope(tqi_wbuf *out, uint8_t cmd, const tq_buf *fields)
{
	const uint8_t hdr[TQI_HDR_LEN] = { TQI_MAGIC0, TQI_MAGIC1, TQI_VERSION, cmd };
	tqi_wbuf_reset(out);
	assert_int_equal(tqi_wbuf_append(out, hdr, sizeof hdr), 0);
	assert_int_equal(tqi_wbuf_append(out, tq_buf_data(fields), tq_buf_size(fields)), 0);
}

static tq_err decode_built(uint8_t cmd, const tq_buf *fields, char *why, size_t whylen)
{
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	envelope(&w, cmd, fields);
	tqi_env e;
	tq_err err = decode_exact(w.data, w.len, &e, why, whylen, NULL);
	tqi_wbuf_free(&w);
	return err;
}

static bool is_decoder_error(tq_err e)
{
	switch (e) {
	case TQ_EMAGIC:
	case TQ_EVERSION:
	case TQ_ECOMMAND:
	case TQ_ETRUNCATED:
	case TQ_ETRAILING:
	case TQ_ETYPE:
	case TQ_EDEPTH:
	case TQ_ELENGTH:
	case TQ_ERANGE:
		return true;
	default:
		return false;
	}
}

static const uint8_t ref_a[TQI_REF_LEN] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

/* ---- commands and routes --------------------------------------------- */

static void test_command_names(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++) {
		int i = protocol_index((uint8_t)c);
		const char *name = tqi_cmd_name((uint8_t)c);
		if (i < 0) {
			assert_null(name);
			assert_false(tqi_cmd_has_payload((uint8_t)c));
		} else {
			assert_non_null(name);
			assert_string_equal(name, protocol[i].name);
			assert_int_equal(tqi_cmd_has_payload((uint8_t)c), protocol[i].payload);
		}
	}
}

static void test_routes(void **state)
{
	(void)state;
	static const tqi_role roles[] = { TQI_ROLE_CLIENT, TQI_ROLE_WORKER, TQI_ROLE_BROKER };
	for (unsigned c = 0; c < 256; c++) {
		int i = protocol_index((uint8_t)c);
		for (int f = 0; f < 3; f++) {
			for (int t = 0; t < 3; t++) {
				bool want = false;
				for (int r = 0; i >= 0 && r < 2; r++)
					if (protocol[i].routes[r][0] == roles[f] &&
					    protocol[i].routes[r][1] == roles[t])
						want = true;
				if (tqi_cmd_allowed((uint8_t)c, roles[f], roles[t]) != want)
					fail_msg("command 0x%02x from %d to %d: allowed is %d", c,
					         roles[f], roles[t], !want);
			}
		}
	}
	/* Nothing goes between two clients or two workers, or client to worker. */
	assert_false(tqi_cmd_allowed(TQI_SUBMIT, TQI_ROLE_CLIENT, TQI_ROLE_WORKER));
	assert_false(tqi_cmd_allowed(TQI_TASK, TQI_ROLE_WORKER, TQI_ROLE_WORKER));
	assert_true(tqi_cmd_allowed(TQI_TASK, TQI_ROLE_BROKER, TQI_ROLE_WORKER));
}

/* ---- round trips ------------------------------------------------------- */

static void test_round_trip_every_command(void **state)
{
	(void)state;
	size_t n;
	const tqt_env_sample *s = tqt_env_samples(&n);
	bool seen[NPROTOCOL] = { false };
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	for (size_t i = 0; i < n; i++) {
		int pi = protocol_index(s[i].env.cmd);
		assert_true(pi >= 0);
		seen[pi] = true;
		tq_err err = tqi_env_encode(&s[i].env, &w);
		if (err != TQ_OK)
			fail_msg("%s: encode gave %s", s[i].name, tq_errname(err));
		assert_true(w.len > TQI_HDR_LEN);
		assert_memory_equal(w.data, ((uint8_t[]){ 'T', 'Q', 1, s[i].env.cmd }), 4);

		/* The field list is one array of as many fields as the protocol says. */
		tq_reader r;
		uint32_t nfields;
		tq_reader_init(&r, w.data + TQI_HDR_LEN, w.len - TQI_HDR_LEN);
		assert_int_equal(tq_read_array(&r, &nfields), TQ_OK);
		assert_int_equal(nfields, strlen(protocol[pi].kinds));

		tqi_env e;
		char why[128] = "untouched";
		uint8_t *buf;
		err = decode_exact(w.data, w.len, &e, why, sizeof why, &buf);
		if (err != TQ_OK)
			fail_msg("%s: decode gave %s: %s", s[i].name, tq_errname(err), why);
		assert_string_equal(why, "");
		if (!tqt_env_equal(&s[i].env, &e))
			fail_msg("%s: decoded fields differ from the encoded ones", s[i].name);
		/* Strings are not copied: they point into the envelope. */
		if (e.name.n > 0)
			assert_true((const uint8_t *)e.name.p > buf &&
			            (const uint8_t *)e.name.p + e.name.n <= buf + w.len);
		free(buf);
	}
	for (size_t i = 0; i < NPROTOCOL; i++)
		if (!seen[i])
			fail_msg("no sample message for %s", protocol[i].name);
	tqi_wbuf_free(&w);
}

static void test_round_trip_lists(void **state)
{
	(void)state;
	/* READY with 3 functions built with the list helpers */
	static const char *const names[] = { "add", "echo", "a-much-longer-function-name" };
	tqi_wbuf list, w;
	tqi_wbuf_init(&list);
	tqi_wbuf_init(&w);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tqi_raw_add_str(&list, names[i], strlen(names[i])), 0);
	tqi_env e = { .cmd = TQI_READY,
		      .name = { "w", 1 },
		      .concurrency = 2,
		      .capacity = 2,
		      .heartbeat_ms = 500,
		      .functions = tqi_raw_of(&list, 3) };
	assert_int_equal(tqi_env_encode(&e, &w), TQ_OK);
	tqi_env d;
	assert_int_equal(tqi_env_decode(w.data, w.len, &d, NULL, 0), TQ_OK);
	assert_true(tqt_env_equal(&e, &d));
	size_t cur = 0;
	tqi_str s;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tqi_raw_next_str(&d.functions, &cur, &s), 1);
		assert_int_equal(s.n, strlen(names[i]));
		assert_memory_equal(s.p, names[i], s.n);
	}
	assert_int_equal(tqi_raw_next_str(&d.functions, &cur, &s), 0);

	/* DEADLINE with the most refs allowed */
	tqi_wbuf_reset(&list);
	for (unsigned i = 0; i < TQI_MAX_DEADLINE_REFS; i++) {
		uint8_t ref[TQI_REF_LEN] = { 0 };
		memcpy(ref, &i, sizeof i);
		assert_int_equal(tqi_raw_add_ref(&list, ref), 0);
	}
	e = (tqi_env){ .cmd = TQI_DEADLINE,
		       .timeout_ms = 1,
		       .refs = tqi_raw_of(&list, TQI_MAX_DEADLINE_REFS) };
	assert_int_equal(tqi_env_encode(&e, &w), TQ_OK);
	assert_int_equal(tqi_env_decode(w.data, w.len, &d, NULL, 0), TQ_OK);
	assert_true(tqt_env_equal(&e, &d));
	cur = 0;
	const uint8_t *ref;
	for (unsigned i = 0; i < TQI_MAX_DEADLINE_REFS; i++) {
		assert_int_equal(tqi_raw_next_ref(&d.refs, &cur, &ref), 1);
		unsigned got;
		memcpy(&got, ref, sizeof got);
		assert_int_equal(got, i);
	}
	assert_int_equal(tqi_raw_next_ref(&d.refs, &cur, &ref), 0);

	/* The iterators stop at an element of the wrong kind. */
	tqi_raw wrong = { (const uint8_t *)"\x01\xa1x", 3, 2 };
	cur = 0;
	assert_int_equal(tqi_raw_next_str(&wrong, &cur, &s), 0);
	assert_int_equal(tqi_raw_next_ref(&wrong, &cur, &ref), 0);
	tqi_wbuf_free(&list);
	tqi_wbuf_free(&w);
}

static void test_empty_stats_encode_as_empty_map(void **state)
{
	(void)state;
	tqi_env e = { .cmd = TQI_STATS_REPLY }, d;
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	assert_int_equal(tqi_env_encode(&e, &w), TQ_OK);
	assert_int_equal(tqi_env_decode(w.data, w.len, &d, NULL, 0), TQ_OK);
	assert_int_equal(d.stats.len, 1);
	assert_int_equal(d.stats.p[0], 0x80);
	tqi_wbuf_free(&w);
}

/* ---- the bytes: what msgpack-c would write ------------------------------ */

/* tq writes msgpack itself (envelope.c); msgpack-c, unpacking its output
 * value by value and packing each again, must write the same bytes: every
 * header in its smallest form. */
static void assert_canonical(const uint8_t *data, size_t len)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	size_t off = 0;
	while (off < len) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		assert_int_equal(msgpack_unpack_next(&u, (const char *)data, len, &off),
		                 MSGPACK_UNPACK_SUCCESS);
		assert_int_equal(msgpack_pack_object(&pk, u.data), 0);
		msgpack_unpacked_destroy(&u);
	}
	assert_int_equal(sb.size, len);
	assert_memory_equal(sb.data, data, len);
	msgpack_sbuffer_destroy(&sb);
}

/* Encodes e with its payload, checks the bytes after the header are what
 * msgpack-c writes, and decodes them with and without the decoder's fast
 * path, to the same fields. */
static void check_bytes(const tqi_env *e, const void *payload, size_t plen)
{
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	assert_int_equal(tqi_cmd_append(e, payload, plen, &w), TQ_OK);
	assert_canonical(w.data + TQI_HDR_LEN, w.len - TQI_HDR_LEN);
	tqi_split sp;
	tqi_cmd_split(w.data, w.len, &sp);
	assert_int_equal(sp.len, w.len);
	for (int fast = 1; fast >= 0; fast--) {
		tqi_env d;
		tqi_env_fast_path(fast);
		tq_err err = tqi_env_decode(w.data, sp.env_len, &d, NULL, 0);
		tqi_env_fast_path(true);
		assert_int_equal(err, TQ_OK);
		assert_true(tqt_env_equal(e, &d));
	}
	tqi_wbuf_free(&w);
}

static void test_encoding_is_msgpack_c_s(void **state)
{
	(void)state;
	size_t n;
	const tqt_env_sample *s = tqt_env_samples(&n);
	for (size_t i = 0; i < n; i++)
		check_bytes(&s[i].env, "\x91\x01", 2);

	/* every size boundary of the forms: numbers, strings, payloads */
	static const uint64_t nums[] = { 0,
		                         1,
		                         127,
		                         128,
		                         255,
		                         256,
		                         65535,
		                         65536,
		                         UINT32_MAX,
		                         1ull << 32,
		                         UINT64_MAX - 1,
		                         UINT64_MAX };
	static const size_t lens[] = { 0, 1, 31, 32, 255, 256, 4095, 4096 };
	static char text[70000];
	memset(text, 'x', sizeof text);
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		tqi_env e = { .cmd = TQI_SUBMIT,
			      .session = nums[i] ? nums[i] : 1,
			      .function = { "f", 1 },
			      .timeout_ms = nums[i],
			      .retries = (uint32_t)(nums[i] % (TQI_MAX_RETRIES + 1)) };
		memcpy(e.ref, ref_a, sizeof e.ref);
		check_bytes(&e, NULL, 0);
		tqi_env d = { .cmd = TQI_DONE,
			      .attempt = (uint32_t)nums[i],
			      .code = (uint32_t)(nums[i] >> 1) };
		check_bytes(&d, text, (size_t)(nums[i] % sizeof text));
	}
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		size_t nl = lens[i] > TQI_MAX_NAME ? TQI_MAX_NAME : lens[i];
		tqi_env e = { .cmd = TQI_FAILED,
			      .code = 7,
			      .text = { text, (uint32_t)lens[i] },
			      .name = { text, (uint32_t)nl } };
		check_bytes(&e, NULL, 0);
		tqi_env r = { .cmd = TQI_RESULT, .name = { text, (uint32_t)nl } };
		check_bytes(&r, text, lens[i]);
		check_bytes(&r, text, lens[i] + 65535 - 4096);
		check_bytes(&r, text, lens[i] + 65536 - 4096 + 1);
	}
}

/* ---- hostile input ----------------------------------------------------- */

static void test_bad_envelopes(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *b = tqt_bad_envelopes(&n);
	for (size_t i = 0; i < n; i++) {
		tqi_env e;
		char why[128] = "untouched";
		tq_err err = decode_exact(b[i].data, b[i].len, &e, why, sizeof why, NULL);
		if (err != (tq_err)b[i].want)
			fail_msg("%s: got %s, want %s (%s)", b[i].name, tq_errname(err),
			         tq_errname((tq_err)b[i].want), why);
		assert_true(why[0] != '\0' && strcmp(why, "untouched") != 0);
		/* the same verdict without an explanation buffer */
		assert_int_equal(decode_exact(b[i].data, b[i].len, &e, NULL, 0, NULL), err);
	}
}

static void test_why_is_bounded_and_names_the_field(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *b = tqt_bad_envelopes(&n);
	for (size_t i = 0; i < n; i++) {
		char why[8];
		tqi_env e;
		memset(why, 'z', sizeof why);
		decode_exact(b[i].data, b[i].len, &e, why, 4, NULL);
		assert_true(strlen(why) <= 3);
		assert_memory_equal(why + 4, "zzzz", 4);
		why[0] = 'z';
		decode_exact(b[i].data, b[i].len, &e, why, 1, NULL);
		assert_int_equal(why[0], '\0');
	}
	const uint8_t flags2[] = { 'T', 'Q', 1,  TQI_SUBMIT, 0x96, 0x01, 0xc4, 16, 0,  1,
		                   2,   3,   4,  5,          6,    7,    8,    9,  10, 11,
		                   12,  13,  14, 15,         0xa1, 'f',  0,    0,  2 };
	char why[128];
	tqi_env e;
	assert_int_equal(tqi_env_decode(flags2, sizeof flags2, &e, why, sizeof why), TQ_ERANGE);
	assert_non_null(strstr(why, "SUBMIT"));
	assert_non_null(strstr(why, "flags"));
}

static void test_every_unknown_command(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++) {
		if (protocol_index((uint8_t)c) >= 0)
			continue;
		const uint8_t m[] = { 'T', 'Q', 1, (uint8_t)c, 0x90 };
		tqi_env e;
		assert_int_equal(tqi_env_decode(m, sizeof m, &e, NULL, 0), TQ_ECOMMAND);
	}
}

static void test_every_bad_version_and_magic(void **state)
{
	(void)state;
	for (unsigned v = 0; v < 256; v++) {
		const uint8_t m[] = { 'T', 'Q', (uint8_t)v, TQI_PING, 0x90 };
		tqi_env e;
		assert_int_equal(tqi_env_decode(m, sizeof m, &e, NULL, 0),
		                 v == TQI_VERSION ? TQ_OK : TQ_EVERSION);
	}
	for (unsigned x = 0; x < 256; x++) {
		const uint8_t m0[] = { (uint8_t)x, 'Q', 1, TQI_PING, 0x90 };
		const uint8_t m1[] = { 'T', (uint8_t)x, 1, TQI_PING, 0x90 };
		tqi_env e;
		assert_int_equal(tqi_env_decode(m0, sizeof m0, &e, NULL, 0),
		                 x == 'T' ? TQ_OK : TQ_EMAGIC);
		assert_int_equal(tqi_env_decode(m1, sizeof m1, &e, NULL, 0),
		                 x == 'Q' ? TQ_OK : TQ_EMAGIC);
	}
}

static void test_truncated_at_every_length(void **state)
{
	(void)state;
	size_t n;
	const tqt_env_sample *s = tqt_env_samples(&n);
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(tqi_env_encode(&s[i].env, &w), TQ_OK);
		for (size_t len = 0; len < w.len; len++) {
			tqi_env e;
			char why[128];
			tq_err err = decode_exact(w.data, len, &e, why, sizeof why, NULL);
			if (err != TQ_ETRUNCATED && err != TQ_ELENGTH)
				fail_msg("%s cut to %zu of %zu bytes: got %s (%s)", s[i].name, len,
				         w.len, tq_errname(err), why);
		}
	}
	tqi_wbuf_free(&w);
}

static void test_trailing_bytes(void **state)
{
	(void)state;
	size_t n;
	const tqt_env_sample *s = tqt_env_samples(&n);
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	static const uint8_t tails[][3] = { { 0x00 }, { 0xc0 }, { 0xc1 }, { 0x90 }, { 0xff } };
	for (size_t i = 0; i < n; i++) {
		for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
			assert_int_equal(tqi_env_encode(&s[i].env, &w), TQ_OK);
			assert_int_equal(tqi_wbuf_append(&w, tails[t], 1), 0);
			tqi_env e;
			tq_err err = decode_exact(w.data, w.len, &e, NULL, 0, NULL);
			if (err != TQ_ETRAILING)
				fail_msg("%s + 0x%02x: got %s", s[i].name, tails[t][0],
				         tq_errname(err));
		}
		/* a whole second envelope after the first */
		assert_int_equal(tqi_env_encode(&s[i].env, &w), TQ_OK);
		size_t len;
		uint8_t *first = tqi_wbuf_release(&w, &len);
		assert_non_null(first);
		assert_int_equal(tqi_wbuf_append(&w, first, len), 0);
		assert_int_equal(tqi_wbuf_append(&w, first, len), 0);
		free(first);
		tqi_env e;
		assert_int_equal(decode_exact(w.data, w.len, &e, NULL, 0, NULL), TQ_ETRAILING);
	}
	tqi_wbuf_free(&w);
}

/* A value of each msgpack type, and the field kind that accepts it ('i' and
 * 'f' and 'n' and 'e' no field accepts; 'a' is either list kind). */
static const struct {
	char kind;
	uint8_t len;
	uint8_t b[18];
} replacements[] = {
	{ 'n', 1, { 0xc0 } },
	{ 'b', 1, { 0xc3 } },
	{ 'u', 1, { 0x01 } },
	{ 'i', 1, { 0xff } },
	{ 'f', 5, { 0xca, 0x3f, 0x80, 0, 0 } },
	{ 's', 2, { 0xa1, 'x' } },
	{ 'r', 18, { 0xc4, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 } },
	{ 'a', 3, { 0x91, 0xa1, 'x' } },
	{ 'm', 4, { 0x81, 0xa1, 'x', 0x01 } },
	{ 'e', 3, { 0xd4, 1, 0 } },
	{ 'x', 1, { 0xc1 } }, /* the byte msgpack never uses */
};

/* Every field of every command, replaced by a value of each other type,
 * gives ETYPE (a negative integer for an unsigned field: ERANGE). */
static void test_wrong_type_every_field(void **state)
{
	(void)state;
	size_t n;
	const tqt_env_sample *s = tqt_env_samples(&n);
	tqi_wbuf w, m;
	tqi_wbuf_init(&w);
	tqi_wbuf_init(&m);
	for (size_t i = 0; i < n; i++) {
		const char *kinds = protocol[protocol_index(s[i].env.cmd)].kinds;
		assert_int_equal(tqi_env_encode(&s[i].env, &w), TQ_OK);
		for (size_t f = 0; kinds[f] != '\0'; f++) {
			/* find field f's bytes */
			tq_reader r;
			uint32_t nf;
			const uint8_t *fp = NULL;
			size_t flen = 0;
			tq_reader_init(&r, w.data + TQI_HDR_LEN, w.len - TQI_HDR_LEN);
			assert_int_equal(tq_read_array(&r, &nf), TQ_OK);
			for (size_t k = 0; k <= f; k++)
				assert_int_equal(tq_read_value(&r, &fp, &flen), TQ_OK);
			size_t before = (size_t)(fp - w.data);
			for (size_t v = 0; v < sizeof replacements / sizeof replacements[0]; v++) {
				char rk = replacements[v].kind;
				char fk = kinds[f];
				if (rk == fk || (rk == 'a' && fk == 'l'))
					continue;
				tqi_wbuf_reset(&m);
				tqi_wbuf_append(&m, w.data, before);
				tqi_wbuf_append(&m, replacements[v].b, replacements[v].len);
				tqi_wbuf_append(&m, fp + flen, w.len - before - flen);
				assert_false(m.oom);
				tq_err want = rk == 'i' && fk == 'u' ? TQ_ERANGE : TQ_ETYPE;
				char why[128];
				tqi_env e;
				tq_err err = decode_exact(m.data, m.len, &e, why, sizeof why, NULL);
				if (err != want)
					fail_msg("%s field %zu (%c) as %c: got %s, want %s (%s)",
					         s[i].name, f, fk, rk, tq_errname(err),
					         tq_errname(want), why);
			}
		}
	}
	tqi_wbuf_free(&w);
	tqi_wbuf_free(&m);
}

/* Decoding allocates nothing, so a 5-byte header claiming 16M elements
 * cannot make it reserve memory. */
static void test_decode_never_allocates(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *b = tqt_bad_envelopes(&n);
	for (size_t i = 0; i < n; i++) {
		tqi_env e;
		char why[128];
		allocations = 0;
		tqi_env_decode(b[i].data, b[i].len, &e, why, sizeof why);
		if (allocations != 0)
			fail_msg("%s: decoding allocated %zu times", b[i].name, allocations);
	}
	const tqt_env_sample *s = tqt_env_samples(&n);
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(tqi_env_encode(&s[i].env, &w), TQ_OK);
		tqi_env e;
		allocations = 0;
		assert_int_equal(tqi_env_decode(w.data, w.len, &e, NULL, 0), TQ_OK);
		if (allocations != 0)
			fail_msg("%s: decoding allocated %zu times", s[i].name, allocations);
	}
	tqi_wbuf_free(&w);
	tqi_wbuf_init(&w);
	/* The wrap is in place: an allocation here is counted (through a
	 * volatile pointer, or the compiler may drop the pair). */
	allocations = 0;
	void *volatile p = malloc(1);
	free(p);
	assert_int_equal(allocations, 1);
	/* and so is one inside the library: encoding 4 KiB outgrows the
	 * wbuf's inline bytes */
	const tqt_env_sample *big = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].name, "failed_max") == 0)
			big = &s[i];
	assert_non_null(big);
	allocations = 0;
	assert_int_equal(tqi_env_encode(&big->env, &w), TQ_OK);
	assert_true(allocations > 0);
	tqi_wbuf_free(&w);
}

static void test_huge_counts(void **state)
{
	(void)state;
	/* Every field kind that has a count or a length, claiming up to 4G in
	 * a few bytes. */
	static const struct {
		uint8_t cmd;
		uint8_t b[16];
		uint8_t len;
	} cases[] = {
		{ TQI_SUBMIT, { 0xdd, 0x00, 0xff, 0xff, 0xff }, 5 },
		{ TQI_SUBMIT, { 0xdf, 0x00, 0xff, 0xff, 0xff }, 5 },
		{ TQI_ACCEPTED, { 0x91, 0xc6, 0x01, 0x00, 0x00, 0x00 }, 6 },
		{ TQI_DISCONNECT, { 0x91, 0xdb, 0x00, 0xff, 0xff, 0xff }, 6 },
		{ TQI_DISCONNECT, { 0x91, 0xda, 0xff, 0xff }, 4 },
		{ TQI_DISCONNECT, { 0x91, 0xd9, 0xff }, 3 },
		{ TQI_DEADLINE, { 0x92, 0x01, 0xdd, 0x00, 0xff, 0xff, 0xff }, 7 },
		{ TQI_DEADLINE, { 0x92, 0x01, 0xdc, 0xff, 0xff }, 5 },
		{ TQI_STATS_REPLY, { 0x91, 0xdf, 0x00, 0xff, 0xff, 0xff }, 6 },
		{ TQI_STATS_REPLY, { 0x91, 0x81, 0xa1, 'a', 0xdd, 0, 0xff, 0xff, 0xff }, 9 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t m[4 + 16] = { 'T', 'Q', 1, cases[i].cmd };
		memcpy(m + 4, cases[i].b, cases[i].len);
		tqi_env e;
		tq_err err = decode_exact(m, 4u + cases[i].len, &e, NULL, 0, NULL);
		if (err != TQ_ELENGTH)
			fail_msg("case %zu: got %s", i, tq_errname(err));
	}
}

static void test_limits(void **state)
{
	(void)state;
	char name[TQI_MAX_NAME + 1], text[TQI_MAX_TEXT + 1];
	memset(name, 'n', sizeof name);
	memset(text, 't', sizeof text);
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);

	/* HELLO name: 255 fits, 256 does not */
	for (size_t len = TQI_MAX_NAME; len <= TQI_MAX_NAME + 1; len++) {
		tq_buf_reset(b);
		tq_pack_array(b, 3);
		tq_pack_uint(b, 1);
		tq_pack_strn(b, name, len);
		tq_pack_uint(b, 0);
		assert_int_equal(decode_built(TQI_HELLO, b, NULL, 0),
		                 len <= TQI_MAX_NAME ? TQ_OK : TQ_ERANGE);
	}
	/* SUBMIT function: 1..255 */
	static const size_t flens[] = { 0, 1, TQI_MAX_NAME, TQI_MAX_NAME + 1 };
	for (size_t i = 0; i < 4; i++) {
		tq_buf_reset(b);
		tq_pack_array(b, 6);
		tq_pack_uint(b, 1);
		tq_pack_bin(b, ref_a, 16);
		tq_pack_strn(b, name, flens[i]);
		tq_pack_uint(b, 0);
		tq_pack_uint(b, 0);
		tq_pack_uint(b, 0);
		assert_int_equal(decode_built(TQI_SUBMIT, b, NULL, 0),
		                 flens[i] >= 1 && flens[i] <= TQI_MAX_NAME ? TQ_OK : TQ_ERANGE);
	}
	/* FAILED text: 4096 fits, 4097 does not */
	for (size_t len = TQI_MAX_TEXT; len <= TQI_MAX_TEXT + 1; len++) {
		tq_buf_reset(b);
		tq_pack_array(b, 5);
		tq_pack_bin(b, ref_a, 16);
		tq_pack_uint(b, TQ_EFAILED);
		tq_pack_strn(b, text, len);
		tq_pack_str(b, "w");
		tq_pack_uint(b, 1);
		assert_int_equal(decode_built(TQI_FAILED, b, NULL, 0),
		                 len <= TQI_MAX_TEXT ? TQ_OK : TQ_ERANGE);
	}
	/* READY functions: 256 fit, 257 do not; a name of 256 bytes does not */
	for (uint32_t count = TQI_MAX_FUNCTIONS; count <= TQI_MAX_FUNCTIONS + 1; count++) {
		tq_buf_reset(b);
		tq_pack_array(b, 5);
		tq_pack_str(b, "w");
		tq_pack_uint(b, 1);
		tq_pack_uint(b, 1);
		tq_pack_uint(b, 1000);
		tq_pack_array(b, count);
		for (uint32_t i = 0; i < count; i++)
			tq_pack_str(b, "f");
		assert_int_equal(decode_built(TQI_READY, b, NULL, 0),
		                 count <= TQI_MAX_FUNCTIONS ? TQ_OK : TQ_ERANGE);
	}
	tq_buf_reset(b);
	tq_pack_array(b, 5);
	tq_pack_str(b, "w");
	tq_pack_uint(b, 1);
	tq_pack_uint(b, 1);
	tq_pack_uint(b, 1000);
	tq_pack_array(b, 2);
	tq_pack_str(b, "f");
	tq_pack_strn(b, name, TQI_MAX_NAME + 1);
	assert_int_equal(decode_built(TQI_READY, b, NULL, 0), TQ_ERANGE);
	/* READY capacity: 1..4*65535 */
	for (uint64_t cap = 4 * TQI_MAX_CONCURRENCY; cap <= 4 * TQI_MAX_CONCURRENCY + 1; cap++) {
		tq_buf_reset(b);
		tq_pack_array(b, 5);
		tq_pack_str(b, "w");
		tq_pack_uint(b, 1);
		tq_pack_uint(b, cap);
		tq_pack_uint(b, 1000);
		tq_pack_array(b, 1);
		tq_pack_str(b, "f");
		assert_int_equal(decode_built(TQI_READY, b, NULL, 0),
		                 cap <= 4 * TQI_MAX_CONCURRENCY ? TQ_OK : TQ_ERANGE);
	}
	/* DEADLINE refs: 4097 do not fit (with every byte present) */
	tq_buf_reset(b);
	tq_pack_array(b, 2);
	tq_pack_uint(b, 10);
	tq_pack_array(b, TQI_MAX_DEADLINE_REFS + 1);
	for (uint32_t i = 0; i < TQI_MAX_DEADLINE_REFS + 1; i++)
		tq_pack_bin(b, ref_a, 16);
	assert_int_equal(decode_built(TQI_DEADLINE, b, NULL, 0), TQ_ERANGE);
	/* a 32-bit field given 2^32 - 1 and 2^32 */
	for (uint64_t v = UINT32_MAX; v <= (uint64_t)UINT32_MAX + 1; v++) {
		tq_buf_reset(b);
		tq_pack_array(b, 2);
		tq_pack_bin(b, ref_a, 16);
		tq_pack_uint(b, v);
		assert_int_equal(decode_built(TQI_NOTICE, b, NULL, 0),
		                 v <= UINT32_MAX ? TQ_OK : TQ_ERANGE);
	}
	assert_int_equal(tq_buf_error(b), TQ_OK);
	tq_buf_destroy(&b);
}

static void test_stats_depth(void **state)
{
	(void)state;
	tq_buf *b;
	int failures = 0;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	/* the stats map and 7 more levels inside it: fine; 8 more: too deep */
	for (int depth = 1; depth <= TQ_MAX_DEPTH + 2; depth++) {
		for (int empty = 0; empty < 2; empty++) {
			tq_buf_reset(b);
			tq_pack_array(b, 1);
			tq_pack_map(b, 1);
			tq_pack_str(b, "k");
			for (int d = 1; d < depth - 1; d++)
				tq_pack_array(b, 1);
			if (depth > 1) {
				/* the innermost container: empty, or holding 1 */
				tq_pack_array(b, empty ? 0 : 1);
				if (!empty)
					tq_pack_uint(b, 1);
			} else {
				tq_pack_uint(b, 1);
			}
			char why[128];
			tq_err err = decode_built(TQI_STATS_REPLY, b, why, sizeof why);
			tq_err want = depth <= TQI_STATS_DEPTH ? TQ_OK : TQ_EDEPTH;
			if (err != want) {
				print_error("stats %d deep (innermost %s): got %s, want %s (%s)\n",
				            depth, empty ? "empty" : "not empty", tq_errname(err),
				            tq_errname(want), why);
				failures++;
			}
		}
	}
	tq_buf_destroy(&b);
	assert_int_equal(failures, 0);
}

/* ---- the encoder refuses what the decoder would reject ---------------- */

static void test_encode_refuses_out_of_limit_fields(void **state)
{
	(void)state;
	static char long_name[TQI_MAX_NAME + 1];
	static char long_text[TQI_MAX_TEXT + 1];
	static const uint8_t one_fn[] = { 0xa1, 'f' };
	static const uint8_t one_ref[] = { 0xc4, 16, 0, 1,  2,  3,  4,  5,  6,
		                           7,    8,  9, 10, 11, 12, 13, 14, 15 };
	const tqi_raw fns = { one_fn, sizeof one_fn, 1 };
	const tqi_raw refs = { one_ref, sizeof one_ref, 1 };
	memset(long_name, 'n', sizeof long_name);
	memset(long_text, 't', sizeof long_text);
	const struct {
		const char *what;
		tqi_env e;
	} cases[] = {
		{ "unknown command", { .cmd = 0x11 } },
		{ "check without refs", { .cmd = TQI_CHECK, .mark = 1 } },
		{ "refused command 0", { .cmd = TQI_REFUSED, .command = 0 } },
		{ "refused command 0x7f", { .cmd = TQI_REFUSED, .command = 0x7f } },
		{ "command >= 128", { .cmd = 0x80 } },
		{ "session 0", { .cmd = TQI_HELLO, .session = 0 } },
		{ "name 256", { .cmd = TQI_HELLO, .session = 1, .name = { long_name, 256 } } },
		{ "name NULL", { .cmd = TQI_HELLO, .session = 1, .name = { NULL, 3 } } },
		{ "heartbeat 9", { .cmd = TQI_WELCOME, .heartbeat_ms = 9 } },
		{ "heartbeat 60001", { .cmd = TQI_WELCOME, .heartbeat_ms = 60001 } },
		{ "function empty", { .cmd = TQI_SUBMIT, .session = 1, .function = { "", 0 } } },
		{ "function 256",
		  { .cmd = TQI_SUBMIT, .session = 1, .function = { long_name, 256 } } },
		{ "retries 256",
		  { .cmd = TQI_SUBMIT, .session = 1, .function = { "f", 1 }, .retries = 256 } },
		{ "flags 2",
		  { .cmd = TQI_SUBMIT, .session = 1, .function = { "f", 1 }, .flags = 2 } },
		{ "text 4097", { .cmd = TQI_ERROR, .text = { long_text, TQI_MAX_TEXT + 1 } } },
		{ "grace over", { .cmd = TQI_CANCEL, .grace_ms = TQI_MAX_GRACE_MS + 1 } },
		{ "concurrency 0",
		  { .cmd = TQI_READY, .capacity = 1, .heartbeat_ms = 10, .functions = fns } },
		{ "concurrency 65536",
		  { .cmd = TQI_READY,
		    .concurrency = 65536,
		    .capacity = 1,
		    .heartbeat_ms = 10,
		    .functions = fns } },
		{ "capacity 0",
		  { .cmd = TQI_READY, .concurrency = 1, .heartbeat_ms = 10, .functions = fns } },
		{ "no functions",
		  { .cmd = TQI_READY, .concurrency = 1, .capacity = 1, .heartbeat_ms = 10 } },
		{ "257 functions",
		  { .cmd = TQI_READY,
		    .concurrency = 1,
		    .capacity = 1,
		    .heartbeat_ms = 10,
		    .functions = { one_fn, sizeof one_fn, 257 } } },
		{ "no refs", { .cmd = TQI_DEADLINE } },
		{ "4097 refs", { .cmd = TQI_DEADLINE, .refs = { one_ref, sizeof one_ref, 4097 } } },
	};
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tq_err err = tqi_env_encode(&cases[i].e, &w);
		if (err != TQ_EINVAL)
			fail_msg("%s: encode gave %s", cases[i].what, tq_errname(err));
	}
	/* The same commands with the fields in range are fine. */
	tqi_env ok = { .cmd = TQI_READY,
		       .concurrency = 1,
		       .capacity = 1,
		       .heartbeat_ms = 10,
		       .functions = fns };
	assert_int_equal(tqi_env_encode(&ok, &w), TQ_OK);
	ok = (tqi_env){ .cmd = TQI_DEADLINE, .refs = refs };
	assert_int_equal(tqi_env_encode(&ok, &w), TQ_OK);
	tqi_wbuf_free(&w);
}

/* The list and map fields are passed to the encoder as raw msgpack; the
 * header promises that it never emits what the decoder would reject. */
static void test_encode_refuses_bad_raw_fields(void **state)
{
	(void)state;
	/* str16 of 256 bytes */
	static uint8_t long_fn[3 + TQI_MAX_NAME + 1] = { 0xda, (TQI_MAX_NAME + 1) >> 8,
		                                         (TQI_MAX_NAME + 1) & 0xff };
	memset(long_fn + 3, 'f', TQI_MAX_NAME + 1);
	static const uint8_t empty_fn[] = { 0xa0 };
	static const uint8_t int_fn[] = { 0x01 };
	static const uint8_t one_fn[] = { 0xa1, 'f' };
	static const uint8_t short_ref[] = { 0xc4, 2, 0, 1 };
	static const uint8_t not_map[] = { 0x91, 0x01 };
	static const uint8_t two_values[] = { 0x80, 0x80 };
	static const uint8_t truncated_map[] = { 0x81, 0xa1 };
	static uint8_t deep_map[3 * 9 + 1];
	for (int i = 0; i < 9; i++)
		memcpy(deep_map + 3 * i, "\x81\xa1k", 3);
	deep_map[sizeof deep_map - 1] = 0x01;
	const struct {
		const char *what;
		tqi_env e;
	} cases[] = {
		{ "function name of 256 bytes",
		  { .cmd = TQI_READY,
		    .concurrency = 1,
		    .capacity = 1,
		    .heartbeat_ms = 10,
		    .functions = { long_fn, sizeof long_fn, 1 } } },
		{ "empty function name",
		  { .cmd = TQI_READY,
		    .concurrency = 1,
		    .capacity = 1,
		    .heartbeat_ms = 10,
		    .functions = { empty_fn, sizeof empty_fn, 1 } } },
		{ "function name not a string",
		  { .cmd = TQI_READY,
		    .concurrency = 1,
		    .capacity = 1,
		    .heartbeat_ms = 10,
		    .functions = { int_fn, sizeof int_fn, 1 } } },
		{ "count larger than the list",
		  { .cmd = TQI_READY,
		    .concurrency = 1,
		    .capacity = 1,
		    .heartbeat_ms = 10,
		    .functions = { one_fn, sizeof one_fn, 2 } } },
		{ "ref of 2 bytes",
		  { .cmd = TQI_DEADLINE, .refs = { short_ref, sizeof short_ref, 1 } } },
		{ "stats not a map",
		  { .cmd = TQI_STATS_REPLY, .stats = { not_map, sizeof not_map, 1 } } },
		{ "stats two values",
		  { .cmd = TQI_STATS_REPLY, .stats = { two_values, sizeof two_values, 1 } } },
		{ "stats truncated",
		  { .cmd = TQI_STATS_REPLY, .stats = { truncated_map, sizeof truncated_map, 1 } } },
		{ "stats 9 deep",
		  { .cmd = TQI_STATS_REPLY, .stats = { deep_map, sizeof deep_map, 1 } } },
	};
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	int failures = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tq_err err = tqi_env_encode(&cases[i].e, &w);
		tqi_env d;
		char why[128] = "";
		tq_err derr =
		    err == TQ_OK ? tqi_env_decode(w.data, w.len, &d, why, sizeof why) : TQ_OK;
		if (err != TQ_EINVAL) {
			print_error("%s: encode gave %s, and its output decodes as %s (%s)\n",
			            cases[i].what, tq_errname(err), tq_errname(derr), why);
			failures++;
		}
	}
	tqi_wbuf_free(&w);
	assert_int_equal(failures, 0);
}

/* The decoder's error codes are distinct: with a bit each, their sum is
 * their union only if no two are the same. */
#define BIT_(e) (1ULL << (e))
_Static_assert(BIT_(TQ_EMAGIC) + BIT_(TQ_EVERSION) + BIT_(TQ_ECOMMAND) + BIT_(TQ_ETRUNCATED) +
                       BIT_(TQ_ETRAILING) + BIT_(TQ_ETYPE) + BIT_(TQ_EDEPTH) + BIT_(TQ_ELENGTH) +
                       BIT_(TQ_ERANGE) ==
                   (BIT_(TQ_EMAGIC) | BIT_(TQ_EVERSION) | BIT_(TQ_ECOMMAND) | BIT_(TQ_ETRUNCATED) |
                    BIT_(TQ_ETRAILING) | BIT_(TQ_ETYPE) | BIT_(TQ_EDEPTH) | BIT_(TQ_ELENGTH) |
                    BIT_(TQ_ERANGE)),
               "the decoder's error codes are not distinct");
#undef BIT_

/* Whatever the decoder says is one of the decoder's errors. */
/* A malformed command's ref is found when it can be read, and only then:
 * the broker refuses such a command under its ref. */
static void test_peek_ref(void **state)
{
	(void)state;
	const tqi_role cl = TQI_ROLE_CLIENT, br = TQI_ROLE_BROKER, wk = TQI_ROLE_WORKER;
#define R16 0xc4, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
	/* SUBMIT [session 1, ref, "f", "soon" (not a uint), 0, 0] */
	static const uint8_t bad_timeout[] = { 'T', 'Q',  1,   TQI_SUBMIT, 0x96, 0x01, R16, 0xa1,
		                               'f', 0xa4, 's', 'o',        'o',  'n',  0,   0 };
	/* the same cut right after the ref */
	static const uint8_t cut[] = { 'T', 'Q', 1, TQI_SUBMIT, 0x96, 0x01, R16 };
	/* a 15-byte ref */
	static const uint8_t short_ref[] = { 'T', 'Q', 1,  TQI_SUBMIT, 0x96, 0x01, 0xc4, 15,
		                             1,   2,   3,  4,          5,    6,    7,    8,
		                             9,   10,  11, 12,         13,   14,   15 };
	/* CANCEL [ref, "x"] */
	static const uint8_t cancel[] = { 'T', 'Q', 1, TQI_CANCEL, 0x92, R16, 0xa1, 'x' };
	/* HELLO carries no ref */
	static const uint8_t hello[] = { 'T', 'Q', 1, TQI_HELLO, 0x93, 0x01, 0xa0, 'x' };
	/* a session that is not a msgpack value at all before the ref */
	static const uint8_t bad_before[] = { 'T', 'Q', 1, TQI_SUBMIT, 0x96, 0xc1, R16 };
	/* version 2 */
	static const uint8_t v2[] = { 'T', 'Q', 2, TQI_CANCEL, 0x92, R16, 0x00 };
#undef R16
	uint8_t cmd = 0, ref[TQI_REF_LEN];
	assert_true(tqi_env_peek_ref(bad_timeout, sizeof bad_timeout, cl, br, &cmd, ref));
	assert_int_equal(cmd, TQI_SUBMIT);
	assert_int_equal(ref[0], 1);
	assert_int_equal(ref[15], 16);
	assert_true(tqi_env_peek_ref(cut, sizeof cut, cl, br, &cmd, ref));
	assert_true(tqi_env_peek_ref(cancel, sizeof cancel, cl, br, &cmd, ref));
	assert_int_equal(cmd, TQI_CANCEL);
	assert_false(tqi_env_peek_ref(cut, sizeof cut - 1, cl, br, &cmd, ref));
	assert_false(tqi_env_peek_ref(short_ref, sizeof short_ref, cl, br, &cmd, ref));
	assert_false(tqi_env_peek_ref(hello, sizeof hello, cl, br, &cmd, ref));
	assert_false(tqi_env_peek_ref(bad_before, sizeof bad_before, cl, br, &cmd, ref));
	assert_false(tqi_env_peek_ref(v2, sizeof v2, cl, br, &cmd, ref));
	/* not on the route: a worker's SUBMIT */
	assert_false(tqi_env_peek_ref(bad_timeout, sizeof bad_timeout, wk, br, &cmd, ref));
	/* every prefix of every hostile sample: read within its bytes (ASan) */
	size_t n;
	const tqt_bytes *b = tqt_bad_envelopes(&n);
	for (size_t i = 0; i < n; i++)
		for (size_t len = 0; len <= b[i].len; len++)
			(void)tqi_env_peek_ref(b[i].data, len, cl, br, &cmd, ref);
}

static void test_decoder_errors_are_distinct(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *b = tqt_bad_envelopes(&n);
	bool seen[TQ_ESYS + 1] = { false };
	for (size_t i = 0; i < n; i++) {
		tqi_env e;
		tq_err err = tqi_env_decode(b[i].data, b[i].len, &e, NULL, 0);
		assert_true(is_decoder_error(err));
		seen[err] = true;
	}
	/* each fault of the list has an entry in the table */
	static const tq_err all[] = { TQ_EMAGIC,     TQ_EVERSION,  TQ_ECOMMAND,
		                      TQ_ETRUNCATED, TQ_ETRAILING, TQ_ETYPE,
		                      TQ_EDEPTH,     TQ_ELENGTH,   TQ_ERANGE };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (!seen[all[i]])
			fail_msg("no hostile sample gives %s", tq_errname(all[i]));
	/* and they are distinct: the codes (checked when compiling, above),
	 * and what a peer is told of each, its name and its description */
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		for (size_t j = i + 1; j < sizeof all / sizeof all[0]; j++) {
			assert_string_not_equal(tq_errname(all[i]), tq_errname(all[j]));
			assert_string_not_equal(tq_strerror(all[i]), tq_strerror(all[j]));
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_names),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_round_trip_every_command),
		cmocka_unit_test(test_round_trip_lists),
		cmocka_unit_test(test_empty_stats_encode_as_empty_map),
		cmocka_unit_test(test_encoding_is_msgpack_c_s),
		cmocka_unit_test(test_bad_envelopes),
		cmocka_unit_test(test_why_is_bounded_and_names_the_field),
		cmocka_unit_test(test_every_unknown_command),
		cmocka_unit_test(test_every_bad_version_and_magic),
		cmocka_unit_test(test_truncated_at_every_length),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_wrong_type_every_field),
		cmocka_unit_test(test_decode_never_allocates),
		cmocka_unit_test(test_huge_counts),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_stats_depth),
		cmocka_unit_test(test_encode_refuses_out_of_limit_fields),
		cmocka_unit_test(test_encode_refuses_bad_raw_fields),
		cmocka_unit_test(test_decoder_errors_are_distinct),
		cmocka_unit_test(test_peek_ref),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
