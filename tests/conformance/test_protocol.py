#!/usr/bin/env python3
"""An independent tq/1 client and worker, written from proto/PROTOCOL.md alone
(Python, pyzmq and msgpack; no tq code), talking to the real tq-broker, a real
tq-worker and the real `tq` CLI.  If the specification is complete and the C
code follows it, every check below holds.

    test_protocol.py TQ_BROKER_BIN TQ_WORKER_BIN TQ_CLI_BIN
"""
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time

import msgpack
import zmq

# --- the protocol, from PROTOCOL.md sections 2 and 4 -----------------------

MAGIC = b"TQ"
VERSION = 1
CMD = dict(HELLO=0x01, WELCOME=0x02, SUBMIT=0x03, ACCEPTED=0x04, RESULT=0x05, FAILED=0x06,
           NOTICE=0x07, CANCEL=0x08, DETACH=0x09, DEADLINE=0x0A, STATS=0x0B, STATS_REPLY=0x0C,
           HEARTBEAT=0x0D, REFUSED=0x0E, CHECK=0x0F, CHECKED=0x10, READY=0x20, TASK=0x21, DONE=0x22, PING=0x23, DRAIN=0x24, BYE=0x25,
           DISCONNECT=0x26, CAPACITY=0x27, ERROR=0x7F)
NAME = {v: k for k, v in CMD.items()}
ENOWORKER, EVERSION, ECOMMAND, ETYPE, EEXIST = 8, 17, 18, 22, 27


PAYLOAD = {"SUBMIT", "RESULT", "TASK", "DONE"}  # the commands with a payload (a bin)
PENDING = {}  # socket -> commands received but not yet handed out
BATCHED = [0]  # messages seen that carried more than one command


def envelope(cmd, fields, version=VERSION):
    return MAGIC + bytes([version, CMD[cmd]]) + msgpack.packb(fields, use_bin_type=True)


def command(cmd, fields, payload=b"", version=VERSION):
    """One command: its envelope and, for the commands that carry one, the
    payload's bytes as one msgpack bin right after the body (section 2)."""
    out = envelope(cmd, fields, version)
    if cmd in PAYLOAD:
        out += msgpack.packb(payload, use_bin_type=True)
    return out


def split_frame(frame):
    """A frame is one or more commands back to back (section 2): the header,
    the body (one msgpack array, ending where the array ends) and, for the
    commands that carry one, the payload bin; the next byte starts the next
    command."""
    assert len(frame) > 0, "empty frame"
    out, pos, view = [], 0, memoryview(frame)
    while pos < len(frame):
        head = frame[pos:pos + 4]
        assert len(head) == 4 and head[:2] == MAGIC, "bad magic"
        assert head[2] == VERSION, "bad version"
        name = NAME[head[3]]
        u = msgpack.Unpacker(raw=False)
        u.feed(view[pos + 4:])
        try:
            body = u.unpack()
        except msgpack.OutOfData:
            raise AssertionError(f"{name}: the frame ends inside its body") from None
        assert isinstance(body, list), f"{name}: the body is not an array"
        payload = None
        if name in PAYLOAD:
            try:
                payload = u.unpack()
            except msgpack.OutOfData:
                pass
            # with raw=False a msgpack str comes out as str: bytes is a bin
            assert isinstance(payload, bytes), f"{name} without its payload bin"
        pos += 4 + u.tell()
        out.append((name, body, payload))
    return out


def split(frames):
    """A message is one or more frames, each carrying one or more commands."""
    out = [c for frame in frames for c in split_frame(frame)]
    if len(out) > 1:
        BATCHED[0] += 1
    return out


def ready(sock, timeout_ms):
    """True when a command is waiting (already received, or on the socket)."""
    return bool(PENDING.get(sock)) or bool(sock.poll(timeout_ms))


def next_command(sock):
    """The next command: (name, fields, payload); call after ready()."""
    q = PENDING.setdefault(sock, [])
    if not q:
        q.extend(split(sock.recv_multipart()))
    return q.pop(0)


def dealer(ctx, endpoint):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.ROUTING_ID, bytes([0x80 | secrets.randbits(7)]) + secrets.token_bytes(15))
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    return s


