"""q12: a backend that accepts and never answers, under load, with the
default health checks (GET / every 2 s, timeout 1 s, fall 3) and the stall
watch off (`health = { stall_timeout = "0s"; }`: this test is about the
checks; q16_stall_watch and q13_failover test the stall watch, which takes
such a backend down after 1 s).

Pool: A (sg-testbackend) and H (a socket server that accepts, reads and
never writes), roundrobin, timeouts.server 30 s, 2 workers. 16 keep-alive
clients send 600 GETs from the moment the proxy is up.
  1. H is "down" in the admin API within fall x interval + slack (<= 9 s
     from the start), with a reason naming the timeout;
  2. every GET is answered 200 by A: those stuck on H were retried on A
     when H went down, so the slowest took well under timeouts.server
     (<= 10 s, not 30 s), and load finished soon after H went down;
  3. the pool counted those retries and H's timeouts.
Before health checks were on by default (and stuck requests rescued), H
stayed "up", its requests waited for the 30 s server timeout and then
went elsewhere: at most a few requests a second got through."""
import selectors
import socket
import threading
import time

from harness import *


class HungServer:
    """Listens on 127.0.0.1:<free port>; accepts every connection and reads
    what comes, never writes; closes a connection when its peer does."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(512)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.accepted = 0
        self.stop_ev = threading.Event()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.is_set():
            for key, _ in self.sel.select(timeout=0.1):
                s = key.fileobj
                if s is self.lsock:
                    try:
                        c, _ = s.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    self.accepted += 1
                    self.sel.register(c, selectors.EVENT_READ)
                    continue
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(s)
                    s.close()
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()

    def close(self):
        self.stop_ev.set()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


N = 600
CLIENTS = 16


def main():
    with Backend("A", log=False) as a, HungServer() as h:
        fe = free_port()
        cfg = proxy_config(fe, [a.addr, h.addr], workers=2, timeouts={"server": "30s"},
                           extra_pool='health = { stall_timeout = "0s"; };')
        with Proxy(cfg, listen_port=fe) as proxy:
            t0 = time.monotonic()
            seen = {}

            def watch():
                # H's state from the admin API, every 100 ms, until down
                while "down" not in seen and time.monotonic() - t0 < 40:
                    r = admin_try_get(proxy, "pools/app")
                    if r and r[0] == 200:
                        for b in r[1].get("backends", []):
                            if b.get("address") == h.addr and b.get("state") == "down":
                                seen["down"] = (time.monotonic() - t0, b.get("reason"))
                    time.sleep(0.1)

            w = threading.Thread(target=watch, daemon=True)
            w.start()
            res = load(fe, N, threads=CLIENTS, path="/hung", timeout=35.0, max_seconds=60.0,
                       record=True)
            t_load = time.monotonic() - t0
            w.join(45)
            lat = sorted(r[5] - r[4] for r in res.records)
            slowest = lat[-1] if lat else None
            stuck = sum(1 for x in lat if x > 1.0)
            down_at, reason = seen.get("down", (None, None))
            log("%r" % res)
            log("H accepted %d connections; H down after %s s (reason %r); load took %.2f s; "
                "%d requests over 1 s, slowest %.2f s"
                % (h.accepted, "%.2f" % down_at if down_at is not None else "never", reason,
                   t_load, stuck, slowest or -1))
            check(down_at is not None, "H never shown down in the admin API (within %.0f s)"
                  % (time.monotonic() - t0))
            check(down_at <= 9.0, "H down only after %.2f s (fall 3 x interval 2 s + the first "
                  "check's random offset: want <= 9 s)" % down_at)
            check("timeout" in (reason or ""), "H's reason %r does not mention the timeout"
                  % reason)
            check(res.ok() == N, "%d of %d GETs failed: statuses %s, errors %s"
                  % (res.failed(), N, res.statuses, res.errors[:3]))
            check(set(res.backends) == {"A"}, "answers from %s (want only A)" % res.backends)
            check(stuck > 0, "no request was ever stuck on H (the test did not test it)")
            check(slowest <= 10.0, "slowest GET took %.2f s: requests stuck on H waited for "
                  "timeouts.server instead of going to A when H went down" % slowest)
            check(t_load <= down_at + 3.0, "load ended %.2f s after H went down (want <= 3 s)"
                  % (t_load - down_at))
            # per-backend counts reach the admin API at the control thread's tick
            last = {}

            def counted():
                info = stats_pool(proxy)
                hb = stats_backend(info, h.addr) or {}
                last["retries"] = info.get("retries_total", 0)
                last["errors"] = hb.get("errors", {})
                return last["retries"] >= 1 and last["errors"].get("timeout", 0) >= 1

            ok = True
            try:
                wait_for(counted, timeout=3, interval=0.2, what="retries and H's timeouts")
            except TestFailure:
                ok = False
            log("pool retries_total %s; H errors %s" % (last.get("retries"), last.get("errors")))
            check(ok, "the stuck requests were not counted as retries of the pool (%s) and "
                  "timeouts of H (%r)" % (last.get("retries"), last.get("errors")))


if __name__ == "__main__":
    run(main)
