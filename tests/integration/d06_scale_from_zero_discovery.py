"""d06: the scaling loop closed through discovery: a scale-up hook that only
starts an instance (as the cloud hooks only change a count) and a discovery
source that then lists it; the time from the scale-up decision to the new
member's first request is printed for the command and the DNS sources.

A pool with no member, autoscale min 0 / max 2 (rule queue_depth > 3 for
2s), hold_timeout 8s, health checks every 200 ms (rise 1), and

(1) command: `discover = { command = [ LIST ]; interval = "300ms"; }`, LIST
    prints the JSON file the hook writes; the hook starts `surgegate
    --demo-backend 127.0.0.1:0`, writes [{"address": its address}] and prints
    nothing.
(2) DNS: `backends = ( { address = "app.test:P"; } )` with dnsmasq; the hook
    starts `--demo-backend 127.0.0.5:P`, adds "127.0.0.5 app.test" to
    dnsmasq's hosts file and SIGHUPs it; resolve_interval 300ms.

In both, four requests held in the empty pool fire one scale-up, the hook
adds no backend itself, the new member joins by discovery (backend_added
source "discovery") and serves all four (200, well before hold_timeout).
"""
import calendar
import glob
import json
import os
import signal
import time

from harness import *
from dnsserver import DnsServer

# starts a demo backend on $1 (ADDR), waits for its "listening on" line;
# leaves its address in $addr
START = r"""out="$d/demo.$$.out"
setsid "$SURGEGATE_BIN" --demo-backend "$1" </dev/null >"$out" 2>"$d/demo.$$.err" &
echo $! >"$d/demo.$$.pid"
i=0
line=
while [ $i -lt 50 ]; do
    line=$(head -n 1 "$out" 2>/dev/null)
    case $line in "listening on "*) break ;; esac
    sleep 0.05
    i=$((i + 1))
done
case $line in "listening on "*) ;; *) echo "demo backend did not start" >&2; exit 1 ;; esac
addr=${line#listening on }
"""

HOOK_COMMAND = START + r"""printf '[{"address":"%s"}]\n' "$addr" >"$2.tmp" && mv "$2.tmp" "$2"
"""

HOOK_DNS = START + r"""printf '127.0.0.5 app.test\n' >"$2.tmp" && mv "$2.tmp" "$2"
kill -HUP "$(cat "$3")"
"""


def iso_s(t):
    """Wall-clock seconds of an ISO 8601 journal time with milliseconds."""
    return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + int(t[20:23]) / 1000


def kill_demo(hook):
    for f in glob.glob(os.path.join(hook.dir, "demo.*.pid")):
        try:
            pid = int(open(f).read().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as c:
                if b"--demo-backend" not in c.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


def autoscale(hook_argv):
    return ('autoscale = { min = 0; max = 2; step = 1; hook_timeout = "10s"; '
            'scale_up_cooldown = "60s"; scale_down_window = "300s"; hold_timeout = "8s"; '
            'rules = ( { metric = "queue_depth"; above = 3.0; for = "2s"; } ); '
            'scale_up_hook = [ %s ]; };' % ", ".join('"%s"' % a for a in hook_argv))


HEALTH = cfg_group("health", type="http", path="/healthz", interval="200ms", timeout="150ms",
                   rise=1, fall=2)


def scale_and_measure(fe, px, hook, what):
    """Holds four requests, checks the loop closed by discovery; returns the
    seconds from the scale_decision to the first held response."""
    t_send = time.time()
    ps = burst(fe, ["/held?i=%d" % i for i in range(4)], timeout=20, gap=0.1)
    for p in ps:
        log("held request %s: %s in %.2fs from %s (%s)" % (p.path, p.status, p.elapsed,
                                                           p.backend, p.error))
    check_eq([p.status for p in ps], [200] * 4, "held requests' statuses")
    check(all(p.elapsed < 7.0 for p in ps), "held requests answered before hold_timeout")
    check_eq(len(hook.runs()), 1, "scale-up hook runs")
    added = find_events(admin_events(px), "backend_added", pool="app")
    check(len(added) == 1 and added[0].get("source") == "discovery",
          "the member came by discovery, not the hook: %r" % added)
    port = int(added[0]["backend"].rsplit(":", 1)[1])
    check(all(p.backend == "demo-%d" % port for p in ps), "served by the new member")
    ev = admin_events(px)
    dec = find_events(ev, "scale_decision", pool="app")[0]
    run = find_events(ev, "hook_run", pool="app")[0]
    upd = [e for e in find_events(ev, "discovery_update", pool="app") if e["added"]][0]
    t_dec = iso_s(dec["time"])
    first = min(t_send + 0.1 * i + p.elapsed for i, p in enumerate(ps))
    log("%s: scale_decision -> hook done %.0f ms -> discovery_update %.0f ms -> first "
        "response %.0f ms" % (what, run["duration_ms"], (iso_s(upd["time"]) - t_dec) * 1000,
                              (first - t_dec) * 1000))
    return first - t_dec


def case_command():
    d = tmp_path("d06-cmd")
    os.makedirs(d)
    members = os.path.join(d, "members.json")
    with open(members, "w") as f:
        f.write("[]\n")
    lister = os.path.join(d, "list")
    with open(lister, "w") as f:
        f.write("#!/bin/sh\ncat '%s'\n" % members)
    os.chmod(lister, 0o755)
    hook = HookScript("start-instance", HOOK_COMMAND)
    try:
        fe = free_port()
        disc = 'discover = { command = [ "%s" ]; interval = "300ms"; };' % lister
        cfg = proxy_config(fe, [], workers=2, timeouts={"queue": "10s"},
                           extra_pool=" ".join([HEALTH, disc,
                                                autoscale([hook.path, "127.0.0.1:0", members])]))
        with Proxy(cfg, listen_port=fe) as px:
            time.sleep(1.0)
            check_eq(pool_info(px)["backends"], [], "no member at start")
            dt = scale_and_measure(fe, px, hook, "command")
            print("FIGURE command_scale_decision_to_first_request_ms %.0f" % (dt * 1000))
    finally:
        kill_demo(hook)


def case_dns():
    port = free_port()
    dns = DnsServer(hosts={})
    pidfile = tmp_path("d06-dnsmasq.pid")
    with open(pidfile, "w") as f:
        f.write(str(dns.proc.pid))
    hook = HookScript("start-instance-dns", HOOK_DNS)
    try:
        fe = free_port()
        top = 'resolvers = [ "%s" ]; resolve_interval = "300ms";' % dns.addr
        cfg = proxy_config(fe, [{"address": "app.test:%d" % port}], workers=2,
                           timeouts={"queue": "10s"}, extra_top=top,
                           extra_pool=" ".join([HEALTH, autoscale([
                               hook.path, "127.0.0.5:%d" % port, dns.hosts_path, pidfile])]))
        with Proxy(cfg, listen_port=fe) as px:
            time.sleep(1.0)
            check_eq(pool_info(px)["backends"], [], "no member at start (NXDOMAIN)")
            dt = scale_and_measure(fe, px, hook, "DNS")
            print("FIGURE dns_scale_decision_to_first_request_ms %.0f" % (dt * 1000))
    finally:
        kill_demo(hook)
        dns.stop()


def main():
    case_command()
    case_dns()


run(main)
