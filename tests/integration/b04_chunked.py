"""b04: chunked transfer coding both ways.

- chunked upload (odd chunk sizes, a chunk extension, a trailer-free end) to
  /echo returns exactly the bytes sent; the same with curl -T - from a pipe.
- chunked download (/download?chunked=1) arrives byte-exact, small and 64 MiB.
- an HTTP/1.0 client asking for a chunked download gets no chunked coding
  (a close-delimited or Content-Length body) with the exact bytes.
- an HTTP/1.0 client gets no chunked coding from /echo either."""
import os
import random
import socket
import subprocess
import time

from harness import *

MIB = 1 << 20


def chunked_upload_raw(fe, payload, sizes):
    parts = []
    pos = 0
    i = 0
    while pos < len(payload):
        n = sizes[i % len(sizes)]
        piece = payload[pos:pos + n]
        ext = b";note=x" if i == 1 else b""
        parts.append(b"%x%s\r\n%s\r\n" % (len(piece), ext, piece))
        pos += n
        i += 1
    req = (b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n" + b"".join(parts) + b"0\r\n\r\n")
    data, how = raw_exchange_full(fe, req, timeout=10)
    res, rest = parse_responses(data)
    check(res, "no response to the chunked upload (%s): %r" % (how, data[:300]))
    status, h, body = res[-1]
    check_eq(status, 200, "chunked upload status")
    check_eq(len(body), len(payload), "echoed length")
    check(body == payload, "echoed bytes differ from those sent")
    log("raw chunked upload of %d bytes: echoed (%s)" %
        (len(payload), "chunked" if "chunked" in h.get("transfer-encoding", "") else
         "Content-Length" if "content-length" in h else "close-delimited"))


def curl_upload(fe, path_in):
    t0 = time.monotonic()
    with open(path_in, "rb") as src:
        # -H "Expect:": plain chunked streaming here (b07 covers 100-continue)
        curl = Popen(["curl", "-sS", "--max-time", "30", "-H", "Host: test", "-H", "Expect:",
                      "-T", "-",
                      "http://127.0.0.1:%d/echo" % fe],
                     stdin=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = curl.communicate(timeout=40)
    stop_process(curl)
    check_eq(curl.returncode, 0, "curl exit status (stderr %r)" % err[-300:])
    with open(path_in, "rb") as f:
        want = f.read()
    check_eq(len(out), len(want), "curl: echoed length")
    check(out == want, "curl: echoed bytes differ")
    log("curl -T - chunked upload of %d bytes echoed in %.2fs" % (len(want), time.monotonic() - t0))


def chunked_download(fe, n):
    status, h, body = http_get(fe, "/download?bytes=%d&chunked=1" % n, timeout=30)
    check_eq(status, 200, "chunked download status")
    check_eq(len(body), n, "chunked download length")
    check(body == pattern_bytes(0, n), "chunked download content differs")


def http10_download(fe, n):
    req = b"GET /download?bytes=%d&chunked=1 HTTP/1.0\r\nHost: test\r\n\r\n" % n
    data, how = raw_exchange_full(fe, req, timeout=10)
    check_eq(how, "closed", "HTTP/1.0 response must end with the connection closed")
    end = data.find(b"\r\n\r\n")
    check(end > 0, "HTTP/1.0 client: no response head: %r" % data[:200])
    head = data[:end].decode("latin-1").lower()
    body = data[end + 4:]
    check(head.startswith("http/1."), "bad status line: %r" % head[:80])
    check(" 200 " in head.split("\r\n")[0] + " ", "HTTP/1.0 download status: %r" % head[:80])
    check("chunked" not in head, "HTTP/1.0 client got chunked coding:\n%s" % head)
    check_eq(len(body), n, "HTTP/1.0 body length")
    check(body == pattern_bytes(0, n), "HTTP/1.0 body content differs")


def http10_echo(fe):
    payload = b"hello from 1.0"
    req = (b"POST /echo HTTP/1.0\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % len(payload)) + payload
    data, how = raw_exchange_full(fe, req, timeout=5)
    end = data.find(b"\r\n\r\n")
    check(end > 0, "HTTP/1.0 echo: no response: %r" % data[:200])
    head = data[:end].decode("latin-1").lower()
    check("chunked" not in head, "HTTP/1.0 client got chunked coding:\n%s" % head)
    check_eq(data[end + 4:], payload, "HTTP/1.0 echo body")


def main():
    rnd = random.Random(4)
    with Backend("b1") as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe):
            small = bytes(rnd.getrandbits(8) for _ in range(3000))
            chunked_upload_raw(fe, small, [1, 7, 100, 2, 1000])
            big = os.urandom(8 * MIB + 123)
            chunked_upload_raw(fe, big, [65536, 1, 300000, 4093])
            src = tmp_path("curl-upload.bin")
            with open(src, "wb") as f:
                f.write(os.urandom(3 * MIB + 17))
            curl_upload(fe, src)
            chunked_download(fe, 1)
            chunked_download(fe, 100000)
            chunked_download(fe, 64 * MIB)
            http10_download(fe, 100000)
            http10_download(fe, 4 * MIB + 5)
            http10_echo(fe)


if __name__ == "__main__":
    run(main)
