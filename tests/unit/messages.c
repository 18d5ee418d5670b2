/*
 * messages.c - the sample messages of the codec tests (see messages.h).
 *
 * Most entries are literal bytes; the few that are too long to write out
 * (names and texts at their limits, the deepest legal nesting) are built
 * once into static storage on first use, so nothing here allocates and the
 * tables live as long as the process.
 */
#include "tests/unit/messages.h"

#include "tq/value.h"

#include <string.h>

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })
#define TEXT(s) (const uint8_t *)(s), sizeof(s) - 1
/* clang-format off */
#define STR(s) { (s), sizeof(s) - 1 }
/* clang-format on */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- envelopes that round-trip --------------------------------------- */

/* clang-format off */
#define REF_A { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }
#define REF_B { 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, \
	        0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff }
/* clang-format on */

/* Two functions, "add" and "echo", as a READY list holds them. */
static const uint8_t two_functions[] = { 0xa3, 'a', 'd', 'd', 0xa4, 'e', 'c', 'h', 'o' };
/* Two refs as a DEADLINE list holds them. */
static const uint8_t two_refs[] = { 0xc4, 16,   0,    1,    2,    3,    4,    5,    6,
	                            7,    8,    9,    10,   11,   12,   13,   14,   15,
	                            0xc4, 16,   0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6,
	                            0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff };
/* {"queued": 3, "workers": {"w1": {"busy": 1, "load": 0.5}}, "up": true} */
static const uint8_t stats_map[] = { 0x83, 0xa6, 'q',  'u',  'e',  'u',  'e', 'd',  0x03, 0xa7,
	                             'w',  'o',  'r',  'k',  'e',  'r',  's', 0x81, 0xa2, 'w',
	                             '1',  0x82, 0xa4, 'b',  'u',  's',  'y', 0x01, 0xa4, 'l',
	                             'o',  'a',  'd',  0xcb, 0x3f, 0xe0, 0,   0,    0,    0,
	                             0,    0,    0xa2, 'u',  'p',  0xc3 };
static const uint8_t empty_map[] = { 0x80 };

static char long_name[TQI_MAX_NAME];
static char long_text[TQI_MAX_TEXT];
static uint8_t max_functions[TQI_MAX_FUNCTIONS * 5]; /* "f000".."f255" */
static uint8_t deep_stats[TQI_STATS_DEPTH * 3 + 1];  /* {"a":{"a":...1}}, 8 maps */

