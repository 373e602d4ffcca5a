"""a06: the autoscaler counts the group it scales (issue 17), with the real
hooks/local-spawn.

Pool "app": backend A (sg-testbackend, 200 ms per request, maxconn 2), HTTP
health checks every 300 ms (fall 2). autoscale: min 2, max 3, step 1,
queue_depth > 2 for 1s (up), inflight_per_backend < 1 for 1s (down),
scale_up_cooldown 1s, scale_down_window 3s, settle_timeout 20s; both hooks
local-spawn with STATE_DIR in the test's temp dir.

- At start the group (A) is below min: scale_up 1 -> 2 spawns B with A's
  maxconn (2); scale_settled follows once B passed its first check, and no
  other decision comes between the two.
- An operator adds X by hand (admin API): origin admin, not in the group;
  autoscale.current stays 2 while the pool has 3 backends, and no
  scale_down follows from X (the issue: an admin add led to scale_down 5 -> 4).
- Under load: scale_up 2 -> 3 (current 2, not 3) spawns C.
- The load stops and B's process is killed: B goes down. The scale_down
  3 -> 2 removes B, the dead one (SURGEGATE_REMOVE_FIRST), not C, the
  newest (what local-spawn stops otherwise), and never X. C and X still
  serve, and every request of the load was answered.
- Whatever happens, every backend local-spawn started is killed at the end.

Then, with a recording hook (what surgegate tells a hook, what it refuses):
config backends A (up) and D (a dead port: down), X added by hand; min 1,
max 2, inflight_per_backend < 1 for 1s, scale_down_window 2s. The
scale_down 2 -> 1 (X not counted) gets SURGEGATE_REMOVE_FIRST = D and
stdin remove_first [D], a snapshot with current 2 and X's origin admin,
in_group false; its output removes X and D: D is removed, X is refused
(logged) and still serves."""
import glob
import os
import signal
import time

from harness import *

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOCAL_SPAWN = os.path.join(REPO, "hooks", "local-spawn")


# The load part keeps 12 clients on 8 slots: waits near the default queue
# target (100 ms), which a busy test machine pushes over it (shedding, 503).
# This test is about the autoscaler: the overload control gets room.
QUEUE = ' queue = { target = "1s"; };'

def spawned(state_dir):
    """{address: pid} of the backends local-spawn recorded."""
    out = {}
    for f in glob.glob(os.path.join(state_dir, "b.*")):
        if not os.path.basename(f)[2:].isdigit():
            continue
        try:
            with open(f) as fh:
                port, pid = fh.read().split()
            out["127.0.0.1:%s" % port] = int(pid)
        except (OSError, ValueError):
            pass
    return out


