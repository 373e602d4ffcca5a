"""a04: scale from zero.

Pool "app" with `backends = ( );` and autoscale min 0, max 2 (rule
queue_depth > 3 for 2s; its scale_up_hook is the test's hook), health checks
every 300 ms; timeouts.queue 10s, longer than hold_timeout.

(1) hold_timeout 8s; the hook waits 0.5 s, then starts
    `$SURGEGATE_BIN --demo-backend 127.0.0.1:0` (detached) and prints
    {"add":[{"address":...}]}. No request: the hook does not run. Four
    requests sent 0.1 s apart are held, the hook runs exactly once (reason
    "scale from zero", current 0, desired 1, SURGEGATE_CURRENT=0), the
    backend is added (source hook), and all four are answered 200 by it
    after the hook's run and well before hold_timeout; later requests are
    served at once and the hook never runs again.
(2) hold_timeout 3s; the hook prints nothing: two held requests get 503
    with Retry-After after ~3 s (not at once, not at the 10 s queue
    timeout), and the burst fires the hook once, not once a second."""
import glob
import os
import signal
import time

from harness import *

SPAWN_BODY = r"""sleep 0.5
out="$d/demo.$$.out"
setsid "$SURGEGATE_BIN" --demo-backend 127.0.0.1:0 </dev/null >"$out" 2>"$d/demo.$$.err" &
echo $! >"$d/demo.$$.pid"
i=0
line=
while [ $i -lt 50 ]; do
    line=$(head -n 1 "$out" 2>/dev/null)
    case $line in "listening on "*) break ;; esac
    sleep 0.1
    i=$((i + 1))
done
case $line in "listening on "*) ;; *) echo "demo backend did not start" >&2; exit 1 ;; esac
printf '{"add":[{"address":"%s","weight":1}]}\n' "${line#listening on }"
"""


def config(fe, hook, hold):
    health = cfg_group("health", type="http", path="/healthz", interval="300ms",
                       timeout="250ms", rise=1, fall=2)
    auto = ('autoscale = { min = 0; max = 2; step = 1; hook_timeout = "10s"; '
            'scale_up_cooldown = "60s"; scale_down_window = "300s"; hold_timeout = "%s"; '
            'rules = ( { metric = "queue_depth"; above = 3.0; for = "2s"; } ); '
            'scale_up_hook = [ "%s" ]; };' % (hold, hook.path))
    return proxy_config(fe, [], workers=2, timeouts={"queue": "10s"},
                        extra_pool=health + " " + auto)


def kill_demo(hook):
    for f in glob.glob(os.path.join(hook.dir, "demo.*.pid")):
        try:
            pid = int(open(f).read().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as c:
                if b"--demo-backend" not in c.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


def case_spawn():
    hook = HookScript("spawn", SPAWN_BODY)
    try:
        fe = free_port()
        with Proxy(config(fe, hook, "8s"), listen_port=fe) as proxy:
            time.sleep(1.5)
            check_eq(hook.runs(), [], "hook runs with no request held")
            check_eq(pool_info(proxy)["backends"], [], "backends at start")
            ps = burst(fe, ["/held?i=%d" % i for i in range(4)], timeout=15, gap=0.1)
            runs = hook.runs()
            for p in ps:
                log("held request %s: %s in %.2fs from %s (%s)" % (p.path, p.status, p.elapsed,
                                                                   p.backend, p.error))
            check_eq([p.status for p in ps], [200] * 4, "held requests' statuses")
            check_eq(len(runs), 1, "hook runs for 4 held requests")
            r = runs[0]
            check_eq((r["env"].get("SURGEGATE_ACTION"), r["env"].get("SURGEGATE_CURRENT"),
                      r["env"].get("SURGEGATE_DESIRED")), ("scale_up", "0", "1"),
                     "hook ACTION/CURRENT/DESIRED")
            check("zero" in r["env"].get("SURGEGATE_REASON", ""),
                  "SURGEGATE_REASON %r" % r["env"].get("SURGEGATE_REASON"))
            check(isinstance(r["json"], dict) and r["json"].get("current") == 0 and
                  r["json"]["snapshot"].get("backends") == [],
                  "hook stdin %r" % r["stdin"][:300])
            added = wait_journal(proxy, "backend_added", 3, pool="app", source="hook")
            addr = added[0]["backend"]
            port = int(addr.rsplit(":", 1)[1])
            check(all(p.backend == "demo-%d" % port for p in ps),
                  "held requests served by %r, want demo-%d" % ([p.backend for p in ps], port))
            # held: answered after the hook's run (>= its 0.5 s sleep), before hold_timeout
            for p in ps:
                check(p.elapsed < 6.0, "held request %s answered after %.2fs (hold_timeout 8s)"
                      % (p.path, p.elapsed))
            check(ps[0].elapsed >= 0.5, "the first request answered after %.2fs, before the "
                  "hook could have added a backend" % ps[0].elapsed)
            dec = find_events(admin_events(proxy), "scale_decision", pool="app")
            check(len(dec) == 1 and (dec[0].get("current"), dec[0].get("desired")) == (0, 1)
                  and "zero" in dec[0].get("reason", ""), "scale_decision events: %r" % dec)
            # later requests: at once, no other run
            for i in range(5):
                t0 = time.monotonic()
                st, h, _ = http_get(fe, "/later", timeout=5)
                check(st == 200 and time.monotonic() - t0 < 0.5,
                      "a request after the scale from zero: %s in %.2fs"
                      % (st, time.monotonic() - t0))
            time.sleep(1.5)
            check_eq(len(hook.runs()), 1, "hook runs after the pool got its backend")
            st, pj = admin_get(proxy, "pools/app")
            check_eq((pj.get("autoscale") or {}).get("current"), 1, "autoscale.current")
    finally:
        kill_demo(hook)


def case_nothing():
    hook = HookScript("nothing", "exit 0\n")
    fe = free_port()
    with Proxy(config(fe, hook, "3s"), listen_port=fe) as proxy:
        ps = burst(fe, ["/held-in-vain?i=%d" % i for i in range(2)], timeout=15, gap=0.1)
        for p in ps:
            log("held request %s: %s in %.2fs, Retry-After %r (%s)"
                % (p.path, p.status, p.elapsed, p.headers.get("Retry-After"), p.error))
        check_eq([p.status for p in ps], [503, 503], "held requests with no backend coming")
        for p in ps:
            check(retry_after_ok(p.headers), "503 without a valid Retry-After: %r"
                  % p.headers.get("Retry-After"))
            check(2.7 <= p.elapsed <= 4.5, "held request answered 503 after %.2fs (want ~3 s, "
                  "the hold_timeout)" % p.elapsed)
        runs = hook.runs()
        log("hook runs: %d, at %s" % (len(runs), ["%.2f" % (r["t"] - runs[0]["t"])
                                                  for r in runs]))
        check(len(runs) >= 1, "the hook did not run for held requests")
        check_eq(len(runs), 1, "hook runs for one burst of 2 held requests (3 s hold)")
        check_eq(pool_info(proxy)["backends"], [], "backends after a hook printing nothing")


def main():
    case_spawn()
    case_nothing()


if __name__ == "__main__":
    run(main)
