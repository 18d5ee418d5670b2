/* registry.h - the functions a worker offers, shared (by fork) between the
 * worker's loop and its executors. */
#ifndef TQI_REGISTRY_H
#define TQI_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"
#include "tq/worker.h"

typedef struct {
	char name[TQI_MAX_NAME + 1];
	size_t name_len;
	tq_handler fn;
	void *arg;
	uint32_t last_us; /* run in the loop (inline.c): its last run's time + 1; 0: never */
} tqi_handler_entry;

typedef struct {
	tqi_handler_entry *v;
	uint32_t n, cap;
} tqi_registry;

/* The index of the function called name, or -1. */
int tqi_registry_find(const tqi_registry *r, const char *name, size_t len);

/* Adds an entry; returns TQ_OK, TQ_EINVAL (bad or duplicate name) or TQ_ENOMEM. */
tq_err tqi_registry_add(tqi_registry *r, const char *name, tq_handler fn, void *arg);

void tqi_registry_free(tqi_registry *r);

#endif
