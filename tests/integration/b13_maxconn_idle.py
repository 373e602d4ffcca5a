"""b13: 10,000 idle connections under maxconn = 10000 over 2 workers.

10,000 clients connect and stay idle (every timeout is far away); then each
sends one request, at most 1,000 outstanding at a time, and keeps its
connection open: every one of the 10,000 is answered (200), none is closed
or reset. A limit split into two shares of 5,000 leaves the connections
beyond 5,000 that the kernel hashed to one worker's socket unanswered in its
backlog. Skipped when this process or the proxy cannot have enough open
files (RLIMIT_NOFILE)."""
import time

from harness import *
from manyconn import Many, raise_nofile

N = 10000
WINDOW = 1000   # requests outstanding at a time
STALL = 5.0     # seconds without a response that end the run


def proxy_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                v = line.split()[3]
                return 10 ** 9 if v == "unlimited" else int(v)
    return 0


def main():
    need = N + 200
    have = raise_nofile(need)
    if have < need:
        skip("needs %d open files, RLIMIT_NOFILE allows %d (raise the hard limit: ulimit -Hn)"
             % (need, have))
    with Backend("b1", log=False) as b:
        fe = free_port()
        cfg = proxy_config(fe, [b.addr], workers=2, maxconn=N,
                           timeouts={"keepalive": "300s", "client": "300s",
                                     "http_request": "300s"})
        with Proxy(cfg, listen_port=fe) as p:
            pn = proxy_nofile(p.pid)
            if pn < N + 2 * WINDOW:
                skip("the proxy can open %d files, this test needs %d" % (pn, N + 2 * WINDOW))
            time.sleep(0.2)  # the readiness probe's slot is given back
            queue = []

            def next_request(c, r):
                if queue:
                    nc = queue.pop()
                    m.get(nc, "/idle/%d" % nc.cid)

            m = Many(fe, on_response=next_request)
            try:
                t0 = time.monotonic()
                cs = m.open(N, timeout=60.0, batch=1000)
                log("%d connections established in %.1fs" % (N, time.monotonic() - t0))
                m.run(lambda: False, timeout=1.0)  # idle: nothing should arrive
                gone = [c for c in cs if c.done]
                check(not gone, "%d idle connections closed or reset by the proxy (first: eof=%s "
                      "reset=%s)" % (len(gone), gone[0].eof, gone[0].reset) if gone else "")
                queue[:] = list(reversed(cs[WINDOW:]))
                t1 = time.monotonic()
                for c in cs[:WINDOW]:
                    m.get(c, "/idle/%d" % c.cid)

                def all_answered():
                    return not queue and all(c.responses for c in cs)
                m.run(all_answered, timeout=120.0, idle=STALL)
                dt = time.monotonic() - t1
                ok = [c for c in cs if c.responses]
                waiting = [c for c in cs if c.requests and not c.responses and not c.done]
                gone = [c for c in cs if c.done and not c.responses]
                log("%d of %d answered in %.1fs; %d waiting, %d closed or reset, %d not sent"
                    % (len(ok), N, dt, len(waiting), len(gone), len(queue)))
                check(len(ok) == N, "%d of %d idle connections answered (%d still waiting after "
                      "%.0fs without a response, %d closed or reset, %d requests never sent)"
                      % (len(ok), N, len(waiting), STALL, len(gone), len(queue)))
                bad = [c.responses[0][0] for c in ok if c.responses[0][0] != 200]
                check(not bad, "statuses other than 200: %r" % bad[:10])
            finally:
                m.close_all()


if __name__ == "__main__":
    run(main)
