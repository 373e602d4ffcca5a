"""o02: GET /metrics (Prometheus text) with traffic on several pools.

Pools "app" (backends A1, A2, roundrobin) and "api" (backend B1, 20 ms
delay, reached through a path_prefix route), two workers. 100 requests to
app, 60 to api and 10 to api answered 404. Then:
- `promtool check metrics` accepts the live body (the other checks run
  first; then exit 77 when promtool is not installed); the Content-Type is the text format's 0.0.4;
- every family named in INTERFACE.md / the issue is there with HELP and
  TYPE, and every sample belongs to a declared family;
- surgegate_requests_total{code_class="2xx"} of each backend equals the
  requests it served (as the clients saw them through X-Backend), 4xx of B1
  is 10; surgegate_pool_requests_total agrees per pool;
- each histogram series: buckets non-decreasing in le order, the +Inf
  bucket equals _count, _count equals the backend's (or pool's) requests,
  and B1's mean duration (_sum/_count) is about its 20 ms delay;
- surgegate_backend_up is 1 for every backend, inflight and queue depth 0;
  bytes counters > 0."""
import shutil
import subprocess
import time

from harness import *

FAMILIES = {
    "surgegate_backend_up": "gauge",
    "surgegate_backend_inflight": "gauge",
    "surgegate_backend_queue_depth": "gauge",
    "surgegate_backend_weight": "gauge",
    "surgegate_backend_connections": "gauge",
    "surgegate_requests_total": "counter",
    "surgegate_backend_errors_total": "counter",
    "surgegate_backend_retries_total": "counter",
    "surgegate_backend_bytes_total": "counter",
    "surgegate_request_duration_seconds": "histogram",
    "surgegate_backend_connect_seconds": "histogram",
    "surgegate_backend_ttfb_seconds": "histogram",
    "surgegate_pool_queue_depth": "gauge",
    "surgegate_pool_queue_depth_max": "gauge",
    "surgegate_pool_queue_overflows_total": "counter",
    "surgegate_pool_backends": "gauge",
    "surgegate_pool_requests_total": "counter",
    "surgegate_queue_wait_seconds": "histogram",
    "surgegate_pool_request_duration_seconds": "histogram",
    "surgegate_client_errors_total": "counter",
    "surgegate_pool_client_errors_total": "counter",
    "surgegate_buffer_bytes": "gauge",
    "surgegate_buffer_limit_hits_total": "counter",
}
# Families of the whole process: no pool label.
PROCESS_WIDE = {"surgegate_buffer_bytes", "surgegate_buffer_limit_hits_total"}


def get_metrics(proxy):
    st, hdrs, body = admin_raw(proxy, "GET", "/metrics")
    check_eq(st, 200, "GET /metrics status")
    check(isinstance(body, str), "/metrics body parsed as JSON?")
    return hdrs, body


def declared(text):
    """{family: type} from the # TYPE lines; fails on a family declared twice
    or a TYPE without HELP."""
    types, helps = {}, set()
    for line in text.splitlines():
        f = line.split(None, 3)
        if len(f) >= 3 and f[0] == "#" and f[1] == "TYPE":
            check(f[2] not in types, "family %s declared twice" % f[2])
            types[f[2]] = f[3] if len(f) > 3 else ""
        elif len(f) >= 3 and f[0] == "#" and f[1] == "HELP":
            helps.add(f[2])
    for fam in types:
        check(fam in helps, "family %s has TYPE but no HELP" % fam)
    return types


def family_of(name, types):
    if name in types:
        return name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[:-len(suf)]) == "histogram":
            return name[:-len(suf)]
    return None


def histograms(samples, fam):
    """{(pool, backend or None): {"buckets": [(le, v)...], "sum": s, "count": c}}"""
    out = {}
    for n, l, v in samples:
        if not n.startswith(fam + "_"):
            continue
        key = (l.get("pool"), l.get("backend"))
        h = out.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if n == fam + "_bucket":
            h["buckets"].append((float(l["le"].replace("Inf", "inf")), v))
        elif n == fam + "_sum":
            h["sum"] = v
        elif n == fam + "_count":
            h["count"] = v
    return out


