"""s01: surgectl, the admin client, against a live surgegate.

(a) Admin API on a unix socket, backends A and B: `status` prints the table
    (header, pool row "2/2 up", a row per backend with its state), also with
    the address from SURGEGATE_ADMIN and options after the command; p50/p99
    show "-" before any request and numbers after 50 requests;
    `--json status` is the server's JSON; `backends app` (table and --json);
    drain / maint / ready change the state that status shows (and the
    server's own JSON agrees); an unknown pool or backend exits 1 with the
    server's message; a pool name with '/' and '?' is percent-encoded (the
    server answers "no such pool", not "no such endpoint");
    `status --watch --count 2` prints two tables a second apart; on a tty
    --watch clears the screen; SIGINT ends --watch with exit 0; usage errors
    exit 2.
(b) add (weight, maxconn; twice and a bad address: 4xx), weight, events
    (--since 5m, --json, an ISO-8601 --since) and remove (drains, then gone;
    a second remove: 404).
(c) No daemon: a missing socket and a closed port exit 3 with the message.
(d) Admin API on TCP with an admin and a read-only token: no token and a
    wrong token exit 4 (401); SURGEGATE_TOKEN is used; the read-only token
    reads, and a drain with it exits 4 (403) without changing anything.
(e) A stand-in admin server (Python, in this test) records what surgectl
    sends: the method, the percent-encoded path and the JSON body of every
    command, "Connection: close", Host, the bearer token, Content-Type; --since
    5m becomes a UTC time 5 minutes ago; the table shows the latency, error
    rate and rate fields of the full stats shape; a chunked answer is read;
    a 500 with a text body exits 1 with that text; an answer that is not
    HTTP exits 1; a server that never answers is given up after 10 s (exit 3)."""
import datetime
import http.server
import json
import os
import socketserver
import threading
import pty
import select
import signal
import subprocess
import time

from harness import *

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SG_CTL = os.environ.get("SG_CTL") or os.path.join(_REPO, "build", "surgectl")


def ctl(*args, admin=None, env=None, timeout=20):
    """Runs surgectl; returns (exit code, stdout, stderr)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("SURGEGATE_")}
    e.update(env or {})
    argv = [SG_CTL] + (["--admin", admin] if admin else []) + list(args)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=e,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("surgectl %s: still running after %ds" % (" ".join(args), timeout))
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    check(p.returncode >= 0, "surgectl %s died of signal %d; stderr: %s"
          % (" ".join(args), -p.returncode, err))
    return p.returncode, out, err


def ok(*args, **kw):
    rc, out, err = ctl(*args, **kw)
    check(rc == 0, "surgectl %s: exit %d (want 0); stderr: %s" % (" ".join(args), rc, err))
    return out


def status_rows(out):
    """{first column: STATE column} for the status table's rows."""
    lines = out.splitlines()
    heads = [i for i, l in enumerate(lines) if l.startswith("POOL/BACKEND")]
    check(len(heads) == 1, "status: want one table header, got %d in:\n%s" % (len(heads), out))
    rows = {}
    for l in lines[heads[0] + 1:]:
        if not l.strip():
            break
        f = l.split()
        if l.startswith("  "):
            # backend: ADDRESS STATE [ejected|backup]... numbers
            rows[f[0]] = f[1]
        else:
            # pool: NAME N/M up numbers
            rows[f[0]] = " ".join(f[1:3])
    return rows


def server_state(proxy, addr):
    st, obj = admin_get(proxy, "pools/app/backends/" + addr)
    return obj.get("state")


