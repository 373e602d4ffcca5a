#!/usr/bin/python3
"""bench.py: surgegate against HAProxy and nginx, same backend, same run.

One nginx (one worker, two loopback ports) is the fast backend: /small answers
"ok", /big answers 64 KiB. HAProxy, nginx and surgegate are each configured as
a one-thread reverse proxy in front of both backend ports; wrk is run against
every proxy in turn, round after round, so slow drift of the machine hits all
of them alike. A "direct" row (wrk straight at the backend) is the ceiling.

Scenarios:
  a  small responses over keep-alive, 64 connections
  b  a new connection per request (Connection: close), 64 connections
  c  64 KiB responses over keep-alive, 64 connections
  d  small responses, 1000 concurrent keep-alive connections
  e  10,000 idle keep-alive client connections (each made one request):
     resident memory (VmRSS) of each proxy, freshly restarted before it

--surge runs the surge scenarios of tests/bench/surge.py instead (open-loop
load at fixed rates through a surge, against app servers of fixed capacity;
HAProxy, nginx and surgegate, and surgegate with autoscale): every other
argument goes to it (see surge.py --help).

Idle upstream connections are kept alike: HAProxy keeps them all (its
default with http-reuse always), nginx caches 1024 (`keepalive 1024`) and
surgegate 512 per backend (`max_idle = 512`, 1024 for the two), so that (d)
measures proxying, not reconnecting to the backend.

Medians over rounds are printed per proxy, with the ratios surgegate/HAProxy
and surgegate/nginx (medians of the per-round ratios). Each load row also
gives the CPU time (user + system, from /proc) the target's processes used
per request: on a machine the benchmark saturates, wrk and the backend take
most of the cores, so that is a steadier measure of the proxy's own cost
than req/s, which moves with everything else. --smoke runs every
scenario briefly and checks only that each proxy served its requests without
errors; no timing is ever judged here.

Every process runs in the foreground as our child, in a private temporary
directory holding its config, pid and log files, on loopback ports picked free
by the kernel, and is stopped on the way out (normal exit, exception, SIGINT,
SIGTERM or SIGHUP; children also get SIGTERM should this script be killed).

Exit status: 0 when every target served requests with no errors, 1 otherwise
(including a missing tool), 2 for bad arguments.
"""

import argparse
import ctypes
import datetime
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIG_SIZE = 64 * 1024
SMALL_BODY = b"ok"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
WANT_NOFILE = 65536

SCENARIOS = {
    "a": {"title": "small, keep-alive, 64 conns", "path": "/small", "conns": 64, "close": False},
    "b": {"title": "new conn per request, 64 conns", "path": "/small", "conns": 64, "close": True},
    "c": {"title": "64 KiB, keep-alive, 64 conns", "path": "/big", "conns": 64, "close": False},
    "d": {"title": "small, keep-alive, 1000 conns", "path": "/small", "conns": 1000,
          "close": False},
    "e": {"title": "idle keep-alive conns: proxy RSS", "idle": 10000},
}
# Smoke mode: the same scenarios, scaled down to a few seconds in all.
SMOKE_SIZES = {"d": {"conns": 200, "title": "small, keep-alive, 200 conns"}, "e": {"idle": 200}}

PROXIES = ("haproxy", "nginx", "surgegate")
LABELS = {"direct": "direct (ceiling)", "haproxy": "HAProxy", "nginx": "nginx",
          "surgegate": "surgegate"}

# wrk reports its own numbers from done(): one parseable line, latencies in us.
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "SGBENCH requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


class BenchError(Exception):
    """A failure that ends the run with a message (exit status 1)."""


class Terminated(BaseException):
    """Raised from a signal handler so that every finally block runs."""


