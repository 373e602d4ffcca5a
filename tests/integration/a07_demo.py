"""a07: `surgegate --demo` teaches failover (issue 17), from the binary alone.

(A) A busy port: with the proxy's port (then the admin API's, port + 1)
    held by another listener, `surgegate --demo --demo-port P` exits 1 at
    once with a message naming the port, "already in use" and the way out
    (--demo-port), and starts no demo backend.
(B) A run on a free pair of ports (SIGINT at the end, as Ctrl-C):
  - the banner names the proxy, the admin API and two backends with their
    pids; each backend is a process of its own (`surgegate --demo-backend`),
    outside surgegate's process group, answering on its port;
  - under a bounded load through the proxy, the first backend is killed as
    the banner says (`kill PID`): the admin API shows it down and every
    request of the load is still answered (failover);
  - a surge (60 clients on the one backend left, maxconn 8) makes
    hooks/local-spawn add backends, each with the originals' maxconn (8);
  - SIGINT: surgegate exits 0 within 15 s, and no process it started is
    left: neither its backends nor those local-spawn started (found by the
    SURGEGATE_DEMO_OWNER in their environment), and its state directory
    is gone.
(C) SIGTERM ends a run the same way; (D) after SIGKILL of surgegate (no
    chance to clean up), its backends end by themselves within 3 s."""
import os
import random
import re
import signal
import socket
import subprocess
import time

from harness import *


def demo_procs(owner):
    """pids of the --demo-backend processes whose SURGEGATE_DEMO_OWNER is owner."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (b"--demo-backend" in cmd and state != "Z" and
                b"SURGEGATE_DEMO_OWNER=%d" % owner in env):
            out.append(int(d))
    return out


def free_pair():
    """A port P with P and P + 1 free. Below the ephemeral range: there the
    kernel hands odd ports to connect(), and a client connection of an
    earlier test in TIME_WAIT keeps P + 1 from a listener for a minute."""
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(200):
        p = random.randrange(max(1024, lo - 12000), lo - 2)
        socks = []
        try:
            for q in (p, p + 1):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", q))
            return p
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    fail("no two consecutive free ports")


def start_demo(port):
    out = tmp_path("demo-%d.out" % port)
    err = tmp_path("demo-%d.err" % port)
    p = Popen([SG_BIN, "--demo", "--demo-port", str(port)], stdout=open(out, "w"),
              stderr=open(err, "w"), stdin=subprocess.DEVNULL)

    def banner():
        if p.poll() is not None:
            fail("surgegate --demo exited %s: %s" % (p.returncode, open(err).read()[-2000:]))
        text = open(out).read()
        return text if "Press Ctrl-C" in text else None
    text = wait_for(banner, 15, 0.1, "the demo's banner")
    log("banner:\n" + text)
    backends = [(a, int(pid)) for a, pid in
                re.findall(r"^  backend (127\.0\.0\.1:\d+)  pid (\d+)$", text, re.M)]
    check_eq(len(backends), 2, "backends in the banner")
    check("proxy on http://127.0.0.1:%d" % port in text, "the banner names the proxy")
    check("admin API on 127.0.0.1:%d" % (port + 1) in text, "the banner names the admin API")
    check("kill %d" % backends[0][1] in text, "the banner says how to kill a backend")
    check("status --watch" in text and "wrk " in text, "the banner: surgectl and the surge")
    return p, backends, err


class DemoProxy:
    """Enough of a Proxy for the admin helpers: the demo's TCP admin API."""

    def __init__(self, port, proc):
        self.admin_port = port + 1
        self.admin_path = None
        self.proc = proc

    def alive(self):
        return self.proc.poll() is None


