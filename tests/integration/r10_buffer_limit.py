#!/usr/bin/python3
"""r10: limits.buffer_memory bounds what all connections buffer together.

limits.buffer_memory = "1m"; 200 clients each ask for a 4 MB download and
read nothing (a 4 KiB receive buffer), so their responses pile up in the
proxy (about 32 KiB each without the limit: more than 4 MB). Asserted:

- the log says so, once, clearly: "buffer memory limit reached ... limits.
  buffer_memory", and surgegate_buffer_limit_hits_total >= 1;
- surgegate_buffer_bytes stays under 3 MB (once the limit is reached, reads
  take at most 4 KiB and a connection with bytes waiting for its client is
  not read), well under what 200 slow readers hold without it (measured in
  the same test with the limit off: more than 4 MB);
- a normal request still gets its answer at once;
- when the slow clients go, surgegate_buffer_bytes falls back to ~0 (the
  total is exact within 64 KiB per worker thread: each adds its changes in
  steps).
"""
import socket
import time

from harness import *


def slow_readers(fe, n):
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", fe))
        s.sendall(b"GET /download?bytes=4000000&v=%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
        socks.append(s)
    return socks


def buffered(px):
    samples = prom_parse(admin_raw(px, "GET", "/metrics")[2])
    return (prom_value(samples, "surgegate_buffer_bytes"),
            prom_value(samples, "surgegate_buffer_limit_hits_total"))


def run_case(limit):
    be = Backend("a")
    fe = free_port()
    cfg = proxy_config(fe, [be], limits={"buffer_memory": '"%s"' % limit}, workers=2)
    with Proxy(cfg, fe) as px:
        socks = slow_readers(fe, 200)
        try:
            peak = 0
            # 3 s of samples; without the limit, up to 10 s until the
            # downloads have filled the buffers (a busy machine's backend
            # sends them slower)
            t0 = time.monotonic()
            while True:
                b, hits = buffered(px)
                peak = max(peak, b)
                el = time.monotonic() - t0
                if el >= 10.0 or (el >= 3.0 and (limit != "0" or peak > 4 * 1048576)):
                    break
                time.sleep(0.1)
            st, _, _ = http_get(fe, "/small", timeout=3)
            check(st == 200, "a normal request while the buffers are full: %s" % st)
            b, hits = buffered(px)
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: buffered(px)[0] < 256 * 1024, 5.0,
                 what="buffers emptied once the slow clients left")
        err = px.stderr_text()
    log("limit %s: peak %.2f MB buffered, %d hits" % (limit, peak / 1048576.0, hits))
    return peak, hits, err


def main():
    peak_off, hits_off, _ = run_case("0")
    check(hits_off == 0, "no limit: no hit (%d)" % hits_off)
    check(peak_off > 4 * 1048576, "200 slow readers hold more than 4 MB without the limit: %.2f MB"
          % (peak_off / 1048576.0))
    peak, hits, err = run_case("1m")
    check(hits >= 1, "surgegate_buffer_limit_hits_total %d (want >= 1)" % hits)
    check(peak < 3 * 1048576, "buffered under 3 MB with the limit: %.2f MB"
          % (peak / 1048576.0))
    lines = [ln for ln in err.splitlines() if "buffer memory limit reached" in ln]
    check(len(lines) >= 1 and "limits.buffer_memory" in lines[0],
          "a clear log line when the limit is hit: %r" % lines[:2])
    check(len(lines) <= 2, "the warning is not repeated per hit: %d lines" % len(lines))
    log("PASS")


if __name__ == "__main__":
    run(main)
