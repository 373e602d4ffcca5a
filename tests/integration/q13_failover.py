"""q13: a backend that dies under load costs no idempotent request; the
retry budget still holds back a pool that is busy rather than broken.

The default configuration (no workers, timeouts, retries, retry_budget,
health or outlier key: the defaults), two sg-testbackend backends, each in
its own process group.

1. wrk GET load (-t2, -c16 / -c64 / -c256, 4 s); 1 s in, one backend is
   stopped by SIGTERM, or by SIGKILL of its whole process group: wrk
   reports 0 failed requests (no non-2xx/3xx answer, no socket error:
   connect, read, write, or timeout at wrk's default 2 s), the dead
   backend had served requests before, and the pool counted retries (its
   batch in flight and the refused connects after it went elsewhere).
2. The same at -c64 (13 s) with the backend hung by SIGSTOP for 10 s and
   then SIGCONT: 0 failed at wrk's default 2 s timeout. The hung backend
   still accepts connections, so its checks would take it down only after
   5 to 7 s; the stall watch (health.stall_timeout, 1 s) takes it down
   once it has been silent for 1 s while requests wait on it and the other
   backend answers, and the requests stuck on it are retried there. The
   backend is shown down within 2.5 s, its reason says "stalled".
   Q13_FULL=1 also runs SIGSTOP at -c16 and -c256.
3. Side by side, 40 GETs sent together (each on its own connection), with
   the default retry_budget (20% of the active requests, at least 3):
   - broken: both backends hold each request 400 ms; 150 ms in, one is
     SIGKILLed with its ~20 requests in flight: all 40 answered 200, no
     retry refused by the budget (before, the budget let ~8 through and
     the rest got 502);
   - busy: both backends hold each request 2 s, timeouts.server 500 ms:
     all 40 get 504, and the retries stay within the budget: at most
     max(3, 20% of 40) = 8 in flight after the first timeouts, a second
     wave of at most min_retries, plus one per worker racing for the last
     place (<= 15 in all, where `retries = 2` alone would allow 80);
   - busy answering 503: no retry at all (a response is never retried)."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time

from harness import *

WRK_SECONDS = 4
KILL_AFTER = 1.0
STOP_SECONDS = 10
WIDTH = 40


class GroupBackend:
    """sg-testbackend in a process group (and session) of its own, so that
    the whole group can be signalled as a supervisor would."""

    def __init__(self, name, delay_ms=None):
        self.name = name
        self.port = free_port()
        argv = [SG_BACKEND, "--listen", self.addr, "--name", name]
        if delay_ms is not None:
            argv += ["--delay", str(int(delay_ms))]
        self.stderr_path = tmp_path("q13-%s-%d.stderr" % (name, self.port))
        err = open(self.stderr_path, "wb")
        self.proc = Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                          start_new_session=True)
        err.close()
        line = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.proc.poll() is None:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if r:
                line = self.proc.stdout.readline()
                break
        self.proc.stdout.close()
        if line.strip() != b"ready":
            self.stop()
            fail("backend %s did not start: %s" % (name, open(self.stderr_path).read()))

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def requests(self):
        status, _, body = http_get(self.port, "/__stats", timeout=5)
        check_eq(status, 200, "backend %s /__stats" % self.name)
        return json.loads(body)["requests"]

    def control(self, **kw):
        q = "&".join("%s=%d" % (k, int(v)) for k, v in kw.items())
        status, _, _ = http_get(self.port, "/__control?" + q, timeout=5)
        check_eq(status, 200, "backend %s /__control?%s" % (self.name, q))

    def signal_group(self, sig):
        os.killpg(self.proc.pid, sig)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)
            except OSError:
                pass
        stop_process(self.proc, signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


_seq = [0]


def default_config(fe, backends, timeouts=""):
    """Only what the test needs: a frontend, the pool's two backends, the
    admin socket; everything else at its default."""
    _seq[0] += 1
    lines = ['admin = { listen = "unix:%s"; };' % tmp_path("q13-admin-%d.sock" % _seq[0]),
             'frontends = ( { name = "fe"; listen = "127.0.0.1:%d"; default_pool = "app"; } );'
             % fe,
             'pools = ( { name = "app"; backends = ( %s ); } );'
             % ", ".join('{ address = "%s"; }' % b.addr for b in backends)]
    if timeouts:
        lines.append("timeouts = { %s };" % timeouts)
    if os.environ.get("SG_IO_URING") == "0":
        lines.append("io_uring = false;")
    return "\n".join(lines) + "\n"


def counters(proxy):
    p = pool_info(proxy, required=("retries_total", "retries_denied"))
    return p["retries_total"], p["retries_denied"]


def wrk_run(conns, how, figures):
    """One wrk run against a fresh proxy and two fresh backends; `how` is
    "SIGTERM", "SIGKILL-group" or "SIGSTOP"."""
    stop = how == "SIGSTOP"
    seconds = STOP_SECONDS + 3 if stop else WRK_SECONDS
    timeout = "2s"
    with GroupBackend("A") as a, GroupBackend("B") as b:
        fe = free_port()
        with Proxy(default_config(fe, [a, b]), listen_port=fe) as proxy:
            argv = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds, "--timeout", timeout,
                    "--latency", "http://127.0.0.1:%d/f" % fe]
            w = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
            seen_down = []
            try:
                time.sleep(KILL_AFTER)
                served = b.requests()
                if how == "SIGTERM":
                    b.signal(signal.SIGTERM)
                elif how == "SIGKILL-group":
                    b.signal_group(signal.SIGKILL)
                else:
                    b.signal_group(signal.SIGSTOP)
                    t_end = time.monotonic() + STOP_SECONDS
                    while time.monotonic() < t_end:
                        r = admin_try_get(proxy, "pools/app")
                        if r and r[0] == 200 and not seen_down:
                            for x in r[1].get("backends", []):
                                if x.get("address") == b.addr and x.get("state") == "down":
                                    seen_down.append(STOP_SECONDS - (t_end - time.monotonic()))
                                    seen_down.append(x.get("reason") or "")
                        time.sleep(0.1)
                    b.signal_group(signal.SIGCONT)
                out, _ = w.communicate(timeout=seconds + 20)
            finally:
                if w.poll() is None:
                    w.kill()
                    w.wait()
            out = out.decode("utf-8", "replace")
            total, failed, detail = wrk_failed(out)
            retries, denied = counters(proxy)
            line = "%s -c%d: %d requests, %d failed (%s); B served %d before; retries %d " \
                   "(denied %d)%s" % (how, conns, total, failed, detail, served, retries, denied,
                                      "; B down after %.1f s" % seen_down[0] if seen_down
                                      else "")
            log(line)
            figures.append(line)
            check(w.returncode == 0, "wrk exit status %s:\n%s" % (w.returncode, out))
            check(served > 0, "%s -c%d: B served nothing before the signal (setup)"
                  % (how, conns))
            check(total > 1000, "%s -c%d: only %d requests in %d s (setup)"
                  % (how, conns, total, seconds))
            check(failed == 0, "%s -c%d: %d requests failed (want 0): %s\n%s"
                  % (how, conns, failed, detail, out))
            check(retries > 0, "%s -c%d: no retry counted: the death was not exercised"
                  % (how, conns))
            if stop:
                check(seen_down, "SIGSTOP -c%d: B never shown down in the admin API" % conns)
                check(seen_down[0] <= 2.5 and "stalled" in seen_down[1],
                      "SIGSTOP -c%d: B shown down after %.1f s for %r (want <= 2.5 s, "
                      "stalled)" % (conns, seen_down[0], seen_down[1]))


def side_by_side(figures):
    # broken: one of two backends dies with its share of 40 requests in flight
    with GroupBackend("A", delay_ms=400) as a, GroupBackend("B", delay_ms=400) as b:
        fe = free_port()
        with Proxy(default_config(fe, [a, b]), listen_port=fe) as proxy:
            ps = [Pending(fe, "/sb/%d" % i, timeout=10, defer=True) for i in range(WIDTH)]
            sent = [p for p in ps if p._write()]
            for p in sent:
                p._start()
            time.sleep(0.15)
            b.signal_group(signal.SIGKILL)
            statuses = {}
            for p in ps:
                st = p.result()[0]
                statuses[st] = statuses.get(st, 0) + 1
            retries, denied = counters(proxy)
            line = "broken (B killed, %d GETs in flight): statuses %s, retries %d, denied %d" \
                   % (WIDTH, statuses, retries, denied)
            log(line)
            figures.append(line)
            check(statuses == {200: WIDTH}, "broken pool: statuses %s (want all %d answered "
                  "200: the dead backend's batch goes to the live one)" % (statuses, WIDTH))
            check(retries >= WIDTH // 4, "broken pool: only %d retries (B held about %d "
                  "requests when it died)" % (retries, WIDTH // 2))
            check(denied == 0, "broken pool: the budget refused %d retries" % denied)
    # busy: both alive, too slow for timeouts.server
    with GroupBackend("A", delay_ms=2000) as a, GroupBackend("B", delay_ms=2000) as b:
        fe = free_port()
        cfg = default_config(fe, [a, b], timeouts='server = "500ms";')
        with Proxy(cfg, listen_port=fe) as proxy:
            ps = burst(fe, ["/sl/%d" % i for i in range(WIDTH)], timeout=10)
            statuses = {}
            for p in ps:
                statuses[p.status] = statuses.get(p.status, 0) + 1
            retries, denied = counters(proxy)
            line = "busy (2 s answers, 500 ms server timeout, %d GETs): statuses %s, " \
                   "retries %d, denied %d" % (WIDTH, statuses, retries, denied)
            log(line)
            figures.append(line)
            check(statuses == {504: WIDTH}, "busy pool: statuses %s (want all %d 504)"
                  % (statuses, WIDTH))
            workers = os.cpu_count() or 1
            bound = max(3, WIDTH // 5) + 3 + workers
            check(denied > 0, "busy pool: no retry refused by the budget")
            check(retries <= bound, "busy pool: %d retries for %d requests (want <= %d: the "
                  "budget's 8 in flight, a second wave of 3, one per worker racing)"
                  % (retries, WIDTH, bound))
            # answering 503: a response is never retried
            a.control(status=503, delay=0)
            b.control(status=503, delay=0)
            before = counters(proxy)[0]
            ps = burst(fe, ["/s5/%d" % i for i in range(WIDTH)], timeout=10)
            got = sorted(set(p.status for p in ps))
            after = counters(proxy)[0]
            line = "busy answering 503 (%d GETs): statuses %s, retries %d" \
                   % (WIDTH, got, after - before)
            log(line)
            figures.append(line)
            check(got == [503], "503 pool: statuses %s (want only 503)" % got)
            check(after == before, "503 pool: %d retries (want none)" % (after - before))


def main():
    if not shutil.which("wrk"):
        skip("wrk not installed")
    figures = []
    try:
        side_by_side(figures)
        for how in ("SIGTERM", "SIGKILL-group"):
            for c in (16, 64, 256):
                wrk_run(c, how, figures)
        for c in ((16, 64, 256) if os.environ.get("Q13_FULL") else (64,)):
            wrk_run(c, "SIGSTOP", figures)
    finally:
        log("figures:\n  " + "\n  ".join(figures))


if __name__ == "__main__":
    run(main)
