#!/usr/bin/python3
"""surge.py: a traffic surge against HAProxy, nginx and surgegate, open loop.

The scenario of issue 16. Two app servers of fixed capacity: sg-testbackend
--workers 4 --delay 20 (4 requests in service at once, 20 ms each, the rest
wait in the server's own FIFO: 200 req/s each, 400 in all). In front of them,
one proxy at a time, each limited to 4 requests per server with a queue of
2 s:

  HAProxy    server maxconn 4, timeout queue 2s, option abortonclose, and
             /checkout first in the queue (http-request set-priority-class)
  nginx      upstream max_conns=4 (open source nginx has no queue: past the
             limit a request is refused at once with 502; its `queue`
             directive is used when `nginx -t` takes it)
  surgegate  maxconn = 4 per backend, timeouts.queue = "2s", the route
             /checkout with priority = "critical" (only when `surgegate -t`
             takes the key), otherwise its defaults
  surgegate+autoscale (scenario "autoscale")  the same, plus an autoscale
             group whose hooks are hooks/local-spawn, starting more servers
             of the same capacity (HAProxy and nginx cannot scale)

All of them one process and one thread (workers = 1, nbthread 1, one nginx
worker), each started fresh for its run and stopped after it; the backends
stay, and a run starts once they are idle again. The load is open loop: requests leave on a fixed schedule whether
or not the earlier ones were answered (no coordinated omission; latency is
counted from the scheduled time): 150 req/s for 5 s, 900 req/s for 20 s,
150 req/s for 5 s. Every request has a deadline of 2 s: one not answered by
then is abandoned (its connection closed) and counts as late. 10% of the
requests are GET /checkout (the critical class), the others GET /page; half
go on a new connection (Connection: close), half on a kept-alive one (taken
from the idle ones, a new one when none is idle, kept after the answer).

Printed per target: requests sent, answered 200 on time (share of all, and of
the most that can be answered on time: capacity x time / requests, the
"max share", 48.7% here), the same per class (critical, normal), p50 and p99
latency of the answered requests, refusals (a 5xx answer) with their p99
latency, late and failed (connection errors) requests; the proxy's CPU
time; for surgegate, the deepest pool queue and the backends up, from its
admin API every 250 ms, and for the autoscale run its scale decisions and
added backends from its journal. The generator's own lag (how late it sent
requests behind the schedule) and CPU per request are printed too: when its
lag p99 is above a few ms the machine was too busy to measure precisely.

Used as a benchmark (prints, never judges timings; bench.py --surge runs it),
and by ctest as bench_surge_smoke (--smoke: 1 s + 2 s + 1 s, checks only that
every target answered requests on time without connection errors).

Exit status: 0 when every target answered requests on time and at most 1% of
requests failed on connection errors, 1 otherwise (or a missing tool), 2 for
bad arguments.
"""

import argparse
import asyncio
import datetime
import glob
import json
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from this import
import bench  # noqa: E402
from bench import BenchError, Child, Terminated, log, render, write

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
LOCAL_SPAWN = os.path.join(REPO, "hooks", "local-spawn")

TARGETS = ("haproxy", "nginx", "surgegate", "surgegate-autoscale")
LABELS = {"haproxy": "HAProxy", "nginx": "nginx", "surgegate": "surgegate",
          "surgegate-autoscale": "surgegate + autoscale"}
CLASSES = ("critical", "normal")
PATHS = {"critical": "/checkout", "normal": "/page"}
IDLE_CAP = 1024       # kept-alive client connections held idle at most
DRAIN_TIMEOUT_S = 30  # for the backends to finish what a run left them


# ------------------------------------------------------------------ configs

def haproxy_conf(a, port, bports, nofile):
    servers = "\n".join(f"    server s{i + 1} 127.0.0.1:{p} maxconn {a.maxconn}"
                        for i, p in enumerate(bports))
    return f"""
global
    nbthread 1
    maxconn {bench.haproxy_maxconn(nofile)}

defaults
    mode http
    timeout connect 4s
    timeout http-request 5s
    timeout client 30s
    timeout server 30s
    timeout queue {a.queue_ms}ms
    timeout http-keep-alive 60s
    http-reuse always
    option abortonclose

frontend surge
    bind 127.0.0.1:{port}
    maxconn {bench.haproxy_maxconn(nofile)}
    # Lower classes leave the queue first.
    http-request set-priority-class int(-10) if {{ path_beg {PATHS['critical']} }}
    default_backend app

backend app
    balance roundrobin
{servers}
"""


