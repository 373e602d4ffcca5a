"""d02: a pool's members from DNS SRV records (discover.dns_srv).

dnsmasq (dnsserver.py) holds _http._tcp.app.test -> node1.test:P1 (weight
1) and node1.test:P2 (weight 3), node1.test -> 127.0.0.1; the pool has no
backends of its own and `discover = { dns_srv = "_http._tcp.app.test";
interval = "300ms"; maxconn = 20; }`.

(1) Both targets become members with the SRV weights (1, 3), the discover
    group's maxconn (20), and serve.
(2) The SRV set becomes P1 (weight 2) and P3: P3 takes traffic (time from the
    change to its first request printed), P2 drains and is removed, P1's
    weight follows (2).
(3) dnsmasq stops: discovery_failed, the last set keeps serving.
(4) dnsmasq answers again without the SRV name (NXDOMAIN): an answer, not a
    failure: the members drain and the pool is empty (503).
"""
import time

from harness import *
from dnsserver import DnsServer, first_request_after, served_by

SRV = "_http._tcp.app.test"


def config(fe, dns):
    health = cfg_group("health", type="http", path="/healthz", interval="200ms",
                       timeout="150ms", rise=1, fall=2)
    disc = 'discover = { dns_srv = "%s"; interval = "300ms"; maxconn = 20; };' % SRV
    return proxy_config(fe, [], workers=2, timeouts={"queue": "500ms"},
                        extra_pool=health + " " + disc,
                        extra_top='resolvers = [ "%s" ];' % dns.addr)


def members(px):
    return {b["address"]: b for b in pool_info(px)["backends"] if not b.get("removing")}


def main():
    b1, b2, b3 = Backend("b1"), Backend("b2"), Backend("b3")
    hosts = {"node1.test": ["127.0.0.1"]}
    dns = DnsServer(hosts=hosts, srv=[(SRV, "node1.test", b1.port, 0, 1),
                                      (SRV, "node1.test", b2.port, 0, 3)])
    fe = free_port()
    with Proxy(config(fe, dns), listen_port=fe) as px:
        # (1)
        wait_for(lambda: sorted(members(px)) == sorted([b1.addr, b2.addr]), timeout=5,
                 what="SRV members")
        wait_backend(px, b1.addr, "up", 5)
        wait_backend(px, b2.addr, "up", 5)
        m = members(px)
        check_eq((m[b1.addr]["weight"], m[b2.addr]["weight"]), (1, 3), "weights from SRV")
        check_eq((m[b1.addr]["maxconn"], m[b2.addr]["maxconn"]), (20, 20), "maxconn (discover)")
        check_eq(served_by(fe, 16), {"b1", "b2"}, "backends serving")

        # (2)
        # dnsmasq restarts to change SRV records (no name server for a
        # moment): timed from the start of the restart and from the moment
        # the new one answers (set_srv returns)
        t_change = time.monotonic()
        dns.set_srv([(SRV, "node1.test", b1.port, 0, 2), (SRV, "node1.test", b3.port, 0, 1)])
        t0 = time.monotonic()
        dt = first_request_after(fe, "b3", t0)
        log("DNS SRV change -> first request on the new member: %.0f ms from the restart of "
            "dnsmasq, %.0f ms from its first answer" % ((dt + t0 - t_change) * 1000, dt * 1000))
        print("FIGURE dns_srv_restart_to_first_request_ms %.0f" % ((dt + t0 - t_change) * 1000))
        print("FIGURE dns_srv_change_to_first_request_ms %.0f" % (dt * 1000))
        wait_journal(px, "backend_removing", backend=b2.addr, source="discovery", timeout=3)
        wait_journal(px, "backend_removed", backend=b2.addr, timeout=5)
        wait_for(lambda: members(px).get(b1.addr, {}).get("weight") == 2, timeout=3,
                 what="b1's weight following SRV")
        check_eq(sorted(members(px)), sorted([b1.addr, b3.addr]), "members after the change")
        check_eq(served_by(fe, 16), {"b1", "b3"}, "backends serving after the change")

        # (3)
        dns.stop()
        wait_journal(px, "discovery_failed", pool="app", source="dns_srv", timeout=8)
        check_eq(sorted(members(px)), sorted([b1.addr, b3.addr]), "members while DNS is down")
        check_eq(served_by(fe, 8), {"b1", "b3"}, "serving while DNS is down")

        # (4)
        dns.srv = []
        dns.start()
        wait_for(lambda: members(px) == {}, timeout=8, what="members drained on NXDOMAIN")
        upd = find_events(admin_events(px), "discovery_update", source="dns_srv")
        check(upd[-1]["members"] == 0 and upd[-1].get("recovered"), "last update: %r" % upd[-1])
        st, _, _ = http_get(fe, "/none")
        check_eq(st, 503, "request to the emptied pool")
    dns.stop()


run(main)
