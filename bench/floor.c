/*
 * floor.c - the physical floor: a raw ZeroMQ relay that does the least any
 * broker over ZeroMQ must do, so that tq's ratio to it is tq's overhead.
 *
 *   client DEALER -> [relay: ROUTER front | ROUTER back] -> echo DEALER
 *
 * The relay only forwards by routing id: a request from a client goes to
 * the next worker in turn, prefixed with the client's id; a reply comes
 * back with that id and goes to that client.  Frames are moved, never
 * copied; nothing is decoded, stored or acknowledged.  The relay and the
 * echo workers are separate processes (tq-bench run in a child role), on
 * the same loopback TCP transport as tq, with the same argument sizes and
 * windows.
 */
#include "bench/bench.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

enum { MAX_WORKERS = 64, MAX_FLOOR_WORKERS = 8, BATCH = 1024, RECV_TIMEOUT_MS = 10000 };

/* ---- the relay (child role) ---- */

static void *make_socket(void *ctx, int type)
{
	void *s = zmq_socket(ctx, type);
	int zero = 0;
	if (s == NULL)
		return NULL;
	/* No high-water marks: tq's sockets queue without limit too. */
	zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
	return s;
}

/* Moves the rest of a message (the frames after those already read)
 * from `from` to `to`. */
static int forward_rest(void *from, void *to)
{
	int more = 1;
	while (more) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, from, 0) < 0) {
			zmq_msg_close(&m);
			return -1;
		}
		more = zmq_msg_more(&m);
		if (zmq_msg_send(&m, to, more ? ZMQ_SNDMORE : 0) < 0) {
			zmq_msg_close(&m);
			return -1;
		}
	}
	return 0;
}

/* Drops the rest of a message. */
static void skip_rest(void *from, zmq_msg_t *last)
{
	while (zmq_msg_more(last)) {
		zmq_msg_close(last);
		zmq_msg_init(last);
		if (zmq_msg_recv(last, from, 0) < 0)
			break;
	}
}