def nginx_conf(a, tmp, port, bports, queue):
    servers = "\n".join(f"        server 127.0.0.1:{p} max_conns={a.maxconn};" for p in bports)
    q = f"        queue 10000 timeout={a.queue_ms}ms;\n" if queue else ""
    return bench.nginx_common(tmp, "nginx", 4096) + f"""
http {{
    access_log off;
{bench.nginx_temp_paths(tmp, "nginx")}
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    upstream app {{
        zone app 64k;
{servers}
{q}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 4s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


def surgegate_conf(a, tmp, port, bports, priority, autoscale=None):
    route = (f'routes = ( {{ path_prefix = "{PATHS["critical"]}"; pool = "app"; '
             f'priority = "critical"; }} );' if priority else "")
    backends = ",\n                         ".join(
        f'{{ address = "127.0.0.1:{p}"; maxconn = {a.maxconn}; }}' for p in bports)
    return f"""
workers = 1;
{a.sg_extra}
timeouts = {{ queue = "{a.queue_ms}ms"; }};
frontends = ( {{ name = "surge"; listen = "127.0.0.1:{port}"; default_pool = "app";
                {route} }} );
pools = ( {{ name = "app";
            {autoscale or ""}
            backends = ( {backends} ); }} );
admin = {{ listen = "unix:{tmp}/admin.sock"; }};
journal = {{ size = 5000; }};
"""


def autoscale_group(a, tmp):
    hook = os.path.join(tmp, "spawn-hook")
    return f"""health = {{ path = "/healthz"; interval = "500ms"; timeout = "400ms"; rise = 1; }};
            autoscale = {{ min = {a.backends}; max = {a.autoscale_max}; step = {a.backends};
                hook_timeout = "10s"; scale_up_cooldown = "5s"; scale_down_window = "600s";
                rules = ( {{ metric = "queue_depth"; above = 20.0; for = "1s"; }},
                          {{ metric = "inflight_per_backend"; below = 0.1; for = "600s"; }} );
                scale_up_hook = [ "{hook}" ]; scale_down_hook = [ "{hook}" ]; }};"""


def write_spawner(a, tmp):
    """The autoscale hook: hooks/local-spawn, told (SURGEGATE_BIN) to start
    sg-testbackend --demo-backend with the same capacity as the others."""
    backend = write(os.path.join(tmp, "surge-backend"),
                    "#!/bin/sh\nexec " + shlex.join([a.backend, "--workers", str(a.workers),
                                                     "--delay", str(a.service_ms)]) + ' "$@"\n',
                    0o755)
    # local-spawn adds its backends without a maxconn (unlimited): they would
    # take the whole surge into their own FIFOs, out of the proxy's queue
    # (and out of sight of the autoscale rule). The same limit as the others.
    write(os.path.join(tmp, "spawn-hook"),
          "#!/bin/sh\nSURGEGATE_BIN=" + shlex.quote(backend) + "\nexport SURGEGATE_BIN\n"
          "out=$(" + shlex.join([LOCAL_SPAWN, os.path.join(tmp, "spawn-state")]) + ")\n"
          "rc=$?\n"
          f"[ -z \"$out\" ] || printf '%s\\n' \"$out\" | sed 's/\"weight\":1}}/\"weight\":1,\"maxconn\":{a.maxconn}}}/g'\n"
          "exit $rc\n", 0o755)


def kill_spawned(tmp):
    """Stops every backend local-spawn recorded (only a --demo-backend)."""
    state = os.path.join(tmp, "spawn-state")
    if not os.path.isdir(state):
        return
    for name in os.listdir(state):
        if not (name.startswith("b.") and name[2:].isdigit()):
            continue
        try:
            with open(os.path.join(state, name)) as f:
                pid = int(f.read().split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"--demo-backend" not in f.read():
                    continue
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass


def config_ok(argv):
    try:
        r = subprocess.run(argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


# ------------------------------------------------------------ the schedule

def phases(a):
    """[(rate req/s, seconds)] of the run."""
    return [(a.base_rate, a.before), (a.surge_rate, a.surge), (a.base_rate, a.after)]


def schedule(a):
    """[(offset s, class, new connection?)]: every request of the run, evenly
    spaced within each phase, class and connection kind drawn from a seeded
    generator (the same for every target)."""
    rnd = random.Random(a.seed)
    out, t0 = [], 0.0
    for rate, secs in phases(a):
        n = int(round(rate * secs))
        for i in range(n):
            cls = "critical" if rnd.random() < a.critical_share else "normal"
            out.append((t0 + i / rate, cls, rnd.random() < a.new_conn_share))
        t0 += secs
    return out


def capacity(a):
    return a.backends * a.workers * 1000.0 / a.service_ms


def max_share(a):
    """The most that can be answered on time, as a share of all requests:
    capacity x time / requests, phase by phase (what issue 16 counts; a queue
    carried over from the surge into the next phase can add a little)."""
    cap = capacity(a)
    total = sum(int(round(r * s)) for r, s in phases(a))
    can = sum(min(r, cap) * s for r, s in phases(a))
    return can / total if total else 0.0


# ------------------------------------------------------------ the generator

class Gen:
    """The open-loop client: one asyncio loop, raw non-blocking sockets."""

    def __init__(self, a, port):
        self.a = a
        self.port = port
        self.idle = []      # kept-alive sockets, free for a request
        self.results = []   # (class, outcome, latency s, status)
        self.lags = []      # how late each request left, s
        self.loop = None

    async def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self.loop.sock_connect(s, ("127.0.0.1", self.port))
        except BaseException:
            s.close()
            raise
        return s

    async def exchange(self, s, req):
        """Sends req, reads one response. Returns (status, keep, got_any)."""
        await self.loop.sock_sendall(s, req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = await self.loop.sock_recv(s, 65536)
            if not chunk:
                raise ConnectionError("closed before the response head" if not buf
                                      else "closed inside the response head")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ConnectionError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection" and b"close" in value:
                close = True
        if chunked:
            while not body.endswith(b"0\r\n\r\n"):
                chunk = await self.loop.sock_recv(s, 65536)
                if not chunk:
                    raise ConnectionError("closed inside a chunked body")
                body += chunk
        elif length is not None:
            while len(body) < length:
                chunk = await self.loop.sock_recv(s, 65536)
                if not chunk:
                    raise ConnectionError("closed inside the response body")
                body += chunk
        else:
            close = True
            while True:
                chunk = await self.loop.sock_recv(s, 65536)
                if not chunk:
                    break
        return status, not close

    async def one(self, t_sched, cls, new_conn):
        path = PATHS[cls]
        hdr = "Connection: close\r\n" if new_conn else ""
        req = f"GET {path} HTTP/1.1\r\nHost: surge\r\n{hdr}\r\n".encode()
        s, reused = None, False
        outcome, status = "error", 0
        try:
            async with asyncio.timeout_at(t_sched + self.a.deadline):
                for attempt in (0, 1):
                    if not new_conn and self.idle and attempt == 0:
                        s, reused = self.idle.pop(), True
                    else:
                        s, reused = await self.connect(), False
                    try:
                        status, keep = await self.exchange(s, req)
                        break
                    except (ConnectionError, OSError):
                        s.close()
                        s = None
                        # A kept-alive connection the proxy closed while it
                        # was idle: sent again on a new one, as browsers do.
                        if not reused:
                            raise
                        self.resent += 1
                outcome = "ok" if status == 200 else ("refused" if status >= 500 else "other")
                if new_conn or not keep or len(self.idle) >= IDLE_CAP:
                    s.close()
                else:
                    self.idle.append(s)
                s = None
        except TimeoutError:
            outcome = "late"
        except (ConnectionError, OSError) as e:
            outcome = "error"
            self.error_detail = str(e) or type(e).__name__
        finally:
            if s is not None:
                s.close()
        self.results.append((cls, outcome, self.loop.time() - t_sched, status))
        if self.a.dump:
            self.dump.append((t_sched, cls, outcome, self.loop.time() - t_sched, status))

    async def sample_admin(self, sock_path, out, stop):
        """For surgegate: the pool's queue depth and backends up, every 0.25 s."""
        while not stop.is_set():
            try:
                r, w = await asyncio.open_unix_connection(sock_path)
                w.write(b"GET /api/v1/pools/app HTTP/1.1\r\nHost: admin\r\n"
                        b"Connection: close\r\n\r\n")
                data = await asyncio.wait_for(r.read(), 2)
                w.close()
                j = json.loads(data.partition(b"\r\n\r\n")[2])
                out.append((self.loop.time(), j.get("queue_depth"), j.get("backends_up")))
            except (OSError, ValueError, asyncio.TimeoutError):
                pass
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except asyncio.TimeoutError:
                pass

    async def run(self, plan, admin_sock=None):
        self.loop = asyncio.get_running_loop()
        self.error_detail = ""
        self.resent = 0
        self.dump = []
        samples, stop = [], asyncio.Event()
        sampler = (asyncio.create_task(self.sample_admin(admin_sock, samples, stop))
                   if admin_sock else None)
        tasks = set()
        start = self.loop.time() + 0.2
        i = 0
        while i < len(plan):
            # Every request whose time has come leaves now, then a sleep to
            # the next one: a sleep per request would add the loop's 1 ms
            # timer granularity to each and fall behind past 1,000 req/s.
            now = self.loop.time()
            while i < len(plan) and start + plan[i][0] <= now:
                off, cls, new_conn = plan[i]
                self.lags.append(now - (start + off))
                task = asyncio.create_task(self.one(start + off, cls, new_conn))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            if i < len(plan):
                await asyncio.sleep(max(0.0, start + plan[i][0] - self.loop.time()))
        while tasks:
            await asyncio.wait(list(tasks))
        stop.set()
        if sampler:
            await sampler
        for s in self.idle:
            s.close()
        self.idle = []
        if self.a.dump:
            with open(self.a.dump, "a") as f:
                for t, c, o, l, st in self.dump:
                    f.write(f"{t - start:.4f} {c} {o} {l * 1000:.1f} {st}\n")
        return [(t - start, q, up) for t, q, up in samples]


