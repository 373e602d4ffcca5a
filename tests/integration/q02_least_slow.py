"""q02: leastreq and ewma send most traffic to the fast backend.

Two backends of equal weight, "fast" answering after 5 ms and "slow" after
50 ms (--delay; 10x slower, and slow enough that the Python client keeps
its 20 connections busy even on a loaded machine: at 2 ms the client
itself becomes the bottleneck, requests stop overlapping, and any balancer
degenerates to an even split). 20 client connections keep one request each
outstanding, 1,000 requests in all. With roundrobin each would get half; with "leastreq"
(fewest requests in flight) and "ewma" (lowest latency estimate) the fast one
must get at least 80%. The roundrobin run is the control: it shows the
setup itself does not skew the split (40-60%)."""
from harness import *

N = 1000
CONNS = 20


def one(fe_backends, balance):
    fast, slow = fe_backends
    fe = free_port()
    cfg = proxy_config(fe, [fast.addr, slow.addr], balance=balance, workers=1)
    with Proxy(cfg, listen_port=fe) as proxy:
        in_effect = pool_info(proxy).get("balance")
        before = {b.name: b.requests() for b in (fast, slow)}
        res = load(fe, N, threads=CONNS, path="/ls/%s" % balance, max_seconds=40)
        after = {b.name: b.requests() for b in (fast, slow)}
    got = {k: after[k] - before[k] for k in before}
    share = got["fast"] / float(max(1, sum(got.values())))
    log("%s: %d requests in %.1fs: %s (fast share %.1f%%)"
        % (balance, res.total, res.elapsed, got, 100 * share))
    check_eq(res.total, N, "%s: requests completed" % balance)
    check(res.ok() == N, "%s: %d requests failed: %s" % (balance, res.failed(), res.errors))
    check_eq(sum(got.values()), N, "%s: requests the backends received" % balance)
    check(in_effect == balance, "%s: the admin API reports balance %r (the configured one is "
          "not in effect)" % (balance, in_effect))
    return share


def main():
    with Backend("fast", delay_ms=5, log=False) as fast, \
            Backend("slow", delay_ms=50, log=False) as slow:
        rr = one((fast, slow), "roundrobin")
        check(0.4 <= rr <= 0.6, "roundrobin control: fast share %.1f%%, want 40-60%%" % (100 * rr))
        failures = []
        for balance in ("leastreq", "ewma"):
            share = one((fast, slow), balance)
            if share < 0.8:
                failures.append("%s: the fast backend got %.1f%% of requests, want >= 80%%"
                                % (balance, 100 * share))
        if failures:
            fail("; ".join(failures))


if __name__ == "__main__":
    run(main)
