"""a03: hooks that hang, fail or print garbage.

One proxy, one fast backend shared by eight pools. Each pool's autoscale has
the rule healthy_backends > 0.5 for 0s, so it wants to scale up (1 -> 2) at
every tick, without any load; max 4; hook_timeout 2s. Pool by pool:
  app     (the frontend's pool) hook `sleep 100`: killed at the timeout:
          hook_run result timeout, timed_out, signal 15, duration ~2 s, no
          process of its group left; meanwhile requests through the proxy
          are answered at normal speed; retried ~5 s later, not before.
  trap    hook ignoring SIGTERM (also its sleep): SIGKILL 2 s after the
          timeout: duration ~4 s, signal 9, its group gone.
  fail    hook `exit 1` (scale_up_cooldown 0): result failed, exit_code 1,
          a hook_failed event per run; retried after 5 s, then 10 s (backoff
          doubling), never every second.
  failcd  the same with the default scale_up_cooldown (60 s): the failed
          run is still retried after the 5 s backoff.
  bad1..4 output not JSON; {"add":"x"}; an add with a bad address; a valid
          add followed by one with port 0 (all or nothing): result
          bad_output with an output_error, exit_code 0; the pool unchanged
          (no backend_added anywhere, one backend each).
surgegate_hook_runs_total{pool,action="scale_up",result} equals the hook_run
events of each pool and result."""
import os
import time

from harness import *

TIMEOUT_S = 2.0


def auto(hook, cooldown="0s"):
    return ('autoscale = { min = 1; max = 4; step = 1; hook_timeout = "%ds"; '
            'scale_up_cooldown = "%s"; scale_down_window = "300s"; '
            'rules = ( { metric = "healthy_backends"; above = 0.5; for = "0s"; } ); '
            'scale_up_hook = [ "%s" ]; };' % (TIMEOUT_S, cooldown, hook.path))