# ----------------------------------------------------------------- figures

def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(q / 100.0 * len(v)))]


def summarize(a, results, lags, samples):
    r = {"sent": len(results)}
    for cls in (None,) + CLASSES:
        rs = [x for x in results if cls is None or x[0] == cls]
        key = cls or "all"
        ok = [x[2] for x in rs if x[1] == "ok"]
        r[key] = {"sent": len(rs), "ok": len(ok),
                  "share": len(ok) / len(rs) if rs else None,
                  "p50_ms": pct(ok, 50) * 1000 if ok else None,
                  "p99_ms": pct(ok, 99) * 1000 if ok else None}
    refused = [x[2] for x in results if x[1] == "refused"]
    r["refused"] = len(refused)
    r["refused_p99_ms"] = pct(refused, 99) * 1000 if refused else None
    r["refused_p50_ms"] = pct(refused, 50) * 1000 if refused else None
    r["late"] = sum(1 for x in results if x[1] == "late")
    r["errors"] = sum(1 for x in results if x[1] == "error")
    r["other"] = sum(1 for x in results if x[1] == "other")
    r["statuses"] = sorted({x[3] for x in results if x[3]})
    r["lag_p99_ms"] = pct(lags, 99) * 1000 if lags else None
    r["lag_max_ms"] = max(lags) * 1000 if lags else None
    r["max_share"] = max_share(a)
    r["of_max"] = r["all"]["share"] / r["max_share"] if r["max_share"] and r["sent"] else None
    if samples:
        r["queue_max"] = max((q for _, q, _ in samples if q is not None), default=None)
        ups = [(t, up) for t, _, up in samples if up is not None]
        r["backends_max"] = max((up for _, up in ups), default=None)
        more = [t for t, up in ups if up > a.backends]
        r["scaled_at_s"] = more[0] if more else None
        # every 2 s: the queue and the backends up
        marks, nxt = [], 0.0
        for t, q, up in samples:
            if t >= nxt:
                marks.append(f"{t:.0f}s {q}/{up}")
                nxt = t - (t % 2.0) + 2.0
        r["timeline"] = " ".join(marks)
    return r


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def fmt_share(x):
    return "-" if x.get("share") is None else f"{100 * x['share']:.1f}% ({x['ok']}/{x['sent']})"


