"""Raw-socket HTTP/1.1 helpers for the byte-exact conformance tests (r*.py).

harness.py starts the proxy and the test backends; this module only talks to
sockets: it sends exact bytes, tells an orderly close (EOF) from a reset from
a timeout, and splits what came back into responses without trusting it.
Everything is bounded: every read loop stops at its deadline.
"""

import select
import socket
import time

__all__ = ["Conn", "Exchange", "Response", "exchange", "drip_exchange", "parse_responses",
           "bytewise",
           "head_lines", "header_values", "fmt_bytes", "fmt_lines", "Check"]


class Response:
    """One HTTP response as parsed from raw bytes."""

    def __init__(self):
        self.status = None
        self.reason = ""
        self.version = ""
        self.headers = []          # [(name, value)] in wire order, names as sent
        self.body = b""
        self.raw = b""             # the exact bytes of this response
        self.complete = False

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def get(self, name, default=None):
        vals = self.get_all(name)
        return vals[0] if vals else default

    def __repr__(self):
        return "<Response %s %r hdrs=%d body=%d complete=%s>" % (
            self.status, self.reason, len(self.headers), len(self.body), self.complete)


class Exchange:
    """What one raw exchange produced."""

    def __init__(self):
        self.data = b""            # every byte received
        self.eof = False           # orderly close seen (recv returned b"")
        self.reset = False         # ECONNRESET / EPIPE
        self.timed_out = False     # deadline reached with the connection still open
        self.elapsed = 0.0         # seconds from connect to close / deadline
        self.first_byte_at = None  # seconds from connect to the first byte received
        self.error = None

    @property
    def closed(self):
        return self.eof or self.reset

    def responses(self):
        return parse_responses(self.data)

    def first(self):
        rs = self.responses()
        return rs[0] if rs else None

    def statuses(self):
        return [r.status for r in self.responses()]

    def __repr__(self):
        return "<Exchange %d bytes eof=%s reset=%s timed_out=%s %.2fs statuses=%s>" % (
            len(self.data), self.eof, self.reset, self.timed_out, self.elapsed, self.statuses())


def _connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _read_until_close(s, ex, t0, deadline, stop_after_responses=None):
    while True:
        now = time.monotonic()
        if now >= deadline:
            ex.timed_out = True
            break
        r, _, _ = select.select([s], [], [], min(0.1, deadline - now))
        if not r:
            continue
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            ex.reset = True
            break
        except OSError as e:
            ex.error = e
            ex.reset = True
            break
        if not chunk:
            ex.eof = True
            break
        if ex.first_byte_at is None:
            ex.first_byte_at = time.monotonic() - t0
        ex.data += chunk
        if stop_after_responses is not None:
            rs = parse_responses(ex.data)
            if len(rs) >= stop_after_responses and all(x.complete for x in rs):
                break
    ex.elapsed = time.monotonic() - t0


def exchange(port, data, timeout=3.0, shut_wr=False, stop_after_responses=None, gap=0.0):
    """Connect to 127.0.0.1:port, send data (bytes, or a list of byte strings
    sent in order, `gap` seconds apart), then read until the peer closes or
    `timeout` seconds have passed since connecting (with a gap: since the
    last write). shut_wr half-closes our
    side after sending.
    stop_after_responses=N stops reading (without waiting for a close) once N
    complete responses arrived; the socket is then closed by us."""
    ex = Exchange()
    t0 = time.monotonic()
    deadline = t0 + timeout
    s = _connect(port, timeout)
    try:
        parts = data if isinstance(data, (list, tuple)) else [data]
        for i, p in enumerate(parts):
            if gap and i:
                time.sleep(gap)
            try:
                s.sendall(p)
            except (ConnectionResetError, BrokenPipeError):
                # The proxy may close early (an error answered before the
                # rest arrived); what it sent is still readable.
                break
        if shut_wr:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if gap:
            # Slow writes (a loaded machine can stretch each gap many times)
            # must not eat the time left to read the answer.
            deadline = max(deadline, time.monotonic() + timeout)
        _read_until_close(s, ex, t0, deadline, stop_after_responses)
    finally:
        s.close()
    return ex


class Conn:
    """A connection kept open across several steps (keep-alive tests)."""

    def __init__(self, port, timeout=5.0):
        self.t0 = time.monotonic()
        self.sock = _connect(port, timeout)
        self.buf = b""
        self.eof = False
        self.reset = False

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            return False

    def _recv_some(self, deadline):
        now = time.monotonic()
        if now >= deadline:
            return False
        r, _, _ = select.select([self.sock], [], [], min(0.1, deadline - now))
        if not r:
            return True
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, OSError):
            self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_responses(self, n, timeout=5.0):
        """Reads until n complete responses are buffered (or close/timeout);
        returns the parsed responses and consumes their bytes."""
        deadline = time.monotonic() + timeout
        while True:
            rs = parse_responses(self.buf)
            if len(rs) >= n and all(r.complete for r in rs[:n]):
                break
            if not self._recv_some(deadline):
                break
        rs = parse_responses(self.buf)[:n]
        self.buf = self.buf[sum(len(r.raw) for r in rs):]
        return rs

    def wait_close(self, timeout):
        """Reads until the peer closes or timeout. Returns (closed, extra
        bytes received meanwhile, seconds waited)."""
        t = time.monotonic()
        deadline = t + timeout
        start_len = len(self.buf)
        while self._recv_some(deadline):
            pass
        return self.eof or self.reset, self.buf[start_len:], time.monotonic() - t

    @property
    def closed(self):
        return self.eof or self.reset

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def bytewise(data):
    """data split into one-byte writes (for exchange(..., gap=...)): every
    byte boundary becomes a possible read boundary in the proxy."""
    return [data[i:i + 1] for i in range(len(data))]


