"""o05: the access log (access_log = { path; format; }).

Proxy A (workers = 2, format "json"): pool "app" with backends B1 and B2
answering after 50 ms; pool "dead" (route /dead/) whose only backend port
has nothing listening, retries = 0; pool "q" (route /q/) with one backend
(maxconn 1, 600 ms) and maxqueue 1.
- 20 keep-alive GETs with a Referer and a User-Agent: exactly 20 lines for
  them, every line valid JSON with every field; status 200, the uri sent,
  pool app, backend = the address of the backend that answered (X-Backend),
  client 127.0.0.1, host, proto HTTP/1.1, frontend fe, bytes_in and
  bytes_out > 0 (bytes_out > body), ttfb_ms and total_ms about the 50 ms
  delay (each in [48.5, 400]: the backend's libevent timer may fire ~1 ms
  early on the coarse monotonic clock; the median in [50, 75]),
  connect_ms <= ttfb_ms,
  queue_ms >= 0, retries 0, end ok, the time (ISO-8601 ms UTC) within
  0.5 s of when the client sent it.
- GET /dead/x: 502, a line with status 502, pool dead, backend the dead
  address, retries 0, end backend_error, ttfb_ms null.
- A request line the parser rejects: 400, a line with status 400, end
  bad_request, method, uri and pool null.
- 4 requests at once on pool q: the 503s seen == the lines with end
  queue_full (status 503, pool q); the served one is end ok.
- Nasty bytes (%22 %5C %00, raw backslash, a quote and a backslash and
  bytes 0x80..0xff in the User-Agent, a control-free but odd Referer): every
  line of the file is valid UTF-8 JSON; the uri is logged exactly as sent.
- logrotate: 30 requests, wait for the flush, rename the file, SIGUSR1, 30
  more: the old file holds exactly the first 30, the new one exactly the
  last 30. Then without waiting: 30 requests, rename, SIGUSR1, 30 more at
  once: all 60 appear exactly once across the two files.
Proxy B (format "combined"): every line matches the combined regex with
pool=, backend=, queue_ms=... end=ok, referer and user agent quoted.
Proxy C (no access_log group) and D (path = "off"): after traffic, the
process holds no regular file open but its stdout/stderr, and its temporary
directory gains no file."""
import datetime
import json
import os
import re
import signal
import statistics
import time

from harness import *
from rawhttp import Check

UA = "sg-o05/1.0 (test)"
REF = "http://ref.example/page?a=1"
FLUSH_WAIT = 1.6  # the writer runs at least every second


def wall_now():
    return time.time()