def unix_socket():
    with Backend("A") as a, Backend("B") as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [a.addr, b.addr]), listen_port=fe) as proxy:
            admin_get(proxy, "stats")  # waits for the admin listener
            adm = "unix:" + proxy.admin_path
            # -- status
            out = ok("status", admin=adm)
            log("status:\n" + out)
            rows = status_rows(out)
            check_eq(rows.get("app"), "2/2 up", "pool row of app")
            check(out.splitlines()[1].split()[-1] == "OVERLOAD"
                  and [l for l in out.splitlines() if l.startswith("app ")][0].split()[-1]
                  == "ok/100ms", "status: the pool's queue state and target (OVERLOAD ok/100ms)")
            check_eq(rows.get(a.addr), "up", "status row of A")
            check_eq(rows.get(b.addr), "up", "status row of B")
            check(out.splitlines()[0].startswith("surgegate"), "status: first line %r"
                  % out.splitlines()[0])
            for col in ("STATE", "INFLIGHT", "QUEUE", "P50 ms", "P99 ms", "ERR%", "RPS"):
                check(col in out, "status: no column %s" % col)
            pool_row = [l.split() for l in out.splitlines() if l.startswith("app ")][0]
            check_eq(pool_row[5:7], ["-", "-"], "p50/p99 before any request")
            # traffic: the latency columns fill in (merged each second)
            res = load(fe, 50, threads=2, path="/s01")
            check(res.ok() == 50, "load: %r" % res)

            def filled():
                r = [l.split() for l in ok("status", admin=adm).splitlines()
                     if l.startswith("app ")][0]
                return r if r[5] != "-" else None
            pool_row = wait_for(filled, timeout=5, interval=0.3,
                                what="p50 of pool app in the status table after load")
            log("after 50 requests: %s" % pool_row)
            check(float(pool_row[5]) <= float(pool_row[6]), "p50 > p99: %s" % pool_row)
            check_eq(pool_row[7], "0.0", "ERR% after 50 good requests")
            js = json.loads(ok("--json", "status", admin=adm))
            check_eq(js["pools"][0]["latency_ms"]["total"]["10s"]["count"], 50,
                     "requests in the 10 s window (server)")
            # the address from the environment, options after the command
            out2 = ok("status", env={"SURGEGATE_ADMIN": adm})
            check_eq(status_rows(out2).get(b.addr), "up", "status via SURGEGATE_ADMIN")
            js = json.loads(ok("status", "--json", "--admin", adm))
            check_eq([p["name"] for p in js["pools"]], ["app"], "--json status pools")
            check_eq(sorted(x["address"] for x in js["pools"][0]["backends"]),
                     sorted([a.addr, b.addr]), "--json status backends")
            # -- backends
            out = ok("backends", "app", admin=adm)
            log("backends app:\n" + out)
            lines = out.splitlines()
            check(lines[0].startswith("BACKEND") and "WEIGHT" in lines[0]
                  and "MAXCONN" in lines[0] and "REASON" in lines[0], "backends header %r"
                  % lines[0])
            check_eq(sorted(l.split()[0] for l in lines[1:]), sorted([a.addr, b.addr]),
                     "backends rows")
            bs = json.loads(ok("--json", "backends", "app", admin=adm))
            check(isinstance(bs, list) and len(bs) == 2, "backends --json: %r" % bs)
            # -- drain, maint, ready
            out = ok("drain", "app", b.addr, admin=adm)
            check(b.addr in out and "drain" in out, "drain said %r" % out)
            check_eq(server_state(proxy, b.addr), "drain", "server's state of B after drain")
            rows = status_rows(ok("status", admin=adm))
            check_eq(rows.get(b.addr), "drain", "status row of B after drain")
            check_eq(rows.get(a.addr), "up", "status row of A after B's drain")
            res = json.loads(ok("--json", "maint", "app", b.addr, admin=adm))
            check_eq(res.get("state"), "maint", "--json maint answer's state")
            check_eq(status_rows(ok("status", admin=adm)).get(b.addr), "maint",
                     "status row of B after maint")
            ok("ready", "app", b.addr, admin=adm)
            wait_for(lambda: status_rows(ok("status", admin=adm)).get(b.addr) == "up",
                     timeout=5, what="B shown up again after ready")
            check_eq(server_state(proxy, b.addr), "up", "server's state of B after ready")
            # -- the server's errors
            rc, out, err = ctl("backends", "nosuchpool", admin=adm)
            check(rc == 1 and "no such pool" in err and "404" in err and not out,
                  "unknown pool: exit %d, stderr %r" % (rc, err))
            check_eq(len(err.strip().splitlines()), 1, "lines of the error message")
            rc, out, err = ctl("drain", "app", "127.0.0.1:1", admin=adm)
            check(rc == 1 and "no such backend" in err, "unknown backend: exit %d, stderr %r"
                  % (rc, err))
            rc, out, err = ctl("backends", "a/b?c#d e%", admin=adm)
            check(rc == 1 and "no such pool" in err,
                  "pool name with / ? # space %%: exit %d, stderr %r" % (rc, err))
            # -- watch
            t0 = time.monotonic()
            out = ok("status", "--watch", "--count", "2", admin=adm)
            took = time.monotonic() - t0
            check_eq(out.count("POOL/BACKEND"), 2, "tables printed by --watch --count 2")
            check("\n\n" in out and "\033[" not in out, "--watch without a tty: tables "
                  "separated by a blank line, no escape codes: %r" % out[:300])
            check(0.9 <= took < 5, "--watch --count 2 took %.2fs (want about 1 s)" % took)
            watch_tty(adm)
            watch_sigint(adm)
            # -- usage
            for args in ((), ("frob",), ("drain", "app"), ("status", "--bogus"),
                         ("status", "--count", "0"), ("backends", "app", "--watch"),
                         ("weight", "app", b.addr, "x"), ("events", "--since", "yesterday")):
                rc, out, err = ctl(*args, admin=adm)
                check(rc == 2 and "usage: surgectl" in err, "usage error %r: exit %d, "
                      "stderr %r" % (args, rc, err[:200]))
            rc, out, err = ctl("--help")
            check(rc == 0 and "usage: surgectl" in out, "--help: exit %d" % rc)
            later_endpoints(proxy, adm, a, b)


