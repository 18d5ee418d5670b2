/*
 * task.c - one task's life as its owner drives it: async and start, await,
 * yield, shutdown, ignore, and what the handle tells afterwards.
 *
 * Invariant: an outcome reaches the caller once.  A task moves
 * SUBMITTED -> DONE when its answer arrives and DONE -> CONSUMED when a
 * call returns it; answers for a CONSUMED task are strays, except the
 * answer owed to a cancel the client sent (see cdropped).  A task that is
 * ignored before the broker confirmed it has no handle: it is an orphan,
 * owned by the client until it ends.
 */
#include "client/session.h"

#include "base/clock.h"
#include "base/hex.h"
#include "proto/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t empty_args[] = { 0x90 }; /* [] */

static tq_err new_task(tq_client *c, const char *fn, const void *args, size_t len,
                       const tq_task_opts *opts, bool detached, tq_task **out)
{
	if (c == NULL || fn == NULL || out == NULL)
		return TQ_EINVAL;
	size_t fl = strlen(fn);
	if (fl == 0 || fl > TQI_MAX_NAME)
		return TQ_EINVAL;
	if (args == NULL) {
		args = empty_args;
		len = sizeof empty_args;
	}
	if (len > TQI_DEFAULT_MAX_PAYLOAD)
		return TQ_ETOOBIG;
	if (tq_value_check(args, len, 0) != TQ_OK)
		return TQ_EINVAL;
	tq_task_opts o = { 0 };
	if (opts != NULL)
		o = *opts;
	if (o.timeout_ms < 0 || o.retries > TQI_MAX_RETRIES)
		return TQ_EINVAL;
	tq_task *t = calloc(1, sizeof *t);
	if (t == NULL)
		return TQ_ENOMEM;
	t->fn = tqi_intern(c, fn, fl);
	if (t->fn == NULL || zmq_msg_init_size(&t->args, len) != 0) {
		free(t);
		return TQ_ENOMEM;
	}
	memcpy(zmq_msg_data(&t->args), args, len);
	zmq_msg_init(&t->result);
	t->client = c;
	memcpy(t->ref, c->next_ref, TQI_REF_LEN);
	tqi_rand_bytes(&c->rng, c->next_ref, TQI_REF_LEN);
	tqi_hmap_prefetch(&c->pending, c->next_ref, TQI_REF_LEN);
	t->retries_left = o.retries;
	t->keep_on_timeout = o.keep_on_timeout;
	t->detached = detached;
	t->deadline_ms = o.timeout_ms ? tqi_now_ms() + (uint64_t)o.timeout_ms : 0;
	t->state = CT_CONSUMED; /* not pending until submitted */
	t->outcome = TQ_ERUNNING;
	tqi_node_init(&t->wnode);
	tqi_list_push_back(&c->tasks, &t->all);
	*out = t;
	return TQ_OK;
}

static void free_task(tq_task *t)
{
	if (t->client != NULL) {
		tqi_task_unlink(t);
		tqi_list_remove(t->orphan ? &t->client->orphans : &t->client->tasks, &t->all);
	}
	zmq_msg_close(&t->args);
	zmq_msg_close(&t->result);
	free(t->error);
	free(t);
}

tq_err tq_client_async(tq_client *c, const char *fn, const void *args, size_t len,
                       const tq_task_opts *opts, tq_task **out)
{
	tq_task *t;
	tq_err e = new_task(c, fn, args, len, opts, false, &t);
	if (e != TQ_OK)
		return e;
	e = tqi_submit(c, t);
	if (e != TQ_OK && e != TQ_ETIMEDOUT) {
		free_task(t);
		return e;
	}
	*out = t;
	tqi_read_ahead(c);
	return TQ_OK;
}

/* Parses JSON arguments into a scratch buffer and calls `then`. */
static tq_err with_json(const char *json, tqi_wbuf *w)
{
	if (json == NULL)
		return TQ_OK;
	tqi_wbuf_init(w);
	tq_err e = tqi_json_to_msgpack(json, strlen(json), w);
	if (e != TQ_OK)
		tqi_wbuf_free(w);
	return e;
}

tq_err tq_client_async_json(tq_client *c, const char *fn, const char *json,
                            const tq_task_opts *opts, tq_task **out)
{
	tqi_wbuf w;
	tq_err e = with_json(json, &w);
	if (e != TQ_OK)
		return TQ_EINVAL;
	e = tq_client_async(c, fn, json ? w.data : NULL, json ? w.len : 0, opts, out);
	if (json)
		tqi_wbuf_free(&w);
	return e;
}

static bool ended(tq_client *c, void *arg)
{
	(void)c;
	tq_task *t = arg;
	return t->state == CT_DONE;
}

