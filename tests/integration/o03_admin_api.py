"""o03: the admin API: auth, every endpoint, malformed input, runtime changes.

(a) TCP listener on loopback with an admin and a read-only token: no token,
    a wrong token, a token prefix, a token with one more character and a
    Basic header -> 401 with WWW-Authenticate: Bearer and a JSON error (a
    mutation without a token too: 401 before 403); the read token may GET
    stats, pools, a pool, its backends, a backend, events and /metrics;
    with it every mutation (state, weight, add, remove) -> 403 with a JSON
    error and nothing changes; the admin token drains, readies and weighs.
(b) Unix socket (the default kind): mode 0600, a socket.
(c) Malformed input on every endpoint: a body that is not JSON, a JSON
    array, an empty body, missing fields, wrong types, a 70 KiB body (413),
    bad addresses ("nohost", "1.2.3.4:0", "1.2.3.4:99999", "[::1", "", ...),
    weights -1 / 257 / "x" / 1.5, a duplicate address (409), unknown pool
    or backend (404), unknown endpoints (404), wrong methods (405, also PUT
    and PATCH), bad events queries (400), bad percent-encoding, an over-long
    segment; every 4xx carries {"error": "..."}; a percent-encoded address
    and pool name in the path work. Afterwards the proxy is alive, serves
    200s and its backends are unchanged.
(d) Runtime changes: a new sg-testbackend added (201) gets its roundrobin
    share at once; weight 3 -> ~3/5 of the traffic, weight 0 -> none; the
    same address again -> 409. DELETE while a 1.5 s request is in flight on
    it -> 202 "removing"; the slow request completes 200 from it, no new
    request reaches it, and it leaves the backends list once drained (then
    GET/DELETE of it -> 404); adding it again works.

Checks in (c) that fail are collected and reported together at the end,
after (d) ran, so one wrong status does not hide the rest."""
import json
import os
import socket
import stat
import time

from harness import *

ADMIN_TOKEN = "s3cret-admin"
READ_TOKEN = "s3cret-read"

problems = []


def soft(cond, msg):
    if not cond:
        log("PROBLEM: " + msg)
        problems.append(msg)
    return cond


def is_json_error(body):
    return isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]


def expect(proxy, method, path, body, want, token=None, headers=None, what=None):
    """One request; soft-checks the status (an int or a tuple) and, for a
    4xx, the JSON error body. Returns (status, body)."""
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    hdrs = dict(headers or {})
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    try:
        st, h, obj = admin_raw(proxy, method, path, body, hdrs, token=token)
    except (OSError, ConnectionError) as e:
        soft(False, "%s %s %r: no answer (%s)" % (method, path, what or body, e))
        return None, None
    wants = want if isinstance(want, tuple) else (want,)
    soft(st in wants, "%s %s body %s: status %s, want %s (%r)"
         % (method, path, what or repr(body)[:60], st, "/".join(map(str, wants)),
            str(obj)[:160]))
    if 400 <= st < 500:
        soft(is_json_error(obj), "%s %s body %s: %d without a JSON {\"error\"} body: %r"
             % (method, path, what or repr(body)[:60], st, str(obj)[:160]))
    return st, obj


def backends_of(proxy, token=None):
    st, obj = admin_request(proxy, "GET", "pools/app/backends", token=token)
    check(st == 200 and isinstance(obj, list), "GET pools/app/backends: %s %r" % (st, obj))
    return {b["address"]: b for b in obj}