static tqt_env_sample env_samples[] = {
	{ "hello",
	  { .cmd = TQI_HELLO,
	    .session = 0x0123456789abcdefULL,
	    .name = STR("client-1"),
	    .mark = 42 } },
	{ "hello_unnamed", { .cmd = TQI_HELLO, .session = 1 } },
	{ "hello_max", { .cmd = TQI_HELLO, .session = UINT64_MAX, .mark = UINT64_MAX } },
	{ "welcome",
	  { .cmd = TQI_WELCOME,
	    .instance = REF_B,
	    .resumed = true,
	    .heartbeat_ms = 1000,
	    .mark = 42 } },
	{ "welcome_min", { .cmd = TQI_WELCOME, .heartbeat_ms = TQI_MIN_HEARTBEAT_MS } },
	{ "welcome_max",
	  { .cmd = TQI_WELCOME,
	    .instance = REF_A,
	    .heartbeat_ms = TQI_MAX_HEARTBEAT_MS,
	    .mark = UINT64_MAX } },
	{ "submit",
	  { .cmd = TQI_SUBMIT,
	    .session = 7,
	    .ref = REF_A,
	    .function = STR("add"),
	    .timeout_ms = 5000,
	    .retries = 3,
	    .flags = TQI_SUBMIT_DETACHED } },
	{ "submit_max",
	  { .cmd = TQI_SUBMIT,
	    .session = UINT64_MAX,
	    .ref = REF_B,
	    .timeout_ms = UINT64_MAX,
	    .retries = TQI_MAX_RETRIES } },
	{ "accepted", { .cmd = TQI_ACCEPTED, .ref = REF_A } },
	{ "result", { .cmd = TQI_RESULT, .ref = REF_A, .name = STR("worker-a"), .attempt = 2 } },
	{ "failed",
	  { .cmd = TQI_FAILED,
	    .ref = REF_A,
	    .code = TQ_EFAILED,
	    .text = STR("boom"),
	    .name = STR("w"),
	    .attempt = 1 } },
	{ "failed_max",
	  { .cmd = TQI_FAILED, .ref = REF_B, .code = UINT32_MAX, .attempt = UINT32_MAX } },
	{ "notice", { .cmd = TQI_NOTICE, .ref = REF_A, .code = TQ_EWORKERLOST } },
	{ "cancel", { .cmd = TQI_CANCEL, .ref = REF_A, .grace_ms = 2000 } },
	{ "cancel_max", { .cmd = TQI_CANCEL, .ref = REF_B, .grace_ms = TQI_MAX_GRACE_MS } },
	{ "detach", { .cmd = TQI_DETACH, .ref = REF_B } },
	{ "deadline",
	  { .cmd = TQI_DEADLINE, .timeout_ms = 100, .refs = { two_refs, sizeof two_refs, 2 } } },
	{ "stats", { .cmd = TQI_STATS } },
	{ "stats_reply", { .cmd = TQI_STATS_REPLY, .stats = { stats_map, sizeof stats_map, 1 } } },
	{ "stats_reply_empty",
	  { .cmd = TQI_STATS_REPLY, .stats = { empty_map, sizeof empty_map, 1 } } },
	{ "stats_reply_deep", { .cmd = TQI_STATS_REPLY } },
	{ "heartbeat", { .cmd = TQI_HEARTBEAT, .instance = REF_B } },
	{ "check", { .cmd = TQI_CHECK, .mark = 9, .refs = { two_refs, sizeof two_refs, 2 } } },
	{ "checked", { .cmd = TQI_CHECKED, .mark = 9, .refs = { two_refs, sizeof two_refs, 2 } } },
	{ "checked_none", { .cmd = TQI_CHECKED, .mark = UINT64_MAX } },
	{ "refused",
	  { .cmd = TQI_REFUSED,
	    .ref = REF_A,
	    .command = TQI_SUBMIT,
	    .code = TQ_EEXIST,
	    .text = STR("task reference already in use") } },
	{ "ready",
	  { .cmd = TQI_READY,
	    .name = STR("worker-a"),
	    .concurrency = 4,
	    .capacity = 8,
	    .heartbeat_ms = 1000,
	    .functions = { two_functions, sizeof two_functions, 2 } } },
	{ "ready_max",
	  { .cmd = TQI_READY,
	    .concurrency = TQI_MAX_CONCURRENCY,
	    .capacity = 4 * TQI_MAX_CONCURRENCY,
	    .heartbeat_ms = TQI_MAX_HEARTBEAT_MS } },
	{ "task",
	  { .cmd = TQI_TASK,
	    .ref = REF_A,
	    .function = STR("add"),
	    .attempt = 1,
	    .timeout_ms = 250,
	    .name = STR("client-1") } },
	{ "task_no_deadline", { .cmd = TQI_TASK, .ref = REF_B, .function = STR("f") } },
	{ "done", { .cmd = TQI_DONE, .ref = REF_A, .attempt = 1 } },
	{ "done_failed",
	  { .cmd = TQI_DONE,
	    .ref = REF_A,
	    .attempt = 3,
	    .code = TQ_EFAILED,
	    .text = STR("handler failed") } },
	{ "ping", { .cmd = TQI_PING } },
	{ "drain", { .cmd = TQI_DRAIN } },
	{ "bye", { .cmd = TQI_BYE } },
	{ "disconnect", { .cmd = TQI_DISCONNECT, .text = STR("shutting down") } },
	{ "capacity", { .cmd = TQI_CAPACITY, .capacity = 18 } },
	{ "error", { .cmd = TQI_ERROR, .code = TQ_EPROTO, .text = STR("bad envelope") } },
};

static tqi_env *env_sample(const char *name)
{
	for (size_t i = 0; i < COUNT(env_samples); i++)
		if (strcmp(env_samples[i].name, name) == 0)
			return &env_samples[i].env;
	return NULL;
}

static void build_env_samples(void)
{
	memset(long_name, 'n', sizeof long_name);
	memset(long_text, 't', sizeof long_text);
	for (unsigned i = 0; i < TQI_MAX_FUNCTIONS; i++) {
		uint8_t *f = max_functions + 5 * i;
		f[0] = 0xa4;
		f[1] = 'f';
		f[2] = (uint8_t)('0' + i / 100);
		f[3] = (uint8_t)('0' + i / 10 % 10);
		f[4] = (uint8_t)('0' + i % 10);
	}
	for (int i = 0; i < TQI_STATS_DEPTH; i++) {
		deep_stats[3 * i] = 0x81;
		deep_stats[3 * i + 1] = 0xa1;
		deep_stats[3 * i + 2] = 'a';
	}
	deep_stats[sizeof deep_stats - 1] = 0x01;

	tqi_env *e = env_sample("hello_max");
	e->name = (tqi_str){ long_name, TQI_MAX_NAME };
	e = env_sample("submit_max");
	e->function = (tqi_str){ long_name, TQI_MAX_NAME };
	e = env_sample("failed_max");
	e->text = (tqi_str){ long_text, TQI_MAX_TEXT };
	e->name = (tqi_str){ long_name, TQI_MAX_NAME };
	e = env_sample("stats_reply_deep");
	e->stats = (tqi_raw){ deep_stats, sizeof deep_stats, 1 };
	e = env_sample("ready_max");
	e->name = (tqi_str){ long_name, TQI_MAX_NAME };
	e->functions = (tqi_raw){ max_functions, sizeof max_functions, TQI_MAX_FUNCTIONS };
}

const tqt_env_sample *tqt_env_samples(size_t *n)
{
	static bool built;
	if (!built) {
		build_env_samples();
		built = true;
	}
	*n = COUNT(env_samples);
	return env_samples;
}

/* ---- hostile envelopes ----------------------------------------------- */

/* The header of a tq/1 envelope for command c. */
#define HDR(c) 'T', 'Q', 1, (c)
#define B16 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
#define MAP8 0x81, 0xa1, 'a'

