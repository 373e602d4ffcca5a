"""q11: health checks are on by default; runtime-added backends start
"checking"; an ejection ends at a passing check; `enabled = false`.

1. Checking, refused: pool A with no "health" group (the defaults); a
   backend added through the admin API on a port nobody listens on is
   "checking" at once (POST answer, admin API, surgegate_backend_up 0,
   surgegate_pool_backends{state="checking"} 1) and still after 2.5 s (its
   reason names the refused connection); 200 GETs meanwhile all go to A.
2. Checking, then up: B (sg-testbackend) whose checks fail (503) is added:
   "checking", and 200 GETs reach only A; once B's checks pass it is "up"
   within 2 s (the next check, at the fast interval) and takes its share.
3. Ejection, then the port closes: outlier ejection of 500 ms; B answers
   500 to traffic (its checks pass) and is ejected; then B stops. Polled
   for 2.5 s after the ejection's end, B is never "up" (a check at the end
   of the ejection is refused: it stays out), and GETs all go to A.
4. `health = { enabled = false; interval = "200ms"; }` with a backend whose
   checks would fail (sg-testbackend --refuse-health): it stays "up" and
   takes its share, and a backend added at runtime is "up" at once; the
   same pool with `enabled = true` takes it down within 2 s (control)."""
import time

from harness import *


def traffic(fe, n, what, path="/q11"):
    res = load(fe, n, threads=4, path=path, max_seconds=30)
    check(res.ok() == n, "%s: %d of %d requests failed: %s" % (what, res.failed(), n, res.errors))
    return res


def metrics(proxy):
    st, text = admin_request(proxy, "GET", "/metrics")
    check_eq(st, 200, "GET /metrics status")
    return prom_parse(text)


def add_backend(proxy, addr):
    st, obj = admin_post(proxy, "pools/app/backends", {"address": addr, "weight": 1})
    check_eq(st, 201, "adding %s: %r" % (addr, obj))
    return obj


def checking_refused():
    with Backend("A", log=False) as a:
        fe = free_port()
        with Proxy(proxy_config(fe, [a.addr]), listen_port=fe) as proxy:
            dead = "127.0.0.1:%d" % dead_port()
            obj = add_backend(proxy, dead)
            log("POST answer: state %r, reason %r" % (obj.get("state"), obj.get("reason")))
            check_eq(obj.get("state"), "checking", "state of the added backend in the POST answer")
            check_eq(backend_state(proxy, dead)[0], "checking", "state right after the add")
            t0 = time.monotonic()
            traffic(fe, 200, "with a checking backend")
            time.sleep(max(0.0, 2.5 - (time.monotonic() - t0)))
            info = backend_info(proxy, dead)
            log("after 2.5 s: state %r, reason %r, requests %r"
                % (info.get("state"), info.get("reason"), info.get("requests")))
            check_eq(info.get("state"), "checking", "state 2.5 s after the add (refused port)")
            check("refused" in (info.get("reason") or ""),
                  "reason %r does not name the refused connection" % info.get("reason"))
            check_eq(info.get("failures"), 0, "attempts on the checking backend (failures)")
            check_eq(a.requests(), 200, "requests A received")
            m = metrics(proxy)
            check_eq(prom_value(m, "surgegate_backend_up", pool="app", backend=dead), 0,
                     "surgegate_backend_up of the checking backend")
            check_eq(prom_value(m, "surgegate_pool_backends", pool="app", state="checking"), 1,
                     "surgegate_pool_backends{state=checking}")
            check_eq(prom_value(m, "surgegate_pool_backends", pool="app", state="up"), 1,
                     "surgegate_pool_backends{state=up}")


