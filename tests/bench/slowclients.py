#!/usr/bin/python3
"""slowclients.py: slow and hostile clients against surgegate and HAProxy,
side by side, while a normal client keeps asking.

For each proxy (freshly started, 2 workers / 2 threads, the same timeouts:
http_request 5s, client 30s, server 30s, one sg-testbackend behind it for
the attack's requests and one for the probe's, /probe routed to it, so the
probe measures the proxy, not a backend the attack keeps busy),
slowhttptest runs three attacks one after the other, each with N
connections (default 2,000):

  slowloris  (-H)  request heads that never end (a header line every 10 s)
  slow body  (-B)  POSTs whose body arrives a few bytes every 10 s
  slow read  (-X)  GET /download of 8 MB, read a few bytes at a time
                   through a tiny receive window

Throughout, a probe client makes a GET on a new connection every 20 ms
(2 s timeout) and the proxy's resident memory (VmRSS) is sampled every
250 ms. Printed per proxy and attack: probe answers (ok / sent), probe p50,
p99 and max, RSS peak; and RSS before the attacks (after 3 s of normal
traffic: wrk, 500 keep-alive clients) and after them (once slowhttptest is
gone and 10 s passed).

Used two ways: as a benchmark (python3 tests/bench/slowclients.py
--sg build/surgegate --backend build/tests/backend/sg-testbackend) that
prints the table, never judging it; and by the integration test
r07_slow_clients, which imports run_target() and asserts on surgegate's own
figures. Every process is our child and is stopped on the way out.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from bench import raise_nofile, rss_kib  # same directory: the shared helpers

ATTACKS = (
    ("slowloris", ["-H", "-i", "10", "-x", "24"]),
    ("slow body", ["-B", "-i", "10", "-s", "65536", "-x", "10"]),
    ("slow read", ["-X", "-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "1"]),
)
DOWNLOAD_BYTES = 8 * 1000 * 1000


def log(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def surgegate_conf(tmp, port, bport, pport):
    return """workers = 2;
timeouts = { connect = "4s"; http_request = "5s"; client = "30s";
             server = "30s"; queue = "10s"; keepalive = "60s"; };
frontends = ( { name = "web"; listen = "127.0.0.1:%d"; maxconn = 10000; default_pool = "app";
                routes = ( { path_prefix = "/probe"; pool = "probe"; } ); } );
pools = ( { name = "app"; backends = ( { address = "127.0.0.1:%d"; } ); },
          { name = "probe"; backends = ( { address = "127.0.0.1:%d"; } ); } );
admin = { listen = "unix:%s/admin.sock"; };
""" % (port, bport, pport, tmp)


def haproxy_conf(tmp, port, bport, pport):
    return """global
    nbthread 2
    maxconn 9000

defaults
    mode http
    timeout connect 4s
    timeout http-request 5s
    timeout client 30s
    timeout server 30s
    timeout queue 10s
    timeout http-keep-alive 60s

frontend web
    bind 127.0.0.1:%d
    maxconn 9000
    use_backend probe if { path_beg /probe }
    default_backend app

backend app
    server s1 127.0.0.1:%d check

backend probe
    server p1 127.0.0.1:%d check