def report(a, results, markdown):
    rows = []
    for t, r in results:
        rows.append([LABELS[t], str(r["sent"]), fmt_share(r["all"]),
                     fmt(None if r["of_max"] is None else 100 * r["of_max"], ".1f") + "%",
                     fmt_share(r["critical"]), fmt_share(r["normal"]),
                     fmt(r["all"]["p50_ms"], ".1f"), fmt(r["all"]["p99_ms"], ".1f"),
                     str(r["refused"]), fmt(r["refused_p99_ms"], ".1f"), str(r["late"]),
                     str(r["errors"] + r["other"])])
    out = [render(["target", "sent", "on time (all)", "of max", "critical on time",
                   "normal on time", "p50 ms", "p99 ms", "refused (5xx)", "refusal p99 ms",
                   "late", "failed"], rows, markdown)]
    notes = []
    for t, r in results:
        extra = [f"statuses {','.join(map(str, r['statuses'])) or '-'}",
                 f"proxy CPU {fmt(r.get('proxy_cpu_s'), '.1f')} s",
                 f"refusal p50 {fmt(r.get('refused_p50_ms'), '.1f')} ms",
                 f"critical p50/p99 {fmt(r['critical']['p50_ms'], '.1f')}/"
                 f"{fmt(r['critical']['p99_ms'], '.1f')} ms",
                 f"{r.get('resent', 0)} resent on a new connection (a kept-alive one closed "
                 f"while idle)",
                 f"generator lag p99 {fmt(r['lag_p99_ms'], '.1f')} ms, "
                 f"max {fmt(r['lag_max_ms'], '.1f')} ms, CPU "
                 f"{fmt(r.get('gen_cpu_us'), '.0f')} us/request"]
        if "queue_max" in r:
            extra.append(f"pool queue max {fmt(r['queue_max'], 'd')}")
        if r.get("backends_max") is not None:
            extra.append(f"backends up max {r['backends_max']}"
                         + (f" (more than {a.backends} from {r['scaled_at_s']:.1f} s)"
                            if r.get("scaled_at_s") is not None else ""))
        if r.get("timeline"):
            extra.append(f"queue/backends up: {r['timeline']}")
        if r.get("scale_events"):
            extra.append("journal: " + ", ".join(f"{w} at {t:.1f} s"
                                                 for t, w in r["scale_events"]))
        if r.get("error_detail"):
            extra.append(f"last failure: {r['error_detail']}")
        notes.append(f"{LABELS[t]}: " + "; ".join(extra))
    prefix = "- " if markdown else "# "
    return "\n".join(out) + "\n\n" + "\n".join(prefix + n for n in notes)


