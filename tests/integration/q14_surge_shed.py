"""q14: a surge on a backend of fixed capacity: the queue's overload control
(CoDel-style standing detection, shedding by the drain rate, priorities).

One backend answering every request after 50 ms, maxconn = 4 in the pool:
a capacity of 80 requests per second. timeouts.queue = 2s, the default
queue control (target 100 ms). An open-loop client sends requests at fixed
rates, each on its own connection, each giving up after 2 s: 40/s for 2 s,
200/s for 10 s (2.5 x the capacity), 40/s for 3 s. 10% of the requests go
to /checkout (route priority "critical"), 20% to /batch ("sheddable"), the
rest to /page (normal).

The most that can be answered on time is the capacity while the offer
exceeds it: ideal = 40*2 + 80*10 + 40*3 requests. Asserted:
  - requests answered 200 within 2 s >= 80% of ideal (the issue's goal is
    95% on its larger scenario, measured by the benchmark; a FIFO holding
    every request up to timeouts.queue answers far fewer in time);
  - /checkout: >= 99% answered 200 within 2 s;
  - refusals (503) come at once: >= 95% within 100 ms, and they carry a
    Retry-After of 1..60 s;
  - over the whole run, surge start included (the queue is seen growing
    before it has stood an interval), the p99 of the answered requests
    stays under 400 ms: target + service time (150 ms) + slack for a shared
    test machine, not the 0.9 s of waiting an interval nor the 2 s a full
    FIFO gives;
  - sheddable requests are refused more often than normal ones;
  - metrics: surgegate_requests_shed_total{priority="normal",
    reason="overload"} > 0, nothing shed of priority critical,
    surgegate_requests_admitted_total{priority="critical"} > 0;
  - stats: pool "app" shows queue_target_ms 100 and a queue_state, and its
    priorities' counters;
  - journal: shedding_start for pool app during the surge, shedding_end
    with shed > 0 after it."""
import asyncio
import os
import time

from harness import *
from rawhttp import Check

DELAY_MS = 50
MAXCONN = 4
CAPACITY = MAXCONN * 1000.0 / DELAY_MS  # requests per second
PHASES = [(40, 2.0), (200, 10.0), (40, 3.0)]  # (rate, seconds)
DEADLINE = 2.0


async def one(port, path, t_sched, results):
    t0 = time.monotonic()
    status, ra = None, None
    try:
        async def go():
            r, w = await asyncio.open_connection("127.0.0.1", port)
            try:
                w.write(("GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
                         % path).encode())
                await w.drain()
                data = await r.read()
            finally:
                w.close()
            return data
        data = await asyncio.wait_for(go(), DEADLINE)
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        for h in head[1:]:
            k, _, v = h.partition(":")
            if k.strip().lower() == "retry-after":
                ra = v.strip()
    except asyncio.TimeoutError:
        status = "late"
    except (OSError, ValueError, IndexError) as e:
        status = "error: %s" % e
    results.append({"t": t_sched, "path": path, "status": status,
                    "lat": time.monotonic() - t0, "ra": ra})


