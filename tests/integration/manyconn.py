"""Many client connections from one selectors loop (b12-b14: frontend
maxconn across workers, idle connections by the thousand, graceful stop).

Non-blocking raw sockets, no threads: opening, sending and reading are
driven from one loop, and every loop stops at its deadline. Each connection
records what it saw: its responses (parsed with harness.parse_responses), an
orderly close (EOF) or a reset, and when.
"""

import errno
import resource
import selectors
import socket
import time

from harness import parse_responses

__all__ = ["Client", "Many", "raise_nofile"]


def raise_nofile(want):
    """Raises this process's open-file limit to at least `want` (within the
    hard limit). Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError):
            pass
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft


class Client:
    """One client connection: `responses` complete so far, `eof` / `reset`
    (with the monotonic time `t_end`), `requests` sent."""

    def __init__(self, cid):
        self.cid = cid
        self.sock = None
        self.connected = False
        self.buf = b""
        self.responses = []
        self.requests = 0
        self.eof = False
        self.reset = False
        self.error = None
        self.t_end = None

    @property
    def done(self):
        return self.eof or self.reset or self.error is not None

    def outstanding(self):
        """Requests sent and not yet answered."""
        return self.requests - len(self.responses)


class Many:
    """A set of client connections to 127.0.0.1:port. on_response(client,
    response), when given, runs for each complete response (it may send the
    next request)."""

    def __init__(self, port, on_response=None):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.clients = []
        self.on_response = on_response

    # ---------------------------------------------------------------- opening

    def open(self, n, timeout=10.0, batch=500):
        """Opens n more connections, `batch` connects in flight at a time, and
        waits for each to be established (the kernel's handshake: the proxy
        need not have accepted it). Returns the new clients; raises
        RuntimeError when some did not connect in time."""
        new = []
        deadline = time.monotonic() + timeout
        pending = {}
        i = 0
        while i < n or pending:
            while i < n and len(pending) < batch:
                c = Client(len(self.clients))
                self.clients.append(c)
                new.append(c)
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.sock = s
                rc = s.connect_ex(("127.0.0.1", self.port))
                if rc not in (0, errno.EINPROGRESS):
                    raise RuntimeError("connect %d: %s" % (c.cid, errno.errorcode.get(rc, rc)))
                pending[s.fileno()] = c
                self.sel.register(s, selectors.EVENT_WRITE, c)
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("%d of %d connections not established within %.0fs"
                                   % (len(pending), n, timeout))
            for key, _ in self.sel.select(min(left, 0.5)):
                c = key.data
                if c.connected or key.events != selectors.EVENT_WRITE:
                    continue
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise RuntimeError("connect %d: %s" % (c.cid, errno.errorcode.get(err, err)))
                c.connected = True
                del pending[c.sock.fileno()]
                self.sel.modify(c.sock, selectors.EVENT_READ, c)
        return new

    # ---------------------------------------------------------------- traffic

    def send(self, c, data):
        """Sends data (small: one send) on c. False (and c marked reset or
        failed) when the connection is gone."""
        try:
            n = c.sock.send(data)
        except (ConnectionResetError, BrokenPipeError) as e:
            self._end(c, reset=True, why=repr(e))
            return False
        except OSError as e:
            self._end(c, why=repr(e))
            return False
        if n != len(data):
            self._end(c, why="short send: %d of %d bytes" % (n, len(data)))
            return False
        c.requests += 1
        return True

    def get(self, c, path):
        return self.send(c, ("GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % path).encode())

    def peer_closed(self, c):
        """True when an EOF (or a reset) is already waiting on c's socket:
        looked at without consuming anything."""
        try:
            d = c.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except ConnectionResetError:
            return True
        return d == b""

    def _end(self, c, reset=False, why=None):
        if c.done:
            return
        if reset:
            c.reset = True
        elif why is not None:
            c.error = why
        else:
            c.eof = True
        c.t_end = time.monotonic()
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()  # as a client does when the server has closed

    def _read(self, c):
        try:
            d = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            self._end(c, reset=True)
            return
        except OSError as e:
            self._end(c, why=repr(e))
            return
        if not d:
            self._end(c)
            return
        c.buf += d
        res, c.buf = parse_responses(c.buf)
        for r in res:
            if 100 <= r[0] < 200:
                continue
            c.responses.append(r)
            if self.on_response is not None and not c.done:
                self.on_response(c, r)

    def run(self, until, timeout, idle=None):
        """Runs the loop until until() is true, `timeout` seconds pass, or
        (idle given) nothing arrives for `idle` seconds. Returns until()."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while not until():
            now = time.monotonic()
            if now >= deadline or (idle is not None and now - last >= idle):
                break
            events = self.sel.select(min(deadline - now, 0.2)) if self.sel.get_map() else []
            if not events and not self.sel.get_map():
                time.sleep(min(deadline - now, 0.05))
            for key, _ in events:
                self._read(key.data)
                last = time.monotonic()
        return until()

    def close(self, c):
        """Closes c from the client side."""
        if not c.done:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.error = "closed by the test"
        if c.sock is not None:
            c.sock.close()

    def close_all(self):
        for c in self.clients:
            self.close(c)
        self.clients = []
