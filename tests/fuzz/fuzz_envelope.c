/*
 * fuzz_envelope.c - tqi_env_decode and tqi_env_decode_from on any bytes.
 *
 * Oracles: a rejection is one of the decoder's own errors and says why;
 * the route-checking decoder accepts exactly what the plain one accepts
 * and the route allows; the frame splitter (tqi_cmd_split) cuts any input
 * into commands that tile it, each inside it, finds the end of every
 * envelope the decoder accepts (and its missing payload), ends an envelope
 * where the prefix decoder (the reader's fast path) does, and takes the
 * rest of a frame only with a command whose end it cannot find;
 * everything decoded points inside the input; the list fields iterate to
 * their counts; a round trip - what the decoder accepts, the encoder
 * accepts, and decoding that gives the same fields again, and encoding
 * those gives the same bytes again; and the decoder's fast path for the
 * forms tq writes changes nothing: with it turned off, every input gets
 * the same error and explanation, or the same fields.
 */
#include "tests/fuzz/fuzz.h"

#include "proto/wire.h"
#include "tests/unit/messages.h"

#include <string.h>

static int is_decoder_error(tq_err e)
{
	return e == TQ_EMAGIC || e == TQ_EVERSION || e == TQ_ECOMMAND || e == TQ_ETRUNCATED ||
	       e == TQ_ETRAILING || e == TQ_ETYPE || e == TQ_EDEPTH || e == TQ_ELENGTH ||
	       e == TQ_ERANGE;
}

static void within(const void *p, size_t n, const uint8_t *data, size_t size)
{
	if (n == 0)
		return;
	const uint8_t *b = p;
	FUZZ_CHECK(b >= data && b + n <= data + size);
}

/* Every route a message travels: the broker's two sides, both ways. */
static const tqi_role routes[][2] = {
	{ TQI_ROLE_CLIENT, TQI_ROLE_BROKER },
	{ TQI_ROLE_BROKER, TQI_ROLE_CLIENT },
	{ TQI_ROLE_WORKER, TQI_ROLE_BROKER },
	{ TQI_ROLE_BROKER, TQI_ROLE_WORKER },
};

/* decode_from agrees with decode plus the route table. */
static void check_routes(const uint8_t *data, size_t size, tq_err plain, const tqi_env *e)
{
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		tqi_env r;
		char why[160];
		tq_err err = tqi_env_decode_from(data, size, routes[i][0], routes[i][1], &r, why,
		                                 sizeof why);
		if (err != TQ_OK) {
			FUZZ_CHECK(is_decoder_error(err) && why[0] != '\0');
			FUZZ_CHECK(plain != TQ_OK ||
			           !tqi_cmd_allowed(e->cmd, routes[i][0], routes[i][1]));
		} else {
			FUZZ_CHECK(plain == TQ_OK &&
			           tqi_cmd_allowed(e->cmd, routes[i][0], routes[i][1]));
			FUZZ_CHECK(tqt_env_equal(e, &r));
		}
	}
}

/* Cuts data into commands as a reader does: they tile it, each inside
 * it, and each that ends before the frame does had a known header. */
static void split_frame(const uint8_t *data, size_t size)
{
	size_t at = 0;
	while (at < size) {
		tqi_split s;
		tqi_cmd_split(data + at, size - at, &s);
		FUZZ_CHECK(s.len >= 1 && s.len <= size - at);
		FUZZ_CHECK(s.env_len <= s.len);
		if (s.has_payload)
			FUZZ_CHECK(s.payload_off >= s.env_len &&
			           s.payload_off + s.payload_len == s.len);
		if (s.len < size - at)
			FUZZ_CHECK(s.env_len >= TQI_HDR_LEN && tqi_cmd_name(data[at + 3]) != NULL);
		tqi_env e;
		(void)tqi_env_decode(data + at, s.env_len, &e, NULL, 0);
		/* the reader's fast path - decoding first - ends the envelope
		 * where the splitter does */
		size_t used;
		if (tqi_env_decode_prefix(data + at, size - at, &e, &used) == TQ_OK)
			FUZZ_CHECK(used == s.env_len);
		at += s.len;
	}
}