def checking_then_up():
    with Backend("A", log=False) as a, Backend("B") as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [a.addr], workers=2), listen_port=fe) as proxy:
            b.control(health=503)
            obj = add_backend(proxy, b.addr)
            check_eq(obj.get("state"), "checking", "state of B in the POST answer")
            wait_for(lambda: b.stats()["healthz"] >= 1, timeout=3, what="a health check of B")
            res = traffic(fe, 200, "B checking")
            check(res.backends == {"A": 200} and b.requests() == 0,
                  "traffic reached B before it passed a check: %s, B saw %d"
                  % (res.backends, b.requests()))
            check_eq(backend_state(proxy, b)[0], "checking", "B's state while its checks fail")
            b.control(health=200)
            el, info = wait_backend(proxy, b, "up", 5, what="B passing its checks")
            log("B up %.2f s after its checks started passing; reason %r"
                % (el, info.get("reason")))
            check(el <= 2.0, "B up only %.2f s after its checks passed (want <= 2 s: one "
                  "passing check, at the fast interval)" % el)
            res = traffic(fe, 200, "B up")
            check(res.backends.get("B", 0) >= 60, "B up: got %s of 200 (want >= 30%%)"
                  % res.backends)


OUTLIER = cfg_group("outlier", consecutive_errors=3, base_ejection="500ms",
                    max_ejection="500ms", max_ejection_percent=50)


def ejected_then_closed():
    with Backend("A", log=False) as a, Backend("B", log=False) as b:
        fe = free_port()
        cfg = proxy_config(fe, [a.addr, b.addr], extra_pool=OUTLIER, workers=1)
        with Proxy(cfg, listen_port=fe) as proxy:
            b.control(status=500)
            t_ej = None
            with KeepAlive(fe) as ka:
                for i in range(20):
                    ka.get("/e/%d" % i)
                    if backend_info(proxy, b).get("ejected"):
                        t_ej = time.monotonic()
                        break
            check(t_ej is not None, "B (answering 500) was not ejected after 20 requests")
            b.stop()
            end = t_ej + 0.5
            states = []
            while time.monotonic() < end + 2.5:
                info = backend_info(proxy, b.addr)
                states.append((round(time.monotonic() - end, 2), info.get("state"),
                               info.get("ejected")))
                time.sleep(0.05)
            ups = [s for s in states if s[1] == "up"]
            log("B's states after its port closed (s from the ejection's end, state, ejected): "
                "first %s, last %s; %d samples 'up'" % (states[:2], states[-2:], len(ups)))
            check(not ups, "B came back 'up' after its ejection although its port is closed: %s"
                  % ups[:3])
            info = backend_info(proxy, b.addr)
            check(info.get("state") == "down", "B's state %r (want down)" % info.get("state"))
            res = traffic(fe, 100, "B ejected and closed")
            check(set(res.backends) == {"A"}, "answers from %s (want only A)" % res.backends)


def disabled():
    for enabled in (False, True):
        health = cfg_group("health", enabled=enabled, interval="200ms", timeout="150ms")
        with Backend("A", log=False) as a, Backend("B", refuse_health=True) as b:
            fe = free_port()
            cfg = proxy_config(fe, [a.addr, b.addr], extra_pool=health, workers=1)
            with Proxy(cfg, listen_port=fe) as proxy:
                if enabled:
                    el, info = wait_backend(proxy, b, "down", 4, what="control: checks on")
                    log("control (enabled = true): B down after %.2f s, reason %r"
                        % (el, info.get("reason")))
                    check(el <= 2.0, "control: B down only after %.2f s" % el)
                    continue
                time.sleep(1.5)
                check_eq(backend_state(proxy, b)[0], "up", "B with checks off")
                check_eq(b.stats()["healthz"], 0, "health checks B received with checks off")
                res = traffic(fe, 200, "checks off")
                check(res.backends.get("B", 0) >= 60, "checks off: B got %s of 200"
                      % res.backends)
                with Backend("C", refuse_health=True, log=False) as c:
                    obj = add_backend(proxy, c.addr)
                    check_eq(obj.get("state"), "up", "a backend added with checks off")


def main():
    checking_refused()
    checking_then_up()
    ejected_then_closed()
    disabled()


if __name__ == "__main__":
    run(main)
