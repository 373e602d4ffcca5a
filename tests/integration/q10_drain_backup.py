"""q10: draining a backend, backup backends, and a pool with nothing up.

(a) Drain through the admin API (POST .../backends/ADDR/state
    {"state":"drain"}), backends A and B, one worker: a 1.5 s request in
    flight on B completes with 200; no new request goes to B (200 requests
    all on A); B's idle keep-alive upstream connections are closed at once
    (within 1 s, while the slow one still runs) and the last one within 2 s
    of the slow one finishing (the backend's count of open sockets); the
    admin API shows "drain". Back to "ready": B gets traffic again.
(b) Backup: primaries P1, P2 and a `backup = true` K, tcp health checks: K
    gets nothing while a primary is up (300 requests); right after both
    primaries are SIGKILLed, 100 requests over 2 connections all succeed,
    served by K (retries past the dead primaries; 2 clients keep concurrent
    retries under the default budget's min_retries); once the checks mark
    the primaries down, 300 requests over 4 connections all go to K.
(c) No backup, every backend down (health checks failing): a request gets
    503 with Retry-After at once (< 0.5 s; timeouts.queue is 5 s)."""
import time

from harness import *


def drain():
    with Backend("A") as a, Backend("B") as b:
        fe = free_port()
        cfg = proxy_config(fe, [a.addr, b.addr], workers=1)
        with Proxy(cfg, listen_port=fe) as proxy:
            res = load(fe, 40, threads=4, path="/warm")
            check(res.ok() == 40 and res.backends.get("B", 0) >= 10,
                  "warm-up: %r" % res)
            check(b.stats()["open"] >= 2, "setup: B has no idle upstream connections (open %s)"
                  % b.stats()["open"])
            # Two slow requests: roundrobin puts one on each backend.
            slow = [Pending(fe, "/slow?n=%d&delay=1500" % i, timeout=10) for i in range(2)]
            wait_for(lambda: b.stats()["inflight"] == 1 and a.stats()["inflight"] == 1,
                     timeout=3, what="one slow request in flight on each backend")
            set_backend_state(proxy, b, "drain")
            st, info = backend_state(proxy, b)
            check(st == "drain", "admin state of B after drain: %r (%r)" % (st, info))
            before = len(b.traffic_lines())
            res = load(fe, 200, threads=4, path="/after-drain")
            check(res.ok() == 200, "after drain: %d failed: %s" % (res.failed(), res.errors))
            got = len(b.traffic_lines()) - before
            check(got == 0, "B received %d new requests while draining: %s"
                  % (got, b.traffic_lines()[before:before + 3]))
            # idle upstream connections to B go at once; the slow one stays
            # (open sockets: the slow request's + the /__stats one asking)
            wait_for(lambda: b.stats()["open"] <= 2, timeout=1.0, interval=0.05,
                     what="B's idle upstream connections closed after the drain")
            check(b.stats()["inflight"] == 1, "the slow request on B is no longer in flight "
                  "before its time")
            for p in slow:
                p.result()
            check([p.status for p in slow] == [200, 200], "slow requests during the drain: %s"
                  % [(p.status, p.backend, p.error) for p in slow])
            check(sorted(p.backend for p in slow) == ["A", "B"],
                  "slow requests served by %s" % [p.backend for p in slow])
            t0 = time.monotonic()
            # "open" counts the /__stats connection asking, hence <= 1
            wait_for(lambda: b.stats()["open"] <= 1, timeout=2.0, interval=0.05,
                     what="B's last upstream connection closed after its slow request")
            log("B's connections all closed %.2fs after its last request finished"
                % (time.monotonic() - t0))
            set_backend_state(proxy, b, "ready")
            wait_backend(proxy, b, "up", 3, what="B back to ready")
            res = load(fe, 100, threads=4, path="/ready-again")
            check(res.ok() == 100 and res.backends.get("B", 0) >= 30,
                  "after ready: B got %s" % res.backends)


def backup():
    health = cfg_group("health", type="tcp", interval="200ms", timeout="150ms", rise=2, fall=2)
    with Backend("P1") as p1, Backend("P2") as p2, Backend("K") as k:
        fe = free_port()
        cfg = proxy_config(fe, [p1.addr, p2.addr, {"address": k.addr, "backup": True}],
                           workers=1, extra_pool=health)
        check("backup = true;" in cfg, "harness: no backup in the config")
        with Proxy(cfg, listen_port=fe) as proxy:
            for x in (p1, p2, k):
                wait_backend(proxy, x, "up", 5, what="initial state")
            res = load(fe, 300, threads=4, path="/primary")
            check(res.ok() == 300, "primaries up: %d failed: %s" % (res.failed(), res.errors))
            check_eq(len(k.traffic_lines()), 0, "requests on the backup while primaries are up")
            check(res.backends.get("P1", 0) >= 100 and res.backends.get("P2", 0) >= 100,
                  "primaries up: %s" % res.backends)
            p1.kill()
            p2.kill()
            # Before the checks notice: retries carry every request to K. Two
            # clients, so concurrent retries stay under the default retry
            # budget's min_retries (3): none may be refused.
            res = load(fe, 100, threads=2, path="/backup-at-once")
            log("primaries just killed: %r" % res)
            check(res.ok() == 100, "primaries just killed: %d of 100 failed: %s"
                  % (res.failed(), res.errors))
            check_eq(res.backends, {"K": 100}, "who served right after the primaries died")
            for x in (p1, p2):
                wait_backend(proxy, x.addr, "down", 5, what="killed primary")
            res = load(fe, 300, threads=4, path="/backup")
            log("primaries down: %r" % res)
            check(res.ok() == 300, "primaries down: %d of 300 failed: %s"
                  % (res.failed(), res.errors))
            check_eq(res.backends, {"K": 300}, "who served with both primaries down")


def nothing_up():
    health = cfg_group("health", type="http", path="/healthz", interval="100ms",
                       timeout="80ms", rise=2, fall=2)
    with Backend("D1") as d1, Backend("D2") as d2:
        fe = free_port()
        cfg = proxy_config(fe, [d1.addr, d2.addr], extra_pool=health, workers=1,
                           timeouts={"queue": "5s"})
        with Proxy(cfg, listen_port=fe) as proxy:
            for d in (d1, d2):
                wait_backend(proxy, d, "up", 5, what="initial state")
                d.control(health=503)
            for d in (d1, d2):
                wait_backend(proxy, d, "down", 5, what="checks failing")
            before = len(d1.traffic_lines()) + len(d2.traffic_lines())
            for i in range(3):
                p = Pending(fe, "/none/%d" % i, timeout=10)
                status, h, body, el = p.result()
                log("all down: %s after %.3fs, Retry-After %r" % (status, el,
                                                                    h.get("Retry-After")))
                check(status == 503, "all down: got %s (%s), want 503" % (status, p.error))
                check(el < 0.5, "all down: the 503 took %.2fs (want at once, < 0.5 s; not "
                      "after the 5 s queue timeout)" % el)
                check(retry_after_ok(h), "all down: 503 without a valid Retry-After: %r"
                      % dict(h))
            after = len(d1.traffic_lines()) + len(d2.traffic_lines())
            check_eq(after - before, 0, "requests that reached a down backend")


def main():
    drain()
    backup()
    nothing_up()


if __name__ == "__main__":
    run(main)
