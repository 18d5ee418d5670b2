/*
 * cancel.c - `tq cancel REF`: an operator stops any task, owned or
 * detached, through the broker's admin endpoint (tq-broker --admin).
 *
 * It speaks the wire protocol itself (proto/): the admin endpoint holds no
 * sessions, and an operator's CANCEL is one command and its answer
 * (PROTOCOL.md, "Operators"), so the client library, which opens a session
 * with HELLO, is not what it needs.
 */
#include "cli/cli.h"

#include "base/clock.h"
#include "base/hex.h"
#include "base/rand.h"
#include "proto/frames.h"
#include "proto/wire.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static const char cancel_usage[] =
    "usage: tq cancel [--admin EP] [--grace MS] [--timeout MS] REF\n"
    "  Stops task REF (the 32 hex digits `tq start` prints), owned or detached:\n"
    "  a queued task is removed; a running one gets SIGTERM and, --grace later,\n"
    "  SIGKILL.  Its owner, if any, gets ECANCELLED.  Needs the right to use\n"
    "  the broker's admin endpoint (tq-broker --admin).\n"
    "  --admin     the broker's admin endpoint [$TQ_ADMIN]\n"
    "  --grace     time between SIGTERM and SIGKILL, 0..86400000 ms [5000]\n"
    "  --timeout   how long to wait for the broker's answer [2000]\n"
    "  Exit codes: 0 the task is being stopped, 1 no such task, 2 usage,\n"
    "  4 no answer from the admin endpoint.\n";

/* An ipc:// endpoint's socket file must exist and be writable to connect:
 * ZeroMQ would retry in silence until the timeout, so say why now. */
static int check_ipc(const char *ep)
{
	if (strncmp(ep, "ipc://", 6) != 0 || ep[6] == '@') /* '@': abstract, no file */
		return TQC_OK;
	if (access(ep + 6, W_OK) == 0)
		return TQC_OK;
	fprintf(stderr, "tq cancel: cannot reach the admin endpoint %s: %s\n", ep, strerror(errno));
	return TQC_BROKER;
}

/* The answer to our CANCEL: the exit code, having said why when it is not
 * TQC_OK.  -1 for a command that is not about ref (read on). */
static int verdict(const tqi_env *e, const uint8_t ref[TQI_REF_LEN], const char *refhex)
{
	if (e->cmd == TQI_ERROR) {
		fprintf(stderr, "tq cancel: the admin endpoint refused the request: %.*s\n",
		        (int)e->text.n, e->text.p);
		return TQC_TASK_FAILED;
	}
	if ((e->cmd != TQI_ACCEPTED && e->cmd != TQI_REFUSED) || memcmp(e->ref, ref, TQI_REF_LEN) ||
	    (e->cmd == TQI_REFUSED && e->command != TQI_CANCEL))
		return -1;
	if (e->cmd == TQI_ACCEPTED)
		return TQC_OK;
	if (e->code == TQ_ENOTFOUND)
		fprintf(stderr, "tq cancel: no such task %s (it has ended, or never existed)\n",
		        refhex);
	else
		fprintf(stderr, "tq cancel: task %s: %s: %.*s\n", refhex,
		        tq_strerror((tq_err)e->code), (int)e->text.n, e->text.p);
	return TQC_TASK_FAILED;
}

/* Waits for the answer to the CANCEL of ref on sock until `until` (ms, on
 * the monotonic clock; UINT64_MAX: no limit). */
static int await_verdict(void *sock, const uint8_t ref[TQI_REF_LEN], const char *refhex,
                         uint64_t until)
{
	tqi_rx rx;
	tqi_rx_init(&rx, sock, false);
	int rc = -1;
	while (rc < 0) {
		tqi_frames f;
		int got = tqi_rx_recv(&rx, &f, ZMQ_DONTWAIT);
		if (got < 0 && errno != EINTR)
			break;
		if (got > 0) {
			if (tqi_frames_decode(&f, TQI_ROLE_BROKER, TQI_ROLE_CLIENT, NULL, 0) ==
			    TQ_OK)
				rc = verdict(&f.e, ref, refhex);
			tqi_frames_close(&f);
			continue;
		}
		uint64_t now = tqi_now_ms();
		if (now >= until)
			break;
		zmq_pollitem_t it = { sock, 0, ZMQ_POLLIN, 0 };
		uint64_t left = until - now;
		zmq_poll(&it, 1, left > 1000 ? 1000 : (long)left);
	}
	tqi_rx_close(&rx);
	return rc;
}