def log(msg):
    try:
        print(f"bench: {msg}", file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr gone (a closed pipe): the run and its cleanup go on


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    # Runs in the child between fork and exec: if this script dies without
    # cleaning up (SIGKILL, ctest timeout), the kernel sends SIGTERM.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def descendants(pid):
    """Pids of every live process below pid (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cpu_seconds(pid):
    """User + system CPU time of pid plus all its descendants, in seconds
    (every thread of a process is in its /proc/PID/stat)."""
    total = 0
    for p in [pid] + descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    """VmRSS of pid plus all its descendants, in KiB (nginx: master + worker)."""
    total = 0
    for p in [pid] + descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Child:
    """A foreground server process whose output goes to a log file."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.log_path = os.path.join(workdir, f"{name}.out")
        self.proc = None
        self._spawn()

    def _spawn(self):
        with open(self.log_path, "ab") as out:
            try:
                self.proc = subprocess.Popen(self.argv, cwd=self.workdir,
                                             stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT,
                                             preexec_fn=_child_setup, start_new_session=True)
            except OSError as e:
                raise BenchError(f"cannot start {self.name} ({self.argv[0]}): {e}")

    def restart(self, port):
        """A fresh process with the same command line, listening again."""
        self.stop()
        self._spawn()
        self.wait_port(port)

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self):
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with status {self.proc.returncode}; "
                             f"its output:\n{self.log_tail()}")

    def wait_port(self, port):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.name} did not listen on port {port} within "
                                     f"{READY_TIMEOUT_S:.0f}s; its output:\n{self.log_tail()}")
                time.sleep(0.05)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        below = descendants(self.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"{self.name} ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s; killing it")
            self.proc.kill()
            self.proc.wait()
        # A worker left behind by a master that died first.
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def free_ports(n):
    """n distinct loopback ports that are free right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(WANT_NOFILE, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        # Not allowed to raise the hard limit: go as far as it lets us.
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------ configs

def nginx_common(tmp, name, nofile):
    return f"""
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log warn;
events {{ worker_connections {nofile - 64}; multi_accept on; }}
"""


def nginx_temp_paths(tmp, name):
    return "\n".join(f"    {kind}_temp_path {tmp}/{name}-{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def backend_conf(tmp, nofile, p1, p2):
    return nginx_common(tmp, "backend", nofile) + f"""
http {{
    access_log off;
{nginx_temp_paths(tmp, "backend")}
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{p1} backlog=4096;
        listen 127.0.0.1:{p2} backlog=4096;
        root {tmp}/www;
        location = /small {{ default_type text/plain; return 200 "{SMALL_BODY.decode()}"; }}
        location = /big {{ default_type application/octet-stream; }}
    }}
}}
"""


def nginx_proxy_conf(tmp, nofile, port, p1, p2):
    return nginx_common(tmp, "nginx", nofile) + f"""
