/*
 * conns.c - the broker's connections: counted, and refused beyond a cap.
 *
 * Every connection holds a descriptor, and a broker out of descriptors is
 * lost: libzmq's listener fails accept() with EMFILE, is polled readable
 * again at once (its poll is level-triggered), and spins, while new peers
 * find no broker.  So at start the soft RLIMIT_NOFILE is raised to the hard
 * limit, and the connections of clients and workers together are capped
 * below it, leaving TQI_CONNS_RESERVE descriptors to the broker.
 *
 * The count comes from each ROUTER's monitor: ZMQ_EVENT_ACCEPTED and
 * ZMQ_EVENT_DISCONNECTED carry the connection's descriptor.  A connection
 * accepted at the cap is shut down (shutdown(2), never close(2): the
 * descriptor is libzmq's, which reads EOF and closes it itself, with a
 * DISCONNECTED like any other).
 *
 * Invariant: `count` is the number of descriptors in state LIVE over both
 * listeners, never more than `max`; a descriptor is LIVE from the ACCEPTED
 * that found room under the cap to its DISCONNECTED.
 *
 * The race, and what is decided about it.  Events are read after the
 * fact: by then a connection may be gone and its number reused.  What
 * keeps this right:
 *  - One monitor's events come in order: the context's one I/O thread (the
 *    default) sends them under the socket's monitor lock, a connection's
 *    ACCEPTED after accept() and its DISCONNECTED before it closes the
 *    descriptor.  So a number is never reused before its DISCONNECTED is
 *    queued.  The two monitors are two streams: state is kept per listener,
 *    so a number freed on one and reused on the other is not confused.
 *  - Each turn reads every event waiting (up to TURN_EVENTS a monitor)
 *    before it refuses anything: a connection that came and went within
 *    them is not touched.
 *  - A refusal then checks that the descriptor is still a connected stream
 *    socket on this listener's address (not a listener, not one of
 *    libzmq's eventfds or pollers).  If libzmq has meanwhile closed it and
 *    given the number to a newer connection on the same listener, that one
 *    is refused in its place: it came while the broker was at its cap, and
 *    its own ACCEPTED and DISCONNECTED, read later, keep the count right.
 *  - Connections accepted at start, between a ROUTER's bind and its watch,
 *    are not seen: the count can be low by those, never high.
 * A monitor's pipe keeps ZeroMQ's default high-water marks: a loop behind
 * by some 2,000 events makes libzmq's I/O thread wait for it, which slows
 * an accept storm rather than growing memory.
 */
#include "broker/broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Events read from one monitor in one loop turn; more wait for the next
 * (the monitor stays readable, so the loop does not sleep on them). */
enum { TURN_EVENTS = 1024 };

/* What a descriptor is to one listener. */
enum {
	FD_NONE = 0, /* not a connection of this listener's, as far as we know */
	FD_LIVE,     /* a connection, counted */
	FD_REFUSING, /* accepted at the cap in this batch: to be shut down */
	FD_REFUSED,  /* shut down; its DISCONNECTED is still to come */
	FD_CUT       /* counted, and shut down for its chatter (tqi_conns_chatter) */
};

/* Used when the hard limit is infinite: Linux's default fs.nr_open, above
 * which no descriptor limit can be set. */
#define NOFILE_UNLIMITED (1u << 20)

static const unsigned short WATCHED =
    ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED;

/* Raises the soft descriptor limit to the hard one; returns the soft
 * limit in force. */
static uint64_t raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		tqi_warn("cannot read the open file limit: %s", strerror(errno));
		return 1024;
	}
	rlim_t want = rl.rlim_max == RLIM_INFINITY ? NOFILE_UNLIMITED : rl.rlim_max;
	rlim_t was = rl.rlim_cur;
	if (was != RLIM_INFINITY && was < want) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
			tqi_info("open file limit raised from %llu to %llu (the hard limit)",
			         (unsigned long long)was, (unsigned long long)want);
			return want;
		}
		tqi_warn("cannot raise the open file limit from %llu to its hard limit %llu: %s",
		         (unsigned long long)was, (unsigned long long)want, strerror(errno));
	}
	return was == RLIM_INFINITY ? NOFILE_UNLIMITED : (uint64_t)was;
}

/* Notes the address the listener bound (ZMQ_LAST_ENDPOINT), which the
 * connections it accepts have as their own: tcp://HOST:PORT or ipc://PATH.
 * Another transport leaves family 0: its descriptors are checked less. */