async def open_loop(port):
    results, tasks = [], []
    start = time.monotonic()
    t = 0.0
    n = 0
    for rate, dur in PHASES:
        end = t + dur
        while t < end:
            k = n % 10
            path = "/checkout" if k == 0 else "/batch" if k in (3, 7) else "/page"
            n += 1
            wait = start + t - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.ensure_future(one(port, "%s?n=%d" % (path, n), t, results)))
            t += 1.0 / rate
    await asyncio.gather(*tasks)
    return results


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def main():
    c = Check("q14_surge_shed")
    # Measuring aids (not used by ctest): Q14_BASELINE=1 leaves the routes'
    # priorities and the checks of the new names out, so that the same load
    # runs against a build without this feature; Q14_EXTRA_POOL adds pool
    # text (e.g. 'queue = { lifo = true; };') to compare variants.
    baseline = os.environ.get("Q14_BASELINE") == "1"
    with Backend("cap", delay_ms=DELAY_MS, log=False) as b:
        fe = free_port()
        routes = ('routes = ( { path_prefix = "/checkout"; pool = "app"; priority = "critical"; },'
                  ' { path_prefix = "/batch"; pool = "app"; priority = "sheddable"; } );')
        cfg = proxy_config(fe, [{"address": b.addr, "maxconn": MAXCONN}], workers=2,
                           maxqueue=1000, timeouts={"queue": "2s"},
                           extra_frontend="" if baseline else routes,
                           extra_pool=os.environ.get("Q14_EXTRA_POOL", ""))
        with Proxy(cfg, listen_port=fe) as proxy:
            http_get(fe, "/warmup")
            res = asyncio.run(open_loop(fe))
            surge0, surge1 = PHASES[0][1], PHASES[0][1] + PHASES[1][1]
            ideal = sum(min(r, CAPACITY) * d for r, d in PHASES)
            ok = [r for r in res if r["status"] == 200]
            refused = [r for r in res if r["status"] == 503]
            other = [r for r in res if r["status"] not in (200, 503)]
            co = [r for r in res if r["path"].startswith("/checkout")]
            co_ok = [r for r in co if r["status"] == 200]
            steady = [r["lat"] for r in ok if surge0 + PHASES[1][1] / 2 <= r["t"] < surge1]
            fast = [r for r in refused if r["lat"] <= 0.1]
            bad_ra = [r["ra"] for r in refused
                      if not (r["ra"] or "").isdigit() or not 1 <= int(r["ra"]) <= 60]

            def share_ok(prefix):
                xs = [r for r in res if r["path"].startswith(prefix)]
                return len([r for r in xs if r["status"] == 200]) / max(1, len(xs))
            log("sent %d, 200: %d (ideal %d: %.1f%%), 503: %d, other: %d %s"
                % (len(res), len(ok), ideal, 100.0 * len(ok) / ideal, len(refused), len(other),
                   sorted(set(str(r["status"]) for r in other))[:5]))
            log("checkout: %d/%d answered 200; share 200 page %.2f batch %.2f"
                % (len(co_ok), len(co), share_ok("/page"), share_ok("/batch")))
            log("refusals within 100 ms: %d/%d, p50 %s p99 %s max %s; Retry-After seen %s"
                % (len(fast), len(refused), pct([r["lat"] for r in refused], 0.5),
                   pct([r["lat"] for r in refused], 0.99),
                   max([r["lat"] for r in refused], default=None),
                   sorted(set(r["ra"] for r in refused))[:8]))
            slow = [(r["path"].split("?")[0], round(r["t"], 2), round(r["lat"], 2))
                    for r in refused if r["lat"] > 0.1]
            log("slow refusals (path, sent at s, after s): %s" % slow[:12])
            log("answered: p50 %s p99 %s; second half of the surge: p99 %s (n=%d)"
                % (pct([r["lat"] for r in ok], 0.5), pct([r["lat"] for r in ok], 0.99),
                   pct(steady, 0.99), len(steady)))
            c.ok(len(ok) >= 0.8 * ideal, "answered on time >= 80% of what the backend can serve",
                 "%d of ideal %d" % (len(ok), ideal))
            c.ok(len(co) > 0 and len(co_ok) >= 0.99 * len(co),
                 "critical /checkout: >= 99% answered 200 within 2 s",
                 "%d of %d; others %s" % (len(co_ok), len(co),
                                         [r["status"] for r in co if r["status"] != 200][:10]))
            c.ok(len(refused) > 0 and len(fast) >= 0.95 * len(refused),
                 "refusals come at once (>= 95% within 100 ms)",
                 "%d of %d" % (len(fast), len(refused)))
            c.ok(not bad_ra, "every 503 carries Retry-After of 1..60 s", "bad: %r" % bad_ra[:5])
            c.ok(ok and pct([r["lat"] for r in ok], 0.99) <= 0.4,
                 "p99 of answered requests, surge start included, <= 400 ms",
                 "p99 %s of %d" % (pct([r["lat"] for r in ok], 0.99), len(ok)))
            c.ok(share_ok("/batch") < share_ok("/page"),
                 "sheddable requests are shed before normal ones",
                 "200 share batch %.2f page %.2f" % (share_ok("/batch"), share_ok("/page")))

            if baseline:
                c.done()
                return
            st, hdrs, body = admin_raw(proxy, "GET", "/metrics")
            m = prom_parse(body if isinstance(body, str) else body.decode())
            shed_n = prom_value(m, "surgegate_requests_shed_total", pool="app",
                                priority="normal", reason="overload")
            shed_c = sum(v for n, l, v in m if n == "surgegate_requests_shed_total"
                         and l.get("pool") == "app" and l.get("priority") == "critical")
            adm_c = prom_value(m, "surgegate_requests_admitted_total", pool="app",
                               priority="critical")
            log("metrics: shed normal/overload %s, shed critical %s, admitted critical %s"
                % (shed_n, shed_c, adm_c))
            c.ok(shed_n > 0, "metrics: normal requests shed for overload")
            c.ok(shed_c == 0, "metrics: no critical request shed", "shed %s" % shed_c)
            c.ok(adm_c >= len(co_ok), "metrics: critical requests admitted counted",
                 "%s < %d" % (adm_c, len(co_ok)))

            p = stats_pool(proxy)
            log("stats: queue_target_ms %r queue_state %r drain_rps %r episodes %r"
                % (p.get("queue_target_ms"), p.get("queue_state"), p.get("drain_rps"),
                   p.get("shedding_episodes")))
            c.ok(p.get("queue_target_ms") == 100 and p.get("queue_state") in ("ok", "standing"),
                 "stats: queue target and state shown")
            pr = p.get("priorities") or {}
            c.ok(pr.get("normal", {}).get("shed", {}).get("overload", 0) > 0
                 and pr.get("critical", {}).get("admitted", 0) > 0,
                 "stats: per-priority admitted and shed counts", "%r" % pr)
            c.ok(0.5 * CAPACITY <= (p.get("drain_rps") or 0) <= 1.5 * CAPACITY,
                 "stats: measured drain rate near the capacity",
                 "drain_rps %r, capacity %d" % (p.get("drain_rps"), CAPACITY))

            ev = wait_journal(proxy, "shedding_end", timeout=8.0, pool="app")
            starts = find_events(admin_events(proxy), "shedding_start", pool="app")
            log("journal: %s / %s" % (starts[-1:], ev[-1:]))
            c.ok(len(starts) >= 1, "journal: shedding_start for pool app")
            c.ok(ev[-1].get("shed", 0) > 0, "journal: shedding_end counts the requests shed",
                 "%r" % ev[-1])
    c.done()


if __name__ == "__main__":
    run(main)
