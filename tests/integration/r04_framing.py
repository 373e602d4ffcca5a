#!/usr/bin/python3
"""r04: what reaches the backend, byte for byte, and the proxy's own errors.

- Framing is regenerated: the backend (/headers returns the head it got)
  sees exactly one framing header (Transfer-Encoding: chunked or a
  Content-Length) for a chunked upload, and exactly one Content-Length: 5 for
  a Content-Length: 5 upload.
- Hop-by-hop headers are removed: Connection and every header it names,
  Keep-Alive, TE, Trailer, Upgrade, Proxy-Connection; end-to-end headers stay.
- The proxy's own error responses (400 408 413 414 431 502 503 504) are
  small (< 512 bytes), carry a Content-Length that matches their body, and
  503 carries Retry-After.
- Pipelining: a valid request then an invalid one on one connection -> 200,
  400, close; the backend saw only the first.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Backend, Proxy, free_port, proxy_config, run  # noqa: E402
from rawhttp import (Check, exchange, fmt_bytes, fmt_lines, head_lines,  # noqa: E402
                     header_values)

HOST = b"Host: sg.test\r\n"


def backend_head(chk, port, what, data):
    """Sends data (a request to /headers), returns the head the backend got."""
    ex = exchange(port, data, timeout=5)
    r = ex.first()
    if not chk.ok(ex.statuses() == [200], "%s -> 200" % what,
                  "got %r: %s" % (ex, fmt_bytes(ex.data, 300))):
        return None
    print("  %s: backend got\n    %s" % (what, "\n    ".join(
        fmt_bytes(ln, 150) for ln in head_lines(r.body))))
    return r.body


def names(head):
    return [ln.partition(b":")[0].lower() for ln in head_lines(head)[1:]]


def test_framing(chk, port):
    h = backend_head(chk, port, "chunked upload",
                     b"POST /headers?v=f1 HTTP/1.1\r\n" + HOST
                     + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    if h is not None:
        te = header_values(h, "transfer-encoding")
        cl = header_values(h, "content-length")
        chk.ok(len(te) + len(cl) == 1,
               "chunked upload: exactly one framing header reaches the backend",
               "Transfer-Encoding %r, Content-Length %r" % (te, cl))
        chk.ok(te in ([], [b"chunked"]), "chunked upload: Transfer-Encoding is exactly 'chunked'",
               repr(te))
        chk.ok(cl in ([], [b"11"]), "chunked upload: a generated Content-Length is 11", repr(cl))

    h = backend_head(chk, port, "Content-Length: 5 upload",
                     b"POST /headers?v=f2 HTTP/1.1\r\n" + HOST
                     + b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")
    if h is not None:
        chk.ok(header_values(h, "content-length") == [b"5"],
               "Content-Length: 5 arrives as a single Content-Length: 5",
               repr(header_values(h, "content-length")))
        chk.ok(header_values(h, "transfer-encoding") == [],
               "Content-Length upload: no Transfer-Encoding added",
               repr(header_values(h, "transfer-encoding")))
        chk.ok([ln for ln in head_lines(h) if ln.lower().startswith(b"content-length:")]
               == [b"Content-Length: 5"], "Content-Length line spelled 'Content-Length: 5'",
               repr([ln for ln in head_lines(h) if ln.lower().startswith(b"content-length")]))

    # The body arrives intact with the regenerated framing.
    ex = exchange(port, b"POST /echo?v=f3 HTTP/1.1\r\n" + HOST
                  + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                  + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", timeout=5)
    r = ex.first()
    chk.ok(r is not None and r.status == 200 and r.body == b"hello world",
           "chunked upload arrives at the backend as 'hello world'",
           "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))

    # A GET without a body gets no framing header invented.
    h = backend_head(chk, port, "GET without body",
                     b"GET /headers?v=f4 HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    if h is not None:
        chk.ok(header_values(h, "transfer-encoding") == []
               and header_values(h, "content-length") in ([], [b"0"]),
               "GET without a body: no Transfer-Encoding, no non-zero Content-Length",
               fmt_bytes(h, 400))


def test_hop_by_hop(chk, port):
    h = backend_head(chk, port, "hop-by-hop headers",
                     b"GET /headers?v=h1 HTTP/1.1\r\n" + HOST
                     + b"Connection: foo\r\n"
                     + b"Foo: bar\r\n"
                     + b"Keep-Alive: timeout=5, max=100\r\n"
                     + b"TE: trailers\r\n"
                     + b"Trailer: X-Checksum\r\n"
                     + b"Upgrade: websocket\r\n"
                     + b"Proxy-Connection: keep-alive\r\n"
                     + b"X-Keep: yes\r\n"
                     + b"\r\n")
    if h is not None:
        got = names(h)
        for n in (b"foo", b"keep-alive", b"te", b"trailer", b"upgrade", b"proxy-connection"):
            chk.ok(n not in got, "hop-by-hop header '%s' removed" % n.decode(),
                   fmt_bytes(h, 600))
        chk.ok(header_values(h, "x-keep") == [b"yes"], "end-to-end X-Keep: yes kept",
               fmt_bytes(h, 600))
        conn = b",".join(header_values(h, "connection")).lower()
        toks = {t.strip() for t in conn.split(b",") if t.strip()}
        chk.ok(toks <= {b"keep-alive", b"close"},
               "forwarded Connection names only keep-alive/close (not the client's 'foo')",
               repr(header_values(h, "connection")))
        chk.ok(header_values(h, "host") == [b"sg.test"], "Host forwarded exactly once",
               repr(header_values(h, "host")))

    # Several Connection headers, several tokens, any case.
    h = backend_head(chk, port, "Connection lists (case-insensitive)",
                     b"GET /headers?v=h2 HTTP/1.1\r\n" + HOST
                     + b"Connection: FOO, Bar-Baz\r\n"
                     + b"connection: X-Hop\r\n"
                     + b"foo: 1\r\nBAR-BAZ: 2\r\nx-hop: 3\r\nX-End: 4\r\n\r\n")
    if h is not None:
        got = names(h)
        for n in (b"foo", b"bar-baz", b"x-hop"):
            chk.ok(n not in got, "header '%s' named by Connection removed" % n.decode(),
                   fmt_bytes(h, 600))
        chk.ok(header_values(h, "x-end") == [b"4"], "X-End kept", fmt_bytes(h, 600))


def check_error_response(chk, what, ex, status):
    r = ex.first()
    if not chk.ok(r is not None and r.status == status, "%s -> %d" % (what, status),
                  "got %r: %s" % (ex, fmt_bytes(ex.data, 300))):
        return None
    chk.ok(len(r.raw) < 512, "%d response is small (< 512 bytes)" % status,
           "%d bytes: %s" % (len(r.raw), fmt_bytes(r.raw, 600)))
    cl = r.get_all("content-length")
    chk.ok(len(cl) == 1 and cl[0].isdigit() and int(cl[0]) == len(r.body) and r.complete,
           "%d response carries a Content-Length matching its body" % status,
           "Content-Length %r, body %d bytes: %s" % (cl, len(r.body), fmt_bytes(r.raw, 600)))
    chk.ok(not r.get_all("transfer-encoding"), "%d response is not chunked" % status,
           fmt_bytes(r.raw, 600))
    chk.ok(re.match(r"HTTP/1\.[01]$", r.version) is not None,
           "%d status line is HTTP/1.x" % status, r.version)
    print("  %d (%s): %d bytes: %s" % (status, what, len(r.raw), fmt_bytes(r.raw, 200)))
    return r


def test_error_responses(chk, port, be):
    """400 408 413 414 431 from the main proxy (limits small), 504 via a
    slow backend (server = 1s), 502 via garbage from the backend."""
    check_error_response(chk, "missing Host", exchange(
        port, b"GET /?v=e400 HTTP/1.1\r\n\r\n", timeout=4), 400)
    check_error_response(chk, "stalled head", exchange(
        port, b"GET /?v=e408 HTTP/1.1\r\n" + HOST, timeout=4), 408)
    check_error_response(chk, "body over max_body_size", exchange(
        port, b"POST /?v=e413 HTTP/1.1\r\n" + HOST + b"Content-Length: 5000\r\n\r\n",
        timeout=4, stop_after_responses=1), 413)
    check_error_response(chk, "request line over max_request_line", exchange(
        port, b"GET /?v=e414&" + b"a" * 3000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        timeout=4), 414)
    check_error_response(chk, "header block over max_header_size", exchange(
        port, b"GET /?v=e431 HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 5000 + b"\r\n\r\n",
        timeout=4), 431)
    check_error_response(chk, "backend slower than timeouts.server", exchange(
        port, b"GET /?v=e504&delay=4000 HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
        timeout=4), 504)
    check_error_response(chk, "backend answers garbage", exchange(
        port, b"GET /?v=e502&garbage=1 HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
        timeout=4), 502)


def test_502_dead_backend(chk):
    port = free_port()
    dead = "127.0.0.1:%d" % free_port()   # nothing listens there
    cfg = proxy_config(port, [dead], retries=0,
                       timeouts={"connect": "1s", "http_request": "2s", "server": "2s",
                                 "queue": "1s"})
    with Proxy(cfg, listen_port=port) as px:
        ex = exchange(port, b"GET /?v=e502b HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
                      timeout=5)
        r = ex.first()
        want = r.status if r is not None and r.status in (502, 503) else 502
        check_error_response(chk, "only backend refuses connections", ex, want)
        if want == 503:
            check_retry_after(chk, r)
        if chk.failures:
            print("--- proxy (dead backend) stderr tail ---\n" + px.stderr_text()[-2000:])


def check_retry_after(chk, r):
    ra = r.get_all("retry-after")
    chk.ok(len(ra) == 1 and ra[0].isdigit(), "503 carries Retry-After: <seconds>",
           "Retry-After %r in %s" % (ra, fmt_bytes(r.raw, 400)))


def test_503(chk):
    # No route matches and there is no default pool -> 503 + Retry-After.
    with Backend("routed") as be:
        port = free_port()
        cfg = proxy_config(port, [be])
        cfg2 = cfg.replace('default_pool = "app";',
                           'routes = ( { host = "only.example"; pool = "app"; } );')
        if not chk.ok(cfg2 != cfg, "config rewrite for the no-route 503 case", cfg):
            return
        with Proxy(cfg2, listen_port=port) as px:
            ex = exchange(port, b"GET /?v=e503r HTTP/1.1\r\n" + HOST
                          + b"Connection: close\r\n\r\n", timeout=4)
            r = check_error_response(chk, "no route and no default pool", ex, 503)
            if r is not None:
                check_retry_after(chk, r)
            if chk.failures:
                print("--- proxy (no route) stderr tail ---\n" + px.stderr_text()[-2000:])

    # 503 for every backend down (health checks) and for a queue timeout
    # belong to issue 4 (health, maxconn queues) and are tested there.


def test_pipelined_invalid(chk, port, be):
    cases = [
        ("valid GET then missing-Host GET",
         b"GET /?v=p1a HTTP/1.1\r\n" + HOST + b"\r\n"
         + b"GET /?v=p1b HTTP/1.1\r\n\r\n"
         + b"GET /smuggled?v=p1c HTTP/1.1\r\n" + HOST + b"\r\n"),
        ("valid GET then CL.TE POST",
         b"GET /?v=p2a HTTP/1.1\r\n" + HOST + b"\r\n"
         + b"POST /?v=p2b HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
         + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
         + b"GET /smuggled?v=p2c HTTP/1.1\r\n" + HOST + b"\r\n"),
        ("valid POST then obs-fold GET",
         b"POST /echo?v=p3a HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n\r\nok"
         + b"GET /?v=p3b HTTP/1.1\r\n" + HOST + b"X-A: 1\r\n 2\r\n\r\n"
         + b"GET /smuggled?v=p3c HTTP/1.1\r\n" + HOST + b"\r\n"),
    ]
    for what, data in cases:
        ex = exchange(port, data, timeout=4)
        chk.ok(ex.statuses() == [200, 400], "pipelined %s -> 200 then 400" % what,
               "got %r\nsent: %s\ngot: %s" % (ex, fmt_bytes(data, 300), fmt_bytes(ex.data, 500)))
        chk.ok(ex.closed, "pipelined %s: connection closed after the 400" % what, repr(ex))
    time.sleep(0.3)
    log = be.log_lines()
    for tag in ("p1", "p2", "p3"):
        seen = [ln for ln in log if ("v=" + tag) in ln]
        chk.ok(len(seen) == 1 and ln_tag(seen[0]) == tag + "a",
               "pipelined %s: backend saw only the first request" % tag, fmt_lines(seen))


def ln_tag(line):
    m = re.search(r"v=(\w+)", line)
    return m.group(1) if m else None


def main():
    chk = Check("r04_framing")
    with Backend("b1") as be:
        port = free_port()
        cfg = proxy_config(port, [be], retries=0,
                           timeouts={"connect": "1s", "http_request": "1s", "client": "10s",
                                     "server": "1s", "queue": "1s", "keepalive": "5s"},
                           limits={"max_request_line": 1024, "max_header_size": 4096,
                                   "max_headers": 100, "max_body_size": 1000})
        with Proxy(cfg, listen_port=port) as px:
            try:
                test_framing(chk, port)
                test_hop_by_hop(chk, port)
                test_pipelined_invalid(chk, port, be)
                test_error_responses(chk, port, be)
            finally:
                if chk.failures:
                    print("--- proxy stderr tail ---\n" + px.stderr_text()[-3000:])
    test_502_dead_backend(chk)
    test_503(chk)
    chk.done()


if __name__ == "__main__":
    run(main)
