"""b07: what the proxy forwards and what it must not.

- /headers (the backend returns the request head as received) shows
  X-Forwarded-For ending in 127.0.0.1 after the client's own value,
  X-Forwarded-Proto: http, X-Forwarded-Host: the client's Host, a Via naming
  surgegate, one Host header, end-to-end headers untouched, and none of the
  hop-by-hop headers: Connection (and every header it names), Keep-Alive, TE,
  Trailer, Upgrade, Proxy-Connection.
- HEAD, 204 and 304 answers carry no body: a pipelined GET after each is
  answered correctly on the same connection.
- Expect: 100-continue: a raw client gets "100 Continue" before sending its
  body; curl's upload (expect100-timeout 10 s) completes quickly."""
import os
import socket
import subprocess
import time

from harness import *


def forwarded_head(fe, extra_headers, host="shop.example"):
    req = (b"GET /headers HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" +
           b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in extra_headers) +
           b"Connection: close\r\n\r\n")
    data, how = raw_exchange_full(fe, req, timeout=5)
    res, _ = parse_responses(data)
    check(res, "no response to /headers: %r" % data[:300])
    status, h, body = res[-1]
    check_eq(status, 200, "/headers status")
    lines = body.decode("latin-1").split("\r\n")
    check(lines[-2:] == ["", ""], "forwarded head does not end with an empty line: %r" % body[-50:])
    hdrs = []
    for l in lines[1:-2]:
        k, sep, v = l.partition(":")
        check(sep == ":", "malformed forwarded header line %r" % l)
        hdrs.append((k.strip().lower(), v.strip()))
    return lines[0], hdrs, body


def values(hdrs, name):
    return [v for k, v in hdrs if k == name]


def check_forwarding(fe):
    extra = [("X-Forwarded-For", "10.1.2.3"),
             ("X-End-To-End", "kept"),
             ("Connection", "keep-alive, X-Hop-Custom, x-hop-two"),
             ("X-Hop-Custom", "must-go"),
             ("X-Hop-Two", "must-go-too"),
             ("Keep-Alive", "timeout=5, max=100"),
             ("TE", "trailers"),
             ("Trailer", "X-Checksum"),
             ("Upgrade", "example/1"),
             ("Proxy-Connection", "keep-alive"),
             ("Accept", "*/*")]
    reqline, hdrs, raw = forwarded_head(fe, extra)
    log("forwarded head:\n    " + raw.decode("latin-1").rstrip().replace("\r\n", "\n    "))
    check(reqline.startswith("GET /headers HTTP/1."), "forwarded request line %r" % reqline)

    xff = ", ".join(values(hdrs, "x-forwarded-for"))
    parts = [p.strip() for p in xff.split(",") if p.strip()]
    check_eq(parts, ["10.1.2.3", "127.0.0.1"], "X-Forwarded-For elements (raw %r)" % xff)
    check_eq(values(hdrs, "x-forwarded-proto"), ["http"], "X-Forwarded-Proto")
    check_eq(values(hdrs, "x-forwarded-host"), ["shop.example"], "X-Forwarded-Host")
    via = values(hdrs, "via")
    check(via and any("surgegate" in v for v in via), "Via naming surgegate: got %r" % via)
    check_eq(values(hdrs, "host"), ["shop.example"], "Host forwarded once, unchanged")
    check_eq(values(hdrs, "x-end-to-end"), ["kept"], "end-to-end header")
    check_eq(values(hdrs, "accept"), ["*/*"], "end-to-end header Accept")
    for gone in ("x-hop-custom", "x-hop-two", "keep-alive", "te", "trailer", "upgrade",
                 "proxy-connection"):
        check(not values(hdrs, gone), "hop-by-hop header %r was forwarded: %r" % (gone, values(hdrs, gone)))
    for v in values(hdrs, "connection"):
        toks = [t.strip().lower() for t in v.split(",")]
        check(all(t in ("keep-alive", "close") for t in toks),
              "client's Connection header forwarded: Connection: %s" % v)

    # No X-Forwarded-For from the client: exactly one element.
    _, hdrs2, _ = forwarded_head(fe, [])
    check_eq([p.strip() for p in ", ".join(values(hdrs2, "x-forwarded-for")).split(",")],
             ["127.0.0.1"], "X-Forwarded-For without a client value")


