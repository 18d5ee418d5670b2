/*
 * reader.c - a bounded msgpack cursor (tq_reader).
 *
 * Invariant: r->p_ <= r->end_, and nothing is read past r->end_.  Every
 * declared length or count is compared with the bytes left before it is
 * believed, so a five-byte header cannot make anyone reserve gigabytes:
 * this reader reserves nothing at all.
 */
#include "tq/value.h"

#include <string.h>

typedef struct {
	tq_type type;
	size_t hdr;   /* bytes of the header (type byte and length fields) */
	uint64_t len; /* str/bin/ext: payload bytes; array/map: item count */
	union {
		uint64_t u;
		int64_t i;
		double d;
		bool b;
	} v;
} head;

static uint64_t be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static tq_err need(const uint8_t *p, const uint8_t *end, size_t n)
{
	return (size_t)(end - p) >= n ? TQ_OK : TQ_ETRUNCATED;
}

/* Sized header: `n` bytes of length after the type byte. */
static tq_err sized(const uint8_t *p, const uint8_t *end, head *h, tq_type t, size_t n)
{
	if (need(p, end, 1 + n) != TQ_OK)
		return TQ_ETRUNCATED;
	h->type = t;
	h->hdr = 1 + n;
	h->len = be(p + 1, n);
	return TQ_OK;
}

static tq_err fixed(const uint8_t *p, const uint8_t *end, head *h, tq_type t, size_t n)
{
	if (need(p, end, 1 + n) != TQ_OK)
		return TQ_ETRUNCATED;
	h->type = t;
	h->hdr = 1 + n;
	h->len = 0;
	uint64_t raw = be(p + 1, n);
	switch (t) {
	case TQ_TYPE_UINT:
		h->v.u = raw;
		break;
	case TQ_TYPE_INT: /* sign-extend from n bytes */
		h->v.i = n == 8 ? (int64_t)raw
		                : (int64_t)(raw ^ (1ULL << (8 * n - 1))) -
		                      (int64_t)(1ULL << (8 * n - 1));
		if (h->v.i >= 0)
			h->type = TQ_TYPE_UINT, h->v.u = (uint64_t)h->v.i;
		break;
	case TQ_TYPE_FLOAT:
		if (n == 4) {
			uint32_t w = (uint32_t)raw;
			float f;
			memcpy(&f, &w, 4);
			h->v.d = f;
		} else {
			memcpy(&h->v.d, &raw, 8);
		}
		break;
	default:
		break;
	}
	return TQ_OK;
}

/* Parses the header at p and checks its declared sizes against the bytes
 * left after the header. */