static const tqt_bytes bad_envelopes[] = {
	/* too short for a header */
	{ "empty", (const uint8_t *)"", 0, TQ_ETRUNCATED },
	{ "short_1", TEXT("T"), TQ_ETRUNCATED },
	{ "short_3", TEXT("TQ\x01"), TQ_ETRUNCATED },
	{ "short_bad_magic", TEXT("X"), TQ_EMAGIC },
	/* header */
	{ "magic0", BYTES('X', 'Q', 1, TQI_PING, 0x90), TQ_EMAGIC },
	{ "magic1", BYTES('T', 'q', 1, TQI_PING, 0x90), TQ_EMAGIC },
	{ "version0", BYTES('T', 'Q', 0, TQI_PING, 0x90), TQ_EVERSION },
	{ "version2", BYTES('T', 'Q', 2, TQI_PING, 0x90), TQ_EVERSION },
	{ "version255", BYTES('T', 'Q', 255, TQI_PING, 0x90), TQ_EVERSION },
	{ "command00", BYTES(HDR(0x00), 0x90), TQ_ECOMMAND },
	{ "command11", BYTES(HDR(0x11), 0x90), TQ_ECOMMAND },
	{ "command1f", BYTES(HDR(0x1f), 0x90), TQ_ECOMMAND },
	{ "command28", BYTES(HDR(0x28), 0x90), TQ_ECOMMAND },
	{ "command80", BYTES(HDR(0x80), 0x90), TQ_ECOMMAND },
	{ "commandff", BYTES(HDR(0xff), 0x90), TQ_ECOMMAND },
	/* the field list */
	{ "no_body", BYTES(HDR(TQI_PING)), TQ_ETRUNCATED },
	{ "body_not_array", BYTES(HDR(TQI_PING), 0xc0), TQ_ETYPE },
	{ "body_c1", BYTES(HDR(TQI_PING), 0xc1), TQ_ETYPE },
	{ "too_many_fields", BYTES(HDR(TQI_PING), 0x91, 0xc0), TQ_ETYPE },
	{ "too_few_fields", BYTES(HDR(TQI_ACCEPTED), 0x90), TQ_ETYPE },
	{ "trailing", BYTES(HDR(TQI_PING), 0x90, 0x00), TQ_ETRAILING },
	{ "array32_16M", BYTES(HDR(TQI_SUBMIT), 0xdd, 0x00, 0xff, 0xff, 0xff), TQ_ELENGTH },
	{ "array32_4G", BYTES(HDR(TQI_SUBMIT), 0xdd, 0xff, 0xff, 0xff, 0xff), TQ_ELENGTH },
	{ "array16_64K", BYTES(HDR(TQI_SUBMIT), 0xdc, 0xff, 0xff), TQ_ELENGTH },
	{ "array_count_short", BYTES(HDR(TQI_ACCEPTED), 0x91), TQ_ELENGTH },
	/* counts and lengths larger than the bytes present, inside fields */
	{ "functions_16M",
	  BYTES(HDR(TQI_READY), 0x95, 0xa1, 'w', 1, 1, 0xcd, 0x03, 0xe8, 0xdd, 0x00, 0xff, 0xff,
	        0xff),
	  TQ_ELENGTH },
	{ "refs_4G", BYTES(HDR(TQI_DEADLINE), 0x92, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff),
	  TQ_ELENGTH },
	{ "stats_map32_4G", BYTES(HDR(TQI_STATS_REPLY), 0x91, 0xdf, 0xff, 0xff, 0xff, 0xff),
	  TQ_ELENGTH },
	{ "ref_bin32_4G", BYTES(HDR(TQI_ACCEPTED), 0x91, 0xc6, 0xff, 0xff, 0xff, 0xff),
	  TQ_ELENGTH },
	{ "text_str32_4G", BYTES(HDR(TQI_DISCONNECT), 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff),
	  TQ_ELENGTH },
	{ "ref_truncated", BYTES(HDR(TQI_ACCEPTED), 0x91, 0xc4, 16, 0, 1, 2), TQ_ELENGTH },
	{ "uint64_truncated", BYTES(HDR(TQI_HELLO), 0x93, 0xcf, 0, 0, 0), TQ_ETRUNCATED },
	/* wrong types */
	{ "session_float", BYTES(HDR(TQI_HELLO), 0x93, 0xca, 0x3f, 0x80, 0, 0, 0xa0, 0x00),
	  TQ_ETYPE },
	{ "session_str", BYTES(HDR(TQI_HELLO), 0x93, 0xa1, '1', 0xa0, 0x00), TQ_ETYPE },
	{ "resumed_int", BYTES(HDR(TQI_WELCOME), 0x94, 0xc4, B16, 0x01, 0x0a, 0x00), TQ_ETYPE },
	{ "ref_str", BYTES(HDR(TQI_ACCEPTED), 0x91, 0xa3, 'r', 'e', 'f'), TQ_ETYPE },
	{ "name_bin", BYTES(HDR(TQI_HELLO), 0x93, 0x01, 0xc4, 0x01, 'x', 0x00), TQ_ETYPE },
	{ "function_c1", BYTES(HDR(TQI_TASK), 0x95, 0xc4, B16, 0xc1, 0x01, 0x00, 0xa0), TQ_ETYPE },
	{ "functions_elem_int", BYTES(HDR(TQI_READY), 0x95, 0xa1, 'w', 1, 1, 0x0a, 0x91, 0x01),
	  TQ_ETYPE },
	{ "refs_elem_str", BYTES(HDR(TQI_DEADLINE), 0x92, 0x00, 0x91, 0xa1, 'r'), TQ_ETYPE },
	{ "stats_array", BYTES(HDR(TQI_STATS_REPLY), 0x91, 0x91, 0x01), TQ_ETYPE },
	{ "stats_c1", BYTES(HDR(TQI_STATS_REPLY), 0x91, 0x81, 0xa1, 'a', 0xc1), TQ_ETYPE },
	/* values out of range */
	{ "session_zero", BYTES(HDR(TQI_HELLO), 0x93, 0x00, 0xa0, 0x00), TQ_ERANGE },
	{ "session_negative", BYTES(HDR(TQI_HELLO), 0x93, 0xff, 0xa0, 0x00), TQ_ERANGE },
	{ "ref_15",
	  BYTES(HDR(TQI_ACCEPTED), 0x91, 0xc4, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
	        14),
	  TQ_ERANGE },
	{ "ref_17",
	  BYTES(HDR(TQI_ACCEPTED), 0x91, 0xc4, 17, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	        15, 16),
	  TQ_ERANGE },
	{ "ref_empty", BYTES(HDR(TQI_DETACH), 0x91, 0xc4, 0), TQ_ERANGE },
	{ "heartbeat_9", BYTES(HDR(TQI_WELCOME), 0x94, 0xc4, B16, 0xc2, 0x09, 0x00), TQ_ERANGE },
	{ "heartbeat_60001", BYTES(HDR(TQI_WELCOME), 0x94, 0xc4, B16, 0xc2, 0xcd, 0xea, 0x61, 0x00),
	  TQ_ERANGE },
	{ "flags_2", BYTES(HDR(TQI_SUBMIT), 0x96, 0x01, 0xc4, B16, 0xa1, 'f', 0x00, 0x00, 0x02),
	  TQ_ERANGE },
	{ "retries_256",
	  BYTES(HDR(TQI_SUBMIT), 0x96, 0x01, 0xc4, B16, 0xa1, 'f', 0x00, 0xcd, 0x01, 0x00, 0x00),
	  TQ_ERANGE },
	{ "function_empty", BYTES(HDR(TQI_SUBMIT), 0x96, 0x01, 0xc4, B16, 0xa0, 0x00, 0x00, 0x00),
	  TQ_ERANGE },
	{ "concurrency_0", BYTES(HDR(TQI_READY), 0x95, 0xa1, 'w', 0, 1, 0x0a, 0x91, 0xa1, 'f'),
	  TQ_ERANGE },
	{ "concurrency_65536",
	  BYTES(HDR(TQI_READY), 0x95, 0xa1, 'w', 0xce, 0, 1, 0, 0, 1, 0x0a, 0x91, 0xa1, 'f'),
	  TQ_ERANGE },
	{ "capacity_0", BYTES(HDR(TQI_READY), 0x95, 0xa1, 'w', 1, 0, 0x0a, 0x91, 0xa1, 'f'),
	  TQ_ERANGE },
	{ "functions_none", BYTES(HDR(TQI_READY), 0x95, 0xa1, 'w', 1, 1, 0x0a, 0x90), TQ_ERANGE },
	{ "functions_elem_empty", BYTES(HDR(TQI_READY), 0x95, 0xa1, 'w', 1, 1, 0x0a, 0x91, 0xa0),
	  TQ_ERANGE },
	{ "refs_none", BYTES(HDR(TQI_DEADLINE), 0x92, 0x00, 0x90), TQ_ERANGE },
	{ "refs_elem_15",
	  BYTES(HDR(TQI_DEADLINE), 0x92, 0x00, 0x91, 0xc4, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
	        12, 13, 14),
	  TQ_ERANGE },
	{ "grace_over", BYTES(HDR(TQI_CANCEL), 0x92, 0xc4, B16, 0xce, 0x05, 0x26, 0x5c, 0x01),
	  TQ_ERANGE },
	{ "code_2p32", BYTES(HDR(TQI_NOTICE), 0x92, 0xc4, B16, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0),
	  TQ_ERANGE },
	{ "attempt_negative", BYTES(HDR(TQI_RESULT), 0x93, 0xc4, B16, 0xa0, 0xd0, 0x80),
	  TQ_ERANGE },
	/* nesting */
	{ "stats_depth_9",
	  BYTES(HDR(TQI_STATS_REPLY), 0x91, MAP8, MAP8, MAP8, MAP8, MAP8, MAP8, MAP8, MAP8, MAP8,
	        0x01),
	  TQ_EDEPTH },
	{ "stats_depth_9_arrays",
	  BYTES(HDR(TQI_STATS_REPLY), 0x91, MAP8, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
	        0x01),
	  TQ_EDEPTH },
	{ "stats_truncated", BYTES(HDR(TQI_STATS_REPLY), 0x91, 0x82, 0xa1, 'a', 0x01, 0xa1),
	  TQ_ELENGTH },
};

