"""o08: reload in place (SIGHUP and admin POST reload) under load, keeping
the runtime state.

Two configurations that differ (a backend's weight, a second pool with a
route, timeouts, the log level) are swapped 20 times (10 SIGHUPs, 10 admin
POST reload, one every 0.4 s) while wrk -c64 sends GETs for 12 s.
Asserted:
  - wrk: no failed request (no non-2xx answer, no socket error);
  - every reload reported reloaded (journal config_reloaded x 20);
  - a backend added at runtime (admin API) is still there and up, with its
    weight; a backend set to drain by the operator is still draining; a
    weight set at runtime survives a reload whose file did not change it;
  - counters never go back: the pool's request count after the load is at
    least the number of requests wrk got answered, and never decreased
    between samples taken during the reloads;
  - the old generations' worker threads end: the thread count comes back
    to what it was before the reloads;
  - a file with an error is refused (admin: 400 with FILE:LINE; SIGHUP:
    logged; surgectl reload: exit 1 with the error), journal reload_failed,
    the running configuration stays and serves; `surgectl reload` of a good
    file: exit 0, "reloaded"."""
import os
import re
import signal
import subprocess
import threading
import time

from harness import *
from rawhttp import Check

SG_CTL = os.environ.get("SG_CTL") or os.path.join(os.path.dirname(SG_BIN), "surgectl")


