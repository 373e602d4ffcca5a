"""d01: a backend named by a host name, resolved through a real DNS server.

dnsmasq on 127.0.0.1 (dnsserver.py) answers app.test with A records, TTL 0;
the pool's only backend is `address = "app.test:P"`, resolvers point at
dnsmasq, resolve_interval 300ms, health checks every 200 ms.

(1) Both A records (127.0.0.2, 127.0.0.3) become members (source
    "discovery" in backend_added events), take traffic, and show in the
    admin API and on /metrics.
(2) The record 127.0.0.3 is replaced by 127.0.0.4 while a slow request is
    in flight on .3: .4 takes traffic (the time from the change to its first
    request is printed), .3 drains (backend_removing by discovery) and the
    slow request still completes with 200.
(3) dnsmasq stops: a discovery_failed event, and the last set (.2 and .4)
    keeps serving.
(4) A second proxy starts while no name server answers: it starts, its pool
    is empty (503), and fills once dnsmasq is back.
"""
import re
import time

from harness import *
from dnsserver import DnsServer, HostBackend, first_request_after, served_by


def config(fe, port, dns, queue="5s"):
    health = cfg_group("health", type="http", path="/healthz", interval="200ms",
                       timeout="150ms", rise=1, fall=2)
    return proxy_config(fe, [{"address": "app.test:%d" % port, "maxconn": 50}], workers=2,
                        timeouts={"queue": queue}, extra_pool=health,
                        extra_top='resolvers = [ "%s" ]; resolve_interval = "300ms";' % dns.addr)


def addrs(px):
    return sorted(b["address"] for b in pool_info(px)["backends"] if not b.get("removing"))


def main():
    p = free_port()
    b2 = HostBackend("b2", "127.0.0.2", p)
    b3 = HostBackend("b3", "127.0.0.3", p)
    b4 = HostBackend("b4", "127.0.0.4", p)
    dns = DnsServer(hosts={"app.test": ["127.0.0.2", "127.0.0.3"]})
    fe = free_port()
    with Proxy(config(fe, p, dns), listen_port=fe) as px:
        # (1)
        wait_for(lambda: addrs(px) == sorted([b2.addr, b3.addr]), timeout=5,
                 what="members .2 and .3")
        wait_backend(px, b2.addr, "up", 5)
        wait_backend(px, b3.addr, "up", 5)
        check_eq(served_by(fe), {"b2", "b3"}, "backends serving")
        ev = find_events(admin_events(px), "backend_added", pool="app", source="discovery")
        check_eq(sorted(e["backend"] for e in ev), sorted([b2.addr, b3.addr]),
                 "backend_added by discovery")
        check_eq(backend_info(px, b2.addr).get("maxconn"), 50, "member maxconn (from the entry)")
        st, metrics = admin_request(px, "GET", "/metrics")
        check('surgegate_backend_up{pool="app",backend="%s"} 1' % b3.addr in metrics,
              "member on /metrics")
        check('surgegate_discovery_members{pool="app",source="dns",name="app.test:%d"} 2' % p
              in metrics, "surgegate_discovery_members on /metrics")
        src = pool_info(px)["discover"]
        check(len(src) == 1 and src[0]["source"] == "dns" and src[0]["members"] == 2
              and not src[0]["failing"] and src[0]["lookups_ok"] >= 1,
              "the pool's discover state: %r" % src)
        upd = find_events(admin_events(px), "discovery_update", pool="app", source="dns")
        check(upd and upd[0]["members"] == 2, "discovery_update event: %r" % upd)

        # (2) a slow request pinned to b3 by trying until one lands there
        slow = None
        for _ in range(6):
            pend = Pending(fe, "/slow?delay=1500")
            time.sleep(0.1)
            if backend_info(px, b3.addr).get("inflight", 0) > 0:
                slow = pend
                break
            pend.result()
        check(slow is not None, "a slow request in flight on b3")
        t0 = time.monotonic()
        dns.set_hosts({"app.test": ["127.0.0.2", "127.0.0.4"]})
        dt = first_request_after(fe, "b4", t0)
        log("DNS A record change -> first request on the new member: %.0f ms" % (dt * 1000))
        print("FIGURE dns_a_change_to_first_request_ms %.0f" % (dt * 1000))
        wait_journal(px, "backend_removing", backend=b3.addr, source="discovery", timeout=3)
        status, headers, body, secs = slow.result()
        check_eq(status, 200, "slow request on the drained member")
        check_eq(headers.get("X-Backend"), "b3", "slow request served by b3")
        wait_journal(px, "backend_removed", backend=b3.addr, timeout=5)
        check_eq(addrs(px), sorted([b2.addr, b4.addr]), "members after the change")
        check("b3" not in served_by(fe), "b3 takes no new request")

        # (3) DNS down: the last set stays
        dns.stop()
        wait_journal(px, "discovery_failed", pool="app", source="dns", timeout=8)
        time.sleep(1.0)
        check_eq(addrs(px), sorted([b2.addr, b4.addr]), "members while DNS is down")
        check_eq(served_by(fe), {"b2", "b4"}, "backends serving while DNS is down")
        src = pool_info(px)["discover"][0]
        check(src["failing"] and "DNS" in src.get("error", "") and src["members"] == 2,
              "discover state while DNS is down: %r" % src)
        st, metrics = admin_request(px, "GET", "/metrics")
        check(re.search(r'surgegate_discovery_lookups_total\{pool="app",source="dns",'
                        r'name="app.test:%d",result="failed"\} [1-9]' % p, metrics),
              "failed lookups counted on /metrics")
        log("discovery_failed: %s" % find_events(admin_events(px), "discovery_failed")[0])

    # (4) starting with no name server answering
    fe2 = free_port()
    with Proxy(config(fe2, p, dns, queue="500ms"), listen_port=fe2) as px2:
        time.sleep(1.0)
        check_eq(addrs(px2), [], "members with no name server")
        st, _, _ = http_get(fe2, "/empty")
        check_eq(st, 503, "a request to the empty pool")
        wait_journal(px2, "discovery_failed", pool="app", timeout=5)
        dns.start()
        wait_for(lambda: addrs(px2) == sorted([b2.addr, b4.addr]), timeout=8,
                 what="members once DNS answers")
        wait_backend(px2, b2.addr, "up", 5)
        st, _, _ = http_get(fe2, "/full")
        check_eq(st, 200, "a request once the pool has members")
    dns.stop()
    for b in (b2, b3, b4):
        b.stop()


run(main)