const tqt_bytes *tqt_bad_envelopes(size_t *n)
{
	*n = COUNT(bad_envelopes);
	return bad_envelopes;
}

/* ---- msgpack values -------------------------------------------------- */

static uint8_t depth64[TQ_MAX_DEPTH + 1];       /* 64 arrays around one integer */
static uint8_t depth65[TQ_MAX_DEPTH + 2];       /* 65 arrays around one integer */
static uint8_t depth64_empty[TQ_MAX_DEPTH];     /* 64 arrays, the innermost empty */
static uint8_t depth65_empty[TQ_MAX_DEPTH + 1]; /* 65 arrays, the innermost empty */
static uint8_t key_nest[2 * 12 + 1];            /* maps as keys of maps, 12 deep */

static tqt_bytes values[] = {
	{ "nil", BYTES(0xc0), TQ_OK },
	{ "false", BYTES(0xc2), TQ_OK },
	{ "true", BYTES(0xc3), TQ_OK },
	{ "fixint_0", BYTES(0x00), TQ_OK },
	{ "fixint_127", BYTES(0x7f), TQ_OK },
	{ "negfixint_-1", BYTES(0xff), TQ_OK },
	{ "negfixint_-32", BYTES(0xe0), TQ_OK },
	{ "uint8", BYTES(0xcc, 0xff), TQ_OK },
	{ "uint16", BYTES(0xcd, 0xff, 0xff), TQ_OK },
	{ "uint32", BYTES(0xce, 0xff, 0xff, 0xff, 0xff), TQ_OK },
	{ "uint64", BYTES(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), TQ_OK },
	{ "int8", BYTES(0xd0, 0x80), TQ_OK },
	{ "int16", BYTES(0xd1, 0x80, 0x00), TQ_OK },
	{ "int32", BYTES(0xd2, 0x80, 0x00, 0x00, 0x00), TQ_OK },
	{ "int64", BYTES(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), TQ_OK },
	{ "float32", BYTES(0xca, 0x3f, 0xc0, 0x00, 0x00), TQ_OK },
	{ "float64", BYTES(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0), TQ_OK },
	{ "float64_nan", BYTES(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), TQ_OK },
	{ "float64_inf", BYTES(0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0), TQ_OK },
	{ "fixstr", BYTES(0xa3, 'a', 'b', 'c'), TQ_OK },
	{ "str8", BYTES(0xd9, 3, 'a', 'b', 'c'), TQ_OK },
	{ "str16", BYTES(0xda, 0, 3, 'a', 'b', 'c'), TQ_OK },
	{ "str32", BYTES(0xdb, 0, 0, 0, 3, 'a', 'b', 'c'), TQ_OK },
	{ "str_bad_utf8", BYTES(0xa4, 'a', 0xff, 0xc0, 0x80), TQ_OK },
	{ "bin8", BYTES(0xc4, 3, 1, 2, 3), TQ_OK },
	{ "bin16", BYTES(0xc5, 0, 3, 1, 2, 3), TQ_OK },
	{ "bin32", BYTES(0xc6, 0, 0, 0, 3, 1, 2, 3), TQ_OK },
	{ "fixext1", BYTES(0xd4, 5, 0xaa), TQ_OK },
	{ "fixext16", BYTES(0xd8, 5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), TQ_OK },
	{ "ext8", BYTES(0xc7, 2, 5, 0xaa, 0xbb), TQ_OK },
	{ "ext16", BYTES(0xc8, 0, 2, 5, 0xaa, 0xbb), TQ_OK },
	{ "ext32", BYTES(0xc9, 0, 0, 0, 2, 5, 0xaa, 0xbb), TQ_OK },
	{ "array", BYTES(0x93, 0x01, 0xa1, 'x', 0xc0), TQ_OK },
	{ "array16", BYTES(0xdc, 0, 1, 0xc0), TQ_OK },
	{ "array32", BYTES(0xdd, 0, 0, 0, 1, 0xc0), TQ_OK },
	{ "map", BYTES(0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0xc2, 0xc3), TQ_OK },
	{ "map16", BYTES(0xde, 0, 1, 0xa1, 'a', 0x01), TQ_OK },
	{ "map32", BYTES(0xdf, 0, 0, 0, 1, 0xa1, 'a', 0x01), TQ_OK },
	{ "map_odd_keys",
	  BYTES(0x84, 0x01, 0xa1, 'a', 0xc0, 0xc3, 0x92, 0x01, 0x02, 0xc2, 0xc4, 1, 0xff, 0x80),
	  TQ_OK },
	{ "depth64", depth64, sizeof depth64, TQ_OK },
	{ "depth64_empty", depth64_empty, sizeof depth64_empty, TQ_OK },
	{ "key_nest", key_nest, sizeof key_nest, TQ_OK },
	/* hostile */
	{ "empty", (const uint8_t *)"", 0, TQ_ETRUNCATED },
	{ "c1", BYTES(0xc1), TQ_ETYPE },
	{ "c1_in_array", BYTES(0x92, 0x01, 0xc1), TQ_ETYPE },
	{ "uint8_truncated", BYTES(0xcc), TQ_ETRUNCATED },
	{ "uint16_truncated", BYTES(0xcd, 0xff), TQ_ETRUNCATED },
	{ "uint64_truncated", BYTES(0xcf, 0, 0, 0, 0, 0, 0, 0), TQ_ETRUNCATED },
	{ "float32_truncated", BYTES(0xca, 0, 0), TQ_ETRUNCATED },
	{ "str8_no_length", BYTES(0xd9), TQ_ETRUNCATED },
	{ "str16_half_length", BYTES(0xda, 0), TQ_ETRUNCATED },
	{ "ext8_no_type", BYTES(0xc7, 5), TQ_ETRUNCATED },
	{ "ext32_no_type", BYTES(0xc9, 0, 0, 0, 1), TQ_ETRUNCATED },
	{ "fixstr_long", BYTES(0xa5, 'a', 'b'), TQ_ELENGTH },
	{ "str8_long", BYTES(0xd9, 5, 'a', 'b'), TQ_ELENGTH },
	{ "str32_4G", BYTES(0xdb, 0xff, 0xff, 0xff, 0xff), TQ_ELENGTH },
	{ "bin32_4G", BYTES(0xc6, 0xff, 0xff, 0xff, 0xff), TQ_ELENGTH },
	{ "ext32_4G", BYTES(0xc9, 0xff, 0xff, 0xff, 0xff, 0x01), TQ_ELENGTH },
	{ "array32_16M", BYTES(0xdd, 0x00, 0xff, 0xff, 0xff), TQ_ELENGTH },
	{ "array32_4G", BYTES(0xdd, 0xff, 0xff, 0xff, 0xff), TQ_ELENGTH },
	{ "map32_4G", BYTES(0xdf, 0xff, 0xff, 0xff, 0xff), TQ_ELENGTH },
	{ "map16_short", BYTES(0xde, 0, 1, 0x01), TQ_ELENGTH },
	{ "fixarray_short", BYTES(0x92, 0x01), TQ_ELENGTH },
	{ "fixmap_value_missing", BYTES(0x81, 0x01), TQ_ELENGTH },
	{ "nested_truncated", BYTES(0x91, 0x92, 0x01, 0xcd, 0x00), TQ_ETRUNCATED },
	{ "trailing", BYTES(0xc0, 0xc0), TQ_ETRAILING },
	{ "array_trailing", BYTES(0x91, 0x01, 0x02), TQ_ETRAILING },
	{ "depth65", depth65, sizeof depth65, TQ_EDEPTH },
	{ "depth65_empty", depth65_empty, sizeof depth65_empty, TQ_EDEPTH },
};

