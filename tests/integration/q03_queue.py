"""q03: backend maxconn, the pool queue, queue timeout and queue overflow.

One backend with maxconn = 2 in a pool with maxqueue = 4, two workers;
timeouts.queue = 8s for (a) and (b), 1s for (c) and (d).

(a) 6 concurrent requests to a backend answering after 500 ms: the backend
    never has more than 2 requests at once (its own max_inflight is exactly
    2), all 6 succeed, the last one only after three rounds (>= 1.3 s), and
    while they wait the admin API shows the pool's queue_depth > 0 and the
    backend's inflight never above 2.
(b) FIFO: 2 slots held (2.0 s and 2.5 s), then 4 requests ?seq=0..3 sent
    one at a time, each once the previous one shows in the admin API's
    queue_depth (at least 30 ms apart), so the proxy queued them in sending
    order; each holds its slot 1 s, so slots free up 500 ms apart, and the
    backend must receive the queued requests in sending order.
(c) timeouts.queue = 1s: with 2 slots busy for 3 s, one more request gets
    503 with Retry-After after about 1 s (0.95 s .. 2.5 s) and never reaches
    the backend.
(d) 2 busy, 4 queued (maxqueue full): the next request gets 503 with
    Retry-After at once (< 0.5 s, far below the 1 s queue timeout)."""
import time

from harness import *
from rawhttp import Check

MAXQ = 4


def cfg_for(fe, b, queue_timeout):
    # The plain queue: its overload control off (with 500 ms answers the
    # queue stands and would shed what (b) and (c) queue; q13 tests it).
    return proxy_config(fe, [{"address": b.addr, "maxconn": 2}], workers=2, maxqueue=MAXQ,
                        timeouts={"queue": queue_timeout},
                        extra_pool='queue = { target = "0s"; };')


def wait_inflight(b, n, timeout=3.0):
    return wait_for(lambda: b.stats()["inflight"] >= n, timeout=timeout,
                    what="%d requests in flight on backend %s" % (n, b.name))


def part_a_b(c):
    with Backend("slow", delay_ms=500) as b:
        fe = free_port()
        with Proxy(cfg_for(fe, b, "8s"), listen_port=fe) as proxy:
            # (a) 6 concurrent requests, 2 slots
            b.stats(reset=True)
            with AdminPoller(proxy) as poll:
                ps = [Pending(fe, "/a?i=%d" % i, timeout=10) for i in range(6)]
                for p in ps:
                    p.result()
            st = b.stats()
            statuses = [p.status for p in ps]
            times = sorted(p.elapsed for p in ps)
            log("(a) statuses %s, times %s, backend max_inflight %s"
                % (statuses, ["%.2f" % t for t in times], st["max_inflight"]))
            c.ok(statuses == [200] * 6, "(a) all 6 requests answered 200",
                 "statuses %s errors %s" % (statuses, [p.error for p in ps]))
            c.ok(st["max_inflight"] == 2, "(a) backend max_inflight is exactly 2",
                 "got %s" % st["max_inflight"])
            c.ok(times[-1] >= 1.3, "(a) the 6th answer came after 3 rounds of 500 ms",
                 "slowest %.2fs (2 slots x 500 ms means >= 1.5 s)" % times[-1])
            qmax = poll.max_of("pool_queue_depth")
            imax = poll.max_of("inflight", b)
            log("(a) admin: %d samples, max pool queue_depth %s, max backend inflight %s%s"
                % (len(poll.samples), qmax, imax,
                   ", errors: %s" % poll.errors[:1] if poll.errors else ""))
            c.ok(len(poll.samples) > 0, "(a) admin API pool JSON readable during the burst",
                 "; ".join(poll.errors[:2]))
            c.ok(qmax is not None and qmax > 0, "(a) admin pool queue_depth > 0 while queued",
                 "max seen %r" % qmax)
            c.ok(imax is not None and 0 < imax <= 2, "(a) admin backend inflight in 1..2",
                 "max seen %r" % imax)

            # (b) FIFO
            holds = [Pending(fe, "/hold?n=1&delay=2000", timeout=15)]
            time.sleep(0.02)
            holds.append(Pending(fe, "/hold?n=2&delay=2500", timeout=15))
            wait_inflight(b, 2)
            qs = []
            for i in range(MAXQ):
                qs.append(Pending(fe, "/q?seq=%d&delay=1000" % i, timeout=15))
                time.sleep(0.03)
                wait_for(lambda: pool_info(proxy).get("pool_queue_depth", 0) >= i + 1,
                         timeout=2, interval=0.01,
                         what="request seq=%d in the queue (admin queue_depth)" % i)
            for p in holds + qs:
                p.result()
            statuses = [p.status for p in holds + qs]
            c.ok(statuses == [200] * (2 + MAXQ), "(b) holds and queued requests answered 200",
                 "statuses %s errors %s" % (statuses, [p.error for p in holds + qs]))
            order = [l.split("seq=")[1].split("&")[0] for l in b.traffic_lines()
                     if "/q?seq=" in l]
            log("(b) backend received the queued requests in order %s" % order)
            c.ok(order == [str(i) for i in range(MAXQ)],
                 "(b) queued requests reach the backend in FIFO order",
                 "order %s, sent 0..%d" % (order, MAXQ - 1))


