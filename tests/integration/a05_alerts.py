"""a05: the alert hook runs once per event occurrence, not once per request.

Pools: "app" (D, E, F; HTTP health checks every 200 ms, rise 1, fall 1;
outlier ejections of 500 ms: a killed backend may be ejected by the errors
of the traffic too, and with checks on an ejection lasts its whole time),
"q" (route /q/: one backend with maxconn 1 answering after 500 ms,
maxqueue 1), "h" (its own backend; autoscale whose scale_up hook always
exits 1, so hook_failed events come every backoff). alerts: every event,
hook = a recording script with one argument. A client sends ~30 requests a
second to "app" the whole time.

- D killed: one alert backend_down (details.backend D), none per request
  while traffic continues; D back: one backend_up.
- D and E killed: two backend_down and one pool_degraded (1 of 3 usable);
  then F: backend_down and one pool_empty (the requests in between get
  503s and fire nothing); all three back: three backend_up and one
  pool_recovered.
- Sustained overflow on "q" for ~3 s: several queue_overflow events in the
  journal, exactly one queue_overflow alert.
- One alert per hook_failed event of pool "h".
- Every alert: argv [hook, arg]; environment SURGEGATE_ACTION=alert,
  SURGEGATE_EVENT, SURGEGATE_POOL, no CURRENT/DESIRED/REASON (for "app",
  exactly PATH HOME LANG SURGEGATE_ACTION/BIN/POOL/EVENT); stdin JSON with
  action "alert", the event, time, details (the journal event's fields) and
  the pool snapshot; no alert_dropped events."""
import threading
import time

from harness import *


def alerts(hook, skip=0):
    """[(event, details, run)] of the alert runs after the first `skip`."""
    out = []
    for r in hook.runs()[skip:]:
        js = r["json"] or {}
        out.append((js.get("event"), js.get("details") or {}, r))
    return out


def count(al, event, **details):
    return len([a for a in al if a[0] == event
                and all(a[1].get(k) == v for k, v in details.items())])


class Traffic:
    """~30 GETs a second to port, one at a time, in a thread."""

    def __init__(self, port):
        self.port = port
        self.statuses = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                st = http_get(self.port, "/traffic", timeout=3)[0]
            except OSError:
                st = None
            self.statuses[st] = self.statuses.get(st, 0) + 1
            self._stop.wait(0.03)

    def stop(self):
        self._stop.set()
        self._t.join(10)