http {{
    access_log off;
{nginx_temp_paths(tmp, "nginx")}
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    upstream b {{
        server 127.0.0.1:{p1};
        server 127.0.0.1:{p2};
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 4s;
            proxy_read_timeout 30s;
            proxy_buffers 16 8k;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
"""


def haproxy_maxconn(nofile):
    # HAProxy reserves two fds per connection (client + server side) and
    # refuses to start when maxconn does not fit in the fd limit it can get.
    return min(20000, (nofile - 64) // 2)


def haproxy_conf(tmp, nofile, port, p1, p2):
    return f"""
global
    nbthread 1
    maxconn {haproxy_maxconn(nofile)}

defaults
    mode http
    timeout connect 4s
    timeout http-request 5s
    timeout client 30s
    timeout server 30s
    timeout queue 10s
    timeout http-keep-alive 60s
    http-reuse always

frontend bench
    bind 127.0.0.1:{port}
    maxconn 20000
    default_backend b

backend b
    balance roundrobin
    server s1 127.0.0.1:{p1}
    server s2 127.0.0.1:{p2}
"""


def surgegate_conf(tmp, nofile, port, p1, p2, extra=""):
    return f"""
workers = 1;
{extra}
timeouts = {{ connect = "4s"; http_request = "5s"; client = "30s";
             server = "30s"; queue = "10s"; keepalive = "60s"; }};
frontends = ( {{ name = "bench"; listen = "127.0.0.1:{port}"; maxconn = {haproxy_maxconn(nofile)};
                default_pool = "b"; }} );
# No health checks, as HAProxy's servers above have no `check` and nginx has
# no active checks (and the backend answers only /small and /big).
pools = ( {{ name = "b"; balance = "roundrobin"; max_idle = 512;
            health = {{ enabled = false; }};
            backends = ( {{ address = "127.0.0.1:{p1}"; }},
                         {{ address = "127.0.0.1:{p2}"; }} ); }} );
admin = {{ listen = "unix:{tmp}/admin.sock"; }};
"""


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# ------------------------------------------------------------------ clients

def http_get(port, path, timeout=5.0):
    """One GET over a fresh connection; returns (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        status, body = read_response(s)
    return status, body


def read_response(s):
    """Reads one Content-Length-framed response from a blocking socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("connection closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise OSError("response without Content-Length")
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("connection closed inside the response body")
        body += chunk
    return status, body[:length]


def check_target(name, port):
    """Both locations answer with the right bodies through this target."""
    for path, want in (("/small", SMALL_BODY), ("/big", None)):
        try:
            status, body = http_get(port, path)
        except OSError as e:
            raise BenchError(f"{LABELS[name]}: GET {path} failed: {e}")
        ok = status == 200 and (body == want if want is not None else len(body) == BIG_SIZE)
        if not ok:
            raise BenchError(f"{LABELS[name]}: GET {path} gave status {status}, "
                             f"{len(body)} bytes")


def run_wrk(args, tmp, port, scen, duration):
    argv = [args.wrk, "-t", str(min(args.wrk_threads, scen["conns"])),
            "-c", str(scen["conns"]), "-d", f"{duration}s", "--timeout", "5s",
            "-s", os.path.join(tmp, "report.lua")]
    if scen["close"]:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}{scen['path']}")
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                             stdin=subprocess.DEVNULL, preexec_fn=_child_setup)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish: {' '.join(argv)}")
    m = re.search(r"^SGBENCH (.*)$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise BenchError(f"wrk failed ({out.returncode}): {' '.join(argv)}\n"
                         f"{out.stdout}{out.stderr}")
    v = {k: int(x) for k, x in (kv.split("=") for kv in m.group(1).split())}
    errors = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
    return {
        "rps": v["requests"] / (v["duration_us"] / 1e6) if v["duration_us"] else 0.0,
        "p50_ms": v["p50_us"] / 1000.0,
        "p99_ms": v["p99_us"] / 1000.0,
        "requests": v["requests"],
        "errors": errors,
        "error_detail": ", ".join(f"{k} {v[k]}" for k in
                                  ("connect", "read", "write", "status", "timeout") if v[k]),
    }


def run_idle(port, server_pid, n):
    """Opens n keep-alive connections that each made one request, then
    measures the proxy's RSS. Returns the result dict."""
    req = b"GET /small HTTP/1.1\r\nHost: bench\r\n\r\n"
    before = rss_kib(server_pid)
    socks, errors, detail = [], 0, ""
    batch = 250  # below every listen backlog, so no connect waits on SYN retries
    try:
        for start in range(0, n, batch):
            group = []
            for _ in range(min(batch, n - start)):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(req)
                group.append(s)
            socks.extend(group)
            for s in group:
                status, body = read_response(s)
                if status != 200 or body != SMALL_BODY:
                    errors += 1
                    detail = f"status {status}"
        time.sleep(1.0)  # let the proxy settle (idle pools, deferred frees)
        after = rss_kib(server_pid)
        # Every connection must still be open: a readable socket here means
        # the proxy closed it (or sent something unasked).
        for s in socks:
            s.setblocking(False)
            try:
                s.recv(1, socket.MSG_PEEK)
                errors += 1
                detail = "connection closed by the proxy while idle"
            except BlockingIOError:
                pass
            except OSError as e:
                errors += 1
                detail = str(e)
    except OSError as e:
        raise BenchError(f"opening idle connection {len(socks) + 1} of {n} failed: {e}")
    finally:
        for s in socks:
            s.close()
    return {"rss_before_kib": before, "rss_kib": after, "conns": n,
            "per_conn_kib": (after - before) / n, "requests": n, "errors": errors,
            "error_detail": detail}


# ------------------------------------------------------------------ reports

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio_median(results, scen, num, den, key):
    """Median over rounds of results[num][r][key] / results[den][r][key]."""
    a, b = results[scen].get(num), results[scen].get(den)
    if not a or not b:
        return None
    rs = [x[key] / y[key] for x, y in zip(a, b) if y.get(key) and x.get(key) is not None]
    return statistics.median(rs) if rs else None


def fmt_num(v, spec):
    return "-" if v is None else format(v, spec)


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}"


def render(headers, rows, markdown, left=1):
    """A table; the first `left` columns are text, the others numbers."""
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join("---" if i < left else "---:" for i in range(len(headers))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i < left else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] +
                     [line(r) for r in rows])


def report(results, targets, scen_keys, scen_defs, rounds, markdown):
    out = []
    load = [k for k in scen_keys if "idle" not in scen_defs[k]]
    if load:
        rows = []
        for k in load:
            for t in targets:
                rs = results[k].get(t)
                if not rs:
                    continue
                row = [f"{k}: {scen_defs[k]['title']}" if t == targets[0] else "",
                       LABELS[t],
                       fmt_num(med([r["rps"] for r in rs]), ",.0f"),
                       fmt_num(med([r["p50_ms"] for r in rs]), ".2f"),
                       fmt_num(med([r["p99_ms"] for r in rs]), ".2f"),
                       fmt_num(med([r.get("cpu_us") for r in rs]), ".1f"),
                       str(sum(r["errors"] for r in rs))]
                rows.append(row)
        out.append(render(["scenario", "target", "req/s", "p50 ms", "p99 ms", "CPU us/req",
                           "errors"], rows, markdown, left=2))
        if "surgegate" in targets and ("haproxy" in targets or "nginx" in targets):
            rows = []
            for k in load:
                rows.append([k,
                             fmt_ratio(ratio_median(results, k, "surgegate", "haproxy", "rps")),
                             fmt_ratio(ratio_median(results, k, "surgegate", "nginx", "rps")),
                             fmt_ratio(ratio_median(results, k, "surgegate", "haproxy",
                                                    "p99_ms")),
                             fmt_ratio(ratio_median(results, k, "surgegate", "nginx",
                                                    "p99_ms")),
                             fmt_ratio(ratio_median(results, k, "surgegate", "haproxy",
                                                    "cpu_us")),
                             fmt_ratio(ratio_median(results, k, "surgegate", "nginx",
                                                    "cpu_us"))])
            out.append(render(["scenario", "req/s sg/HAProxy", "req/s sg/nginx",
                               "p99 sg/HAProxy", "p99 sg/nginx", "CPU/req sg/HAProxy",
                               "CPU/req sg/nginx"], rows, markdown))
    if "e" in scen_keys:
        rows = []
        for t in targets:
            rs = results["e"].get(t)
            if not rs:
                continue
            rows.append([LABELS[t],
                         fmt_num(med([r["rss_before_kib"] / 1024 for r in rs]), ".1f"),
                         fmt_num(med([r["rss_kib"] / 1024 for r in rs]), ".1f"),
                         fmt_num(med([r["per_conn_kib"] for r in rs]), ".2f"),
                         fmt_ratio(ratio_median(results, "e", t, "haproxy", "rss_kib")
                                   if "haproxy" in results["e"] else None),
                         fmt_ratio(ratio_median(results, "e", t, "nginx", "rss_kib")
                                   if "nginx" in results["e"] else None),
                         str(sum(r["errors"] for r in rs))])
        n = scen_defs["e"]["idle"]
        out.append(render([f"e: {n:,} idle conns", "RSS before MiB", "RSS with conns MiB",
                           "KiB/conn", "RSS vs HAProxy", "RSS vs nginx", "errors"],
                          rows, markdown))
    return "\n\n".join(out)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def version_of(argv, any_status=False):
    """First line a tool prints about its version, "?" when it cannot say
    (wrk prints its version with the usage text and exits 1: any_status)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text and (out.returncode == 0 or any_status) else "?"


# --------------------------------------------------------------------- main

def find_tool(explicit, name, fallback):
    path = explicit or shutil.which(name) or fallback
    if not path or not os.access(path, os.X_OK):
        raise BenchError(f"{name} not found (looked for {explicit or fallback}): "
                         f"run packaging/install-deps --tests")
    return path


def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    default_sg = os.path.normpath(os.path.join(here, "..", "..", "build", "surgegate"))
    p = argparse.ArgumentParser(
        description="Benchmark surgegate against HAProxy and nginx (see the module text).")
    p.add_argument("--surgegate", default=default_sg,
                   help="surgegate binary (default: %(default)s)")
    p.add_argument("--sg-extra", default="",
                   help="top-level settings added to surgegate's config, e.g. "
                        "'sched_batch = false;' (default: none)")
    p.add_argument("--haproxy", help="haproxy binary (default: from PATH or /usr/sbin)")
    p.add_argument("--nginx", help="nginx binary (default: from PATH or /usr/sbin)")
    p.add_argument("--wrk", help="wrk binary (default: from PATH)")
    p.add_argument("--proxies", default=",".join(PROXIES),
                   help="proxies to measure, comma separated (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default: %(default)s)")
    p.add_argument("--duration", type=int, default=10,
                   help="seconds per wrk run (default: %(default)s)")
    p.add_argument("--scenarios", default="a,b,c,d,e",
                   help="comma separated subset of a,b,c,d,e (default: %(default)s)")
    p.add_argument("--idle-conns", type=int, help="connections for scenario e (default 10000)")
    p.add_argument("--wrk-threads", type=int, default=min(2, os.cpu_count() or 1),
                   help="wrk threads (default: %(default)s)")
    p.add_argument("--smoke", action="store_true",
                   help="a few seconds in all: 1 round, 1 s runs, fewer connections")
    p.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--surge", action="store_true",
                   help="run the surge scenarios (surge.py) instead; the other arguments go "
                        "to it: see tests/bench/surge.py --help")
    a = p.parse_args(argv)
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    bad = [s for s in a.scenarios if s not in SCENARIOS]
    if bad or not a.scenarios:
        p.error(f"unknown scenario(s) {','.join(bad)}: choose from {','.join(SCENARIOS)}")
    a.proxies = [s.strip() for s in a.proxies.split(",") if s.strip()]
    bad = [s for s in a.proxies if s not in PROXIES]
    if bad or not a.proxies:
        p.error(f"unknown proxy(ies) {','.join(bad)}: choose from {','.join(PROXIES)}")
    # Servers run in a temporary directory: a relative path must not change meaning.
    a.surgegate = os.path.abspath(a.surgegate)
    if a.smoke:
        a.rounds, a.duration = 1, 1
    if a.rounds < 1 or a.duration < 1:
        p.error("--rounds and --duration must be at least 1")
    return a


def on_signal(signum, frame):
    # Further signals must not interrupt the cleanup this one starts.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


def prepare_dir(tmp):
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    www = os.path.join(tmp, "www")
    os.mkdir(www)
    os.chmod(www, 0o755)
    with open(os.path.join(www, "big"), "wb") as f:
        f.write(bytes((i * 7 + 3) & 0xFF for i in range(BIG_SIZE)))
    os.chmod(os.path.join(www, "big"), 0o644)
    write(os.path.join(tmp, "report.lua"), WRK_LUA)


def start_servers(args, tools, tmp, nofile, children):
    """Starts the backend and every proxy; returns (ports, servers) keyed by
    target name. Each started Child is appended to children at once, so the
    caller stops it whatever happens next."""
    p1, p2, *proxy_ports = free_ports(2 + len(args.proxies))
    ports = {"direct": p1}
    ports.update(zip(args.proxies, proxy_ports))

    nginx = tools["nginx"]
    conf = write(f"{tmp}/backend.conf", backend_conf(tmp, nofile, p1, p2))
    backend = Child("backend", [nginx, "-p", tmp + "/", "-e", f"{tmp}/backend-error.log",
                                "-c", conf], tmp)
    children.append(backend)
    backend.wait_port(p1)
    backend.wait_port(p2)

    servers = {"direct": backend}
    for name in args.proxies:
        port = ports[name]
        if name == "haproxy":
            conf = write(f"{tmp}/haproxy.cfg", haproxy_conf(tmp, nofile, port, p1, p2))
            argv = [tools["haproxy"], "-db", "-f", conf, "-p", f"{tmp}/haproxy.pid"]
        elif name == "nginx":
            conf = write(f"{tmp}/nginx.conf", nginx_proxy_conf(tmp, nofile, port, p1, p2))
            argv = [nginx, "-p", tmp + "/", "-e", f"{tmp}/nginx-error.log", "-c", conf]
        else:
            conf = write(f"{tmp}/surgegate.conf", surgegate_conf(tmp, nofile, port, p1, p2,
                                                                   args.sg_extra))
            argv = [args.surgegate, "-c", conf]
        child = Child(name, argv, tmp)
        children.append(child)
        child.wait_port(port)
        servers[name] = child

    for name in ["direct"] + list(args.proxies):
        check_target(name, ports[name])
    return ports, servers


def run_rounds(args, tmp, scen_defs, targets, ports, servers):
    """Every scenario against every target, target after target, for each
    round. Returns results[scenario][target] = [one dict per round]."""
    results = {k: {} for k in args.scenarios}
    for rnd in range(1, args.rounds + 1):
        for k in args.scenarios:
            scen = scen_defs[k]
            for t in targets:
                if "idle" in scen and t == "direct":
                    continue  # the backend is not a proxy: no RSS row
                servers[t].check_alive()
                if "idle" in scen:
                    # Measured on a fresh process: what the load scenarios
                    # left in its heap would hide the cost per connection.
                    servers[t].restart(ports[t])
                    r = run_idle(ports[t], servers[t].pid, scen["idle"])
                    log(f"round {rnd} {k} {LABELS[t]}: RSS {r['rss_before_kib']} -> "
                        f"{r['rss_kib']} KiB, errors {r['errors']}")
                else:
                    cpu0 = cpu_seconds(servers[t].pid)
                    r = run_wrk(args, tmp, ports[t], scen, args.duration)
                    cpu = cpu_seconds(servers[t].pid) - cpu0
                    r["cpu_us"] = cpu * 1e6 / r["requests"] if r["requests"] else None
                    log(f"round {rnd} {k} {LABELS[t]}: {r['rps']:,.0f} req/s "
                        f"p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms "
                        f"cpu {fmt_num(r['cpu_us'], '.1f')} us/req errors {r['errors']}")
                servers[t].check_alive()
                results[k].setdefault(t, []).append(r)
    return results


def header(args, tools, argv, load_start):
    versions = [version_of([tools[n], "-v"]) for n in ("haproxy", "nginx") if n in tools]
    wrk = version_of([tools["wrk"], "-v"], any_status=True)
    versions.append(wrk.split(" Copyright")[0].strip())
    if "surgegate" in args.proxies:
        sg = version_of([args.surgegate, "--version"])
        here = os.path.dirname(os.path.abspath(__file__))
        commit = version_of(["git", "-C", here, "describe", "--always", "--dirty"])
        versions.append(f"{sg} (source {commit})" if commit != "?" else sg)
    lines = [f"date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} CPUs "
             f"({cpu_model()}), Linux {platform.release()}",
             "tools: " + "; ".join(versions),
             f"rounds: {args.rounds}, {args.duration} s per wrk run, {args.wrk_threads} wrk "
             f"threads; medians over rounds; load average at start {load_start:.2f}, "
             f"at end {os.getloadavg()[0]:.2f}",
             "command: tests/bench/bench.py " + shlex.join(argv)]
    if args.markdown:
        return "\n".join(f"- {x}" for x in lines)
    return "\n".join(f"# {x}" for x in lines)


def failures(results):
    failed = []
    for k, per in results.items():
        for t, rs in per.items():
            if sum(r["requests"] for r in rs) == 0:
                failed.append(f"{k}/{LABELS[t]}: served no requests")
            for r in rs:
                if r["errors"]:
                    failed.append(f"{k}/{LABELS[t]}: {r['errors']} errors ({r['error_detail']})")
    return failed


def main(argv):
    if "--surge" in argv:
        sys.dont_write_bytecode = True  # no __pycache__ in the source tree
        import surge  # the open-loop surge scenarios, a sibling program
        return surge.main([x for x in argv if x != "--surge"])
    args = parse_args(argv)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    scen_defs = {k: dict(v) for k, v in SCENARIOS.items()}
    if args.smoke:
        for k, v in SMOKE_SIZES.items():
            scen_defs[k].update(v)
    if args.idle_conns:
        scen_defs["e"]["idle"] = args.idle_conns

    children, tmp = [], None
    try:
        tools = {"nginx": find_tool(args.nginx, "nginx", "/usr/sbin/nginx"),
                 "wrk": find_tool(args.wrk, "wrk", "/usr/bin/wrk")}
        args.wrk = tools["wrk"]
        if "haproxy" in args.proxies:
            tools["haproxy"] = find_tool(args.haproxy, "haproxy", "/usr/sbin/haproxy")
        if "surgegate" in args.proxies and not os.access(args.surgegate, os.X_OK):
            raise BenchError(f"surgegate binary not found at {args.surgegate}: build it "
                             f"(cmake --build build) or pass --surgegate PATH")

        nofile = raise_nofile()
        need = max(scen_defs[k].get("idle", scen_defs[k].get("conns", 0))
                   for k in args.scenarios) + 256
        if nofile < need:
            raise BenchError(f"RLIMIT_NOFILE is {nofile}, need {need}: raise it (ulimit -n)")
        if "e" in args.scenarios and "haproxy" in args.proxies:
            fit = haproxy_maxconn(nofile) - 64
            if scen_defs["e"]["idle"] > fit:
                log(f"the fd limit ({nofile}, not raisable here) lets HAProxy hold only "
                    f"{fit} connections: scenario e uses {fit} idle connections for all proxies")
                scen_defs["e"]["idle"] = fit

        tmp = tempfile.mkdtemp(prefix="sg-bench-")
        prepare_dir(tmp)
        ports, servers = start_servers(args, tools, tmp, nofile, children)
        # The ceiling row costs time and tells a smoke test nothing new.
        targets = ([] if args.smoke else ["direct"]) + list(args.proxies)
        log("targets ready: " + ", ".join(f"{LABELS[t]} :{ports[t]}" for t in targets))

        load_start = os.getloadavg()[0]
        results = run_rounds(args, tmp, scen_defs, targets, ports, servers)
        print(header(args, tools, argv, load_start) + "\n")
        print(report(results, targets, args.scenarios, scen_defs, args.rounds, args.markdown))

        failed = failures(results)
        if failed:
            log("FAILED:\n  " + "\n  ".join(failed))
            return 1
        if args.smoke:
            log("smoke OK: every target served requests without errors")
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
            if args.keep:
                log(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
