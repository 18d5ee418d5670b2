/* wbuf.c - growable buffer with inline storage; the msgpack_packer sink. */
#include "proto/wbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int tqi_wbuf_sink(void *data, const char *buf, size_t len)
{
	return tqi_wbuf_append(data, buf, len);
}

void tqi_wbuf_init(tqi_wbuf *b)
{
	b->data = b->inline_;
	b->len = 0;
	b->cap = sizeof b->inline_;
	b->oom = 0;
}

void tqi_wbuf_free(tqi_wbuf *b)
{
	if (b->data != b->inline_)
		free(b->data);
	b->data = b->inline_;
	b->len = 0;
	b->cap = sizeof b->inline_;
}

void tqi_wbuf_reset(tqi_wbuf *b)
{
	b->len = 0;
	b->oom = 0;
}

uint8_t *tqi_wbuf_grow(tqi_wbuf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (n > b->cap - b->len) {
		size_t cap = b->cap;
		while (n > cap - b->len) {
			if (cap > SIZE_MAX / 2) {
				b->oom = 1;
				return NULL;
			}
			cap *= 2;
		}
		uint8_t *d = b->data == b->inline_ ? malloc(cap) : realloc(b->data, cap);
		if (d == NULL) {
			b->oom = 1;
			return NULL;
		}
		if (b->data == b->inline_)
			memcpy(d, b->inline_, b->len);
		b->data = d;
		b->cap = cap;
	}
	return b->data + b->len;
}

int tqi_wbuf_grow_append(tqi_wbuf *b, const void *data, size_t len)
{
	uint8_t *to = tqi_wbuf_grow(b, len);
	if (to == NULL)
		return -1;
	if (len > 0)
		memcpy(to, data, len);
	b->len += len;
	return 0;
}

uint8_t *tqi_wbuf_release(tqi_wbuf *b, size_t *len)
{
	uint8_t *out;
	*len = b->len;
	if (b->data == b->inline_) {
		out = malloc(b->len ? b->len : 1);
		if (out != NULL)
			memcpy(out, b->inline_, b->len);
	} else {
		out = b->data;
	}
	b->data = b->inline_;
	b->cap = sizeof b->inline_;
	b->len = 0;
	return out;
}
