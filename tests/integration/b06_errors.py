"""b06: the proxy's own error answers, and that they come at once.

  /refused/...   pool whose only backend port has nothing listening -> 502
  /garbage/...   backend answers "NOT HTTP"                          -> 502
  /reset/...     backend resets before any response byte             -> 502
  /zero/...      pool whose backends all have weight 0               -> 503 + Retry-After
  /slow/?delay=3000 with server = "1s"                               -> 504 after ~1s
  /mixed/...     [dead, live] pool: retries make every request 200
  ?reset_after=N backend dies mid-response (Content-Length or chunked
                 body): the client must not get a
                 complete response; its connection is closed promptly
  a killed backend -> 502/503 at once on each later request
Every error answer must come in < 1 s (504: < 2.9 s) and be a complete,
well-formed HTTP response. (503 for a pool whose backends all fail health
checks, and for a queue timeout, belong with the health/queue work.)"""
import time

from harness import *  # noqa: F401,F403

FAST = 1.0


def timed_get(fe, path, timeout=10):
    t0 = time.monotonic()
    status, h, body = http_get(fe, path, timeout=timeout)
    return status, h, body, time.monotonic() - t0


def expect_error(fe, path, want, what, limit=FAST):
    status, h, body, dt = timed_get(fe, path)
    log("%-28s -> %d in %.3fs %r" % (path, status, dt, body[:60]))
    check_eq(status, want, "%s: status for GET %s (body %r)" % (what, path, body[:200]))
    check(dt < limit, "%s: answer took %.2fs (limit %.1fs)" % (what, dt, limit))
    return h


def main():
    dead_port = free_port()  # nothing listens here
    with Backend("live") as live, Backend("gb") as gb, Backend("victim") as victim:
        fe = free_port()
        dead = "127.0.0.1:%d" % dead_port
        cfg = proxy_config(
            fe, [live.addr], timeouts={"server": "1s", "connect": "1s"},
            routes=[(None, "/refused/", "refused"), (None, "/garbage/", "gb"),
                    (None, "/reset/", "gb"), (None, "/zero/", "zero"),
                    (None, "/mixed/", "mixed"),
                    (None, "/victim/", "victim")],
            # Outlier ejection off where a test wants the same gateway
            # error every time (ejection would turn it into 503).
            more_pools=[pool_text("refused", [dead], extra="outlier = { consecutive_errors = 0; };"),
                        pool_text("gb", [gb.addr], extra="outlier = { consecutive_errors = 0; };"),
                        pool_text("zero", [(live.addr, 0), (gb.addr, 0)]),
                        pool_text("mixed", [dead, live.addr], retries=2),
                        pool_text("victim", [victim.addr],
                                  extra="outlier = { consecutive_errors = 0; };")])
        with Proxy(cfg, listen_port=fe):
            # sanity: the default pool works
            status, h, _, _ = timed_get(fe, "/ok")
            check_eq(status, 200, "default pool")

            # 502s
            for i in range(3):
                expect_error(fe, "/refused/%d" % i, 502, "backend refusing connections")
            expect_error(fe, "/garbage/x?garbage=1", 502, "garbage response")
            expect_error(fe, "/reset/x?reset=1", 502, "reset before the response head")

            # 503 + Retry-After
            h = expect_error(fe, "/zero/x", 503, "pool with only weight-0 backends")
            check("Retry-After" in h, "503 without Retry-After (pool with only weight-0 backends): %s" % dict(h))
            check(not any("/zero/" in l for l in live.log_lines() + gb.log_lines()),
                  "a weight-0 backend received traffic")

            # 504
            status, h, body, dt = timed_get(fe, "/slow/?delay=3000")
            log("%-28s -> %d in %.3fs" % ("/slow/?delay=3000", status, dt))
            check_eq(status, 504, "backend slower than timeout server (body %r)" % body[:200])
            sent = [l for l in live.log_lines() if l.startswith("GET /slow/")]
            # A GET that timed out before any response byte is retried
            # (retries = 2): three attempts of timeout server (1s) each.
            check(2.8 <= dt < 4.8, "504 came after %.2fs, want about 3s (3 attempts x timeout "
                  "server); the backend received the request %d times" % (dt, len(sent)))
            check_eq(len(sent), 3, "attempts of a timed-out GET (retries = 2)")
            # A POST that reached the backend is never sent twice.
            t0 = time.monotonic()
            status, _, body = http_request(fe, "POST", "/slowpost/?delay=3000", body=b"x" * 10,
                                           timeout=10)
            dt = time.monotonic() - t0
            log("%-28s -> %d in %.3fs" % ("POST /slowpost/?delay=3000", status, dt))
            check_eq(status, 504, "POST to a backend slower than timeout server")
            sent = [l for l in live.log_lines() if l.startswith("POST /slowpost/")]
            check(0.8 <= dt < 2.5 and len(sent) == 1,
                  "a timed-out POST: 504 after %.2fs (want about 1s), sent %d times (want 1)"
                  % (dt, len(sent)))

            # dead + live: retried on the live one, all 200
            for i in range(20):
                status, h, body, dt = timed_get(fe, "/mixed/%d" % i)
                check_eq(status, 200, "mixed pool request %d (one backend dead, retries = 2)" % i)
                check(dt < FAST, "mixed pool request %d took %.2fs" % (i, dt))

            # a backend dying mid-response
            for n, chunked in ((0, 0), (1000, 0), (200000, 0), (0, 1), (1000, 1), (200000, 1)):
                req = (b"GET /reset_mid?reset_after=%d&chunked=%d HTTP/1.1\r\nHost: test\r\n\r\n"
                       % (n, chunked))
                t0 = time.monotonic()
                data, how = raw_exchange_full(fe, req, timeout=5)
                dt = time.monotonic() - t0
                res, rest = parse_responses(data)
                head = data[:data.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in data else data[:200]
                log("reset_after=%d chunked=%d: %d bytes, connection %s after %.2fs, head %r"
                    % (n, chunked, len(data), how, dt, head[:120]))
                complete_ok = [r for r in res if 200 <= r[0] < 300]
                check(not complete_ok,
                      "backend reset after %d body bytes, yet the client got a complete %d "
                      "response with a %d-byte body (head %r)"
                      % (n, complete_ok[0][0] if complete_ok else 0,
                         len(complete_ok[0][2]) if complete_ok else 0, head))
                check(how in ("closed", "reset"),
                      "client connection left open %.1fs after the backend reset mid-response" % dt)

            # a backend killed after it served (pooled connections now dead)
            for i in range(5):
                status, _, _, _ = timed_get(fe, "/victim/warm%d" % i)
                check_eq(status, 200, "victim warm-up")
            victim.kill()
            for i in range(5):
                status, h, body, dt = timed_get(fe, "/victim/after%d" % i)
                log("%-28s -> %d in %.3fs" % ("/victim/after%d" % i, status, dt))
                check(status in (502, 503), "killed backend: status %d, want 502 or 503" % status)
                check(dt < FAST, "killed backend: answer took %.2fs" % dt)



if __name__ == "__main__":
    run(main)
