"""o01: per-backend and per-pool numbers in GET /api/v1/stats.

(a) Latency: 200 requests over 4 keep-alive clients to a backend that
    answers after 50 ms (two workers, so the control thread merges two
    workers' histograms): the pool's and the backend's total and TTFB p50
    over the 10 s window are within 10% of 50 ms, their count is exactly
    200 (the 1 min and 5 min windows too), p50 <= p90 <= p95 <= p99 <= max;
    requests == 200, responses.2xx == 200, no errors, bytes in and out > 0.
    Then 20 requests answered 500: responses.5xx == 20, requests == 220,
    error_rate > 0 (pool and backend).
(b) Queue: a backend with maxconn 1 and 6 requests of 300 ms sent at once:
    the pool's queue_depth_max >= 3, the queue-wait p99 > 0 and its max
    close to the 5 x 300 ms the last one waited, the queue wait count is 6;
    everything answered 200 and the queue is empty afterwards.
(c) Shape: `since` of a backend is an ISO-8601 millisecond UTC time no
    older than the proxy (not 1970 for a backend that never changed), and
    since_ms agrees with it."""
import calendar
import time

from harness import *

WINDOWS = ("10s", "1m", "5m")


def lat(obj, kind, window="10s"):
    lm = obj.get("latency_ms")
    check(isinstance(lm, dict), "no latency_ms in %r" % list(obj))
    w = lm.get(kind, {}).get(window)
    check(isinstance(w, dict), "latency_ms.%s.%s missing: %r" % (kind, window, lm.get(kind)))
    for k in ("count", "p50", "p90", "p95", "p99", "max"):
        check(k in w, "latency_ms.%s.%s has no %s: %r" % (kind, window, k, w))
    return w


def wait_requests(proxy, want, pool="app", timeout=4.0):
    """Stats are merged once a second: polls until the pool counts `want`
    requests (or the time is up), then returns the pool object."""
    deadline = time.monotonic() + timeout
    while True:
        p = stats_pool(proxy, pool)
        if p.get("requests", 0) >= want or time.monotonic() >= deadline:
            # one more tick so that every counter had its merge
            time.sleep(1.1)
            return stats_pool(proxy, pool)
        time.sleep(0.2)


def check_within(v, want, rel, what):
    check(isinstance(v, (int, float)) and abs(v - want) <= want * rel,
          "%s = %r, want %s +- %d%%" % (what, v, want, int(rel * 100)))


def latency():
    with Backend("A", delay_ms=50) as a:
        fe = free_port()
        # outlier ejection off: the 500s below must all reach the backend
        cfg = proxy_config(fe, [a.addr], workers=2,
                           extra_pool=cfg_group("outlier", consecutive_errors=0))
        with Proxy(cfg, listen_port=fe) as proxy:
            res = load(fe, 200, threads=4, path="/lat")
            check(res.ok() == 200, "200 delayed requests: %r %s" % (res.statuses, res.errors))
            p = wait_requests(proxy, 200)
            b = stats_backend(p, a)
            check(b is not None, "stats: backend %s missing" % a.addr)
            for who, o in (("pool", p), ("backend", b)):
                for kind in ("total", "ttfb"):
                    w = lat(o, kind)
                    log("%s %s 10s: %r" % (who, kind, w))
                    check_within(w["p50"], 50.0, 0.10, "%s latency_ms.%s.10s.p50" % (who, kind))
                    check(w["p50"] <= w["p90"] <= w["p95"] <= w["p99"] <= w["max"],
                          "%s %s percentiles out of order: %r" % (who, kind, w))
                    check(w["max"] < 1000, "%s %s max %r ms for 50 ms requests" % (who, kind,
                                                                                w["max"]))
                    for win in WINDOWS:
                        check_eq(lat(o, kind, win)["count"], 200,
                                 "%s latency_ms.%s.%s.count" % (who, kind, win))
                # connect time is tiny on loopback, queue wait nil without limits
                check(lat(o, "connect")["p99"] < 50, "%s connect p99 %r ms"
                      % (who, lat(o, "connect")["p99"]))
                check(lat(o, "queue")["max"] < 25, "%s queue max %r ms with no queueing"
                      % (who, lat(o, "queue")["max"]))
                check_eq(o.get("requests"), 200, "%s requests" % who)
                check_eq(o.get("responses", {}).get("2xx"), 200, "%s responses.2xx" % who)
                check_eq(sum(o.get("responses", {}).values()), 200, "%s responses (all)" % who)
                check_eq(o.get("errors"), {"connect": 0, "timeout": 0, "reset": 0,
                                           "bad_response": 0}, "%s errors" % who)
                check(o.get("bytes_out", 0) > 0 and o.get("bytes_in", 0) > 0,
                      "%s bytes in %r out %r" % (who, o.get("bytes_in"), o.get("bytes_out")))
                check_eq(o.get("error_rate"), 0.0, "%s error_rate with 200 OKs" % who)
                check_eq(o.get("inflight"), 0, "%s inflight after the load" % who)
            check_eq(b["responses"], p["responses"], "pool and its only backend: responses")
            check_eq(b["bytes_out"], p["bytes_out"], "pool and its only backend: bytes_out")
            # every response carried at least its status line and headers
            check(p["bytes_out"] >= 200 * 40, "pool bytes_out %r for 200 responses"
                  % p["bytes_out"])
            # the client sent exactly "GET /lat HTTP/1.1\r\nHost: test\r\n\r\n" each time
            req_len = len(b"GET /lat HTTP/1.1\r\nHost: test\r\n\r\n")
            check_eq(p["bytes_in"], 200 * req_len, "pool bytes_in for 200 requests of %d bytes"
                     % req_len)

            # 20 answered 500 by the backend
            res = load(fe, 20, threads=2, path="/err?status=500&delay=0")
            check_eq(res.statuses, {500: 20}, "statuses of ?status=500")
            p = wait_requests(proxy, 220)
            b = stats_backend(p, a)
            for who, o in (("pool", p), ("backend", b)):
                log("%s after 500s: requests %r responses %r error_rate %r"
                    % (who, o.get("requests"), o.get("responses"), o.get("error_rate")))
                check_eq(o.get("responses", {}).get("5xx"), 20, "%s responses.5xx" % who)
                check_eq(o.get("responses", {}).get("2xx"), 200, "%s responses.2xx" % who)
                check_eq(o.get("requests"), 220, "%s requests" % who)
                er = o.get("error_rate")
                check(isinstance(er, (int, float)) and 0 < er <= 1.0,
                      "%s error_rate %r after 20 of 220 answered 500" % (who, er))
                check_eq(lat(o, "total")["count"], 220, "%s total count" % who)


