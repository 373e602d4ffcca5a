#!/usr/bin/python3
"""health_cost.py: what active health checks of 1,000 backends cost traffic.

One nginx (one worker) listens on 0.0.0.0:P: it is the traffic backend at
127.0.0.1:P and, through the rest of 127.0.0.0/8, 1,000 distinct checked
backends 127.0.1.1:P ... Two surgegate configs (workers = 1) differ only in a
second pool of those 1,000 backends with `health = { interval = "2s"; }`
(500 checks a second); wrk runs against each in turn for several rounds.
Prints req/s and p99 per variant (medians) and the ratio with/without checks.

usage: health_cost.py [--rounds N] [--seconds S] [--backends N]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SG = os.environ.get("SG_BIN", os.path.join(HERE, "..", "..", "build", "surgegate"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on %d" % port)


def wrk(port, seconds):
    out = subprocess.run(["wrk", "-t1", "-c64", "-d%ds" % seconds, "--latency",
                          "http://127.0.0.1:%d/" % port], capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return rps, p99


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--backends", type=int, default=1000)
    a = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            raise SystemExit("missing %s" % tool)
    tmp = tempfile.mkdtemp(prefix="sg-hc-")
    procs = []
    try:
        bport = free_port()
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write("""daemon off; worker_processes 1; pid %s/nginx.pid; error_log stderr error;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000;
  server { listen 0.0.0.0:%d reuseport backlog=4096;
    location / { return 200 "ok\\n"; } } }
""" % (tmp, bport))
        procs.append(subprocess.Popen(["nginx", "-p", tmp, "-c", os.path.join(tmp, "nginx.conf")],
                                      stderr=subprocess.DEVNULL))
        wait_port(bport)
        ports = {}
        for variant in ("without", "with"):
            port = free_port()
            checked = ""
            if variant == "with":
                addrs = ", ".join('{ address = "127.0.%d.%d:%d"; }' % (1 + i // 250, 1 + i % 250,
                                                                     bport)
                                  for i in range(a.backends))
                checked = (', { name = "checked"; health = { type = "http"; path = "/healthz";'
                           ' interval = "2s"; timeout = "1s"; }; backends = ( %s ); }' % addrs)
            cfg = os.path.join(tmp, "sg-%s.conf" % variant)
            with open(cfg, "w") as f:
                f.write("""workers = 1; log_level = "warn";
admin = { listen = "unix:%s/admin-%s.sock"; };
frontends = ( { name = "fe"; listen = "127.0.0.1:%d"; default_pool = "app"; } );
pools = ( { name = "app"; health = { enabled = false; }; backends = ( { address = "127.0.0.1:%d"; } ); }%s );
""" % (tmp, variant, port, bport, checked))
            ports[variant] = (port, cfg)
        res = {"without": [], "with": []}
        for r in range(a.rounds):
            for variant in ("without", "with"):
                port, cfg = ports[variant]
                p = subprocess.Popen([SG, "-c", cfg], stderr=subprocess.DEVNULL)
                try:
                    wait_port(port)
                    time.sleep(2.5)  # let the first round of checks spread out
                    res[variant].append(wrk(port, a.seconds))
                finally:
                    p.send_signal(signal.SIGTERM)
                    p.wait(15)
                print("round %d %-8s %9.0f req/s  p99 %.2f ms" % (r + 1, variant,
                                                                   *res[variant][-1]))
                sys.stdout.flush()
        med = {v: (statistics.median(x[0] for x in res[v]), statistics.median(x[1] for x in res[v]))
               for v in res}
        ratios = [w[0] / wo[0] for w, wo in zip(res["with"], res["without"])]
        print("\n%d backends checked every 2s (%d checks/s), %d rounds x %d s, wrk -c64"
              % (a.backends, a.backends // 2, a.rounds, a.seconds))
        print("%-24s %10s %10s" % ("", "req/s", "p99 ms"))
        for v in ("without", "with"):
            print("%-24s %10.0f %10.2f" % (v + " health checks", *med[v]))
        print("req/s with/without (median of per-round ratios): %.3f" % statistics.median(ratios))
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
