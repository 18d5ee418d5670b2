/*
 * stream.c - Task.async_stream: map a function over inputs pulled one at a
 * time, with at most max_concurrency tasks running.
 *
 * Invariant: an input is pulled only when a task may be submitted for it,
 * so memory holds at most `window` tasks: max_concurrency running, and
 * (ordered) finished ones waiting for an earlier input's outcome, within
 * 2 x max_concurrency of the next to yield.  Ordered, the slot of input i
 * is ring[i % window]; unordered, it is any free one.  Every input pulled
 * is running until its outcome arrives (one that tq_client_async refused
 * has it at once), and group.ended counts the outcomes, so the tasks
 * running are next_index - group.ended: nothing else keeps that count.
 *
 * A stream may outlive its client by mistake: the client keeps its live
 * streams in a list and detaches them when it is destroyed (c becomes
 * NULL), so that a later call answers TQ_ESTATE instead of reaching freed
 * memory.
 */
#include "client/session.h"
#include "tq/stream.h"

#include "base/clock.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
	tq_task *task; /* NULL: free, unless refused */
	size_t index;
	uint64_t deadline; /* absolute ms; UINT64_MAX: none */
	tq_err refused;    /* TQ_OK, or why the input never became a task */
} sslot;

struct tq_stream {
	tq_client *c;  /* NULL once the client was destroyed */
	tqi_node live; /* in c->streams while c lives */
	char fn[TQI_MAX_NAME + 1];
	tq_stream_input input;
	void *arg;
	tq_stream_opts o;
	tq_buf *args;
	bool inputs_done;
	bool input_failed; /* the callback failed: fail once the rest is yielded */
	size_t next_index; /* the next input to pull */
	size_t head;       /* ordered: the next index to yield */
	size_t yielded;
	size_t window;
	sslot *ring;
	cgroup group;     /* .ended: inputs pulled that have their outcome */
	tq_task *current; /* the last item's task, freed at the next call */
	/* The last item's worker: a copy, since the client's names die with
	 * it and the item must not. */
	char worker[TQI_MAX_NAME + 1];
	tq_err failed;
	char error[TQI_MAX_TEXT];
};

/* True when the worker map at w lists fn among its functions. */
static bool offers(const tq_reader *w, const char *fn)
{
	tq_reader f;
	uint32_t n;
	if (tq_read_find(w, "functions", &f) != TQ_OK || tq_read_array(&f, &n) != TQ_OK)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		const char *s;
		size_t len;
		if (tq_read_str(&f, &s, &len) != TQ_OK)
			return false;
		if (len == strlen(fn) && memcmp(s, fn, len) == 0)
			return true;
	}
	return false;
}

/* The most tasks a stream runs at once: bounds the slots it allocates. */
#define MAX_CONCURRENCY 1000000u

/* The slots (concurrency) of the workers that offer fn, from the broker's
 * stats, at most MAX_CONCURRENCY; 0 when unknown.  The figures come from
 * the network: each is capped before it is added, so no sum can wrap. */
static unsigned worker_slots(tq_client *c, const char *fn)
{
	uint8_t *data;
	size_t len;
	if (tq_client_stats(c, c->broker_timeout_ms, &data, &len) != TQ_OK)
		return 0;
	uint64_t total = 0;
	tq_reader r, ws;
	uint32_t n;
	tq_reader_init(&r, data, len);
	if (tq_read_find(&r, "workers", &ws) == TQ_OK && tq_read_array(&ws, &n) == TQ_OK) {
		for (uint32_t i = 0; i < n && total < MAX_CONCURRENCY; i++) {
			tq_reader v;
			uint64_t conc;
			if (offers(&ws, fn) && tq_read_find(&ws, "concurrency", &v) == TQ_OK &&
			    tq_read_uint(&v, &conc) == TQ_OK)
				total += conc < MAX_CONCURRENCY ? conc : MAX_CONCURRENCY;
			if (tq_read_skip(&ws) != TQ_OK)
				break;
		}
	}
	free(data);
	return total < MAX_CONCURRENCY ? (unsigned)total : MAX_CONCURRENCY;
}

