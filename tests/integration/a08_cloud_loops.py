"""a08: the example cloud hooks close the scaling loop with their discovery
pair, against stub CLIs that behave like the real ones (tests/hooks/
fakecloud.py: a fake control plane where new instances boot for BOOT_S
seconds, then are in service; each instance is a real sg-testbackend).

  aws     hooks/aws-asg + discover command hooks/aws-asg-members
          (instances 127.0.0.1N:P, one port, an IP each, as in a VPC)
  gcloud  hooks/gcloud-mig + discover command hooks/gcloud-mig-members
  kubectl hooks/kubectl-scale + discover dns_srv of the "headless service"
          (dnsmasq: the fake platform rewrites the SRV and A records of the
          ready pods and restarts dnsmasq on the same port, as d02 does)
  docker  hooks/docker-compose-scale + discover command
          hooks/docker-compose-members (containers 127.0.0.1:PUBLISHED)

Each case: the group runs one instance (a backend answering after 300 ms);
the pool has no backend of its own, only the discovery source (command every
300 ms, or SRV with resolve_interval 300 ms; members maxconn 1), health
checks every 200 ms, autoscale min 1 / max 4 / step 2 (rule queue_depth > 3
for 2s, cooldown 60s). Eight clients queue requests on the one member until
the rule fires; checked:
  - the first instance came by discovery and was the only member;
  - the hook ran once, as configured, SURGEGATE_CURRENT=1 (the discovered
    group) and SURGEGATE_DESIRED=3, and called its CLI once with exactly the
    argv of the real one (the stub's record);
  - the two new instances joined as members with source "discovery", no
    sooner than their boot delay after the decision, at the addresses the
    platform gave them, and each got requests (polled on its /__stats);
  - no request failed under the load, and afterwards all three serve.
Printed: decision -> hook done -> members added -> the new members' first
request (FIGURE lines, one per pair).

The hook runner's PATH is fixed (/usr/local/sbin:...:/bin), so the configured
scale hook and discovery command are small wrappers that put the stub CLI's
directory first on PATH and exec the real hooks/ script with their argv.
"""
import calendar
import http.client
import json
import os
import sys
import time

from harness import *
from dnsserver import DnsServer, HostBackend, served_by

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOKS = os.path.join(ROOT, "hooks")
sys.path.insert(0, os.path.join(ROOT, "tests", "hooks"))
import fakecloud  # noqa: E402

BOOT_S = 1.0
DELAY_MS = 300
FIGURES = []

HEALTH = cfg_group("health", type="http", path="/healthz", interval="200ms", timeout="150ms",
                   rise=1, fall=2)


def iso_s(t):
    """Wall-clock seconds of an ISO 8601 journal time with milliseconds."""
    return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + int(t[20:23]) / 1000


def wrapper(path, stub_bin, target):
    """A program that runs hooks/TARGET with the stub CLI first on PATH."""
    with open(path, "w") as f:
        f.write('#!/bin/sh\nPATH=\'%s\':$PATH\nexport PATH\nexec \'%s\' "$@"\n'
                % (stub_bin, os.path.join(HOOKS, target)))
    os.chmod(path, 0o755)
    return path


def scale_hook(cloud, target):
    """A recording HookScript (argv, environment) that execs hooks/TARGET."""
    return HookScript(target, 'PATH=\'%s\':$PATH\nexport PATH\nexec \'%s\' "$@"\n'
                      % (cloud.bin, os.path.join(HOOKS, target)))


def autoscale(hook_argv):
    return ('autoscale = { min = 1; max = 4; step = 2; hook_timeout = "10s"; '
            'scale_up_cooldown = "60s"; scale_down_window = "300s"; '
            'rules = ( { metric = "queue_depth"; above = 3.0; for = "2s"; } ); '
            'scale_up_hook = [ %s ]; };' % ", ".join('"%s"' % a for a in hook_argv))


def ip_backends(prefix, port):
    """start/stop callbacks: instance n is a real backend named PREFIX-n on
    127.0.0.(10+n):port, answering after DELAY_MS."""
    def start(n):
        b = HostBackend("%s-%d" % (prefix, n), "127.0.0.%d" % (10 + n), port, delay_ms=DELAY_MS)
        return {"ip": b.host, "port": b.port, "handle": b}

    def stop(inst, b):
        if b is not None:
            b.stop()
    return start, stop


def backend_requests(addr):
    """Requests an instance's sg-testbackend got (health checks excluded)."""
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        c.request("GET", "/__stats")
        return json.loads(c.getresponse().read())["requests"]
    finally:
        c.close()


def serving(fe, n=12):
    """The backends (X-Backend) answering n GETs that ask for no delay."""
    seen = set()
    for _ in range(n):
        st, h, _ = http_get(fe, "/who?delay=0", timeout=5)
        seen.add(h.get("X-Backend") if st == 200 else str(st))
    return seen