tq_err tq_client_start(tq_client *c, const char *fn, const void *args, size_t len,
                       const tq_task_opts *opts, char *ref_hex)
{
	tq_task *t;
	tq_err e = new_task(c, fn, args, len, opts, true, &t);
	if (e != TQ_OK)
		return e;
	if (ref_hex != NULL)
		memcpy(ref_hex, tqi_task_refhex(t), sizeof t->refhex);
	e = tqi_submit(c, t);
	if (e == TQ_OK) {
		/* Wait for ACCEPTED, never for the task; the broker timeout
		 * bounds the wait when no broker answers. */
		uint64_t until = tqi_now_ms() + (uint64_t)c->broker_timeout_ms;
		e = tqi_pump(c, until, ended, t);
		if (e == TQ_ETIMEDOUT && t->state != CT_DONE) {
			e = TQ_EBROKERLOST;
		} else {
			e = t->outcome;
		}
	}
	free_task(t);
	return e;
}

tq_err tq_client_start_json(tq_client *c, const char *fn, const char *json,
                            const tq_task_opts *opts, char *ref_hex)
{
	tqi_wbuf w;
	tq_err e = with_json(json, &w);
	if (e != TQ_OK)
		return TQ_EINVAL;
	e = tq_client_start(c, fn, json ? w.data : NULL, json ? w.len : 0, opts, ref_hex);
	if (json)
		tqi_wbuf_free(&w);
	return e;
}

/* Absolute deadline of a wait of timeout_ms from now. */
static uint64_t until_of(int64_t timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : tqi_now_ms() + (uint64_t)timeout_ms;
}

static tq_err consume(tq_task *t)
{
	t->state = CT_CONSUMED;
	return t->outcome;
}

/* The owner gave up waiting: end the task with a timeout, naming what was
 * known (no worker offers the function), and cancel it unless told not
 * to. */
static tq_err give_up(tq_task *t, int64_t timeout_ms)
{
	tq_client *c = t->client;
	char msg[TQI_MAX_NAME + 160];
	tq_err code = t->noworker ? TQ_ENOWORKER : TQ_ETIMEDOUT;
	if (t->noworker)
		snprintf(msg, sizeof msg,
		         "task %.8s (%s) timed out after %lld ms: no worker offers '%s'",
		         tqi_task_refhex(t), t->fn->s, (long long)timeout_ms, t->fn->s);
	else
		snprintf(msg, sizeof msg, "task %.8s (%s) timed out after %lld ms",
		         tqi_task_refhex(t), t->fn->s, (long long)timeout_ms);
	if (!t->keep_on_timeout && t->state == CT_SUBMITTED)
		tqi_send_cancel(c, t, 0);
	tqi_task_end(t, code, msg);
	return consume(t);
}

tq_err tq_task_await(tq_task *t, int64_t timeout_ms)
{
	if (t == NULL || t->client == NULL || t->state == CT_CONSUMED)
		return TQ_ESTATE;
	if (t->state == CT_DONE) /* came while waiting for others: no clock, no poll */
		return consume(t);
	tq_client *c = t->client;
	uint64_t until = until_of(timeout_ms);
	tq_err e = tqi_pump(c, tqi_deadline_lag(c, until), ended, t);
	if (e == TQ_ETIMEDOUT && tqi_now_ms() < until) {
		/* Still running: hand the await's deadline to the broker and
		 * the worker too (see tqi_deadline_lag), then wait on. */
		if (!t->keep_on_timeout)
			tqi_send_await_deadline(c, &t, 1, until);
		e = tqi_pump(c, until, ended, t);
	}
	if (e == TQ_OK)
		return consume(t);
	if (e != TQ_ETIMEDOUT)
		return e;
	return give_up(t, timeout_ms);
}

tq_err tq_task_yield(tq_task *t, int64_t timeout_ms)
{
	if (t == NULL || t->client == NULL || t->state == CT_CONSUMED)
		return TQ_ESTATE;
	if (t->state == CT_DONE)
		return consume(t);
	tq_err e = tqi_pump(t->client, until_of(timeout_ms), ended, t);
	if (e == TQ_OK)
		return consume(t);
	return e == TQ_ETIMEDOUT ? TQ_ERUNNING : e;
}

tq_err tq_task_shutdown(tq_task *t, int64_t grace_ms)
{
	if (t == NULL || t->client == NULL || t->state == CT_CONSUMED)
		return TQ_ESTATE;
	if (grace_ms < 0)
		grace_ms = 0;
	tq_client *c = t->client;
	if (t->state == CT_WAITING) {
		tqi_task_end(t, TQ_ECANCELLED, NULL);
		return consume(t);
	}
	if (t->state == CT_SUBMITTED) {
		tqi_send_cancel(
		    c, t, (uint32_t)(grace_ms > TQI_MAX_GRACE_MS ? TQI_MAX_GRACE_MS : grace_ms));
		/* The answer comes as the result (it finished meanwhile) or as
		 * a cancellation; give the kill and its report time to arrive. */
		uint64_t until = tqi_now_ms() + (uint64_t)grace_ms + (uint64_t)c->broker_timeout_ms;
		if (tqi_pump(c, until, ended, t) != TQ_OK) {
			char msg[TQI_MAX_NAME + 96];
			snprintf(msg, sizeof msg,
			         "task %.8s (%s) was cancelled: no confirmation came",
			         tqi_task_refhex(t), t->fn->s);
			tqi_task_end(t, TQ_ECANCELLED, msg);
		}
	}
	return consume(t);
}

