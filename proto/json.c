/*
 * json.c - JSON <-> msgpack for the command line, tq map and user
 * convenience.  Both directions are bounded: nesting is limited to
 * TQ_MAX_DEPTH, and the msgpack side reads through the bounded tq_reader.
 */
#include "proto/json.h"

#include "base/hex.h"

#include "tq/value.h"

#include <msgpack.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON text -> msgpack --------------------------------------------- */

typedef struct {
	const char *s;
	size_t len, pos;
	tqi_wbuf *out;
	msgpack_packer pk;
} parser;

static void ws(parser *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static tq_err emit(parser *p, int rc)
{
	return rc == 0 && !p->out->oom ? TQ_OK : TQ_ENOMEM;
}

static int read_u16(parser *p, unsigned *v)
{
	if (p->len - p->pos < 4)
		return -1;
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int h = tqi_hexval(p->s[p->pos + i]);
		if (h < 0)
			return -1;
		*v = *v << 4 | (unsigned)h;
	}
	p->pos += 4;
	return 0;
}

static size_t utf8_put(unsigned cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes a JSON string at p->pos (on the opening quote) into a malloc'd
 * buffer. */
static tq_err parse_string(parser *p, char **out, size_t *outlen)
{
	p->pos++; /* opening quote */
	size_t start = p->pos;
	/* The decoded text is never longer than the escaped text. */
	size_t cap = 0;
	while (start + cap < p->len && p->s[start + cap] != '"') {
		if (p->s[start + cap] == '\\')
			cap++;
		cap++;
	}
	char *buf = malloc(cap + 4);
	if (buf == NULL)
		return TQ_ENOMEM;
	size_t n = 0;
	for (;;) {
		if (p->pos >= p->len)
			goto bad;
		unsigned char c = (unsigned char)p->s[p->pos++];
		if (c == '"')
			break;
		if (c < 0x20)
			goto bad;
		if (c != '\\') {
			buf[n++] = (char)c;
			continue;
		}
		if (p->pos >= p->len)
			goto bad;
		char e = p->s[p->pos++];
		switch (e) {
		case '"':
			buf[n++] = '"';
			break;
		case '\\':
			buf[n++] = '\\';
			break;
		case '/':
			buf[n++] = '/';
			break;
		case 'b':
			buf[n++] = '\b';
			break;
		case 'f':
			buf[n++] = '\f';
			break;
		case 'n':
			buf[n++] = '\n';
			break;
		case 'r':
			buf[n++] = '\r';
			break;
		case 't':
			buf[n++] = '\t';
			break;
		case 'u': {
			unsigned cp, lo;
			if (read_u16(p, &cp) != 0)
				goto bad;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->len - p->pos < 2 || p->s[p->pos] != '\\' ||
				    p->s[p->pos + 1] != 'u')
					goto bad;
				p->pos += 2;
				if (read_u16(p, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
					goto bad;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				goto bad;
			}
			/* \uXXXX is 6 bytes of input for at most 3 of output, a
			 * surrogate pair 12 for 4: the buffer is big enough. */
			n += utf8_put(cp, buf + n);
			break;
		}
		default:
			goto bad;
		}
	}
	*out = buf;
	*outlen = n;
	return TQ_OK;
bad:
	free(buf);
	return TQ_EINVAL;
}

static tq_err parse_number(parser *p)
{
	size_t start = p->pos;
	int is_float = 0;
	if (p->pos < p->len && p->s[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->len)
		return TQ_EINVAL;
	if (p->s[p->pos] == '0') {
		p->pos++;
	} else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
		while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
	} else {
		return TQ_EINVAL;
	}
	if (p->pos < p->len && p->s[p->pos] == '.') {
		is_float = 1;
		p->pos++;
		size_t d = p->pos;
		while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
		if (p->pos == d)
			return TQ_EINVAL;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		is_float = 1;
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		size_t d = p->pos;
		while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
		if (p->pos == d)
			return TQ_EINVAL;
	}
	size_t n = p->pos - start;
	char tmp[64];
	char *txt = n < sizeof tmp ? tmp : malloc(n + 1);
	if (txt == NULL)
		return TQ_ENOMEM;
	memcpy(txt, p->s + start, n);
	txt[n] = '\0';
	tq_err e;
	if (!is_float) {
		char *end;
		errno = 0;
		if (txt[0] == '-') {
			long long v = strtoll(txt, &end, 10);
			if (errno == 0 && *end == '\0') {
				e = emit(p, msgpack_pack_int64(&p->pk, v));
				goto out;
			}
		} else {
			unsigned long long v = strtoull(txt, &end, 10);
			if (errno == 0 && *end == '\0') {
				e = emit(p, msgpack_pack_uint64(&p->pk, v));
				goto out;
			}
		}
		/* Too big for 64 bits: fall back to a double, as JSON allows. */
	}
	e = emit(p, msgpack_pack_double(&p->pk, strtod(txt, NULL)));
out:
	if (txt != tmp)
		free(txt);
	return e;
}

static int literal(parser *p, const char *word)
{
	size_t n = strlen(word);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return 0;
	p->pos += n;
	return 1;
}

/* Containers get a 5-byte header slot that is patched, then shrunk to the
 * minimal header once the count is known. */
static tq_err close_container(parser *p, size_t at, uint32_t count, int is_map)
{
	uint8_t hdr[5];
	size_t hn;
	if (count < 16) {
		hdr[0] = (uint8_t)((is_map ? 0x80 : 0x90) | count);
		hn = 1;
	} else if (count <= 0xffff) {
		hdr[0] = is_map ? 0xde : 0xdc;
		hdr[1] = (uint8_t)(count >> 8);
		hdr[2] = (uint8_t)count;
		hn = 3;
	} else {
		hdr[0] = is_map ? 0xdf : 0xdd;
		hdr[1] = (uint8_t)(count >> 24);
		hdr[2] = (uint8_t)(count >> 16);
		hdr[3] = (uint8_t)(count >> 8);
		hdr[4] = (uint8_t)count;
		hn = 5;
	}
	uint8_t *d = p->out->data;
	memmove(d + at + hn, d + at + 5, p->out->len - at - 5);
	memcpy(d + at, hdr, hn);
	p->out->len -= 5 - hn;
	return TQ_OK;
}

static tq_err parse_value(parser *p, int depth);

static tq_err parse_container(parser *p, int depth, int is_map)
{
	char close = is_map ? '}' : ']';
	if (depth >= TQ_MAX_DEPTH)
		return TQ_EDEPTH;
	p->pos++;
	size_t at = p->out->len;
	static const uint8_t slot[5] = { 0 };
	if (tqi_wbuf_append(p->out, slot, 5) != 0)
		return TQ_ENOMEM;
	uint32_t count = 0;
	ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return close_container(p, at, 0, is_map);
	}
	for (;;) {
		ws(p);
		tq_err e;
		if (is_map) {
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return TQ_EINVAL;
			e = parse_value(p, depth + 1); /* the key: a string */
			if (e != TQ_OK)
				return e;
			ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return TQ_EINVAL;
			p->pos++;
			ws(p);
		}
		e = parse_value(p, depth + 1);
		if (e != TQ_OK)
			return e;
		if (count == UINT32_MAX)
			return TQ_ETOOBIG;
		count++;
		ws(p);
		if (p->pos >= p->len)
			return TQ_EINVAL;
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == close) {
			p->pos++;
			return close_container(p, at, count, is_map);
		}
		return TQ_EINVAL;
	}
}