def surgectl(sock, *args):
    p = subprocess.run([SG_CTL, "--admin", "unix:" + sock] + list(args), capture_output=True,
                       text=True, timeout=20, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def config(fe, a, b, variant, admin_sock):
    w = 1 if variant == 0 else 3
    extra_pool = ""
    more = ""
    routes = ""
    if variant == 1:
        more = (', { name = "api"; backends = ( { address = "%s"; } ); }' % a.addr)
        routes = 'routes = ( { path_prefix = "/api/"; pool = "api"; } );'
    return """workers = 2;
log_level = "%s";
timeouts = { connect = "2s"; http_request = "5s"; client = "30s"; server = "%s";
             queue = "5s"; keepalive = "30s"; upstream_idle = "30s"; grace = "5s"; };
admin = { listen = "unix:%s"; };
frontends = ( { name = "fe"; listen = "127.0.0.1:%d"; maxconn = 1000; %s default_pool = "app"; } );
pools = ( { name = "app"; balance = "roundrobin"; retries = 2; maxqueue = 100; %s
            backends = ( { address = "%s"; weight = %d; }, { address = "%s"; } ); }%s );
""" % ("info" if variant == 0 else "warn", "30s" if variant == 0 else "20s", admin_sock, fe,
       routes, extra_pool, a.addr, w, b.addr, more)


def pool_requests(proxy):
    return pool_info(proxy).get("requests", 0)


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def main():
    c = Check("o08_reload")
    with Backend("A", log=False) as a, Backend("B", log=False) as b, \
            Backend("C", log=False) as cb, Backend("D", log=False) as db:
        fe = free_port()
        sock = tmp_path("o08-admin.sock")
        texts = [config(fe, a, b, v, sock) for v in (0, 1)]
        with Proxy(texts[0], listen_port=fe) as proxy:
            for _ in range(4):
                http_get(fe, "/warm")
            # runtime state: an added backend (C) with weight 2, B drained
            # then ready again? no: B drained and left draining; D added
            # then given weight 3 by the operator.
            st, _ = admin_post(proxy, "pools/app/backends", {"address": cb.addr, "weight": 2})
            check(st in (200, 201), "admin add C: %s" % st)
            st, _ = admin_post(proxy, "pools/app/backends", {"address": db.addr})
            check(st in (200, 201), "admin add D: %s" % st)
            wait_backend(proxy, cb.addr, ("up",), timeout=10.0)
            wait_backend(proxy, db.addr, ("up",), timeout=10.0)
            st, _ = admin_post(proxy, "pools/app/backends/%s/weight" % db.addr, {"weight": 3})
            check(st == 200, "admin weight D: %s" % st)
            st, _ = admin_post(proxy, "pools/app/backends/%s/state" % b.addr, {"state": "drain"})
            check(st == 200, "admin drain B: %s" % st)
            t_before = threads(proxy.proc.pid)
            w = subprocess.Popen(["wrk", "-t2", "-c64", "-d12s", "--timeout", "2s",
                                  "http://127.0.0.1:%d/r" % fe], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            samples, reports = [], []
            try:
                time.sleep(1.0)
                for i in range(20):
                    with open(proxy.config_path, "w") as f:
                        f.write(texts[(i + 1) % 2])
                    if i % 2 == 0:
                        proxy.proc.send_signal(signal.SIGHUP)
                    else:
                        st, body = admin_post(proxy, "reload", {})
                        reports.append((st, body))
                    time.sleep(0.4)
                    samples.append(pool_requests(proxy))
                out, _ = w.communicate(timeout=40)
            finally:
                if w.poll() is None:
                    w.kill()
                    w.wait()
            out = out.decode("utf-8", "replace")
            total, failed, _ = wrk_failed(out)
            log("wrk: %d requests, %d failed during 20 reloads" % (total, failed))
            c.ok(total > 1000 and failed == 0, "20 reloads under wrk -c64: 0 failed requests",
                 out)
            c.ok(all(st == 200 and body.get("reloaded") is True for st, body in reports),
                 "admin POST reload answers 200 reloaded", "%r" % reports[:2])
            ev = wait_journal(proxy, "config_reloaded", timeout=3.0)
            c.ok(len(find_events(admin_events(proxy), "config_reloaded")) == 20,
                 "journal: 20 config_reloaded events")
            time.sleep(1.5)  # a tick: the counts of the last generations folded
            n_after = pool_requests(proxy)
            log("pool requests: samples %s ... after %d (wrk %d)" % (samples[:4], n_after, total))
            c.ok(all(x <= y for x, y in zip(samples, samples[1:] + [n_after])),
                 "the pool's request counter never goes back across reloads", "%r" % samples)
            c.ok(n_after >= total, "the counter holds every request of every generation",
                 "%d < %d" % (n_after, total))
            p = pool_info(proxy)
            bs = {x["address"]: x for x in p["backends"]}
            log("backends after: %r" % {k: (v.get("state"), v.get("weight")) for k, v in
                                        bs.items()})
            c.ok(cb.addr in bs and bs[cb.addr].get("state") == "up" and
                 bs[cb.addr].get("weight") == 2,
                 "a backend added at runtime is still there, up, with its weight")
            c.ok(bs.get(db.addr, {}).get("weight") == 3,
                 "a weight set at runtime survives the reloads")
            c.ok(bs.get(b.addr, {}).get("state") == "drain",
                 "a backend drained by the operator is still draining")
            wait_for(lambda: threads(proxy.proc.pid) <= t_before, timeout=10.0,
                     what="the old generations' threads to end")
            c.ok(True, "the old generations' worker threads ended (%d threads)" %
                 threads(proxy.proc.pid))
            # a file with an error is refused
            with open(proxy.config_path, "w") as f:
                f.write(texts[0] + "\npools = 1;\n")
            st, body = admin_post(proxy, "reload", {})
            log("bad file: %s %r" % (st, body))
            c.ok(st == 400 and body.get("reloaded") is False and any(
                re.search(r"\.conf:\d+: ", e) for e in body.get("errors", [])),
                 "a bad file is refused with FILE:LINE errors (400)")
            proxy.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            c.ok(len(find_events(admin_events(proxy), "reload_failed")) >= 2,
                 "journal: reload_failed for each refused reload")
            c.ok("the running configuration stays" in proxy.stderr_text(),
                 "the log says the running configuration stays")
            c.ok(http_get(fe, "/after")[0] == 200, "still serving after refused reloads")
            rc, out, err = surgectl(sock, "reload")
            log("surgectl reload (bad file): %d %r %r" % (rc, out, err))
            c.ok(rc == 1 and ".conf:" in err and "running configuration stays" in err,
                 "surgectl reload of a bad file: exit 1 with the FILE:LINE error")
            with open(proxy.config_path, "w") as f:
                f.write(texts[0])
            rc, out, err = surgectl(sock, "reload")
            log("surgectl reload: %d %r %r" % (rc, out, err))
            c.ok(rc == 0 and out.startswith("reloaded "), "surgectl reload: exit 0, reloaded")
    c.done()


if __name__ == "__main__":
    run(main)
