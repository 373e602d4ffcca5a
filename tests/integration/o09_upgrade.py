"""o09: binary upgrade without dropping a connection.

surgegate runs from a copy of the binary in a temporary directory (so that
the test can put a "new version" at the same path, as a package upgrade
does). A backend is added at runtime, another drained by the operator.
Under wrk -c64 (12 s), the binary file is replaced and SIGUSR2 sent; 4 s
later `surgectl upgrade` upgrades the new process in turn. Asserted:
  - wrk: no failed request (no non-2xx answer, no socket error);
  - each upgrade replaced the process: a new pid serves, the old one exited
    with status 0 within timeouts.grace;
  - the runtime-added backend (and its weight) and the operator's drain are
    still there after both upgrades;
  - a failing new executable (it exits at once) leaves the running process
    serving: the upgrade is reported failed (journal upgrade_failed), the
    admin API answers again, traffic is served."""
import os
import re
import shutil
import signal
import subprocess
import time

from harness import *
from rawhttp import Check

SG_CTL = os.environ.get("SG_CTL") or os.path.join(os.path.dirname(SG_BIN), "surgectl")


def surgectl(sock, *args):
    p = subprocess.run([SG_CTL, "--admin", "unix:" + sock] + list(args), capture_output=True,
                       text=True, timeout=20, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def pids_of(exe):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode("utf-8", "replace")
        except OSError:
            continue
        if argv0 == exe:
            out.append(int(d))
    return sorted(out)


def put_binary(path, src):
    tmp = path + ".new"
    shutil.copy(src, tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


def wait_new_pid(exe, old, timeout=10.0):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        ps = [p for p in pids_of(exe) if p != old]
        if ps and old not in pids_of(exe):
            return ps[0]
        time.sleep(0.05)
    return None


def main():
    c = Check("o09_upgrade")
    exe = tmp_path("sg-upgrade-bin")
    put_binary(exe, SG_BIN)
    procs = []
    try:
        with Backend("A", log=False) as a, Backend("B", log=False) as b, \
                Backend("C", log=False) as cb:
            fe = free_port()
            sock = tmp_path("o09-admin.sock")
            cfg_text = proxy_config(fe, [a, b], workers=2, timeouts={"grace": "5s"},
                                    admin='listen = "unix:%s";' % sock)
            cfg_path = tmp_path("o09.conf")
            with open(cfg_path, "w") as f:
                f.write(cfg_text)
            err = open(tmp_path("o09.stderr"), "wb")
            p0 = subprocess.Popen([exe, "-c", cfg_path], stdin=subprocess.DEVNULL, stderr=err,
                                  stdout=subprocess.DEVNULL)
            procs.append(p0)
            def up():
                try:
                    return http_get(fe, "/ready")[0] == 200
                except OSError:
                    return p0.poll() is not None and fail("surgegate exited %s" % p0.returncode)
            wait_for(up, timeout=10.0, what="surgegate up")

            class P:  # enough of harness.Proxy for the admin helpers
                admin_path = sock
                admin_port = None

                def alive(self):
                    return bool(pids_of(exe))
            proxy = P()
            st, _ = admin_post(proxy, "pools/app/backends", {"address": cb.addr, "weight": 3})
            check(st in (200, 201), "admin add C: %s" % st)
            wait_backend(proxy, cb.addr, ("up",), timeout=10.0)
            st, _ = admin_post(proxy, "pools/app/backends/%s/state" % b.addr, {"state": "drain"})
            check(st == 200, "admin drain B: %s" % st)

            w = subprocess.Popen(["wrk", "-t2", "-c64", "-d12s", "--timeout", "2s",
                                  "http://127.0.0.1:%d/u" % fe], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                time.sleep(2.0)
                put_binary(exe, SG_BIN)  # "the package put a new version there"
                p0.send_signal(signal.SIGUSR2)
                p1 = wait_new_pid(exe, p0.pid)
                rc0 = p0.wait(timeout=10)
                log("SIGUSR2: %d -> %s, old exit %s" % (p0.pid, p1, rc0))
                c.ok(p1 is not None and rc0 == 0,
                     "SIGUSR2: a new process serves, the old one exited 0")
                time.sleep(3.0)
                rc, out, er = surgectl(sock, "upgrade")
                log("surgectl upgrade: %d %r %r" % (rc, out, er))
                c.ok(rc == 0 and out.startswith("upgrade started"), "surgectl upgrade: started")
                p2 = wait_new_pid(exe, p1) if p1 else None
                log("surgectl upgrade: %s -> %s" % (p1, p2))
                c.ok(p2 is not None, "surgectl upgrade: a new process serves, the old one ended")
                wout, _ = w.communicate(timeout=40)
            finally:
                if w.poll() is None:
                    w.kill()
                    w.wait()
            wout = wout.decode("utf-8", "replace")
            total, failed, _ = wrk_failed(wout)
            log("wrk: %d requests, %d failed across two upgrades" % (total, failed))
            c.ok(total > 1000 and failed == 0, "two upgrades under wrk -c64: 0 failed requests",
                 wout)
            wait_for(lambda: admin_try_get(proxy, "pools/app") is not None, timeout=5.0,
                     what="admin API after the upgrades")
            p = pool_info(proxy)
            bs = {x["address"]: x for x in p["backends"]}
            log("backends after: %r" % {k: (v.get("state"), v.get("weight")) for k, v in
                                        bs.items()})
            c.ok(bs.get(cb.addr, {}).get("state") == "up" and bs[cb.addr].get("weight") == 3,
                 "the backend added at runtime is still there, up, weight 3")
            c.ok(bs.get(b.addr, {}).get("state") == "drain", "the operator's drain is kept")

            # a failing new executable: the running process goes on
            with open(exe + ".new", "w") as f:
                f.write("#!/bin/sh\nexit 1\n")
            os.chmod(exe + ".new", 0o755)
            os.replace(exe + ".new", exe)
            rc, out, er = surgectl(sock, "upgrade")
            time.sleep(1.5)
            ok_after = http_get(fe, "/after")[0]
            ev = admin_events(proxy)
            failed_ev = find_events(ev, "upgrade_failed")
            log("failing upgrade: surgectl %d; served %s; events %r" % (rc, ok_after,
                                                                      failed_ev[-1:]))
            c.ok(ok_after == 200 and failed_ev,
                 "a failing new executable: the running process serves on (upgrade_failed)")
    finally:
        for pid in pids_of(exe):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        # the last process runs the script's name now: find surgegate by its config
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/cmdline" % d, "rb") as f:
                        cl = f.read()
                except OSError:
                    continue
                if b"o09.conf" in cl and int(d) != os.getpid():
                    try:
                        os.kill(int(d), signal.SIGTERM)
                    except OSError:
                        pass
        for p in procs:
            if p.poll() is None:
                p.kill()
    # every process of the chain wrote to the same stderr: a sanitizer
    # report from any of them (leaks at exit included) shows there
    time.sleep(1.0)
    with open(tmp_path("o09.stderr"), "rb") as f:
        text = f.read().decode("utf-8", "replace")
    c.ok("Sanitizer" not in text and "runtime error" not in text,
         "no sanitizer report from any of the processes", text[-2000:])
    c.done()


if __name__ == "__main__":
    run(main)