static tq_err parse_value(parser *p, int depth)
{
	ws(p);
	if (p->pos >= p->len)
		return TQ_EINVAL;
	char c = p->s[p->pos];
	switch (c) {
	case '{':
		return parse_container(p, depth, 1);
	case '[':
		return parse_container(p, depth, 0);
	case '"': {
		char *s;
		size_t n;
		tq_err e = parse_string(p, &s, &n);
		if (e != TQ_OK)
			return e;
		e = emit(p, msgpack_pack_str_with_body(&p->pk, s, n));
		free(s);
		return e;
	}
	case 't':
		return literal(p, "true") ? emit(p, msgpack_pack_true(&p->pk)) : TQ_EINVAL;
	case 'f':
		return literal(p, "false") ? emit(p, msgpack_pack_false(&p->pk)) : TQ_EINVAL;
	case 'n':
		return literal(p, "null") ? emit(p, msgpack_pack_nil(&p->pk)) : TQ_EINVAL;
	default:
		return parse_number(p);
	}
}

tq_err tqi_json_parse_value(const char *json, size_t len, size_t *pos, tqi_wbuf *out)
{
	parser p = { json, len, *pos, out, { 0 } };
	msgpack_packer_init(&p.pk, out, tqi_wbuf_sink);
	tq_err e = parse_value(&p, 0);
	if (e == TQ_OK)
		*pos = p.pos;
	return e;
}