/* No broker figure: as many tasks as this host has CPUs, a guess at what
 * a worker on a similar host runs. */
static unsigned cpu_slots(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		return 1;
	return n < (long)MAX_CONCURRENCY ? (unsigned)n : MAX_CONCURRENCY;
}

tq_err tq_client_async_stream(tq_client *c, const char *fn, tq_stream_input input, void *arg,
                              const tq_stream_opts *opts, tq_stream **out)
{
	if (c == NULL || fn == NULL || input == NULL || out == NULL)
		return TQ_EINVAL;
	size_t fl = strlen(fn);
	if (fl == 0 || fl > TQI_MAX_NAME)
		return TQ_EINVAL;
	tq_stream_opts o = { 0 };
	if (opts != NULL)
		o = *opts;
	if (o.timeout_ms == 0)
		o.timeout_ms = TQ_DEFAULT_TIMEOUT;
	if (o.timeout_ms < 0 && o.timeout_ms != TQ_INFINITY)
		return TQ_EINVAL;
	if (o.retries > TQI_MAX_RETRIES || o.max_concurrency > MAX_CONCURRENCY ||
	    (o.on_timeout != TQ_ON_TIMEOUT_EXIT && o.on_timeout != TQ_ON_TIMEOUT_KILL_TASK))
		return TQ_EINVAL;
	if (o.max_concurrency == 0)
		o.max_concurrency = worker_slots(c, fn);
	if (o.max_concurrency == 0)
		o.max_concurrency = cpu_slots();
	tq_stream *s = calloc(1, sizeof *s);
	if (s == NULL)
		return TQ_ENOMEM;
	s->window = o.unordered ? o.max_concurrency : 2 * (size_t)o.max_concurrency;
	s->ring = calloc(s->window, sizeof *s->ring);
	if (s->ring == NULL || tq_buf_new(&s->args) != TQ_OK) {
		free(s->ring);
		free(s);
		return TQ_ENOMEM;
	}
	s->c = c;
	tqi_list_push_back(&c->streams, &s->live);
	memcpy(s->fn, fn, fl + 1);
	s->input = input;
	s->arg = arg;
	s->o = o;
	*out = s;
	return TQ_OK;
}

static void fail_stream(tq_stream *s, tq_err e, const char *why)
{
	s->failed = e;
	snprintf(s->error, sizeof s->error, "%s", why);
	for (size_t i = 0; i < s->window; i++) {
		tq_task *t = s->ring[i].task;
		if (t != NULL) {
			t->group = NULL;
			tq_task_destroy(&s->ring[i].task); /* cancels what still runs */
		}
	}
}

/* Tasks submitted that have no outcome yet. */
static size_t running(const tq_stream *s)
{
	assert(s->group.ended <= s->next_index);
	return s->next_index - s->group.ended;
}

/* The deadline of each task, 0 for none.  The broker and worker get it one
 * heartbeat late, so that the stream's own timer is the one that speaks;
 * it saturates rather than overflow for a huge timeout. */
static int64_t task_timeout(const tq_stream *s)
{
	if (s->o.timeout_ms <= 0)
		return 0;
	int64_t hb = (int64_t)tqi_hb_ms(s->c);
	return s->o.timeout_ms > INT64_MAX - hb ? INT64_MAX : s->o.timeout_ms + hb;
}

static bool slot_used(const sslot *slot)
{
	return slot->task != NULL || slot->refused != TQ_OK;
}

/* True when the slot's outcome is known and may be yielded. */
static bool slot_ended(const sslot *slot)
{
	return slot->refused != TQ_OK || (slot->task != NULL && slot->task->state == CT_DONE);
}

/* The slot for the next input, or NULL while there is none.  Ordered, it
 * is the input's own, free once the item `window` inputs back is yielded.
 * Unordered, any free slot will do: waiting for ring[i % window] would
 * hold every later input up behind one slow task. */
static sslot *free_slot(tq_stream *s)
{
	if (!s->o.unordered) {
		sslot *slot = &s->ring[s->next_index % s->window];
		return slot_used(slot) ? NULL : slot;
	}
	for (size_t k = 0; k < s->window; k++) {
		sslot *slot = &s->ring[(s->next_index + k) % s->window];
		if (!slot_used(slot))
			return slot;
	}
	return NULL;
}

