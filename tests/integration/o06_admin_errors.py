#!/usr/bin/python3
"""o06: every error of the admin API is JSON (issue 15).

libevent answers what it refuses before the admin API's handler runs (a
body over the limit, a head over the limit, an unknown method, a malformed
request line, an unknown Expect) with an HTML page of its own; the admin API
replaces those pages (admin.c), so each answer below must have the expected
status, "Content-Type: application/json" and a body {"error": "..."}:

  10 MB body (Content-Length; head only, whole body, Expect: 100-continue;
  and with curl --data-binary)                                    413
  70 KB chunked body                                              413
  70 KB header line                                               400
  unknown method FOO                                              501
  a request line that is not HTTP                                 400
  Expect: something-else                                          417
  DELETE on a read-only endpoint                                  405
  unknown paths                                                   404
  a body that is not JSON                                         400

The admin API still answers normally afterwards.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Backend, Proxy, admin_get, admin_try_get, free_port, log,  # noqa: E402
                     proxy_config, run, tmp_path, wait_for)
from rawhttp import Check  # noqa: E402

BIG = 10 * 1024 * 1024


def raw_admin(path, data, body_after=None, timeout=5):
    """Sends data on a new connection to the admin socket (and body_after
    from a second thread, as a client that streams its body would), reads
    until the server closes. Returns everything received; a reset after the
    answer (the server closed with our body unread) is not an error."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    out = b""
    t = None
    try:
        s.sendall(data)
        if body_after is not None:
            def pump():
                try:
                    s.sendall(body_after)
                except OSError:
                    pass
            t = threading.Thread(target=pump, daemon=True)
            t.start()
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                break
            if not d:
                break
            out += d
    except OSError:
        pass
    finally:
        if t is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            t.join(5)
        s.close()
    return out


def parse(data):
    """(status, headers dict lower-case, body) of the first response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ")[1])
    except (IndexError, ValueError):
        return None, {}, data
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    if "content-length" in hdrs and hdrs["content-length"].isdigit():
        body = body[:int(hdrs["content-length"])]
    return status, hdrs, body


def check_json_error(chk, what, data, want):
    status, hdrs, body = parse(data)
    ok = chk.ok(status == want, "%s -> %d" % (what, want), "got %r" % data[:300])
    chk.ok(hdrs.get("content-type", "").startswith("application/json"),
           "%s: Content-Type application/json" % what, "headers %r" % hdrs)
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        obj = None
    chk.ok(isinstance(obj, dict) and isinstance(obj.get("error"), str) and obj["error"],
           "%s: body is {\"error\": \"...\"}" % what, "body %r" % body[:300])
    if ok:
        log("  %s: %d %s" % (what, status, body.strip().decode("utf-8", "replace")))


def main():
    chk = Check("o06_admin_errors")
    fe = free_port()
    with Backend("b1") as b1:
        with Proxy(proxy_config(fe, [b1]), listen_port=fe) as px:
            wait_for(lambda: admin_try_get(px, "stats") is not None, timeout=3,
                     what="admin socket")
            sock = px.admin_path
            post = b"POST /api/v1/pools/app/backends HTTP/1.1\r\nHost: localhost\r\n"
            check_json_error(chk, "10 MB body, head only", raw_admin(
                sock, post + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % BIG), 413)
            check_json_error(chk, "10 MB body, sent whole", raw_admin(
                sock, post + b"Content-Length: %d\r\n\r\n" % BIG, body_after=b"x" * BIG), 413)
            check_json_error(chk, "10 MB body with Expect: 100-continue", raw_admin(
                sock, post + b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % BIG), 413)
            n = 70 * 1024
            check_json_error(chk, "70 KB chunked body", raw_admin(
                sock, post + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % n + b"x" * n
                + b"\r\n0\r\n\r\n"), 413)
            check_json_error(chk, "70 KB header line", raw_admin(
                sock, b"GET /api/v1/stats HTTP/1.1\r\nHost: localhost\r\nX-Big: "
                + b"a" * (70 * 1024) + b"\r\n\r\n"), 400)
            check_json_error(chk, "unknown method FOO", raw_admin(
                sock, b"FOO /api/v1/stats HTTP/1.1\r\nHost: localhost\r\n\r\n"), 501)
            check_json_error(chk, "request line that is not HTTP", raw_admin(
                sock, b"NOT AN HTTP REQUEST\r\n\r\n"), 400)
            check_json_error(chk, "Expect: something-else", raw_admin(
                sock, post + b"Expect: something-else\r\nContent-Length: 2\r\n\r\n{}"), 417)
            check_json_error(chk, "DELETE /api/v1/stats", raw_admin(
                sock, b"DELETE /api/v1/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"), 405)
            check_json_error(chk, "PUT on a pool", raw_admin(
                sock, b"PUT /api/v1/pools/app HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                b"Content-Length: 0\r\n\r\n"), 405)
            for p in (b"/nope", b"/api/v1/nope", b"/api/v1/pools/nope", b"/api/v2/stats"):
                check_json_error(chk, "GET %s" % p.decode(), raw_admin(
                    sock, b"GET " + p + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"), 404)
            check_json_error(chk, "body that is not JSON", raw_admin(
                sock, post + b"Content-Type: application/json\r\nContent-Length: 8\r\nConnection: close\r\n\r\n"
                b"not json"), 400)

            # a real client: curl sends a 10 MB file with Expect: 100-continue
            curl = shutil.which("curl")
            if curl:
                f = tmp_path("o06-10mb.json")
                with open(f, "wb") as fh:
                    fh.write(b'{"address":"' + b"1" * (BIG - 14) + b'"}')
                p = subprocess.run([curl, "-s", "-i", "--max-time", "10", "--unix-socket", sock,
                                    "-H", "Content-Type: application/json",
                                    "--data-binary", "@" + f,
                                    "http://localhost/api/v1/pools/app/backends"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
                out = p.stdout
                # curl -i prints "HTTP/1.1 100 Continue" first when the server sent it
                while out.startswith(b"HTTP/1.1 100"):
                    out = out.partition(b"\r\n\r\n")[2]
                check_json_error(chk, "curl --data-binary @10MB", out, 413)
            else:
                log("curl not found: the curl case is skipped")

            st, body = admin_get(px, "stats")
            chk.ok(st == 200 and isinstance(body, dict), "admin API still answers GET stats",
                   "%s %r" % (st, str(body)[:200]))
    chk.done()


run(main)
