"""a02: a full autoscaling cycle with the real hooks/local-spawn.

Pool "app": backend A (sg-testbackend, 200 ms per request, maxconn 3), HTTP
health checks every 300 ms. autoscale: min 1, max 3, step 1, rules
queue_depth > 2 for 2s (up) and inflight_per_backend < 1 for 2s (down),
scale_up_cooldown 60s, scale_down_window 8s, hook_timeout 10s; both hooks
are the repository's hooks/local-spawn with STATE_DIR in the test's temp dir
(the proxy passes SURGEGATE_BIN, so it starts `surgegate --demo-backend`).

- Under a bounded load (6 client connections) the queue rises, the scale_up
  hook runs once (ok), a backend_added event with source "hook" names the
  spawned backend B, whose pid local-spawn recorded, with A's maxconn (3:
  surgegate passes SURGEGATE_BACKEND_MAXCONN, issue 17); B turns up (health
  checks), gets requests, and the pool queue drains to 0 while the load goes
  on (3 + 3 slots for 6 clients). No second scale_up within the cooldown.
- When the load stops, scale_down is decided only after the stabilization
  window (not before stop + 8 s, but by stop + 8 s + for + 4 s), from 2 to 1;
  local-spawn stops B's process and prints its removal; backend_removing and
  backend_removed events (source hook) follow; the pool is A alone and still
  serves.
- Whatever happens, every backend local-spawn started is killed at the end."""
import glob
import os
import signal
import time

from harness import *

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOCAL_SPAWN = os.path.join(REPO, "hooks", "local-spawn")
WINDOW_S = 8.0
DOWN_FOR_S = 2.0


def spawned(state_dir):
    """{seq: (port, pid)} of the backends local-spawn recorded."""
    out = {}
    for f in glob.glob(os.path.join(state_dir, "b.*")):
        name = os.path.basename(f)[2:]
        if not name.isdigit():
            continue
        try:
            with open(f) as fh:
                port, pid = fh.read().split()
            out[int(name)] = (int(port), int(pid))
        except (OSError, ValueError):
            pass
    return out