def loop(what, fe, cfg, cloud, hook, hook_args, want_cli, names):
    """Runs surgegate with the group's one instance as its member, queues
    requests on it until the rule fires, checks the loop closed through
    discovery; appends the figures."""
    first_addr = cloud.members()
    check_eq(len(first_addr), 1, "%s: one instance at start" % what)
    with Proxy(cfg, listen_port=fe) as px:
        wait_for(lambda: [b["address"] for b in pool_info(px)["backends"]] == first_addr,
                 timeout=5, what="%s: the first instance as the one member" % what)
        wait_backend(px, first_addr[0], "up", 5)
        cloud.clear_calls()
        with BackgroundLoad(fe, threads=8, max_seconds=20) as bg:
            hook.wait_runs(1, timeout=10, what="%s: the scale-up hook" % what)
            # the new instances' first requests (polled every 20 ms)
            firsts = {}
            deadline = time.monotonic() + 10
            while len(firsts) < 2 and time.monotonic() < deadline and cloud.error is None:
                for inst in cloud.state()["instances"]:
                    a = "%s:%d" % (inst.get("ip"), inst.get("port", 0))
                    if inst["n"] == 1 or a in firsts or "ip" not in inst:
                        continue
                    try:
                        if backend_requests(a) > 0:
                            firsts[a] = time.time()
                    except OSError:
                        pass
                time.sleep(0.02)
            res = bg.stop()
        log("%s: load: %r" % (what, res))
        check(cloud.error is None, "%s: fake cloud: %s" % (what, cloud.error))
        check_eq(len(firsts), 2, "%s: new instances that got a request" % what)
        check_eq(res.failed(), 0, "%s: failed requests under load" % what)

        # the hook: once, as configured, 1 -> 3; its CLI call as the real one's
        runs = hook.runs()
        check_eq(len(runs), 1, "%s: scale-up hook runs" % what)
        check_eq(runs[0]["argv"][1:], hook_args, "%s: hook argv" % what)
        env = runs[0]["env"]
        check_eq((env["SURGEGATE_ACTION"], env["SURGEGATE_CURRENT"], env["SURGEGATE_DESIRED"]),
                 ("scale_up", "1", "3"), "%s: hook action, current, desired" % what)
        sets = [[c["name"]] + c["argv"] for c in cloud.calls()
                if {"set-desired-capacity", "resize", "scale", "up"} & set(c["argv"])]
        check_eq(sets, [want_cli], "%s: the CLI calls that change the group" % what)

        # the members: by discovery, where the platform put them, after the boot
        members = cloud.members()
        check_eq(len(members), 3, "%s: instances in service" % what)
        ev = admin_events(px)
        added = find_events(ev, "backend_added", pool="app")
        check_eq(sorted(e.get("backend") for e in added), members,
                 "%s: members added (the instances' addresses)" % what)
        check(all(e.get("source") == "discovery" for e in added),
              "%s: members came by discovery: %r" % (what, added))
        check_eq(sorted(b["address"] for b in pool_info(px)["backends"]), members,
                 "%s: pool members" % what)
        dec = find_events(ev, "scale_decision", pool="app")
        check_eq(len(dec), 1, "%s: scale decisions" % what)
        run = find_events(ev, "hook_run", pool="app")[0]
        check_eq(run.get("result"), "ok", "%s: hook_run result" % what)
        t_dec = iso_s(dec[0]["time"])
        new_added = [e for e in added if e["backend"] not in first_addr]
        t_add = min(iso_s(e["time"]) for e in new_added)
        check(t_add - t_dec >= BOOT_S - 0.05, "%s: a member joined %.2fs after the decision, "
              "before the instances' %.1fs boot" % (what, t_add - t_dec, BOOT_S))
        check_eq(sorted(firsts), sorted(e["backend"] for e in new_added),
                 "%s: the new members took requests" % what)
        check_eq(serving(fe), set(names), "%s: backends serving afterwards" % what)

        first = min(firsts.values())
        log("%s: scale_decision -> hook done %s ms -> members added %.0f ms -> first "
            "request %.0f ms (instances boot %.0f ms)"
            % (what, run.get("duration_ms"), (t_add - t_dec) * 1000, (first - t_dec) * 1000,
               BOOT_S * 1000))
        FIGURES.append("FIGURE %s_scale_decision_to_first_request_ms %.0f (boot %.0f, hook %s, "
                       "members added at %.0f)" % (what, (first - t_dec) * 1000, BOOT_S * 1000,
                                                   run.get("duration_ms"),
                                                   (t_add - t_dec) * 1000))


