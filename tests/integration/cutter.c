/*
 * cutter.c - the tests' TCP relay: one thread polls the listener, a
 * self-pipe and both sockets of every relayed connection, and moves the
 * bytes each way through a buffer of its own per direction.
 *
 * The invariant: a direction is read from only while its buffer is empty
 * and it is not held, and written to only while it is not held.  So a
 * held direction costs the relay nothing and leaves the bytes in the
 * kernel, where they push back on the sender as a dead link would; and
 * every descriptor polled is one the relay can make progress on, so the
 * loop never spins.  Control calls take effect between two polls: the
 * caller sets what it wants under the mutex, wakes the poll through the
 * pipe and waits until the relay thread says it has taken it in.
 */
#include "cutter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	FLOW_BYTES = 64 * 1024,
	/* The poll's bound: a safety net only, the pipe wakes it for
	 * control calls. */
	POLL_MS = 50,
};

/* One direction of a connection: bytes read from one socket and not yet
 * written to the other. */
typedef struct {
	uint8_t buf[FLOW_BYTES];
	size_t off, len; /* what is left to write: buf[off, off + len) */
	bool eof;        /* its source sent FIN */
	bool shut;       /* ... and that FIN was passed on (shutdown SHUT_WR) */
} flow;

/* A relayed connection: fd[0] the peer's, accepted; fd[1] the cutter's
 * own to the target.  Direction d (0 up, 1 down) reads fd[d] and writes
 * fd[1 - d]. */
typedef struct {
	int fd[2];
	flow f[2];
} conn;

typedef enum { CONN_ALIVE, CONN_CLOSED, CONN_BROKEN } conn_state;

struct th_cutter {
	char endpoint[64]; /* tcp://127.0.0.1:PORT, set once */
	struct sockaddr_in target;
	int listener;
	int wake[2]; /* self-pipe: [1] written by control calls, [0] polled */
	pthread_t thread;

	pthread_mutex_t mu;
	pthread_cond_t acted;
	/* Under mu: what control calls asked for, and what the relay did. */
	int held;                 /* TH_CUT_* mask */
	bool reset, stop;         /* asked for, not yet done */
	bool stopped;             /* the relay thread has ended */
	uint64_t asked, acted_on; /* control calls made / taken in */
	size_t accepted;          /* connections relayed so far */
	uint64_t stop_at_ms;      /* monotonic: TH_CUTTER_LIFETIME_MS after th_cutter_new */

