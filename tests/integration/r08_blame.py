#!/usr/bin/python3
"""r08: a failure is blamed on the side that caused it.

timeouts.server = 2s, timeouts.client = 3s, one backend, outlier detection
on the first error (consecutive_errors = 1), so a single failure blamed on
the backend would eject the pool's only backend and the next request would
get 503.

1. A legitimate slow upload: 6,000 body bytes in 500-byte pieces every
   0.4 s (about 4.4 s, longer than timeouts.server). The server timeout
   starts when the request has been sent, so it succeeds: 200 and the
   backend's {"bytes":6000}.
2. An upload that stalls for longer than timeouts.client: 408 from the
   proxy at about 3 s after the last byte; a client timeout in the stats
   (client_errors.timeout), no backend error.
3. An upload the client abandons (close mid-body): client_errors.aborted,
   no backend error.
4. After all three: the backend has no error of any kind, no failure, is up,
   and the next GET is a 200 (it was never ejected). The metrics give the
   client errors as surgegate_pool_client_errors_total{kind=...}.
"""
import socket
import time

from harness import *

OUTLIER = cfg_group("outlier", consecutive_errors=1, base_ejection="30s", max_ejection="60s",
                    max_ejection_percent=100)


def post_head(path, length):
    return ("POST %s HTTP/1.1\r\nHost: sg.test\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: %d\r\n\r\n" % (path, length)).encode()


def read_response(s, timeout):
    """Reads until the response head and its Content-Length body are in, or
    EOF / timeout. Returns (status or None, body bytes, seconds waited)."""
    s.settimeout(0.2)
    t0 = time.monotonic()
    data = b""
    while time.monotonic() - t0 < timeout:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            clen = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    clen = int(v.strip())
            if len(body) >= clen:
                break
    waited = time.monotonic() - t0
    if not data.startswith(b"HTTP/1.1 "):
        return None, data, waited
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head[9:12]), body, waited


def slow_upload(fe):
    body = pattern_bytes(0, 6000)
    with socket.create_connection(("127.0.0.1", fe), timeout=5) as s:
        s.sendall(post_head("/sink?v=slow-upload", len(body)))
        t0 = time.monotonic()
        for i in range(0, len(body), 500):
            time.sleep(0.4)
            s.sendall(body[i:i + 500])
        sent = time.monotonic() - t0
        status, rbody, _ = read_response(s, 5.0)
    log("slow upload: 6000 bytes in %.1fs -> %s %r" % (sent, status, rbody[:80]))
    check(sent > 4.0, "the upload took longer than timeouts.server (%.1fs)" % sent)
    check(status == 200, "slow legitimate upload answered %s (want 200): %r" % (status, rbody[:200]))
    check(b'"bytes":6000' in rbody.replace(b" ", b""),
          "the backend received the whole body: %r" % rbody[:200])


def stalled_upload(fe):
    with socket.create_connection(("127.0.0.1", fe), timeout=5) as s:
        s.sendall(post_head("/sink?v=stall", 1000) + b"x" * 100)
        status, rbody, waited = read_response(s, 8.0)
    log("stalled upload: %s after %.2fs" % (status, waited))
    check(status == 408, "stalled upload answered %s (want 408): %r" % (status, rbody[:200]))
    check(2.5 <= waited <= 5.0, "408 at timeouts.client (3s) after the last byte: %.2fs" % waited)


def abandoned_upload(fe):
    with socket.create_connection(("127.0.0.1", fe), timeout=5) as s:
        s.sendall(post_head("/sink?v=abandon", 1000) + b"x" * 300)
        time.sleep(0.3)
    log("abandoned upload: closed after 300 of 1000 body bytes")


def main():
    be = Backend("a")
    fe = free_port()
    cfg = proxy_config(fe, [be], extra_pool=OUTLIER, retries=2,
                       timeouts={"server": "2s", "client": "3s"})
    with Proxy(cfg, fe) as px:
        st, _, _ = http_get(fe, "/warm")
        check(st == 200, "warm-up GET: %s" % st)
        slow_upload(fe)
        stalled_upload(fe)
        abandoned_upload(fe)

        def counted():
            p = stats_pool(px)
            ce = p.get("client_errors", {})
            return ce.get("timeout", 0) >= 1 and ce.get("aborted", 0) >= 1
        wait_for(counted, 4.0, what="client errors counted in the pool's stats")
        p = stats_pool(px)
        b = stats_backend(p, be)
        log("pool client_errors %r errors %r; backend errors %r state %r" %
            (p.get("client_errors"), p.get("errors"), b.get("errors"), b.get("state")))
        check(all(v == 0 for v in p.get("errors", {}).values()),
              "no backend error in the pool: %r" % p.get("errors"))
        check(all(v == 0 for v in b.get("errors", {}).values()),
              "no error blamed on the backend: %r" % b.get("errors"))
        check(b.get("failures", 0) == 0, "backend failures: %r" % b.get("failures"))
        check(b.get("state") == "up" and not b.get("ejected"),
              "backend still up, not ejected: state %r ejected %r" % (b.get("state"),
                                                                     b.get("ejected")))
        st, _, _ = http_get(fe, "/after")
        check(st == 200, "GET after the client failures: %s (503 = the backend was ejected)" % st)
        samples = prom_parse(admin_raw(px, "GET", "/metrics")[2])
        for kind in ("timeout", "aborted"):
            v = prom_value(samples, "surgegate_pool_client_errors_total", pool="app", kind=kind)
            check(v >= 1, "surgegate_pool_client_errors_total{kind=%s} = %s" % (kind, v))
    log("PASS")


if __name__ == "__main__":
    run(main)