static void build_values(void)
{
	memset(depth64, 0x91, TQ_MAX_DEPTH);
	depth64[TQ_MAX_DEPTH] = 0x01;
	memset(depth65, 0x91, TQ_MAX_DEPTH + 1);
	depth65[TQ_MAX_DEPTH + 1] = 0x01;
	memset(depth64_empty, 0x91, TQ_MAX_DEPTH - 1);
	depth64_empty[TQ_MAX_DEPTH - 1] = 0x90;
	memset(depth65_empty, 0x91, TQ_MAX_DEPTH);
	depth65_empty[TQ_MAX_DEPTH] = 0x90;
	/* {{{...{"": nil}...: nil}: nil}: each map's only key is the next map */
	size_t k = (sizeof key_nest - 1) / 2;
	memset(key_nest, 0x81, k);
	key_nest[k] = 0xa0;
	memset(key_nest + k + 1, 0xc0, k);
}

const tqt_bytes *tqt_values(size_t *n)
{
	static bool built;
	if (!built) {
		build_values();
		built = true;
	}
	*n = COUNT(values);
	return values;
}

/* ---- JSON texts ------------------------------------------------------ */

static char json_depth64[2 * TQ_MAX_DEPTH];
static char json_depth65[2 * (TQ_MAX_DEPTH + 1)];
static char json_obj_depth65[6 * (TQ_MAX_DEPTH + 1) + 1]; /* {"a":{"a":...1}} */

