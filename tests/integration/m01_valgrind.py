#!/usr/bin/python3
"""m01: the proxy under valgrind (memcheck) through a mixed workload --
keep-alive and pipelined requests, bodies both ways (Content-Length and
chunked), a large download, rejected requests, a garbled and a reset
response, a stale pooled connection, a client that leaves mid-response, and a
graceful stop with a request in flight. valgrind must report no error and no
definitely or indirectly lost block: it exits 9 otherwise, and the harness
requires exit status 0. Skipped (77) for a sanitizer build, which valgrind
cannot run (ASan maps its shadow memory where valgrind wants its own)."""

import os
import re
import shutil
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Backend, KeepAlive, Proxy, Skip, check, free_port,  # noqa: E402
                     http_request, proxy_config, raw_exchange, run, sanitized_build, skip,
                     tmp_path)


def main():
    why = sanitized_build()
    if why is not None:
        # not a missing tool (skip() fails under CI=true): nothing to install
        raise Skip("valgrind cannot run a sanitizer build: " + why)
    vg = shutil.which("valgrind")
    if vg is None:
        skip("valgrind not installed (packaging/install-deps --tests installs it)")
    vlog = tmp_path("valgrind.log")
    wrapper = [vg, "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect",
               "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=9",
               "--log-file=" + vlog]
    with Backend("v1") as b1, Backend("v2", drop_after=2) as b2:
        port = free_port()
        cfg = proxy_config(port, [b1, b2], workers=2, limits={"max_body_size": 100000},
                           timeouts={"server": "2s", "http_request": "2s"})
        with Proxy(cfg, listen_port=port, wrapper=wrapper, ready_timeout=60) as px:
            ka = KeepAlive(port)
            for i in range(30):
                st, _, _ = ka.request("GET", "/ka%d" % i)
                check(st == 200, "keep-alive GET %d: %s" % (i, st))
            ka.close()
            body = b"x" * 5000
            st, _, got = http_request(port, "POST", "/echo", body=body)
            check(st == 200 and got == body, "POST echo")
            raw = raw_exchange(port, b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                               b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n", timeout=10)
            check(b"hello" in raw, "chunked echo")
            st, _, got = http_request(port, "GET", "/download?bytes=2000000&chunked=1", timeout=30)
            check(st == 200 and len(got) == 2000000, "chunked download")
            pipe = b"".join(b"GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(5))
            raw = raw_exchange(port, pipe + b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                               timeout=10)
            check(raw.count(b"HTTP/1.1 200") == 6, "pipelined")
            for bad in (b"GET / HTTP/1.1\r\n\r\n",
                        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
                        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n"):
                raw = raw_exchange(port, bad, timeout=10)
                check(raw.startswith(b"HTTP/1.1 4"), "rejected: %r" % raw[:40])
            for path in ("/?garbage=1", "/?reset_after=100", "/?reset=1"):
                try:
                    http_request(port, "GET", path, timeout=10)
                except Exception:
                    pass  # a reset mid-response is meant to fail the client
            # a client that leaves mid-response
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /download?bytes=5000000 HTTP/1.1\r\nHost: t\r\n\r\n")
            s.recv(1000)
            s.close()
            # a request in flight during the graceful stop
            res = {}

            def slow():
                res["st"] = http_request(port, "GET", "/?delay=800", timeout=30)[0]
            t = threading.Thread(target=slow)
            t.start()
            threading.Event().wait(0.4)
            px.signal(signal.SIGTERM)
            t.join(30)
            check(res.get("st") == 200, "in-flight request during stop: %s" % res.get("st"))
            code = px.wait(60)
            report = open(vlog).read() if os.path.exists(vlog) else ""
            check(code == 0, "valgrind exit %s (9 = errors or leaks):\n%s" % (code, report[-4000:]))
            check(not re.search(r"definitely lost: [1-9]|indirectly lost: [1-9]", report),
                  "leaks reported:\n" + report[-4000:])


run(main)