""" % (port, bport, pport)


class Probe(threading.Thread):
    """A normal user: a GET on a new connection every `pace` seconds."""

    def __init__(self, port, pace=0.02, timeout=2.0):
        super().__init__(daemon=True)
        self.port, self.pace, self.timeout = port, pace, timeout
        self.results = []  # (ok, seconds)
        self.stop_evt = threading.Event()
        self.lock = threading.Lock()

    def one(self):
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as s:
                s.settimeout(self.timeout)
                s.sendall(b"GET /probe HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            ok = data.startswith(b"HTTP/1.1 200")
        except OSError:
            ok = False
        return ok, time.monotonic() - t0, t0

    def run(self):
        while not self.stop_evt.is_set():
            r = self.one()
            with self.lock:
                self.results.append(r)
            self.stop_evt.wait(self.pace)

    def take(self):
        with self.lock:
            out, self.results = self.results, []
        return out


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop_evt = threading.Event()

    def run(self):
        while not self.stop_evt.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            self.stop_evt.wait(0.25)

    def take_peak(self):
        p, self.peak = self.peak, rss_kib(self.pid)
        return p


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100.0 * (len(v) - 1))))]


def summarize(results):
    lat = [t for ok, t, _ in results if ok]
    if os.environ.get("SLOW_TRACE") and results:
        t0 = results[0][2]
        log("    slow probes: " + ", ".join("%.1fs:%.0fms%s" % (at - t0, t * 1000, "" if ok else "!")
                                           for ok, t, at in results if t > 0.05 or not ok))
    return {"sent": len(results), "ok": sum(1 for ok, _, _ in results if ok),
            "p50_ms": pct(lat, 50) * 1000 if lat else None,
            "p99_ms": pct(lat, 99) * 1000 if lat else None,
            "max_ms": max(t for _, t, _ in results) * 1000 if results else None}


def run_slowhttptest(tool, args, url, conns, length, rate):
    argv = [tool] + args + ["-c", str(conns), "-r", str(rate), "-l", str(length), "-p", "3",
                            "-u", url]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=length + 60,
                       stdin=subprocess.DEVNULL)
    return p.stdout.decode(errors="replace")


def run_target(name, proxy_argv_fn, backend_bin, slowhttptest, conns=2000, length=20, rate=400,
               settle=10.0, tmp=None, on_started=None):
    """Runs the three attacks against one proxy; returns a dict of figures:
    {"before_kib", "after_kib", "attacks": [{"name", "sent", "ok", "p50_ms",
    "p99_ms", "max_ms", "peak_kib"}...]}. proxy_argv_fn(tmp, port, bport)
    returns the proxy's argv (writing its config under tmp)."""
    own_tmp = tmp is None
    tmp = tmp or tempfile.mkdtemp(prefix="sg-slow-")
    os.makedirs(tmp, exist_ok=True)
    raise_nofile()
    procs = []
    try:
        bport, pport, port = free_port(), free_port(), free_port()
        for p, n in ((bport, "b1"), (pport, "probe")):
            be = subprocess.Popen([backend_bin, "--listen", "127.0.0.1:%d" % p, "--name", n],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(be)
            if not wait_port(p):
                raise RuntimeError("backend did not start")
        px = subprocess.Popen(proxy_argv_fn(tmp, port, bport, pport),
                              stdout=None if os.environ.get("SLOW_GDB") else subprocess.DEVNULL,
                              stderr=open(os.path.join(tmp, name + ".err"), "w"))
        procs.append(px)
        if not wait_port(port):
            raise RuntimeError("%s did not start" % name)
        if on_started:
            on_started(px, port)
        probe = Probe(port)
        # Warm up: normal traffic first (500 keep-alive clients for 3 s, as a
        # shop's proxy has had before an attack), so "before" is the memory
        # of a proxy in use, not of one that never saw a crowd.
        wrk = shutil.which("wrk")
        if wrk:
            subprocess.run([wrk, "-t", "2", "-c", "500", "-d", "3s",
                            "http://127.0.0.1:%d/warm" % port], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        for _ in range(50):
            probe.one()
        time.sleep(settle)
        before = rss_kib(px.pid)
        sampler = Sampler(px.pid)
        sampler.start()
        probe.start()
        out = {"before_kib": before, "attacks": []}
        for aname, args in ATTACKS:
            path = "/download?bytes=%d" % DOWNLOAD_BYTES if aname == "slow read" else "/sink"
            url = "http://127.0.0.1:%d%s" % (port, path)
            probe.take()
            sampler.take_peak()
            text = run_slowhttptest(slowhttptest, args, url, conns, length, rate)
            res = summarize(probe.take())
            res["name"] = aname
            res["peak_kib"] = sampler.take_peak()
            res["tool_tail"] = text.strip().splitlines()[-1:] if text.strip() else []
            out["attacks"].append(res)
            log("  %s %s: probe %d/%d ok, p50 %.1f ms, p99 %.1f ms, max %.1f ms; RSS peak %.1f MB"
                % (name, aname, res["ok"], res["sent"], res["p50_ms"] or -1, res["p99_ms"] or -1,
                   res["max_ms"] or -1, res["peak_kib"] / 1024.0))
            time.sleep(2.0)
        probe.stop_evt.set()
        probe.join(5)
        time.sleep(settle)
        sampler.stop_evt.set()
        out["after_kib"] = rss_kib(px.pid)
        if os.environ.get("SLOW_TRACE"):
            subprocess.run("awk '/^[0-9a-f]+-/{m=$0} /^Rss:/{ if ($2>300) print $2, m}' "
                           "/proc/%d/smaps" % px.pid, shell=True)
            if os.environ.get("SLOW_GDB"):
                subprocess.run(["gdb", "-p", str(px.pid), "-batch", "-ex",
                                "call (int)malloc_info(0, stdout)", "-ex", "call (int)fflush(0)"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out["alive"] = px.poll() is None
        log("  %s RSS before %.1f MB, after %.1f MB" % (name, before / 1024.0,
                                                      out["after_kib"] / 1024.0))
        return out
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def sg_argv(sg_bin):
    def fn(tmp, port, bport, pport):
        path = os.path.join(tmp, "sg.conf")
        with open(path, "w") as f:
            f.write(surgegate_conf(tmp, port, bport, pport))
        return [sg_bin, "-c", path]
    return fn


def haproxy_argv(hp_bin):
    def fn(tmp, port, bport, pport):
        path = os.path.join(tmp, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(haproxy_conf(tmp, port, bport, pport))
        return [hp_bin, "-db", "-f", path]
    return fn


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sg", default="build/surgegate")
    ap.add_argument("--backend", default="build/tests/backend/sg-testbackend")
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--slowhttptest", default=shutil.which("slowhttptest") or "slowhttptest")
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--length", type=int, default=20, help="seconds per attack")
    ap.add_argument("--proxies", default="surgegate,haproxy")
    a = ap.parse_args(argv)
    rows = []
    for name in a.proxies.split(","):
        fn = sg_argv(a.sg) if name == "surgegate" else haproxy_argv(a.haproxy)
        log("%s:" % name)
        r = run_target(name, fn, a.backend, a.slowhttptest, conns=a.conns, length=a.length)
        rows.append((name, r))
    log("")
    log("| proxy | attack | probe ok | p50 ms | p99 ms | max ms | RSS peak MB |")
    log("|---|---|---|---|---|---|---|")
    for name, r in rows:
        for x in r["attacks"]:
            log("| %s | %s | %d/%d | %.1f | %.1f | %.1f | %.1f |"
                % (name, x["name"], x["ok"], x["sent"], x["p50_ms"] or -1, x["p99_ms"] or -1,
                   x["max_ms"] or -1, x["peak_kib"] / 1024.0))
    log("")
    log("| proxy | RSS before MB | RSS after MB |")
    log("|---|---|---|")
    for name, r in rows:
        log("| %s | %.1f | %.1f |" % (name, r["before_kib"] / 1024.0, r["after_kib"] / 1024.0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