def check_no_body(fe):
    # Each bodiless answer is followed by a GET on the same connection: a
    # stray body would corrupt the second response.
    cases = [(b"HEAD / HTTP/1.1", "HEAD /"),
             (b"HEAD /download?bytes=5000 HTTP/1.1", "HEAD /download"),
             (b"GET /nc?status=204 HTTP/1.1", "204"),
             (b"GET /nm?status=304 HTTP/1.1", "304")]
    for line, what in cases:
        req = (line + b"\r\nHost: test\r\n\r\n"
               b"GET /after HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        data, how = raw_exchange_full(fe, req, timeout=5)
        first_end = data.find(b"\r\n\r\n")
        check(first_end > 0, "%s: no response head: %r" % (what, data[:200]))
        after = data[first_end + 4:]
        check(after.startswith(b"HTTP/1.1 200"),
              "%s: bytes after the bodiless response head are not the next response: %r"
              % (what, after[:120]))
        res, rest = parse_responses(data, head_requests=(0,) if line.startswith(b"HEAD") else ())
        check_eq(len(res), 2, "%s: responses on the connection (raw %r)" % (what, data[:400]))
        check_eq(res[1][2], b"b1\n", "%s: the following GET's body" % what)
        if what == "HEAD /download":
            check_eq(res[0][1].get("Content-Length"), "5000", "HEAD keeps the Content-Length")
        if what in ("204", "304"):
            check_eq(res[0][0], int(what), "status")
            check("transfer-encoding" not in res[0][1], "%s answer with Transfer-Encoding" % what)


def check_expect_raw(fe):
    body = b"0123456789" * 100
    s = socket.create_connection(("127.0.0.1", fe), timeout=5)
    try:
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n"
                  b"Expect: 100-continue\r\n\r\n" % len(body))
        s.settimeout(3)
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except socket.timeout:
            fail("no 100 Continue within 3s of a request head with Expect: 100-continue")
        check(got.startswith(b"HTTP/1.1 100"), "first answer to Expect: 100-continue: %r" % got[:100])
        s.sendall(body)
        s.settimeout(5)
        deadline = time.monotonic() + 5
        while True:
            res, rest = parse_responses(got)
            finals = [r for r in res if r[0] >= 200]
            if finals:
                break
            check(time.monotonic() < deadline, "no final answer after the body: %r" % got[:300])
            d = s.recv(65536)
            check(d, "connection closed before the final answer: %r" % got[:300])
            got += d
        check_eq(finals[0][0], 200, "status after 100-continue")
        check_eq(finals[0][2], b'{"bytes":%d}' % len(body), "bytes the backend got after 100-continue")
    finally:
        s.close()


def check_expect_curl(fe):
    src = tmp_path("expect.bin")
    payload = os.urandom(2 * 1024 * 1024 + 3)
    with open(src, "wb") as f:
        f.write(payload)
    t0 = time.monotonic()
    curl = Popen(["curl", "-sS", "--max-time", "20", "--expect100-timeout", "10",
                  "-H", "Expect: 100-continue", "-H", "Host: test", "--data-binary", "@" + src,
                  "-w", "\n%{http_code}", "http://127.0.0.1:%d/sink" % fe],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = curl.communicate(timeout=30)
    dt = time.monotonic() - t0
    stop_process(curl)
    check_eq(curl.returncode, 0, "curl exit (stderr %r)" % err[-300:])
    body, _, code = out.rpartition(b"\n")
    check_eq(code, b"200", "curl Expect upload status")
    check_eq(body, b'{"bytes":%d}' % len(payload), "curl Expect upload: bytes the backend got")
    check(dt < 5, "curl Expect upload took %.1fs: no 100 Continue reached curl "
          "(it waited for its expect100-timeout)" % dt)
    log("curl Expect: 100-continue upload of %d bytes in %.2fs" % (len(payload), dt))


def main():
    with Backend("b1") as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe):
            check_forwarding(fe)
            check_no_body(fe)
            check_expect_raw(fe)
            check_expect_curl(fe)


if __name__ == "__main__":
    run(main)
