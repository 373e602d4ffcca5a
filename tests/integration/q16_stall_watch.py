"""q16: the stall watch (health.stall_timeout, default 1 s) takes down a
backend that stopped answering, and leaves slow ones alone.

A hung backend (SIGSTOP) still accepts connections, so its checks take it
down only after fall x interval (5-7 s); the stall watch takes it down once
requests have waited on it for stall_timeout without a response byte while
another backend of the pool could take them; at least two requests must
wait on it (one may be a slow page) and it must be ready (a draining
backend gets nothing new). Two sg-testbackend backends, the default health
checks.

1. Hung: four clients send GETs one after another; B is stopped. The GETs
   stuck on B are answered (by A) within 2 s, B is down with a reason that
   says "stalled" within 2.5 s, and after SIGCONT its checks bring it back.
2. Slow, not stalled: both backends hold requests 2.5 s; 6 GETs sent
   together wait on both and both are silent: nothing is taken down, all
   answer 200.
3. Slow pages among fast ones: one GET held 2.5 s on a backend while fast
   GETs keep flowing to both: the backend answers the fast ones, so it is
   not silent: not taken down.
4. Adaptive threshold: after the slow GETs of 2 (first bytes after 2.5 s),
   B is stopped under the four clients: 2.5 s later it is still up (the
   threshold is 3 x the longest recent first-byte wait, 7.5 s).
5. Draining: two slow GETs on each backend, B set to drain while fast GETs
   flow to A: B is silent with two requests waiting, but draining: not
   taken down, its slow GETs answer 200.
6. stall_timeout = "0s": B stopped; 2.5 s later it is still up (only its
   checks will take it down)."""
import os
import signal
import threading
import time

from harness import *
from rawhttp import Check


def states(proxy):
    return {b["address"]: (b.get("state"), b.get("reason") or "")
            for b in pool_info(proxy)["backends"]}


def stalled_events(proxy):
    return [e for e in admin_events(proxy) if "stalled" in str(e)]


def stop_b(proxy, fe, b, seconds):
    """Four clients send GETs one after another while B is stopped for
    `seconds`; returns (answers [(status, s)], seconds to B down or None,
    B's reason then)."""
    answers, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                st = http_get(fe, "/seq", timeout=5)[0]
            except OSError as e:
                st = str(e)
            answers.append((st, time.monotonic() - t0))
    ts = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    os.kill(b.proc.pid, signal.SIGSTOP)
    t_stop = time.monotonic()
    down_at, reason = None, ""
    try:
        while time.monotonic() - t_stop < seconds:
            s = states(proxy).get(b.addr, (None, ""))
            if s[0] == "down" and down_at is None:
                down_at, reason = time.monotonic() - t_stop, s[1]
            time.sleep(0.05)
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    stop.set()
    for t in ts:
        t.join(10)
    return answers, down_at, reason


def hung(c):
    with Backend("A", log=False) as a, Backend("B", log=False) as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [a, b], workers=2), listen_port=fe) as proxy:
            for _ in range(4):
                http_get(fe, "/warm")
            answers, down_at, reason = stop_b(proxy, fe, b, 4.0)
            slowest = max(x[1] for x in answers)
            bad = [x for x in answers if x[0] != 200]
            log("hung: B down after %s s (%r); %d GETs, slowest %.2f s, not 200: %r"
                % (down_at and round(down_at, 2), reason, len(answers), slowest, bad[:3]))
            c.ok(down_at is not None and down_at <= 2.5 and "stalled" in reason,
                 "a hung backend is down within 2.5 s, for a stall", "%r %r" % (down_at, reason))
            c.ok(not bad and slowest <= 2.0,
                 "the GET stuck on it is answered elsewhere within 2 s",
                 "slowest %.2f s, bad %r" % (slowest, bad[:3]))
            c.ok(stalled_events(proxy), "the journal says why (stalled)")
            wait_backend(proxy, b.addr, ("up",), timeout=15.0,
                         what="B back up by its checks after SIGCONT")
            c.ok(True, "after SIGCONT its checks bring it back")


