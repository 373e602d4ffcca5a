"""b03: 1 GiB through the proxy both ways with bounded memory.

- upload: a raw client sends Content-Length: 1 GiB to /sink?stall=2000 (the
  backend does not read for 2 s, so the proxy must stop reading from the
  client rather than buffer); the backend counts exactly 1 GiB.
- upload: curl -T - from a pipe (chunked, 1 GiB) to /sink.
- download: /download?bytes=1 GiB, the client pauses reading for 2 s after
  256 MiB; every byte is checked against the pattern.
The proxy's peak RSS (VmHWM) must stay under 64 MiB."""
import http.client
import socket
import subprocess
import time

from harness import *

GIB = 1 << 30
MIB = 1 << 20
RSS_LIMIT_KIB = 64 * 1024
DEADLINE = 240  # seconds for the whole test


def upload_raw(fe, proxy, t_end):
    s = socket.create_connection(("127.0.0.1", fe), timeout=30)
    try:
        s.sendall(b"POST /sink?stall=2000 HTTP/1.1\r\nHost: test\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % GIB)
        block = b"u" * MIB
        sent = 0
        rss_during_stall = None
        t0 = time.monotonic()
        while sent < GIB:
            check(time.monotonic() < t_end, "upload too slow: %d bytes in %.0fs" % (sent, time.monotonic() - t0))
            s.sendall(block)
            sent += MIB
            if rss_during_stall is None and time.monotonic() - t0 > 1.0:
                rss_during_stall = proxy.rss_kib()
        resp = b""
        while b"\r\n\r\n" not in resp or not resp.endswith(b"}"):
            d = s.recv(4096)
            if not d:
                break
            resp += d
    finally:
        s.close()
    log("raw upload: %.1fs, proxy RSS while the backend stalled: %s KiB, response %r"
        % (time.monotonic() - t0, rss_during_stall, resp[-40:]))
    res, _ = parse_responses(resp)
    check(res, "no response to the 1 GiB upload: %r" % resp[:300])
    check_eq(res[-1][0], 200, "upload status")
    check_eq(res[-1][2], b'{"bytes":%d}' % GIB, "bytes the backend received")


def upload_curl(fe, t_end):
    # A generator pipe: head -c 1G /dev/zero | curl -T - (chunked upload).
    gen = Popen(["head", "-c", str(GIB), "/dev/zero"], stdout=subprocess.PIPE)
    curl = Popen(["curl", "-sS", "--max-time", str(int(t_end - time.monotonic())),
                  "-H", "Host: test", "-T", "-", "http://127.0.0.1:%d/sink" % fe],
                 stdin=gen.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    gen.stdout.close()
    t0 = time.monotonic()
    out, err = curl.communicate(timeout=max(1, t_end - time.monotonic()))
    stop_process(gen)
    stop_process(curl)
    log("curl chunked upload: %.1fs -> %r %r" % (time.monotonic() - t0, out[-60:], err[-200:]))
    check_eq(curl.returncode, 0, "curl exit status (stderr %r)" % err[-300:])
    check_eq(out, b'{"bytes":%d}' % GIB, "bytes the backend received from curl")


def download(fe, proxy, t_end):
    conn = http.client.HTTPConnection("127.0.0.1", fe, timeout=30)
    t0 = time.monotonic()
    try:
        conn.request("GET", "/download?bytes=%d" % GIB, headers={"Host": "test"})
        resp = conn.getresponse()
        check_eq(resp.status, 200, "download status")
        cl = resp.getheader("Content-Length")
        check(cl is None or int(cl) == GIB, "download Content-Length %r" % cl)
        buf = bytearray(MIB)
        mv = memoryview(buf)
        big = PATTERN * (MIB // len(PATTERN) + 2)
        got = 0
        paused = False
        rss_paused = None
        while True:
            n = resp.readinto(mv)
            if not n:
                break
            start = got % len(PATTERN)
            if bytes(mv[:n]) != big[start:start + n]:
                fail("download content differs from the pattern in bytes %d..%d" % (got, got + n))
            got += n
            check(got <= GIB, "download longer than 1 GiB")
            check(time.monotonic() < t_end, "download too slow: %d bytes" % got)
            if not paused and got >= 256 * MIB:
                paused = True
                time.sleep(2.0)  # a slow client: the proxy must not buffer for it
                rss_paused = proxy.rss_kib()
    finally:
        conn.close()
    log("download: %d bytes in %.1fs, proxy RSS while the client paused: %s KiB"
        % (got, time.monotonic() - t0, rss_paused))
    check_eq(got, GIB, "bytes downloaded")


def main():
    t_end = time.monotonic() + DEADLINE
    with Backend("big") as b:
        fe = free_port()
        cfg = proxy_config(fe, [b.addr], limits={"max_body_size": 0})
        with Proxy(cfg, listen_port=fe) as p:
            log("proxy RSS at start: %s KiB" % p.rss_kib())
            upload_raw(fe, p, t_end)
            log("VmHWM after raw upload: %s KiB" % p.hwm_kib())
            upload_curl(fe, t_end)
            log("VmHWM after curl upload: %s KiB" % p.hwm_kib())
            download(fe, p, t_end)
            hwm = p.hwm_kib()
            log("VmHWM after download: %s KiB" % hwm)
            if p.sanitized():
                log("AddressSanitizer build: RSS bound not checked")
            else:
                check(hwm is not None and hwm < RSS_LIMIT_KIB,
                      "proxy peak RSS %s KiB, limit %d KiB" % (hwm, RSS_LIMIT_KIB))


if __name__ == "__main__":
    run(main)
