"""q09: the retry budget caps retries on a busy pool; a broken one is
bounded by `retries` alone.

retry_budget = { percent = 20; min_retries = 3; }, retries = 2.

1. Three backends that hold each request 2 s, timeouts.server 300 ms (a
   pool too busy to answer in time). Two bursts of 30 simultaneous requests
   (each on its own connection, all opened first, then written back to
   back): every request fails with 504 (never a hang), and the admin API's
   pool counters show the budget at work: retries_denied > 0 and
   retries_total <= 1.5 x requests (without a budget: 2 x requests).
2. Three backends that refuse connections (free ports, nothing listening):
   a refused connection shows a backend that is gone, not busy, so its
   retries do not ask the budget. Five bursts of 30: every request fails
   (502/503, fast), retries_denied = 0, and retries_total <= 2 x requests
   (each request tries at most 1 + retries backends).
3. The same with three live backends that hold each request 300 ms and then
   reset the connection (idempotent GETs: resent): the same bounds.
4. Three healthy backends plus one refusing, 4 client connections, 400
   requests: every request succeeds, and retries_total > 0 (the refusing
   backend was tried)."""
from harness import *

BUDGET = cfg_group("retry_budget", percent=20, min_retries=3)
ROUNDS = 5
WIDTH = 30


def counters(proxy):
    p = pool_info(proxy, required=("retries_total", "retries_denied"))
    return p["retries_total"], p["retries_denied"]


def all_failing(what, addrs, path, rounds, max_time, budgeted, timeouts=None):
    fe = free_port()
    t = {"connect": "1s", "queue": "2s"}
    t.update(timeouts or {})
    cfg = proxy_config(fe, addrs, retries=2, extra_pool=BUDGET, workers=1, timeouts=t)
    with Proxy(cfg, listen_port=fe) as proxy:
        statuses = {}
        slow = []
        for r in range(rounds):
            ps = burst(fe, [path % (r, i) for i in range(WIDTH)], timeout=10)
            for p in ps:
                statuses[p.status] = statuses.get(p.status, 0) + 1
                if p.elapsed > max_time:
                    slow.append((p.path, p.status, round(p.elapsed, 2)))
        n = rounds * WIDTH
        total, denied = counters(proxy)
        log("%s: %d requests, statuses %s; retries_total %s, retries_denied %s"
            % (what, n, statuses, total, denied))
        check(set(statuses) <= {502, 503, 504},
              "%s: statuses %s (want only 502/503/504)" % (what, statuses))
        check(not slow, "%s: slow failures (> %.1f s): %s" % (what, max_time, slow[:5]))
        if budgeted:
            check(denied > 0, "%s: retries_denied = %s (want > 0: %d concurrent requests, "
                  "budget max(3, 20%%))" % (what, denied, WIDTH))
            check(total <= 1.5 * n, "%s: retries_total = %s for %d requests (want <= 1.5 x "
                  "requests; retries = 2 without a budget allows %d)" % (what, total, n, 2 * n))
        else:
            check(denied == 0, "%s: retries_denied = %s (want 0: a backend that is gone costs "
                  "no budget)" % (what, denied))
            check(0 < total <= 2 * n, "%s: retries_total = %s for %d requests (want 1.. 2 x "
                  "requests: retries = 2)" % (what, total, n))


def all_slow():
    with Backend("s1", log=False) as s1, Backend("s2", log=False) as s2, \
            Backend("s3", log=False) as s3:
        all_failing("all timing out", [s1.addr, s2.addr, s3.addr], "/rs/%d/%d?delay=2000", 2,
                    3.0, True, timeouts={"server": "300ms"})


def all_refusing():
    dead = ["127.0.0.1:%d" % dead_port() for _ in range(3)]
    all_failing("all refusing", dead, "/rb/%d/%d", ROUNDS, 3.0, False)


def all_resetting():
    with Backend("r1") as r1, Backend("r2") as r2, Backend("r3") as r3:
        all_failing("all resetting", [r1.addr, r2.addr, r3.addr], "/rr/%d/%d?delay=300&reset=1",
                    2, 4.0, False)


def one_refusing():
    with Backend("g1", log=False) as g1, Backend("g2", log=False) as g2, \
            Backend("g3", log=False) as g3:
        dead = "127.0.0.1:%d" % dead_port()
        fe = free_port()
        cfg = proxy_config(fe, [g1.addr, dead, g2.addr, g3.addr], retries=2, extra_pool=BUDGET,
                           workers=1, timeouts={"connect": "1s"})
        with Proxy(cfg, listen_port=fe) as proxy:
            res = load(fe, 400, threads=4, path="/one", max_seconds=30)
            total, denied = counters(proxy)
            log("one refusing: %r; retries_total %s, retries_denied %s" % (res, total, denied))
            check(res.ok() == 400, "one refusing: %d of 400 requests failed: %s"
                  % (res.failed(), res.errors))
            check(total > 0, "one refusing: retries_total = %s (the refusing backend was "
                  "never retried away from?)" % total)


def main():
    all_slow()
    all_refusing()
    all_resetting()
    one_refusing()


if __name__ == "__main__":
    run(main)
