"""b08: graceful stop.

A request with ?delay=1500 is in flight (the backend has received it) when
SIGTERM arrives. Within 1 s the frontend refuses new connections; the
in-flight request still completes with 200; an idle keep-alive client
connection does not hold the proxy up; the proxy exits 0 soon after the
last request finishes (well before the 10 s grace).
Then, with grace = 1s, a 5 s request does not keep the proxy running past
the grace: it exits, and that client's connection is closed."""
import signal
import socket
import threading
import time

from harness import *


def main():
    with Backend("b1") as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr], timeouts={"grace": "10s"}), listen_port=fe,
                   check_exit=False) as p:
            # an idle keep-alive client connection
            idle = KeepAlive(fe)
            check_eq(idle.get("/warm")[0], 200, "warm-up request")

            result = {}

            def slow():
                try:
                    result["r"] = http_get(fe, "/slow?delay=1500", timeout=10)
                except Exception as e:
                    result["e"] = repr(e)
                result["t"] = time.monotonic()

            th = threading.Thread(target=slow, daemon=True)
            th.start()
            wait_for(lambda: any("/slow?delay=1500" in l for l in b.log_lines()), timeout=5,
                     what="the slow request to reach the backend")
            t_term = time.monotonic()
            p.signal(signal.SIGTERM)

            def refused():
                try:
                    s = socket.create_connection(("127.0.0.1", fe), timeout=0.5)
                except ConnectionRefusedError:
                    return True
                except OSError:
                    return False
                s.close()
                return False
            wait_for(refused, timeout=1.0, interval=0.05,
                     what="new connections to be refused after SIGTERM")
            log("new connections refused %.2fs after SIGTERM" % (time.monotonic() - t_term))
            check(th.is_alive(), "the in-flight request ended before the listener closed")

            th.join(10)
            check(not th.is_alive(), "in-flight request did not finish")
            check("e" not in result, "in-flight request failed during graceful stop: %s" % result.get("e"))
            status, h, body = result["r"]
            check_eq(status, 200, "in-flight request status (body %r)" % body[:200])
            check_eq(body, b"b1\n", "in-flight request body")
            log("in-flight request done %.2fs after SIGTERM" % (result["t"] - t_term))

            rc = p.wait(5)
            idle.close()
            check(rc is not None,
                  "proxy still running 5s after its last request finished (grace 10s; an idle "
                  "keep-alive client connection was open)")
            log("proxy exited %s, %.2fs after SIGTERM" % (rc, time.monotonic() - t_term))
            check_eq(rc, 0, "exit status after SIGTERM; stderr tail:\n%s" % p.stderr_text()[-2000:])

        # A request longer than the grace period does not keep the proxy
        # alive: it exits about `grace` after SIGTERM, and that request's
        # client connection is closed (not left hanging).
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr], timeouts={"grace": "1s"}), listen_port=fe,
                   check_exit=False) as p:
            result = {}

            def very_slow():
                try:
                    result["r"] = http_get(fe, "/very-slow?delay=5000", timeout=10)
                except Exception as e:
                    result["e"] = repr(e)

            th = threading.Thread(target=very_slow, daemon=True)
            th.start()
            wait_for(lambda: any("/very-slow" in l for l in b.log_lines()), timeout=5,
                     what="the very slow request to reach the backend")
            t_term = time.monotonic()
            p.signal(signal.SIGTERM)
            rc = p.wait(4)
            dt = time.monotonic() - t_term
            check(rc is not None, "proxy still running 4s after SIGTERM with grace = 1s")
            log("grace 1s: proxy exited %s after %.2fs; client saw %s"
                % (rc, dt, result.get("e") or (result.get("r") or ("?",))[0]))
            check(0.8 <= dt, "proxy exited %.2fs after SIGTERM, before the 1s grace ran out" % dt)
            th.join(3)
            check(not th.is_alive(), "client of the cut-off request still waiting after the proxy exited")
            check("r" not in result or result["r"][0] != 200,
                  "request cut off by the grace period got a 200")


if __name__ == "__main__":
    run(main)
