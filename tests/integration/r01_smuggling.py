#!/usr/bin/python3
"""r01: request-smuggling vectors, each sent raw on a fresh connection.

Every vector is followed on the same connection by a pipelined
"GET /smuggled?v=ID" request. The proxy must answer a rejected vector with
one 4xx (400; CONNECT: any 4xx), close the connection, and forward nothing after
the framing error: the backend's log never shows a /smuggled line, and for a
vector whose head is invalid it shows no line for that vector at all.

Kinds:
  head  the request head is invalid: 400, closed, the backend saw nothing.
  body  the head is valid, the body framing is not (chunked errors): 400,
        closed; the proxy may already have forwarded the head (it streams
        bodies), but nothing from or after the bad chunk.
  safe  RFC-valid spelling of something odd (OWS around a coding): either
        rejected as for "head", or accepted: 200, exactly one
        forwarded request, the body framed as the client meant it, nothing
        smuggled.
  valid a valid request that carries smuggling bait: must be 200, one
        forwarded request, the bait never forwarded as a request.

Every vector is sent twice: whole (one write), and as 1-byte writes 2 ms
apart, so that every byte boundary can be a read boundary in the proxy
(checks that only look inside one read buffer miss what straddles two).

The backend (sg-testbackend) logs "METHOD URL" as soon as it has a head, so
every URL carries the vector id (?v=ID for whole, ?v=sID for 1-byte writes)
and log lines are attributed by id.

Notes on llhttp 8.1 (Debian 12's node-llhttp), which the proxy uses strictly:
it accepts obs-fold, SP inside a field name, an empty field name, CR CR LF at
the end of the head, and any two bytes (not only CRLF) after chunk data. The
proxy must catch those itself (vectors 21-24, 26, 38, 45, 47).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Backend, Proxy, free_port, proxy_config, run  # noqa: E402
from rawhttp import Check, bytewise, exchange, fmt_bytes, fmt_lines  # noqa: E402

HOST = b"Host: sg.test\r\n"
VECTOR_TIMEOUT = 2.5   # 108 exchanges: worst case (nothing ever closes) ~290 s


def smug(vid):
    return b"GET /smuggled?v=" + vid + b" HTTP/1.1\r\nHost: sg.test\r\n\r\n"


def head(vid, method=b"POST", path=b"/", version=b"HTTP/1.1", host=True, extra=b""):
    return (method + b" " + path + b"?v=" + vid + b" " + version + b"\r\n"
            + (HOST if host else b"") + extra + b"\r\n")


def cl(n):
    return b"Content-Length: %d\r\n" % n


def chunk_of(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


# Each builder takes the vector id (bytes) and returns the raw bytes.
# Every builder's output is followed by smug(vid) when sent.
def v_cl_te(v):
    body = b"0\r\n\r\n" + smug(v)
    return head(v, extra=cl(len(body)) + b"Transfer-Encoding: chunked\r\n") + body


def v_te_cl(v):
    s = smug(v)
    body = b"%x\r\n" % len(s) + s + b"\r\n0\r\n\r\n"
    return head(v, extra=b"Transfer-Encoding: chunked\r\n" + cl(4)) + body


def te(value):
    def build(v):
        return head(v, extra=b"Transfer-Encoding:" + value + b"\r\n") + b"0\r\n\r\n" + smug(v)
    return build


def te_raw(lines):
    def build(v):
        return head(v, extra=lines) + b"0\r\n\r\n" + smug(v)
    return build


def v_te_http10(v):
    return (head(v, version=b"HTTP/1.0", extra=b"Transfer-Encoding: chunked\r\n")
            + b"0\r\n\r\n" + smug(v))


def cl_raw(lines, body=b"hello"):
    def build(v):
        return head(v, extra=lines) + body
    return build


def hdr(lines, method=b"GET"):
    def build(v):
        return head(v, method=method, extra=lines)
    return build


def chunked_body(raw_body):
    """Valid chunked head, then raw_body exactly as given."""
    def build(v):
        return head(v, extra=b"Transfer-Encoding: chunked\r\n") + raw_body(v)
    return build


def v_missing_host(v):
    return head(v, method=b"GET", host=False)


def v_dup_host(other):
    def build(v):
        return head(v, method=b"GET", extra=b"Host: " + other + b"\r\n")
    return build


def v_host_space(v):
    return head(v, method=b"GET", host=False, extra=b"Host: sg.test evil.test\r\n")


def v_nul_url(v):
    return b"GET /a\x00b?v=" + v + b" HTTP/1.1\r\n" + HOST + b"\r\n"


def v_space_url(v):
    return b"GET /a b?v=" + v + b" HTTP/1.1\r\n" + HOST + b"\r\n"


def v_ws_before_first_header(v):
    return b"GET /?v=" + v + b" HTTP/1.1\r\n " + HOST + b"\r\n"


def v_bare_cr_end(v):
    return b"GET /?v=" + v + b" HTTP/1.1\r\n" + HOST + b"\r\r\n"


def v_lf_only(v):
    return b"GET /?v=" + v + b" HTTP/1.1\nHost: sg.test\nConnection: close\n\n"


def v_absolute_form(v):
    return (b"GET http://evil.test/?v=" + v + b" HTTP/1.1\r\n" + HOST
            + b"Connection: close\r\n\r\n")


def v_body_bait(v):
    body = smug(v)
    return head(v, path=b"/sink", extra=cl(len(body)) + b"Connection: close\r\n") + body


def v_conn_close_pipeline(v):
    return head(v, method=b"GET", extra=b"Connection: close\r\n")


def v_connect(v):
    return b"CONNECT sg.test:80 HTTP/1.1\r\nHost: sg.test:80\r\nX-V: " + v + b"\r\n\r\n"


def v_http09(v):
    return b"GET /?v=" + v + b"\r\n"


def v_http20(v):
    return b"GET /?v=" + v + b" HTTP/2.0\r\n" + HOST + b"Connection: close\r\n\r\n"


def v_te_safe(value):
    """Valid chunked upload of 'hello' to /sink with an odd TE spelling."""
    def build(v):
        return (head(v, path=b"/sink", extra=b"Transfer-Encoding:" + value + b"\r\n"
                     + b"Connection: close\r\n")
                + chunk_of(b"hello") + b"0\r\n\r\n")
    return build


# (name, kind, builder, expected_status (None: any 4xx), expected_sink_bytes for
#  accepted safe/valid)
VECTORS = [
    ("CL.TE (Content-Length + chunked, smuggled in body)", "head", v_cl_te, 400, None),
    ("TE.CL (chunked + Content-Length: 4)", "head", v_te_cl, 400, None),
    ("Transfer-Encoding: xchunked", "head", te(b" xchunked"), 400, None),
    ("Transfer-Encoding: <VT>chunked", "head", te(b" \x0bchunked"), 400, None),
    ("Transfer-Encoding: chunked, identity", "head", te(b" chunked, identity"), 400, None),
    ("Transfer-Encoding: identity", "head", te(b" identity"), 400, None),
    ("duplicate Transfer-Encoding: chunked / chunked", "head",
     te_raw(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400, None),
    ("duplicate Transfer-Encoding: identity / chunked", "head",
     te_raw(b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"), 400, None),
    ("Transfer-Encoding: chunked<CR><CR><LF>", "head", te(b" chunked\r"), 400, None),
    ("Transfer-Encoding<SP>: chunked", "head",
     te_raw(b"Transfer-Encoding : chunked\r\n"), 400, None),
    ("Transfer-Encoding:<TAB>chunked (valid OWS)", "safe", v_te_safe(b"\tchunked"), 200, 5),
    ("Transfer-Encoding: chunked<SP><TAB> (valid OWS)", "safe", v_te_safe(b" chunked \t"), 200, 5),
    ("Transfer-Encoding: Chunked (case-insensitive)", "safe", v_te_safe(b" Chunked"), 200, 5),
    ("HTTP/1.0 with Transfer-Encoding: chunked", "head", v_te_http10, 400, None),
    ("duplicate Content-Length, same value", "head", cl_raw(cl(5) + cl(5)), 400, None),
    ("duplicate Content-Length, different values", "head",
     cl_raw(cl(5) + cl(6), b"hello!"), 400, None),
    ("Content-Length: +5", "head", cl_raw(b"Content-Length: +5\r\n"), 400, None),
    ("Content-Length: -1", "head", cl_raw(b"Content-Length: -1\r\n", b""), 400, None),
    ("Content-Length: 5, 5", "head", cl_raw(b"Content-Length: 5, 5\r\n"), 400, None),
    ("Content-Length: 99999999999999999999999", "head",
     cl_raw(b"Content-Length: 99999999999999999999999\r\n", b""), 400, None),
    ("obs-fold: continuation line starting with SP", "head",
     hdr(b"X-Fold: a\r\n b\r\n"), 400, None),
    ("obs-fold: continuation line starting with TAB", "head",
     hdr(b"X-Fold: a\r\n\tb\r\n"), 400, None),
    ("obs-fold: whitespace-only continuation", "head", hdr(b"X-Fold: a\r\n \r\n"), 400, None),
    ("obs-fold: Transfer-Encoding:<CRLF> chunked", "head",
     te_raw(b"Transfer-Encoding:\r\n chunked\r\n"), 400, None),
    ("bare CR inside a header value", "head", hdr(b"X-A: a\rb\r\n"), 400, None),
    ("bare CR before the final CRLF (CR CR LF)", "head", v_bare_cr_end, 400, None),
    ("bare LF ending one header line (mixed)", "head", hdr(b"X-A: a\nX-B: b\r\n"), 400, None),
    ("bare LF ending every line", "safe", v_lf_only, 200, None),
    ("NUL inside a header value", "head", hdr(b"X-A: a\x00b\r\n"), 400, None),
    ("NUL inside the URL", "head", v_nul_url, 400, None),
    ("SP inside the URL", "head", v_space_url, 400, None),
    ("chunk size 0x5", "body",
     chunked_body(lambda v: b"0x5\r\nhello\r\n0\r\n\r\n"), 400, None),
    ("chunk size -1", "body", chunked_body(lambda v: b"-1\r\nhello\r\n0\r\n\r\n"), 400, None),
    ("chunk size fffffffffffffffffff (overflow)", "body",
     chunked_body(lambda v: b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400, None),
    ("chunk size non-hex 'zz'", "body",
     chunked_body(lambda v: b"zz\r\nhello\r\n0\r\n\r\n"), 400, None),
    ("chunk size '5<SP>' (BWS without extension)", "body",
     chunked_body(lambda v: b"5 \r\nhello\r\n0\r\n\r\n"), 400, None),
    ("chunk size line ended by bare LF", "body",
     chunked_body(lambda v: b"5\nhello\r\n0\r\n\r\n"), 400, None),
    ("chunk data not followed by CRLF ('XX' instead)", "body",
     chunked_body(lambda v: b"5\r\nhelloXX0\r\n\r\n"), 400, None),
    ("chunk data followed directly by a smuggled request", "body",
     chunked_body(lambda v: b"5\r\nhello" + smug(v) + b"0\r\n\r\n"), 400, None),
    ("NUL inside a chunk extension", "body",
     chunked_body(lambda v: b"5;a\x00b\r\nhello\r\n0\r\n\r\n"), 400, None),
    ("missing Host (HTTP/1.1)", "head", v_missing_host, 400, None),
    ("duplicate Host, same value", "head", v_dup_host(b"sg.test"), 400, None),
    ("duplicate Host, different value", "head", v_dup_host(b"evil.test"), 400, None),
    ("Host with a space", "head", v_host_space, 400, None),
    ("header name with SP ('X Smuggle')", "head", hdr(b"X Smuggle: 1\r\n"), 400, None),
    ("header name with '@'", "head", hdr(b"X@Smuggle: 1\r\n"), 400, None),
    ("empty header name (': x')", "head", hdr(b": x\r\n"), 400, None),
    ("whitespace before the first header line", "head", v_ws_before_first_header, 400, None),
    ("absolute-form URL with conflicting Host", "head", v_absolute_form, 400, None),
    ("smuggled request as the body of a valid POST", "valid",
     v_body_bait, 200, len(smug(b"v00"))),
    ("Connection: close, then a pipelined request", "valid", v_conn_close_pipeline, 200, None),
    ("CONNECT (no tunnel to a backend)", "head", v_connect, None, None),
    ("HTTP/0.9-style request line (no version)", "head", v_http09, 400, None),
    ("HTTP/2.0 in an HTTP/1 request line", "safe", v_http20, 200, None),
]


def classify(ex):
    if ex.eof:
        return "eof"
    if ex.reset:
        return "rst"
    return "OPEN"


MODES = (
    # (id prefix, description, how to send)
    (b"v", "whole", lambda data: dict(data=data)),
    (b"s", "1-byte writes", lambda data: dict(data=bytewise(data), gap=0.002)),
)


def judge(kind, want, sink_bytes, ex, log, vid):
    """Returns (problems, summary dict) for one vector sent one way."""
    tag = "v=" + vid.decode()
    mine = [ln for ln in log if ln.endswith(tag) or (tag + "&") in ln]
    smuggled = [ln for ln in mine if "/smuggled" in ln]
    firsts = [ln for ln in mine if "/smuggled" not in ln]
    statuses = ex.statuses()
    problems = []

    # 505 (HTTP Version Not Supported) is a rejection too, for version vectors.
    rejected = len(statuses) == 1 and statuses[0] is not None and (
        400 <= statuses[0] < 500 or statuses[0] == 505)
    if kind in ("head", "body") or (kind == "safe" and rejected):
        if kind == "safe" or want is None:
            exp = statuses[0] if rejected else None   # any single 4xx
        else:
            exp = want
        if exp is None or statuses != [exp]:
            problems.append("expected exactly one %s response, got %s"
                            % (exp or "4xx", statuses or "nothing"))
        if not ex.closed:
            problems.append("connection not closed within %.0fs" % VECTOR_TIMEOUT)
        if kind in ("head", "safe") and firsts:
            problems.append("backend received the invalid request: " + fmt_lines(firsts))
    else:  # accepted safe / valid
        if statuses != [want]:
            problems.append("expected exactly one %d response, got %s"
                            % (want, statuses or "nothing"))
        if not ex.closed:
            problems.append("connection not closed (Connection: close) within %.0fs"
                            % VECTOR_TIMEOUT)
        if len(firsts) != 1:
            problems.append("backend should see the request exactly once, saw "
                            + fmt_lines(firsts))
        r = ex.first()
        if sink_bytes is not None and r is not None and r.status == 200:
            want_body = b'{"bytes":%d}' % sink_bytes
            if r.body != want_body:
                problems.append("backend got the wrong body length: %r (want %r)"
                                % (r.body, want_body))
    if smuggled and firsts and kind in ("head", "body"):
        problems.append("the request pipelined behind the invalid one reached the "
                        "backend too: " + fmt_lines(smuggled))
    elif smuggled:
        problems.append("SMUGGLED request reached the backend: " + fmt_lines(smuggled))
    summary = "%s %s %d/%d" % ("/".join(map(str, statuses)) or "-", classify(ex),
                               len(firsts), len(smuggled))
    return problems, summary, mine


def main():
    chk = Check("r01_smuggling")
    port = free_port()
    with Backend("b1") as be:
        cfg = proxy_config(port, [be])
        with Proxy(cfg, listen_port=port) as px:
            # Baseline: a plain request works, or nothing below means anything.
            base = exchange(port, b"GET /?v=base HTTP/1.1\r\n" + HOST
                            + b"Connection: close\r\n\r\n", timeout=5)
            if not chk.ok(base.statuses() == [200], "baseline GET -> 200",
                          "got %r: %s" % (base, fmt_bytes(base.data, 300))):
                print(px.stderr_text())
                chk.done()

            results = []
            for i, (name, kind, build, want, sink_bytes) in enumerate(VECTORS, 1):
                for prefix, mode, how in MODES:
                    vid = prefix + b"%02d" % i
                    sent = build(vid) + smug(vid)
                    ex = exchange(port, timeout=VECTOR_TIMEOUT, **how(sent))
                    results.append((i, mode, vid, sent, ex))

            # The backend logs on head arrival; give late forwards time to land.
            time.sleep(0.5)
            log = [ln for ln in be.log_lines() if "/healthz" not in ln]

            rows = {}
            for i, mode, vid, sent, ex in results:
                name, kind, _, want, sink_bytes = VECTORS[i - 1]
                problems, summary, mine = judge(kind, want, sink_bytes, ex, log, vid)
                row = rows.setdefault(i, [name, kind, {}, True])
                row[2][mode] = summary
                row[3] = row[3] and not problems
                chk.ok(not problems, "%s %s [%s, %s]" % (vid.decode(), name, kind, mode),
                       "; ".join(problems) + "\nsent: " + fmt_bytes(sent, 400)
                       + "\ngot:  " + fmt_bytes(ex.data, 400)
                       + "\nbackend lines: " + fmt_lines(mine))

            stray = [ln for ln in log if "/smuggled" in ln]
            chk.ok(not stray, "no /smuggled request ever reached the backend", fmt_lines(stray))

            after = exchange(port, b"GET /?v=after HTTP/1.1\r\n" + HOST
                             + b"Connection: close\r\n\r\n", timeout=5)
            chk.ok(after.statuses() == [200], "proxy still serves after all vectors",
                   repr(after))

            print()
            print("each cell: statuses, close (eof/rst/OPEN), forwarded/smuggled lines seen "
                  "by the backend")
            print("%-3s %-52s %-5s %-21s %-21s %s" % (
                "#", "vector", "kind", "whole", "1-byte writes", "verdict"))
            for i in sorted(rows):
                name, kind, cells, ok = rows[i]
                print("%-3d %-52s %-5s %-21s %-21s %s" % (
                    i, name, kind, cells.get("whole", "?"), cells.get("1-byte writes", "?"),
                    "ok" if ok else "FAIL"))
            print()
            if chk.failures:
                print("--- proxy stderr (tail) ---")
                print(px.stderr_text()[-4000:])
    chk.done()


if __name__ == "__main__":
    run(main)