tq_err tqi_json_to_msgpack(const char *json, size_t len, tqi_wbuf *out)
{
	size_t pos = 0;
	tq_err e = tqi_json_parse_value(json, len, &pos, out);
	if (e != TQ_OK)
		return e;
	parser p = { json, len, pos, out, { 0 } };
	ws(&p);
	return p.pos == len ? TQ_OK : TQ_EINVAL;
}

/* ---- msgpack -> JSON text --------------------------------------------- */

/* The JSON being written.  Its size is capped: map keys that are
 * themselves containers are written as escaped JSON text, and escaping
 * nested keys again at every level would otherwise grow the output
 * exponentially with the nesting. */
typedef struct {
	tqi_wbuf w;
	size_t limit;
	bool over;
} jout;

static void put(jout *o, const char *s, size_t n)
{
	if (o->over || n > o->limit - o->w.len) {
		o->over = true;
		return;
	}
	tqi_wbuf_append(&o->w, s, n);
}

static void puts_(jout *o, const char *s)
{
	put(o, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t k;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		k = 2, cp = c & 0x1f;
	else if ((c & 0xf0) == 0xe0)
		k = 3, cp = c & 0x0f;
	else if ((c & 0xf8) == 0xf0)
		k = 4, cp = c & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

static void put_string(jout *o, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	put(o, "\"", 1);
	size_t i = 0;
	while (i < n) {
		unsigned char c = u[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(o, esc, 2);
			i++;
		} else if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			put(o, esc, 6);
			i++;
		} else if (c < 0x80) {
			put(o, (const char *)u + i, 1);
			i++;
		} else {
			size_t k = utf8_len(u + i, n - i);
			if (k == 0) {
				puts_(o, "\\ufffd"); /* not UTF-8: the replacement character */
				i++;
			} else {
				put(o, (const char *)u + i, k);
				i += k;
			}
		}
	}
	put(o, "\"", 1);
}

static void put_base64(jout *o, const uint8_t *d, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	put(o, "\"", 1);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		char q[4] = { tab[v >> 18 & 63], tab[v >> 12 & 63],
			      i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '=' };
		put(o, q, 4);
	}
	put(o, "\"", 1);
}

static tq_err write_value(jout *o, tq_reader *r, int depth, int as_key);

static tq_err write_scalar_key(jout *o, tq_reader *r, int depth)
{
	/* A non-string key becomes a string holding its JSON text. */
	jout k;
	tqi_wbuf_init(&k.w);
	k.limit = o->limit - o->w.len;
	k.over = false;
	tq_err e = write_value(&k, r, depth, 0);
	if (e == TQ_OK && k.over)
		e = TQ_ETOOBIG;
	if (e == TQ_OK)
		put_string(o, (const char *)k.w.data, k.w.len);
	tqi_wbuf_free(&k.w);
	return e;
}