/* True for the errors of tq_client_async that are about one input's
 * arguments: that input is an item with the error, the others go on. */
static bool refuses_input(tq_err e)
{
	return e == TQ_EINVAL || e == TQ_ETOOBIG;
}

/* Pulls inputs and submits them while there is room. */
static void fill(tq_stream *s)
{
	while (!s->inputs_done && s->failed == TQ_OK && running(s) < s->o.max_concurrency) {
		/* None free: ordered, too far ahead of the head; unordered,
		 * every slot holds an item not yet yielded. */
		sslot *slot = free_slot(s);
		if (slot == NULL)
			return;
		tq_buf_reset(s->args);
		int rc = s->input(s->arg, s->args);
		if (rc == 0) {
			s->inputs_done = true;
			return;
		}
		if (rc < 0 || tq_buf_error(s->args) != TQ_OK) {
			/* Stop pulling; what was submitted before is still
			 * yielded, then the stream fails. */
			s->inputs_done = true;
			s->input_failed = true;
			return;
		}
		tq_task_opts to = { .retries = s->o.retries, .timeout_ms = task_timeout(s) };
		/* Nothing packed is refused here: tq_client_async would take
		 * no bytes at all as "no arguments". */
		tq_task *t;
		tq_err e = tq_buf_size(s->args) == 0
		               ? TQ_EINVAL
		               : tq_client_async(s->c, s->fn, tq_buf_data(s->args),
		                                 tq_buf_size(s->args), &to, &t);
		if (refuses_input(e)) {
			slot->refused = e;
			slot->index = s->next_index++;
			s->group.ended++; /* its outcome is known already */
			continue;
		}
		if (e != TQ_OK) {
			/* Nothing could be submitted: the client itself failed. */
			char why[96];
			snprintf(why, sizeof why, "cannot submit a task: %s", tq_strerror(e));
			fail_stream(s, e, why);
			return;
		}
		t->group = &s->group;
		t->group_index = s->next_index;
		slot->task = t;
		slot->index = s->next_index++;
		slot->deadline =
		    s->o.timeout_ms > 0 ? tqi_now_ms() + (uint64_t)s->o.timeout_ms : UINT64_MAX;
		if (t->state == CT_DONE) /* ended at once, before it joined the group */
			s->group.ended++;
	}
}

/* Ends the timed-out tasks: as items (KILL_TASK) or by failing the stream
 * (EXIT).  Returns the earliest deadline still ahead. */
static uint64_t check_deadlines(tq_stream *s, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < s->window && s->failed == TQ_OK; i++) {
		sslot *slot = &s->ring[i];
		tq_task *t = slot->task;
		if (t == NULL || t->state == CT_DONE)
			continue;
		if (slot->deadline > now) {
			if (slot->deadline < next)
				next = slot->deadline;
			continue;
		}
		char msg[TQI_MAX_NAME + 160];
		snprintf(msg, sizeof msg, "task %.8s (%s) timed out after %lld ms",
		         tqi_task_refhex(t), s->fn, (long long)s->o.timeout_ms);
		if (s->o.on_timeout == TQ_ON_TIMEOUT_EXIT) {
			fail_stream(s, TQ_ETIMEDOUT, msg);
			return UINT64_MAX;
		}
		if (t->state == CT_SUBMITTED)
			tqi_send_cancel(s->c, t, 0);
		tqi_task_end(t, TQ_ETIMEDOUT, msg); /* counted by the group */
	}
	return next;
}

/* The slot whose outcome can be yielded now, or NULL. */
static sslot *ready(tq_stream *s)
{
	if (!s->o.unordered) {
		sslot *slot = &s->ring[s->head % s->window];
		return slot_ended(slot) ? slot : NULL;
	}
	for (size_t i = 0; i < s->window; i++)
		if (slot_ended(&s->ring[i]))
			return &s->ring[i];
	return NULL;
}

