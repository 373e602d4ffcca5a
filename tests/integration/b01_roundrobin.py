"""b01: weighted round-robin across 3 backends (weights 1, 1, 2).

2000 requests on one keep-alive client connection, then 200 more on fresh
connections; each backend's share must be within 5% of its weight's share,
and every response must carry X-Backend naming the backend that wrote the
body."""
from harness import *

N = 2000


def main():
    with Backend("b1") as b1, Backend("b2") as b2, Backend("b3") as b3:
        fe = free_port()
        cfg = proxy_config(fe, [(b1.addr, 1), (b2.addr, 1), (b3.addr, 2)])
        with Proxy(cfg, listen_port=fe):
            counts = {"b1": 0, "b2": 0, "b3": 0}
            with KeepAlive(fe) as c:
                for i in range(N):
                    status, h, body = c.get("/rr/%d" % i)
                    check_eq(status, 200, "status of request %d" % i)
                    name = h.get("X-Backend")
                    check(name in counts, "request %d: X-Backend %r" % (i, name))
                    check_eq(body, (name + "\n").encode(), "request %d body vs X-Backend" % i)
                    counts[name] += 1
            log("keep-alive client: %s" % counts)
            want = {"b1": N / 4, "b2": N / 4, "b3": N / 2}
            for k in counts:
                check(abs(counts[k] - want[k]) <= 0.05 * want[k],
                      "%s got %d of %d requests, want %d +- 5%%" % (k, counts[k], N, want[k]))

            # The balancer is per request, not per client connection.
            counts2 = {"b1": 0, "b2": 0, "b3": 0}
            for i in range(200):
                status, h, body = http_get(fe, "/fresh/%d" % i)
                check_eq(status, 200, "fresh-connection request %d" % i)
                counts2[h.get("X-Backend")] += 1
            log("fresh connections: %s" % counts2)
            for k, w in (("b1", 50), ("b2", 50), ("b3", 100)):
                check(abs(counts2[k] - w) <= 0.1 * w + 2,
                      "fresh connections: %s got %d of 200, want about %d" % (k, counts2[k], w))

            # The backends saw exactly the requests sent: no duplicates.
            total = sum(len(b.log_lines()) for b in (b1, b2, b3))
            check_eq(total, N + 200, "requests logged by the backends")


if __name__ == "__main__":
    run(main)