static void parse_listener(tqi_conn_watch *w, const char *endpoint)
{
	w->family = 0;
	if (strncmp(endpoint, "tcp://", 6) == 0) {
		const char *colon = strrchr(endpoint, ':');
		long port = colon ? strtol(colon + 1, NULL, 10) : 0;
		if (port > 0 && port < 65536) {
			w->family = AF_INET;
			w->port = (uint16_t)port;
		}
	} else if (strncmp(endpoint, "ipc://", 6) == 0) {
		const char *path = endpoint + 6;
		size_t n = strlen(path);
		if (n > 0 && n < sizeof w->path) {
			w->family = AF_UNIX;
			memcpy(w->path, path, n + 1);
			if (path[0] == '@') /* an abstract name starts with '\0' */
				w->path[0] = '\0';
			w->pathlen = n;
		}
	}
}

static tq_err watch(tqi_broker *b, tqi_conn_watch *w, void *router, const char *role,
                    const char *endpoint)
{
	char inproc[64];
	snprintf(inproc, sizeof inproc, "inproc://tq-conns-%s", role);
	w->role = role;
	parse_listener(w, endpoint);
	if (zmq_socket_monitor(router, inproc, WATCHED) != 0)
		goto fail;
	w->monitor = zmq_socket(b->ctx, ZMQ_PAIR);
	if (w->monitor == NULL)
		goto fail;
	int zero = 0;
	zmq_setsockopt(w->monitor, ZMQ_LINGER, &zero, sizeof zero);
	if (zmq_connect(w->monitor, inproc) != 0)
		goto fail;
	return TQ_OK;
fail:
	tqi_error("cannot watch the %s endpoint's connections: %s", role, zmq_strerror(errno));
	return TQ_ETRANSPORT;
}

tq_err tqi_conns_init(tqi_broker *b)
{
	tqi_conns *c = &b->conns;
	c->fd_limit = raise_fd_limit();
	uint64_t room = c->fd_limit > TQI_CONNS_RESERVE ? c->fd_limit - TQI_CONNS_RESERVE : 0;
	if (room == 0) {
		tqi_error("the open file limit of %llu leaves no descriptor for connections: the "
		          "broker keeps %d for its own use; raise the limit (ulimit -n, or "
		          "LimitNOFILE= in a systemd unit)",
		          (unsigned long long)c->fd_limit, TQI_CONNS_RESERVE);
		return TQ_EINVAL;
	}
	if (b->opts.max_connections > room) {
		tqi_error("--max-connections %llu leaves the broker too few descriptors: the open "
		          "file limit is %llu and the broker keeps %d of them for its own use, "
		          "so at most %llu; lower it, or raise the hard limit (ulimit -Hn, or "
		          "LimitNOFILE= in a systemd unit)",
		          (unsigned long long)b->opts.max_connections,
		          (unsigned long long)c->fd_limit, TQI_CONNS_RESERVE,
		          (unsigned long long)room);
		return TQ_EINVAL;
	}
	c->max = b->opts.max_connections ? b->opts.max_connections : room;
	tqi_info("open file limit %llu: at most %llu connections, clients and workers together "
	         "(%s), %llu descriptors kept for the broker",
	         (unsigned long long)c->fd_limit, (unsigned long long)c->max,
	         b->opts.max_connections ? "--max-connections" : "the limit less a reserve",
	         (unsigned long long)(c->fd_limit - c->max));
	if (watch(b, &c->clients, b->clients_sock, "client", b->client_endpoint) != TQ_OK ||
	    watch(b, &c->workers, b->workers_sock, "worker", b->worker_endpoint) != TQ_OK)
		return TQ_ETRANSPORT;
	return TQ_OK;
}

void tqi_conns_close(tqi_broker *b)
{
	tqi_conn_watch *ws[2] = { &b->conns.clients, &b->conns.workers };
	for (int i = 0; i < 2; i++) {
		/* The ROUTER's own monitor socket is left to zmq_close and
		 * zmq_ctx_term: stopping it here could wait on the monitor's
		 * lock, held by an I/O thread waiting for this reader. */
		if (ws[i]->monitor != NULL)
			zmq_close(ws[i]->monitor);
		ws[i]->monitor = NULL;
		free(ws[i]->state);
		ws[i]->state = NULL;
		free(ws[i]->chatter);
		ws[i]->chatter = NULL;
		ws[i]->ncut = 0;
		ws[i]->nstate = 0;
	}
}

