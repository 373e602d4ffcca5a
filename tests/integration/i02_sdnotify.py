"""i02: systemd notifications (Type=notify), through a stand-in for systemd:
a Unix datagram socket named by $NOTIFY_SOCKET, as systemd gives a service.

1. READY=1 arrives once, and only when the frontend already accepts
   connections; with WATCHDOG_USEC=300000 (WatchdogSec=300ms), WATCHDOG=1
   arrives from the main loop every ~150 ms, still while a load runs; a
   reload (SIGHUP) sends RELOADING=1 with MONOTONIC_USEC, then READY=1; on
   SIGTERM, STOPPING=1 arrives before the process exits (status 0).
2. WATCHDOG_PID naming another process: the watchdog is not ours, no
   WATCHDOG=1 (sd_watchdog_enabled(3)); READY=1 still comes.
3. A binary upgrade (SIGUSR2): the old process tells systemd the new one's
   pid (MAINPID=) before its STOPPING=1, the new one serves, the old one
   exits 0.
Needs a build with libsystemd (SG_SYSTEMD=ON; CMake registers this test
only then)."""
import os
import signal
import socket
import threading
import time

from harness import *


class FakeSystemd:
    """Collects (monotonic time, message) from the notify socket in a thread."""

    _seq = 0

    def __init__(self):
        FakeSystemd._seq += 1
        self.path = tmp_path("notify-%d.sock" % FakeSystemd._seq)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.on_ready = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            t = time.monotonic()
            text = data.decode()
            if "READY=1" in text.split("\n") and self.on_ready is not None:
                self.on_ready()
            self.msgs.append((t, text))

    def times(self, field):
        return [t for t, m in self.msgs if field in m.split("\n")]

    def close(self):
        self._stop.set()
        self._t.join(2)
        self.sock.close()


def main():
    with Backend("b1") as b:
        fe = free_port()
        sd = FakeSystemd()
        accepted_at_ready = []

        def probe():
            # runs as READY=1 arrives: the listener must already accept
            try:
                socket.create_connection(("127.0.0.1", fe), timeout=0.5).close()
                accepted_at_ready.append(True)
            except OSError:
                accepted_at_ready.append(False)
        sd.on_ready = probe
        env = dict(os.environ, NOTIFY_SOCKET=sd.path, WATCHDOG_USEC="300000")
        env.pop("WATCHDOG_PID", None)
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe, env=env, check_exit=False) as p:
            wait_for(lambda: sd.times("READY=1"), timeout=5, what="READY=1")
            check_eq(accepted_at_ready, [True], "frontend accepting when READY=1 arrived")
            check("systemd watchdog: WATCHDOG=1 every 150 ms" in p.stderr_text(),
                  "watchdog start not logged")
            with BackgroundLoad(fe, threads=4, max_seconds=10) as bg:
                time.sleep(1.6)
                res = bg.stop()
            check_eq(res.failed(), 0, "failed requests (%r)" % res)
            t_ready = sd.times("READY=1")[0]
            wd = [t for t in sd.times("WATCHDOG=1") if t >= t_ready - 0.05]
            check(len(wd) >= 8, "only %d WATCHDOG=1 in ~1.6 s (want one every 150 ms)" % len(wd))
            gaps = [b2 - a for a, b2 in zip(wd, wd[1:])]
            log("WATCHDOG=1: %d messages, gaps %.0f..%.0f ms (mean %.0f) under %d requests"
                % (len(wd), min(gaps) * 1000, max(gaps) * 1000, sum(gaps) / len(gaps) * 1000,
                   res.total))
            check(max(gaps) < 0.3, "a gap of %.0f ms between WATCHDOG=1 (WatchdogSec=300ms)"
                  % (max(gaps) * 1000))
            # a reload (SIGHUP): RELOADING=1 with MONOTONIC_USEC, then READY=1
            n_ready = len(sd.times("READY=1"))
            p.signal(signal.SIGHUP)
            wait_for(lambda: len(sd.times("READY=1")) > n_ready, timeout=5,
                     what="READY=1 after the reload")
            rl = [m for _, m in sd.msgs if "RELOADING=1" in m.split("\n")]
            check_eq(len(rl), 1, "RELOADING=1 messages")
            usec = [f for f in rl[0].split("\n") if f.startswith("MONOTONIC_USEC=")]
            check(usec and abs(int(usec[0].split("=")[1]) / 1e6 - time.monotonic()) < 10,
                  "RELOADING=1 without a MONOTONIC_USEC near now: %r" % rl[0])
            check(sd.times("RELOADING=1")[0] <= sd.times("READY=1")[-1], "READY=1 before RELOADING=1")
            check_eq(http_get(fe, "/after-reload")[0], 200, "request after the reload")
            p.signal(signal.SIGTERM)
            rc = p.wait(10)
            check_eq(rc, 0, "exit status after SIGTERM")
            time.sleep(0.1)
            stopping = sd.times("STOPPING=1")
            check_eq(len(stopping), 1, "STOPPING=1 messages")
            check_eq(len(sd.times("READY=1")), 2, "READY=1 messages (start, reload)")
            log("messages: %s" % sorted(set(m.split("\n")[0] for _, m in sd.msgs)))
        sd.close()

        # a watchdog meant for another process is not ours
        fe = free_port()
        sd = FakeSystemd()
        env = dict(os.environ, NOTIFY_SOCKET=sd.path, WATCHDOG_USEC="300000", WATCHDOG_PID="1")
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe, env=env) as p:
            wait_for(lambda: sd.times("READY=1"), timeout=5, what="READY=1 (WATCHDOG_PID=1)")
            time.sleep(0.5)
            check_eq(len(sd.times("WATCHDOG=1")), 0, "WATCHDOG=1 with WATCHDOG_PID of another")
            check("systemd watchdog" not in p.stderr_text(), "watchdog started for another pid")
        sd.close()

        # a binary upgrade: MAINPID= names the new process before STOPPING=1
        fe = free_port()
        sd = FakeSystemd()
        env = dict(os.environ, NOTIFY_SOCKET=sd.path)
        env.pop("WATCHDOG_USEC", None)
        new_pid = None
        try:
            with Proxy(proxy_config(fe, [b.addr]), listen_port=fe, env=env,
                       check_exit=False) as p:
                wait_for(lambda: sd.times("READY=1"), timeout=5, what="READY=1 (upgrade)")
                p.signal(signal.SIGUSR2)
                wait_for(lambda: [m for _, m in sd.msgs if m.startswith("MAINPID=")], timeout=10,
                         what="MAINPID= after SIGUSR2")
                mp = [(t, m) for t, m in sd.msgs if m.startswith("MAINPID=")][0]
                new_pid = int(mp[1].split("\n")[0].split("=")[1])
                rc = p.wait(10)
                check_eq(rc, 0, "the old process's exit status after the upgrade")
                check(new_pid != p.proc.pid and os.path.exists("/proc/%d" % new_pid),
                      "MAINPID=%d is not a live new process" % new_pid)
                check(all(t >= mp[0] for t in sd.times("STOPPING=1")),
                      "STOPPING=1 came before MAINPID=")
                check_eq(http_get(fe, "/after-upgrade")[0], 200, "request after the upgrade")
                log("upgrade: MAINPID=%d from %d, messages %s" % (
                    new_pid, p.proc.pid, sorted(set(m.split("\n")[0] for _, m in sd.msgs))))
        finally:
            if new_pid is not None:
                try:
                    os.kill(new_pid, signal.SIGTERM)
                except OSError:
                    pass
        sd.close()


if __name__ == "__main__":
    run(main)