def group_members(pgid):
    """Pids of live processes in process group pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(d))
    return out


def runs_of(events, pool):
    return find_events(events, "hook_run", pool=pool, action="scale_up")


def main():
    hooks = {
        "app": HookScript("hang", "exec sleep 100\n"),
        "trap": HookScript("trap", "trap '' TERM\nsleep 100\nsleep 100\n"),
        "fail": HookScript("fail", "echo 'cannot scale: no credentials' >&2\nexit 1\n"),
        "failcd": HookScript("failcd", "exit 1\n"),
        "bad1": HookScript("bad1", "echo 'this is not json'\n"),
        "bad2": HookScript("bad2", """echo '{"add":"x"}'\n"""),
        "bad3": HookScript("bad3", """echo '{"add":[{"address":"999.1.2.3:80","weight":1}]}'\n"""),
    }
    with Backend("fast") as b, Backend("spare") as spare:
        hooks["bad4"] = HookScript(
            "bad4", """echo '{"add":[{"address":"%s","weight":1},{"address":"127.0.0.1:0"}]}'\n"""
            % spare.addr)
        fe = free_port()
        more = [pool_text(name, [b], extra=auto(hooks[name],
                                                "60s" if name == "failcd" else "0s"))
                for name in ("trap", "fail", "failcd", "bad1", "bad2", "bad3", "bad4")]
        cfg = proxy_config(fe, [b], workers=2, extra_pool=auto(hooks["app"]), more_pools=more)
        with Proxy(cfg, listen_port=fe) as proxy:
            t_start = time.time()
            # the hanging hook starts at the first tick; the proxy keeps serving
            first = hooks["app"].wait_runs(1, 4, "the hanging hook's first run")[0]
            lat = []
            codes = []
            end = first["t"] + TIMEOUT_S + 0.5
            while time.time() < end:
                t0 = time.monotonic()
                codes.append(http_get(fe, "/during-hook", timeout=5)[0])
                lat.append(time.monotonic() - t0)
                time.sleep(0.02)
            lat.sort()
            log("%d requests while the hook hung: median %.1f ms, max %.1f ms"
                % (len(lat), lat[len(lat) // 2] * 1000, lat[-1] * 1000))
            check(codes and all(c == 200 for c in codes), "statuses while a hook hangs: %r"
                  % sorted(set(codes)))
            check(len(lat) >= 20, "only %d requests answered in %.1fs while the hook hung"
                  % (len(lat), TIMEOUT_S))
            check(lat[len(lat) // 2] < 0.05 and lat[-1] < 0.5,
                  "latency while a hook hangs: median %.0f ms, max %.0f ms"
                  % (lat[len(lat) // 2] * 1000, lat[-1] * 1000))

            # the timeout: SIGTERM to the group at 2 s
            ev = wait_journal(proxy, "hook_run", TIMEOUT_S + 3, pool="app")
            h = ev[0]
            log("hang: %r" % {k: h.get(k) for k in ("result", "signal", "duration_ms",
                                                     "timed_out", "exit_code")})
            check_eq((h.get("result"), h.get("timed_out"), h.get("signal")),
                     ("timeout", True, 15), "hanging hook result/timed_out/signal")
            check(TIMEOUT_S * 1000 - 50 <= h.get("duration_ms", -1) <= TIMEOUT_S * 1000 + 700,
                  "hanging hook duration_ms %r, want ~%d" % (h.get("duration_ms"),
                                                             TIMEOUT_S * 1000))
            check_eq(group_members(first["pid"]), [], "processes left in the hung hook's group")
            hf = wait_journal(proxy, "hook_failed", 2, pool="app")
            check_eq(hf[0].get("result"), "timeout", "hook_failed result for the timeout")

            # the TERM-proof hook: SIGKILL 2 s later
            trap_run = hooks["trap"].wait_runs(1, 2, "the TERM-trapping hook")[0]
            ev = wait_journal(proxy, "hook_run", TIMEOUT_S + 6, pool="trap")
            h = ev[0]
            log("trap: %r" % {k: h.get(k) for k in ("result", "signal", "duration_ms",
                                                     "timed_out")})
            check_eq((h.get("result"), h.get("timed_out"), h.get("signal")),
                     ("timeout", True, 9), "TERM-trapping hook result/timed_out/signal")
            check(TIMEOUT_S * 1000 + 2000 - 50 <= h.get("duration_ms", -1) <=
                  TIMEOUT_S * 1000 + 2000 + 800,
                  "TERM-trapping hook duration_ms %r, want ~%d (timeout + 2 s)"
                  % (h.get("duration_ms"), TIMEOUT_S * 1000 + 2000))
            check_eq(group_members(trap_run["pid"]), [],
                     "processes left in the TERM-trapping hook's group")

            # bad output: the pool unchanged
            for name in ("bad1", "bad2", "bad3", "bad4"):
                ev = wait_journal(proxy, "hook_run", 3, pool=name)
                h = ev[0]
                log("%s: result %s, output_error %r" % (name, h.get("result"),
                                                        h.get("output_error")))
                check_eq((h.get("result"), h.get("exit_code")), ("bad_output", 0),
                         "%s hook_run result/exit_code" % name)
                check(isinstance(h.get("output_error"), str) and h["output_error"],
                      "%s hook_run without an output_error: %r" % (name, h))
                check_eq([x["address"] for x in pool_info(proxy, name)["backends"]], [b.addr],
                         "pool %s backends after bad hook output" % name)

            # failures retried with backoff: 5 s, then 10 s
            t_wait = max(0.0, t_start + 18.5 - time.time())
            log("waiting %.1fs for the retries" % t_wait)
            time.sleep(t_wait)
            fr = hooks["fail"].runs()
            gaps = [y["t"] - x["t"] for x, y in zip(fr, fr[1:])]
            log("fail: %d runs, gaps %s" % (len(fr), ["%.2f" % g for g in gaps]))
            check(len(fr) >= 3, "the failing hook ran %d times in ~17 s (want 3: at once, "
                  "+5 s, +10 s)" % len(fr))
            check(4.5 <= gaps[0] <= 7.0, "first retry of the failing hook %.2fs after it "
                  "(want the 5 s backoff)" % gaps[0])
            check(9.5 <= gaps[1] <= 12.0, "second retry %.2fs after the first (want 10 s: "
                  "the backoff doubles)" % gaps[1])
            ev = admin_events(proxy)
            fe_runs = runs_of(ev, "fail")
            check(all(r.get("result") == "failed" and r.get("exit_code") == 1 for r in fe_runs),
                  "failing hook results: %r" % [(r.get("result"), r.get("exit_code"))
                                                for r in fe_runs])
            check("no credentials" in fe_runs[0].get("stderr_tail", ""),
                  "stderr_tail %r" % fe_runs[0].get("stderr_tail"))
            check_eq(len(find_events(ev, "hook_failed", pool="fail")), len(fe_runs),
                     "hook_failed events of pool fail")
            cd = hooks["failcd"].runs()
            log("failcd (cooldown 60 s): runs at %s" % ["%.1f" % (r["t"] - t_start) for r in cd])
            hr = hooks["app"].runs()
            check(len(hr) >= 2 and hr[1]["t"] - first["t"] >= TIMEOUT_S + 4.5,
                  "the timed-out hook's retry: runs at %s (want the 5 s backoff after the "
                  "timeout)" % ["%.1f" % (r["t"] - first["t"]) for r in hr])
            check_eq(find_events(ev, "backend_added"), [], "backend_added events")

            # the counters match the journal
            def counts_match():
                ev1 = admin_events(proxy)
                got = {}
                for pool in ("app", "trap", "fail", "failcd", "bad1", "bad2", "bad3", "bad4"):
                    for res in ("ok", "failed", "timeout", "spawn_failed", "bad_output"):
                        got[(pool, res)] = hook_runs_total(proxy, pool, "scale_up", res)
                ev2 = admin_events(proxy)
                if len(find_events(ev1, "hook_run")) != len(find_events(ev2, "hook_run")):
                    return None
                want = {}
                for r in find_events(ev2, "hook_run", action="scale_up"):
                    k = (r.get("pool"), r.get("result"))
                    want[k] = want.get(k, 0) + 1
                diff = {k: (v, want.get(k, 0)) for k, v in got.items() if v != want.get(k, 0)}
                return ("ok", diff)
            _, diff = wait_for(counts_match, 5, 0.2, "a quiet moment to compare counters")
            check_eq(diff, {}, "surgegate_hook_runs_total vs hook_run events ((pool, result): "
                     "(metric, events))")
            # last, so that everything above is checked too
            check(len(cd) >= 2, "a failed scale_up with scale_up_cooldown 60s was not retried "
                  "after the 5 s backoff (%d run(s) in ~17 s): the failed run started the "
                  "cooldown" % len(cd))


if __name__ == "__main__":
    run(main)
