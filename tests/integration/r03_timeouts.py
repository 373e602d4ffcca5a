#!/usr/bin/python3
"""r03: header deadline (408), idle keep-alive close, silent close of a
connection that never sent a byte.

timeouts.http_request bounds the time from a request's first byte to the end
of its head, however the bytes trickle in (slowloris): the proxy answers 408
and closes at the deadline, it does not wait for the client. timeouts.keepalive
bounds the idle time between requests on a kept-alive connection; that close
is silent (a 408 there would be read as the answer to a request racing the
close). A connection that never sends a byte is closed without a response.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Backend, Proxy, free_port, proxy_config, run  # noqa: E402
from rawhttp import Check, Conn, drip_exchange, exchange, fmt_bytes, fmt_lines  # noqa: E402

HOST = b"Host: sg.test\r\n"
# Slack for timers on a loaded 2-core machine.
EARLY = 0.8     # a 1 s deadline must not fire before this
LATE = 1.6      # ... and must have fired by this ("~1.5 s")
CLOSED_BY = 2.0


def timeouts(http_request="1s", keepalive="1s"):
    return {"connect": "1s", "http_request": http_request, "client": "10s",
            "server": "10s", "queue": "2s", "keepalive": keepalive}


def lines_for(be, tag):
    t = "v=" + tag
    return [ln for ln in be.log_lines() if ln.endswith(t) or (t + "&") in ln]


def check_408(chk, be, what, ex, tag, t_from=0.0):
    t = None if ex.first_byte_at is None else ex.first_byte_at - t_from
    ok = chk.ok(ex.statuses() == [408], "%s -> 408" % what,
                "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))
    if ok:
        chk.ok(EARLY <= t <= LATE, "%s: 408 sent at the 1 s deadline" % what,
               "408 after %.2fs (want %.1f..%.1f)" % (t, EARLY, LATE))
    chk.ok(ex.closed and ex.elapsed - t_from <= CLOSED_BY,
           "%s: connection closed by %.1fs" % (what, CLOSED_BY),
           "closed=%s after %.2fs" % (ex.closed, ex.elapsed - t_from))
    chk.ok(not lines_for(be, tag), "%s: backend never contacted" % what,
           fmt_lines(lines_for(be, tag)))


def test_slowloris(chk, port, be):
    first = b"GET /?v=slow1 HTTP/1.1\r\n" + HOST
    drip = b"X-Slow: " + b"a" * 40 + b"\r\n\r\n"     # 52 bytes, 10 s at 5 bytes/s
    ex, dripped = drip_exchange(port, first, drip, 0.2, timeout=4.0)
    print("  slowloris: %d bytes dripped, %r" % (dripped, ex))
    check_408(chk, be, "slowloris (one header byte / 200 ms)", ex, "slow1")

    # Request line never finished.
    ex = exchange(port, b"GET /?v=slow2 HT", timeout=4.0)
    check_408(chk, be, "partial request line, then silence", ex, "slow2")

    # Head without its empty line.
    ex = exchange(port, b"GET /?v=slow3 HTTP/1.1\r\n" + HOST + b"X-A: b\r\n", timeout=4.0)
    check_408(chk, be, "head without the final CRLF, then silence", ex, "slow3")

    # The request line itself dripped.
    ex, _ = drip_exchange(port, b"G", b"ET /?v=slow4&" + b"x" * 60, 0.2, timeout=4.0)
    check_408(chk, be, "request line dripped one byte / 200 ms", ex, "slow4")


def test_silent_connection(chk, port):
    with Conn(port) as c:
        closed, extra, waited = c.wait_close(4.0)
    chk.ok(closed, "connection that never sends a byte is closed",
           "still open after %.1fs" % waited)
    chk.ok(extra == b"", "no response (no 408) on a connection that never sent a byte",
           "got: %s" % fmt_bytes(extra, 300))
    print("  silent connection: closed=%s after %.2fs, %d bytes" % (closed, waited, len(extra)))


def keepalive_idle(chk, port, what, lo, hi, tag):
    with Conn(port) as c:
        c.send(b"GET /?v=" + tag + b" HTTP/1.1\r\n" + HOST + b"\r\n")
        rs = c.read_responses(1, timeout=5)
        if not chk.ok([r.status for r in rs] == [200], "%s: first request -> 200" % what,
                      repr(rs)):
            return
        chk.ok(not c.closed, "%s: kept alive after the response" % what)
        closed, extra, waited = c.wait_close(hi + 2.0)
    chk.ok(closed and lo <= waited <= hi,
           "%s: idle connection closed after %.1f..%.1fs" % (what, lo, hi),
           "closed=%s after %.2fs" % (closed, waited))
    chk.ok(extra == b"", "%s: idle close is silent (no 408)" % what,
           "got: %s" % fmt_bytes(extra, 300))
    print("  %s: closed=%s after %.2fs idle" % (what, closed, waited))


def test_second_request_deadline(chk, port, be):
    """After one response, a second request's head stalls: 408 about 1 s
    after its first byte (not never, not at once)."""
    with Conn(port) as c:
        c.send(b"GET /?v=ka3a HTTP/1.1\r\n" + HOST + b"\r\n")
        rs = c.read_responses(1, timeout=5)
        if not chk.ok([r.status for r in rs] == [200], "second-request deadline: first -> 200",
                      repr(rs)):
            return
        time.sleep(0.3)
        t = time.monotonic()
        c.send(b"GET /?v=ka3b HTTP/1.1\r\n" + HOST)
        rs = c.read_responses(1, timeout=4)
        dt = time.monotonic() - t
        ok = chk.ok([r.status for r in rs] == [408], "stalled second request on a kept-alive "
                    "connection -> 408", "got %r after %.2fs: %s" % (rs, dt, fmt_bytes(c.buf)))
        if ok:
            chk.ok(0.6 <= dt <= LATE, "stalled second request: 408 about 1 s after its first "
                   "byte", "after %.2fs" % dt)
        closed, _, waited = c.wait_close(1.0)
        chk.ok(closed, "stalled second request: closed after the 408",
               "open %.1fs later" % waited)


def test_keepalive_governs(chk, be):
    """keepalive = 3s, http_request = 1s: an idle kept-alive connection is
    still usable after 1.5 s (the idle wait is keepalive's, not the head
    deadline's)."""
    port = free_port()
    cfg = proxy_config(port, [be], timeouts=timeouts(http_request="1s", keepalive="3s"))
    with Proxy(cfg, listen_port=port) as px:
        with Conn(port) as c:
            c.send(b"GET /?v=ka4a HTTP/1.1\r\n" + HOST + b"\r\n")
            rs = c.read_responses(1, timeout=5)
            chk.ok([r.status for r in rs] == [200], "keepalive=3s: first request -> 200",
                   repr(rs))
            time.sleep(1.5)
            c.send(b"GET /?v=ka4b HTTP/1.1\r\n" + HOST + b"\r\n")
            rs = c.read_responses(1, timeout=5)
            chk.ok([r.status for r in rs] == [200],
                   "keepalive=3s, http_request=1s: request after 1.5 s idle -> 200",
                   "got %r: %s" % (rs, fmt_bytes(c.buf)))
        if chk.failures:
            print("--- proxy (keepalive=3s) stderr tail ---\n" + px.stderr_text()[-2000:])

    port = free_port()
    cfg = proxy_config(port, [be], timeouts=timeouts(http_request="3s", keepalive="1s"))
    with Proxy(cfg, listen_port=port) as px:
        keepalive_idle(chk, port, "keepalive=1s, http_request=3s", 0.7, 1.8, b"ka5")


def main():
    chk = Check("r03_timeouts")
    with Backend("b1") as be:
        port = free_port()
        cfg = proxy_config(port, [be], timeouts=timeouts())
        with Proxy(cfg, listen_port=port) as px:
            try:
                test_slowloris(chk, port, be)
                test_silent_connection(chk, port)
                keepalive_idle(chk, port, "keepalive=1s", 0.7, 1.8, b"ka1")
                test_second_request_deadline(chk, port, be)
                ex = exchange(port, b"GET /?v=after HTTP/1.1\r\n" + HOST
                              + b"Connection: close\r\n\r\n", timeout=5)
                chk.ok(ex.statuses() == [200], "proxy still serves afterwards", repr(ex))
            finally:
                if chk.failures:
                    print("--- proxy stderr tail ---\n" + px.stderr_text()[-3000:])
        test_keepalive_governs(chk, be)
    chk.done()


if __name__ == "__main__":
    run(main)