static int cancel_at(const char *ep, const uint8_t ref[TQI_REF_LEN], const char *refhex,
                     uint32_t grace_ms, int64_t timeout_ms)
{
	int rc = check_ipc(ep);
	if (rc != TQC_OK)
		return rc;
	void *ctx = zmq_ctx_new();
	if (ctx == NULL) {
		fprintf(stderr, "tq cancel: %s\n", zmq_strerror(errno));
		return TQC_BROKER;
	}
	uint8_t id[16];
	tqi_rand_os(id, sizeof id);
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	void *sock = tqi_dealer_open(ctx, id, ep, 0, 0);
	if (sock == NULL) {
		fprintf(stderr, "tq cancel: cannot use admin endpoint %s: %s\n", ep,
		        zmq_strerror(errno));
		rc = TQC_USAGE;
		goto done;
	}
	tqi_env e = { .cmd = TQI_CANCEL, .grace_ms = grace_ms };
	memcpy(e.ref, ref, TQI_REF_LEN);
	if (tqi_cmd_append(&e, NULL, 0, &w) != TQ_OK ||
	    tqi_send(sock, NULL, 0, w.data, w.len, ZMQ_DONTWAIT) != 0) {
		fprintf(stderr, "tq cancel: cannot send to %s: %s\n", ep, zmq_strerror(errno));
		rc = TQC_BROKER;
		goto done;
	}
	uint64_t until = timeout_ms < 0 ? UINT64_MAX : tqi_now_ms() + (uint64_t)timeout_ms;
	rc = await_verdict(sock, ref, refhex, until);
	if (rc < 0) {
		fprintf(stderr,
		        "tq cancel: no answer from the admin endpoint %s within %lld ms (is a "
		        "broker there, started with --admin %s?)\n",
		        ep, (long long)timeout_ms, ep);
		rc = TQC_BROKER;
	}
done:
	if (sock != NULL)
		zmq_close(sock);
	tqi_wbuf_free(&w);
	zmq_ctx_term(ctx);
	return rc;
}

int tqc_cancel(int argc, char **argv)
{
	static const struct option longs[] = { { "admin", required_argument, 0, 'a' },
		                               { "grace", required_argument, 0, 'g' },
		                               { "timeout", required_argument, 0, 't' },
		                               { "help", no_argument, 0, 'h' },
		                               { 0, 0, 0, 0 } };
	const char *admin = NULL;
	unsigned long grace = 5000;
	int64_t timeout = 2000;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'a':
			admin = optarg;
			break;
		case 'g':
			if (tqc_parse_count(optarg, TQI_MAX_GRACE_MS, &grace) != 0)
				return tqc_usage_error(
				    "cancel", cancel_usage,
				    "--grace %s: expected milliseconds, 0..86400000", optarg);
			break;
		case 't':
			if (tqc_parse_timeout(optarg, &timeout) != 0)
				return tqc_usage_error("cancel", cancel_usage,
				                       "--timeout %s: expected milliseconds",
				                       optarg);
			break;
		case 'h':
			fputs(cancel_usage, stdout);
			return TQC_OK;
		default:
			return tqc_usage_error("cancel", cancel_usage,
			                       "unknown or incomplete option '%s'",
			                       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return tqc_usage_error("cancel", cancel_usage, "missing REF");
	if (optind + 1 < argc)
		return tqc_usage_error("cancel", cancel_usage, "unexpected argument '%s'",
		                       argv[optind + 1]);
	const char *refhex = argv[optind];
	uint8_t ref[TQI_REF_LEN];
	if (strlen(refhex) != 2 * TQI_REF_LEN ||
	    tqi_unhex(refhex, 2 * TQI_REF_LEN, ref, TQI_REF_LEN) != 0)
		return tqc_usage_error("cancel", cancel_usage,
		                       "REF '%s': expected the 32 hex digits `tq start` printed",
		                       refhex);
	if (admin == NULL)
		admin = getenv("TQ_ADMIN");
	if (admin == NULL || *admin == '\0')
		return tqc_usage_error("cancel", cancel_usage,
		                       "no admin endpoint: give --admin EP or set $TQ_ADMIN (the "
		                       "broker's --admin)");
	return cancel_at(admin, ref, refhex, (uint32_t)grace, timeout);
}