def recv(sock, timeout_ms=5000, skip=("HEARTBEAT",)):
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not ready(sock, int(left * 1000)):
            raise TimeoutError("no message")
        cmd, fields, payload = next_command(sock)
        if cmd not in skip:
            return cmd, fields, payload


class Worker(threading.Thread):
    """A worker offering `pyadd`: returns the sum of its arguments."""

    def __init__(self, ctx, endpoint):
        super().__init__(daemon=True)
        self.sock = dealer(ctx, endpoint)
        self.stop = False
        self.served = 0
        self.registered = threading.Event()
        self.error = None  # what ended the thread, for the main thread to raise

    def run(self):
        # An exception here would end only this thread, silently: keep it,
        # and let the main thread's checks (check()) raise it.
        try:
            self.serve()
        except BaseException as e:
            self.error = e
            self.registered.set()  # nobody waits for a WELCOME that will not come

    def check(self):
        """Raises, in the caller's thread, what made the worker thread fail."""
        if self.error is not None:
            raise AssertionError(f"the Python worker failed: {self.error!r}") from self.error

    def serve(self):
        s = self.sock
        s.send_multipart([envelope("READY", ["pyworker", 1, 1, 250, ["pyadd"]])])
        last_ping = time.monotonic()
        while not self.stop:
            if time.monotonic() - last_ping >= 0.25:
                s.send_multipart([envelope("PING", [])])  # busy or not: section 6.1
                last_ping = time.monotonic()
            if not ready(s, 50):
                continue
            cmd, f, payload = next_command(s)
            if cmd == "WELCOME":
                assert len(f[0]) == 16 and f[1] is False and 10 <= f[2] <= 60000
                s.send_multipart([envelope("CAPACITY", [5])])  # hold up to 5 tasks
                self.registered.set()
            elif cmd == "TASK":
                ref, fn, attempt, timeout_ms, owner = f
                assert fn == "pyadd" and attempt >= 1 and len(ref) == 16
                args = msgpack.unpackb(payload, raw=False)
                s.send_multipart([command("DONE", [ref, attempt, 0, ""], msgpack.packb(sum(args)))])
                self.served += 1


