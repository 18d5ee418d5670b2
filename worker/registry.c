/* registry.c - name -> handler, looked up by linear scan: a worker offers at
 * most TQI_MAX_FUNCTIONS functions and looks one up per task. */
#include "worker/registry.h"

#include <stdlib.h>
#include <string.h>

int tqi_registry_find(const tqi_registry *r, const char *name, size_t len)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (r->v[i].name_len == len && memcmp(r->v[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

tq_err tqi_registry_add(tqi_registry *r, const char *name, tq_handler fn, void *arg)
{
	size_t len = name ? strlen(name) : 0;
	if (fn == NULL || len == 0 || len > TQI_MAX_NAME || tqi_registry_find(r, name, len) >= 0 ||
	    r->n >= TQI_MAX_FUNCTIONS)
		return TQ_EINVAL;
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 8;
		tqi_handler_entry *v = realloc(r->v, cap * sizeof *v);
		if (v == NULL)
			return TQ_ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	tqi_handler_entry *e = &r->v[r->n++];
	memcpy(e->name, name, len + 1);
	e->name_len = len;
	e->fn = fn;
	e->arg = arg;
	e->last_us = 0;
	return TQ_OK;
}

void tqi_registry_free(tqi_registry *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}
