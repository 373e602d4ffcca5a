#!/usr/bin/python3
"""o07: adding and removing backends at run time (issue 15).

(1) admin.deny_backends, default: POST pools/app/backends with an address in
    link-local or a cloud metadata address (169.254.169.254, 169.254.1.1,
    [fe80::1], [::ffff:169.254.169.254] (v4-mapped), [fd00:ec2::254],
    100.100.100.200) -> 403 JSON naming the range; nothing is added; a
    loopback backend is still added (201). A scale hook's output gets the
    same check: a scale from zero whose hook prints a metadata address and a
    real backend adds only the real one (it serves the held request), and
    the log names the refused one.
(2) deny_backends = [ "127.0.0.0/8" ]: a config-file backend on 127.0.0.1
    still serves (the file is the operator's word), an admin add of
    127.0.0.1:P is 403, and 169.254.169.254 is no longer refused.
    deny_backends = []: 169.254.169.254 is accepted.
(3) The last backend: DELETE of a pool's only serving backend -> 409 JSON
    that names ?force=1, and the backend still serves; ?force=bogus -> 400;
    ?force=1 -> 202, journaled (backend_removing with "last": true). With two
    backends the first DELETE needs no force, the second does. surgectl
    remove without --force fails (exit 1), with --force succeeds.
(4) DELETE then an immediate re-add (a slow request keeps the backend
    draining): the POST answers 200 (before: 409), the backend stays with the
    new weight and maxconn, is no longer "removing", is journaled
    (backend_added, removal_cancelled), survives the reaper's ticks and
    serves requests again; the request in flight ends 200.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Backend, HookScript, Pending, Proxy, admin_events,  # noqa: E402
                     admin_post, admin_request, backend_info, burst, check, check_eq,
                     find_events, free_port, http_get, log, pool_info, proxy_config, run,
                     tmp_path, wait_for, wait_journal)

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SG_CTL = os.environ.get("SG_CTL") or os.path.join(_REPO, "build", "surgectl")


def is_json_error(body):
    return isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]


def addrs(proxy, pool="app"):
    return sorted(b["address"] for b in pool_info(proxy, pool)["backends"])


def case_deny_default():
    fe = free_port()
    with Backend("b1") as b1, Backend("b2") as b2:
        with Proxy(proxy_config(fe, [b1]), listen_port=fe) as px:
            for addr, rng in (("169.254.169.254:80", "169.254.0.0/16"),
                              ("169.254.1.1:8080", "169.254.0.0/16"),
                              ("[fe80::1]:80", "fe80::/10"),
                              ("[::ffff:169.254.169.254]:80", "169.254.0.0/16"),
                              ("[fd00:ec2::254]:80", "fd00:ec2::254/128"),
                              ("100.100.100.200:80", "100.100.100.200/32")):
                st, body = admin_post(px, "pools/app/backends", {"address": addr})
                check(st == 403 and is_json_error(body) and rng in body["error"],
                      "add %s: want 403 naming %s, got %s %r" % (addr, rng, st, body))
            check_eq(addrs(px), [b1.addr], "backends after the refused adds")
            st, body = admin_post(px, "pools/app/backends", {"address": b2.addr})
            check_eq(st, 201, "add a loopback backend: status (%r)" % (body,))
            check_eq(addrs(px), sorted([b1.addr, b2.addr]), "backends after the loopback add")


def case_deny_hook():
    """Scale from zero: the hook prints a metadata address and a real one."""
    fe = free_port()
    with Backend("real") as real:
        hook = HookScript("deny", 'printf \'{"add":[{"address":"169.254.169.254:80"},'
                                  '{"address":"%s"}]}\\n\'\n' % real.addr)
        auto = ('autoscale = { min = 0; max = 2; step = 2; hook_timeout = "10s"; '
                'scale_up_cooldown = "60s"; scale_down_window = "300s"; hold_timeout = "8s"; '
                'rules = ( { metric = "queue_depth"; above = 3.0; for = "2s"; } ); '
                'scale_up_hook = [ "%s" ]; };' % hook.path)
        cfg = proxy_config(fe, [], timeouts={"queue": "10s"}, extra_pool=auto)
        with Proxy(cfg, listen_port=fe) as px:
            ps = burst(fe, ["/held"], timeout=12)
            check_eq([p.status for p in ps], [200], "held request status (%s)" % ps[0].error)
            check_eq(ps[0].backend, "real", "held request served by")
            wait_journal(px, "backend_added", 3, pool="app", source="hook")
            check_eq(addrs(px), [real.addr], "backends after the hook")
            check_eq(len(hook.runs()), 1, "hook runs")
            wait_for(lambda: "169.254.0.0/16" in px.stderr_text(), timeout=3,
                     what="a log line naming the refused range")
            line = [ln for ln in px.stderr_text().splitlines() if "169.254.169.254" in ln]
            log("log: %s" % line)
            check(any("hook" in ln and "deny_backends" in ln for ln in line),
                  "the refusal is logged as a hook output problem: %r" % line)


def case_deny_configured():
    fe = free_port()
    with Backend("b1") as b1, Backend("b2") as b2:
        admin = 'listen = "unix:%s"; deny_backends = [ "127.0.0.0/8" ];' % tmp_path("o07-a.sock")
        with Proxy(proxy_config(fe, [b1], admin=admin), listen_port=fe) as px:
            st, _, body = http_get(fe, "/")
            check_eq(st, 200, "request to the config-file backend on 127.0.0.1")
            st, body = admin_post(px, "pools/app/backends", {"address": b2.addr})
            check(st == 403 and is_json_error(body) and "127.0.0.0/8" in body["error"],
                  "add %s with deny 127.0.0.0/8: got %s %r" % (b2.addr, st, body))
            st, body = admin_post(px, "pools/app/backends", {"address": "169.254.169.254:80"})
            check_eq(st, 201, "169.254.169.254 with a deny list without it (%r)" % (body,))
    fe = free_port()
    with Backend("b1") as b1:
        admin = 'listen = "unix:%s"; deny_backends = [ ];' % tmp_path("o07-b.sock")
        with Proxy(proxy_config(fe, [b1], admin=admin), listen_port=fe) as px:
            st, body = admin_post(px, "pools/app/backends", {"address": "169.254.169.254:80"})
            check_eq(st, 201, "169.254.169.254 with deny_backends = [] (%r)" % (body,))


def delete(px, addr, query=""):
    return admin_request(px, "DELETE", "pools/app/backends/%s%s" % (addr, query))


def case_last_backend():
    fe = free_port()
    with Backend("only") as only:
        with Proxy(proxy_config(fe, [only]), listen_port=fe) as px:
            st, body = delete(px, only.addr)
            check(st == 409 and is_json_error(body) and "force=1" in body["error"],
                  "DELETE the last backend: want 409 naming ?force=1, got %s %r" % (st, body))
            check_eq(backend_info(px, only.addr)["state"], "up", "state after the refused DELETE")
            st, _, _ = http_get(fe, "/")
            check_eq(st, 200, "request after the refused DELETE")
            st, body = delete(px, only.addr, "?force=bogus")
            check(st == 400 and is_json_error(body), "?force=bogus: %s %r" % (st, body))
            # surgectl without --force: refused; with it: done
            env = dict(os.environ, SURGEGATE_ADMIN="unix:" + px.admin_path)
            p = subprocess.run([SG_CTL, "remove", "app", only.addr], env=env, timeout=10,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            log("surgectl remove: exit %d: %s" % (p.returncode, p.stderr.decode().strip()))
            check_eq(p.returncode, 1, "surgectl remove of the last backend without --force")
            check(b"force" in p.stderr, "surgectl says why: %r" % p.stderr)
            p = subprocess.run([SG_CTL, "remove", "--force", "app", only.addr], env=env,
                               timeout=10, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            check_eq(p.returncode, 0, "surgectl remove --force (%r)" % p.stderr)
            ev = wait_journal(px, "backend_removing", 3, pool="app", backend=only.addr)
            check(ev[-1].get("last") is True and ev[-1].get("source") == "admin",
                  "backend_removing of the last backend: %r" % ev[-1])
            wait_for(lambda: addrs(px) == [], timeout=5, what="the last backend removed")

    fe = free_port()
    with Backend("b1") as b1, Backend("b2") as b2:
        with Proxy(proxy_config(fe, [b1, b2]), listen_port=fe) as px:
            st, body = delete(px, b1.addr)
            check_eq(st, 202, "DELETE one of two backends (%r)" % (body,))
            st, body = delete(px, b2.addr)
            check(st == 409 and is_json_error(body), "DELETE the other one: want 409, got %s %r"
                  % (st, body))
            st, body = delete(px, b2.addr, "?force=1")
            check_eq(st, 202, "DELETE the other one with ?force=1 (%r)" % (body,))


def case_readd():
    fe = free_port()
    with Backend("b1") as b1, Backend("b2") as b2:
        with Proxy(proxy_config(fe, [b1, b2]), listen_port=fe) as px:
            # a slow request on b2 keeps it draining after the DELETE
            slow = []
            for i in range(4):  # round robin: two of them on b2
                slow.append(Pending(fe, "/slow?delay=2500&i=%d" % i, timeout=10))
                time.sleep(0.05)
            wait_for(lambda: backend_info(px, b2.addr)["inflight"] >= 1, timeout=3,
                     what="a slow request in flight on b2")
            st, body = delete(px, b2.addr)
            check_eq(st, 202, "DELETE b2 (%r)" % (body,))
            check_eq(backend_info(px, b2.addr).get("removing"), True, "b2 removing after DELETE")
            st, body = admin_post(px, "pools/app/backends",
                                  {"address": b2.addr, "weight": 3, "maxconn": 7})
            check_eq(st, 200, "POST b2 again while it drains (%r)" % (body,))
            if isinstance(body, dict):
                check((body.get("removing"), body.get("weight"), body.get("maxconn"),
                       body.get("state")) == (False, 3, 7, "up"),
                      "re-added b2: %r" % {k: body.get(k) for k in
                                            ("removing", "weight", "maxconn", "state")})
            ev = find_events(admin_events(px), "backend_added", pool="app", backend=b2.addr)
            check(len(ev) == 1 and ev[0].get("removal_cancelled") is True
                  and ev[0].get("source") == "admin", "backend_added events of b2: %r" % ev)
            # in flight requests end well; the reaper's ticks leave b2 alone
            for p in slow:
                p.result(10)
                check(p.status == 200, "slow request %s: %s (%s)" % (p.path, p.status, p.error))
            time.sleep(2.2)
            check_eq(addrs(px), sorted([b1.addr, b2.addr]), "backends 2 s after the re-add")
            info = backend_info(px, b2.addr)
            check((info["state"], info.get("removing"), info["weight"]) == ("up", False, 3),
                  "b2 after the ticks: %r" % {k: info.get(k) for k in
                                              ("state", "removing", "weight")})
            seen = set()
            for i in range(12):
                st, h, _ = http_get(fe, "/after?i=%d" % i)
                check_eq(st, 200, "request after the re-add")
                seen.add(h.get("X-Backend"))
            check("b2" in seen, "b2 serves again after the re-add (seen %r)" % seen)
            # a second POST now is the ordinary "already there"
            st, body = admin_post(px, "pools/app/backends", {"address": b2.addr})
            check(st == 409 and is_json_error(body), "POST b2 a third time: %s %r" % (st, body))


def main():
    case_deny_default()
    case_deny_hook()
    case_deny_configured()
    case_last_backend()
    case_readd()


run(main)