def main():
    with Backend("A1") as a1, Backend("A2") as a2, Backend("B1", delay_ms=20) as b1:
        fe = free_port()
        cfg = proxy_config(fe, [a1, a2], workers=2, routes=[(None, "/api/", "api")],
                           more_pools=[pool_text("api", [b1])])
        with Proxy(cfg, listen_port=fe) as proxy:
            ra = load(fe, 100, threads=4, path="/app")
            rb = load(fe, 60, threads=3, path="/api/x")
            rn = load(fe, 10, threads=2, path="/api/missing?status=404&delay=0")
            check(ra.ok() == 100 and rb.ok() == 60, "traffic: %r %r" % (ra, rb))
            check_eq(rn.statuses, {404: 10}, "404 statuses")
            check_eq(set(rb.backends), {"B1"}, "api route served by")
            check_eq(set(ra.backends), {"A1", "A2"}, "app pool served by")
            want = {a1.addr: ra.backends["A1"], a2.addr: ra.backends["A2"], b1.addr: 60}

            # the control thread merges once a second: poll (bounded) until
            # every request is counted, then read once more after a tick
            def counted():
                _, txt = get_metrics(proxy)
                s = prom_parse(txt)
                tot = sum(v for n, l, v in s if n == "surgegate_pool_requests_total")
                return tot >= 170
            wait_for(counted, timeout=5, interval=0.2, what="170 requests in /metrics")
            time.sleep(1.1)
            hdrs, text = get_metrics(proxy)
            path = tmp_path("metrics.txt")
            with open(path, "w") as f:
                f.write(text)
            log("/metrics: %d bytes, %d lines" % (len(text), text.count("\n")))

            ct = hdrs.get("Content-Type", "")
            check(ct.startswith("text/plain") and "version=0.0.4" in ct,
                  "/metrics Content-Type %r" % ct)
            check(text.endswith("\n"), "/metrics does not end with a newline")

            types = declared(text)
            for fam, t in FAMILIES.items():
                check(types.get(fam) == t, "family %s: TYPE %r, want %r"
                      % (fam, types.get(fam), t))
            samples = prom_parse(text)
            for n, l, v in samples:
                check(family_of(n, types) is not None, "sample %s%r has no # TYPE" % (n, l))
                check("pool" in l or family_of(n, types) in PROCESS_WIDE,
                      "sample %s%r without a pool label" % (n, l))

            # promtool
            promtool = shutil.which("promtool")
            if promtool:
                with open(path, "rb") as f:
                    p = subprocess.run([promtool, "check", "metrics"], stdin=f,
                                       capture_output=True, timeout=30)
                out = (p.stdout + p.stderr).decode("utf-8", "replace")
                log("promtool check metrics: exit %d %s" % (p.returncode, out.strip()[:300]))
                check(p.returncode == 0, "promtool check metrics failed (exit %d):\n%s"
                      % (p.returncode, out[:3000]))

            # counters
            for b, n in want.items():
                pool = "api" if b == b1.addr else "app"
                got = prom_value(samples, "surgegate_requests_total", pool=pool, backend=b,
                                 code_class="2xx")
                check_eq(got, n, "surgegate_requests_total{backend=%s,code_class=2xx}" % b)
                check_eq(prom_value(samples, "surgegate_backend_up", pool=pool, backend=b), 1,
                         "surgegate_backend_up %s" % b)
                check_eq(prom_value(samples, "surgegate_backend_inflight", pool=pool,
                                    backend=b), 0, "inflight %s" % b)
                for d in ("in", "out"):
                    check(prom_value(samples, "surgegate_backend_bytes_total", pool=pool,
                                     backend=b, direction=d) > 0, "bytes %s of %s" % (d, b))
                for k in ("connect", "timeout", "reset", "bad_response"):
                    check_eq(prom_value(samples, "surgegate_backend_errors_total", pool=pool,
                                        backend=b, kind=k), 0, "errors %s of %s" % (k, b))
            check_eq(prom_value(samples, "surgegate_requests_total", pool="api",
                                backend=b1.addr, code_class="4xx"), 10, "B1 4xx")
            check_eq(prom_value(samples, "surgegate_requests_total", pool="app",
                                backend=a1.addr, code_class="5xx"), 0, "A1 5xx")
            check_eq(prom_value(samples, "surgegate_pool_requests_total", pool="app",
                                code_class="2xx"), 100, "pool app 2xx")
            check_eq(prom_value(samples, "surgegate_pool_requests_total", pool="api",
                                code_class="2xx"), 60, "pool api 2xx")
            check_eq(prom_value(samples, "surgegate_pool_requests_total", pool="api",
                                code_class="4xx"), 10, "pool api 4xx")
            for pool in ("app", "api"):
                check_eq(prom_value(samples, "surgegate_pool_queue_depth", pool=pool), 0,
                         "queue depth of %s" % pool)
                check_eq(prom_value(samples, "surgegate_pool_queue_overflows_total",
                                    pool=pool), 0, "overflows of %s" % pool)

            # histograms
            per_backend = dict(want)
            per_backend[b1.addr] = 70
            per_pool = {"app": 100, "api": 70}
            for fam in [f for f, t in FAMILIES.items() if t == "histogram"]:
                hs = histograms(samples, fam)
                check(hs, "histogram %s has no series" % fam)
                for key, h in hs.items():
                    what = "%s%r" % (fam, key)
                    bs = h["buckets"]
                    check(len(bs) >= 5, "%s: %d buckets" % (what, len(bs)))
                    les = [le for le, _ in bs]
                    check(les == sorted(les) and len(set(les)) == len(les),
                          "%s: le bounds not increasing: %r" % (what, les))
                    check(les[-1] == float("inf"), "%s: no +Inf bucket" % what)
                    vals = [v for _, v in bs]
                    check(all(x <= y for x, y in zip(vals, vals[1:])),
                          "%s: buckets decrease: %r" % (what, bs))
                    check(h["count"] is not None and h["sum"] is not None,
                          "%s: _sum or _count missing" % what)
                    check_eq(vals[-1], h["count"], "%s: +Inf bucket vs _count" % what)
                    check(h["sum"] >= 0, "%s: _sum %r" % (what, h["sum"]))
                    pool, backend = key
                    if fam in ("surgegate_request_duration_seconds",
                               "surgegate_backend_ttfb_seconds"):
                        check(backend is not None, "%s without a backend label" % what)
                        check_eq(h["count"], per_backend[backend], "%s _count" % what)
                    if fam in ("surgegate_queue_wait_seconds",
                               "surgegate_pool_request_duration_seconds"):
                        check_eq(h["count"], per_pool[pool], "%s _count" % what)
            d = histograms(samples, "surgegate_request_duration_seconds")
            h = d[("api", b1.addr)]
            # 60 requests of 20 ms and 10 without delay: mean ~17 ms
            mean = h["sum"] / h["count"]
            log("B1 mean request duration %.4f s" % mean)
            check(0.014 <= mean <= 0.06, "B1 mean duration %.4f s, want ~0.017" % mean)
            le01 = dict(h["buckets"])[0.01]
            check(10 <= le01 <= 15, "B1: %r requests <= 10 ms, want the 10 undelayed ones"
                  % le01)
            h = d[("app", a1.addr)]
            check(h["sum"] / h["count"] < 0.05, "A1 (no delay) mean duration %.4f s"
                  % (h["sum"] / h["count"]))
    if not shutil.which("promtool"):
        skip("promtool not installed (Debian package prometheus); every other check passed")


if __name__ == "__main__":
    run(main)