static tq_err write_value(jout *o, tq_reader *r, int depth, int as_key)
{
	tq_type t;
	tq_err e = tq_reader_peek(r, &t);
	if (e != TQ_OK)
		return e;
	if (as_key && t != TQ_TYPE_STR)
		return write_scalar_key(o, r, depth);
	char num[40];
	switch (t) {
	case TQ_TYPE_NIL:
		e = tq_read_nil(r);
		puts_(o, "null");
		return e;
	case TQ_TYPE_BOOL: {
		bool b = false;
		e = tq_read_bool(r, &b);
		puts_(o, b ? "true" : "false");
		return e;
	}
	case TQ_TYPE_INT: {
		int64_t v = 0;
		e = tq_read_int(r, &v);
		snprintf(num, sizeof num, "%lld", (long long)v);
		puts_(o, num);
		return e;
	}
	case TQ_TYPE_UINT: {
		uint64_t v = 0;
		e = tq_read_uint(r, &v);
		snprintf(num, sizeof num, "%llu", (unsigned long long)v);
		puts_(o, num);
		return e;
	}
	case TQ_TYPE_FLOAT: {
		double v = 0;
		e = tq_read_double(r, &v);
		if (!isfinite(v)) {
			puts_(o, "null");
		} else {
			snprintf(num, sizeof num, "%.17g", v);
			puts_(o, num);
			if (strpbrk(num, ".eE") == NULL)
				puts_(o, ".0"); /* keep it a float when read back */
		}
		return e;
	}
	case TQ_TYPE_STR: {
		const char *s;
		size_t n;
		e = tq_read_str(r, &s, &n);
		if (e == TQ_OK)
			put_string(o, s, n);
		return e;
	}
	case TQ_TYPE_BIN: {
		const uint8_t *d;
		size_t n;
		e = tq_read_bin(r, &d, &n);
		if (e == TQ_OK)
			put_base64(o, d, n);
		return e;
	}
	case TQ_TYPE_EXT:
		/* Extensions have no JSON form; say so rather than guess. */
		e = tq_read_skip(r);
		puts_(o, "\"<msgpack ext>\"");
		return e;
	case TQ_TYPE_ARRAY:
	case TQ_TYPE_MAP: {
		uint32_t n;
		int is_map = t == TQ_TYPE_MAP;
		if (depth >= TQ_MAX_DEPTH)
			return TQ_EDEPTH;
		e = is_map ? tq_read_map(r, &n) : tq_read_array(r, &n);
		if (e != TQ_OK)
			return e;
		put(o, is_map ? "{" : "[", 1);
		for (uint32_t i = 0; i < n && !o->over; i++) {
			if (i > 0)
				put(o, ",", 1);
			if (is_map) {
				e = write_value(o, r, depth + 1, 1);
				if (e != TQ_OK)
					return e;
				put(o, ":", 1);
			}
			e = write_value(o, r, depth + 1, 0);
			if (e != TQ_OK)
				return e;
		}
		put(o, is_map ? "}" : "]", 1);
		return TQ_OK;
	}
	}
	return TQ_ETYPE;
}

tq_err tq_value_to_json(const void *data, size_t len, char **out)
{
	tq_err e = tq_value_check(data, len, 0);
	if (e != TQ_OK)
		return e;
	jout o;
	tqi_wbuf_init(&o.w);
	/* Room for every byte escaped as \u00XX, and then some. */
	o.limit = len > (SIZE_MAX - (1u << 20)) / 8 ? SIZE_MAX : 8 * len + (1u << 20);
	o.over = false;
	tq_reader r;
	tq_reader_init(&r, data, len);
	e = write_value(&o, &r, 0, 0);
	if (e == TQ_OK && o.over)
		e = TQ_ETOOBIG;
	if (e == TQ_OK && o.w.oom)
		e = TQ_ENOMEM;
	if (e == TQ_OK && tqi_wbuf_append(&o.w, "", 1) != 0)
		e = TQ_ENOMEM;
	if (e != TQ_OK) {
		tqi_wbuf_free(&o.w);
		return e;
	}
	size_t n;
	*out = (char *)tqi_wbuf_release(&o.w, &n);
	return *out ? TQ_OK : TQ_ENOMEM;
}
