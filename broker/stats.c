/*
 * stats.c - the STATS_REPLY map: counters of every outcome and the live
 * state (workers with their functions and load, queued and running tasks
 * per function).  Lists are capped so the reply stays small whatever the
 * cluster's size; "truncated" says when a cap was hit.
 */
#include "broker/broker.h"

#include <msgpack.h>
#include <string.h>

enum { MAX_LISTED = 1000 };

static void key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
}

static void str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void pack_counters(tqi_broker *b, msgpack_packer *pk)
{
	size_t n = 0;
#define TQI_COUNT_(name) n++;
	TQI_COUNTERS(TQI_COUNT_)
#undef TQI_COUNT_
	msgpack_pack_map(pk, n);
#define TQI_PACK_(name) \
	key(pk, #name); \
	msgpack_pack_uint64(pk, b->n.name);
	TQI_COUNTERS(TQI_PACK_)
#undef TQI_PACK_
}

static void pack_worker(msgpack_packer *pk, const bworker *w)
{
	msgpack_pack_map(pk, 7);
	key(pk, "name");
	str(pk, w->peer.name);
	key(pk, "id");
	str(pk, w->peer.idhex);
	key(pk, "concurrency");
	msgpack_pack_uint32(pk, w->concurrency);
	key(pk, "capacity");
	msgpack_pack_uint32(pk, w->capacity);
	key(pk, "load");
	msgpack_pack_uint32(pk, w->load);
	key(pk, "draining");
	w->draining ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	key(pk, "functions");
	msgpack_pack_array(pk, w->noffers);
	for (uint32_t i = 0; i < w->noffers; i++)
		str(pk, w->offers[i].fn->name);
}

typedef struct {
	msgpack_packer *pk;
	size_t left;
} func_walk;

static void pack_func(tqi_hnode *n, void *arg)
{
	func_walk *fw = arg;
	if (fw->left == 0)
		return;
	fw->left--;
	const bfunc *f = tqi_container_of(n, bfunc, hnode);
	msgpack_packer *pk = fw->pk;
	msgpack_pack_map(pk, 4);
	key(pk, "name");
	str(pk, f->name);
	key(pk, "queued");
	msgpack_pack_uint64(pk, f->queue.len);
	key(pk, "running");
	msgpack_pack_uint64(pk, f->running);
	key(pk, "workers");
	msgpack_pack_uint64(pk, f->offers.len);
}

tq_err tqi_stats_encode(tqi_broker *b, tqi_wbuf *out)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, out, tqi_wbuf_sink);
	size_t nworkers = b->live.len < MAX_LISTED ? b->live.len : MAX_LISTED;
	size_t nfuncs = tqi_hmap_count(&b->functions);
	if (nfuncs > MAX_LISTED)
		nfuncs = MAX_LISTED;
	msgpack_pack_map(&pk, 10);
	key(&pk, "connections"); /* clients and workers, now (conns.c) */
	msgpack_pack_uint64(&pk, b->conns.count);
	key(&pk, "instance");
	str(&pk, b->instance_hex);
	key(&pk, "uptime_ms");
	msgpack_pack_uint64(&pk, b->now_ms - b->started_ms);
	key(&pk, "tasks");
	msgpack_pack_uint64(&pk, b->ntasks);
	key(&pk, "clients");
	msgpack_pack_uint64(&pk, b->client_list.len);
	key(&pk, "heartbeat_ms");
	msgpack_pack_uint32(&pk, b->opts.heartbeat_ms);
	key(&pk, "counters");
	pack_counters(b, &pk);
	key(&pk, "workers");
	msgpack_pack_array(&pk, nworkers);
	size_t i = 0;
	tqi_node *it, *nx;
	tqi_list_each(&b->live, it, nx)
	{
		if (i++ == nworkers)
			break;
		pack_worker(&pk, tqi_container_of(it, bworker, live));
	}
	key(&pk, "functions");
	msgpack_pack_array(&pk, nfuncs);
	func_walk fw = { &pk, nfuncs };
	tqi_hmap_foreach(&b->functions, pack_func, &fw);
	key(&pk, "truncated");
	(nworkers < b->live.len || nfuncs < tqi_hmap_count(&b->functions))
	    ? msgpack_pack_true(&pk)
	    : msgpack_pack_false(&pk);
	return out->oom ? TQ_ENOMEM : TQ_OK;
}
