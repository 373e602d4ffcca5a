"""b11: worker threads run under SCHED_BATCH unless `sched_batch = false`.

1. Default config, workers = 2: exactly the two worker threads have policy
   SCHED_BATCH (/proc/PID/task/TID/stat, field 41), the main thread keeps
   SCHED_OTHER, the log says so, and 200 requests are proxied.
2. `sched_batch = false`: no thread has SCHED_BATCH, and requests still pass.
3. `sched_batch = 1` (not a boolean): `surgegate -t` exits 1 naming the key
   and its line."""
import os
import re
import subprocess

from harness import *

SCHED_OTHER, SCHED_BATCH = 0, 3


def policies(pid):
    """{tid: policy} for every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            stat = f.read()
        fields = stat[stat.rfind(")") + 2:].split()
        out[int(tid)] = int(fields[41 - 3])  # fields[0] is field 3 (state)
    return out


def traffic(fe, n=200):
    bad = [i for i in range(n) if http_get(fe, "/s/%d" % i)[0] != 200]
    check(not bad, "%d of %d requests failed" % (len(bad), n))


def main():
    with Backend("b1") as b1:
        fe = free_port()
        with Proxy(proxy_config(fe, [b1.addr], workers=2), listen_port=fe) as p:
            traffic(fe)
            pol = policies(p.pid)
            log("default: thread policies %s" % pol)
            check_eq(pol[p.pid], SCHED_OTHER, "main thread's policy")
            check_eq(list(pol.values()).count(SCHED_BATCH), 2,
                     "threads under SCHED_BATCH (the 2 workers)")
            check("SCHED_BATCH" in p.stderr_text(), "startup log mentions SCHED_BATCH")

        fe = free_port()
        cfg = proxy_config(fe, [b1.addr], workers=2, extra_top="sched_batch = false;")
        with Proxy(cfg, listen_port=fe) as p:
            traffic(fe)
            pol = policies(p.pid)
            log("sched_batch = false: thread policies %s" % pol)
            check(SCHED_BATCH not in pol.values(), "no thread under SCHED_BATCH: %s" % pol)

    path = tmp_path("bad-sched.conf")
    with open(path, "w") as f:
        f.write(proxy_config(free_port(), ["127.0.0.1:9"], extra_top="sched_batch = 1;"))
    r = subprocess.run([SG_BIN, "-t", "-c", path], capture_output=True, text=True, timeout=30)
    log("-t on sched_batch = 1: rc %d: %s" % (r.returncode, (r.stdout + r.stderr).strip()))
    check_eq(r.returncode, 1, "surgegate -t exit status")
    out = r.stdout + r.stderr
    check("'sched_batch'" in out and "true or false" in out,
          "error names sched_batch and what it wants")
    check(re.search(r"bad-sched\.conf:\d+: error", out), "error gives FILE:LINE")


if __name__ == "__main__":
    run(main)