def drip_exchange(port, first, drip, interval, timeout):
    """Send `first`, then `drip` one byte every `interval` seconds, while
    reading. Stops when the peer answers/closes or `timeout` passes.
    Returns (Exchange, bytes_dripped)."""
    ex = Exchange()
    t0 = time.monotonic()
    deadline = t0 + timeout
    s = _connect(port, timeout)
    sent = 0
    try:
        s.sendall(first)
        next_send = time.monotonic() + interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                ex.timed_out = True
                break
            wait = max(0.0, min(next_send, deadline) - now)
            r, _, _ = select.select([s], [], [], wait)
            if r:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, BrokenPipeError, OSError):
                    ex.reset = True
                    break
                if not chunk:
                    ex.eof = True
                    break
                if ex.first_byte_at is None:
                    ex.first_byte_at = time.monotonic() - t0
                ex.data += chunk
                continue
            if time.monotonic() >= next_send and sent < len(drip):
                try:
                    s.sendall(drip[sent:sent + 1])
                except (ConnectionResetError, BrokenPipeError):
                    continue  # read what is left on the next turn
                sent += 1
                next_send += interval
            elif sent >= len(drip):
                next_send = deadline
        # Whatever was answered, wait (bounded) for the close.
        if ex.data and not ex.closed:
            _read_until_close(s, ex, t0, min(deadline, time.monotonic() + 1.0))
        ex.elapsed = time.monotonic() - t0
    finally:
        s.close()
    return ex, sent


def _split_head(buf, pos):
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        return None, None
    return buf[pos:end], end + 4


def _parse_chunked(buf, pos):
    """Returns (body, new_pos) or (partial_body, None) when truncated/invalid."""
    body = b""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return body, None
        line = buf[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(line, 16)
        except ValueError:
            return body, None
        pos = eol + 2
        if size == 0:
            # trailers until an empty line
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return body, None
                if eol == pos:
                    return body, eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return body + buf[pos:pos + size], None
        body += buf[pos:pos + size]
        pos += size + 2


def parse_responses(buf, head_request=False):
    """Split raw bytes into Response objects (framing by Content-Length,
    chunked, or close). The last one may be incomplete."""
    out = []
    pos = 0
    while pos < len(buf):
        r = Response()
        head, body_at = _split_head(buf, pos)
        if head is None:
            r.raw = buf[pos:]
            first = r.raw.split(b"\r\n", 1)[0]
            _parse_status(r, first)
            out.append(r)
            break
        lines = head.split(b"\r\n")
        _parse_status(r, lines[0])
        for ln in lines[1:]:
            k, sep, v = ln.partition(b":")
            r.headers.append((k.decode("latin-1"), v.strip().decode("latin-1") if sep else None))
        te = ",".join(v or "" for v in r.get_all("transfer-encoding")).lower()
        cl = r.get_all("content-length")
        no_body = head_request or (r.status is not None and (
            100 <= r.status < 200 or r.status in (204, 304)))
        if no_body:
            r.complete, end = True, body_at
        elif "chunked" in te:
            r.body, end = _parse_chunked(buf, body_at)
            r.complete = end is not None
            if end is None:
                end = len(buf)
        elif cl:
            try:
                n = int(cl[0])
            except ValueError:
                n = len(buf) - body_at
            r.body = buf[body_at:body_at + n]
            r.complete = len(r.body) == n
            end = body_at + len(r.body)
        else:
            r.body = buf[body_at:]
            r.complete = True  # delimited by close
            end = len(buf)
        r.raw = buf[pos:end]
        out.append(r)
        pos = end
    return out


def _parse_status(r, line):
    parts = line.split(b" ", 2)
    r.version = parts[0].decode("latin-1", "replace")
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/"):
        try:
            r.status = int(parts[1])
        except ValueError:
            r.status = None
    if len(parts) == 3:
        r.reason = parts[2].decode("latin-1", "replace")


def head_lines(head_bytes):
    """Split a raw request head (as /headers returns it) into its lines,
    keeping the exact bytes (no stripping except the CRLF terminators)."""
    text = head_bytes
    if text.endswith(b"\r\n\r\n"):
        text = text[:-4]
    return [ln for ln in text.split(b"\r\n")]


def header_values(head_bytes, name):
    """All values of header `name` (case-insensitive) in a raw head."""
    n = name.lower().encode()
    out = []
    for ln in head_lines(head_bytes)[1:]:
        k, sep, v = ln.partition(b":")
        if sep and k.lower() == n:
            out.append(v.strip(b" \t"))
    return out


def fmt_bytes(b, limit=120):
    s = repr(bytes(b))[2:-1]
    if len(s) > limit:
        s = s[:limit] + "...(%d bytes)" % len(b)
    return s


def fmt_lines(lines, limit=100):
    """repr of a list of (backend log) lines, each cut to `limit` chars."""
    return "[" + ", ".join(repr(ln if len(ln) <= limit else ln[:limit] + "...(%d chars)" % len(ln))
                           for ln in lines) + "]"


class Check:
    """Collects failed assertions instead of stopping at the first, so one
    run reports every broken vector; `done()` raises if any failed."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.passed = 0

    def ok(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            msg = "FAIL %s" % what
            if detail:
                msg += "\n    " + detail.replace("\n", "\n    ")
            self.failures.append(msg)
            print(msg, flush=True)
        return cond

    def done(self):
        print("%s: %d checks passed, %d failed" % (self.name, self.passed, len(self.failures)),
              flush=True)
        if self.failures:
            raise AssertionError("%d failed checks in %s:\n%s" % (
                len(self.failures), self.name, "\n".join(self.failures)))