/* The client keeps t, which has no handle any more, until it ends: a
 * resubmission after a broker restart, or the broker's word on it, may
 * come in any later wait (see tqi_pump). */
static void adopt(tq_task *t)
{
	tq_client *c = t->client;
	tqi_list_remove(&c->tasks, &t->all);
	tqi_list_push_back(&c->orphans, &t->all);
	t->orphan = true;
}

void tqi_reap_orphans(tq_client *c, bool all)
{
	tqi_node *n, *nx;
	tqi_list_each(&c->orphans, n, nx)
	{
		tq_task *t = tqi_container_of(n, tq_task, all);
		if (all || t->state == CT_DONE)
			free_task(t);
	}
}

void tq_task_ignore(tq_task **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	tq_task *t = *tp;
	*tp = NULL;
	tq_client *c = t->client;
	if (c != NULL && (t->state == CT_SUBMITTED || t->state == CT_WAITING)) {
		/* Every (re)submission from now on is detached.  A task lost
		 * with a broker (WAITING) is resubmitted when one answers. */
		t->detached = true;
		if (t->state == CT_SUBMITTED)
			tqi_send_detach(c, t);
		/* Wait until the broker holds it detached (or it has ended), so
		 * that the caller may exit right away without taking it along. */
		tqi_pump(c, tqi_now_ms() + (uint64_t)c->broker_timeout_ms, ended, t);
		if (t->state != CT_DONE) {
			adopt(t);
			return;
		}
	}
	free_task(t);
}

void tq_task_destroy(tq_task **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	tq_task *t = *tp;
	if (t->client != NULL && t->state == CT_SUBMITTED)
		tqi_send_cancel(t->client, t, 0); /* nobody will ever wait for it */
	free_task(t);
	*tp = NULL;
}

/* ---- accessors ---- */

const uint8_t *tq_task_result(const tq_task *t, size_t *len)
{
	if (t == NULL || t->outcome != TQ_OK || zmq_msg_size((zmq_msg_t *)&t->result) == 0) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = zmq_msg_size((zmq_msg_t *)&t->result);
	return zmq_msg_data((zmq_msg_t *)&t->result);
}

tq_err tq_task_result_int(const tq_task *t, int64_t *v)
{
	size_t len;
	const uint8_t *d = tq_task_result(t, &len);
	if (d == NULL)
		return TQ_ESTATE;
	tq_reader r;
	tq_reader_init(&r, d, len);
	return tq_read_int(&r, v);
}

tq_err tq_task_result_json(const tq_task *t, char **json)
{
	size_t len;
	const uint8_t *d = tq_task_result(t, &len);
	if (d == NULL)
		return TQ_ESTATE;
	return tq_value_to_json(d, len, json);
}

tq_err tq_task_status(const tq_task *t)
{
	if (t == NULL)
		return TQ_EINVAL;
	if (t->client != NULL && (t->state == CT_SUBMITTED || t->state == CT_WAITING)) {
		/* Reads what has arrived, without waiting: `until` is now.  The
		 * task is the caller's to change; const says only that this
		 * call does not consume its outcome. */
		tq_task *mt = (tq_task *)t;
		tqi_pump(mt->client, tqi_now_ms(), ended, mt);
	}
	return t->state == CT_DONE || t->state == CT_CONSUMED ? t->outcome : TQ_ERUNNING;
}

const char *tq_task_error(const tq_task *t)
{
	return t && t->error ? t->error : "";
}

const char *tqi_task_refhex(tq_task *t)
{
	if (t->refhex[0] == '\0')
		tqi_hex(t->ref, TQI_REF_LEN, t->refhex);
	return t->refhex;
}

const char *tq_task_ref(const tq_task *t)
{
	/* The hex is a cache inside the handle, made when first asked for. */
	return tqi_task_refhex((tq_task *)t);
}

const char *tq_task_function(const tq_task *t)
{
	return t->fn ? t->fn->s : "";
}

const char *tq_task_worker(const tq_task *t)
{
	return t->worker ? t->worker->s : "";
}

unsigned tq_task_attempt(const tq_task *t)
{
	return t->attempt;
}

tq_client *tq_task_owner(const tq_task *t)
{
	return t->client;
}