/* The general reader alone decides as the fast path does. */
static void check_fast_path(const uint8_t *data, size_t size, tq_err err, const tqi_env *e,
                            const char *why)
{
	tqi_env pfast, slow;
	char slow_why[160];
	size_t used = 0, slow_used = 0;
	tq_err perr = tqi_env_decode_prefix(data, size, &pfast, &used);
	tqi_env_fast_path(false);
	tq_err serr = tqi_env_decode(data, size, &slow, slow_why, sizeof slow_why);
	tqi_env pslow;
	tq_err pserr = tqi_env_decode_prefix(data, size, &pslow, &slow_used);
	tqi_env_fast_path(true);
	FUZZ_CHECK(serr == err && strcmp(why, slow_why) == 0);
	if (err == TQ_OK)
		FUZZ_CHECK(tqt_env_equal(e, &slow));
	FUZZ_CHECK(pserr == perr && (perr != TQ_OK || used == slow_used));
	if (perr == TQ_OK)
		FUZZ_CHECK(tqt_env_equal(&pfast, &pslow));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tqi_env e;
	char why[160];
	tq_err err = tqi_env_decode(data, size, &e, why, sizeof why);
	check_fast_path(data, size, err, &e, why);
	check_routes(data, size, err, &e);
	split_frame(data, size);
	tqi_split sp;
	tqi_cmd_split(data, size, &sp);
	if (err != TQ_OK) {
		FUZZ_CHECK(is_decoder_error(err));
		FUZZ_CHECK(why[0] != '\0');
		/* a refused header: its end is unknown, all of it goes */
		if (err == TQ_EMAGIC || err == TQ_EVERSION || err == TQ_ECOMMAND)
			FUZZ_CHECK(sp.len == size && sp.env_len == size);
		return 0;
	}
	/* the whole input is one envelope: the splitter finds its end there,
	 * and a payload missing after it */
	FUZZ_CHECK(sp.env_len == size);
	tqi_env pe;
	size_t used = 0;
	FUZZ_CHECK(tqi_env_decode_prefix(data, size, &pe, &used) == TQ_OK && used == size);
	FUZZ_CHECK(tqi_cmd_has_payload(e.cmd) ? sp.payload_missing : sp.len == size);
	FUZZ_CHECK(tqi_cmd_name(e.cmd) != NULL);
	FUZZ_CHECK(e.name.n <= TQI_MAX_NAME && e.function.n <= TQI_MAX_NAME);
	FUZZ_CHECK(e.text.n <= TQI_MAX_TEXT);
	within(e.name.p, e.name.n, data, size);
	within(e.function.p, e.function.n, data, size);
	within(e.text.p, e.text.n, data, size);
	within(e.functions.p, e.functions.len, data, size);
	within(e.refs.p, e.refs.len, data, size);
	within(e.stats.p, e.stats.len, data, size);

	size_t cur = 0, count = 0;
	tqi_str s;
	while (tqi_raw_next_str(&e.functions, &cur, &s)) {
		within(s.p, s.n, data, size);
		count++;
	}
	FUZZ_CHECK(count == e.functions.count && cur == e.functions.len);
	const uint8_t *ref;
	cur = count = 0;
	while (tqi_raw_next_ref(&e.refs, &cur, &ref)) {
		within(ref, TQI_REF_LEN, data, size);
		count++;
	}
	FUZZ_CHECK(count == e.refs.count && cur == e.refs.len);

	tqi_wbuf w;
	tqi_wbuf_init(&w);
	FUZZ_CHECK(tqi_env_encode(&e, &w) == TQ_OK);
	tqi_env again;
	FUZZ_CHECK(tqi_env_decode(w.data, w.len, &again, why, sizeof why) == TQ_OK);
	FUZZ_CHECK(tqt_env_equal(&e, &again));
	tqi_wbuf w2;
	tqi_wbuf_init(&w2);
	FUZZ_CHECK(tqi_env_encode(&again, &w2) == TQ_OK);
	FUZZ_CHECK(w2.len == w.len && memcmp(w2.data, w.data, w.len) == 0);
	tqi_wbuf_free(&w2);
	tqi_wbuf_free(&w);
	return 0;
}
