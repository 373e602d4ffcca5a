"""b12: a frontend's maxconn is one limit across workers.

workers = 2 (one SO_REUSEPORT socket each: the kernel picks a connection's
socket by a hash of its addresses) and maxconn = 100. Three rounds of:
- 100 clients connect at once, each sends a request and keeps its
  connection open: all 100 are answered within 5 s (a limit split into two
  shares of 50 strands the connections beyond 50 that hash to one worker);
- 4 more connect and send a request: none is answered, nor reaches the
  backend, while the 100 are open (the limit holds across workers: the
  connections wait in the kernel backlog, they are not refused);
- 4 of the 100 close, one at a time: after each, exactly one more of the
  waiting connections is served (in whichever worker it waits), within 3 s.
"""
import time

from harness import *
from manyconn import Many

ROUNDS = 3
N = 100
EXTRA = 4


def answered(cs):
    return [c for c in cs if c.responses]


def one_round(rnd, port, b):
    m = Many(port)
    try:
        first = m.open(N)
        for c in first:
            check(m.get(c, "/r%d/c%d" % (rnd, c.cid)), "round %d: request %d not sent" % (rnd, c.cid))
        t0 = time.monotonic()
        m.run(lambda: len(answered(first)) == N, timeout=5.0)
        got = answered(first)
        gone = [c for c in first if c.done and not c.responses]
        check(len(got) == N,
              "round %d: %d of %d connections answered within 5s with maxconn = %d over 2 workers "
              "(%d closed or reset unanswered)" % (rnd, len(got), N, N, len(gone)))
        check(all(c.responses[0][0] == 200 for c in got), "round %d: a status other than 200" % rnd)
        log("round %d: %d of %d answered in %.2fs" % (rnd, len(got), N, time.monotonic() - t0))

        extra = m.open(EXTRA)
        for c in extra:
            check(m.get(c, "/r%d/extra%d" % (rnd, c.cid)), "round %d: extra request not sent" % rnd)
        m.run(lambda: answered(extra) or any(c.done for c in extra), timeout=1.5)
        check(not answered(extra) and not any(c.done for c in extra),
              "round %d: with %d connections open (maxconn %d), of %d more: %d answered, %d closed "
              "or reset (want all waiting)" % (rnd, N, N, EXTRA, len(answered(extra)),
                                                 len([c for c in extra if c.done])))
        seen = [l for l in b.log_lines() if "/r%d/extra" % rnd in l]
        check(not seen, "round %d: a request over maxconn reached the backend: %r" % (rnd, seen))

        for k in range(EXTRA):
            t1 = time.monotonic()
            m.close(first[k])
            ok = m.run(lambda: len(answered(extra)) >= k + 1, timeout=3.0)
            check(ok, "round %d: %d connection(s) of the %d closed, %d of the waiting served "
                  "within 3s (want %d)" % (rnd, k + 1, N, len(answered(extra)), k + 1))
            dt = time.monotonic() - t1
            m.run(lambda: len(answered(extra)) > k + 1, timeout=0.3)
            check(len(answered(extra)) == k + 1,
                  "round %d: %d closed but %d waiting connections served (maxconn %d)"
                  % (rnd, k + 1, len(answered(extra)), N))
            check(not any(c.done for c in extra), "round %d: a waiting connection was closed" % rnd)
            log("round %d: closed %d, waiting connection served %.3fs later" % (rnd, k + 1, dt))
    finally:
        m.close_all()


def main():
    with Backend("b1") as b:
        fe = free_port()
        cfg = proxy_config(fe, [b.addr], workers=2, maxconn=N,
                           timeouts={"keepalive": "60s", "client": "60s", "http_request": "60s"})
        # The harness's readiness probe takes a slot for a moment: let it go.
        with Proxy(cfg, listen_port=fe):
            time.sleep(0.2)
            for rnd in range(ROUNDS):
                one_round(rnd, fe, b)
                time.sleep(0.3)  # the proxy sees the closes and frees the slots


if __name__ == "__main__":
    run(main)