def wait_stats(c, holds, what, timeout_s=10):
    """Polls STATS until holds(stats) is true, for at most timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        c.send_multipart([envelope("STATS", [])])
        cmd, f, _ = recv(c)
        assert cmd == "STATS_REPLY", (cmd, f)
        if holds(f[0]):
            return
        time.sleep(0.02)
    raise TimeoutError(f"not within {timeout_s} s: {what}")


def wait_running(c, want):
    """Waits until the workers hold `want` tasks (so CANCEL meets a running one)."""
    wait_stats(c, lambda s: sum(x["load"] for x in s["workers"]) >= want, "the task started")


def wait_worker(c, name):
    """Waits until worker `name` has registered (so a SUBMIT gets no NOTICE{ENOWORKER})."""
    wait_stats(c, lambda s: any(x["name"] == name for x in s["workers"]), f"{name} registered")


def main():
    broker_bin, worker_bin, cli_bin = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="tq-conformance-")
    cep, wep = f"ipc://{tmp}/c", f"ipc://{tmp}/w"
    procs = []
    passed = False
    try:
        procs.append(subprocess.Popen([broker_bin, "--clients", cep, "--workers", wep],
                                      stderr=open(f"{tmp}/broker.log", "w")))
        procs.append(subprocess.Popen([worker_bin, "--broker", wep, "--name", "cworker",
                                       "--concurrency", "1"], stderr=open(f"{tmp}/worker.log", "w")))
        ctx = zmq.Context()

        # A Python worker joins; the C client calls it.
        w = Worker(ctx, wep)
        w.start()
        assert w.registered.wait(10), "the Python worker got no WELCOME"
        w.check()
        out = subprocess.run([cli_bin, "call", "--broker", cep, "pyadd", "1", "2", "39"],
                             capture_output=True, text=True, timeout=30)
        w.check()
        assert out.returncode == 0 and out.stdout.strip() == "42", out
        print("C client -> Python worker: pyadd(1, 2, 39) = 42")

        # A Python client calls the C worker.
        c = dealer(ctx, cep)
        session = secrets.randbits(63) | 1
        c.send_multipart([envelope("HELLO", [session, "pyclient", 0])])
        cmd, f, _ = recv(c)
        assert cmd == "WELCOME" and f[1] is False and f[3] == 0, (cmd, f)
        instance = f[0]
        wait_worker(c, "cworker")  # the C worker may still be starting
        for n in (21, -7):
            ref = secrets.token_bytes(16)
            c.send_multipart([command("SUBMIT", [session, ref, "double", 0, 0, 0],
                                      msgpack.packb([n]))])
            cmd, f, payload = recv(c)
            assert cmd == "RESULT" and f[0] == ref and f[1] == "cworker" and f[2] == 1, (cmd, f)
            assert msgpack.unpackb(payload) == 2 * n
        print("Python client -> C worker: double(21) = 42, double(-7) = -14")

        # Several commands in one frame (section 2): three SUBMITs, back to
        # back, each answered once; the answers may come in one message or several.
        refs = {secrets.token_bytes(16): n for n in (1, 2, 3)}
        frame = b"".join(command("SUBMIT", [session, ref, "double", 0, 0, 0], msgpack.packb([n]))
                         for ref, n in refs.items())
        c.send_multipart([frame])
        for _ in range(len(refs)):
            cmd, f, payload = recv(c)
            assert cmd == "RESULT" and f[0] in refs, (cmd, f)
            assert msgpack.unpackb(payload) == 2 * refs.pop(f[0])
        print("three SUBMITs in one frame: three RESULTs;",
              BATCHED[0], "message(s) so far carried more than one command")

        # A function nobody offers: NOTICE{ENOWORKER}, then FAILED{ENOWORKER} at the deadline.
        ref = secrets.token_bytes(16)
        c.send_multipart([command("SUBMIT", [session, ref, "nobody", 300, 0, 0],
                                  msgpack.packb([]))])
        cmd, f, _ = recv(c)
        assert cmd == "NOTICE" and f == [ref, ENOWORKER], (cmd, f)
        cmd, f, _ = recv(c)
        assert cmd == "FAILED" and f[0] == ref and f[1] == ENOWORKER and "nobody" in f[2], (cmd, f)
        print("no worker: NOTICE then FAILED{ENOWORKER} at the deadline")

        # start: a detached task is ACCEPTED at once.
        ref = secrets.token_bytes(16)
        c.send_multipart([command("SUBMIT", [session, ref, "sleep", 0, 0, 1], msgpack.packb([1]))])
        cmd, f, _ = recv(c)
        assert cmd == "ACCEPTED" and f == [ref], (cmd, f)

        # Cancel a running task: FAILED{ECANCELLED} comes back from the worker.
        ref = secrets.token_bytes(16)
        c.send_multipart([command("SUBMIT", [session, ref, "sleep", 0, 0, 0],
                                  msgpack.packb([20000]))])
        wait_running(c, 1)
        c.send_multipart([envelope("CANCEL", [ref, 0])])
        cmd, f, _ = recv(c)
        assert cmd == "FAILED" and f[0] == ref and f[1] == 9, (cmd, f)
        print("CANCEL: FAILED{ECANCELLED}")

        # STATS: a map with the documented keys.
        c.send_multipart([envelope("STATS", [])])
        cmd, f, _ = recv(c)
        stats = f[0]
        assert cmd == "STATS_REPLY" and stats["instance"] == instance.hex(), (cmd, f)
        for key in ("uptime_ms", "tasks", "clients", "heartbeat_ms", "counters", "workers",
                    "functions", "truncated"):
            assert key in stats, key
        names = sorted(x["name"] for x in stats["workers"])
        assert names == ["cworker", "pyworker"], names
        py = next(x for x in stats["workers"] if x["name"] == "pyworker")
        assert py["concurrency"] == 1 and py["capacity"] == 5, py
        print("STATS_REPLY:", {k: stats["counters"][k] for k in ("submitted", "completed")})

        # A SUBMIT under a session the broker does not hold is refused.
        ref = secrets.token_bytes(16)
        c.send_multipart([command("SUBMIT", [session + 2, ref, "double", 0, 0, 0],
                                  msgpack.packb([1]))])
        cmd, f, _ = recv(c)
        assert cmd == "REFUSED" and f[:3] == [ref, CMD["SUBMIT"], 12], (cmd, f)  # ESESSION

        # A ref in use: the second SUBMIT is REFUSED, never FAILED, so that
        # the live task's own outcome is the only answer that settles it.
        ref = secrets.token_bytes(16)
        c.send_multipart([command("SUBMIT", [session, ref, "sleep", 0, 0, 0],
                                  msgpack.packb([300]))])
        c.send_multipart([command("SUBMIT", [session, ref, "double", 0, 0, 0],
                                  msgpack.packb([1]))])
        cmd, f, _ = recv(c)
        assert cmd == "REFUSED" and f[:3] == [ref, CMD["SUBMIT"], EEXIST], (cmd, f)
        cmd, f, payload = recv(c)
        assert cmd == "RESULT" and f[0] == ref, (cmd, f)
        print("a ref in use: REFUSED{SUBMIT, EEXIST}, then the live task's RESULT")

        # CHECK: CHECKED lists, under the CHECK's mark, the refs the broker
        # does not hold for this client - one that ended, one never seen -
        # and not one still running.
        running, unknown = secrets.token_bytes(16), secrets.token_bytes(16)
        c.send_multipart([command("SUBMIT", [session, running, "sleep", 0, 0, 0],
                                  msgpack.packb([300]))])
        c.send_multipart([envelope("CHECK", [77, [running, ref, unknown]])])
        cmd, f, _ = recv(c)
        assert cmd == "CHECKED" and f[0] == 77 and sorted(f[1]) == sorted([ref, unknown]), (cmd, f)
        cmd, f, _ = recv(c)
        assert cmd == "RESULT" and f[0] == running, (cmd, f)
        print("CHECK: CHECKED names the ended and the unknown ref, not the running one")

        # A malformed SUBMIT whose ref can be read is refused under that ref.
        ref = secrets.token_bytes(16)
        c.send_multipart([command("SUBMIT", [session, ref, "double", "soon", 0, 0],
                                  msgpack.packb([1]))])
        cmd, f, _ = recv(c)
        assert cmd == "REFUSED" and f[:3] == [ref, CMD["SUBMIT"], ETYPE], (cmd, f)
        assert "timeout_ms" in f[3], f
        print("a malformed SUBMIT: REFUSED{SUBMIT, ETYPE} under its ref:", f[3])

        # Another protocol version gets ERROR{EVERSION}, in version 1.
        c.send_multipart([envelope("STATS", [], version=2)])
        cmd, f, _ = recv(c)
        assert cmd == "ERROR" and f[0] == EVERSION and "tq/1" in f[1], (cmd, f)
        # A worker's command from a client gets ERROR{ECOMMAND}.
        c.send_multipart([envelope("PING", [])])
        cmd, f, _ = recv(c)
        assert cmd == "ERROR" and f[0] == ECOMMAND, (cmd, f)
        print("ERROR{EVERSION} and ERROR{ECOMMAND} as specified")

        w.check()
        w.stop = True
        w.join(5)
        assert not w.is_alive(), "the Python worker did not stop"
        w.check()
        assert w.served == 1
        c.close()
        w.sock.close()
        ctx.term()
        print("conformance: all checks passed")
        passed = True
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for name in ("broker.log", "worker.log"):
            path = f"{tmp}/{name}"
            if os.path.exists(path):
                # all of them on request; the last lines when a check failed
                if os.environ.get("TQ_TEST_LOGS") or not passed:
                    lines = open(path, errors="replace").read().splitlines()
                    if not os.environ.get("TQ_TEST_LOGS"):
                        lines = lines[-40:]
                    print(f"----- {name} -----", *lines, sep="\n", file=sys.stderr)
                os.unlink(path)
        for leftover in os.listdir(tmp):
            os.unlink(os.path.join(tmp, leftover))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
