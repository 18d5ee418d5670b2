/*
 * admin.c - the operators' endpoint: cancelling any task, and the stats.
 *
 * On the client endpoint a peer may cancel only the tasks it owns, so a
 * task started detached has no one who may stop it before its deadline.
 * An operator may: the admin endpoint is a ROUTER of its own, bound only
 * when tq-broker --admin names it, and reaching it is the right (for an
 * ipc:// endpoint, the permissions of its socket file and directory).
 * Operators speak two of the client's commands, CANCEL and STATS; anything
 * else is refused with ECOMMAND.
 *
 * Invariant: every well-formed CANCEL is answered, ACCEPTED when the task
 * was found (removed from its queue, or asked to stop on its worker) and
 * REFUSED{CANCEL, ENOTFOUND} when the broker holds no such task; the task's owner,
 * if any, hears FAILED{ECANCELLED} at once, and its outcome is counted
 * once.  Each task an operator cancels is logged once with its ref; what
 * an operator can repeat (a cancel of a task already stopping, or of no
 * task) is logged at a bounded rate.  Answers go once, without an outbox:
 * an operator that does not read them loses them, and costs the broker
 * nothing.
 */
#include "broker/broker.h"

#include "base/hex.h"

#include <stdio.h>
#include <string.h>

static const char by_operator[] = "cancelled by an operator";

static void answer(tqi_broker *b, const tqi_frames *f, const tqi_env *e)
{
	if (tqi_send_raw(b, b->admin_sock, &f->id, e) != 0)
		tqi_log_limited(&b->bad_log, TQI_LOG_WARN,
		                "could not answer an operator: not reading, or gone");
}

static void on_cancel(tqi_broker *b, const tqi_frames *f, const tqi_env *e)
{
	char ref[2 * TQI_REF_LEN + 1];
	tqi_hex(e->ref, TQI_REF_LEN, ref);
	btask *t = tqi_task_find(b, e->ref);
	if (t == NULL) {
		static const char why[] = "no such task: it has ended, or never existed";
		tqi_log_limited(&b->admin_log, TQI_LOG_INFO,
		                "an operator asked to cancel task %s: no such task", ref);
		tqi_env r = { .cmd = TQI_REFUSED,
			      .command = TQI_CANCEL,
			      .code = TQ_ENOTFOUND,
			      .text = { why, sizeof why - 1 } };
		memcpy(r.ref, e->ref, TQI_REF_LEN);
		answer(b, f, &r);
		return;
	}
	const char *owner = t->owner != NULL ? t->owner->peer.name : NULL;
	if (t->state == TASK_QUEUED) {
		tqi_info("task %s (%s) cancelled by an operator while queued%s%s", ref, t->fn->name,
		         owner ? "; told its owner " : "", owner ? owner : "");
		b->n.cancelled++;
		tqi_task_fail(b, t, TQ_ECANCELLED, by_operator);
		tqi_task_free(b, t);
	} else {
		/* A task already answered (expired, its owner gone, cancelled
		 * by an operator before) was counted and logged then; the
		 * worker's confirmation is not counted again. */
		bool first = !(t->flags & TASKF_ANSWERED);
		char line[3 * TQI_MAX_NAME + 160];
		snprintf(line, sizeof line,
		         "task %s (%s) cancelled by an operator%s: stopping it on worker %s "
		         "(grace %u ms)%s%s",
		         ref, t->fn->name, first ? "" : " (already ending)", t->worker->peer.name,
		         e->grace_ms, owner ? "; told its owner " : "", owner ? owner : "");
		if (first) {
			tqi_info("%s", line);
			b->n.cancelled++;
		} else {
			tqi_log_limited(&b->admin_log, TQI_LOG_INFO, "%s", line);
		}
		tqi_task_fail(b, t, TQ_ECANCELLED, by_operator);
		t->flags |= TASKF_ANSWERED;
		if (t->owner != NULL) {
			tqi_list_remove(&t->owner->tasks, &t->cnode);
			t->owner = NULL;
		}
		/* Sent even when a CANCEL went before (its owner's, or another
		 * operator's): a worker keeps the earlier of two kill times, so
		 * an operator can cut a long grace short. */
		tqi_cancel_on_worker(b, t, e->grace_ms);
	}
	tqi_env a = { .cmd = TQI_ACCEPTED };
	memcpy(a.ref, e->ref, TQI_REF_LEN);
	answer(b, f, &a);
}

static void on_stats(tqi_broker *b, const tqi_frames *f)
{
	tqi_wbuf map;
	tqi_wbuf_init(&map);
	if (tqi_stats_encode(b, &map) == TQ_OK) {
		tqi_env e = { .cmd = TQI_STATS_REPLY, .stats = { map.data, map.len, 1 } };
		answer(b, f, &e);
	}
	tqi_wbuf_free(&map);
}

static void admin_message(tqi_broker *b, tqi_frames *f)
{
	char why[256];
	tq_err err = tqi_frames_decode(f, TQI_ROLE_CLIENT, TQI_ROLE_BROKER, why, sizeof why);
	if (err == TQ_OK && f->e.cmd != TQI_CANCEL && f->e.cmd != TQI_STATS) {
		err = TQ_ECOMMAND;
		snprintf(why, sizeof why,
		         "%s is not allowed on the admin endpoint (CANCEL, STATS are)",
		         tqi_cmd_name(f->e.cmd));
	}
	if (err != TQ_OK) {
		tqi_bad_message(b, b->admin_sock, "operator", f, err, why);
		return;
	}
	if (f->e.cmd == TQI_CANCEL)
		on_cancel(b, f, &f->e);
	else
		on_stats(b, f);
}

void tqi_admin_drain(tqi_broker *b)
{
	for (int i = 0; i < TQI_RX_TURN; i++) {
		tqi_frames f;
		if (tqi_rx_recv(&b->rx_admin, &f, ZMQ_DONTWAIT) <= 0)
			return;
		admin_message(b, &f);
		tqi_frames_close(&f);
	}
}

/* True for a tcp:// address (after the scheme) that only this host reaches. */
static bool loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "[::1]", 5) == 0 ||
	       strncmp(addr, "localhost:", 10) == 0;
}

void tqi_admin_announce(tqi_broker *b)
{
	if (b->admin_sock == NULL)
		return;
	const char *ep = b->admin_endpoint;
	tqi_info("operators at admin=%s may cancel any task", ep);
	if (strncmp(ep, "tcp://", 6) == 0 && !loopback(ep + 6))
		tqi_warn("the admin endpoint %s may be reachable from other hosts: whoever "
		         "reaches it can cancel any task",
		         ep);
}