int tqb_floor_relay_main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	void *ctx = zmq_ctx_new();
	void *front = make_socket(ctx, ZMQ_ROUTER), *back = make_socket(ctx, ZMQ_ROUTER);
	if (front == NULL || back == NULL || zmq_bind(front, "tcp://127.0.0.1:*") != 0 ||
	    zmq_bind(back, "tcp://127.0.0.1:*") != 0) {
		fprintf(stderr, "relay: cannot bind: %s\n", zmq_strerror(errno));
		return 1;
	}
	char fep[256], bep[256];
	size_t fl = sizeof fep, bl = sizeof bep;
	zmq_getsockopt(front, ZMQ_LAST_ENDPOINT, fep, &fl);
	zmq_getsockopt(back, ZMQ_LAST_ENDPOINT, bep, &bl);
	printf("listening front=%s back=%s\n", fep, bep);

	uint8_t ids[MAX_WORKERS][256];
	size_t idlen[MAX_WORKERS];
	unsigned nworkers = 0, next = 0;
	uint64_t dropped = 0;
	zmq_pollitem_t items[2] = { { back, 0, ZMQ_POLLIN, 0 }, { front, 0, ZMQ_POLLIN, 0 } };
	for (;;) {
		if (zmq_poll(items, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		/* Back: [worker id][client id][payload] -> front, or a worker's
		 * one-frame hello. */
		for (int i = 0; i < BATCH && (items[0].revents & ZMQ_POLLIN); i++) {
			zmq_msg_t id;
			zmq_msg_init(&id);
			if (zmq_msg_recv(&id, back, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&id);
				break;
			}
			zmq_msg_t first;
			zmq_msg_init(&first);
			if (zmq_msg_recv(&first, back, 0) < 0) {
				zmq_msg_close(&first);
				zmq_msg_close(&id);
				continue;
			}
			if (!zmq_msg_more(&first)) {
				if (nworkers < MAX_WORKERS && zmq_msg_size(&id) <= 256) {
					idlen[nworkers] = zmq_msg_size(&id);
					memcpy(ids[nworkers], zmq_msg_data(&id), idlen[nworkers]);
					nworkers++;
					printf("workers=%u\n", nworkers);
				}
			} else if (zmq_msg_send(&first, front, ZMQ_SNDMORE) >= 0) {
				forward_rest(back, front);
			}
			zmq_msg_close(&first);
			zmq_msg_close(&id);
		}
		/* Front: [client id][payload] -> [next worker][client id][payload]. */
		for (int i = 0; i < BATCH && (items[1].revents & ZMQ_POLLIN); i++) {
			zmq_msg_t cid;
			zmq_msg_init(&cid);
			if (zmq_msg_recv(&cid, front, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&cid);
				break;
			}
			if (nworkers == 0) {
				dropped++;
				skip_rest(front, &cid);
				zmq_msg_close(&cid);
				continue;
			}
			unsigned w = next++ % nworkers;
			zmq_send(back, ids[w], idlen[w], ZMQ_SNDMORE);
			zmq_msg_send(&cid, back, ZMQ_SNDMORE);
			forward_rest(front, back);
			zmq_msg_close(&cid);
		}
	}
}

/* ---- an echo worker (child role) ---- */

int tqb_floor_echo_main(const char *endpoint)
{
	void *ctx = zmq_ctx_new();
	void *s = make_socket(ctx, ZMQ_DEALER);
	if (s == NULL || zmq_connect(s, endpoint) != 0) {
		fprintf(stderr, "echo: cannot connect to %s\n", endpoint);
		return 1;
	}
	zmq_send(s, "R", 1, 0);
	for (;;) {
		/* [client id][payload]: sent back as it came. */
		int more = 1;
		while (more) {
			zmq_msg_t m;
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, s, 0) < 0) {
				zmq_msg_close(&m);
				if (errno == EINTR)
					break;
				return 1;
			}
			more = zmq_msg_more(&m);
			zmq_msg_send(&m, s, more ? ZMQ_SNDMORE : 0);
			zmq_msg_close(&m);
		}
	}
}

/* ---- the client side, in tq-bench ---- */

struct tqb_floor {
	tqb_proc relay;
	tqb_proc echo[MAX_FLOOR_WORKERS];
	unsigned nworkers;
	void *ctx, *sock;
	uint8_t args[2048];
};

void tqb_floor_stop(tqb_floor **fp)
{
	if (fp == NULL || *fp == NULL)
		return;
	tqb_floor *f = *fp;
	if (f->sock)
		zmq_close(f->sock);
	if (f->ctx)
		zmq_ctx_term(f->ctx);
	for (unsigned i = 0; i < f->nworkers; i++)
		tqb_stop(&f->echo[i], SIGKILL, 1000);
	tqb_stop(&f->relay, SIGKILL, 1000);
	free(f);
	*fp = NULL;
}

int tqb_floor_start(tqb_floor **out, const tqb_config *cfg, unsigned workers)
{
	if (workers == 0 || workers > MAX_FLOOR_WORKERS)
		return -1;
	tqb_floor *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	f->relay.pid = -1;
	const char *rargv[] = { tqb_self(), "--role", "floor-relay", NULL };
	char line[512], fep[256], bep[256];
	if (tqb_spawn(&f->relay, cfg->out_dir, "floor-relay", rargv) != 0 ||
	    tqb_wait_log(&f->relay, "listening front=", line, sizeof line, 5000) != 0 ||
	    sscanf(line, "listening front=%255s back=%255s", fep, bep) != 2)
		goto fail;
	for (unsigned i = 0; i < workers; i++) {
		const char *eargv[] = { tqb_self(), "--role", "floor-echo", bep, NULL };
		if (tqb_spawn(&f->echo[i], cfg->out_dir, "floor-echo", eargv) != 0)
			goto fail;
		f->nworkers++;
	}
	char want[32];
	snprintf(want, sizeof want, "workers=%u", workers);
	if (tqb_wait_log(&f->relay, want, NULL, 0, 5000) != 0)
		goto fail;
	f->ctx = zmq_ctx_new();
	f->sock = f->ctx ? make_socket(f->ctx, ZMQ_DEALER) : NULL;
	if (f->sock == NULL || zmq_connect(f->sock, fep) != 0)
		goto fail;
	*out = f;
	return 0;
fail:
	tqb_floor_stop(&f);
	return -1;
}