/* Makes w->state hold descriptor fd; false when memory ran out. */
static bool reserve_state(tqi_conn_watch *w, int fd)
{
	if ((size_t)fd < w->nstate)
		return true;
	size_t n = w->nstate ? w->nstate : 256;
	while (n <= (size_t)fd)
		n *= 2;
	uint8_t *s = realloc(w->state, n);
	if (s == NULL)
		return false;
	memset(s + w->nstate, FD_NONE, n - w->nstate);
	w->state = s;
	tqi_ratelimit *j = realloc(w->chatter, n * sizeof *j);
	if (j == NULL)
		return false; /* nstate unchanged: state's new room is unused */
	memset(j + w->nstate, 0, (n - w->nstate) * sizeof *j);
	w->chatter = j;
	w->nstate = n;
	return true;
}

/* Whether fd is still a connection accepted by w's listener: a connected
 * stream socket (not a listener) whose own address is the listener's. */
static bool is_connection_of(const tqi_conn_watch *w, int fd)
{
	int type = 0, listening = 1;
	socklen_t len = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
		return false;
	len = sizeof listening;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening)
		return false;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return false;
	switch (ss.ss_family) {
	case AF_INET:
		return w->family == AF_INET &&
		       ntohs(((const struct sockaddr_in *)&ss)->sin_port) == w->port;
	case AF_INET6:
		return w->family == AF_INET &&
		       ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port) == w->port;
	case AF_UNIX: {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
		size_t n = sl > offsetof(struct sockaddr_un, sun_path)
		               ? sl - offsetof(struct sockaddr_un, sun_path)
		               : 0;
		if (n > 0 && un->sun_path[0] != '\0' && un->sun_path[n - 1] == '\0')
			n--; /* a path's terminating NUL */
		return w->family == AF_UNIX && n == w->pathlen &&
		       memcmp(un->sun_path, w->path, n) == 0;
	}
	default:
		return w->family == 0; /* a transport whose address we did not note */
	}
}

/* The peer's address, for the log. */
static void peer_address(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN];
	snprintf(out, outlen, "an unknown address");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof host) != NULL)
			snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host) != NULL)
			snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		snprintf(out, outlen, "a local process");
	}
}

/* Shuts down fd, a connection of w's accepted at the cap, if it still is
 * one; returns whether it did. */
static bool refuse(tqi_broker *b, tqi_conn_watch *w, int fd)
{
	if (!is_connection_of(w, fd))
		return false;
	char addr[INET6_ADDRSTRLEN + 16];
	peer_address(fd, addr, sizeof addr);
	if (shutdown(fd, SHUT_RDWR) != 0)
		return false;
	b->n.refused_connections++;
	tqi_log_limited(&b->conns.refused_log, TQI_LOG_WARN,
	                "connection limit %llu reached: refused a connection from %s (%s endpoint)",
	                (unsigned long long)b->conns.max, addr, w->role);
	return true;
}

/* Receives one event, both its frames, without waiting: 1 when one came
 * (*event, *value), 0 when none waits. */
static int recv_event(void *monitor, uint16_t *event, uint32_t *value)
{
	zmq_msg_t m;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, monitor, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		return 0;
	}
	*event = 0;                  /* a malformed event is skipped */
	if (zmq_msg_size(&m) == 6) { /* [u16 event][u32 value], host order, unaligned */
		memcpy(event, zmq_msg_data(&m), 2);
		memcpy(value, (uint8_t *)zmq_msg_data(&m) + 2, 4);
	}
	while (zmq_msg_more(&m)) /* the endpoint: not needed */
		if (zmq_msg_recv(&m, monitor, ZMQ_DONTWAIT) < 0)
			break;
	zmq_msg_close(&m);
	return 1;
}

static void accept_failed(tqi_broker *b, const tqi_conn_watch *w, int err)
{
	if (err == EMFILE)
		tqi_log_limited(&b->conns.accept_log, TQI_LOG_WARN,
		                "cannot accept a connection: too many open files (limit %llu; %s "
		                "endpoint)",
		                (unsigned long long)b->conns.fd_limit, w->role);
	else
		tqi_log_limited(&b->conns.accept_log, TQI_LOG_WARN,
		                "cannot accept a connection: %s (%s endpoint)", strerror(err),
		                w->role);
}