def watch_tty(adm):
    """--watch on a terminal clears the screen before each table."""
    master, slave = pty.openpty()
    e = {k: v for k, v in os.environ.items() if not k.startswith("SURGEGATE_")}
    p = Popen([SG_CTL, "--admin", adm, "status", "--count", "1"], stdin=subprocess.DEVNULL,
              stdout=slave, stderr=subprocess.PIPE, env=e)
    os.close(slave)
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                d = os.read(master, 65536)
            except OSError:
                break
            if not d:
                break
            data += d
        elif p.poll() is not None:
            break
    os.close(master)
    rc, _ = stop_process(p, timeout=5)
    check_eq(rc, 0, "--count 1 on a tty: exit")
    check(b"\033[H\033[2J" in data and b"POOL/BACKEND" in data,
          "--watch on a tty: no clear-screen before the table: %r" % data[:200])


def watch_sigint(adm):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SURGEGATE_")}
    p = Popen([SG_CTL, "--admin", adm, "status", "--watch"], stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    line = b""
    deadline = time.monotonic() + 5
    while b"POOL/BACKEND" not in line and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            line += p.stdout.readline()
    check(b"POOL/BACKEND" in line, "--watch printed no table within 5 s")
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(3)
    except subprocess.TimeoutExpired:
        fail("--watch still running 3 s after SIGINT")
    stop_process(p)
    check_eq(rc, 0, "--watch exit status after SIGINT")


def later_endpoints(proxy, adm, a, b):
    """add, weight, remove and events."""
    with Backend("C") as c:
        rc, out, err = ctl("add", "app", c.addr, "--weight", "2", "--maxconn", "50", admin=adm)
        check(rc == 0, "add: exit %d, stderr %r" % (rc, err))
        check(c.addr in out, "add said %r" % out)
        wait_for(lambda: c.addr in status_rows(ok("status", admin=adm)), timeout=5,
                 what="C in the status table after add")
        bs = {x["address"]: x for x in json.loads(ok("--json", "backends", "app", admin=adm))}
        check_eq(bs[c.addr].get("weight"), 2, "C's weight after add --weight 2")
        check_eq(bs[c.addr].get("maxconn"), 50, "C's maxconn after add --maxconn 50")
        rc, out, err = ctl("add", "app", c.addr, admin=adm)
        check(rc == 1 and err.startswith("surgectl: 4"),
              "adding C twice: exit %d, stderr %r" % (rc, err))
        rc, out, err = ctl("add", "app", "not an address", admin=adm)
        check(rc == 1 and err.startswith("surgectl: 4"),
              "adding a bad address: exit %d, stderr %r" % (rc, err))
        # weight (on C)
        target = c.addr
        rc, out, err = ctl("weight", "app", target, "3", admin=adm)
        check(rc == 0, "weight: exit %d, stderr %r" % (rc, err))
        bs = {x["address"]: x for x in json.loads(ok("--json", "backends", "app", admin=adm))}
        check_eq(bs[target].get("weight"), 3, "weight after `weight app %s 3`" % target)
        # events: the drain of B earlier is in the journal
        rc, out, err = ctl("events", "--since", "5m", admin=adm)
        check(rc == 0, "events: exit %d, stderr %r" % (rc, err))
        log("events --since 5m:\n" + out)
        lines = out.splitlines()
        check(lines and all(l[:4].isdigit() and l[10:11] == "T" for l in lines),
              "events: every line starts with an ISO-8601 time: %r" % out[:400])
        check(any(b.addr in l for l in lines), "events: nothing about B's drain: %r"
              % out[:400])
        evs = json.loads(ok("--json", "events", admin=adm))
        check(isinstance(evs, list) and evs and all("time" in e and "type" in e
                                                    for e in evs),
              "events --json: %r" % str(evs)[:300])
        rc, out, err = ctl("events", "--since", "2000-01-01T00:00:00Z", admin=adm)
        check_eq(rc, 0, "events --since an ISO-8601 time: exit (stderr %r)" % err)
        # remove C (drains first, then gone)
        rc, out, err = ctl("remove", "app", target, admin=adm)
        check(rc == 0, "remove: exit %d, stderr %r" % (rc, err))
        wait_for(lambda: target not in status_rows(ok("status", admin=adm)), timeout=10,
                 what="%s gone from the status table after remove" % target)
        rc, out, err = ctl("remove", "app", target, admin=adm)
        check(rc == 1 and "404" in err, "removing %s again: exit %d, stderr %r"
              % (target, rc, err))


def no_daemon():
    rc, out, err = ctl("status", admin="unix:" + tmp_path("nothing-here.sock"))
    check(rc == 3 and "cannot reach surgegate's admin API at unix:" in err
          and "No such file or directory" in err and "is surgegate running?" in err,
          "missing socket: exit %d, stderr %r" % (rc, err))
    port = dead_port()
    rc, out, err = ctl("backends", "app", admin="127.0.0.1:%d" % port)
    check(rc == 3 and ("127.0.0.1:%d" % port) in err and "Connection refused" in err,
          "closed port: exit %d, stderr %r" % (rc, err))
    check_eq(len(err.strip().splitlines()), 1, "lines of the cannot-reach message")


def tokens():
    with Backend("T1") as t1:
        fe, ap = free_port(), free_port()
        admin = ('listen = "127.0.0.1:%d"; tokens = ( { name = "ops"; token = "s3cret-admin"; '
                 'role = "admin"; }, { name = "graf"; token = "s3cret-read"; role = "read"; } );'
                 % ap)
        with Proxy(proxy_config(fe, [t1.addr], admin=admin), listen_port=fe) as proxy:
            adm = "127.0.0.1:%d" % ap
            wait_for(lambda: ctl("status", "--token", "s3cret-read", admin=adm)[0] == 0,
                     timeout=5, what="the admin listener")
            for extra in ((), ("--token", "wrong")):
                rc, out, err = ctl("status", *extra, admin=adm)
                check(rc == 4 and "401" in err and "--token or SURGEGATE_TOKEN" in err,
                      "token %r: exit %d, stderr %r" % (extra, rc, err))
            out = ok("status", admin=adm, env={"SURGEGATE_TOKEN": "s3cret-read"})
            check_eq(status_rows(out).get(t1.addr), "up", "status with SURGEGATE_TOKEN")
            rc, out, err = ctl("drain", "app", t1.addr, "--token", "s3cret-read", admin=adm)
            check(rc == 4 and "403" in err and "may only read" in err,
                  "drain with the read-only token: exit %d, stderr %r" % (rc, err))
            st = json.loads(ok("--json", "backends", "app", "--token", "s3cret-read",
                               admin=adm))
            check_eq(st[0].get("state"), "up", "state after the refused drain")
            ok("drain", "app", t1.addr, "--token", "s3cret-admin", admin=adm)
            out = ok("status", admin=adm, env={"SURGEGATE_TOKEN": "s3cret-admin"})
            check_eq(status_rows(out).get(t1.addr), "drain", "state after the admin's drain")


FULL_STATS = {
    "version": "0.1.0", "time": "2026-11-30T19:40:22.123Z", "uptime_s": 3725,
    "pools": [{
        "name": "api", "balance": "ewma", "queue_depth": 3, "queue_depth_max": 9,
        "inflight": 17, "backends_up": 1, "backends_total": 2, "requests": 1000, "rps": 12.5,
        "error_rate": 0.25, "queue_state": "standing", "queue_target_ms": 100,
        "latency_ms": {"total": {"10s": {"count": 120, "p50": 50.04, "p90": 80, "p95": 90.5,
                                         "p99": 250.4, "max": 300}}},
        "backends": [
            {"address": "10.0.0.1:80", "state": "up", "reason": "", "weight": 2,
             "maxconn": 100, "inflight": 16, "queue_depth": 2, "queue_depth_max": 5,
             "conns_active": 16, "conns_idle": 4, "requests": 900, "rps": 11.25,
             "error_rate": 0.0,
             "responses": {"1xx": 0, "2xx": 890, "3xx": 0, "4xx": 4, "5xx": 6},
             "errors": {"connect": 1, "timeout": 2, "reset": 0, "bad_response": 0},
             "since": "2026-11-30T19:00:00.000Z",
             "latency_ms": {"total": {"10s": {"p50": 7.25, "p95": 40, "p99": 120}}}},
            {"address": "10.0.0.2:80", "state": "down", "reason": "health check: timeout",
             "ejected": True}],
    }],
}


class _Fake(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *a):
        pass

    def _answer(self, code, obj, chunked=False):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 7):
                part = data[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        _Fake.seen.append((self.command, self.path, dict(self.headers.items()), body))
        p = self.path
        if p == "/api/v1/stats":
            return self._answer(200, FULL_STATS)
        if p.startswith("/api/v1/events"):
            return self._answer(200, [
                {"time": "2026-11-30T19:40:00.000Z", "type": "backend_down", "pool": "api",
                 "backend": "10.0.0.2:80", "reason": "health check: timeout"},
                {"time": "2026-11-30T19:40:01.000Z", "type": "admin", "weight": 3}],
                chunked=True)
        if p == "/api/v1/pools/boom/backends":
            self.send_response(500)
            self.send_header("Content-Length", "15")
            self.end_headers()
            self.wfile.write(b"boom: disk full")
            return
        if p == "/api/v1/pools/garbage/backends":
            self.wfile.write(b"this is not http\r\n\r\n")
            self.close_connection = True
            return
        if p == "/api/v1/pools/silent/backends":
            time.sleep(12)
            self.close_connection = True
            return
        if self.command == "GET" and p.endswith("/backends"):
            return self._answer(200, FULL_STATS["pools"][0]["backends"])
        return self._answer(200, {"address": "x", "state": "drain"})

    do_GET = do_POST = do_DELETE = _handle


class _FakeServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def stand_in():
    srv = _FakeServer(("127.0.0.1", 0), _Fake)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    adm = "127.0.0.1:%d" % srv.server_address[1]
    try:
        env = {"SURGEGATE_TOKEN": "tok-1"}
        cases = [
            (("add", "api", "10.0.0.9:8080", "--weight", "3", "--maxconn", "40"),
             "POST", "/api/v1/pools/api/backends",
             {"address": "10.0.0.9:8080", "weight": 3, "maxconn": 40}),
            (("add", "api", "10.0.0.9:8080"), "POST", "/api/v1/pools/api/backends",
             {"address": "10.0.0.9:8080"}),
            (("remove", "api", "10.0.0.9:8080"), "DELETE",
             "/api/v1/pools/api/backends/10.0.0.9:8080", None),
            (("drain", "api", "h/x y?z#w%:1"), "POST",
             "/api/v1/pools/api/backends/h%2Fx%20y%3Fz%23w%25:1/state", {"state": "drain"}),
            (("ready", "api", "10.0.0.1:80"), "POST", "/api/v1/pools/api/backends/10.0.0.1:80/state",
             {"state": "ready"}),
            (("maint", "api", "10.0.0.1:80"), "POST", "/api/v1/pools/api/backends/10.0.0.1:80/state",
             {"state": "maint"}),
            (("weight", "api", "10.0.0.1:80", "7"), "POST",
             "/api/v1/pools/api/backends/10.0.0.1:80/weight", {"weight": 7}),
            (("events",), "GET", "/api/v1/events", None),
            (("backends", "a b"), "GET", "/api/v1/pools/a%20b/backends", None),
        ]
        for args, method, path, body in cases:
            del _Fake.seen[:]
            ok(*args, admin=adm, env=env)
            check_eq(len(_Fake.seen), 1, "requests sent by %r" % (args,))
            m, p, h, b = _Fake.seen[0]
            check_eq((m, p), (method, path), "request line of %r" % (args,))
            hl = {k.lower(): v for k, v in h.items()}
            check_eq(hl.get("connection"), "close", "Connection header of %r" % (args,))
            check_eq(hl.get("host"), adm, "Host header of %r" % (args,))
            check_eq(hl.get("authorization"), "Bearer tok-1", "Authorization of %r" % (args,))
            if body is None:
                check(b in (b"",), "%r sent a body %r" % (args, b))
            else:
                check_eq(json.loads(b), body, "body of %r" % (args,))
                check_eq(hl.get("content-type"), "application/json", "Content-Type of %r"
                         % (args,))
        # --since 5m: the UTC time five minutes ago
        del _Fake.seen[:]
        out = ok("events", "--since", "5m", admin=adm)
        p = _Fake.seen[0][1]
        check(p.startswith("/api/v1/events?since="), "events --since 5m asked %r" % p)
        since = datetime.datetime.strptime(p.split("=", 1)[1], "%Y-%m-%dT%H:%M:%S.%fZ")
        ago = datetime.datetime.utcnow() - since
        check(295 <= ago.total_seconds() <= 310, "--since 5m sent %s, %s ago" % (since, ago))
        check_eq(out.splitlines(), [
            '2026-11-30T19:40:00.000Z backend_down pool=api backend=10.0.0.2:80 '
            'reason="health check: timeout"',
            "2026-11-30T19:40:01.000Z admin weight=3"], "events lines (chunked answer)")
        del _Fake.seen[:]
        ok("events", "--since", "2026-11-30T19:40:00+01:00", admin=adm)
        check_eq(_Fake.seen[0][1], "/api/v1/events?since=2026-11-30T19:40:00%2B01:00",
                 "events --since with a time zone")
        evs = json.loads(ok("--json", "events", admin=adm))
        check_eq(len(evs), 2, "events --json")
        # the full stats shape in the table
        out = ok("status", admin=adm)
        log("status of the full shape:\n" + out)
        lines = out.splitlines()
        check_eq(lines[0], "surgegate 0.1.0, up 1h02m05s, 2026-11-30T19:40:22.123Z", "status title")
        check_eq(lines[2].split(), ["api", "1/2", "up", "17", "3", "50.0", "250", "25.0", "12.5",
                                    "standing/100ms"], "pool row (queue standing: shedding)")
        check_eq(lines[3].split(), ["10.0.0.1:80", "up", "16", "2", "7.2", "120", "0.0", "11.2",
                                    "-"], "backend row with every field")
        check_eq(lines[4].split(), ["10.0.0.2:80", "down", "ejected", "-", "-", "-", "-", "-", "-",
                                    "-"], "backend row with fields missing")
        out = ok("backends", "api", admin=adm)
        lines = out.splitlines()
        check_eq(lines[0].split(), ["BACKEND", "STATE", "WEIGHT", "MAXCONN", "INFLIGHT", "QUEUE",
                                    "QMAX", "ACTIVE", "IDLE", "REQS", "5XX", "ERRORS", "P50",
                                    "ms", "P95", "ms", "P99", "ms", "ERR%", "RPS", "SINCE",
                                    "REASON"], "backends header")
        check_eq(lines[1].split(), ["10.0.0.1:80", "up", "2", "100", "16", "2", "5", "16", "4",
                                    "900", "6", "3", "7.2", "40.0", "120", "0.0", "11.2",
                                    "2026-11-30T19:00:00.000Z", "-"], "backends row")
        check(lines[2].split()[:4] == ["10.0.0.2:80", "down", "ejected", "-"]
              and lines[2].endswith(" health check: timeout"), "backends row %r" % lines[2])
        # errors
        rc, out, err = ctl("backends", "boom", admin=adm)
        check(rc == 1 and err.strip() == "surgectl: 500 Internal Server Error: boom: disk full",
              "500 with a text body: exit %d, stderr %r" % (rc, err))
        rc, out, err = ctl("backends", "garbage", admin=adm)
        check(rc == 1 and "answered oddly" in err, "not HTTP: exit %d, stderr %r" % (rc, err))
        t0 = time.monotonic()
        rc, out, err = ctl("backends", "silent", admin=adm, timeout=30)
        took = time.monotonic() - t0
        check(rc == 3 and "did not answer" in err and 9.5 <= took <= 12,
              "a server that never answers: exit %d after %.1fs, stderr %r" % (rc, took, err))
    finally:
        srv.shutdown()
        srv.server_close()


def main():
    if not os.access(SG_CTL, os.X_OK):
        fail("surgectl not built: %s (set SG_CTL)" % SG_CTL)
    no_daemon()
    unix_socket()
    tokens()
    stand_in()


run(main)