static tq_err head_parse(const uint8_t *p, const uint8_t *end, head *h)
{
	if (p >= end)
		return TQ_ETRUNCATED;
	uint8_t c = *p;
	tq_err e = TQ_OK;
	h->hdr = 1;
	h->len = 0;
	if (c <= 0x7f) {
		h->type = TQ_TYPE_UINT;
		h->v.u = c;
	} else if (c >= 0xe0) {
		h->type = TQ_TYPE_INT;
		h->v.i = (int8_t)c;
	} else if (c <= 0x8f) {
		h->type = TQ_TYPE_MAP;
		h->len = c & 0x0f;
	} else if (c <= 0x9f) {
		h->type = TQ_TYPE_ARRAY;
		h->len = c & 0x0f;
	} else if (c <= 0xbf) {
		h->type = TQ_TYPE_STR;
		h->len = c & 0x1f;
	} else {
		switch (c) {
		case 0xc0:
			h->type = TQ_TYPE_NIL;
			break;
		case 0xc2:
		case 0xc3:
			h->type = TQ_TYPE_BOOL;
			h->v.b = c == 0xc3;
			break;
		case 0xc4:
			e = sized(p, end, h, TQ_TYPE_BIN, 1);
			break;
		case 0xc5:
			e = sized(p, end, h, TQ_TYPE_BIN, 2);
			break;
		case 0xc6:
			e = sized(p, end, h, TQ_TYPE_BIN, 4);
			break;
		case 0xc7:
			e = sized(p, end, h, TQ_TYPE_EXT, 1);
			h->hdr++;
			break;
		case 0xc8:
			e = sized(p, end, h, TQ_TYPE_EXT, 2);
			h->hdr++;
			break;
		case 0xc9:
			e = sized(p, end, h, TQ_TYPE_EXT, 4);
			h->hdr++;
			break;
		case 0xca:
			e = fixed(p, end, h, TQ_TYPE_FLOAT, 4);
			break;
		case 0xcb:
			e = fixed(p, end, h, TQ_TYPE_FLOAT, 8);
			break;
		case 0xcc:
			e = fixed(p, end, h, TQ_TYPE_UINT, 1);
			break;
		case 0xcd:
			e = fixed(p, end, h, TQ_TYPE_UINT, 2);
			break;
		case 0xce:
			e = fixed(p, end, h, TQ_TYPE_UINT, 4);
			break;
		case 0xcf:
			e = fixed(p, end, h, TQ_TYPE_UINT, 8);
			break;
		case 0xd0:
			e = fixed(p, end, h, TQ_TYPE_INT, 1);
			break;
		case 0xd1:
			e = fixed(p, end, h, TQ_TYPE_INT, 2);
			break;
		case 0xd2:
			e = fixed(p, end, h, TQ_TYPE_INT, 4);
			break;
		case 0xd3:
			e = fixed(p, end, h, TQ_TYPE_INT, 8);
			break;
		case 0xd4:
			h->type = TQ_TYPE_EXT;
			h->hdr = 2;
			h->len = 1;
			break;
		case 0xd5:
			h->type = TQ_TYPE_EXT;
			h->hdr = 2;
			h->len = 2;
			break;
		case 0xd6:
			h->type = TQ_TYPE_EXT;
			h->hdr = 2;
			h->len = 4;
			break;
		case 0xd7:
			h->type = TQ_TYPE_EXT;
			h->hdr = 2;
			h->len = 8;
			break;
		case 0xd8:
			h->type = TQ_TYPE_EXT;
			h->hdr = 2;
			h->len = 16;
			break;
		case 0xd9:
			e = sized(p, end, h, TQ_TYPE_STR, 1);
			break;
		case 0xda:
			e = sized(p, end, h, TQ_TYPE_STR, 2);
			break;
		case 0xdb:
			e = sized(p, end, h, TQ_TYPE_STR, 4);
			break;
		case 0xdc:
			e = sized(p, end, h, TQ_TYPE_ARRAY, 2);
			break;
		case 0xdd:
			e = sized(p, end, h, TQ_TYPE_ARRAY, 4);
			break;
		case 0xde:
			e = sized(p, end, h, TQ_TYPE_MAP, 2);
			break;
		case 0xdf:
			e = sized(p, end, h, TQ_TYPE_MAP, 4);
			break;
		default: /* 0xc1: never used */
			return TQ_ETYPE;
		}
	}
	if (e != TQ_OK)
		return e;
	if (need(p, end, h->hdr) != TQ_OK)
		return TQ_ETRUNCATED;
	uint64_t left = (uint64_t)(end - p) - h->hdr;
	switch (h->type) {
	case TQ_TYPE_STR:
	case TQ_TYPE_BIN:
	case TQ_TYPE_EXT:
		if (h->len > left)
			return TQ_ELENGTH;
		break;
	case TQ_TYPE_ARRAY: /* each item takes at least one byte */
		if (h->len > left)
			return TQ_ELENGTH;
		break;
	case TQ_TYPE_MAP:
		if (h->len * 2 > left)
			return TQ_ELENGTH;
		break;
	default:
		break;
	}
	return TQ_OK;
}

void tq_reader_init(tq_reader *r, const void *data, size_t len)
{
	r->p_ = data;
	r->end_ = data != NULL ? r->p_ + len : r->p_; /* NULL + 0 is undefined */
}

size_t tq_reader_left(const tq_reader *r)
{
	return (size_t)(r->end_ - r->p_);
}

tq_err tq_reader_peek(const tq_reader *r, tq_type *type)
{
	head h;
	tq_err e = head_parse(r->p_, r->end_, &h);
	if (e == TQ_OK)
		*type = h.type;
	return e;
}

static tq_err take(tq_reader *r, head *h, tq_type want)
{
	tq_err e = head_parse(r->p_, r->end_, h);
	if (e != TQ_OK)
		return e;
	if (h->type != want)
		return TQ_ETYPE;
	return TQ_OK;
}

tq_err tq_read_nil(tq_reader *r)
{
	head h;
	tq_err e = take(r, &h, TQ_TYPE_NIL);
	if (e == TQ_OK)
		r->p_ += h.hdr;
	return e;
}

tq_err tq_read_bool(tq_reader *r, bool *v)
{
	head h;
	tq_err e = take(r, &h, TQ_TYPE_BOOL);
	if (e == TQ_OK) {
		*v = h.v.b;
		r->p_ += h.hdr;
	}
	return e;
}

tq_err tq_read_int(tq_reader *r, int64_t *v)
{
	head h;
	tq_err e = head_parse(r->p_, r->end_, &h);
	if (e != TQ_OK)
		return e;
	if (h.type == TQ_TYPE_INT)
		*v = h.v.i;
	else if (h.type == TQ_TYPE_UINT && h.v.u <= (uint64_t)INT64_MAX)
		*v = (int64_t)h.v.u;
	else
		return h.type == TQ_TYPE_UINT ? TQ_ERANGE : TQ_ETYPE;
	r->p_ += h.hdr;
	return TQ_OK;
}

tq_err tq_read_uint(tq_reader *r, uint64_t *v)
{
	head h;
	tq_err e = head_parse(r->p_, r->end_, &h);
	if (e != TQ_OK)
		return e;
	if (h.type == TQ_TYPE_INT)
		return TQ_ERANGE;
	if (h.type != TQ_TYPE_UINT)
		return TQ_ETYPE;
	*v = h.v.u;
	r->p_ += h.hdr;
	return TQ_OK;
}