/* Receives one reply of `size` bytes, waiting at most RECV_TIMEOUT_MS. */
static int recv_reply(tqb_floor *f, size_t size)
{
	uint8_t buf[2048];
	zmq_pollitem_t it = { f->sock, 0, ZMQ_POLLIN, 0 };
	for (;;) {
		int n = zmq_recv(f->sock, buf, sizeof buf, ZMQ_DONTWAIT);
		if (n >= 0) {
			if ((size_t)n != size) {
				fprintf(stderr, "tq-bench: floor: a reply of %d bytes, not %zu\n",
				        n, size);
				return -1;
			}
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		int rc = zmq_poll(&it, 1, RECV_TIMEOUT_MS);
		if (rc == 0) {
			fprintf(stderr, "tq-bench: floor: no reply within %d ms\n",
			        RECV_TIMEOUT_MS);
			return -1;
		}
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

int tqb_floor_latency(tqb_floor *f, size_t warm, size_t n, uint64_t *ns)
{
	size_t len = tqb_make_args(f->args, 16);
	for (size_t i = 0; i < warm + n; i++) {
		uint64_t t0 = tqb_now_ns();
		if (zmq_send(f->sock, f->args, len, 0) < 0 || recv_reply(f, len) != 0)
			return -1;
		if (i >= warm)
			ns[i - warm] = tqb_now_ns() - t0;
	}
	return 0;
}

/* n round trips with up to `window` in flight; returns the elapsed ns. */
static int run_window(void *sys, unsigned window, size_t len, size_t n, uint64_t *elapsed)
{
	tqb_floor *f = sys;
	size_t sent = 0, got = 0;
	uint64_t t0 = tqb_now_ns();
	while (sent < n && sent < window) {
		if (zmq_send(f->sock, f->args, len, 0) < 0)
			return -1;
		sent++;
	}
	while (got < n) {
		if (recv_reply(f, len) != 0)
			return -1;
		got++;
		if (sent < n) {
			if (zmq_send(f->sock, f->args, len, 0) < 0)
				return -1;
			sent++;
		}
	}
	*elapsed = tqb_now_ns() - t0;
	return 0;
}

int tqb_floor_throughput(tqb_floor *f, unsigned window, size_t size, size_t n, double *per_s)
{
	return tqb_throughput(run_window, f, window, tqb_make_args(f->args, size), n, per_s);
}

int tqb_floor_load_main(const char *endpoint, unsigned window, size_t n, size_t size)
{
	tqb_floor f = { .relay.pid = -1 };
	f.ctx = zmq_ctx_new();
	f.sock = f.ctx ? make_socket(f.ctx, ZMQ_DEALER) : NULL;
	if (f.sock == NULL || size > sizeof f.args || zmq_connect(f.sock, endpoint) != 0)
		return 1;
	size_t len = tqb_make_args(f.args, size);
	uint64_t ns;
	int rc = run_window(&f, window, len, n, &ns);
	if (rc == 0)
		printf("%zu messages, window %u, %zu B: %.0f round trips/s\n", n, window, size,
		       (double)n / ((double)ns / 1e9));
	zmq_close(f.sock);
	zmq_ctx_term(f.ctx);
	return rc == 0 ? 0 : 1;
}
