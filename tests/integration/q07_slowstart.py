"""q07: slow start ramps a recovered backend's share of traffic.

Pool slowstart = "3s", roundrobin, backends A and B of equal weight, fast
health checks (interval 100ms, rise 2, fall 2). B fails its checks until it
is "down", then passes them again while 6 client connections keep a steady
stream going; with the default weights (1) and with weights 100 (a ramp
must not depend on the weight's size). Time 0 is when B is back (the
earlier of: the admin API showing it "up", its first answer). In [0 s, 1 s]
B must get clearly less than its fair 50% (< 30%); in [4 s, 5 s] (slow
start over) about its fair share (35% .. 65%). A control run without
slowstart shows B at ~50% right away, so the ramp is the feature, not the
setup."""
import threading
import time

from harness import *

HEALTH = cfg_group("health", type="http", path="/healthz", interval="100ms", timeout="80ms",
                   rise=2, fall=2)


def share_in(records, t0, lo, hi):
    win = [r for r in records if r[2] == 200 and t0 + lo <= r[5] < t0 + hi]
    nb = sum(1 for r in win if r[3] == "B")
    return (nb / float(len(win)) if win else None), len(win)


def ramp(slowstart, weight=None):
    extra = HEALTH + (" slowstart = \"%s\";" % slowstart if slowstart else "")
    with Backend("A", log=False) as a, Backend("B", log=False) as b:
        fe = free_port()
        cfg = proxy_config(fe, [(a.addr, weight), (b.addr, weight)], extra_pool=extra, workers=1)
        with Proxy(cfg, listen_port=fe) as proxy:
            for x in (a, b):
                wait_backend(proxy, x, "up", 5, what="initial state")
            b.control(health=503)
            wait_backend(proxy, b, "down", 5, what="B failing its checks")

            out = {}
            stop = threading.Event()

            def run_load():
                # ?delay=1: each answer takes >= 1 ms, so the stream has a
                # steady pace rather than the client's top speed
                out["res"] = load(fe, 10 ** 6, threads=6, path="/ss?delay=1", record=True,
                                  max_seconds=8.0, stop=stop)

            th = threading.Thread(target=run_load, daemon=True)
            th.start()
            time.sleep(0.5)
            b.control(health=200)
            el, _ = wait_backend(proxy, b, "up", 5, interval=0.02, what="B passing again")
            t_up = time.monotonic()
            time.sleep(5.3)
            stop.set()
            th.join(30)
            check(not th.is_alive(), "load thread did not stop")
            res = out["res"]
            recs = res.records
            check(res.failed() == 0, "%d requests failed: %s" % (res.failed(), res.errors))
            first_b = [r[5] for r in recs if r[3] == "B" and r[4] >= t_up - 2.0]
            t0 = min([t_up] + first_b[:1])
            early, n_early = share_in(recs, t0, 0.0, 1.0)
            late, n_late = share_in(recs, t0, 4.0, 5.0)
            log("slowstart=%s, weights %s: B share %.1f%% of %d in the first second, %.1f%% of "
                "%d in [4 s, 5 s]" % (slowstart, weight or "default", 100 * (early or 0), n_early,
                                     100 * (late or 0), n_late))
            check(n_early >= 100 and n_late >= 100,
                  "too few requests in the windows (%d, %d) to judge" % (n_early, n_late))
            return early, late


def main():
    early, late = ramp(None)
    check(early >= 0.35, "control (no slowstart): B got only %.1f%% in its first second back"
          % (100 * early))
    failures = []
    for weight in (None, 100):
        what = "slowstart 3s, weights %s" % (weight or "default (1)")
        early, late = ramp("3s", weight)
        if early >= 0.30:
            failures.append("%s: B got %.1f%% in its first second back (want < 30%% of the "
                            "fair 50%%)" % (what, 100 * early))
        if not 0.35 <= late <= 0.65:
            failures.append("%s: B got %.1f%% in [4 s, 5 s] after coming back (want its fair "
                            "share, 35%% .. 65%%)" % (what, 100 * late))
    if failures:
        fail("; ".join(failures))


if __name__ == "__main__":
    run(main)