tq_err tq_read_double(tq_reader *r, double *v)
{
	head h;
	tq_err e = head_parse(r->p_, r->end_, &h);
	if (e != TQ_OK)
		return e;
	if (h.type == TQ_TYPE_FLOAT)
		*v = h.v.d;
	else if (h.type == TQ_TYPE_INT)
		*v = (double)h.v.i;
	else if (h.type == TQ_TYPE_UINT)
		*v = (double)h.v.u;
	else
		return TQ_ETYPE;
	r->p_ += h.hdr;
	return TQ_OK;
}

static tq_err read_bytes(tq_reader *r, tq_type t, const uint8_t **data, size_t *len)
{
	head h;
	tq_err e = take(r, &h, t);
	if (e != TQ_OK)
		return e;
	*data = r->p_ + h.hdr;
	*len = (size_t)h.len;
	r->p_ += h.hdr + h.len;
	return TQ_OK;
}

tq_err tq_read_str(tq_reader *r, const char **s, size_t *len)
{
	return read_bytes(r, TQ_TYPE_STR, (const uint8_t **)s, len);
}

tq_err tq_read_bin(tq_reader *r, const uint8_t **data, size_t *len)
{
	return read_bytes(r, TQ_TYPE_BIN, data, len);
}

static tq_err read_count(tq_reader *r, tq_type t, uint32_t *n)
{
	head h;
	tq_err e = take(r, &h, t);
	if (e != TQ_OK)
		return e;
	*n = (uint32_t)h.len;
	r->p_ += h.hdr;
	return TQ_OK;
}

tq_err tq_read_array(tq_reader *r, uint32_t *n)
{
	return read_count(r, TQ_TYPE_ARRAY, n);
}

tq_err tq_read_map(tq_reader *r, uint32_t *n)
{
	return read_count(r, TQ_TYPE_MAP, n);
}

static tq_err skip(const uint8_t **pp, const uint8_t *end, int depth, int max_depth)
{
	head h;
	tq_err e = head_parse(*pp, end, &h);
	if (e != TQ_OK)
		return e;
	const uint8_t *p = *pp + h.hdr;
	uint64_t items = 0;
	switch (h.type) {
	case TQ_TYPE_STR:
	case TQ_TYPE_BIN:
	case TQ_TYPE_EXT:
		p += h.len;
		break;
	case TQ_TYPE_ARRAY:
		items = h.len;
		break;
	case TQ_TYPE_MAP:
		items = h.len * 2;
		break;
	default:
		break;
	}
	if ((h.type == TQ_TYPE_ARRAY || h.type == TQ_TYPE_MAP) && depth + 1 > max_depth)
		return TQ_EDEPTH; /* an empty container is a level too */
	for (uint64_t i = 0; i < items; i++) {
		e = skip(&p, end, depth + 1, max_depth);
		if (e != TQ_OK)
			return e;
	}
	*pp = p;
	return TQ_OK;
}

tq_err tq_read_skip(tq_reader *r)
{
	const uint8_t *p = r->p_;
	tq_err e = skip(&p, r->end_, 0, TQ_MAX_DEPTH);
	if (e == TQ_OK)
		r->p_ = p;
	return e;
}

tq_err tq_read_value(tq_reader *r, const uint8_t **data, size_t *len)
{
	const uint8_t *start = r->p_;
	tq_err e = tq_read_skip(r);
	if (e == TQ_OK) {
		*data = start;
		*len = (size_t)(r->p_ - start);
	}
	return e;
}

tq_err tq_read_find(const tq_reader *r, const char *key, tq_reader *value)
{
	tq_reader m = *r;
	uint32_t n;
	size_t klen = strlen(key);
	tq_err e = tq_read_map(&m, &n);
	for (uint32_t i = 0; e == TQ_OK && i < n; i++) {
		tq_type t;
		e = tq_reader_peek(&m, &t);
		if (e == TQ_OK && t == TQ_TYPE_STR) {
			const char *s;
			size_t len;
			e = tq_read_str(&m, &s, &len);
			if (e == TQ_OK && len == klen && memcmp(s, key, len) == 0) {
				*value = m;
				return TQ_OK;
			}
		} else if (e == TQ_OK) {
			e = tq_read_skip(&m); /* a key of another type */
		}
		if (e == TQ_OK)
			e = tq_read_skip(&m); /* its value */
	}
	return e == TQ_OK ? TQ_EEND : e;
}

tq_err tq_reader_end(const tq_reader *r)
{
	return r->p_ == r->end_ ? TQ_OK : TQ_ETRAILING;
}

tq_err tq_value_check(const void *data, size_t len, int max_depth)
{
	const uint8_t *p = data, *end = data != NULL ? p + len : p;
	if (max_depth <= 0 || max_depth > TQ_MAX_DEPTH)
		max_depth = TQ_MAX_DEPTH;
	tq_err e = skip(&p, end, 0, max_depth);
	if (e != TQ_OK)
		return e;
	return p == end ? TQ_OK : TQ_ETRAILING;
}