	/* The relay thread's own. */
	conn *conns[TH_CUTTER_MAX_CONNS];
	size_t nconns;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int dir_bit(int d)
{
	return d == 0 ? TH_CUT_UP : TH_CUT_DOWN;
}

/* Closes fd so that its peer sees a reset (RST), not an orderly end. */
static void close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

static void conn_free(conn *c, bool reset)
{
	for (int i = 0; i < 2; i++) {
		if (reset)
			close_reset(c->fd[i]);
		else
			close(c->fd[i]);
	}
	free(c);
}

static void reset_all(th_cutter *k)
{
	for (size_t i = 0; i < k->nconns; i++)
		conn_free(k->conns[i], true);
	k->nconns = 0;
}

/* The events the relay wants on side s of c (0 when none): readable when
 * the direction that reads it is not held, open and has room, writable
 * when the one that writes it is not held and has bytes waiting. */
static short wanted(const conn *c, int s, int held)
{
	short ev = 0;
	const flow *in = &c->f[s], *out = &c->f[1 - s];
	if (!(held & dir_bit(s)) && !in->eof && in->len == 0)
		ev |= POLLIN;
	if (!(held & dir_bit(1 - s)) && out->len > 0)
		ev |= POLLOUT;
	return ev;
}

static bool would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Moves what it can of direction d; false when a socket failed (a reset
 * by its peer, mostly). */
static bool flow_pump(conn *c, int d, bool readable, int held)
{
	flow *f = &c->f[d];
	if (held & dir_bit(d))
		return true;
	if (readable && !f->eof && f->len == 0) {
		ssize_t n = recv(c->fd[d], f->buf, sizeof f->buf, 0);
		if (n > 0) {
			f->off = 0;
			f->len = (size_t)n;
		} else if (n == 0) {
			f->eof = true;
		} else if (!would_block()) {
			return false;
		}
	}
	/* Written at once rather than after the next poll: a socket that
	 * was just read from usually has room on the other side. */
	if (f->len > 0) {
		ssize_t n = send(c->fd[1 - d], f->buf + f->off, f->len, MSG_NOSIGNAL);
		if (n > 0) {
			f->off += (size_t)n;
			f->len -= (size_t)n;
		} else if (n < 0 && !would_block()) {
			return false;
		}
	}
	if (f->eof && f->len == 0 && !f->shut) {
		shutdown(c->fd[1 - d], SHUT_WR);
		f->shut = true;
	}
	return true;
}

/* Serves c after a poll that returned rev[s] for its side s (0 for a side
 * not polled). */
static conn_state conn_pump(conn *c, const short rev[2], const short ev[2], int held)
{
	for (int d = 0; d < 2; d++) {
		/* Any event on a side polled for input is worth a read: an
		 * error or hang-up shows as a read that fails or ends. */
		bool readable = (ev[d] & POLLIN) && rev[d] != 0;
		if (!flow_pump(c, d, readable, held))
			return CONN_BROKEN;
	}
	return c->f[0].shut && c->f[1].shut ? CONN_CLOSED : CONN_ALIVE;
}

static void set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Accepts one connection and opens its twin to the target.  The connect
 * blocks the relay, but only for a moment: the target is on this host,
 * where a connect completes or is refused at once. */
static void accept_one(th_cutter *k)
{
	int fd = accept4(k->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return; /* gone before it was accepted, or no descriptor left */
	int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (up < 0 || connect(up, (const struct sockaddr *)&k->target, sizeof k->target) != 0 ||
	    fcntl(up, F_SETFL, O_NONBLOCK) != 0) {
		if (up >= 0)
			close(up);
		close_reset(fd);
		return;
	}
	conn *c = calloc(1, sizeof *c);
	if (c == NULL) {
		close_reset(up);
		close_reset(fd);
		return;
	}
	set_nodelay(fd);
	set_nodelay(up);
	c->fd[0] = fd;
	c->fd[1] = up;
	k->conns[k->nconns++] = c;
	pthread_mutex_lock(&k->mu);
	k->accepted++;
	pthread_mutex_unlock(&k->mu);
}

/* Takes in what control calls asked for; returns the held mask to use
 * until the next call, or -1 when the relay has stopped: asked to, or
 * at the end of its lifetime, when it closes its listener too (a peer
 * that tries again is refused rather than left in the backlog). */
static int take_control(th_cutter *k)
{
	pthread_mutex_lock(&k->mu);
	bool expired = !k->stop && now_ms() >= k->stop_at_ms;
	bool stop = k->stop || expired;
	if (k->reset || stop) {
		reset_all(k);
		k->reset = false;
	}
	if (expired) {
		fprintf(stderr,
		        "cutter %s: stopped by itself after %d ms (a test that failed "
		        "before th_cutter_destroy?)\n",
		        k->endpoint, TH_CUTTER_LIFETIME_MS);
		close(k->listener);
		k->listener = -1;
	}
	k->stopped = stop;
	int held = k->held;
	if (k->acted_on != k->asked || stop) {
		k->acted_on = k->asked;
		pthread_cond_broadcast(&k->acted);
	}
	pthread_mutex_unlock(&k->mu);
	return stop ? -1 : held;
}

static void *relay(void *arg)
{
	th_cutter *k = arg;
	struct pollfd pfd[2 + 2 * TH_CUTTER_MAX_CONNS];
	short ev[TH_CUTTER_MAX_CONNS][2];
	for (;;) {
		int held = take_control(k);
		if (held < 0)
			return NULL;
		pfd[0] = (struct pollfd){ .fd = k->wake[0], .events = POLLIN };
		/* At the cap, newcomers wait in the backlog. */
		pfd[1] = (struct pollfd){ .fd = k->nconns < TH_CUTTER_MAX_CONNS ? k->listener : -1,
			                  .events = POLLIN };
		for (size_t i = 0; i < k->nconns; i++) {
			for (int s = 0; s < 2; s++) {
				ev[i][s] = wanted(k->conns[i], s, held);
				/* A side with nothing wanted is left out, so that
				 * its hang-up or error (always reported) cannot
				 * wake the loop over and over while it is held. */
				pfd[2 + 2 * i + (size_t)s] =
				    (struct pollfd){ .fd = ev[i][s] ? k->conns[i]->fd[s] : -1,
					             .events = ev[i][s] };
			}
		}
		int n = poll(pfd, 2 + 2 * k->nconns, POLL_MS);
		if (n <= 0)
			continue;
		if (pfd[0].revents != 0) {
			/* A control call: take it in before moving any byte,
			 * then poll again (what was ready still is). */
			char drain[64];
			while (read(k->wake[0], drain, sizeof drain) > 0)
				;
			continue;
		}
		size_t kept = 0;
		for (size_t i = 0; i < k->nconns; i++) {
			short rev[2] = { pfd[2 + 2 * i].revents, pfd[3 + 2 * i].revents };
			conn_state st = conn_pump(k->conns[i], rev, ev[i], held);
			if (st == CONN_ALIVE)
				k->conns[kept++] = k->conns[i];
			else
				conn_free(k->conns[i], st == CONN_BROKEN);
		}
		k->nconns = kept;
		if (pfd[1].revents & POLLIN)
			accept_one(k);
	}
}

/* Wakes the relay and waits until it has taken in what the caller just
 * asked for under k->mu (which it holds); at once when it has stopped. */
static void await_relay(th_cutter *k)
{
	uint64_t seq = ++k->asked;
	char one = 1;
	/* A full pipe already wakes the relay: a short write loses nothing. */
	ssize_t w = write(k->wake[1], &one, 1);
	(void)w;
	while (k->acted_on < seq && !k->stopped)
		pthread_cond_wait(&k->acted, &k->mu);
}

/* Reads "tcp://A.B.C.D:PORT" into *sa; 0 or -1. */
static int parse_endpoint(const char *ep, struct sockaddr_in *sa)
{
	static const char scheme[] = "tcp://";
	if (ep == NULL || strncmp(ep, scheme, sizeof scheme - 1) != 0)
		return -1;
	const char *host = ep + sizeof scheme - 1;
	const char *colon = strrchr(host, ':');
	if (colon == NULL || colon == host || (size_t)(colon - host) >= INET_ADDRSTRLEN)
		return -1;
	char addr[INET_ADDRSTRLEN];
	memcpy(addr, host, (size_t)(colon - host));
	addr[colon - host] = '\0';
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
		return -1;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, addr, &sa->sin_addr) == 1 ? 0 : -1;
}

/* A listener on 127.0.0.1, an ephemeral port; its port in *port. */
static int listen_loopback(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = { .sin_family = AF_INET,
		                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	if (bind(fd, (const struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

th_cutter *th_cutter_new(const char *target)
{
	th_cutter *k = calloc(1, sizeof *k);
	if (k == NULL)
		return NULL;
	k->listener = k->wake[0] = k->wake[1] = -1;
	if (parse_endpoint(target, &k->target) != 0)
		goto fail;
	uint16_t port;
	k->listener = listen_loopback(&port);
	if (k->listener < 0)
		goto fail;
	snprintf(k->endpoint, sizeof k->endpoint, "tcp://127.0.0.1:%u", (unsigned)port);
	k->stop_at_ms = now_ms() + TH_CUTTER_LIFETIME_MS;
	if (pipe2(k->wake, O_NONBLOCK | O_CLOEXEC) != 0)
		goto fail;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->acted, NULL);
	if (pthread_create(&k->thread, NULL, relay, k) != 0) {
		pthread_cond_destroy(&k->acted);
		pthread_mutex_destroy(&k->mu);
		goto fail;
	}
	return k;
fail:
	if (k->wake[0] >= 0) {
		close(k->wake[0]);
		close(k->wake[1]);
	}
	if (k->listener >= 0)
		close(k->listener);
	free(k);
	return NULL;
}

const char *th_cutter_endpoint(const th_cutter *k)
{
	return k->endpoint;
}

void th_cutter_reset(th_cutter *k)
{
	pthread_mutex_lock(&k->mu);
	k->reset = true;
	await_relay(k);
	pthread_mutex_unlock(&k->mu);
}

void th_cutter_hold(th_cutter *k, int mask)
{
	pthread_mutex_lock(&k->mu);
	k->held |= mask & TH_CUT_BOTH;
	await_relay(k);
	pthread_mutex_unlock(&k->mu);
}

void th_cutter_release(th_cutter *k, int mask)
{
	pthread_mutex_lock(&k->mu);
	k->held &= ~mask;
	await_relay(k);
	pthread_mutex_unlock(&k->mu);
}

size_t th_cutter_connections(th_cutter *k)
{
	pthread_mutex_lock(&k->mu);
	size_t n = k->accepted;
	pthread_mutex_unlock(&k->mu);
	return n;
}

void th_cutter_destroy(th_cutter **kp)
{
	th_cutter *k = *kp;
	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	await_relay(k);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->acted);
	pthread_mutex_destroy(&k->mu);
	if (k->listener >= 0) /* else the relay closed it when its lifetime ended */
		close(k->listener);
	close(k->wake[0]);
	close(k->wake[1]);
	free(k);
	*kp = NULL;
}
