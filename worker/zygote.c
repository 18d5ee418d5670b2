/* zygote.c - spawns executors on request and reports their exits. */
#include "worker/zygote.h"

#include "worker/executor.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
	int32_t type;
	uint32_t slot;
	int32_t pid;
	int32_t status;
} zmsg;

static int self_pipe[2] = { -1, -1 };

/* The executors alive, so that they can be killed and reaped on exit. */
static pid_t *live;
static size_t nlive, caplive;

static void live_add(pid_t pid)
{
	if (nlive == caplive) {
		size_t cap = caplive ? caplive * 2 : 16;
		pid_t *v = realloc(live, cap * sizeof *v);
		if (v == NULL)
			return; /* PR_SET_PDEATHSIG still takes it down with us */
		live = v;
		caplive = cap;
	}
	live[nlive++] = pid;
}

static void live_remove(pid_t pid)
{
	for (size_t i = 0; i < nlive; i++)
		if (live[i] == pid) {
			live[i] = live[--nlive];
			return;
		}
}

static void on_chld(int sig)
{
	(void)sig;
	int saved = errno;
	ssize_t w = write(self_pipe[1], "c", 1);
	(void)w;
	errno = saved;
}

static int send_msg(int fd, const zmsg *m, int pass_fd)
{
	struct iovec iov = { (void *)m, sizeof *m };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	if (pass_fd >= 0) {
		/* The padding after the fd is sent too: no stack bytes leak. */
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	ssize_t r;
	do
		r = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r == (ssize_t)sizeof *m ? 0 : -1;
}

static void spawn(int ctl, uint32_t slot, const tqi_registry *reg, const char *name,
                  tqi_tickets *tickets)
{
	int sv[2];
	zmsg m = { TQI_ZY_SPAWNED, slot, -1, 0 };
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		send_msg(ctl, &m, -1);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(0); /* the zygote died before prctl took effect */
		close(ctl);
		close(sv[0]);
		close(self_pipe[0]);
		close(self_pipe[1]);
		signal(SIGCHLD, SIG_DFL);
		tqi_executor_main(sv[1], reg, name, tickets);
	}
	close(sv[1]);
	m.pid = pid;
	if (pid > 0)
		live_add(pid);
	send_msg(ctl, &m, pid > 0 ? sv[0] : -1);
	close(sv[0]);
}

static void reap(int ctl)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		live_remove(pid);
		zmsg m = { TQI_ZY_EXITED, 0, pid, status };
		send_msg(ctl, &m, -1);
	}
}

static void zygote_main(int ctl, const tqi_registry *reg, const char *name, tqi_tickets *tickets)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	if (pipe(self_pipe) != 0)
		_exit(1);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	struct pollfd pf[2] = { { ctl, POLLIN, 0 }, { self_pipe[0], POLLIN, 0 } };
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents & POLLIN) {
			char buf[64];
			ssize_t r = read(self_pipe[0], buf, sizeof buf);
			(void)r;
			reap(ctl);
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			zmsg m;
			ssize_t r = recv(ctl, &m, sizeof m, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r != (ssize_t)sizeof m)
				break; /* the loop closed the pair: we are done */
			if (m.type == TQI_ZY_SPAWNED)
				spawn(ctl, m.slot, reg, name, tickets);
		}
	}
	/* Take the executors down with us and reap them, so that none is
	 * left as a zombie for whoever adopts it (PID 1 in a container). */
	signal(SIGCHLD, SIG_DFL);
	for (size_t i = 0; i < nlive; i++)
		kill(live[i], SIGKILL);
	for (size_t i = 0; i < nlive; i++)
		while (waitpid(live[i], NULL, 0) < 0 && errno == EINTR)
			;
	_exit(0);
}

int tqi_zygote_start(tqi_zygote *z, const tqi_registry *reg, const char *worker_name,
                     tqi_tickets *tickets)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		close(sv[0]);
		close(sv[1]);
		errno = err;
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		zygote_main(sv[1], reg, worker_name, tickets);
	}
	close(sv[1]);
	z->pid = pid;
	z->fd = sv[0];
	return 0;
}

int tqi_zygote_spawn(tqi_zygote *z, uint32_t slot)
{
	zmsg m = { TQI_ZY_SPAWNED, slot, 0, 0 };
	return send_msg(z->fd, &m, -1);
}

int tqi_zygote_read(tqi_zygote *z, tqi_zygote_event *ev)
{
	zmsg m;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { &m, sizeof m };
	struct msghdr mh = { .msg_iov = &iov,
		             .msg_iovlen = 1,
		             .msg_control = u.buf,
		             .msg_controllen = sizeof u.buf };
	ssize_t r;
	do
		r = recvmsg(z->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (r != (ssize_t)sizeof m)
		return -1;
	ev->type = m.type;
	ev->slot = m.slot;
	ev->pid = m.pid;
	ev->status = m.status;
	ev->fd = -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&ev->fd, CMSG_DATA(c), sizeof(int));
	return 1;
}

void tqi_zygote_stop(tqi_zygote *z)
{
	if (z->fd >= 0) {
		close(z->fd);
		z->fd = -1;
	}
	if (z->pid > 0) {
		int status;
		while (waitpid(z->pid, &status, 0) < 0 && errno == EINTR)
			;
		z->pid = -1;
	}
}
