/* args.c - command-line words and input lines to msgpack argument lists. */
#include "cli/args.h"

#include "proto/json.h"

#include <string.h>

/* True when the whole word is a JSON number. */
static int is_number(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && s[i] == '-')
		i++;
	if (i >= n)
		return 0;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return 0;
	if (i < n && s[i] == '.') {
		size_t d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t d = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return 0;
	}
	return i == n;
}

tq_err tqc_pack_word(tq_buf *b, const char *w, size_t n)
{
	if (n > 0 && (is_number(w, n) || w[0] == '[' || w[0] == '{' || w[0] == '"')) {
		/* A JSON value if it parses as one; otherwise the text itself. */
		if (tq_pack_json(b, w, n) == TQ_OK)
			return TQ_OK;
		if (tq_buf_error(b) != TQ_OK)
			return tq_buf_error(b);
	}
	return tq_pack_strn(b, w, n);
}

tq_err tqc_pack_argv(tq_buf *b, char **argv, int argc)
{
	tq_pack_array(b, (uint32_t)argc);
	for (int i = 0; i < argc; i++)
		tqc_pack_word(b, argv[i], strlen(argv[i]));
	return tq_buf_error(b);
}

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Packs the words of s into b (when b is not NULL) and counts them. */
static tq_err scan_line(tq_buf *b, const char *s, size_t n, uint32_t *count, const char **why)
{
	size_t i = 0;
	*count = 0;
	for (;;) {
		while (i < n && blank(s[i]))
			i++;
		if (i >= n)
			return TQ_OK;
		size_t start = i;
		if (s[i] == '[' || s[i] == '{' || s[i] == '"') {
			/* One JSON value, blanks and all. */
			tqi_wbuf w;
			tqi_wbuf_init(&w);
			tq_err e = tqi_json_parse_value(s, n, &i, &w);
			tqi_wbuf_free(&w);
			if (e != TQ_OK || (i < n && !blank(s[i]))) {
				*why = "malformed JSON value";
				return TQ_EINVAL;
			}
		} else {
			while (i < n && !blank(s[i]))
				i++;
		}
		if (b != NULL) {
			tq_err e = tqc_pack_word(b, s + start, i - start);
			if (e != TQ_OK)
				return e;
		}
		(*count)++;
	}
}

tq_err tqc_pack_line(tq_buf *b, const char *s, size_t n, const char **why)
{
	uint32_t count;
	*why = NULL;
	/* Count first: msgpack writes an array's length before its items. */
	tq_err e = scan_line(NULL, s, n, &count, why);
	if (e != TQ_OK)
		return e;
	tq_pack_array(b, count);
	return scan_line(b, s, n, &count, why);
}