def queue():
    with Backend("Q", delay_ms=300) as q:
        fe = free_port()
        cfg = proxy_config(fe, [(q.addr, 1, 1)], workers=2, timeouts={"queue": "10s"})
        with Proxy(cfg, listen_port=fe) as proxy:
            ps = burst(fe, ["/q/%d" % i for i in range(6)], timeout=15)
            check_eq([x.status for x in ps], [200] * 6, "statuses of 6 queued requests (%s)"
                     % [x.error for x in ps])
            check(q.stats()["max_inflight"] == 1, "maxconn 1 not kept: backend max_inflight %r"
                  % q.stats()["max_inflight"])
            p = wait_requests(proxy, 6)
            b = stats_backend(p, q)
            w = lat(p, "queue")
            log("pool queue_depth_max %r, queue wait 10s %r" % (p.get("queue_depth_max"), w))
            check(p.get("queue_depth_max", 0) >= 3, "pool queue_depth_max %r with 5 waiting"
                  % p.get("queue_depth_max"))
            check_eq(p.get("queue_depth"), 0, "pool queue_depth after the burst")
            check_eq(w["count"], 6, "pool queue wait count")
            check(w["p99"] > 0, "pool queue wait p99 %r (5 requests waited)" % w["p99"])
            # the last one waited for the 5 before it: ~1500 ms
            check(1200 <= w["max"] <= 3000, "pool queue wait max %r ms, want ~1500" % w["max"])
            check(w["p50"] > 100, "pool queue wait p50 %r ms, want ~600-900" % w["p50"])
            check_eq(lat(b, "queue")["count"], 6, "backend queue wait count")
            check(lat(b, "total")["max"] >= 1500, "backend total max %r ms (last of 6 x 300 ms)"
                  % lat(b, "total")["max"])


def shape():
    with Backend("S") as s:
        fe = free_port()
        t_start = time.time()
        with Proxy(proxy_config(fe, [s.addr], workers=1), listen_port=fe) as proxy:
            check_eq(http_get(fe, "/x")[0], 200, "one request")
            obj = admin_stats(proxy)
            for k in ("version", "time", "uptime_s", "pools"):
                check(k in obj, "stats has no %r: %r" % (k, list(obj)))
            check(ISO_MS_RX.match(obj["time"]), "stats time %r not ISO-8601 ms UTC" % obj["time"])
            b = stats_backend(obj["pools"][0], s)
            since, since_ms = b.get("since"), b.get("since_ms")
            log("backend since %r since_ms %r" % (since, since_ms))
            check(isinstance(since, str) and ISO_MS_RX.match(since),
                  "backend since %r not ISO-8601 ms UTC" % since)
            secs = calendar.timegm(time.strptime(since[:19], "%Y-%m-%dT%H:%M:%S"))
            check(t_start - 5 <= secs <= time.time() + 1,
                  "backend up since the proxy started: `since` is %s (since_ms %r), want a time "
                  "after %s" % (since, since_ms,
                                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start))))
            check(abs(since_ms - (secs * 1000 + int(since[20:23]))) < 1000,
                  "since_ms %r disagrees with since %r" % (since_ms, since))


def main():
    latency()
    queue()
    shape()


if __name__ == "__main__":
    run(main)