static tqt_bytes jsons[] = {
	{ "null", TEXT("null"), TQ_OK },
	{ "true", TEXT("true"), TQ_OK },
	{ "false", TEXT("false"), TQ_OK },
	{ "zero", TEXT("0"), TQ_OK },
	{ "minus_one", TEXT("-1"), TQ_OK },
	{ "minus_zero", TEXT("-0"), TQ_OK },
	{ "uint64_max", TEXT("18446744073709551615"), TQ_OK },
	{ "uint64_max_plus_1", TEXT("18446744073709551616"), TQ_OK },
	{ "int64_min", TEXT("-9223372036854775808"), TQ_OK },
	{ "int64_min_minus_1", TEXT("-9223372036854775809"), TQ_OK },
	{ "long_number",
	  TEXT("123456789012345678901234567890123456789012345678901234567890123456789"), TQ_OK },
	{ "float", TEXT("1.5"), TQ_OK },
	{ "float_minus_zero", TEXT("-0.0"), TQ_OK },
	{ "exp", TEXT("1e300"), TQ_OK },
	{ "exp_neg", TEXT("2.5E-5"), TQ_OK },
	{ "exp_plus", TEXT("1e+2"), TQ_OK },
	{ "exp_huge", TEXT("1e999"), TQ_OK },
	{ "string", TEXT("\"hello\""), TQ_OK },
	{ "string_empty", TEXT("\"\""), TQ_OK },
	{ "escapes", TEXT("\"q\\\"b\\\\s\\/b\\bf\\fn\\nr\\rt\\t\""), TQ_OK },
	{ "unicode_bmp", TEXT("\"\\u00e9\\u20AC\""), TQ_OK },
	{ "surrogate_pair", TEXT("\"\\ud83d\\ude00\""), TQ_OK },
	{ "nul_escape", TEXT("\"a\\u0000b\""), TQ_OK },
	{ "raw_utf8", TEXT("\"h\xc3\xa9llo\""), TQ_OK },
	{ "array", TEXT("[1,\"two\",3.0,[true,null],{}]"), TQ_OK },
	{ "object", TEXT("{\"a\":1,\"b\":[],\"c\":{\"d\":\"e\"}}"), TQ_OK },
	{ "object_dup_keys", TEXT("{\"k\":1,\"k\":2}"), TQ_OK },
	{ "whitespace", TEXT(" \t\r\n[ 1 ,\n2 ] \n"), TQ_OK },
	{ "depth64", (const uint8_t *)json_depth64, sizeof json_depth64, TQ_OK },
	/* malformed */
	{ "empty", (const uint8_t *)"", 0, TQ_EINVAL },
	{ "blank", TEXT("  "), TQ_EINVAL },
	{ "nul", TEXT("nul"), TQ_EINVAL },
	{ "tru", TEXT("tru"), TQ_EINVAL },
	{ "True", TEXT("True"), TQ_EINVAL },
	{ "open", TEXT("["), TQ_EINVAL },
	{ "close", TEXT("]"), TQ_EINVAL },
	{ "extra_close", TEXT("[]]"), TQ_EINVAL },
	{ "trailing_comma", TEXT("[1,]"), TQ_EINVAL },
	{ "missing_comma", TEXT("[1 2]"), TQ_EINVAL },
	{ "obj_trailing_comma", TEXT("{\"a\":1,}"), TQ_EINVAL },
	{ "obj_no_colon", TEXT("{\"a\" 1}"), TQ_EINVAL },
	{ "obj_no_value", TEXT("{\"a\":}"), TQ_EINVAL },
	{ "obj_key_number", TEXT("{1:2}"), TQ_EINVAL },
	{ "obj_unclosed", TEXT("{\"a\":1"), TQ_EINVAL },
	{ "string_unclosed", TEXT("\"abc"), TQ_EINVAL },
	{ "string_backslash_end", TEXT("\"\\"), TQ_EINVAL },
	{ "bad_escape", TEXT("\"\\x41\""), TQ_EINVAL },
	{ "short_u", TEXT("\"\\u12\""), TQ_EINVAL },
	{ "bad_hex_u", TEXT("\"\\u12g4\""), TQ_EINVAL },
	{ "lone_high", TEXT("\"\\ud800\""), TQ_EINVAL },
	{ "high_then_bmp", TEXT("\"\\ud800\\u0041\""), TQ_EINVAL },
	{ "lone_low", TEXT("\"\\udc00\""), TQ_EINVAL },
	{ "control_char", TEXT("\"a\x01z\""), TQ_EINVAL },
	{ "raw_newline", TEXT("\"a\nz\""), TQ_EINVAL },
	{ "leading_zero", TEXT("01"), TQ_EINVAL },
	{ "minus_only", TEXT("-"), TQ_EINVAL },
	{ "dot_end", TEXT("1."), TQ_EINVAL },
	{ "dot_start", TEXT(".5"), TQ_EINVAL },
	{ "plus", TEXT("+1"), TQ_EINVAL },
	{ "exp_empty", TEXT("1e"), TQ_EINVAL },
	{ "exp_sign_only", TEXT("1e+"), TQ_EINVAL },
	{ "double_minus", TEXT("--1"), TQ_EINVAL },
	{ "nan", TEXT("NaN"), TQ_EINVAL },
	{ "infinity", TEXT("Infinity"), TQ_EINVAL },
	{ "two_values", TEXT("1 2"), TQ_EINVAL },
	{ "hex_number", TEXT("0x10"), TQ_EINVAL },
	{ "single_quotes", TEXT("'a'"), TQ_EINVAL },
	{ "depth65", (const uint8_t *)json_depth65, sizeof json_depth65, TQ_EDEPTH },
	{ "obj_depth65", (const uint8_t *)json_obj_depth65, sizeof json_obj_depth65, TQ_EDEPTH },
};