def main():
    hook = HookScript("alert")
    failing = HookScript("failing-scale", "exit 1\n")
    health = cfg_group("health", type="http", path="/healthz", interval="200ms",
                       timeout="150ms", rise=1, fall=1)
    health += " " + cfg_group("outlier", base_ejection="500ms", max_ejection="1s")
    events = sg_names("event")
    top = 'alerts = { events = [ %s ]; hook = [ "%s", "alert-arg" ]; };' % (
        ", ".join('"%s"' % e for e in events), hook.path)
    h_auto = ('autoscale = { min = 1; max = 2; hook_timeout = "2s"; scale_up_cooldown = "0s"; '
              'rules = ( { metric = "healthy_backends"; above = 0.5; for = "0s"; } ); '
              'scale_up_hook = [ "%s" ]; };' % failing.path)
    with Backend("D") as d, Backend("E") as e, Backend("F") as f, \
            Backend("Q", delay_ms=500) as qb, Backend("H") as hb:
        fe = free_port()
        cfg = proxy_config(fe, [d, e, f], workers=2, extra_pool=health,
                           routes=[(None, "/q/", "q")],
                           more_pools=[pool_text("q", [(qb.addr, 1, 1)], maxqueue=1),
                                       pool_text("h", [hb], extra=h_auto)],
                           extra_top=top)
        with Proxy(cfg, listen_port=fe) as proxy:
            for x in (d, e, f):
                wait_backend(proxy, x, "up", 5, what="initial state")
            time.sleep(1.5)
            start = alerts(hook)
            log("alerts at startup: %r" % [(a[0], a[1].get("pool"), a[1].get("backend"))
                                           for a in start])
            check_eq([a for a in start if a[0] != "hook_failed"], [],
                     "alerts at startup other than hook_failed")
            base = len(start)
            traffic = Traffic(fe)
            try:
                # one backend down and back
                ports = {x.name: x.port for x in (d, e, f)}
                d.kill()
                wait_backend(proxy, d.addr, "down", 5, what="killed D")
                time.sleep(2.0)  # traffic goes on
                al = alerts(hook, base)
                check_eq(count(al, "backend_down", backend=d.addr), 1,
                         "backend_down alerts for D (traffic continuing)")
                check_eq(count(al, "backend_down"), 1, "backend_down alerts")
                check_eq(count(al, "pool_degraded") + count(al, "pool_empty"), 0,
                         "pool_degraded/pool_empty alerts with 2 of 3 up")
                d = Backend("D", port=ports["D"])
                wait_backend(proxy, d.addr, "up", 5, what="restarted D")
                time.sleep(1.0)
                al = alerts(hook, base)
                check_eq(count(al, "backend_up", backend=d.addr), 1, "backend_up alerts for D")

                # degraded, then empty, then recovered
                d.kill()
                e.kill()
                for x in (d, e):
                    wait_backend(proxy, x.addr, "down", 5, what="killed D and E")
                time.sleep(1.5)
                al = alerts(hook, base)
                check_eq(count(al, "pool_degraded", pool="app"), 1,
                         "pool_degraded alerts with 1 of 3 usable")
                f.kill()
                wait_backend(proxy, f.addr, "down", 5, what="killed F")
                time.sleep(2.0)  # traffic gets 503s now
                al = alerts(hook, base)
                check_eq(count(al, "pool_empty", pool="app"), 1, "pool_empty alerts")
                check_eq(count(al, "backend_down"), 4, "backend_down alerts (D twice, E, F)")
                d = Backend("D", port=ports["D"])
                e = Backend("E", port=ports["E"])
                f = Backend("F", port=ports["F"])
                for x in (d, e, f):
                    wait_backend(proxy, x.addr, "up", 5, what="all restarted")
                time.sleep(1.5)
            finally:
                traffic.stop()
            al = alerts(hook, base)
            log("traffic: %r" % traffic.statuses)
            check(traffic.statuses.get(503, 0) > 0 and traffic.statuses.get(200, 0) > 50,
                  "traffic statuses %r (want 200s and some 503s while the pool was empty)"
                  % traffic.statuses)
            check_eq(count(al, "pool_recovered", pool="app"), 1, "pool_recovered alerts")
            check_eq(count(al, "backend_up"), 4, "backend_up alerts (D twice, E, F)")
            check_eq(count(al, "pool_empty"), 1, "pool_empty alerts in all")
            # (pool_degraded may come again while the three return one by one: 1 of 3 up)
            # one alert per journaled event (none at startup, checked above)
            ev = admin_events(proxy)
            for typ in ("backend_down", "backend_up", "pool_empty", "pool_recovered",
                        "pool_degraded"):
                check_eq(count(al, typ), len(find_events(ev, typ, pool="app")),
                         "%s: alerts vs journal events" % typ)

            # sustained queue overflow on q: one alert
            pend = []
            t_end = time.monotonic() + 3.2
            while time.monotonic() < t_end:
                pend += [Pending(fe, "/q/x", timeout=10) for _ in range(4)]
                time.sleep(0.4)
            for p in pend:
                p.result()
            refused = [p.status for p in pend].count(503)
            time.sleep(1.5)
            ov = find_events(admin_events(proxy), "queue_overflow", pool="q")
            al = alerts(hook, base)
            log("overflow: %d requests, %d refused, %d queue_overflow events, %d alerts"
                % (len(pend), refused, len(ov), count(al, "queue_overflow")))
            check(refused >= 10 and len(ov) >= 2, "overflow not sustained: %d refused, %d events"
                  % (refused, len(ov)))
            check_eq(count(al, "queue_overflow"), 1, "queue_overflow alerts for a sustained "
                     "overflow (at most one a minute)")
            check_eq(count(al, "queue_overflow", pool="q"), 1, "queue_overflow alert pool")

            # hook_failed: one alert per event
            def hf_match():
                n_ev = len(find_events(admin_events(proxy), "hook_failed", pool="h"))
                n_al = count(alerts(hook), "hook_failed", pool="h")
                return (n_ev, n_al) if n_ev == n_al and n_ev >= 2 else None
            n_ev, n_al = wait_for(hf_match, 4, 0.2, "one hook_failed alert per hook_failed "
                                  "event (>= 2) of pool h: events %d, alerts %d" % (
                                      len(find_events(admin_events(proxy), "hook_failed",
                                                      pool="h")),
                                      count(alerts(hook), "hook_failed", pool="h")))
            log("hook_failed: %d events, %d alerts" % (n_ev, n_al))
            check_eq(find_events(admin_events(proxy), "alert_dropped"), [], "alert_dropped events")

            # shape of every alert
            every = alerts(hook)
            for ev_name, det, r in every:
                check_eq(r["argv"], [hook.path, "alert-arg"], "alert argv")
                env = r["env"]
                check_eq((env.get("SURGEGATE_ACTION"), env.get("SURGEGATE_EVENT")),
                         ("alert", ev_name), "alert env ACTION/EVENT")
                for k in ("SURGEGATE_CURRENT", "SURGEGATE_DESIRED", "SURGEGATE_REASON"):
                    check(k not in env, "alert %s has %s" % (ev_name, k))
                js = r["json"]
                check(isinstance(js, dict) and js.get("action") == "alert" and
                      ISO_MS_RX.match(js.get("time", "")) and isinstance(js.get("details"), dict),
                      "alert stdin %r" % r["stdin"][:300])
                check_eq(env.get("SURGEGATE_POOL"), det.get("pool"), "alert SURGEGATE_POOL")
                snap = js.get("pool")
                check(isinstance(snap, dict) and snap.get("name") == det.get("pool") and
                      isinstance(snap.get("backends"), list),
                      "alert %s stdin pool snapshot %r" % (ev_name, snap))
                if det.get("pool") == "app":
                    check_eq(sorted(env), sorted(["PATH", "HOME", "LANG", "SURGEGATE_ACTION",
                                                  "SURGEGATE_BIN", "SURGEGATE_POOL",
                                                  "SURGEGATE_EVENT"]),
                             "alert environment for a pool without autoscale")
            down = [a for a in every if a[0] == "backend_down"][0]
            check_eq((down[1].get("from"), down[1].get("to")), ("up", "down"),
                     "backend_down alert details from/to")
            check(down[1].get("reason"), "backend_down alert details without a reason")


if __name__ == "__main__":
    run(main)
