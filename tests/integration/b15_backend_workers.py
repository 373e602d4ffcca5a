"""b15: sg-testbackend --workers N, the fixed-capacity app server of the
surge benchmark (tests/bench/surge.py), and --demo-backend for local-spawn.

- --workers 2 --delay 100: 6 requests sent at once on 6 connections are
  answered two at a time, 100 ms apart (the last after about 300 ms, none
  of the last four before about 200 ms); /__stats says max_in_service 2,
  nothing in service or waiting afterwards.
- Health checks and /__stats take no worker: with the one worker busy and a
  request waiting, /healthz and /__stats answer at once.
- A waiting request whose connection is reset leaves the FIFO (the next one
  is served one service time after the first, not two); a request whose
  connection is reset while in service keeps its worker for its whole delay
  (the next one waits for it), as a real app server's worker does.
- --demo-backend 127.0.0.1:0 prints "listening on 127.0.0.1:PORT" first and
  answers with X-Backend demo-PORT (or --name).
- A bad --workers value is refused with exit status 2 and a message.
"""
import select
import socket
import struct
import subprocess
import threading
import time

from harness import *

REQ = "GET %s HTTP/1.1\r\nHost: t\r\n\r\n"


def send(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall((REQ % path).encode())
    return s


def read_status(s):
    """Reads one response head and its Content-Length body; returns the status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            fail("connection closed before a response head (%r)" % buf[:100])
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            fail("connection closed inside a body")
        body += chunk
    return int(head.split()[1])


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def capacity_cap():
    with Backend("W", delay_ms=100, workers=2) as b:
        n = 6
        done = [None] * n
        socks = [socket.create_connection(("127.0.0.1", b.port), timeout=5) for _ in range(n)]
        t0 = time.monotonic()
        for i, s in enumerate(socks):
            s.sendall((REQ % ("/w%d" % i)).encode())

        def reader(i):
            st = read_status(socks[i])
            done[i] = (st, time.monotonic() - t0)

        ts = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
        for s in socks:
            s.close()
        check(all(d is not None for d in done), "not every request was answered: %r" % done)
        check(all(d[0] == 200 for d in done), "statuses %r" % [d[0] for d in done])
        times = sorted(d[1] for d in done)
        log("answered at %s s" % ", ".join("%.3f" % t for t in times))
        check(times[-1] >= 0.28, "6 requests with 2 workers of 100 ms took %.3f s, want >= 0.3 "
              "(capacity not capped)" % times[-1])
        check(times[2] >= 0.18, "a third request was answered after %.3f s, before two service "
              "times: more than 2 in service" % times[2])
        check(times[-1] < 2.0, "the last answer took %.3f s" % times[-1])
        st = b.stats()
        check_eq(st.get("max_in_service"), 2, "max_in_service")
        check_eq((st.get("in_service"), st.get("waiting")), (0, 0), "in_service, waiting after")
        check_eq(st.get("requests"), n, "requests")


def no_worker_for_health():
    with Backend("H", delay_ms=500, workers=1) as b:
        a = send(b.port, "/a")
        c = send(b.port, "/c")
        wait_for(lambda: b.stats().get("waiting") == 1, 2, 0.02, "a request waiting")
        t = time.monotonic()
        st, _, _ = http_get(b.port, "/healthz", timeout=2)
        took = time.monotonic() - t
        check_eq(st, 200, "/healthz status")
        check(took < 0.3, "/healthz took %.3f s behind a busy worker" % took)
        s = b.stats()
        check_eq((s["in_service"], s["waiting"]), (1, 1), "in_service, waiting")
        check_eq(read_status(a), 200, "first request")
        check_eq(read_status(c), 200, "second request")
        a.close()
        c.close()


def resets():
    with Backend("R", delay_ms=300, workers=1) as b:
        # A in service, B waiting then reset, C waiting: C right after A.
        t0 = time.monotonic()
        a = send(b.port, "/a")
        wait_for(lambda: b.stats().get("in_service") == 1, 2, 0.01, "A in service")
        bs = send(b.port, "/b")
        wait_for(lambda: b.stats().get("waiting") == 1, 2, 0.01, "B waiting")
        reset(bs)
        wait_for(lambda: b.stats().get("waiting") == 0, 2, 0.01, "B out of the FIFO")
        c = send(b.port, "/c")
        check_eq(read_status(a), 200, "A")
        check_eq(read_status(c), 200, "C")
        took = time.monotonic() - t0
        log("A then C (B reset while waiting): %.3f s" % took)
        check(0.55 <= took < 0.85, "C answered %.3f s after A was sent; want ~0.6 (B's reset "
              "should take it out of the FIFO)" % took)
        a.close()
        c.close()

        # D in service then reset: its worker stays busy for the delay.
        t1 = time.monotonic()
        d = send(b.port, "/d")
        wait_for(lambda: b.stats().get("in_service") == 1, 2, 0.01, "D in service")
        reset(d)
        e = send(b.port, "/e")
        check_eq(read_status(e), 200, "E")
        took = time.monotonic() - t1
        log("E after D (D reset in service): %.3f s" % took)
        check(took >= 0.55, "E answered %.3f s after D was sent, want >= 0.6 (D's worker keeps "
              "its delay)" % took)
        e.close()
        st = b.stats()
        check_eq((st["in_service"], st["waiting"], st["max_in_service"]), (0, 0, 1),
                 "in_service, waiting, max_in_service")


def demo_backend():
    for name in (None, "named"):
        argv = [SG_BACKEND, "--demo-backend", "127.0.0.1:0", "--workers", "3", "--delay", "5"]
        if name:
            argv += ["--name", name]
        p = Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            r, _, _ = select.select([p.stdout], [], [], 5)
            check(r, "no line from --demo-backend within 5 s")
            line = p.stdout.readline().decode().strip()
            check(line.startswith("listening on 127.0.0.1:"), "first line %r" % line)
            port = int(line.rsplit(":", 1)[1])
            check(0 < port < 65536, "port %d" % port)
            st, hdrs, body = http_get(port, "/x", timeout=5)
            check_eq(st, 200, "status")
            check_eq(hdrs.get("X-Backend"), name or "demo-%d" % port, "X-Backend")
        finally:
            stop_process(p)


def bad_options():
    for v in ("0", "-1", "abc", "3x", ""):
        r = subprocess.run([SG_BACKEND, "--listen", "127.0.0.1:%d" % free_port(), "--workers", v],
                           capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        check_eq(r.returncode, 2, "exit status for --workers %r" % v)
        check(b"--workers" in r.stderr, "message for --workers %r: %r" % (v, r.stderr))


def main():
    capacity_cap()
    no_worker_for_health()
    resets()
    demo_backend()
    bad_options()


if __name__ == "__main__":
    run(main)
