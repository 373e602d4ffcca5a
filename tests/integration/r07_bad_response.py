#!/usr/bin/python3
"""r07: a backend response with invalid framing (issue 15).

A raw-socket fake backend (below) answers each request with scripted bytes,
chosen by the request's path, then closes. The proxy flushes a response head
to the client at the end of the backend read that brought it, so:

- invalid framing in the same read as the head (a bad chunk size line, chunk
  data not followed by CRLF, a head with two different Content-Lengths):
  nothing of the response reached the client yet, so the client gets the
  proxy's own 502 (small, with a Content-Length), counted in the pool's
  errors as bad_response and as a 5xx (before: the staged head was dropped
  and the client got an empty reply: a close with no byte);
- the client's connection stays usable after such a 502 (keep-alive);
- invalid framing in a later read, after the head went out (the fake backend
  pauses 300 ms between the head and the bad chunk): the client saw the
  200 head, so the only honest outcome is an aborted connection (the
  response is incomplete), still counted as bad_response.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Proxy, admin_get, fail, free_port, proxy_config, run,  # noqa: E402
                     wait_for)
from rawhttp import Check, exchange, fmt_bytes  # noqa: E402

HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

# path -> list of byte strings sent in order, 300 ms apart
SCRIPTS = {
    "/bad-size": [HEAD_CHUNKED + b"ZZZ\r\n"],
    "/bad-data-end": [HEAD_CHUNKED + b"5\r\nhelloXX0\r\n\r\n"],
    "/two-lengths": [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"],
    "/late-bad": [HEAD_CHUNKED + b"5\r\nhello\r\n", b"ZZZ\r\n"],
    "/good": [HEAD_CHUNKED + b"5\r\nhello\r\n0\r\n\r\n"],
}


class FakeBackend:
    """Accepts on 127.0.0.1:<free port>; per connection reads one request
    head, sends SCRIPTS[path] and closes. Bounded: every socket has a
    timeout, the accept loop stops when stop() is called."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.paths = []
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(5)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = c.recv(65536)
                if not chunk:
                    return
                data += chunk
            line = data.split(b"\r\n", 1)[0].decode("latin-1")
            path = line.split(" ")[1].split("?")[0] if line.count(" ") >= 2 else ""
            self.paths.append(path)
            if path == "/healthz":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                return
            for i, piece in enumerate(SCRIPTS.get(path, [b"HTTP/1.1 404 Not Found\r\n"
                                                         b"Content-Length: 0\r\n\r\n"])):
                if i > 0:
                    time.sleep(0.3)
                c.sendall(piece)
            time.sleep(0.1)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(2)


def pool_errors(px):
    st, body = admin_get(px, "pools/app")
    if st != 200 or not isinstance(body, dict):
        fail("GET pools/app: %s %r" % (st, body))
    return body


def main():
    chk = Check("r07_bad_response")
    fb = FakeBackend()
    try:
        port = free_port()
        cfg = proxy_config(port, [fb.addr], retries=0)
        with Proxy(cfg, listen_port=port) as px:
            before = pool_errors(px)
            base_bad = before["errors"]["bad_response"]
            base_5xx = before["responses"]["5xx"]
            n_bad = 0
            for path in ("/bad-size", "/bad-data-end", "/two-lengths"):
                ex = exchange(port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: sg.test\r\n"
                              b"Connection: close\r\n\r\n", timeout=5)
                r = ex.first()
                ok = chk.ok(r is not None and r.status == 502 and r.complete,
                            "%s in the head's read -> the proxy's 502" % path,
                            "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))
                if ok:
                    chk.ok(len(r.raw) < 512 and r.get("content-length") == str(len(r.body)),
                           "%s: 502 is the proxy's own (small, Content-Length)" % path,
                           fmt_bytes(r.raw, 400))
                    chk.ok(b"200 OK" not in ex.data and b"hello" not in ex.data,
                           "%s: nothing of the backend's response reached the client" % path,
                           fmt_bytes(ex.data, 400))
                n_bad += 1

            # Keep-alive: the 502 does not end the client's connection.
            ex = exchange(port, b"GET /bad-size HTTP/1.1\r\nHost: sg.test\r\n\r\n"
                          b"GET /good HTTP/1.1\r\nHost: sg.test\r\nConnection: close\r\n\r\n",
                          timeout=5)
            rs = ex.responses()
            chk.ok([x.status for x in rs] == [502, 200] and rs[1].body == b"hello",
                   "502 then the next request on the same connection -> 200 'hello'",
                   "got %r: %s" % (ex, fmt_bytes(ex.data, 400)))
            n_bad += 1

            # After the head went out: abort, no second status line.
            ex = exchange(port, b"GET /late-bad HTTP/1.1\r\nHost: sg.test\r\n"
                          b"Connection: close\r\n\r\n", timeout=5)
            rs = ex.responses()
            chk.ok(len(rs) == 1 and rs[0].status == 200 and not rs[0].complete and ex.closed,
                   "bad chunk after the head was sent -> 200 head, incomplete body, closed",
                   "got %r: %s" % (ex, fmt_bytes(ex.data, 400)))
            n_bad += 1

            def counted():
                body = pool_errors(px)
                return (body["errors"]["bad_response"] - base_bad >= n_bad
                        and body["responses"]["5xx"] - base_5xx >= 4)
            try:
                wait_for(counted, timeout=5, what="bad_response errors counted")
                chk.ok(True, "bad responses counted (errors.bad_response, responses.5xx)")
            except AssertionError:
                body = pool_errors(px)
                chk.ok(False, "bad responses counted (errors.bad_response +%d, 5xx +4)" % n_bad,
                       "errors %r responses %r" % (body["errors"], body["responses"]))
            if chk.failures:
                print("--- proxy stderr tail ---\n" + px.stderr_text()[-2000:])
    finally:
        fb.stop()
    chk.done()


run(main)
