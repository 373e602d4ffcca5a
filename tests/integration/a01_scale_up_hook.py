"""a01: the scale-up hook under load: when, with what argv, environment and
stdin; the scale-up cooldown; dry_run.

Pool "app": one backend answering after 300 ms with maxconn 1, so 8 client
connections keep about 7 requests queued. autoscale: min 1, max 4, step 1,
rule queue_depth > 3 for 2s, scale_up_cooldown 5s, scale_down_window 300s,
hook = a recording /bin/sh script with arguments that a shell would mangle.

(A) dry_run = false, the hook prints nothing:
  - no run before the load; the first run comes >= ~2 s (the rule's "for")
    and <= for + 2 s after the admin API first shows queue_depth > 3;
  - argv exactly as configured; the environment exactly the documented one
    (PATH, HOME, LANG, SURGEGATE_ACTION/BIN/POOL/CURRENT/DESIRED/REASON and
    one SURGEGATE_METRIC_<NAME> per metric, nothing else, no duplicates);
  - stdin: one JSON object with action, pool, current 1, desired 2, reason,
    dry_run false, time, and a snapshot (name, queue_depth, metrics,
    backends with address/state/weight/inflight/queue_depth/removing);
  - journal: scale_decision (hook true, dry_run false) and hook_run (ok);
    admin pools/app autoscale.last_decision; surgegate_hook_runs_total;
  - the hook adds no backend, so the group never has the 2 it asked for:
    after settle_timeout (3 s) a scale_unsettled event (have 1, desired 2);
  - with the load going on, the second run is not inside the 5 s cooldown
    (and does come after it).
(B) dry_run = true: scale_decision events with dry_run true, the hook never
    runs (no hook_run event, no recorded run, the counter stays 0)."""
import datetime
import os
import re
import time

from harness import *

FOR_S = 2.0
COOLDOWN_S = 5.0
METRICS = sg_names("metric")
ARGS = ["arg one", "semi;$HOME 'q' *"]


def config(fe, b, hook, dry_run):
    auto = ('autoscale = { min = 1; max = 4; step = 1; hook_timeout = "3s"; dry_run = %s; '
            'scale_up_cooldown = "%ds"; scale_down_window = "300s"; settle_timeout = "3s"; '
            'rules = ( { metric = "queue_depth"; above = 3.0; for = "%ds"; } ); '
            'scale_up_hook = [ "%s", "%s", "%s" ]; scale_down_hook = [ "%s" ]; };'
            % ("true" if dry_run else "false", COOLDOWN_S, FOR_S, hook.path, ARGS[0],
               ARGS[1].replace('"', '\\"'), hook.path))
    return proxy_config(fe, [{"address": b.addr, "maxconn": 1}], workers=2, maxqueue=100,
                        timeouts={"queue": "10s"}, extra_pool=auto)


def wait_queue_rise(proxy, timeout=8.0):
    """Wall time when the admin API first shows the pool's queue_depth > 3."""
    def q():
        d = pool_info(proxy).get("pool_queue_depth") or 0
        return time.time() if d > 3 else None
    return wait_for(q, timeout=timeout, interval=0.05, what="pool queue_depth > 3")


