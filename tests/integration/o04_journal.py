"""o04: the event journal (GET /api/v1/events and the journal file).

Pool "app": backends D and E with HTTP health checks every 200 ms (rise 1,
fall 1); pool "q" (route /q/): one backend with maxconn 1 answering after
600 ms, maxqueue 1. `journal = { path = ...; }` writes the file.
- The first event is config_loaded.
- D is SIGKILLed: a backend_down event for D (pool, from "up", to "down",
  a non-empty reason) once the checks notice; D restarted on the same port:
  backend_up (from "down", to "up", a reason).
- Admin changes: drain -> backend_state (to "drain", reason naming the
  admin), ready -> backend_up; weight -> backend_weight (from, to); a new
  backend added -> backend_added (source "admin"); DELETE -> backend_removing
  then backend_removed once it drained.
- A burst of 8 requests on pool q: the refused ones (503) appear as
  queue_overflow events for q whose "refused" add up to exactly the 503s
  seen, in fewer events than refused requests (not one per request).
- Every event has a "type" and a "time" in ISO-8601 UTC with milliseconds;
  times never go backwards; `since` returns exactly the events at or after
  it (a future since: none), `limit=N` the last N; bad since -> 400.
- The journal file holds the same events, one JSON object per line."""
import datetime
import json
import os
import time

from harness import *


