"""b02: upstream keep-alive reuse and stale pooled connections.

1. 500 sequential requests (one keep-alive client connection), then 100 on
   fresh client connections: the backend sees them all on a handful of
   connections (<= 10).
2. Backends that end connections after every response - announced
   (--close-after 1, ?close=1) or silently (--drop-after 1, and an idle
   timeout shorter than the proxy's upstream_idle) - still give 500/500
   (resp. 20/20) successes: a pooled connection the backend closed is
   retried transparently."""
import time

from harness import *

N = 500


def run_sequential(fe, n, path, what):
    fails = []
    with KeepAlive(fe) as c:
        for i in range(n):
            try:
                status, h, body = c.get(path % i if "%d" in path else path)
            except Exception as e:  # the client connection died
                fails.append((i, repr(e)))
                c.close()
                continue
            if status != 200:
                fails.append((i, status, body[:200]))
    check(not fails, "%s: %d of %d requests failed, first: %r" % (what, len(fails), n, fails[:3]))


def main():
    # 1. reuse
    with Backend("b1") as b1:
        fe = free_port()
        with Proxy(proxy_config(fe, [b1.addr]), listen_port=fe):
            run_sequential(fe, N, "/ka/%d", "keep-alive client")
            for i in range(100):
                status, _, _ = http_get(fe, "/fresh/%d" % i)
                check_eq(status, 200, "fresh-connection request %d" % i)
            st = b1.stats()
            log("backend stats after %d requests: %s" % (N + 100, st))
            check_eq(st["requests"], N + 100, "requests seen by the backend")
            check(st["connections"] <= 10,
                  "upstream keep-alive not reused: %d backend connections for %d requests"
                  % (st["connections"], N + 100))

    # 2a. backend announces Connection: close on every response
    with Backend("close1", close_after=1) as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe):
            run_sequential(fe, N, "/c/%d", "--close-after 1 backend")
            check_eq(b.stats()["requests"], N, "requests seen by --close-after 1 backend")

    # 2b. ?close=1 per request
    with Backend("qclose") as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe):
            run_sequential(fe, N, "/q/%d?close=1", "?close=1")

    # 2c. backend drops every connection after one response without saying so:
    # the pooled connection is stale by the time (or just as) it is reused.
    with Backend("drop1", drop_after=1) as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe):
            run_sequential(fe, N, "/d/%d", "--drop-after 1 backend")

    # 2d. backend's idle timeout (150ms) shorter than the proxy's upstream_idle
    with Backend("idle", idle_timeout_ms=150) as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe):
            with KeepAlive(fe) as c:
                for i in range(20):
                    status, _, body = c.get("/idle/%d" % i)
                    check_eq(status, 200, "request %d after the backend idled out "
                             "its pooled connection (body %r)" % (i, body[:200]))
                    time.sleep(0.2 if i % 2 == 0 else 0.14)


if __name__ == "__main__":
    run(main)
