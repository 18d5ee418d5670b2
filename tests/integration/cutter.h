/*
 * cutter.h - a TCP relay the tests put between a peer and the broker, to
 * cut the link between them for real: connections reset (RST) while both
 * processes live on, or one or both directions held as on a dead link.
 *
 *   th_cutter *k = th_cutter_new(e->client_ep);
 *   tq_client_opts o = { .broker = th_cutter_endpoint(k) };
 *   ...
 *   th_cutter_reset(k);                 // the client reconnects through k
 *   th_cutter_hold(k, TH_CUT_UP);       // what the client sends stays put
 *   th_cutter_release(k, TH_CUT_UP);
 *   th_cutter_destroy(&k);
 *
 * The relay runs in a thread of its own in the test process, so that the
 * processes on both sides are left as they are.  Every call may be made
 * from any thread.  Reset, hold, release and destroy return once the relay
 * thread has acted on them, so that what a test does next happens after
 * the cut.
 */
#ifndef TQ_TEST_CUTTER_H
#define TQ_TEST_CUTTER_H

#include <stddef.h>

/* Directions of a relayed connection, for th_cutter_hold/release. */
enum {
	TH_CUT_UP = 1,   /* from the peer that connected to the cutter to the target */
	TH_CUT_DOWN = 2, /* from the target to that peer */
	TH_CUT_BOTH = TH_CUT_UP | TH_CUT_DOWN,
};

/* Relayed connections alive at once; a connection beyond them waits in
 * the listener's backlog until one closes. */
#define TH_CUTTER_MAX_CONNS 64

/* How long a cutter relays at most.  One a test left behind (it failed
 * an assertion before its th_cutter_destroy) then resets its connections
 * and closes its listener by itself, and says so on stderr, rather than
 * relay on for the rest of the test program; th_cutter_destroy still
 * frees it.  Longer than any one test needs a cut link. */
#define TH_CUTTER_LIFETIME_MS 120000

typedef struct th_cutter th_cutter;

/* Starts a cutter in front of target, a ZeroMQ endpoint
 * "tcp://A.B.C.D:PORT" (a numeric IPv4 address): it listens on 127.0.0.1
 * on an ephemeral port, and for each connection it accepts opens one of
 * its own to target and relays the bytes both ways.  A connection that
 * target refuses is reset.  Returns NULL when target is not such an
 * endpoint or the listener or thread cannot be made. */
th_cutter *th_cutter_new(const char *target);

/* "tcp://127.0.0.1:PORT": where peers connect to reach target through the
 * cutter.  Valid until th_cutter_destroy. */
const char *th_cutter_endpoint(const th_cutter *k);

/* Resets every connection relayed now, on both sides (closed with
 * SO_LINGER 0: each peer sees ECONNRESET), dropping what the cutter had
 * read and not yet passed on.  The listener goes on accepting, so a peer
 * that reconnects (a ZeroMQ socket does by itself) gets through again. */
void th_cutter_reset(th_cutter *k);

/* Stops passing on the directions in mask (TH_CUT_UP, TH_CUT_DOWN or
 * both), in every connection, those accepted later included, until
 * th_cutter_release: the cutter neither reads nor writes for a direction
 * held, so the bytes wait in the kernel, the sender's TCP window fills up
 * and its writes block, as on a link that went dead; nothing is closed.
 * Bytes the cutter had read before stay with it until the release. */
void th_cutter_hold(th_cutter *k, int mask);
/* Resumes the directions in mask; what was held goes on in order. */
void th_cutter_release(th_cutter *k, int mask);

/* Connections accepted and relayed since th_cutter_new, those closed or
 * reset since included: a peer that reconnected after th_cutter_reset
 * shows as one more. */
size_t th_cutter_connections(th_cutter *k);

/* Stops the relay thread and resets every connection (as
 * th_cutter_reset), then closes the listener and frees the cutter.
 * Accepts NULL; sets *kp to NULL. */
void th_cutter_destroy(th_cutter **kp);

#endif