def iso_now(offset_s=0.0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def find(events, type_, **fields):
    return [e for e in events if e.get("type") == type_
            and all(e.get(k) == v for k, v in fields.items())]


def wait_event(proxy, type_, timeout=5.0, **fields):
    """Polls GET events until one of type_ with the given fields exists;
    returns it."""
    got = wait_for(lambda: find(admin_events(proxy), type_, **fields), timeout=timeout,
                   interval=0.1, what="a %s event with %r" % (type_, fields))
    return got[-1]


def read_file_events(path):
    out = []
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8")
    except OSError:
        return out
    check(data == "" or data.endswith("\n"), "journal file does not end with a newline")
    for n, line in enumerate(data.splitlines(), 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            fail("journal file line %d is not JSON: %r" % (n, line[:200]))
    return out


def main():
    health = cfg_group("health", type="http", path="/healthz", interval="200ms",
                       timeout="150ms", rise=1, fall=1)
    jpath = tmp_path("events.jsonl")
    with Backend("D") as d, Backend("E") as e, Backend("Q", delay_ms=600) as qb, \
            Backend("F") as f_:
        fe = free_port()
        cfg = proxy_config(fe, [d, e], workers=2, extra_pool=health,
                           routes=[(None, "/q/", "q")],
                           more_pools=[pool_text("q", [(qb.addr, 1, 1)], maxqueue=1)],
                           extra_top='journal = { path = "%s"; };' % jpath,
                           timeouts={"queue": "5s"})
        with Proxy(cfg, listen_port=fe) as proxy:
            for x in (d, e):
                wait_backend(proxy, x, "up", 5, what="initial state")
            ev = admin_events(proxy)
            check(ev and ev[0].get("type") == "config_loaded",
                  "first event %r, want config_loaded" % (ev[:1],))

            # a backend that dies and comes back
            t_kill = iso_now(-0.002)
            port = d.port
            d.kill()
            wait_backend(proxy, d.addr, "down", 5, what="killed D")
            down = wait_event(proxy, "backend_down", timeout=2, pool="app", backend=d.addr)
            log("down: %r" % down)
            check_eq((down.get("from"), down.get("to")), ("up", "down"), "backend_down from/to")
            check(isinstance(down.get("reason"), str) and down["reason"].strip(),
                  "backend_down without a reason: %r" % down)
            check(down["time"] >= t_kill, "backend_down at %s, before the kill at %s"
                  % (down["time"], t_kill))
            d2 = Backend("D", port=port)
            wait_backend(proxy, d2.addr, "up", 5, what="restarted D")
            up = wait_event(proxy, "backend_up", timeout=2, pool="app", backend=d2.addr)
            log("up: %r" % up)
            check_eq((up.get("from"), up.get("to")), ("down", "up"), "backend_up from/to")
            check(isinstance(up.get("reason"), str) and up["reason"].strip(),
                  "backend_up without a reason: %r" % up)
            check(up["time"] >= down["time"], "backend_up before backend_down")

            # admin changes
            set_backend_state(proxy, e, "drain")
            st = wait_event(proxy, "backend_state", timeout=2, backend=e.addr, to="drain")
            check_eq(st.get("from"), "up", "drain event from")
            check("admin" in st.get("reason", ""), "drain event reason %r" % st.get("reason"))
            set_backend_state(proxy, e, "ready")
            wait_event(proxy, "backend_up", timeout=2, backend=e.addr, **{"from": "drain"})
            s, obj = admin_post(proxy, "pools/app/backends/%s/weight" % e.addr, {"weight": 4})
            check_eq(s, 200, "weight POST")
            w = wait_event(proxy, "backend_weight", timeout=2, backend=e.addr)
            check_eq((w.get("from"), w.get("to")), (1, 4), "backend_weight from/to")
            s, obj = admin_post(proxy, "pools/app/backends", {"address": f_.addr})
            check_eq(s, 201, "add F")
            ad = wait_event(proxy, "backend_added", timeout=2, backend=f_.addr)
            check_eq((ad.get("pool"), ad.get("source")), ("app", "admin"), "backend_added")
            s, obj = admin_request(proxy, "DELETE", "pools/app/backends/%s" % f_.addr)
            check_eq(s, 202, "DELETE F")
            rm = wait_event(proxy, "backend_removing", timeout=2, backend=f_.addr)
            rd = wait_event(proxy, "backend_removed", timeout=4, backend=f_.addr)
            check(ad["time"] <= rm["time"] <= rd["time"], "add/removing/removed out of order")

            # queue overflow on pool q
            time.sleep(1.1)  # a fresh tick: overflows counted from here
            ps = burst(fe, ["/q/%d" % i for i in range(8)], timeout=10)
            statuses = [p.status for p in ps]
            refused = statuses.count(503)
            log("burst on q: %r" % statuses)
            check(refused >= 3 and statuses.count(200) >= 2 and refused + statuses.count(200) == 8,
                  "burst on a pool with maxconn 1, maxqueue 1: %r" % statuses)
            time.sleep(1.6)
            ov = find(admin_events(proxy), "queue_overflow", pool="q")
            log("queue_overflow events: %r" % ov)
            check(ov, "no queue_overflow event after %d refused requests" % refused)
            check_eq(sum(x.get("refused", 0) for x in ov), refused,
                     "sum of queue_overflow refused")
            check(len(ov) < refused, "%d queue_overflow events for %d refused requests (want "
                  "fewer: not one per request)" % (len(ov), refused))
            check(all(x.get("maxqueue") == 1 for x in ov), "queue_overflow maxqueue: %r" % ov)

            # the whole journal: shape and order
            ev = admin_events(proxy)
            check(len(ev) >= 10, "only %d events" % len(ev))
            for x in ev:
                check(isinstance(x.get("type"), str) and x["type"], "event without type: %r" % x)
                check(isinstance(x.get("time"), str) and ISO_MS_RX.match(x["time"]),
                      "event time %r not ISO-8601 UTC with milliseconds" % x.get("time"))
            times = [x["time"] for x in ev]
            check(times == sorted(times), "events out of time order: %r" % times)
            types = {x["type"] for x in ev}
            for t in ("config_loaded", "backend_down", "backend_up", "backend_state",
                      "backend_weight", "backend_added", "backend_removing", "backend_removed",
                      "queue_overflow"):
                check(t in types, "no %s event in %r" % (t, sorted(types)))

            # since / limit
            since = down["time"]
            sv = admin_events(proxy, since=since)
            check_eq(sv, [x for x in ev if x["time"] >= since], "events since %s" % since)
            check(find(sv, "backend_down", backend=d.addr) and
                  not find(sv, "config_loaded"), "since filter: %r" % [x["type"] for x in sv])
            # the same instant written with an offset
            t = datetime.datetime.strptime(since[:19], "%Y-%m-%dT%H:%M:%S")
            t = t + datetime.timedelta(hours=2)
            off = t.strftime("%Y-%m-%dT%H:%M:%S") + since[19:23] + "%2B02:00"
            check_eq(admin_events(proxy, since=off), sv, "since with a +02:00 offset")
            check_eq(admin_events(proxy, since=iso_now(3600)), [], "events since in an hour")
            check_eq(admin_events(proxy, limit=1), ev[-1:], "limit=1")
            check_eq(admin_events(proxy, since=since, limit=2), sv[-2:], "since + limit=2")
            st, obj = admin_request(proxy, "GET", "events?since=not-a-time")
            check_eq(st, 400, "events?since=not-a-time")
            check(isinstance(obj, dict) and "error" in obj, "bad since: %r" % obj)

            # the journal file holds the same events
            def file_matches():
                return read_file_events(jpath) == admin_events(proxy)
            if not os.path.exists(jpath):
                fail("journal file %s not created" % jpath)
            try:
                wait_for(file_matches, timeout=3, interval=0.1, what="journal file == events")
            except TestFailure:
                fe_ = read_file_events(jpath)
                fail("journal file has %d events, the API %d; first differences: %r"
                     % (len(fe_), len(ev), [(a, b) for a, b in zip(fe_, ev) if a != b][:2]))
            d2.stop()
            log("%d events, journal file identical" % len(ev))


if __name__ == "__main__":
    run(main)