def is_demo_backend(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"--demo-backend" in f.read()
    except OSError:
        return False


def autoscale(proxy):
    st, pj = admin_get(proxy, "pools/app")
    check_eq(st, 200, "GET pools/app")
    return pj.get("autoscale") or {}


def decisions(proxy):
    return [e for e in admin_events(proxy) if e.get("type") in
            ("scale_decision", "scale_settled", "scale_unsettled") and e.get("pool") == "app"]


def main():
    state_dir = tmp_path("spawn-state")
    pids = set()
    health = cfg_group("health", type="http", path="/healthz", interval="300ms",
                       timeout="250ms", rise=1, fall=2)
    auto = ('autoscale = { min = 2; max = 3; step = 1; hook_timeout = "10s"; '
            'scale_up_cooldown = "1s"; scale_down_window = "3s"; settle_timeout = "20s"; '
            'rules = ( { metric = "queue_depth"; above = 2.0; for = "1s"; }, '
            '{ metric = "inflight_per_backend"; below = 1.0; for = "1s"; } ); '
            'scale_up_hook = [ "%s", "%s" ]; scale_down_hook = [ "%s", "%s" ]; };'
            % (LOCAL_SPAWN, state_dir, LOCAL_SPAWN, state_dir))
    try:
        with Backend("A", delay_ms=200) as a, Backend("X", delay_ms=200) as x:
            fe = free_port()
            cfg = proxy_config(fe, [{"address": a.addr, "maxconn": 2}], workers=2,
                               timeouts={"queue": "10s"}, extra_pool=health + " " + auto + QUEUE)
            with Proxy(cfg, listen_port=fe) as proxy:
                # below min at start: 1 -> 2
                up1 = wait_journal(proxy, "scale_decision", 10, pool="app", action="scale_up")
                check_eq((up1[0].get("current"), up1[0].get("desired")), (1, 2),
                         "first scale_up (below min)")
                settled = wait_journal(proxy, "scale_settled", 10, pool="app")
                rec = spawned(state_dir)
                pids |= set(rec.values())
                check_eq(len(rec), 1, "backends local-spawn started")
                b_addr = list(rec)[0]
                log("B = %s settled after %s ms" % (b_addr, settled[0].get("waited_ms")))
                check_eq((settled[0].get("action"), settled[0].get("desired"),
                          settled[0].get("have")), ("scale_up", 2, 2), "scale_settled fields")
                seq = [e["type"] for e in decisions(proxy)]
                check_eq(seq[:2], ["scale_decision", "scale_settled"],
                         "nothing decided while the first scale settled")
                b = backend_info(proxy, b_addr)
                check_eq((b.get("maxconn"), b.get("origin"), b.get("in_group")),
                         (2, "hook", True), "B: maxconn (A's), origin, in_group")

                # an operator's own backend: outside the group
                st, xj = admin_post(proxy, "pools/app/backends",
                                    {"address": x.addr, "maxconn": 2})
                check_eq(st, 201, "admin add X")
                check_eq((xj.get("origin"), xj.get("in_group")), ("admin", False),
                         "X origin / in_group")
                wait_backend(proxy, x.addr, "up", 5, what="X")
                time.sleep(2.0)
                au = autoscale(proxy)
                check_eq(au.get("current"), 2, "autoscale.current with X added (A, B)")
                check_eq(len(pool_info(proxy)["backends"]), 3, "pool backends with X")
                check(not find_events(admin_events(proxy), "scale_decision", action="scale_down"),
                      "a scale_down after an admin add")

                # load: 2 -> 3 spawns C
                with BackgroundLoad(fe, threads=12, max_seconds=40) as bl:
                    ups = wait_for(lambda: [e for e in find_events(
                        admin_events(proxy), "scale_decision", pool="app", action="scale_up")
                        if e.get("current") == 2] or None, 15, 0.2, "scale_up 2 -> 3")
                    check_eq(ups[0].get("desired"), 3, "scale_up desired")
                    wait_for(lambda: len(spawned(state_dir)) == 2, 10, 0.1, "C spawned")
                    rec = spawned(state_dir)
                    pids |= set(rec.values())
                    c_addr = [k for k in rec if k != b_addr][0]
                    # spawned, then added by the hook's output: listed a moment later
                    wait_for(lambda: any(x["address"] == c_addr
                                         for x in pool_info(proxy)["backends"]),
                             10, 0.1, "C listed in the pool")
                    wait_backend(proxy, c_addr, "up", 10, what="C")
                    time.sleep(1.0)
                    res = bl.stop()
                log("load: %r" % res)
                check_eq(res.failed(), 0, "failed requests during the load (%r)" % res.errors)

                # B dies: it must be the one removed
                t_kill = time.time()
                os.kill(rec[b_addr], signal.SIGKILL)
                wait_backend(proxy, b_addr, "down", 5, what="B after its process was killed")
                downs = wait_for(lambda: find_events(admin_events(proxy), "scale_decision",
                                                     pool="app", action="scale_down") or None,
                                 20, 0.2, "scale_down after the load")
                check_eq((downs[0].get("current"), downs[0].get("desired")), (3, 2),
                         "scale_down current/desired (X not counted)")
                rm = wait_journal(proxy, "backend_removing", 10, pool="app", source="hook")
                log("removed %s %.1fs after B was killed" % (rm[0]["backend"],
                                                            time.time() - t_kill))
                check_eq([e["backend"] for e in rm], [b_addr],
                         "the scale_down removed the dead B, not C (the newest) nor X")
                check(c_addr in spawned(state_dir), "local-spawn stopped C")
                time.sleep(1.0)
                left = sorted(e["address"] for e in pool_info(proxy)["backends"]
                              if not e.get("removing"))
                check_eq(left, sorted([a.addr, c_addr, x.addr]), "pool after the scale_down")
                check(is_demo_backend(rec[c_addr]), "C's process is gone")
                for _ in range(6):
                    check_eq(http_get(fe, "/after", timeout=5)[0], 200, "a request afterwards")
                check_eq(autoscale(proxy).get("current"), 2, "autoscale.current at the end")
    finally:
        pids |= set(spawned(state_dir).values())
        for pid in pids:
            if is_demo_backend(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def part_hook():
    with Backend("A") as a, Backend("X") as x:
        d_addr = "127.0.0.1:%d" % dead_port()
        hook = HookScript("down", body='printf \'{"remove":["%s","%s"]}\\n\'\nexit 0\n'
                          % (x.addr, d_addr))
        health = cfg_group("health", type="http", path="/healthz", interval="300ms",
                           timeout="250ms", rise=1, fall=2)
        auto = ('autoscale = { min = 1; max = 2; step = 1; scale_up_cooldown = "1s"; '
                'scale_down_window = "2s"; '
                'rules = ( { metric = "inflight_per_backend"; below = 1.0; for = "1s"; } ); '
                'scale_up_hook = [ "%s" ]; scale_down_hook = [ "%s" ]; };'
                % (hook.path, hook.path))
        fe = free_port()
        cfg = proxy_config(fe, [{"address": a.addr}, {"address": d_addr}], workers=1,
                           extra_pool=health + " " + auto + QUEUE)
        with Proxy(cfg, listen_port=fe) as proxy:
            st, _ = admin_post(proxy, "pools/app/backends", {"address": x.addr})
            check_eq(st, 201, "admin add X")
            wait_backend(proxy, d_addr, "down", 5, what="D (nothing listens)")
            runs = hook.wait_runs(1, 15, "the scale_down hook")
            r = runs[0]
            check_eq((r["env"].get("SURGEGATE_ACTION"), r["env"].get("SURGEGATE_CURRENT"),
                      r["env"].get("SURGEGATE_DESIRED")), ("scale_down", "2", "1"),
                     "scale_down action/current/desired (X not counted)")
            check_eq(r["env"].get("SURGEGATE_REMOVE_FIRST"), d_addr,
                     "SURGEGATE_REMOVE_FIRST (the dead member)")
            check_eq(r["env"].get("SURGEGATE_BACKEND_MAXCONN"), "0", "SURGEGATE_BACKEND_MAXCONN")
            js = r["json"] or {}
            check_eq(js.get("remove_first"), [d_addr], "stdin remove_first")
            snap = js.get("snapshot") or {}
            check_eq(snap.get("current"), 2, "snapshot current")
            bx = [b for b in snap.get("backends", []) if b.get("address") == x.addr]
            check(bx and bx[0].get("origin") == "admin" and bx[0].get("in_group") is False,
                  "snapshot: X origin admin, not in the group: %r" % bx)
            rm = wait_journal(proxy, "backend_removing", 5, pool="app", source="hook")
            check_eq([e["backend"] for e in rm], [d_addr], "what the hook's output removed")
            time.sleep(0.5)
            xs = backend_info(proxy, x.addr)
            check(not xs.get("removing") and xs.get("state") == "up",
                  "X after the hook asked to remove it: %r" % xs)
            check("is not in the scaled group" in proxy.stderr_text(),
                  "the refusal is logged")
            check_eq(http_get(fe, "/after", timeout=5)[0], 200, "a request afterwards")


def both():
    main()
    part_hook()


run(both)
