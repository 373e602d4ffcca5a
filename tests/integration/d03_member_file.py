"""d03: a pool's members from a file (discover.file), re-read when it changes.

The pool has one configured backend (b0, maxconn 30) and `discover = { file
= F; interval = "200ms"; }`; health checks every 200 ms.

(1) F holds "b1 weight=2" (line format, with a comment and a blank line):
    b1 joins with weight 2 and b0's maxconn (30), next to b0.
(2) F is replaced (rename) by JSON [b1, b2]: b2 joins (time to its first
    request printed).
(3) F is written with garbage: discovery_failed naming the line; b1 and b2
    stay. F removed: discovery_failed again; they stay.
(4) F comes back with b2 only: b1 drains and is removed; b0, the config's
    own backend, is never touched by discovery. /metrics, with the discovery
    families, passes `promtool check metrics`.
"""
import os
import shutil
import subprocess
import time

from harness import *
from dnsserver import first_request_after, served_by


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def members(px):
    return {b["address"]: b for b in pool_info(px)["backends"] if not b.get("removing")}


def main():
    b0, b1, b2 = Backend("b0"), Backend("b1"), Backend("b2")
    path = tmp_path("members.txt")
    write(path, "# app servers\n\n%s weight=2   # the first\n" % b1.addr)
    health = cfg_group("health", type="http", path="/healthz", interval="200ms",
                       timeout="150ms", rise=1, fall=2)
    disc = 'discover = { file = "%s"; interval = "200ms"; };' % path
    fe = free_port()
    with Proxy(proxy_config(fe, [{"address": b0.addr, "maxconn": 30}], workers=2,
                            extra_pool=health + " " + disc), listen_port=fe) as px:
        # (1)
        wait_for(lambda: sorted(members(px)) == sorted([b0.addr, b1.addr]), timeout=5,
                 what="b1 from the file")
        wait_backend(px, b1.addr, "up", 5)
        m = members(px)
        check_eq((m[b1.addr]["weight"], m[b1.addr]["maxconn"]), (2, 30), "b1 weight, maxconn")
        check_eq(served_by(fe, 12), {"b0", "b1"}, "serving")

        # (2)
        t0 = time.monotonic()
        write(path, '[{"address": "%s", "weight": 2}, {"address": "%s"}]\n' % (b1.addr, b2.addr))
        dt = first_request_after(fe, "b2", t0)
        log("member file change -> first request on the new member: %.0f ms" % (dt * 1000))
        print("FIGURE file_change_to_first_request_ms %.0f" % (dt * 1000))
        check_eq(sorted(members(px)), sorted([b0.addr, b1.addr, b2.addr]), "members")

        # (3)
        write(path, "%s\nnot-an-address weight=1\n" % b1.addr)
        ev = wait_journal(px, "discovery_failed", source="file", timeout=3)
        check("line 2" in ev[-1]["error"], "error names the line: %r" % ev[-1]["error"])
        os.unlink(path)
        wait_for(lambda: len(find_events(admin_events(px), "discovery_failed", source="file"))
                 >= 2, timeout=3, what="discovery_failed for the missing file")
        time.sleep(0.5)
        check_eq(sorted(members(px)), sorted([b0.addr, b1.addr, b2.addr]), "members kept")

        # (4)
        write(path, "%s\n" % b2.addr)
        wait_journal(px, "backend_removed", backend=b1.addr, timeout=5)
        check_eq(sorted(members(px)), sorted([b0.addr, b2.addr]), "members after removal")
        rm = find_events(admin_events(px), "backend_removing", source="discovery")
        check_eq([e["backend"] for e in rm], [b1.addr], "what discovery removed")
        check_eq(served_by(fe, 12), {"b0", "b2"}, "serving at the end")
        # surgectl shows the discovered member like any backend
        ctl_bin = os.environ.get("SG_CTL") or os.path.join(os.path.dirname(SG_BIN), "surgectl")
        out = subprocess.run([ctl_bin, "--admin", "unix:" + px.admin_path, "status"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        text = out.stdout.decode()
        log(text)
        check(out.returncode == 0 and any(ln.split()[:1] == [b2.addr] or b2.addr in ln.split()
                                          for ln in text.splitlines()),
              "surgectl status lists %s" % b2.addr)
        # the discovery families pass Prometheus's own checker
        st, metrics = admin_request(px, "GET", "/metrics")
        check('surgegate_discovery_members{pool="app",source="file",name="%s"} 1' % path
              in metrics, "surgegate_discovery_members of the file")
        promtool = shutil.which("promtool")
        check(promtool is not None, "promtool (Debian package prometheus) is installed")
        pr = subprocess.run([promtool, "check", "metrics"], input=metrics.encode(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        check_eq(pr.returncode, 0, "promtool check metrics (%s)" % pr.stdout.decode()[-300:])


run(main)
