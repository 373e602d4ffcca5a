#!/usr/bin/python3
"""r05: a slow client that asked to close still gets its response.

A client sends its request head in two writes, with Connection: close, and
then keeps sending (against RFC 9112 9.6, as a slow or hostile client may:
here the bytes of another request, 40 ms apart) before it reads anything.
Closing the socket while bytes still arrive makes the kernel answer them with
RST, which destroys the response the client has not read yet; the proxy must
linger (stop writing, discard what arrives) instead. Checked 5 times: one
200 response, an orderly close, and the backend saw the request once and
never the bytes that followed. A request sent in one write and then nothing
is closed at once (no lingering for clients that are done), checked by the
time the close takes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Backend, Proxy, free_port, proxy_config, run  # noqa: E402
from rawhttp import Check, exchange, fmt_bytes  # noqa: E402

HOST = b"Host: sg.test\r\n"


def main():
    chk = Check("r05_slow_close")
    with Backend("b1") as be:
        port = free_port()
        with Proxy(proxy_config(port, [be]), listen_port=port) as px:
            try:
                for i in range(5):
                    first = b"GET /slow?v=%d HTTP/1.1\r\n" % i
                    rest = HOST + b"Connection: close\r\n\r\n"
                    after = b"GET /after?v=%d HTTP/1.1\r\n" % i + HOST + b"\r\n"
                    parts = [first, rest] + [after[k:k + 4] for k in range(0, len(after), 4)]
                    ex = exchange(port, parts, timeout=5, gap=0.04)
                    chk.ok(ex.statuses() == [200] and ex.eof and not ex.reset,
                           "slow client %d: one 200 and an orderly close" % i,
                           "got %r: %s" % (ex, fmt_bytes(ex.data, 300)))
                seen = be.traffic_lines()
                chk.ok(len([ln for ln in seen if "/slow" in ln]) == 5
                       and not any("/after" in ln for ln in seen),
                       "the backend saw each request once and nothing sent after it",
                       str(seen))
                ex = exchange(port, b"GET /fast HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
                              timeout=5)
                chk.ok(ex.statuses() == [200] and ex.eof and ex.elapsed < 1.0,
                       "a client done sending is closed at once", "got %r" % ex)
            finally:
                if chk.failures:
                    print("--- proxy stderr tail ---\n" + px.stderr_text()[-3000:])
    chk.done()


if __name__ == "__main__":
    run(main)