def check_env(run, proxy):
    env, lst = run["env"], run["env_list"]
    want_keys = {"PATH", "HOME", "LANG", "SURGEGATE_ACTION", "SURGEGATE_BIN", "SURGEGATE_POOL",
                 "SURGEGATE_CURRENT", "SURGEGATE_DESIRED", "SURGEGATE_REASON",
                 "SURGEGATE_BACKEND_MAXCONN"}
    want_keys |= {"SURGEGATE_METRIC_" + m.upper() for m in METRICS}
    check_eq(sorted(env), sorted(want_keys), "hook environment variable names")
    check_eq(len(lst), len(env), "hook environment entries (duplicates?)")
    check_eq(env["PATH"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PATH")
    check_eq(env["LANG"], "C.UTF-8", "LANG")
    check_eq(env["HOME"], os.environ.get("HOME") or "/", "HOME")
    check_eq(os.path.realpath(env["SURGEGATE_BIN"]), os.path.realpath(SG_BIN), "SURGEGATE_BIN")
    check_eq(env["SURGEGATE_ACTION"], "scale_up", "SURGEGATE_ACTION")
    check_eq(env["SURGEGATE_POOL"], "app", "SURGEGATE_POOL")
    check_eq(env["SURGEGATE_CURRENT"], "1", "SURGEGATE_CURRENT")
    check_eq(env["SURGEGATE_DESIRED"], "2", "SURGEGATE_DESIRED")
    check_eq(env["SURGEGATE_BACKEND_MAXCONN"], "1", "SURGEGATE_BACKEND_MAXCONN (the backend's)")
    check("queue_depth" in env["SURGEGATE_REASON"] and "\n" not in env["SURGEGATE_REASON"],
          "SURGEGATE_REASON %r should name the rule's metric on one line"
          % env["SURGEGATE_REASON"])
    for m in METRICS:
        v = env["SURGEGATE_METRIC_" + m.upper()]
        check(v == "nan" or re.fullmatch(r"-?\d+\.\d{3}", v),
              "SURGEGATE_METRIC_%s=%r is neither nan nor a number with 3 decimals" % (m.upper(), v))
    check(float(env["SURGEGATE_METRIC_QUEUE_DEPTH"]) > 3,
          "SURGEGATE_METRIC_QUEUE_DEPTH=%s, want > 3 (the rule fired on it)"
          % env["SURGEGATE_METRIC_QUEUE_DEPTH"])
    check_eq(env["SURGEGATE_METRIC_HEALTHY_BACKENDS"], "1.000", "SURGEGATE_METRIC_HEALTHY_BACKENDS")
    check(env["SURGEGATE_METRIC_UTILIZATION"] != "nan" and
          float(env["SURGEGATE_METRIC_UTILIZATION"]) >= 1.0,
          "SURGEGATE_METRIC_UTILIZATION=%s with maxconn 1 and requests queued (want >= 1)"
          % env["SURGEGATE_METRIC_UTILIZATION"])


def check_stdin(run, b):
    js = run["json"]
    check(isinstance(js, dict), "hook stdin is not one JSON object: %r" % run["stdin"][:300])
    for k, want in (("action", "scale_up"), ("pool", "app"), ("current", 1), ("desired", 2),
                    ("dry_run", False)):
        check_eq(js.get(k), want, "stdin %s" % k)
    check_eq(js.get("reason"), run["env"]["SURGEGATE_REASON"], "stdin reason == env reason")
    t = js.get("time")
    check(isinstance(t, str) and ISO_MS_RX.match(t), "stdin time %r not ISO-8601 ms" % t)
    tt = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    check(abs(tt - run["t"]) < 2.0, "stdin time %s is %.1fs away from the run's start"
          % (t, tt - run["t"]))
    snap = js.get("snapshot")
    check(isinstance(snap, dict), "stdin has no snapshot object: %r" % js)
    check_eq(snap.get("name"), "app", "snapshot name")
    check(isinstance(snap.get("queue_depth"), int), "snapshot queue_depth %r"
          % snap.get("queue_depth"))
    for k in ("requests", "rps", "error_rate"):
        check(isinstance(snap.get(k), (int, float)), "snapshot %s = %r" % (k, snap.get(k)))
    ms = snap.get("metrics")
    check(isinstance(ms, dict) and sorted(ms) == sorted(METRICS),
          "snapshot metrics keys %r, want %r" % (sorted(ms or {}), sorted(METRICS)))
    check(ms["queue_depth"] is not None and ms["queue_depth"] > 3,
          "snapshot metrics.queue_depth %r" % ms["queue_depth"])
    check_eq("%.3f" % ms["queue_depth"], run["env"]["SURGEGATE_METRIC_QUEUE_DEPTH"],
             "snapshot metrics.queue_depth vs SURGEGATE_METRIC_QUEUE_DEPTH")
    bs = snap.get("backends")
    check(isinstance(bs, list) and len(bs) == 1, "snapshot backends %r" % bs)
    b0 = bs[0]
    check_eq(sorted(b0), sorted(["address", "state", "weight", "inflight", "queue_depth",
                                 "removing", "maxconn", "origin", "in_group"]),
             "snapshot backend keys")
    check_eq((b0["maxconn"], b0["origin"], b0["in_group"]), (1, "config", True),
             "snapshot backend maxconn, origin, in_group")
    check_eq(snap.get("current"), 1, "snapshot current (the scaled group)")
    check_eq((b0["address"], b0["state"], b0["weight"], b0["removing"]),
             (b.addr, "up", 1, False), "snapshot backend address/state/weight/removing")
    check(b0["inflight"] in (0, 1), "snapshot backend inflight %r with maxconn 1" % b0["inflight"])


def part_a():
    hook = HookScript("up")
    with Backend("slow", delay_ms=300) as b:
        fe = free_port()
        with Proxy(config(fe, b, hook, False), listen_port=fe) as proxy:
            check_eq(http_get(fe, "/warm", timeout=5)[0], 200, "a request before the load")
            time.sleep(1.2)
            check_eq(hook.runs(), [], "hook runs before any load")
            t_load = time.time()
            with BackgroundLoad(fe, threads=8, max_seconds=40) as bl:
                t_rise = wait_queue_rise(proxy)
                log("queue_depth > 3 at +%.2fs after the load started" % (t_rise - t_load))
                runs = hook.wait_runs(1, FOR_S + 2.0 + 3.0, "the first scale_up run")
                first = runs[0]
                dt = first["t"] - t_rise
                log("first run %.2fs after the queue rose" % dt)
                # + 0.35 s: the admin poll and the hook's own start (spawn, sh, date)
                check(dt <= FOR_S + 2.0 + 0.35, "the scale_up hook ran %.2fs after queue_depth "
                      "> 3 (want <= for %.0fs + 2s)" % (dt, FOR_S))
                check(dt >= FOR_S - 0.6, "the scale_up hook ran %.2fs after queue_depth > 3, "
                      "before the rule's for = %.0fs" % (dt, FOR_S))
                check_eq(first["argv"], [hook.path] + ARGS, "hook argv")
                check_env(first, proxy)
                check_stdin(first, b)

                # journal, admin and metrics after the first run
                dec = wait_journal(proxy, "scale_decision", 3, pool="app", action="scale_up")
                d0 = dec[0]
                check_eq((d0.get("current"), d0.get("desired"), d0.get("dry_run"),
                          d0.get("hook")), (1, 2, False, True), "scale_decision fields")
                check(isinstance(d0.get("reason"), str) and "queue_depth" in d0["reason"],
                      "scale_decision reason %r" % d0.get("reason"))
                hr = wait_journal(proxy, "hook_run", 5, pool="app", action="scale_up")
                h0 = hr[0]
                check_eq((h0.get("result"), h0.get("exit_code"), h0.get("signal"),
                          h0.get("timed_out"), h0.get("current"), h0.get("desired")),
                         ("ok", 0, 0, False, 1, 2), "hook_run result/exit/signal/timed_out/"
                         "current/desired")
                check(isinstance(h0.get("duration_ms"), int) and 0 <= h0["duration_ms"] < 3000,
                      "hook_run duration_ms %r" % h0.get("duration_ms"))
                st, pj = admin_get(proxy, "pools/app")
                check_eq(st, 200, "GET pools/app")
                au = pj.get("autoscale")
                check(isinstance(au, dict), "pools/app has no autoscale object: %r" % pj)
                check_eq((au.get("min"), au.get("max"), au.get("current"), au.get("dry_run")),
                         (1, 4, 1, False), "autoscale min/max/current/dry_run")
                ld = au.get("last_decision") or {}
                check_eq((ld.get("action"), ld.get("current"), ld.get("desired")),
                         ("scale_up", 1, 2), "autoscale.last_decision")
                check(isinstance(au.get("metrics"), dict) and
                      sorted(au["metrics"]) == sorted(METRICS),
                      "autoscale.metrics keys %r" % sorted(au.get("metrics") or {}))

                # the cooldown: keep the queue up; the next run not before 5 s
                end = first["t"] + COOLDOWN_S + 3.0
                while time.time() < end:
                    time.sleep(0.2)
                    rs = hook.runs()
                    if len(rs) >= 2:
                        break
                res = bl.stop()
            runs = hook.runs()
            log("load: %r" % res)
            un = find_events(admin_events(proxy), "scale_unsettled", pool="app")
            check(un and (un[0].get("action"), un[0].get("have"), un[0].get("desired")) ==
                  ("scale_up", 1, 2) and un[0].get("waited_ms", 0) >= 3000,
                  "scale_unsettled after settle_timeout 3s: %r" % un)
            log("runs at %s (relative to the first)"
                % ["%.2f" % (r["t"] - first["t"]) for r in runs])
            check(len(runs) >= 2, "no second scale_up run %.0fs after the first while the queue "
                  "stayed above the threshold (cooldown %.0fs)" % (COOLDOWN_S + 3, COOLDOWN_S))
            for a, c in zip(runs, runs[1:]):
                check(c["t"] - a["t"] >= COOLDOWN_S - 0.5,
                      "two scale_up runs %.2fs apart, inside scale_up_cooldown %.0fs"
                      % (c["t"] - a["t"], COOLDOWN_S))
            check(runs[1]["t"] - first["t"] <= COOLDOWN_S + 2.5,
                  "second run %.2fs after the first (cooldown %.0fs: want it soon after)"
                  % (runs[1]["t"] - first["t"], COOLDOWN_S))
            # the hook printed nothing: the pool is unchanged, current still 1
            check_eq(runs[1]["env"]["SURGEGATE_CURRENT"], "1", "second run CURRENT")
            check_eq(len(pool_info(proxy)["backends"]), 1, "backends after hooks printing nothing")
            # threshold crossings: the rule crossed once before the first run
            # (value above 3) and cleared once the load stopped
            th = wait_journal(proxy, "threshold", 5, pool="app", state="cleared")
            cr = find_events(admin_events(proxy), "threshold", pool="app", state="crossed")
            check(len(cr) >= 1, "no threshold crossed event")
            c0 = cr[0]
            check_eq((c0.get("rule"), c0.get("metric"), c0.get("kind"), c0.get("threshold"),
                      c0.get("for_ms")), (0, "queue_depth", "above", 3.0, FOR_S * 1000),
                     "threshold crossed fields")
            check(isinstance(c0.get("value"), (int, float)) and c0["value"] > 3.0,
                  "threshold crossed value %r" % c0.get("value"))
            check(c0["time"] < dec[0]["time"], "threshold crossed at %s, not before the "
                  "scale_decision at %s" % (c0["time"], dec[0]["time"]))
            check(len(cr) - len(th) in (0, 1), "%d crossed, %d cleared threshold events"
                  % (len(cr), len(th)))
            time.sleep(1.5)
            n = len(hook.runs())
            wait_for(lambda: len(find_events(admin_events(proxy), "hook_run", pool="app",
                                             action="scale_up")) >= n, 5, 0.1, "hook_run events")
            got = hook_runs_total(proxy, "app", "scale_up", "ok")
            check_eq(got, float(n), "surgegate_hook_runs_total{app,scale_up,ok}")
            check_eq(hook_runs_total(proxy, "app", "scale_up", "failed"), 0.0,
                     "surgegate_hook_runs_total{app,scale_up,failed}")


def part_b():
    hook = HookScript("dry")
    with Backend("slow", delay_ms=300) as b:
        fe = free_port()
        with Proxy(config(fe, b, hook, True), listen_port=fe) as proxy:
            with BackgroundLoad(fe, threads=8, max_seconds=30) as bl:
                t_rise = wait_queue_rise(proxy)
                dec = wait_journal(proxy, "scale_decision", FOR_S + 4, pool="app",
                                   action="scale_up")
                log("dry run: decision %.2fs after the rise: %r" % (time.time() - t_rise, dec[0]))
                time.sleep(1.5)
                bl.stop()
            d0 = dec[0]
            check_eq((d0.get("dry_run"), d0.get("current"), d0.get("desired")), (True, 1, 2),
                     "dry-run scale_decision dry_run/current/desired")
            time.sleep(0.5)
            check_eq(hook.runs(), [], "hook runs in dry_run")
            check_eq(find_events(admin_events(proxy), "hook_run"), [], "hook_run events in dry_run")
            check_eq(hook_runs_total(proxy, "app", "scale_up", "ok"), 0.0,
                     "surgegate_hook_runs_total{app,scale_up,ok} in dry_run")
            st, pj = admin_get(proxy, "pools/app")
            au = pj.get("autoscale") or {}
            check_eq((au.get("dry_run"), au.get("scale_up_running"), au.get("current")),
                     (True, False, 1), "dry-run autoscale dry_run/scale_up_running/current")


def main():
    part_a()
    part_b()


if __name__ == "__main__":
    run(main)