static void build_jsons(void)
{
	memset(json_depth64, '[', TQ_MAX_DEPTH);
	memset(json_depth64 + TQ_MAX_DEPTH, ']', TQ_MAX_DEPTH);
	memset(json_depth65, '[', TQ_MAX_DEPTH + 1);
	memset(json_depth65 + TQ_MAX_DEPTH + 1, ']', TQ_MAX_DEPTH + 1);
	char *p = json_obj_depth65;
	for (int i = 0; i < TQ_MAX_DEPTH + 1; i++, p += 5)
		memcpy(p, "{\"a\":", 5);
	*p++ = '1';
	memset(p, '}', TQ_MAX_DEPTH + 1);
}

const tqt_bytes *tqt_jsons(size_t *n)
{
	static bool built;
	if (!built) {
		build_jsons();
		built = true;
	}
	*n = COUNT(jsons);
	return jsons;
}

/* ---- executor result frames ------------------------------------------ */

/* type 2, code, text length, run time in us (little-endian u32s): the
 * layout after the length prefix (worker/executor.h).  Every good sample
 * says it ran TQT_SAMPLE_RUN_US. */
#define RUN_US 0x04, 0x03, 0x02, 0x01
#define RES(code, tlen) 2, (code)&0xff, 0, 0, 0, (tlen)&0xff, ((tlen) >> 8) & 0xff, 0, 0, RUN_US
#define EXEC_HDR 13