def auth():
    with Backend("A") as a, Backend("B") as b:
        fe, ap = free_port(), free_port()
        admin = ('listen = "127.0.0.1:%d"; tokens = ( { name = "ops"; token = "%s"; '
                 'role = "admin"; }, { name = "graf"; token = "%s"; role = "read"; } );'
                 % (ap, ADMIN_TOKEN, READ_TOKEN))
        with Proxy(proxy_config(fe, [a, b], admin=admin), listen_port=fe) as proxy:
            wait_for(lambda: admin_try_get(proxy, "stats") is not None, timeout=3,
                     what="admin listener")
            bad = [None, "wrong", ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x", "x" + READ_TOKEN]
            for tok in bad:
                for method, path, body in (("GET", "stats", None), ("GET", "/metrics", None),
                                           ("GET", "events", None),
                                           ("POST", "pools/app/backends/%s/state" % a.addr,
                                            '{"state":"drain"}'),
                                           ("DELETE", "pools/app/backends/%s" % a.addr, None)):
                    st, h, obj = admin_raw(proxy, method, path, body, token=tok)
                    check_eq(st, 401, "%s %s with token %r" % (method, path, tok))
                    check(h.get("WWW-Authenticate", "").startswith("Bearer"),
                          "401 without WWW-Authenticate: Bearer: %r" % dict(h))
                    check(is_json_error(obj), "401 body not a JSON error: %r" % obj)
            st, h, obj = admin_raw(proxy, "GET", "stats",
                                   headers={"Authorization": "Basic b3BzOnMzY3JldC1hZG1pbg=="})
            check_eq(st, 401, "GET stats with a Basic header")
            # read token: every GET
            for path in ("stats", "pools", "pools/app", "pools/app/backends",
                         "pools/app/backends/%s" % a.addr, "events", "/metrics"):
                st, obj = admin_request(proxy, "GET", path, token=READ_TOKEN)
                check_eq(st, 200, "read token GET %s" % path)
            # read token: every mutation is 403 and changes nothing
            before = backends_of(proxy, READ_TOKEN)
            for method, path, body in (
                    ("POST", "pools/app/backends/%s/state" % a.addr, {"state": "drain"}),
                    ("POST", "pools/app/backends/%s/state" % a.addr, {"state": "maint"}),
                    ("POST", "pools/app/backends/%s/weight" % a.addr, {"weight": 7}),
                    ("POST", "pools/app/backends", {"address": "127.0.0.1:%d" % dead_port()}),
                    ("DELETE", "pools/app/backends/%s" % b.addr, None)):
                st, h, obj = admin_raw(proxy, method, path,
                                       json.dumps(body) if body is not None else None,
                                       token=READ_TOKEN)
                check_eq(st, 403, "read token %s %s" % (method, path))
                check(is_json_error(obj), "403 body not a JSON error: %r" % obj)
            time.sleep(0.2)
            after = backends_of(proxy, READ_TOKEN)
            check_eq(sorted(after), sorted(before), "backends after refused mutations")
            for addr in after:
                check_eq((after[addr]["state"], after[addr]["weight"], after[addr]["removing"]),
                         ("up", 1, False), "backend %s after refused mutations" % addr)
            res = load(fe, 40, threads=2, path="/after-403")
            check(res.ok() == 40 and res.backends == {"A": 20, "B": 20},
                  "traffic after refused mutations: %r" % res.backends)
            # admin token
            for state, want in (("drain", "drain"), ("ready", "up")):
                st, h, obj = admin_raw(proxy, "POST", "pools/app/backends/%s/state" % a.addr,
                                       json.dumps({"state": state}), token=ADMIN_TOKEN)
                check_eq(st, 200, "admin token: state %s" % state)
                check_eq(backends_of(proxy, ADMIN_TOKEN)[a.addr]["state"], want,
                         "state after %s" % state)
            st, h, obj = admin_raw(proxy, "POST", "pools/app/backends/%s/weight" % b.addr,
                                   json.dumps({"weight": 2}), token=ADMIN_TOKEN)
            check_eq(st, 200, "admin token: weight")
            check_eq(backends_of(proxy, READ_TOKEN)[b.addr]["weight"], 2, "weight after POST")


def unix_socket():
    with Backend("A") as a:
        fe = free_port()
        with Proxy(proxy_config(fe, [a]), listen_port=fe) as proxy:
            wait_for(lambda: admin_try_get(proxy, "stats") is not None, timeout=3,
                     what="admin unix socket")
            s = os.stat(proxy.admin_path)
            check(stat.S_ISSOCK(s.st_mode), "%s is not a socket" % proxy.admin_path)
            check_eq(oct(stat.S_IMODE(s.st_mode)), oct(0o600), "admin socket mode")
            check_eq(s.st_uid, os.getuid(), "admin socket owner")


def oversized_body(proxy, path, n):
    """POST with a Content-Length of n bytes, sent as raw bytes on the unix
    socket (the server may answer before reading the body). Returns the
    status line's code and the body text, or (None, why)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(proxy.admin_path)
    data = b""
    try:
        s.sendall(("POST /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                   "application/json\r\nContent-Length: %d\r\n\r\n" % (path, n)).encode())
        try:
            s.sendall(b'{"address":"' + b"x" * (n - 14) + b'"}')
        except OSError:
            pass
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                break
            if not d:
                break
            data += d
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
    finally:
        s.close()
    if not data.startswith(b"HTTP/1."):
        return None, "no response (%r)" % data[:100]
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head[9:12]), body.decode("utf-8", "replace")


def malformed(proxy, a, b):
    P = "pools/app/backends"
    A = "%s/%s" % (P, a.addr)
    # bodies that are not a JSON object, on every endpoint that takes one
    for path in (P, A + "/state", A + "/weight"):
        for body, what in (("not json", "text"), ("[1,2]", "array"), ("", "empty"),
                           ('{"address":', "truncated"), ("null", "null"), ('"str"', "string"),
                           ("{}", "{}"), ('{"address":"1.2.3.4:80"}{}', "trailing garbage"),
                           (b'{"state":"\xff"}', "invalid UTF-8")):
            expect(proxy, "POST", path, body, 400, what=what)
    # 413 on a body over 64 KiB
    st, txt = oversized_body(proxy, P, 70 * 1024)
    soft(st == 413, "POST %s with a 70 KiB body: got %s, want 413" % (P, st))
    if st == 413:
        try:
            soft(is_json_error(json.loads(txt)), "413 without a JSON {\"error\"} body: %r"
                 % txt[:120])
        except ValueError:
            soft(False, "413 without a JSON {\"error\"} body: %r" % txt[:120])
    # addresses
    for addr in ("nohost", "1.2.3.4:0", "1.2.3.4:99999", "[::1", "", "127.0.0.1:",
                 ":8080", "127.0.0.1:80:80", "127.0.0.1:-1", "127.0.0.1:80x", " 127.0.0.1:80",
                 "999.1.1.1:80", "h" * 300 + ":80", "127.0.0.1:80\n", "unix:relative.sock", "localhost"):
        expect(proxy, "POST", P, {"address": addr}, 400, what="address %r" % addr[:40])
    for addr in (123, None, ["127.0.0.1:80"], {"a": 1}, True):
        expect(proxy, "POST", P, {"address": addr}, 400, what="address %r" % (addr,))
    port = dead_port()
    for w in (-1, 257, "x", 1.5, None, True, 1 << 40):
        expect(proxy, "POST", P, {"address": "127.0.0.1:%d" % port, "weight": w}, 400,
               what="add weight %r" % (w,))
        expect(proxy, "POST", A + "/weight", {"weight": w}, 400, what="weight %r" % (w,))
    for mc in (-1, "x", 1.5, 1 << 40):
        expect(proxy, "POST", P, {"address": "127.0.0.1:%d" % port, "maxconn": mc}, 400,
               what="maxconn %r" % (mc,))
    for s in ("bogus", "", "DRAIN", "up", 1, None, ["drain"]):
        expect(proxy, "POST", A + "/state", {"state": s}, 400, what="state %r" % (s,))
    expect(proxy, "POST", A + "/weight", {}, 400, what="weight missing")
    expect(proxy, "POST", A + "/state", {}, 400, what="state missing")
    # duplicates and unknowns
    expect(proxy, "POST", P, {"address": a.addr}, 409, what="duplicate address")
    expect(proxy, "POST", "pools/nope/backends", {"address": "127.0.0.1:%d" % port}, 404)
    for path in ("pools/nope", "pools/nope/backends", "pools/nope/backends/%s" % a.addr,
                 P + "/127.0.0.1:1", P + "/nohost", P + "/%zz", P + "/127.0.0.1%00",
                 P + "/" + "%41" * 300, "pools/" + "a" * 600, "nope", "stats/x",
                 "pools/app/nope", A + "/bogus", A + "/state/x", "a/b/c/d/e/f/g/h/i/j",
                 "/", "/api", "/api/v1", "/api/v2/stats", "/metrics/x", "/API/V1/stats"):
        expect(proxy, "GET", path, None, 404)
    for method, path in (("POST", P + "/127.0.0.1:1/state"), ("POST", P + "/127.0.0.1:1/weight"),
                         ("DELETE", P + "/127.0.0.1:1"), ("DELETE", "pools/nope/backends/x")):
        expect(proxy, method, path, {"state": "drain", "weight": 1}, 404)
    # wrong methods
    for method, path in (("POST", "stats"), ("DELETE", "stats"), ("POST", "pools"),
                         ("POST", "pools/app"), ("DELETE", "pools/app"), ("DELETE", P),
                         ("POST", A), ("GET", A + "/state"), ("DELETE", A + "/state"),
                         ("GET", A + "/weight"), ("POST", "events"), ("POST", "/metrics"),
                         ("DELETE", "/metrics"), ("PUT", "stats"), ("PUT", A),
                         ("PATCH", A + "/weight"), ("OPTIONS", "stats")):
        expect(proxy, method, path, "{}" if method in ("POST", "PUT", "PATCH") else None, 405)
    # events queries
    for q in ("since=yesterday", "since=2026-13-01T00:00:00Z", "since=", "since=2026-11-30",
              "limit=0", "limit=x", "limit=-1", "limit=99999999999", "since=%zz", "limit="):
        expect(proxy, "GET", "events?" + q, None, 400)
    expect(proxy, "GET", "events?since=2000-01-01T00:00:00Z&limit=5", None, 200)
    expect(proxy, "GET", "events?since=2000-01-01T00:00:00.123%2B02:00", None, 200)
    # percent-encoded address and pool name in the path
    enc = a.addr.replace(":", "%3A").replace(".", "%2E")
    st, obj = expect(proxy, "GET", "pools/%61pp/backends/" + enc, None, 200)
    soft(isinstance(obj, dict) and obj.get("address") == a.addr,
         "GET of the percent-encoded address: %r" % str(obj)[:120])
    st, obj = expect(proxy, "POST", "pools/app/backends/%s/state" % enc, {"state": "ready"}, 200)
    # the same request twice on one keep-alive connection, then garbage
    raw = ("GET /api/v1/pools HTTP/1.1\r\nHost: x\r\n\r\n" * 2 + "BLAH\r\n\r\n").encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(proxy.admin_path)
    got = b""
    try:
        s.sendall(raw)
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    s.close()
    soft(got.count(b"HTTP/1.1 200") == 2, "two pipelined GETs: %d answered 200"
         % got.count(b"HTTP/1.1 200"))


def runtime(proxy, fe, a, b):
    with Backend("C") as c:
        st, obj = expect(proxy, "POST", "pools/app/backends",
                         {"address": c.addr, "weight": 1, "maxconn": 0}, 201)
        check_eq(st, 201, "add C")
        check(isinstance(obj, dict) and obj.get("address") == c.addr,
              "add C answered %r" % str(obj)[:200])
        wait_backend(proxy, c, "up", 3, what="added backend C")
        res = load(fe, 90, threads=1, path="/rr3")
        log("after adding C: %r" % res.backends)
        check(res.ok() == 90, "after adding C: %r" % res.statuses)
        for n in ("A", "B", "C"):
            check(27 <= res.backends.get(n, 0) <= 33, "roundrobin over 3 after the add: %r"
                  % res.backends)
        expect(proxy, "POST", "pools/app/backends", {"address": c.addr}, 409,
               what="C added twice")
        st, obj = expect(proxy, "POST", "pools/app/backends/%s/weight" % c.addr, {"weight": 3},
                         200)
        check_eq(backends_of(proxy)[c.addr]["weight"], 3, "C weight after POST")
        res = load(fe, 100, threads=1, path="/w3")
        log("C weight 3: %r" % res.backends)
        check(55 <= res.backends.get("C", 0) <= 65, "weights 1,1,3: C got %r of 100"
              % res.backends)
        expect(proxy, "POST", "pools/app/backends/%s/weight" % c.addr, {"weight": 0}, 200)
        res = load(fe, 60, threads=1, path="/w0")
        check(res.ok() == 60 and res.backends.get("C", 0) == 0,
              "weight 0: C got %r" % res.backends)
        expect(proxy, "POST", "pools/app/backends/%s/weight" % c.addr, {"weight": 1}, 200)

        # remove C while a slow request runs on it
        slow = [Pending(fe, "/slow/%d?delay=1500" % i, timeout=10) for i in range(3)]
        wait_for(lambda: c.stats()["inflight"] == 1, timeout=3,
                 what="a slow request in flight on C")
        st, obj = expect(proxy, "DELETE", "pools/app/backends/%s" % c.addr, None, 202)
        check_eq(st, 202, "DELETE C")
        check(isinstance(obj, dict) and obj.get("removing") is True,
              "DELETE answered %r" % str(obj)[:200])
        bl = backends_of(proxy)
        check(c.addr in bl and bl[c.addr].get("removing") is True,
              "C while draining: %r" % bl.get(c.addr))
        before = len(c.traffic_lines())
        res = load(fe, 60, threads=2, path="/after-delete")
        check(res.ok() == 60, "after DELETE: %r %s" % (res.statuses, res.errors))
        check_eq(len(c.traffic_lines()) - before, 0, "new requests reaching C after DELETE")
        check(c.stats()["inflight"] == 1, "C's slow request ended before its time")
        for p in slow:
            p.result()
        check_eq(sorted((p.status, p.backend) for p in slow),
                 [(200, "A"), (200, "B"), (200, "C")], "slow requests during the removal")
        wait_for(lambda: c.addr not in backends_of(proxy), timeout=3,
                 what="C gone from the backends list after it drained")
        expect(proxy, "GET", "pools/app/backends/%s" % c.addr, None, 404)
        expect(proxy, "DELETE", "pools/app/backends/%s" % c.addr, None, 404)
        stp = stats_pool(proxy)
        check_eq(sorted(x["address"] for x in stp["backends"]), sorted([a.addr, b.addr]),
                 "stats backends after the removal")
        res = load(fe, 40, threads=2, path="/two-left")
        check(res.ok() == 40 and set(res.backends) == {"A", "B"},
              "after the removal: %r" % res.backends)
        # and back again
        st, obj = expect(proxy, "POST", "pools/app/backends", {"address": c.addr}, 201,
                         what="C added again after removal")
        if st == 201:
            wait_backend(proxy, c, "up", 3, what="C added again")
            res = load(fe, 30, threads=1, path="/again")
            check(res.backends.get("C", 0) >= 8, "C again: %r" % res.backends)


def main():
    auth()
    unix_socket()
    with Backend("A") as a, Backend("B") as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [a, b], workers=1), listen_port=fe) as proxy:
            wait_for(lambda: admin_try_get(proxy, "stats") is not None, timeout=3,
                     what="admin unix socket")
            malformed(proxy, a, b)
            check(proxy.alive(), "surgegate died during the malformed admin requests")
            bl = backends_of(proxy)
            check_eq(sorted(bl), sorted([a.addr, b.addr]), "backends after malformed input")
            for x in bl.values():
                check_eq((x["state"], x["weight"], x["removing"]), ("up", 1, False),
                         "backend %s after malformed input" % x["address"])
            res = load(fe, 100, threads=4, path="/alive")
            check(res.ok() == 100, "traffic after malformed admin input: %r" % res.statuses)
            log("%d malformed-input problems" % len(problems))
            runtime(proxy, fe, a, b)
            check(proxy.alive(), "surgegate died")
    if problems:
        fail("%d admin API problems:\n  %s" % (len(problems), "\n  ".join(problems)))


if __name__ == "__main__":
    run(main)