def slow(c):
    with Backend("A", log=False) as a, Backend("B", log=False) as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [a, b], workers=2), listen_port=fe) as proxy:
            http_get(fe, "/warm")
            http_get(fe, "/warm")
            # 2: both backends slow, both silent
            ps = burst(fe, ["/slow?delay=2500&i=%d" % i for i in range(6)], timeout=10.0)
            st = [p.status for p in ps]
            log("slow app: statuses %r, states %r" % (st, states(proxy)))
            c.ok(st == [200] * 6, "a slow application: every request answered", "%r" % st)
            c.ok(all(s[0] == "up" for s in states(proxy).values()) and not stalled_events(proxy),
                 "a slow application (every backend silent) is not taken for a stall",
                 "%r" % states(proxy))
            # 4: the threshold is now 3 x 2.5 s: B stopped for 2.5 s stays up
            answers, down_at, reason = stop_b(proxy, fe, b, 2.5)
            log("B stopped 2.5 s after slow pages: down after %r (%r), %d GETs"
                % (down_at, reason, len(answers)))
            c.ok(down_at is None and not stalled_events(proxy),
                 "after slow pages (3 x 2.5 s threshold), 2.5 s of silence is no stall")


def slow_among_fast(c):
    with Backend("A", log=False) as a, Backend("B", log=False) as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [a, b], workers=2), listen_port=fe) as proxy:
            http_get(fe, "/warm")
            with BackgroundLoad(fe, threads=2, max_seconds=10.0, path="/fast") as bg:
                p = Pending(fe, "/slow?delay=2500&mixed=1", timeout=10.0)
                r = p.result()
                res = bg.stop()
            log("slow GET among fast ones: %r in %.2f s; fast: %s; states %r"
                % (r[0], r[3] or -1, res, states(proxy)))
            c.ok(r[0] == 200 and not stalled_events(proxy)
                 and all(s[0] == "up" for s in states(proxy).values()),
                 "a slow page among fast ones is not taken for a stall")


def draining(c):
    with Backend("A", log=False) as a, Backend("B", log=False) as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [a, b], workers=2), listen_port=fe) as proxy:
            http_get(fe, "/warm")
            ps = [Pending(fe, "/slow?delay=2500&d=%d" % i, timeout=10.0) for i in range(4)]
            time.sleep(0.2)
            st, _ = admin_post(proxy, "pools/app/backends/%s/state" % b.addr, {"state": "drain"})
            check(st == 200, "drain B: %s" % st)
            with BackgroundLoad(fe, threads=2, max_seconds=10.0, path="/fast") as bg:
                rs = [p.result() for p in ps]
                bg.stop()
            s = states(proxy).get(b.addr)
            log("draining B with slow GETs: statuses %r, B %r" % ([r[0] for r in rs], s))
            c.ok(all(r[0] == 200 for r in rs) and s is not None and s[0] == "drain"
                 and not stalled_events(proxy),
                 "a draining backend's slow requests are not taken for a stall")


def off(c):
    with Backend("A", log=False) as a, Backend("B", log=False) as b:
        fe = free_port()
        cfg = proxy_config(fe, [a, b], workers=2, extra_pool='health = { stall_timeout = "0s"; };')
        with Proxy(cfg, listen_port=fe) as proxy:
            http_get(fe, "/warm")
            os.kill(b.proc.pid, signal.SIGSTOP)
            try:
                ps = [Pending(fe, "/off?i=%d" % i, timeout=10.0) for i in range(4)]
                time.sleep(2.5)
                s = states(proxy).get(b.addr)
            finally:
                os.kill(b.proc.pid, signal.SIGCONT)
            for p in ps:
                p.result()
            log("stall_timeout 0s: B after 2.5 s stopped: %r" % (s,))
            c.ok(s is not None and s[0] == "up" and not stalled_events(proxy),
                 'stall_timeout = "0s" turns the stall watch off', "%r" % (s,))


def main():
    c = Check("q16_stall_watch")
    hung(c)
    slow(c)
    slow_among_fast(c)
    draining(c)
    off(c)
    c.done()


if __name__ == "__main__":
    run(main)