/* What an input that was refused says, as its item's error. */
static const char *refusal(tq_err e)
{
	return e == TQ_ETOOBIG ? "not submitted: the arguments are over the payload size limit"
	                       : "not submitted: the arguments are not one msgpack value "
	                         "(nothing, several, or nested too deep)";
}

/* Fills *item from the slot and frees the slot. */
static void yield(tq_stream *s, sslot *slot, tq_stream_item *item)
{
	item->index = slot->index;
	if (slot->refused != TQ_OK) {
		item->outcome = slot->refused;
		item->result = NULL;
		item->len = 0;
		item->error = refusal(slot->refused);
		item->worker = "";
		slot->refused = TQ_OK;
	} else {
		tq_task *t = slot->task;
		slot->task = NULL;
		t->group = NULL;
		t->state = CT_CONSUMED;
		s->current = t;
		item->outcome = t->outcome;
		item->result = tq_task_result(t, &item->len);
		item->error = tq_task_error(t);
		snprintf(s->worker, sizeof s->worker, "%s", tq_task_worker(t));
		item->worker = s->worker;
	}
	s->yielded++;
	if (!s->o.unordered)
		s->head++;
}

/* A wait for the next outcome: group.ended when it began. */
typedef struct {
	const cgroup *group;
	size_t ended;
} progress;

static bool progressed(tq_client *c, void *arg)
{
	(void)c;
	const progress *p = arg;
	return p->group->ended != p->ended;
}

/* True when every input has been yielded and nothing is left to fail. */
static bool ended(const tq_stream *s)
{
	return s->inputs_done && !s->input_failed && s->yielded == s->next_index;
}

void tqi_streams_detach(tq_client *c)
{
	tqi_node *n;
	while ((n = tqi_list_pop_front(&c->streams)) != NULL) {
		tq_stream *s = tqi_container_of(n, tq_stream, live);
		if (s->failed == TQ_OK && !ended(s))
			fail_stream(s, TQ_ESTATE,
			            "the stream cannot go on: its client was destroyed");
		s->c = NULL;
	}
}

tq_err tq_stream_next(tq_stream *s, tq_stream_item *item)
{
	tq_task_destroy(&s->current);
	if (s->c == NULL) /* detached by tqi_streams_detach */
		return s->failed != TQ_OK ? s->failed : TQ_EEND;
	for (;;) {
		if (s->failed != TQ_OK)
			return s->failed;
		fill(s);
		if (s->failed != TQ_OK)
			return s->failed;
		uint64_t next_deadline = check_deadlines(s, tqi_now_ms());
		if (s->failed != TQ_OK)
			return s->failed;
		sslot *slot = ready(s);
		if (slot != NULL) {
			yield(s, slot, item);
			return TQ_OK;
		}
		if (s->inputs_done && s->yielded == s->next_index) {
			if (s->input_failed) {
				char why[64];
				snprintf(why, sizeof why,
				         "the input callback failed after %zu inputs",
				         s->next_index);
				fail_stream(s, TQ_EINVAL, why);
				return s->failed;
			}
			return TQ_EEND;
		}
		progress p = { &s->group, s->group.ended };
		tq_err e = tqi_pump(s->c, next_deadline, progressed, &p);
		if (e != TQ_OK && e != TQ_ETIMEDOUT) {
			fail_stream(s, e, tq_strerror(e));
			return e;
		}
	}
}

const char *tq_stream_error(const tq_stream *s)
{
	return s->error;
}

size_t tq_stream_submitted(const tq_stream *s)
{
	return s->next_index;
}

size_t tq_stream_yielded(const tq_stream *s)
{
	return s->yielded;
}

void tq_stream_destroy(tq_stream **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	tq_stream *s = *sp;
	if (s->c != NULL)
		tqi_list_remove(&s->c->streams, &s->live);
	tq_task_destroy(&s->current);
	for (size_t i = 0; i < s->window; i++)
		if (s->ring[i].task != NULL) {
			s->ring[i].task->group = NULL;
			tq_task_destroy(&s->ring[i].task);
		}
	free(s->ring);
	tq_buf_destroy(&s->args);
	free(s);
	*sp = NULL;
}