static uint8_t frame_text_max[EXEC_HDR + TQI_MAX_TEXT + 1];
static uint8_t frame_text_over[EXEC_HDR + TQI_MAX_TEXT + 1];

static tqt_bytes exec_frames[] = {
	{ "ok_nothing", BYTES(RES(0, 0)), 0 },
	{ "ok_nil", BYTES(RES(0, 0), 0xc0), 0 },
	{ "ok_array", BYTES(RES(0, 0), 0x93, 0x01, 0x02, 0x03), 0 },
	{ "failed_text", BYTES(RES(TQ_EFAILED, 4), 'b', 'o', 'o', 'm'), 0 },
	{ "text_and_result", BYTES(RES(0, 2), 'h', 'i', 0xa1, 'x'), 0 },
	{ "text_max", frame_text_max, sizeof frame_text_max, 0 },
	/* hostile */
	{ "empty", (const uint8_t *)"", 0, -1 },
	{ "type_only", BYTES(2), -1 },
	{ "header_short", BYTES(2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), -1 },
	{ "no_run_time", BYTES(2, 0, 0, 0, 0, 0, 0, 0, 0), -1 },
	{ "type_task", BYTES(1, 0, 0, 0, 0, 0, 0, 0, 0, RUN_US), -1 },
	{ "type_zero", BYTES(0, 0, 0, 0, 0, 0, 0, 0, 0, RUN_US), -1 },
	{ "type_ff", BYTES(0xff, 0, 0, 0, 0, 0, 0, 0, 0, RUN_US), -1 },
	{ "text_past_end", BYTES(RES(0, 5), 'a', 'b', 'c'), -1 },
	{ "text_4G", BYTES(2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, RUN_US, 'a'), -1 },
	{ "text_2G", BYTES(2, 0, 0, 0, 0, 0, 0, 0, 0x80, RUN_US, 'a'), -1 },
	{ "text_over_max", frame_text_over, sizeof frame_text_over, -1 },
};

static void build_exec_frames(void)
{
	const uint8_t max[EXEC_HDR] = { RES(0, TQI_MAX_TEXT) };
	const uint8_t over[EXEC_HDR] = { RES(0, TQI_MAX_TEXT + 1) };
	memcpy(frame_text_max, max, EXEC_HDR);
	memset(frame_text_max + EXEC_HDR, 'x', TQI_MAX_TEXT);
	frame_text_max[sizeof frame_text_max - 1] = 0xc0;
	memcpy(frame_text_over, over, EXEC_HDR);
	memset(frame_text_over + EXEC_HDR, 'x', TQI_MAX_TEXT + 1);
}

const tqt_bytes *tqt_exec_frames(size_t *n)
{
	static bool built;
	if (!built) {
		build_exec_frames();
		built = true;
	}
	*n = COUNT(exec_frames);
	return exec_frames;
}

/* ---- comparison ------------------------------------------------------ */

static bool str_equal(tqi_str a, tqi_str b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool raw_equal(tqi_raw a, tqi_raw b)
{
	return a.count == b.count && a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool tqt_env_equal(const tqi_env *a, const tqi_env *b)
{
	return a->cmd == b->cmd && a->session == b->session && a->mark == b->mark &&
	       memcmp(a->ref, b->ref, TQI_REF_LEN) == 0 &&
	       memcmp(a->instance, b->instance, TQI_REF_LEN) == 0 && str_equal(a->name, b->name) &&
	       str_equal(a->function, b->function) && str_equal(a->text, b->text) &&
	       a->timeout_ms == b->timeout_ms && a->retries == b->retries && a->flags == b->flags &&
	       a->attempt == b->attempt && a->code == b->code && a->grace_ms == b->grace_ms &&
	       a->concurrency == b->concurrency && a->capacity == b->capacity &&
	       a->heartbeat_ms == b->heartbeat_ms && a->resumed == b->resumed &&
	       raw_equal(a->functions, b->functions) && raw_equal(a->refs, b->refs) &&
	       raw_equal(a->stats, b->stats);
}
