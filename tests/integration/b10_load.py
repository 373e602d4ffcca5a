"""b10: concurrent load with wrk (64 connections, 2 workers, 3 backends),
3 s each: keep-alive backends, then backends closing after every response
(?close=1). No socket errors, no non-2xx answers, the proxy stays up, every
backend gets a fair share, and the proxy's RSS stays small."""
import re
import shutil
import subprocess

from harness import *


def wrk(fe, path):
    r = subprocess.run(["wrk", "-t2", "-c64", "-d3s", "--timeout", "2s",
                        "http://127.0.0.1:%d%s" % (fe, path)],
                       capture_output=True, timeout=30, text=True)
    out = r.stdout + r.stderr
    check_eq(r.returncode, 0, "wrk exit status; output:\n%s" % out)
    m = re.search(r"(\d+) requests in", out)
    check(m, "no request count in wrk output:\n%s" % out)
    n = int(m.group(1))
    check("Socket errors" not in out, "wrk saw socket errors (path %s):\n%s" % (path, out))
    check("Non-2xx" not in out, "wrk saw non-2xx answers (path %s):\n%s" % (path, out))
    check(n > 1000, "only %d requests in 3s (path %s):\n%s" % (n, path, out))
    log("%s: %d requests in 3s" % (path, n))
    return n


def main():
    if not shutil.which("wrk"):
        skip("wrk not installed")
    with Backend("l1", log=False) as b1, Backend("l2", log=False) as b2, \
            Backend("l3", log=False) as b3:
        fe = free_port()
        with Proxy(proxy_config(fe, [b1, b2, b3], workers=2), listen_port=fe) as p:
            n1 = wrk(fe, "/")
            n2 = wrk(fe, "/?close=1")
            check(p.alive(), "proxy died under load")
            st = [b.stats() for b in (b1, b2, b3)]
            log("backend stats: %s; proxy VmHWM %s KiB" % (st, p.hwm_kib()))
            total = sum(s["requests"] for s in st)
            check(total >= n1 + n2, "backends saw %d requests, wrk completed %d" % (total, n1 + n2))
            for s in st:
                check(abs(s["requests"] - total / 3) <= 0.1 * total / 3,
                      "unfair share under load: %s of %d" % (s, total))
            hwm = p.hwm_kib()
            if p.sanitized():
                log("AddressSanitizer build: RSS bound not checked")
            else:
                check(hwm is not None and hwm < 64 * 1024, "proxy VmHWM %s KiB under load" % hwm)
            status, _, _ = http_get(fe, "/after-load")
            check_eq(status, 200, "request after the load")


if __name__ == "__main__":
    run(main)
