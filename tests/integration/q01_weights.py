"""q01: weighted balancing: roundrobin, random and leastreq honour weights.

Three fast backends with weights 1, 2, 3. For each balancer a stream of
keep-alive GETs over 8 client connections (10,000 requests; 30,000 for
random, so that a 5% band is more than 3.5 standard deviations of the
binomial noise for every backend). Each backend's share, counted by the
backends themselves (/__stats), must be within 5% (relative) of its weight's
share; every request must succeed and the X-Backend counts must agree with
the backends' own counts (no request lost or duplicated), and the admin API
must report the configured balancer as the one in effect. Two workers: the
weights hold over the whole proxy, not only per worker.

leastreq balances load, not request counts: over one connection (nothing
else in flight) it must split by weight within 5%. Over 8 connections it
leans away from whichever backend is busier at the moment, and on a loaded
machine the backend processes themselves run at uneven speed (a CI run saw
20.5/45.1/34.4% for weights 1/2/3), so there it must only keep every share
between half and twice its weight's: no backend starved or flooded."""
from harness import *

WEIGHTS = {"b1": 1, "b2": 2, "b3": 3}
# An idle pool is shared by weighted random draws (random, and leastreq over
# one connection), so the counts are binomial: 5% of the expected count is
# 3.9 standard deviations for weight 1 of 6 at 30000 requests, but only 2.2
# at 10000 (a CI run failed leastreq there with 1752 for 1667 +- 83).
RUNS = (("roundrobin", 10000, 8, 0.05), ("random", 30000, 8, 0.05),
        ("leastreq", 30000, 1, 0.05), ("leastreq", 10000, 8, None))


def one(balance, n, backends, threads, tol):
    fe = free_port()
    cfg = proxy_config(fe, [(b.addr, WEIGHTS[b.name]) for b in backends], balance=balance,
                       workers=2)
    with Proxy(cfg, listen_port=fe) as proxy:
        in_effect = pool_info(proxy).get("balance")
        before = {b.name: b.requests() for b in backends}
        res = load(fe, n, threads=threads, path="/w/%s" % balance, max_seconds=45)
        after = {b.name: b.requests() for b in backends}
    got = {k: after[k] - before[k] for k in before}
    log("%s (%d connections): %d requests in %.1fs, backends counted %s, X-Backend %s"
        % (balance, threads, res.total, res.elapsed, got, res.backends))
    check_eq(res.total, n, "%s: requests completed" % balance)
    check(in_effect == balance, "%s: the admin API reports balance %r (the configured one is "
          "not in effect)" % (balance, in_effect))
    check(res.ok() == n, "%s: %d of %d requests failed: %s"
          % (balance, res.failed(), n, res.errors))
    check_eq(res.backends, got, "%s: X-Backend counts vs the backends' own counts" % balance)
    total_w = float(sum(WEIGHTS.values()))
    for name, w in WEIGHTS.items():
        want = n * w / total_w
        if tol is None:
            check(want / 2 <= got[name] <= want * 2,
                  "%s (%d connections): %s (weight %d) got %d of %d requests, want between "
                  "%.0f and %.0f (%s)" % (balance, threads, name, w, got[name], n, want / 2,
                                          want * 2, got))
            continue
        check(abs(got[name] - want) <= tol * want,
              "%s (%d connections): %s (weight %d) got %d of %d requests, want %.0f +- %d%% (%s)"
              % (balance, threads, name, w, got[name], n, want, tol * 100, got))


def main():
    failures = []
    with Backend("b1", log=False) as b1, Backend("b2", log=False) as b2, \
            Backend("b3", log=False) as b3:
        for balance, n, threads, tol in RUNS:
            try:
                one(balance, n, [b1, b2, b3], threads, tol)
            except TestFailure as e:
                log("FAIL %s" % e)
                failures.append(str(e))
    if failures:
        fail("; ".join(failures))


if __name__ == "__main__":
    run(main)
