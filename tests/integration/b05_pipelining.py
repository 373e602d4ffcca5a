"""b05: 10 pipelined requests in one send on one connection get 10 responses
in request order, although the early ones are the slowest and the pool has
two backends (so they may be served concurrently)."""
from harness import *


def main():
    with Backend("b1") as b1, Backend("b2") as b2:
        fe = free_port()
        with Proxy(proxy_config(fe, [b1.addr, b2.addr]), listen_port=fe):
            reqs = []
            for i in range(10):
                delay = (10 - i) * 30
                conn = b"Connection: close\r\n" if i == 9 else b""
                if i % 3 == 0:
                    body = b"body-%d" % i
                    reqs.append(b"POST /echo?delay=%d HTTP/1.1\r\nHost: test\r\n%s"
                                b"Content-Length: %d\r\n\r\n%s" % (0, conn, len(body), body))
                elif i % 3 == 1:
                    reqs.append(b"GET /headers?delay=%d&seq=%d HTTP/1.1\r\nHost: test\r\n"
                                b"X-Seq: %d\r\n%s\r\n" % (delay, i, i, conn))
                else:
                    reqs.append(b"GET /plain/%d?delay=%d HTTP/1.1\r\nHost: test\r\n%s\r\n"
                                % (i, delay, conn))
            data, how = raw_exchange_full(fe, b"".join(reqs), timeout=10)
            res, rest = parse_responses(data)
            check_eq(len(res), 10, "responses received (connection end: %s; raw tail %r)"
                     % (how, data[-300:]))
            check_eq(rest, b"", "bytes after the 10th response")
            for i, (status, h, body) in enumerate(res):
                check_eq(status, 200, "response %d status" % i)
                if i % 3 == 0:
                    check_eq(body, b"body-%d" % i, "response %d (echo) body" % i)
                elif i % 3 == 1:
                    check(b"x-seq: %d\r\n" % i in body.lower() and b"seq=%d " % i in body,
                          "response %d is not the /headers answer to request %d: %r" % (i, i, body[:300]))
                else:
                    check(h.get("X-Backend") in ("b1", "b2"), "response %d X-Backend" % i)
                    check_eq(body, (h.get("X-Backend") + "\n").encode(), "response %d body" % i)
            used = set(h.get("X-Backend") for _, h, _ in res)
            log("backends used: %s" % sorted(used))


if __name__ == "__main__":
    run(main)