def part_busy():
    for which in (0, 1):
        port = free_pair()
        hold = socket.socket()
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.bind(("127.0.0.1", port + which))
        hold.listen(1)
        try:
            t0 = time.monotonic()
            r = subprocess.run([SG_BIN, "--demo", "--demo-port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=15)
            dt = time.monotonic() - t0
        finally:
            hold.close()
        err = r.stderr.decode()
        log("busy port %d: exit %d in %.2fs: %s" % (port + which, r.returncode, dt, err.strip()))
        check_eq(r.returncode, 1, "exit status with port %d busy" % (port + which))
        check("127.0.0.1:%d is already in use" % (port + which) in err and
              "--demo-port" in err, "the message names the port and the way out: %r" % err)
        check(dt < 5, "a busy port answered in %.1fs" % dt)
        check_eq(r.stdout, b"", "no banner")


def part_run():
    port = free_pair()
    p, backends, err = start_demo(port)
    owner = p.pid
    try:
        for addr, pid in backends:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                check(b"--demo-backend" in f.read(), "pid %d is a --demo-backend" % pid)
            check(os.getpgid(pid) != os.getpgid(owner),
                  "backend %d is in surgegate's process group" % pid)
            st, _, _ = http_request(int(addr.split(":")[1]), "GET", "/")
            check_eq(st, 200, "backend %s answers directly" % addr)
        proxy = DemoProxy(port, p)
        wait_for(lambda: all(b["state"] == "up" for b in pool_info(proxy, "demo")["backends"]),
                 10, 0.2, "both backends up")

        # failover: kill the first backend under load
        with BackgroundLoad(port, threads=4, max_seconds=30) as bl:
            time.sleep(1.0)
            t_kill = time.time()
            os.kill(backends[0][1], signal.SIGTERM)
            wait_backend(proxy, backends[0][0], "down", 5, pool="demo",
                         what="the killed backend")
            log("killed backend down after %.2fs" % (time.time() - t_kill))
            time.sleep(2.0)
            res = bl.stop()
        log("load around the kill: %r" % res)
        check_eq(res.failed(), 0, "failed requests around the kill (%r)" % res.errors)
        check(res.ok() > 50, "requests answered around the kill: %d" % res.ok())

        # a surge on the one backend left: local-spawn adds backends, maxconn 8
        with BackgroundLoad(port, threads=60, max_seconds=40) as bl:
            added = wait_journal(proxy, "backend_added", 20, pool="demo", source="hook")
            time.sleep(1.0)
            res = bl.stop()
        log("surge: %r" % res)
        check_eq(res.failed(), 0, "failed requests in the surge (%r)" % res.errors)
        for e in added:
            check_eq(e.get("maxconn"), 8, "maxconn of %s (the originals' 8)" % e["backend"])
        spawned = demo_procs(owner)
        log("demo processes before SIGINT: %r" % spawned)
        check(len(spawned) >= 1 + len(added), "the spawned backends run (%r)" % spawned)

        rc, in_time = stop_process(p, signal.SIGINT, timeout=15)
        check(in_time and rc == 0, "surgegate after SIGINT: rc %s, in time %s" % (rc, in_time))
        left = demo_procs(owner)
        check_eq(left, [], "processes the demo started, left after SIGINT")
        check(not os.path.exists("/tmp/surgegate-demo-%d" % owner),
              "the demo's state directory is left")
        log(open(err).read()[-600:])
    finally:
        stop_process(p, signal.SIGKILL)
        for pid in demo_procs(owner):
            os.kill(pid, signal.SIGKILL)


def part_signal(sig):
    port = free_pair()
    p, backends, _ = start_demo(port)
    owner = p.pid
    try:
        check_eq(sorted(demo_procs(owner)), sorted(pid for _, pid in backends),
                 "the demo's processes")
        if sig == signal.SIGKILL:
            p.kill()
            p.wait()
            wait_for(lambda: demo_procs(owner) == [], 3, 0.1,
                     "the demo backends to end after SIGKILL of surgegate")
        else:
            rc, in_time = stop_process(p, sig, timeout=15)
            check(in_time and rc == 0, "surgegate after %s: rc %s" % (sig.name, rc))
            check_eq(demo_procs(owner), [], "processes left after %s" % sig.name)
    finally:
        stop_process(p, signal.SIGKILL)
        for pid in demo_procs(owner):
            os.kill(pid, signal.SIGKILL)


def main():
    part_busy()
    part_run()
    part_signal(signal.SIGTERM)
    part_signal(signal.SIGKILL)


run(main)