static void read_events(tqi_broker *b, tqi_conn_watch *w)
{
	tqi_conns *c = &b->conns;
	int refusing[TURN_EVENTS];
	size_t nrefusing = 0;
	uint16_t event = 0;
	uint32_t value = 0;
	for (int i = 0; i < TURN_EVENTS && recv_event(w->monitor, &event, &value); i++) {
		int fd = (int)value;
		switch (event) {
		case ZMQ_EVENT_ACCEPTED:
			if (fd < 0 || !reserve_state(w, fd)) {
				/* No memory to remember it by: refused, so
				 * that no connection goes uncounted. */
				if (fd >= 0)
					refuse(b, w, fd);
				break;
			}
			if (w->state[fd] == FD_LIVE || w->state[fd] == FD_CUT)
				c->count--; /* closed unseen, its number reused */
			if (w->state[fd] == FD_CUT)
				w->ncut--;
			if (c->count < c->max) {
				w->state[fd] = FD_LIVE;
				memset(&w->chatter[fd], 0, sizeof w->chatter[fd]);
				c->count++;
			} else {
				w->state[fd] = FD_REFUSING;
				refusing[nrefusing++] = fd;
			}
			break;
		case ZMQ_EVENT_DISCONNECTED:
		case ZMQ_EVENT_CLOSED:
			if (fd >= 0 && (size_t)fd < w->nstate) {
				if (w->state[fd] == FD_LIVE || w->state[fd] == FD_CUT)
					c->count--;
				if (w->state[fd] == FD_CUT)
					w->ncut--;
				w->state[fd] = FD_NONE;
			}
			break;
		case ZMQ_EVENT_ACCEPT_FAILED:
			accept_failed(b, w, fd);
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i < nrefusing; i++) {
		int fd = refusing[i];
		if (w->state[fd] != FD_REFUSING) /* gone, or refused already */
			continue;
		w->state[fd] = refuse(b, w, fd) ? FD_REFUSED : FD_NONE;
	}
}

void tqi_conns_read(tqi_broker *b)
{
	if (b->conns.clients.monitor != NULL)
		read_events(b, &b->conns.clients);
	if (b->conns.workers.monitor != NULL)
		read_events(b, &b->conns.workers);
}

/* A connection may send this many commands that start no work - anything
 * but an accepted SUBMIT from a client or a DONE of a task it holds from a
 * worker: HELLO, STATS, CANCEL, refused SUBMITs, PINGs, malformed ones - a
 * second, after a burst, before it is cut off.  A tq peer sends a few a
 * second (its heartbeats), and in bursts one per task at most (the CANCELs
 * of an await_many that timed out); a flood of them - cheap to send in
 * frames of thousands, each costing the loop more than libzmq's thread -
 * would otherwise grow what that thread buffers ahead of the loop without
 * bound (make_router: no receive high-water mark).  What a flood costs is
 * then the burst, and the little the thread read ahead meanwhile. */
#define CHATTER_PER_SEC 5000.0
#define CHATTER_BURST 50000.0

static tqi_conn_watch *watch_of(tqi_broker *b, tqi_role role)
{
	return role == TQI_ROLE_WORKER ? &b->conns.workers : &b->conns.clients;
}

void tqi_conns_chatter(tqi_broker *b, tqi_role role, const zmq_msg_t *frame)
{
	tqi_conn_watch *w = watch_of(b, role);
	int fd = zmq_msg_get((zmq_msg_t *)frame, ZMQ_SRCFD);
	if (w->monitor == NULL || fd < 0 || (size_t)fd >= w->nstate || w->state[fd] != FD_LIVE)
		return;
	if (tqi_ratelimit_take(&w->chatter[fd], b->now_ms, CHATTER_PER_SEC, CHATTER_BURST))
		return;
	/* Still this listener's live connection, as far as the events read
	 * so far say; checked again, as a refusal is. */
	if (!is_connection_of(w, fd))
		return;
	char addr[INET6_ADDRSTRLEN + 16];
	peer_address(fd, addr, sizeof addr);
	if (shutdown(fd, SHUT_RDWR) != 0)
		return;
	w->state[fd] = FD_CUT;
	w->ncut++;
	b->conns.just_cut = true;
	b->n.cut_off++;
	tqi_log_limited(&b->conns.refused_log, TQI_LOG_WARN,
	                "cut off a connection from %s (%s endpoint): more than %.0f commands a "
	                "second that start no work",
	                addr, w->role, CHATTER_PER_SEC);
}

bool tqi_conns_dropping(tqi_broker *b, tqi_role role, const zmq_msg_t *frame)
{
	tqi_conn_watch *w = watch_of(b, role);
	if (w->ncut == 0)
		return false;
	int fd = zmq_msg_get((zmq_msg_t *)frame, ZMQ_SRCFD);
	return fd >= 0 && (size_t)fd < w->nstate && w->state[fd] == FD_CUT;
}