def is_demo_backend(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"--demo-backend" in f.read()
    except OSError:
        return False


def kill_spawned(state_dir, pids_seen):
    """Kills every demo backend local-spawn started (recorded pids, and the
    ones seen earlier in the test)."""
    pids = set(pids_seen) | {pid for _, pid in spawned(state_dir).values()}
    for pid in pids:
        if is_demo_backend(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def main():
    if not os.access(LOCAL_SPAWN, os.X_OK):
        fail("%s is not executable" % LOCAL_SPAWN)
    state_dir = tmp_path("spawn-state")
    pids_seen = set()
    health = cfg_group("health", type="http", path="/healthz", interval="300ms",
                       timeout="250ms", rise=1, fall=2)
    auto = ('autoscale = { min = 1; max = 3; step = 1; hook_timeout = "10s"; dry_run = false; '
            'scale_up_cooldown = "60s"; scale_down_window = "%ds"; '
            'rules = ( { metric = "queue_depth"; above = 2.0; for = "2s"; }, '
            '{ metric = "inflight_per_backend"; below = 1.0; for = "%ds"; } ); '
            'scale_up_hook = [ "%s", "%s" ]; scale_down_hook = [ "%s", "%s" ]; };'
            % (WINDOW_S, DOWN_FOR_S, LOCAL_SPAWN, state_dir, LOCAL_SPAWN, state_dir))
    try:
        with Backend("A", delay_ms=200) as a:
            fe = free_port()
            cfg = proxy_config(fe, [{"address": a.addr, "maxconn": 3}], workers=2,
                               timeouts={"queue": "10s"}, extra_pool=health + " " + auto)
            with Proxy(cfg, listen_port=fe) as proxy:
                wait_backend(proxy, a, "up", 5, what="A at start")
                with BackgroundLoad(fe, threads=6, max_seconds=60) as bl:
                    t_load = time.time()
                    added = wait_journal(proxy, "backend_added", 16, pool="app", source="hook")
                    b_addr = added[0]["backend"]
                    log("backend_added %s %.1fs after the load started"
                        % (b_addr, time.time() - t_load))
                    rec = spawned(state_dir)
                    pids_seen |= {pid for _, pid in rec.values()}
                    check_eq(len(rec), 1, "backends recorded by local-spawn in %s" % state_dir)
                    b_port, b_pid = list(rec.values())[0]
                    check_eq(b_addr, "127.0.0.1:%d" % b_port, "added address vs local-spawn record")
                    check(is_demo_backend(b_pid), "pid %d of %s is not a --demo-backend process"
                          % (b_pid, b_addr))
                    up_runs = find_events(admin_events(proxy), "hook_run", pool="app",
                                          action="scale_up")
                    check(len(up_runs) == 1 and up_runs[0].get("result") == "ok",
                          "scale_up hook_run events: %r" % up_runs)
                    check_eq((up_runs[0].get("current"), up_runs[0].get("desired")), (1, 2),
                             "scale_up current/desired")
                    wait_backend(proxy, b_addr, "up", 5, what="spawned backend B")
                    # B serves; the queue drains while the load goes on
                    t_b_up = time.time()
                    time.sleep(1.5)
                    with AdminPoller(proxy, interval=0.05) as poll:
                        time.sleep(2.0)
                    qs = [p.get("pool_queue_depth") for _, p in poll.samples]
                    log("pool queue_depth over 2 s with B up: max %s (%d samples)"
                        % (max(qs) if qs else None, len(qs)))
                    check(qs and max(qs) == 0,
                          "the pool queue did not drain with the spawned backend up: %r" % qs[-20:])
                    b_before = pool_info(proxy)
                    b_info = [x for x in b_before["backends"] if x["address"] == b_addr]
                    check(b_info and b_info[0].get("maxconn") == 3 and
                          b_info[0].get("origin") == "hook" and b_info[0].get("in_group"),
                          "spawned backend: maxconn 3 (A's), origin hook, in the group: %r"
                          % b_info)
                    check_eq(sorted(x["address"] for x in b_before["backends"]),
                             sorted([a.addr, b_addr]), "pool backends after the scale-up")
                    res = bl.stop()
                    t_stop = time.time()
                log("load: %r" % res)
                demo_name = "demo-%d" % b_port
                check(res.backends.get(demo_name, 0) > 0,
                      "the spawned backend %s (X-Backend %s) got no requests: %r"
                      % (b_addr, demo_name, res.backends))
                check_eq(res.failed(), 0, "failed requests during the load (%r)" % res.errors)
                ups = find_events(admin_events(proxy), "scale_decision", pool="app",
                                  action="scale_up")
                check_eq(len(ups), 1, "scale_up decisions (cooldown 60 s, queue drained)")

                # scale down: only after the window
                def downs():
                    return find_events(admin_events(proxy), "scale_decision", pool="app",
                                       action="scale_down")
                deadline = t_stop + WINDOW_S + DOWN_FOR_S + 4.0
                while time.time() < deadline and not downs():
                    check_eq(http_get(fe, "/idle", timeout=5)[0], 200, "idle request")
                    time.sleep(0.5)
                t_down = time.time()
                ds = downs()
                check(ds, "no scale_down decision %.1fs after the load stopped (window %.0fs, "
                      "for %.0fs)" % (t_down - t_stop, WINDOW_S, DOWN_FOR_S))
                after = t_down - t_stop
                log("scale_down seen %.1fs after the load stopped: %r" % (after, ds[0]))
                check(after >= WINDOW_S - 0.5, "scale_down %.1fs after the load stopped, inside "
                      "scale_down_window %.0fs" % (after, WINDOW_S))
                check_eq((ds[0].get("current"), ds[0].get("desired"), ds[0].get("hook")),
                         (2, 1, True), "scale_down current/desired/hook")
                check_eq(len(ds), 1, "scale_down decisions")
                rm = wait_journal(proxy, "backend_removing", 12, pool="app", backend=b_addr)
                check_eq(rm[0].get("source"), "hook", "backend_removing source")
                wait_journal(proxy, "backend_removed", 5, pool="app", backend=b_addr)
                dr = find_events(admin_events(proxy), "hook_run", pool="app", action="scale_down")
                check(len(dr) == 1 and dr[0].get("result") == "ok",
                      "scale_down hook_run events: %r" % dr)
                check('"remove"' in dr[0].get("stdout_tail", "") and
                      b_addr in dr[0]["stdout_tail"],
                      "scale_down stdout_tail %r should remove %s" % (dr[0].get("stdout_tail"),
                                                                      b_addr))
                wait_for(lambda: not is_demo_backend(b_pid), 5, 0.1,
                         "the spawned backend's process %d to exit" % b_pid)
                check_eq(spawned(state_dir), {}, "local-spawn records after scale_down")
                after_pool = pool_info(proxy)
                check_eq([x["address"] for x in after_pool["backends"]], [a.addr],
                         "pool backends after the scale-down")
                st, pj = admin_get(proxy, "pools/app")
                check_eq((pj.get("autoscale") or {}).get("current"), 1, "autoscale.current")
                check_eq(http_get(fe, "/after", timeout=5)[0], 200, "a request after scale-down")
                check_eq(hook_runs_total(proxy, "app", "scale_up", "ok"), 1.0,
                         "hook_runs_total{scale_up,ok}")
                check_eq(hook_runs_total(proxy, "app", "scale_down", "ok"), 1.0,
                         "hook_runs_total{scale_down,ok}")
    finally:
        kill_spawned(state_dir, pids_seen)


if __name__ == "__main__":
    run(main)
