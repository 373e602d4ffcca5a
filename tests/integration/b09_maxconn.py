"""b09: frontend maxconn.

maxconn = 2, workers = 1: two client connections are open (each served a
request and now idle, keep-alive); a third connection's request is not
served - it never reaches the backend - until one of the two closes, and
then it is served."""
import socket
import time

from harness import *


def recv_response(s, timeout):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            res, _ = parse_responses(data)
            if res:
                return res[0], data
            d = s.recv(65536)
            if not d:
                return None, data
            data += d
    except socket.timeout:
        return None, data
    except ConnectionResetError:
        return None, data


def main():
    with Backend("b1") as b:
        fe = free_port()
        cfg = proxy_config(fe, [b.addr], workers=1, maxconn=2,
                           timeouts={"keepalive": "30s", "client": "30s", "http_request": "10s"})
        with Proxy(cfg, listen_port=fe):
            c1 = KeepAlive(fe)
            c2 = KeepAlive(fe)
            check_eq(c1.get("/one")[0], 200, "connection 1")
            check_eq(c2.get("/two")[0], 200, "connection 2")

            s3 = socket.create_connection(("127.0.0.1", fe), timeout=5)
            try:
                s3.sendall(b"GET /three HTTP/1.1\r\nHost: test\r\n\r\n")
                res, data = recv_response(s3, 1.5)
                check(res is None and data == b"",
                      "third connection answered while maxconn = 2 were open: %r" % data[:200])
                check(not any("/three" in l for l in b.log_lines()),
                      "third connection's request reached the backend while 2 were open")

                t0 = time.monotonic()
                c1.close()
                res, data = recv_response(s3, 3)
                check(res is not None, "third connection not served within 3s after another "
                      "closed (got %r)" % data[:200])
                check_eq(res[0], 200, "third connection status")
                log("third connection served %.2fs after the first closed" % (time.monotonic() - t0))
                # connection 2 is still usable
                check_eq(c2.get("/two-again")[0], 200, "connection 2 after the third was served")
            finally:
                s3.close()
                c1.close()
                c2.close()


if __name__ == "__main__":
    run(main)