def command_case(what, kind, group, hook_target, hook_args, lister, list_args, want_cli,
                 start, stop, names, **kw):
    d = tmp_path("a06-" + what)
    os.makedirs(d)
    cloud = fakecloud.FakeCloud(kind, os.path.join(d, "cloud"), group, delay=BOOT_S,
                                start=start, stop=stop, initial=1, **kw)
    try:
        hook = scale_hook(cloud, hook_target)
        cmd = wrapper(os.path.join(d, lister), cloud.bin, lister)
        fe = free_port()
        disc = ('discover = { command = [ %s ]; interval = "300ms"; timeout = "5s"; '
                'maxconn = 1; };'
                % ", ".join('"%s"' % a for a in [cmd] + list_args))
        cfg = proxy_config(fe, [], workers=2, timeouts={"queue": "10s"},
                           extra_pool=" ".join([HEALTH, disc,
                                                autoscale([hook.path] + hook_args)]))
        loop(what, fe, cfg, cloud, hook, hook_args, want_cli, names)
    finally:
        cloud.close()


def case_aws():
    port = free_port()
    start, stop = ip_backends("aws", port)
    command_case("aws", "aws", "web-asg", "aws-asg", ["web-asg", "eu-west-1"],
                 "aws-asg-members", ["web-asg", str(port), "eu-west-1"],
                 ["aws", "autoscaling", "set-desired-capacity", "--auto-scaling-group-name",
                  "web-asg", "--desired-capacity", "3", "--region", "eu-west-1"],
                 start, stop, {"aws-1", "aws-2", "aws-3"}, region="eu-west-1")


def case_gcloud():
    port = free_port()
    start, stop = ip_backends("gce", port)
    command_case("gcloud", "gcloud", "web-mig", "gcloud-mig", ["web-mig", "us-central1-a"],
                 "gcloud-mig-members", ["web-mig", "us-central1-a", str(port)],
                 ["gcloud", "compute", "instance-groups", "managed", "resize", "web-mig",
                  "--size=3", "--zone=us-central1-a", "--quiet"],
                 start, stop, {"gce-1", "gce-2", "gce-3"}, zone="us-central1-a")


def case_docker():
    d = tmp_path("a06-compose")
    os.makedirs(d)
    compose = os.path.join(d, "compose.yaml")
    with open(compose, "w") as f:
        f.write("services:\n  web:\n    image: app-web\n"
                "    ports: [ \"127.0.0.1:32768-32800:8080\" ]\n")

    def start(n):
        b = Backend("ctr-%d" % n, delay_ms=DELAY_MS)
        return {"ip": "127.0.0.1", "port": b.port, "handle": b}

    def stop(inst, b):
        if b is not None:
            b.stop()
    command_case("docker", "docker", "web", "docker-compose-scale", ["web", compose],
                 "docker-compose-members", ["web", "8080", compose],
                 ["docker", "compose", "-f", compose, "up", "-d", "--no-recreate", "--scale",
                  "web=3", "web"], start, stop, {"ctr-1", "ctr-2", "ctr-3"})


def case_kubectl():
    srv_name = "_http._tcp.web.prod.test"
    port = free_port()
    start, stop = ip_backends("pod", port)
    dns = DnsServer(hosts={})

    def on_change(ready):
        # the endpoints of the headless service: an A record per ready pod,
        # an SRV record per pod on the named port
        hosts, srv = {}, []
        for addr in ready:
            ip = addr.rsplit(":", 1)[0]
            name = "%s.web.prod.test" % ip.replace(".", "-")
            hosts[name] = [ip]
            srv.append((srv_name, name, port, 0, 1))
        dns.set_hosts(hosts)
        dns.set_srv(srv)

    d = tmp_path("a06-kubectl")
    os.makedirs(d)
    cloud = fakecloud.FakeCloud("kubectl", os.path.join(d, "cloud"), "web", delay=BOOT_S,
                                start=start, stop=stop, on_change=on_change, namespace="prod",
                                initial=1)
    try:
        hook = scale_hook(cloud, "kubectl-scale")
        fe = free_port()
        top = 'resolvers = [ "%s" ]; resolve_interval = "300ms";' % dns.addr
        disc = ('discover = { dns_srv = "%s"; interval = "300ms"; maxconn = 1; };'
                % srv_name)
        cfg = proxy_config(fe, [], workers=2, timeouts={"queue": "10s"}, extra_top=top,
                           extra_pool=" ".join([HEALTH, disc,
                                                autoscale([hook.path, "web", "prod"])]))
        loop("kubectl", fe, cfg, cloud, hook, ["web", "prod"],
             ["kubectl", "scale", "deployment/web", "--replicas=3", "-n", "prod"],
             {"pod-1", "pod-2", "pod-3"})
    finally:
        cloud.close()
        dns.stop()


def main():
    case_aws()
    case_gcloud()
    case_kubectl()
    case_docker()
    for f in FIGURES:
        print(f)


run(main)
