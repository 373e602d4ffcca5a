"""d05: `surgegate -t` on the discovery keys, and backend addresses compared
canonically (issue 17 item 6).

-t: every problem on its own line (FILE:LINE: error): a discover group with
two sources and one with none, a command that does not exist, one that is
not executable, one that is a directory, a relative command and file, an
interval under 100ms, a bad SRV name, a bad host name, a bad resolver,
`localhost:P` next to `127.0.0.1:P` and `App.Test:80` next to `app.test:80`
in one pool. A good config with host names and each kind of source passes.

Admin API: with 127.0.0.1:P in the pool, POST of localhost:P and of
[::ffff:127.0.0.1]:P is refused with 409 naming the backend already there;
DELETE of localhost:P removes 127.0.0.1:P.
"""
import os
import subprocess

from harness import *


def check_t(text):
    conf = tmp_path("d05-%d.conf" % abs(hash(text)))
    with open(conf, "w") as f:
        f.write(text)
    p = subprocess.run([SG_BIN, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    for ln in out.splitlines():
        log("  " + ln)
    return conf, p.returncode, out


def main():
    d = tmp_path("d05")
    os.makedirs(d)
    noexec = os.path.join(d, "noexec")
    with open(noexec, "w") as f:
        f.write("#!/bin/sh\necho []\n")
    os.chmod(noexec, 0o644)
    good = os.path.join(d, "good")
    with open(good, "w") as f:
        f.write("#!/bin/sh\necho []\n")
    os.chmod(good, 0o755)
    lines = [
        'frontends = ( { name = "web"; listen = "127.0.0.1:18080"; default_pool = "p1"; } );',  # 1
        'resolvers = [ "127.0.0.1:5353", "ns.example" ];',                                     # 2
        'pools = (',                                                                            # 3
        ' { name = "p1"; backends = ( { address = "127.0.0.1:9001"; } );',                      # 4
        '   discover = { dns_srv = "_http._tcp.a.test"; file = "/tmp/x"; }; },',                # 5
        ' { name = "p2"; discover = { interval = "5s"; }; },',                                  # 6
        ' { name = "p3"; discover = { command = [ "/nonexistent/list" ]; }; },',                # 7
        ' { name = "p4"; discover = { command = [ "%s" ]; }; },' % noexec,                      # 8
        ' { name = "p5"; discover = { command = [ "%s" ]; }; },' % d,                           # 9
        ' { name = "p6"; discover = { command = [ "list-members" ]; }; },',                     # 10
        ' { name = "p7"; discover = { file = "members.txt"; }; },',                             # 11
        ' { name = "p8"; discover = { command = [ "%s" ]; interval = "0s"; }; },' % good,       # 12
        ' { name = "p9"; discover = { dns_srv = "_http._tcp..test"; }; },',                     # 13
        ' { name = "p10"; backends = ( { address = "bad_host!:80"; } ); },',                    # 14
        ' { name = "p11"; backends = ( { address = "localhost:9002"; },',                       # 15
        '                              { address = "127.0.0.1:9002"; } ); },',                  # 16
        ' { name = "p12"; backends = ( { address = "app.test:80"; },',                          # 17
        '                              { address = "App.Test.:80"; } ); }',                     # 18
        ');',
    ]
    conf, rc, out = check_t("\n".join(lines) + "\n")
    check_eq(rc, 1, "exit status of -t")
    want = {2: "numeric IP address", 5: "exactly one source", 6: "exactly one source",
            7: "No such file", 8: "not executable", 9: "not a regular file",
            10: "absolute path", 11: "absolute path", 12: "interval", 13: "empty label",
            14: "bad host name", 16: "duplicate backend address", 18: "duplicate backend address"}
    for n, what in want.items():
        check(any(ln.startswith("%s:%d: error: " % (conf, n)) and what in ln
                  for ln in out.splitlines()),
              "an error on line %d mentioning %r" % (n, what))

    ok = "\n".join([
        'frontends = ( { name = "web"; listen = "127.0.0.1:18080"; default_pool = "p1"; } );',
        'resolvers = [ "127.0.0.1:5353", "::1" ]; resolve_interval = "2s";',
        'pools = ( { name = "p1"; backends = ( { address = "app.internal:8080"; maxconn = 10; } ); },',
        ' { name = "p2"; discover = { dns_srv = "_http._tcp.app.service.consul"; interval = "2s"; }; },',
        ' { name = "p3"; discover = { file = "/nonexistent/members.txt"; }; },',
        ' { name = "p4"; discover = { command = [ "%s", "web" ]; interval = "10s"; timeout = "5s";'
        ' weight = 2; maxconn = 100; max_members = 200; }; } );' % good,
    ]) + "\n"
    conf, rc, out = check_t(ok)
    check_eq(rc, 0, "exit status of -t on a good config")
    check(": warning: " in out and "members.txt" in out, "a warning for the missing file")
    check("sum of backend maxconn" not in out, "no capacity warning on discovered pools")

    b1 = Backend("b1")
    fe = free_port()
    with Proxy(proxy_config(fe, [b1.addr]), listen_port=fe) as px:
        for alias in ("localhost:%d" % b1.port, "[::ffff:127.0.0.1]:%d" % b1.port):
            st, body = admin_post(px, "pools/app/backends", {"address": alias})
            check_eq(st, 409, "POST of %s next to %s" % (alias, b1.addr))
            check(b1.addr in body.get("error", ""), "409 names the backend: %r" % body)
        check_eq([b["address"] for b in pool_info(px)["backends"]], [b1.addr], "backends")
        b2 = Backend("b2")
        st, _ = admin_post(px, "pools/app/backends", {"address": b2.addr})
        check(st in (200, 201), "POST of a new backend: %s" % st)
        st, body = admin_request(px, "DELETE", "pools/app/backends/localhost:%d" % b2.port)
        check(st in (200, 202, 204), "DELETE by another name: %s %r" % (st, body))
        wait_journal(px, "backend_removing", backend=b2.addr, timeout=3)


run(main)
