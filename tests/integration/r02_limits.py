#!/usr/bin/python3
"""r02: request limits -> 414 / 431 / 413, at and just past each boundary.

Boundaries are chosen so that they hold however the proxy counts (with or
without the CRLF, request line inside or outside the header block):
  request line: a line of 8190 bytes + CRLF (8192 in all) passes; a line of
      8193 bytes (without its CRLF) is 414.
  header block: a whole head (request line, fields, every CRLF, the empty
      line) of exactly 32768 bytes passes; field lines holding 32769 bytes
      without any CRLF are 431.
  header count: 100 field lines (Host included) pass; 101 are 431.
  body: max_body_size = 1000: Content-Length 1000 passes, 1001 is 413 before
      the backend is contacted; chunked 1000 passes, 1001 is 413 + close.
A rejected head (414/431) also closes the connection, and a request
pipelined behind it never reaches the backend.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Backend, Proxy, free_port, proxy_config, run  # noqa: E402
from rawhttp import Check, exchange, fmt_bytes, fmt_lines  # noqa: E402

HOST = b"Host: sg.test\r\n"
LIMITS = {"max_request_line": 8192, "max_header_size": 32768, "max_headers": 100,
          "max_body_size": 1000}


def smug(tag):
    return b"GET /smuggled?v=" + tag + b" HTTP/1.1\r\nHost: sg.test\r\n\r\n"


def url_of_len(tag, n):
    """A request-target of exactly n bytes: /?v=TAG&p=aaaa..."""
    base = b"/?v=" + tag + b"&p="
    assert n >= len(base)
    return base + b"a" * (n - len(base))


def get_with_url(url, close=True):
    return (b"GET " + url + b" HTTP/1.1\r\n" + HOST
            + (b"Connection: close\r\n" if close else b"") + b"\r\n")


def head_of_total(tag, total):
    """A GET head of exactly `total` bytes (everything through the empty
    line), padded with a few large X-Fill headers."""
    start = b"GET /?v=" + tag + b" HTTP/1.1\r\n" + HOST + b"Connection: close\r\n"
    end = b"\r\n"
    left = total - len(start) - len(end)
    k = left // 4000 + 1
    overhead = len(b"X-Fill-00: \r\n")
    vals = left - k * overhead
    fills = []
    for i in range(k):
        vlen = vals // k + (1 if i < vals % k else 0)
        fills.append(b"X-Fill-%02d: " % i + b"b" * vlen + b"\r\n")
    h = start + b"".join(fills) + end
    assert len(h) == total, (len(h), total)
    return h


def head_with_field_bytes(tag, nbytes):
    """A GET head whose field lines hold `nbytes` bytes not counting CRLFs."""
    fields = [b"Host: sg.test", b"Connection: close"]
    have = sum(len(f) for f in fields)
    i = 0
    while have < nbytes:
        name = b"X-Fill-%02d: " % i
        vlen = min(4000, nbytes - have - len(name))
        if vlen <= 0:
            vlen = 1
        f = name + b"c" * vlen
        fields.append(f)
        have += len(f)
        i += 1
    assert have == nbytes, (have, nbytes)
    return b"GET /?v=" + tag + b" HTTP/1.1\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def head_with_n_fields(tag, n):
    """n field lines in all, Host and Connection included."""
    fields = [b"Host: sg.test", b"Connection: close"]
    fields += [b"X-H-%03d: v" % i for i in range(n - len(fields))]
    assert len(fields) == n
    return b"GET /?v=" + tag + b" HTTP/1.1\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


class Ctx:
    def __init__(self, chk, port, be):
        self.chk, self.port, self.be = chk, port, be

    def lines_for(self, tag):
        t = "v=" + tag.decode()
        return [ln for ln in self.be.log_lines() if t + "&" in ln or ln.endswith(t)]

    def expect_ok(self, what, tag, data, body=None, timeout=5):
        ex = exchange(self.port, data, timeout=timeout)
        r = ex.first()
        ok = self.chk.ok(ex.statuses() == [200], "%s -> 200" % what,
                         "got %r\nsent: %s\ngot: %s" % (ex, fmt_bytes(data, 200),
                                                       fmt_bytes(ex.data, 300)))
        if ok and body is not None:
            self.chk.ok(r.body == body, "%s: body echoed intact" % what,
                        "got %d bytes %s" % (len(r.body), fmt_bytes(r.body, 100)))
        return ex

    def expect_reject(self, what, tag, data, status, must_close=True, backend_silent=True,
                      timeout=4):
        """Sends data + a pipelined smuggled request; wants exactly one
        `status` response, a close, and (backend_silent) no backend line."""
        sent = data + smug(tag)
        ex = exchange(self.port, sent, timeout=timeout)
        self.chk.ok(ex.statuses() == [status], "%s -> %d" % (what, status),
                    "got %r\nsent: %s\ngot: %s" % (ex, fmt_bytes(sent, 200),
                                                  fmt_bytes(ex.data, 300)))
        if must_close:
            self.chk.ok(ex.closed, "%s: connection closed after %d" % (what, status), repr(ex))
        time.sleep(0.2)
        lines = self.lines_for(tag)
        if backend_silent:
            self.chk.ok(not lines, "%s: backend never contacted" % what, fmt_lines(lines))
        self.chk.ok(not [ln for ln in lines if "/smuggled" in ln],
                    "%s: nothing after the rejected request forwarded" % what, fmt_lines(lines))
        return ex


def test_request_line(c):
    # 8000-byte URL passes.
    u = url_of_len(b"rl1", 8000)
    c.expect_ok("8000-byte URL", b"rl1", get_with_url(u))
    c.chk.ok(any(ln == "GET " + u.decode() for ln in c.lines_for(b"rl1")),
             "8000-byte URL reached the backend intact")
    # request line of 8190 bytes (8192 with CRLF) passes
    n = 8190 - len(b"GET ") - len(b" HTTP/1.1")
    c.expect_ok("request line 8190+CRLF = 8192 bytes", b"rl2", get_with_url(url_of_len(b"rl2", n)))
    # a request-target of 8193 bytes alone -> 414
    c.expect_reject("8193-byte URL", b"rl6", get_with_url(url_of_len(b"rl6", 8193)), 414)
    # request line of 8193 bytes without CRLF -> 414
    n = 8193 - len(b"GET ") - len(b" HTTP/1.1")
    c.expect_reject("request line 8193 bytes", b"rl3", get_with_url(url_of_len(b"rl3", n)), 414)
    c.expect_reject("9000-byte URL", b"rl4", get_with_url(url_of_len(b"rl4", 9000)), 414)
    c.expect_reject("64 KiB URL", b"rl5", get_with_url(url_of_len(b"rl5", 65536)), 414)


def test_header_block(c):
    c.expect_ok("head of exactly 32768 bytes", b"hb1", head_of_total(b"hb1", 32768))
    c.expect_reject("header fields of 32769 bytes (without CRLFs)", b"hb2",
                    head_with_field_bytes(b"hb2", 32769), 431)
    c.expect_reject("header fields of 40000 bytes", b"hb3",
                    head_with_field_bytes(b"hb3", 40000), 431)
    # one single huge header value
    c.expect_reject("one 33000-byte header value", b"hb4",
                    b"GET /?v=hb4 HTTP/1.1\r\n" + HOST + b"X-Big: " + b"d" * 33000
                    + b"\r\n\r\n", 431)


def test_header_count(c):
    c.expect_ok("100 header fields", b"hc1", head_with_n_fields(b"hc1", 100))
    c.expect_reject("101 header fields", b"hc2", head_with_n_fields(b"hc2", 101), 431)
    c.expect_reject("500 header fields", b"hc3", head_with_n_fields(b"hc3", 500), 431)


def test_body(c):
    body = bytes((65 + i % 26) for i in range(1000))
    c.expect_ok("Content-Length 1000 (= max_body_size)", b"bd1",
                b"POST /echo?v=bd1 HTTP/1.1\r\n" + HOST + b"Content-Length: 1000\r\n"
                b"Connection: close\r\n\r\n" + body, body=body)

    # Content-Length 1001, body sent: 413, backend never contacted.
    data = (b"POST /echo?v=bd2 HTTP/1.1\r\n" + HOST + b"Content-Length: 1001\r\n\r\n"
            + body + b"Z")
    ex = exchange(c.port, data, timeout=4, stop_after_responses=1)
    c.chk.ok(ex.statuses() == [413], "Content-Length 1001 -> 413",
             "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))
    # Content-Length 100000, only the head sent: 413 at once, not after a
    # body timeout, and the backend never contacted.
    data = (b"POST /echo?v=bd3 HTTP/1.1\r\n" + HOST + b"Content-Length: 100000\r\n\r\n")
    ex = exchange(c.port, data, timeout=4, stop_after_responses=1)
    c.chk.ok(ex.statuses() == [413], "Content-Length 100000 (no body sent) -> 413",
             "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))
    c.chk.ok(ex.first_byte_at is not None and ex.first_byte_at < 1.0,
             "413 for a too-large Content-Length answered before any body arrives",
             "first byte after %s s" % ex.first_byte_at)
    # With Expect: 100-continue: 413 instead of 100 Continue.
    data = (b"POST /echo?v=bd4 HTTP/1.1\r\n" + HOST + b"Content-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n")
    ex = exchange(c.port, data, timeout=4, stop_after_responses=1)
    c.chk.ok(ex.statuses() == [413], "Content-Length 5000 + Expect: 100-continue -> 413 only",
             "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))
    time.sleep(0.2)
    for tag in (b"bd2", b"bd3", b"bd4"):
        lines = c.lines_for(tag)
        c.chk.ok(not lines, "413 (%s): backend never contacted" % tag.decode(), fmt_lines(lines))

    # Chunked: exactly 1000 passes (two chunks), 1001 is 413 + close.
    chunked = b"1f4\r\n" + body[:500] + b"\r\n1f4\r\n" + body[500:] + b"\r\n0\r\n\r\n"
    c.expect_ok("chunked body of 1000 bytes", b"bd5",
                b"POST /echo?v=bd5 HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n" + chunked, body=body)
    over = b"3e8\r\n" + body + b"\r\n1\r\nZ\r\n0\r\n\r\n"
    c.expect_reject("chunked body of 1001 bytes", b"bd6",
                    b"POST /sink?v=bd6 HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                    + over, 413, backend_silent=False)
    # A single chunk that declares more than the limit.
    c.expect_reject("one chunk declaring 5000 bytes", b"bd7",
                    b"POST /sink?v=bd7 HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                    + b"1388\r\n" + b"e" * 5000 + b"\r\n0\r\n\r\n", 413, backend_silent=False)

    # Chunk extensions are dropped, and capped at 4 KiB per chunk so they
    # cannot stream unmetered past max_body_size.
    c.expect_reject("chunk extension of 8 KiB", b"bd8",
                    b"POST /sink?v=bd8 HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                    + b"5;ext=" + b"x" * 8192 + b"\r\nhello\r\n0\r\n\r\n", 400,
                    backend_silent=False)


def test_linger(c):
    """A 413 answered while the client is still sending a large body must
    reach the client: the proxy stops writing, discards the rest and only
    then closes (a plain close with unread input sends RST, which can
    destroy the 413 before the client reads it)."""
    import socket
    import threading
    for i in range(3):
        s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        head = (b"POST /sink?v=lg%d HTTP/1.1\r\n" % i + HOST
                + b"Content-Length: 4000000\r\n\r\n")
        # The head crosses max_body_size only through the declared length,
        # so the 413 goes out at once; keep sending the body meanwhile.
        err = []

        def pump():
            try:
                s.sendall(head + b"x" * 4000000)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        got = b""
        deadline = time.monotonic() + 5
        try:
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except OSError as e:
            got += b"<%s>" % type(e).__name__.encode()
        t.join(6)
        s.close()
        c.chk.ok(got.startswith(b"HTTP/1.1 413"),
                 "lingering close: 413 read intact while the body is still being sent (%d)" % i,
                 fmt_bytes(got, 200))
        c.chk.ok(not got.endswith(b"Error>") and not err,
                 "lingering close: the connection ends with FIN after the body, not RST (%d)" % i,
                 "reader: %s, sender: %r" % (fmt_bytes(got[-40:], 40), err))


def test_versions(c):
    c.expect_reject("HTTP/0.9 request line", b"ver1", b"GET /?v=ver1\r\n\r\n", 400)
    c.expect_reject("HTTP/2.0 in an HTTP/1 request line", b"ver2",
                    b"GET /?v=ver2 HTTP/2.0\r\n" + HOST + b"\r\n", 505)


def main():
    chk = Check("r02_limits")
    with Backend("b1") as be:
        port = free_port()
        with Proxy(proxy_config(port, [be], limits=LIMITS), listen_port=port) as px:
            c = Ctx(chk, port, be)
            try:
                test_request_line(c)
                test_header_block(c)
                test_header_count(c)
                test_body(c)
                test_versions(c)
                test_linger(c)
                after = exchange(port, b"GET /?v=after HTTP/1.1\r\n" + HOST
                                 + b"Connection: close\r\n\r\n", timeout=5)
                chk.ok(after.statuses() == [200], "proxy still serves afterwards", repr(after))
            finally:
                if chk.failures:
                    print("--- proxy stderr (tail) ---\n" + px.stderr_text()[-3000:])

        # Configurable: max_request_line = 1024.
        port2 = free_port()
        lim = dict(LIMITS, max_request_line=1024)
        with Proxy(proxy_config(port2, [be], limits=lim), listen_port=port2) as px2:
            c2 = Ctx(chk, port2, be)
            c2.expect_ok("max_request_line=1024: 900-byte URL", b"cf1",
                         get_with_url(url_of_len(b"cf1", 900)))
            c2.expect_reject("max_request_line=1024: 2 KiB URL", b"cf2",
                             get_with_url(url_of_len(b"cf2", 2048)), 414)
            if chk.failures:
                print("--- proxy 2 stderr (tail) ---\n" + px2.stderr_text()[-3000:])
    chk.done()


if __name__ == "__main__":
    run(main)