def part_c_d(c):
    with Backend("busy") as b:
        fe = free_port()
        with Proxy(cfg_for(fe, b, "1s"), listen_port=fe) as proxy:
            busy = [Pending(fe, "/busy?n=%d&delay=3000" % i, timeout=10) for i in range(2)]
            wait_inflight(b, 2)

            # (c) one more: waits in the queue for timeouts.queue, then 503
            p = Pending(fe, "/c-timeout", timeout=10)
            status, h, body, el = p.result()
            log("(c) queued request: %s after %.2fs, Retry-After %r"
                % (status, el, h.get("Retry-After")))
            c.ok(status == 503, "(c) queue timeout answers 503", "got %s (%s)" % (status, p.error))
            c.ok(0.95 <= el <= 2.5, "(c) 503 after about timeouts.queue = 1s",
                 "after %.2fs" % el)
            c.ok(retry_after_ok(h), "(c) the 503 carries Retry-After", "headers %r" % dict(h))
            c.ok(not any("/c-timeout" in l for l in b.traffic_lines()),
                 "(c) the timed-out request never reached the backend")

            # (d) fill the queue, then one more
            c.ok(b.stats()["inflight"] == 2, "(d) setup: still 2 busy on the backend")
            queued = [Pending(fe, "/d-queued?n=%d" % i, timeout=10) for i in range(MAXQ)]
            seen = None
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                r = admin_try_get(proxy, "pools/app")
                if r and r[0] == 200 and isinstance(r[1], dict):
                    seen = r[1].get(ADMIN_FIELDS["pool_queue_depth"])
                    if seen == MAXQ:
                        break
                time.sleep(0.02)
            log("(d) admin pool queue_depth with the queue full: %r" % seen)
            p = Pending(fe, "/d-overflow", timeout=10)
            status, h, body, el = p.result()
            log("(d) overflow request: %s after %.3fs, Retry-After %r"
                % (status, el, h.get("Retry-After")))
            c.ok(status == 503, "(d) queue full answers 503", "got %s (%s)" % (status, p.error))
            c.ok(el < 0.5, "(d) the 503 comes at once, not after the queue timeout",
                 "after %.3fs" % el)
            c.ok(retry_after_ok(h), "(d) the 503 carries Retry-After", "headers %r" % dict(h))
            c.ok(seen == MAXQ, "(d) admin pool queue_depth == maxqueue while full",
                 "saw %r" % seen)
            for q in queued:
                q.result()
            qst = [(q.status, round(q.elapsed, 2)) for q in queued]
            log("(d) the queued ones: %s" % qst)
            c.ok(all(q.status == 503 and 0.8 <= q.elapsed <= 2.5 for q in queued),
                 "(d) the 4 queued requests time out in the queue (503 after ~1 s)",
                 "got %s" % qst)
            for q in busy:
                q.result()
            c.ok([q.status for q in busy] == [200, 200], "(c/d) the 2 busy requests answered 200",
                 "got %s" % [(q.status, q.error) for q in busy])
            c.ok(not any("/d-" in l for l in b.traffic_lines()),
                 "(d) no queued/overflowed request reached the backend",
                 "%s" % [l for l in b.traffic_lines() if "/d-" in l])


def main():
    c = Check("q03_queue")
    part_a_b(c)
    part_c_d(c)
    c.done()


if __name__ == "__main__":
    run(main)