def parse_iso(s):
    d = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def read_lines(path):
    """The file's lines as bytes (no newline); [] when it does not exist."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if data and not data.endswith(b"\n"):
        fail("access log %s does not end with a newline: %r" % (path, data[-200:]))
    return data.split(b"\n")[:-1] if data else []


def read_json(c, path, what):
    """Every line parsed; each unparsable line is a failure."""
    out = []
    for n, raw in enumerate(read_lines(path), 1):
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            c.ok(False, "%s: line %d is valid UTF-8 JSON" % (what, n), "%s: %r" % (e, raw[:300]))
            continue
        c.ok(isinstance(obj, dict), "%s: line %d is an object" % (what, n), repr(raw[:200]))
        if isinstance(obj, dict):
            out.append(obj)
    return out


FIELDS = ("time", "client", "method", "uri", "host", "proto", "frontend", "pool", "backend",
          "status", "bytes_in", "bytes_out", "queue_ms", "connect_ms", "ttfb_ms", "total_ms",
          "retries", "end", "referer", "user_agent")


def is_ms(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def main():
    c = Check("o05_access_log")
    part_json(c)
    part_combined(c)
    part_off(c)
    c.done()


def part_json(c):
    logp = tmp_path("access.log")
    dead = "127.0.0.1:%d" % dead_port()
    with Backend("B1", delay_ms=50) as b1, Backend("B2", delay_ms=50) as b2, \
            Backend("Q", delay_ms=600) as bq:
        fe = free_port()
        pools = [pool_text("dead", [dead], retries=0),
                 pool_text("q", [{"address": bq.addr, "maxconn": 1}], maxqueue=1)]
        cfg = proxy_config(fe, [b1, b2], workers=2, more_pools=pools,
                           routes=((None, "/dead/", "dead"), (None, "/q/", "q")),
                           extra_top='access_log = { path = "%s"; format = "json"; };' % logp)
        names = {"B1": b1.addr, "B2": b2.addr}
        with Proxy(cfg, listen_port=fe) as proxy:
            # --- 20 requests on one keep-alive connection
            N = 20
            sent = {}
            seen_backend = {}
            with KeepAlive(fe) as ka:
                for i in range(N):
                    uri = "/a/%d?x=%d" % (i, i * 7)
                    sent[uri] = wall_now()
                    st, h, body = ka.get(uri, headers={"User-Agent": UA, "Referer": REF})
                    check_eq(st, 200, "GET %s status" % uri)
                    seen_backend[uri] = (names.get(h.get("X-Backend")), len(body))
            # --- 502: dead backend, no retry
            st, _, _ = http_get(fe, "/dead/x")
            c.ok(st == 502, "GET /dead/x answers 502", "got %s" % st)
            # --- 400: a request line the parser rejects
            resp = raw_exchange(fe, b"G@T /bad HTTP/1.1\r\nHost: test\r\n\r\n", timeout=3)
            c.ok(resp.startswith(b"HTTP/1.1 400"), "a bad request line answers 400",
                 repr(resp[:100]))
            # --- queue full on pool q
            ps = burst(fe, ["/q/%d" % i for i in range(4)], timeout=10)
            qst = [p.status for p in ps]
            n503 = qst.count(503)
            log("pool q burst statuses %s" % qst)
            c.ok(qst.count(200) >= 1 and n503 >= 1, "pool q burst: some 200 and some 503",
                 "statuses %s" % qst)

            time.sleep(FLUSH_WAIT)
            objs = read_json(c, logp, "json log")
            log("%d lines in the access log" % len(objs))
            for o in objs:
                missing = [k for k in FIELDS if k not in o]
                if not c.ok(not missing, "every line has every field",
                            "missing %s in %r" % (missing, o)):
                    break

            # the 20 requests
            mine = [o for o in objs if isinstance(o.get("uri"), str) and o["uri"].startswith("/a/")]
            c.ok(len(mine) == N, "exactly %d lines for the %d requests" % (N, N),
                 "got %d: %r" % (len(mine), [o.get("uri") for o in mine]))
            c.ok(sorted(o.get("uri") for o in mine) == sorted(sent),
                 "the lines' uris are the uris sent, each once",
                 "%r" % sorted(o.get("uri") for o in mine))
            totals, ttfbs = [], []
            bad = []
            for o in mine:
                uri = o.get("uri")
                want_be, blen = seen_backend.get(uri, (None, 0))
                probs = []
                for k, want in (("method", "GET"), ("status", 200), ("pool", "app"),
                                ("client", "127.0.0.1"), ("host", "test"),
                                ("proto", "HTTP/1.1"), ("frontend", "fe"), ("retries", 0),
                                ("end", "ok"), ("user_agent", UA), ("referer", REF),
                                ("backend", want_be)):
                    if o.get(k) != want:
                        probs.append("%s=%r (want %r)" % (k, o.get(k), want))
                if not (isinstance(o.get("bytes_out"), int) and o["bytes_out"] > blen > 0):
                    probs.append("bytes_out=%r (body %d)" % (o.get("bytes_out"), blen))
                if not (isinstance(o.get("bytes_in"), int) and o["bytes_in"] > len(uri)):
                    probs.append("bytes_in=%r" % o.get("bytes_in"))
                for k in ("queue_ms", "connect_ms", "ttfb_ms", "total_ms"):
                    if not is_ms(o.get(k)):
                        probs.append("%s=%r not a number >= 0" % (k, o.get(k)))
                if not probs:
                    if not 48.5 <= o["ttfb_ms"] <= o["total_ms"] <= 400:
                        probs.append("ttfb_ms %r / total_ms %r not in 48.5 <= ttfb <= total"
                                     " <= 400" % (o["ttfb_ms"], o["total_ms"]))
                    if o["connect_ms"] > o["ttfb_ms"]:
                        probs.append("connect_ms %r > ttfb_ms %r" % (o["connect_ms"], o["ttfb_ms"]))
                    totals.append(o["total_ms"])
                    ttfbs.append(o["ttfb_ms"])
                for k in ("queue_ms", "connect_ms", "ttfb_ms", "total_ms"):
                    if is_ms(o.get(k)) and abs(o[k] * 1000 - round(o[k] * 1000)) > 1e-6:
                        probs.append("%s=%r has more than 3 decimals" % (k, o[k]))
                tm = o.get("time")
                if not (isinstance(tm, str) and ISO_MS_RX.match(tm)):
                    probs.append("time %r not ISO-8601 ms UTC" % tm)
                elif uri in sent and abs(parse_iso(tm) - sent[uri]) > 0.5:
                    probs.append("time %s is %.3f s from the send time" % (
                        tm, parse_iso(tm) - sent[uri]))
                if probs:
                    bad.append("%s: %s" % (uri, "; ".join(probs)))
            c.ok(not bad, "every request line has the right fields", "\n".join(bad[:8]))
            if totals:
                log("total_ms median %.3f (min %.3f max %.3f), ttfb_ms median %.3f"
                    % (statistics.median(totals), min(totals), max(totals),
                       statistics.median(ttfbs)))
                c.ok(50 <= statistics.median(totals) <= 75,
                     "median total_ms is about the 50 ms backend delay",
                     "median %.3f" % statistics.median(totals))
            c.ok(len({o.get("backend") for o in mine}) == 2, "both backends appear",
                 "%r" % {o.get("backend") for o in mine})

            # 502
            d = [o for o in objs if o.get("uri") == "/dead/x"]
            c.ok(len(d) == 1, "one line for GET /dead/x", "got %d" % len(d))
            if d:
                o = d[0]
                c.ok(o.get("status") == 502 and o.get("pool") == "dead"
                     and o.get("backend") == dead and o.get("retries") == 0
                     and o.get("end") == "backend_error" and o.get("ttfb_ms") is None
                     and is_ms(o.get("total_ms")),
                     "502 line: status 502, pool dead, backend %s, retries 0, end "
                     "backend_error, ttfb_ms null" % dead, "%r" % o)

            # 400
            b = [o for o in objs if o.get("status") == 400]
            c.ok(len(b) == 1, "one line with status 400", "got %r" % b)
            if b:
                o = b[0]
                c.ok(o.get("end") == "bad_request" and o.get("method") is None
                     and o.get("uri") is None and o.get("pool") is None
                     and o.get("backend") is None and o.get("client") == "127.0.0.1"
                     and o.get("frontend") == "fe" and is_ms(o.get("total_ms")),
                     "400 line: end bad_request, method/uri/pool/backend null", "%r" % o)

            # queue full
            q = [o for o in objs if isinstance(o.get("uri"), str) and o["uri"].startswith("/q/")]
            qf = [o for o in q if o.get("end") == "queue_full"]
            c.ok(len(q) == 4, "4 lines for the pool q burst", "got %d: %r" % (len(q), q))
            c.ok(len(qf) == n503, "lines with end queue_full == 503s seen (%d)" % n503,
                 "got %d: %r" % (len(qf), qf))
            c.ok(all(o.get("status") == 503 and o.get("pool") == "q"
                     and o.get("ttfb_ms") is None for o in qf),
                 "queue_full lines: status 503, pool q, ttfb_ms null", "%r" % qf)
            c.ok(all(o.get("end") == "ok" and o.get("status") == 200 and o.get("backend") == bq.addr
                     for o in q if o not in qf), "the served q requests: end ok, status 200",
                 "%r" % [o for o in q if o not in qf])

            # --- nasty bytes
            nasty_uris = ["/a/n1%22q%5C%00?v=%22%27%3C", "/a/n2\\back\\slash?x=\\\"",
                          "/a/n3?u=%E2%82%AC&z=%FF"]
            nasty_ua = b"evil \"quoted\" \\ back \x80\xff\xc3\xa9 end"
            nasty_ref = b"http://x/?a=\"b\"&c=\\d"
            accepted = []
            for u in nasty_uris:
                req = (b"GET " + u.encode("latin-1") + b" HTTP/1.1\r\nHost: test\r\n"
                       b"User-Agent: " + nasty_ua + b"\r\nReferer: " + nasty_ref +
                       b"\r\nConnection: close\r\n\r\n")
                resp = raw_exchange(fe, req, timeout=5)
                log("nasty %r -> %r" % (u, resp[:12]))
                if resp.startswith(b"HTTP/1.1 200"):
                    accepted.append(u)
                else:
                    c.ok(resp.startswith(b"HTTP/1.1 400"), "nasty uri %r: 200 or 400" % u,
                         repr(resp[:80]))
            c.ok(nasty_uris[0] in accepted and nasty_uris[2] in accepted,
                 "percent-encoded uris are proxied", "accepted %r" % accepted)
            time.sleep(FLUSH_WAIT)
            objs = read_json(c, logp, "json log after nasty bytes")
            for u in accepted:
                hit = [o for o in objs if o.get("uri") == u]
                c.ok(len(hit) == 1, "uri %r logged exactly as sent" % u,
                     "lines: %r" % [o.get("uri") for o in objs if "/n" in str(o.get("uri"))])
                if hit:
                    ua = hit[0].get("user_agent") or ""
                    c.ok(ua.startswith('evil "quoted" \\ back ') and ua.endswith(" end"),
                         "nasty user agent's ASCII kept around the escaped bytes", repr(ua))
                    c.ok(hit[0].get("referer") == nasty_ref.decode(),
                         "referer with quotes and backslash logged as sent",
                         repr(hit[0].get("referer")))

            # --- logrotate, with a flush between
            def rot_burst(tag, n=30):
                r = load(fe, n, threads=3, path_fn=lambda i: "/rot/%s/%d" % (tag, i))
                c.ok(r.ok() == n, "rotation burst %s: %d answered 200" % (tag, n), repr(r))

            def rot_uris(path, tag):
                return sorted(o["uri"] for o in read_json(c, path, path)
                              if str(o.get("uri")).startswith("/rot/%s/" % tag))

            rot_burst("r1")
            time.sleep(FLUSH_WAIT)
            old1 = logp + ".1"
            os.rename(logp, old1)
            proxy.signal(signal.SIGUSR1)
            wait_for(lambda: os.path.exists(logp), timeout=3,
                     what="the access log reopened at its path after SIGUSR1")
            rot_burst("r2")
            time.sleep(FLUSH_WAIT)
            want1 = sorted("/rot/r1/%d" % i for i in range(30))
            want2 = sorted("/rot/r2/%d" % i for i in range(30))
            c.ok(rot_uris(old1, "r1") == want1, "rotated file holds the 30 lines before SIGUSR1",
                 "%r" % rot_uris(old1, "r1"))
            c.ok(rot_uris(old1, "r2") == [], "rotated file gets no line after SIGUSR1",
                 "%r" % rot_uris(old1, "r2"))
            c.ok(rot_uris(logp, "r2") == want2, "new file holds the 30 lines after SIGUSR1",
                 "%r" % rot_uris(logp, "r2"))
            c.ok(rot_uris(logp, "r1") == [], "new file has no line from before",
                 "%r" % rot_uris(logp, "r1"))

            # --- logrotate while lines are still buffered
            rot_burst("r3")
            old2 = logp + ".2"
            os.rename(logp, old2)
            proxy.signal(signal.SIGUSR1)
            rot_burst("r4")
            wait_for(lambda: os.path.exists(logp), timeout=3,
                     what="the access log reopened at its path after the second SIGUSR1")
            time.sleep(FLUSH_WAIT)
            for tag in ("r3", "r4"):
                got = sorted(rot_uris(old2, tag) + rot_uris(logp, tag))
                c.ok(got == sorted("/rot/%s/%d" % (tag, i) for i in range(30)),
                     "buffered rotation: the 30 %s lines appear once across both files" % tag,
                     "got %d: %r" % (len(got), got))
            c.ok(os.stat(logp).st_mode & 0o777 == 0o640, "the reopened file has mode 0640",
                 oct(os.stat(logp).st_mode & 0o777))


RX_COMBINED = re.compile(
    r'^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
    r'"GET (/c/\d+) HTTP/1\.1" 200 (\d+) "([^"]*)" "([^"]*)" '
    r'pool=app backend=(\S+) queue_ms=(\d+\.\d{3}) connect_ms=(\d+\.\d{3}) '
    r'ttfb_ms=(\d+\.\d{3}) total_ms=(\d+\.\d{3}) retries=0 end=ok$')


def part_combined(c):
    logp = tmp_path("combined.log")
    with Backend("C1", delay_ms=50) as b1:
        fe = free_port()
        cfg = proxy_config(fe, [b1], workers=2,
                           extra_top='access_log = { path = "%s"; format = "combined"; };' % logp)
        with Proxy(cfg, listen_port=fe):
            t0 = datetime.datetime.now(datetime.timezone.utc)
            for i in range(5):
                st, _, body = http_get(fe, "/c/%d" % i, headers={"User-Agent": UA, "Referer": REF})
                check_eq(st, 200, "combined: GET /c/%d" % i)
            st, _, _ = http_get(fe, "/c/noua")
            time.sleep(FLUSH_WAIT)
            lines = [l.decode("utf-8", "replace") for l in read_lines(logp)]
            log("combined: %d lines, first %r" % (len(lines), lines[:1]))
            c.ok(len(lines) == 6, "combined: 6 lines for 6 requests", "%r" % lines)
            ms = [RX_COMBINED.match(l) for l in lines if "/c/noua" not in l]
            c.ok(len(ms) == 5 and all(ms), "combined: every line matches the combined regex",
                 "\n".join(l for l in lines if not RX_COMBINED.match(l)))
            for m in ms:
                if not m:
                    continue
                c.ok(int(m.group(2)) > 0 and m.group(3) == REF and m.group(4) == UA
                     and m.group(5) == b1.addr and 48.5 <= float(m.group(9)) <= 400,
                     "combined %s: bytes, referer, user agent, backend, total_ms" % m.group(1),
                     m.group(0))
            day = t0.strftime("[%d/%b/%Y:")
            c.ok(all(day in l for l in lines) or t0.hour == 23,
                 "combined: the date is today's (UTC)", "want %s in %r" % (day, lines[:1]))
            nu = [l for l in lines if "/c/noua" in l]
            c.ok(len(nu) == 1 and '"GET /c/noua HTTP/1.1" 200 ' in nu[0]
                 and '"-" "-" pool=app' in nu[0],
                 "combined: missing referer and user agent are \"-\"", "%r" % nu)


def open_files(pid):
    """Regular files the process has open (paths)."""
    out = []
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if t.startswith("/") and not t.startswith("/dev/") and os.path.isfile(t):
            out.append(t)
    return out


def part_off(c):
    for variant in ("none", "off"):
        dirp = tmp_path("off-%s" % variant)
        os.mkdir(dirp)
        with Backend("D1") as b1:
            fe = free_port()
            extra = 'access_log = { path = "off"; };' if variant == "off" else ""
            cfg = proxy_config(fe, [b1], workers=2, extra_top=extra)
            before = set(os.listdir(os.path.dirname(dirp)))
            with Proxy(cfg, listen_port=fe) as proxy:
                r = load(fe, 20, threads=2)
                c.ok(r.ok() == 20, "access log %s: 20 requests answered" % variant, repr(r))
                time.sleep(FLUSH_WAIT)
                files = [f for f in open_files(proxy.pid)
                         if f not in (proxy.stdout_path, proxy.stderr_path)]
                c.ok(not files, "access log %s: no file open but stdout/stderr" % variant,
                     "%r" % files)
                after = set(os.listdir(os.path.dirname(dirp)))
                new = sorted(after - before)
                c.ok(all(n.startswith(("surgegate-", "admin-")) for n in new),
                     "access log %s: no new file in the test directory" % variant, "%r" % new)


run(main)