def header(a, tools, argv, priority, nginx_queue):
    sched = ", ".join(f"{r:g} req/s for {s:g} s" for r, s in phases(a))
    versions = []
    if "haproxy" in tools:
        versions.append(bench.version_of([tools["haproxy"], "-v"]))
    if "nginx" in tools:
        versions.append(bench.version_of([tools["nginx"], "-v"]))
    if any(t.startswith("surgegate") for t in a.targets):
        commit = bench.version_of(["git", "-C", HERE, "describe", "--always", "--dirty"])
        versions.append(f"{bench.version_of([a.surgegate, '--version'])} (source {commit})")
    lines = [
        f"date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} CPUs "
        f"({bench.cpu_model()}), Linux {platform.release()}",
        "tools: " + "; ".join(versions),
        f"load: {sched}; deadline {a.deadline:g} s; {100 * a.critical_share:g}% on "
        f"{PATHS['critical']}; {100 * a.new_conn_share:g}% on new connections; seed {a.seed}",
        f"backends: {a.backends} x sg-testbackend --workers {a.workers} --delay {a.service_ms} "
        f"(capacity {capacity(a):g} req/s); per backend {a.maxconn} at once, queue "
        f"{a.queue_ms} ms; max share on time {100 * max_share(a):.1f}% (capacity x time / "
        f"requests)",
        "surgegate priority key: " + ("used (route /checkout priority \"critical\")" if priority
                                      else "not taken by this build's -t: no priority line"),
        "nginx queue directive: " + ("used" if nginx_queue else
                                     "not available (open source nginx): max_conns alone"),
        "command: tests/bench/surge.py " + shlex.join(argv)]
    p = "- " if a.markdown else "# "
    return "\n".join(p + x for x in lines)


# ------------------------------------------------------------------- runs

def start_backends(a, tmp, children):
    ports = bench.free_ports(a.backends)
    out = []
    for i, p in enumerate(ports):
        c = Child(f"backend{i + 1}", [a.backend, "--listen", f"127.0.0.1:{p}", "--name",
                                      f"app{i + 1}", "--workers", str(a.workers), "--delay",
                                      str(a.service_ms)], tmp)
        children.append(c)
        c.wait_port(p)
        out.append((c, p))
    return out


