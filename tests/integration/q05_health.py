"""q05: active health checks (http and tcp) take backends out and back in.

HTTP check: health = { type = "http"; path = "/healthz"; interval = "200ms";
timeout = "150ms"; rise = 2; fall = 3; } over backends A and B.
  1. both are "up" in the admin API;
  2. B's /healthz answers 503 (/__control): B is "down" within
     fall x interval + slack (<= 2.5 s) with a reason naming 503, and then
     receives no traffic: 200 requests all go to A, all succeed;
  3. B's /healthz answers 200 again: B is "up" after its rise checks
     (<= 3.5 s: checks of a down backend may be spaced out) and gets its
     share of traffic again (>= 30% of 200 requests).
TCP check: type = "tcp" over A2 and C; C stopped: C "down" with a reason
containing "connection refused", and all traffic goes to A2."""
import time

from harness import *

HEALTH = cfg_group("health", type="http", path="/healthz", interval="200ms", timeout="150ms",
                   rise=2, fall=3)
TCP_HEALTH = cfg_group("health", type="tcp", interval="200ms", timeout="150ms", rise=2, fall=3)


def traffic(fe, n, what):
    res = load(fe, n, threads=4, path="/h/%s" % what.replace(" ", "_"), max_seconds=30)
    check(res.ok() == n, "%s: %d of %d requests failed: %s" % (what, res.failed(), n, res.errors))
    return res


def http_check():
    with Backend("A") as a, Backend("B") as b:
        fe = free_port()
        cfg = proxy_config(fe, [a.addr, b.addr], extra_pool=HEALTH, workers=2)
        with Proxy(cfg, listen_port=fe) as proxy:
            for x in (a, b):
                wait_backend(proxy, x, "up", 5, what="initial state")
            wait_for(lambda: b.stats()["healthz"] >= 2, timeout=5,
                     what="health checks reaching backend B")
            res = traffic(fe, 100, "both up")
            check(res.backends.get("B", 0) >= 30, "both up: B got %s of 100" % res.backends)

            # B fails its checks
            b.control(health=503)
            t0 = time.monotonic()
            el, info = wait_backend(proxy, b, "down", 6, what="B failing /healthz")
            log("B down %.2fs after /healthz started answering 503; reason %r"
                % (el, info.get("reason")))
            check(el <= 2.5, "B went down only %.2fs after its checks started failing "
                  "(fall 3 x interval 200ms, want <= 2.5 s)" % el)
            check("503" in (info.get("reason") or ""),
                  "B's down reason %r does not mention 503" % info.get("reason"))
            check(backend_state(proxy, a)[0] == "up", "A is not up while B is down")
            before = len(b.traffic_lines())
            res = traffic(fe, 200, "B down")
            got = len(b.traffic_lines()) - before
            check(got == 0 and res.backends.get("B", 0) == 0,
                  "B received %d requests while down (X-Backend counts %s)" % (got, res.backends))

            # B recovers
            b.control(health=200)
            el, info = wait_backend(proxy, b, "up", 8, what="B passing /healthz again")
            log("B up again %.2fs after /healthz answered 200; reason %r"
                % (el, info.get("reason")))
            check(el <= 3.5, "B came back only %.2fs after its checks passed again "
                  "(rise 2, want <= 3.5 s)" % el)
            res = traffic(fe, 200, "B up again")
            check(res.backends.get("B", 0) >= 60,
                  "B up again: got %s of 200 requests (want >= 30%%)" % res.backends)
            log("after recovery: %s; B state %r" % (res.backends, backend_state(proxy, b)))


def tcp_check():
    with Backend("A2") as a, Backend("C") as c:
        fe = free_port()
        cfg = proxy_config(fe, [a.addr, c.addr], extra_pool=TCP_HEALTH, workers=1)
        with Proxy(cfg, listen_port=fe) as proxy:
            for x in (a, c):
                wait_backend(proxy, x, "up", 5, what="tcp check initial state")
            c.stop()
            el, info = wait_backend(proxy, c.addr, "down", 6, what="C stopped (tcp check)")
            log("C down %.2fs after it stopped; reason %r" % (el, info.get("reason")))
            check("connection refused" in (info.get("reason") or "").lower(),
                  "C's down reason %r does not say 'connection refused'" % info.get("reason"))
            check(backend_state(proxy, a)[0] == "up", "A2 is not up (tcp check)")
            before = a.requests()
            res = traffic(fe, 100, "C stopped")
            check_eq(a.requests() - before, 100, "requests A2 received while C is down")


def main():
    http_check()
    tcp_check()


if __name__ == "__main__":
    run(main)
