#!/usr/bin/python3
"""r06: absolute-form targets and HTTP/0.9 request lines (issue 15).

Absolute-form ("GET http://authority/path HTTP/1.1", RFC 9112 3.2.2):
- an authority that differs from the Host header (another host, another
  port) is answered 400 and the connection closed; the backend sees nothing
  (before: forwarded with Host rewritten to the authority, and routed by it);
- an authority equal to Host (case-insensitive, ":80" and no port alike) is
  accepted: routed by that authority, forwarded in origin-form with exactly
  one Host (the authority), and logged with it as "host";
- HTTP/1.0 absolute-form without Host: accepted, routed by the authority,
  which the backend gets as Host and the access log shows;
- a route on host "only.example" is reached through a matching absolute-form
  request, and a mismatching one never reaches it.

HTTP/0.9 ("GET /path" CRLF, no version): 400 at once (well under a second,
with timeouts.http_request = 5s), closed, backend saw nothing; before, the
proxy waited for header lines that never come and answered 408 after 5 s.
Sent whole and as 1-byte writes.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Backend, Proxy, free_port, pool_text, proxy_config, run, tmp_path  # noqa: E402
from rawhttp import Check, bytewise, exchange, fmt_bytes, header_values, head_lines  # noqa: E402


def mine(be, vid):
    tag = "v=" + vid
    return [ln for ln in be.log_lines() if ln.endswith(tag) or (tag + "&") in ln]


def rejected(chk, what, ex, be, vid, others=()):
    chk.ok(ex.statuses() == [400], "%s -> one 400" % what,
           "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))
    chk.ok(ex.closed, "%s: connection closed" % what, repr(ex))
    for b in (be,) + tuple(others):
        seen = mine(b, vid)
        chk.ok(not seen, "%s: backend %s saw nothing" % (what, b.name), repr(seen))


def accepted_head(chk, what, ex):
    """The head the backend got (/headers echoes it), or None."""
    r = ex.first()
    if not chk.ok(r is not None and r.status == 200, "%s -> 200" % what,
                  "got %r: %s" % (ex, fmt_bytes(ex.data, 300))):
        return None
    return r.body


def main():
    chk = Check("r06_request_line")
    port = free_port()
    logp = tmp_path("r06-access.log")
    with Backend("app") as be, Backend("only") as only:
        cfg = proxy_config(port, [be], routes=[("only.example", None, "only")],
                           more_pools=[pool_text("only", [only])],
                           extra_top='access_log = { path = "%s"; format = "json"; };' % logp)
        with Proxy(cfg, listen_port=port) as px:
            # --- mismatching authority: 400, nothing forwarded
            cases = [
                ("a1", b"GET http://evil.example/?v=a1 HTTP/1.1\r\nHost: sg.test\r\n\r\n",
                 "another host"),
                ("a2", b"GET http://sg.test:8080/?v=a2 HTTP/1.1\r\nHost: sg.test\r\n\r\n",
                 "another port"),
                ("a3", b"GET http://sg.test/?v=a3 HTTP/1.1\r\nHost: sg.test:81\r\n\r\n",
                 "Host with another port"),
                ("a4", b"GET http://only.example/?v=a4 HTTP/1.1\r\nHost: sg.test\r\n"
                 b"Connection: close\r\n\r\n", "routed host in the target only"),
                ("a5", b"GET http://sg.test/?v=a5 HTTP/1.1\r\nHost: only.example\r\n"
                 b"Connection: close\r\n\r\n", "routed host in Host only"),
                ("a6", b"GET http://sg.test:x/?v=a6 HTTP/1.1\r\nHost: sg.test:x\r\n\r\n",
                 "non-numeric port"),
            ]
            for vid, data, what in cases:
                what = "absolute-form, %s" % what
                rejected(chk, what, exchange(port, data, timeout=3), be, vid, (only,))
                svid = "s" + vid
                ex = exchange(port, bytewise(data.replace(b"v=" + vid.encode(),
                                                          b"v=" + svid.encode())),
                              timeout=3, gap=0.001)
                rejected(chk, what + " (1-byte writes)", ex, be, svid, (only,))

            # --- the same authority spelled differently: accepted
            ex = exchange(port, b"GET http://SG.Test:80/headers?v=b1 HTTP/1.1\r\n"
                          b"Host: sg.test\r\nConnection: close\r\n\r\n", timeout=5)
            h = accepted_head(chk, "absolute-form equal to Host (case, :80)", ex)
            if h is not None:
                first = head_lines(h)[0]
                chk.ok(first == b"GET /headers?v=b1 HTTP/1.1",
                       "forwarded in origin-form", repr(first))
                chk.ok(header_values(h, "host") == [b"SG.Test:80"],
                       "exactly one Host, the authority", repr(header_values(h, "host")))
            ex = exchange(port, b"GET http://sg.test/headers?v=b2 HTTP/1.1\r\n"
                          b"Host: SG.TEST:80\r\nConnection: close\r\n\r\n", timeout=5)
            accepted_head(chk, "absolute-form equal to Host (Host with :80)", ex)

            # --- routing by the one authority
            ex = exchange(port, b"GET http://only.example/?v=c1 HTTP/1.1\r\n"
                          b"Host: only.example\r\nConnection: close\r\n\r\n", timeout=5)
            r = ex.first()
            chk.ok(r is not None and r.status == 200 and r.get("x-backend") == "only",
                   "absolute-form agreeing with Host routes to the host's pool",
                   "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))

            # --- HTTP/1.0, no Host: the authority routes and becomes Host
            ex = exchange(port, b"GET http://only.example/headers?v=d1 HTTP/1.0\r\n\r\n",
                          timeout=5)
            h = accepted_head(chk, "HTTP/1.0 absolute-form without Host", ex)
            r = ex.first()
            if h is not None:
                chk.ok(r.get("x-backend") == "only", "HTTP/1.0 absolute-form routed by authority",
                       repr(r.headers))
                chk.ok(header_values(h, "host") == [b"only.example"],
                       "HTTP/1.0 absolute-form: the backend gets Host: only.example",
                       repr(header_values(h, "host")))

            # --- HTTP/0.9: 400 at once
            for vid, data in (("z1", b"GET /?v=z1\r\n"),
                              ("z2", bytewise(b"GET /?v=z2\r\n"))):
                t0 = time.monotonic()
                ex = exchange(port, data, timeout=7, gap=0.001)
                took = time.monotonic() - t0
                what = "HTTP/0.9 request line%s" % (" (1-byte writes)" if vid == "z2" else "")
                rejected(chk, what, ex, be, vid)
                chk.ok(took < 1.5, "%s answered at once (< 1.5 s; http_request is 5 s)" % what,
                       "took %.2f s" % took)
            # a bare-LF HTTP/0.9 line too
            t0 = time.monotonic()
            ex = exchange(port, b"GET /?v=z3\n", timeout=7)
            rejected(chk, "HTTP/0.9 line ended by LF", ex, be, "z3")
            chk.ok(time.monotonic() - t0 < 1.5, "HTTP/0.9 (LF) answered at once",
                   "took %.2f s" % (time.monotonic() - t0))
            # A normal request after all that still works.
            ex = exchange(port, b"GET /?v=ok HTTP/1.1\r\nHost: sg.test\r\n"
                          b"Connection: close\r\n\r\n", timeout=5)
            chk.ok(ex.statuses() == [200], "origin-form request still 200", repr(ex))
            px.stop()

        # --- the access log shows the authority routed by
        recs = []
        with open(logp, "rb") as f:
            for ln in f.read().splitlines():
                recs.append(json.loads(ln))
        by_uri = {}
        for rec in recs:
            by_uri.setdefault(rec.get("uri", ""), []).append(rec)
        for uri, host in (("/headers?v=b1", "SG.Test:80"), ("/?v=c1", "only.example"),
                          ("/headers?v=d1", "only.example")):
            got = by_uri.get(uri, [])
            chk.ok(len(got) == 1 and got[0].get("host") == host,
                   "access log: %s logged with host %s" % (uri, host), repr(got))
    chk.done()


run(main)