def admin_get(sock_path, path):
    """GET path on surgegate's admin socket; the decoded JSON, None on failure."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return json.loads(data.partition(b"\r\n\r\n")[2])
    except (OSError, ValueError):
        return None


def scale_events(sock_path, t0_wall):
    """[(seconds since the load started, what)] of the scale decisions and
    backends added or removed, from surgegate's journal."""
    ev = admin_get(sock_path, "/api/v1/events?limit=5000")
    out = []
    for e in ev if isinstance(ev, list) else []:
        kind = e.get("type")
        if kind not in ("scale_decision", "backend_added", "backend_removed", "hook_failed"):
            continue
        try:
            t = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError, AttributeError):
            continue
        if kind == "scale_decision":
            what = f"scale {e.get('action')} {e.get('current')}->{e.get('desired')}"
        elif kind == "hook_failed":
            what = "hook failed"
        else:
            what = f"{kind[8:]} {e.get('backend')}"
        out.append((t - t0_wall, what))
    return out


def backend_stats(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /__stats HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        _, body = bench.read_response(s)
    finally:
        s.close()
    return json.loads(body)


def wait_drained(backends):
    """Until no request is in service or waiting at any backend."""
    end = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < end:
        busy = 0
        for c, p in backends:
            c.check_alive()
            st = backend_stats(p)
            busy += st.get("in_service", 0) + st.get("waiting", 0)
        if busy == 0:
            return
        time.sleep(0.2)
    raise BenchError(f"the backends still had requests {DRAIN_TIMEOUT_S} s after a run")


def start_target(a, tools, t, rnd, tmp, bports, priority, nginx_queue, children):
    port = bench.free_ports(1)[0]
    d = os.path.join(tmp, f"{t}-{rnd}")
    os.mkdir(d)
    os.chmod(d, 0o755)
    if t == "haproxy":
        conf = write(f"{d}/haproxy.cfg", haproxy_conf(a, port, bports, a.nofile))
        argv = [tools["haproxy"], "-db", "-f", conf]
    elif t == "nginx":
        conf = write(f"{d}/nginx.conf", nginx_conf(a, d, port, bports, nginx_queue))
        argv = [tools["nginx"], "-p", d + "/", "-e", f"{d}/nginx-error.log", "-c", conf]
    else:
        auto = None
        if t == "surgegate-autoscale":
            write_spawner(a, d)
            auto = autoscale_group(a, d)
        conf = write(f"{d}/surgegate.conf", surgegate_conf(a, d, port, bports, priority, auto))
        argv = [a.surgegate, "-c", conf]
    child = Child(t, argv, d)
    children.append(child)
    child.wait_port(port)
    return child, port, d


def probe_features(a, tools, tmp):
    """(surgegate takes the priority key, nginx takes the queue directive)."""
    priority = nginx_queue = False
    if any(t.startswith("surgegate") for t in a.targets):
        d = os.path.join(tmp, "probe-sg")
        os.mkdir(d)
        conf = write(f"{d}/surgegate.conf", surgegate_conf(a, d, 1, [2], True))
        priority = config_ok([a.surgegate, "-t", "-c", conf])
        if not priority:
            # Refused for the priority key, and only for it.
            conf = write(f"{d}/plain.conf", surgegate_conf(a, d, 1, [2], False))
            if not config_ok([a.surgegate, "-t", "-c", conf]):
                out = subprocess.run([a.surgegate, "-t", "-c", conf], capture_output=True,
                                     text=True, timeout=20, stdin=subprocess.DEVNULL)
                raise BenchError(f"surgegate -t refuses the benchmark's config:\n"
                                 f"{out.stdout}{out.stderr}")
    if "nginx" in a.targets:
        d = os.path.join(tmp, "probe-nginx")
        os.mkdir(d)
        conf = write(f"{d}/nginx.conf", nginx_conf(a, d, 1, [2], True))
        nginx_queue = config_ok([tools["nginx"], "-t", "-p", d + "/", "-e",
                                 f"{d}/nginx-error.log", "-c", conf])
    return priority, nginx_queue


def run_all(a, tools, tmp, children, priority, nginx_queue):
    plan = schedule(a)
    backends = start_backends(a, tmp, children)
    bports = [p for _, p in backends]
    results = []
    for rnd in range(1, a.rounds + 1):
        for t in a.targets:
            wait_drained(backends)
            child, port, d = start_target(a, tools, t, rnd, tmp, bports, priority,
                                          nginx_queue, children)
            try:
                # One answered request through it first: the target works.
                status, _ = bench.http_get(port, PATHS["normal"])
                if status != 200:
                    raise BenchError(f"{LABELS[t]}: GET {PATHS['normal']} gave {status}")
                gen = Gen(a, port)
                admin = os.path.join(d, "admin.sock") if t.startswith("surgegate") else None
                cpu0, wall0 = time.process_time(), time.time()
                pcpu0 = bench.cpu_seconds(child.pid)
                samples = asyncio.run(gen.run(plan, admin))
                gen_cpu = time.process_time() - cpu0
                proxy_cpu = bench.cpu_seconds(child.pid) - pcpu0
                events = scale_events(admin, wall0 + 0.2) if t == "surgegate-autoscale" else []
                child.check_alive()
            finally:
                child.stop()
                children.remove(child)
                if t == "surgegate-autoscale":
                    kill_spawned(d)
            r = summarize(a, gen.results, gen.lags, samples)
            r["error_detail"] = gen.error_detail
            r["resent"] = gen.resent
            r["scale_events"] = events
            r["gen_cpu_us"] = gen_cpu * 1e6 / len(plan) if plan else None
            r["proxy_cpu_s"] = proxy_cpu
            log(f"round {rnd} {LABELS[t]}: on time {fmt_share(r['all'])}, critical "
                f"{fmt_share(r['critical'])}, p99 {fmt(r['all']['p99_ms'], '.1f')} ms, refused "
                f"{r['refused']} (p99 {fmt(r['refused_p99_ms'], '.1f')} ms), late {r['late']}, "
                f"failed {r['errors'] + r['other']}, lag p99 {fmt(r['lag_p99_ms'], '.1f')} ms")
            results.append((t, r))
    return results


def failures(results):
    out = []
    for t, r in results:
        if r["all"]["ok"] == 0:
            out.append(f"{LABELS[t]}: no request answered on time")
        bad = r["errors"] + r["other"]
        if bad > 0.01 * r["sent"]:
            out.append(f"{LABELS[t]}: {bad} of {r['sent']} requests failed "
                       f"(last: {r.get('error_detail') or 'a status other than 200 or 5xx'})")
    return out


def parse_args(argv):
    default_sg = os.path.join(REPO, "build", "surgegate")
    default_be = os.path.join(REPO, "build", "tests", "backend", "sg-testbackend")
    p = argparse.ArgumentParser(description="Surge scenarios, open loop (see the module text).")
    p.add_argument("--surgegate", default=default_sg, help="surgegate binary (%(default)s)")
    p.add_argument("--sg-extra", default="",
                   help="top-level settings added to surgegate's config, e.g. "
                        "'sched_batch = false;' (default: none)")
    p.add_argument("--backend", default=default_be, help="sg-testbackend binary (%(default)s)")
    p.add_argument("--haproxy", help="haproxy binary (default: from PATH or /usr/sbin)")
    p.add_argument("--nginx", help="nginx binary (default: from PATH or /usr/sbin)")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help="comma separated subset of %(default)s")
    p.add_argument("--scenario", choices=("static", "autoscale", "both"), default="both",
                   help="static: HAProxy, nginx, surgegate; autoscale: surgegate + autoscale; "
                        "both (default) in one round")
    p.add_argument("--rounds", type=int, default=1, help="rounds (default: %(default)s)")
    p.add_argument("--base-rate", type=float, default=150.0, help="req/s before and after")
    p.add_argument("--surge-rate", type=float, default=900.0, help="req/s during the surge")
    p.add_argument("--before", type=float, default=5.0, help="seconds at the base rate first")
    p.add_argument("--surge", type=float, default=20.0, help="seconds of surge")
    p.add_argument("--after", type=float, default=5.0, help="seconds at the base rate after")
    p.add_argument("--deadline", type=float, default=2.0, help="client deadline, seconds")
    p.add_argument("--critical-share", type=float, default=0.10,
                   help="share of requests on /checkout (default: %(default)s)")
    p.add_argument("--new-conn-share", type=float, default=0.5,
                   help="share of requests on a new connection (default: %(default)s)")
    p.add_argument("--backends", type=int, default=2, help="app servers (default: %(default)s)")
    p.add_argument("--workers", type=int, default=4, help="workers per app server")
    p.add_argument("--service-ms", type=int, default=20, help="ms per request per worker")
    p.add_argument("--maxconn", type=int, default=4, help="proxy's limit per backend")
    p.add_argument("--queue-ms", type=int, default=2000, help="proxy's queue timeout, ms")
    p.add_argument("--autoscale-max", type=int, default=6,
                   help="most backends for surgegate + autoscale (default: %(default)s)")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--smoke", action="store_true",
                   help="1 s + 2 s + 1 s: a few seconds per target, for the test suite")
    p.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--dump", metavar="FILE",
                   help="append one line per request to FILE: sent at (s from start), class, "
                        "outcome, latency ms, status")
    a = p.parse_args(argv)
    a.targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    bad = [t for t in a.targets if t not in TARGETS]
    if bad or not a.targets:
        p.error(f"unknown target(s) {','.join(bad)}: choose from {','.join(TARGETS)}")
    if a.scenario == "static":
        a.targets = [t for t in a.targets if t != "surgegate-autoscale"]
    elif a.scenario == "autoscale":
        a.targets = [t for t in a.targets if t == "surgegate-autoscale"]
    if not a.targets:
        p.error("no target left for this scenario")
    if a.smoke:
        a.before, a.surge, a.after = 1.0, 2.0, 1.0
    if (a.rounds < 1 or a.base_rate <= 0 or a.surge_rate <= 0 or min(a.before, a.after) < 0
            or a.surge <= 0 or a.deadline <= 0 or a.backends < 1 or a.workers < 1
            or a.service_ms < 1 or a.maxconn < 1 or a.queue_ms < 1
            or not 0 <= a.critical_share <= 1 or not 0 <= a.new_conn_share <= 1
            or a.autoscale_max < a.backends):
        p.error("rates, durations and counts must be positive, shares within 0..1, "
                "--autoscale-max at least --backends")
    a.surgegate = os.path.abspath(a.surgegate)
    a.backend = os.path.abspath(a.backend)
    return a


