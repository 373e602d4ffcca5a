"""d04: a pool's members from a command (discover.command) run every interval.

The command is a small shell script that prints the JSON in a state file
and exits with the status in another (as a wrapper around `aws ec2
describe-instances` or `gcloud compute instances list` would); the pool
starts with no backend: `discover = { command = [ SCRIPT, "web" ]; interval
= "300ms"; timeout = "2s"; maxconn = 25; }`.

(1) [] at first: surgegate starts, the pool is empty (503).
(2) {"members":[b1]}: b1 joins, maxconn 25; the script saw its argument and
    SURGEGATE_POOL / SURGEGATE_ACTION=discover.
(3) [b1, b2]: b2 takes traffic; the time from the change of the command's
    output to b2's first request is printed.
(4) exit 3 with a message on stderr, then bad JSON, then a run past the
    timeout: three discovery_failed events (exit status and stderr line,
    the JSON error, the timeout); b1 and b2 keep serving.
(5) [b2]: b1 drains and is removed.
"""
import json
import os
import time

from harness import *
from dnsserver import first_request_after, served_by

SCRIPT = r"""#!/bin/sh
d=%s
printf '%%s %%s %%s\n' "$1" "$SURGEGATE_POOL" "$SURGEGATE_ACTION" >"$d/seen"
[ -f "$d/sleep" ] && sleep "$(cat "$d/sleep")"
cat "$d/out"
rc=$(cat "$d/rc")
[ "$rc" = 0 ] || echo "listing failed: quota exceeded" >&2
exit "$rc"
"""


def members(px):
    return {b["address"]: b for b in pool_info(px)["backends"] if not b.get("removing")}


def put(d, name, text):
    tmp = os.path.join(d, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(d, name))


def main():
    b1, b2 = Backend("b1"), Backend("b2")
    d = tmp_path("cmd")
    os.makedirs(d)
    script = os.path.join(d, "list-members")
    with open(script, "w") as f:
        f.write(SCRIPT % d)
    os.chmod(script, 0o755)
    put(d, "out", "[]\n")
    put(d, "rc", "0")
    health = cfg_group("health", type="http", path="/healthz", interval="200ms",
                       timeout="150ms", rise=1, fall=2)
    disc = ('discover = { command = [ "%s", "web" ]; interval = "300ms"; timeout = "2s"; '
            'maxconn = 25; };' % script)
    fe = free_port()
    with Proxy(proxy_config(fe, [], workers=2, timeouts={"queue": "500ms"},
                            extra_pool=health + " " + disc), listen_port=fe) as px:
        # (1)
        wait_journal(px, "discovery_update", source="command", timeout=5)
        check_eq(members(px), {}, "members of []")
        st, _, _ = http_get(fe, "/empty")
        check_eq(st, 503, "request to the empty pool")

        # (2)
        put(d, "out", json.dumps({"members": [{"address": b1.addr}]}))
        wait_for(lambda: b1.addr in members(px), timeout=5, what="b1 from the command")
        wait_backend(px, b1.addr, "up", 5)
        check_eq(members(px)[b1.addr]["maxconn"], 25, "maxconn from the discover group")
        check_eq(open(os.path.join(d, "seen")).read().split(), ["web", "app", "discover"],
                 "the command's argument and environment")

        # (3)
        t0 = time.monotonic()
        put(d, "out", json.dumps([{"address": b1.addr, "weight": 1},
                                  {"address": b2.addr, "weight": 1}]))
        dt = first_request_after(fe, "b2", t0)
        log("command output change -> first request on the new member: %.0f ms" % (dt * 1000))
        print("FIGURE command_change_to_first_request_ms %.0f" % (dt * 1000))

        # (4)
        put(d, "rc", "3")
        ev = wait_journal(px, "discovery_failed", source="command", timeout=5)
        check("exited with 3" in ev[-1]["error"] and "quota exceeded" in ev[-1]["error"],
              "error of a failing command: %r" % ev[-1]["error"])
        put(d, "out", '[{"address": ')
        put(d, "rc", "0")
        wait_for(lambda: len(find_events(admin_events(px), "discovery_failed",
                                         source="command")) >= 2, timeout=5, what="bad JSON")
        ev = find_events(admin_events(px), "discovery_failed", source="command")
        check("not JSON" in ev[-1]["error"], "error of bad output: %r" % ev[-1]["error"])
        put(d, "sleep", "5")
        wait_for(lambda: len(find_events(admin_events(px), "discovery_failed",
                                         source="command")) >= 3, timeout=8, what="timeout")
        ev = find_events(admin_events(px), "discovery_failed", source="command")
        check("timed out" in ev[-1]["error"], "error of a hung command: %r" % ev[-1]["error"])
        os.unlink(os.path.join(d, "sleep"))
        check_eq(sorted(members(px)), sorted([b1.addr, b2.addr]), "members kept")
        check_eq(served_by(fe, 8), {"b1", "b2"}, "serving while the command fails")

        # (5)
        put(d, "out", json.dumps([b2.addr]))
        wait_journal(px, "backend_removed", backend=b1.addr, timeout=8)
        check_eq(sorted(members(px)), [b2.addr], "members at the end")
        upd = find_events(admin_events(px), "discovery_update", source="command")
        check(upd[-1].get("recovered") and upd[-1]["removed"] == [b1.addr],
              "last discovery_update: %r" % upd[-1])


run(main)
