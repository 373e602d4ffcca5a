"""q15: a full queue makes room for a higher priority: a request that finds
the queue at `maxqueue` refuses the newest waiting request of the lowest
priority below its own (503 at once, counted as shed "queue_full"); with
none below it, it is refused itself.

One backend answering after 1.5 s, maxconn 1, maxqueue 4, the overload
control off (queue target "0s": only maxqueue decides). Sent in order, 50 ms
apart, each on its own connection:
  /page (takes the slot), 4 x /batch (sheddable: fill the queue),
  2 x /checkout (critical: each pushes out the newest /batch),
  2 x /page (normal: each pushes out the next newest /batch),
  1 x /page (nothing below normal waits: refused itself).
Asserted: the four /batch get 503 within 100 ms of the request that pushed
them out, the newest first; both /checkout, the first /page and the two
/pages that got in answer 200, /checkout first; the last /page gets 503
with Retry-After at once; metrics count 4 sheddable and 1 normal
queue_full."""
import time

from harness import *
from rawhttp import Check

DELAY_MS = 1500


def main():
    c = Check("q15_queue_evict")
    with Backend("slow", delay_ms=DELAY_MS, log=False) as b:
        fe = free_port()
        routes = ('routes = ( { path_prefix = "/checkout"; pool = "app"; priority = "critical"; },'
                  ' { path_prefix = "/batch"; pool = "app"; priority = "sheddable"; } );')
        cfg = proxy_config(fe, [{"address": b.addr, "maxconn": 1}], workers=2, maxqueue=4,
                           timeouts={"queue": "15s"}, extra_frontend=routes,
                           extra_pool='queue = { target = "0s"; };')
        with Proxy(cfg, listen_port=fe) as proxy:
            http_get(fe, "/warmup")
            paths = (["/page?0"] + ["/batch?%d" % i for i in range(1, 5)] +
                     ["/checkout?5", "/checkout?6", "/page?7", "/page?8", "/page?9"])
            sent = []
            for i, p in enumerate(paths):
                if i:
                    time.sleep(0.05)
                sent.append((time.monotonic(), Pending(fe, p, timeout=20.0)))
            res = []
            for t, p in sent:
                p.result()
                res.append((p.path, p.status, t + (p.elapsed or 0), p.elapsed,
                            p.headers.get("Retry-After")))
            for r in res:
                log("%-12s %s done at +%.3f s (after %.3f s) Retry-After %s"
                    % (r[0], r[1], r[2] - sent[0][0], r[3] or -1, r[4]))
            st = {r[0]: r[1] for r in res}
            done = {r[0]: r[2] for r in res}
            c.ok(all(st["/batch?%d" % i] == 503 for i in range(1, 5)),
                 "the four sheddable requests are pushed out (503)",
                 "%r" % [st["/batch?%d" % i] for i in range(1, 5)])
            # pushed out by requests 5, 6, 7, 8 in turn: newest first
            for pusher, victim in ((5, 4), (6, 3), (7, 2), (8, 1)):
                lag = done["/batch?%d" % victim] - sent[pusher][0]
                c.ok(0 <= lag <= 0.1,
                     "/batch?%d refused at once when request %d arrives" % (victim, pusher),
                     "%.3f s after it" % lag)
            c.ok(all(st[p] == 200 for p in ("/page?0", "/checkout?5", "/checkout?6", "/page?7",
                                            "/page?8")),
                 "the first page, both checkouts and the two pages admitted answer 200",
                 "%r" % st)
            c.ok(done["/checkout?5"] < done["/page?7"] and done["/checkout?6"] < done["/page?7"],
                 "critical requests are served before the normal ones that waited with them")
            last = [r for r in res if r[0] == "/page?9"][0]
            c.ok(last[1] == 503 and (last[3] or 9) <= 0.1 and retry_after_ok(
                {"Retry-After": last[4] or ""}),
                 "with nothing below it waiting, a normal request is refused at once",
                 "%r" % (last,))
            st_, hdrs, body = admin_raw(proxy, "GET", "/metrics")
            m = prom_parse(body if isinstance(body, str) else body.decode())
            shed_s = prom_value(m, "surgegate_requests_shed_total", pool="app",
                                priority="sheddable", reason="queue_full")
            shed_n = prom_value(m, "surgegate_requests_shed_total", pool="app",
                                priority="normal", reason="queue_full")
            c.ok(shed_s == 4 and shed_n == 1,
                 "metrics: 4 sheddable and 1 normal refused for a full queue",
                 "sheddable %s normal %s" % (shed_s, shed_n))
    c.done()


if __name__ == "__main__":
    run(main)