def main(argv):
    a = parse_args(argv)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, bench.on_signal)
    children, tmp = [], None
    try:
        tools = {}
        if "haproxy" in a.targets:
            tools["haproxy"] = bench.find_tool(a.haproxy, "haproxy", "/usr/sbin/haproxy")
        if "nginx" in a.targets:
            tools["nginx"] = bench.find_tool(a.nginx, "nginx", "/usr/sbin/nginx")
        if any(t.startswith("surgegate") for t in a.targets) and \
                not os.access(a.surgegate, os.X_OK):
            raise BenchError(f"surgegate binary not found at {a.surgegate}: build it "
                             f"(cmake --build build) or pass --surgegate PATH")
        if not os.access(a.backend, os.X_OK):
            raise BenchError(f"sg-testbackend not found at {a.backend}: build it or pass "
                             f"--backend PATH")
        if "surgegate-autoscale" in a.targets and not os.access(LOCAL_SPAWN, os.X_OK):
            raise BenchError(f"{LOCAL_SPAWN} is not executable")
        a.nofile = bench.raise_nofile()
        tmp = tempfile.mkdtemp(prefix="sg-surge-")
        os.chmod(tmp, 0o755)  # nginx workers may run as another user
        priority, nginx_queue = probe_features(a, tools, tmp)
        results = run_all(a, tools, tmp, children, priority, nginx_queue)
        print(header(a, tools, argv, priority, nginx_queue) + "\n")
        print(report(a, results, a.markdown))
        failed = failures(results)
        if failed:
            log("FAILED:\n  " + "\n  ".join(failed))
            return 1
        if a.smoke:
            log("smoke OK: every target answered requests on time without connection errors")
        return 0
    except BenchError as e:
        log(f"error: {e}")
        return 1
    except Terminated as e:
        log(f"stopped by signal {e.args[0]}")
        return 128 + e.args[0]
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for child in reversed(children):
            child.stop()
        if tmp:
            for d in glob.glob(os.path.join(tmp, "surgegate-autoscale-*")):
                kill_spawned(d)
            if a.keep:
                log(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
