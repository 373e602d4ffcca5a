"""harness.py - shared helpers for surgegate's integration tests.

Python 3 standard library only. A test file looks like:

    from harness import *

    def main():
        with Backend("b1") as b1:
            with Proxy(proxy_config(fe, [b1.addr]), listen_port=fe):
                status, headers, body = http_get(fe, "/")
                check_eq(status, 200)

    run(main)

Environment:
    SG_BIN      the surgegate binary (default: <repo>/build/surgegate)
    SG_BACKEND  the test backend (default: <repo>/build/tests/backend/sg-testbackend)

Every process started here is stopped when the test ends, however it ends:
context managers, run()'s finally, atexit, SIGTERM/SIGINT/SIGHUP handlers,
and PR_SET_PDEATHSIG (children get SIGKILL if the test process is killed).
All traffic goes to 127.0.0.1.
"""

import atexit
import ctypes
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

__all__ = [
    "SG_BIN", "SG_BACKEND", "TestFailure", "Skip", "free_port", "Backend", "Proxy",
    "proxy_config", "pool_text", "http_get", "http_request", "raw_exchange", "raw_exchange_full",
    "parse_responses", "run", "fail", "check", "check_eq", "skip", "wait_for", "tmp_path",
    "log", "CIDict", "Popen", "stop_process", "KeepAlive", "PATTERN", "pattern_bytes",
]

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SG_BIN = os.environ.get("SG_BIN") or os.path.join(_REPO, "build", "surgegate")
SG_BACKEND = os.environ.get("SG_BACKEND") or os.path.join(
    _REPO, "build", "tests", "backend", "sg-testbackend")

_TMPDIR = tempfile.mkdtemp(prefix="sgtest-")
_live = []          # Popen objects still possibly running
_proxies = []       # Proxy objects, for the failure report
_given_ports = set()
_lock = threading.Lock()


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    pass


def log(msg):
    sys.stdout.write("  %s\n" % msg)
    sys.stdout.flush()


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, want, what="value"):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, _short(got), _short(want)))


def skip(msg):
    raise Skip(msg)


def _short(v, n=600):
    if isinstance(v, (bytes, str)) and len(v) > n:
        return v[:n] + (b"..." if isinstance(v, bytes) else "...")
    return v


def tmp_path(name):
    """A path inside this test's private temporary directory."""
    return os.path.join(_TMPDIR, name)


def wait_for(cond, timeout=5.0, interval=0.02, what="condition"):
    """Polls cond() until it returns a true value (returned) or fails."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------- processes

def _pdeathsig():
    # Runs in the child before exec: SIGKILL it if the test process dies.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def Popen(argv, **kw):
    """subprocess.Popen that the harness will always clean up."""
    kw.setdefault("preexec_fn", _pdeathsig)
    p = subprocess.Popen(argv, **kw)
    with _lock:
        _live.append(p)
    return p


def stop_process(p, sig=signal.SIGTERM, timeout=5.0):
    """Sends sig, waits up to timeout, then SIGKILLs. Returns the exit code
    (negative for a signal) and whether it exited in time."""
    in_time = True
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            in_time = False
            p.kill()
            p.wait()
    with _lock:
        if p in _live:
            _live.remove(p)
    return p.returncode, in_time


def _cleanup_all():
    with _lock:
        procs = list(_live)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except Exception:
                pass
    for p in procs:
        try:
            p.wait(5)
        except Exception:
            pass
    with _lock:
        _live.clear()


def _cleanup_tmp():
    if os.environ.get("SG_KEEP_TMP"):
        sys.stderr.write("kept %s\n" % _TMPDIR)
        return
    shutil.rmtree(_TMPDIR, ignore_errors=True)


atexit.register(_cleanup_tmp)
atexit.register(_cleanup_all)


def _on_signal(signum, frame):
    _cleanup_all()
    sys.stdout.write("FAIL %s (signal %d)\n" % (os.path.basename(sys.argv[0]), signum))
    sys.stdout.flush()
    _cleanup_tmp()
    os._exit(1)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (and that this
    process has not handed out before)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        with _lock:
            if port not in _given_ports:
                _given_ports.add(port)
                return port
    fail("no free port found")


def _read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _port_open(port, timeout=0.2):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


def _proc_status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- backend

class Backend:
    """A running sg-testbackend on 127.0.0.1:<free port>.

    close_after=N: close each connection after N responses ("Connection:
    close" sent); drop_after=N: the same without saying so; idle_timeout_ms:
    silently close connections idle between requests; refuse_health: /healthz
    answers 503; log: record "METHOD URL" per request (see log_lines())."""

    _seq = 0

    def __init__(self, name, close_after=None, refuse_health=False, log=True, port=None,
                 drop_after=None, idle_timeout_ms=None):
        self.name = name
        self.close_after = close_after
        self.drop_after = drop_after
        self.idle_timeout_ms = idle_timeout_ms
        self.refuse_health = refuse_health
        Backend._seq += 1
        tag = "%s-%d" % (re.sub(r"[^A-Za-z0-9_.-]", "_", name), Backend._seq)
        self.log_path = tmp_path("backend-%s.log" % tag) if log else None
        self.stderr_path = tmp_path("backend-%s.stderr" % tag)
        self.proc = None
        self.port = None
        self._start(port)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _start(self, port):
        if not os.access(SG_BACKEND, os.X_OK):
            fail("test backend not built: %s (set SG_BACKEND)" % SG_BACKEND)
        for attempt in range(5):
            self.port = port or free_port()
            argv = [SG_BACKEND, "--listen", self.addr, "--name", self.name]
            if self.close_after:
                argv += ["--close-after", str(self.close_after)]
            if self.drop_after:
                argv += ["--drop-after", str(self.drop_after)]
            if self.idle_timeout_ms:
                argv += ["--idle-timeout", str(self.idle_timeout_ms)]
            if self.log_path:
                argv += ["--log", self.log_path]
            if self.refuse_health:
                argv += ["--refuse-health"]
            err = open(self.stderr_path, "ab")
            self.proc = Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
            err.close()
            line = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
                if r:
                    line = self.proc.stdout.readline()
                    break
                if self.proc.poll() is not None:
                    break
            if line.strip() == b"ready":
                self.proc.stdout.close()
                return
            stop_process(self.proc, signal.SIGKILL)
            if port or "cannot listen" not in _read_file(self.stderr_path):
                break
        fail("backend %s did not start: %s" % (self.name, _read_file(self.stderr_path)))

    def log_lines(self):
        """The "METHOD URL" lines of every request it received (/__stats excluded)."""
        if not self.log_path:
            fail("backend %s was started with log=False" % self.name)
        return [l for l in _read_file(self.log_path).splitlines() if l]

    def stats(self):
        """{"connections": C, "requests": R, "accepted": A} from GET /__stats."""
        status, _, body = http_get(self.port, "/__stats", timeout=5)
        check_eq(status, 200, "backend %s /__stats status" % self.name)
        return json.loads(body)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM)

    def kill(self):
        if self.proc is not None:
            stop_process(self.proc, signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------- proxy

class Proxy:
    """A running surgegate with the given config text.

    listen_port: the frontend port to poll for readiness (default: the first
    `listen = "127.0.0.1:P"` in the config). check_exit: on leaving the
    context (without another exception in flight), stop it and require exit
    status 0 within 15 s."""

    _seq = 0

    def __init__(self, config_text, listen_port=None, args=(), check_exit=True,
                 ready_timeout=10.0, wrapper=()):
        Proxy._seq += 1
        self.config_path = tmp_path("surgegate-%d.conf" % Proxy._seq)
        self.stderr_path = tmp_path("surgegate-%d.stderr" % Proxy._seq)
        self.stdout_path = tmp_path("surgegate-%d.stdout" % Proxy._seq)
        self.config_text = config_text
        self.check_exit = check_exit
        self.returncode = None
        with open(self.config_path, "w") as f:
            f.write(config_text)
        if listen_port is None:
            m = re.search(r'listen\s*=\s*"127\.0\.0\.1:(\d+)"', config_text)
            if not m:
                fail("Proxy: pass listen_port= (no 127.0.0.1 listen in the config)")
            listen_port = int(m.group(1))
        self.listen_port = listen_port
        if not os.access(SG_BIN, os.X_OK):
            fail("surgegate not built: %s (set SG_BIN)" % SG_BIN)
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        # wrapper: a command prefix, e.g. valgrind with its options
        self.proc = Popen(list(wrapper) + [SG_BIN, "-c", self.config_path] + list(args),
                          stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        out.close()
        err.close()
        _proxies.append(self)
        deadline = time.monotonic() + ready_timeout
        while not _port_open(listen_port):
            if self.proc.poll() is not None:
                fail("surgegate exited with %s before listening on %d; stderr:\n%s"
                     % (self.proc.returncode, listen_port, self.stderr_text()))
            if time.monotonic() >= deadline:
                stop_process(self.proc, signal.SIGKILL)
                fail("surgegate not accepting on port %d after %.0fs; stderr:\n%s"
                     % (listen_port, ready_timeout, self.stderr_text()))
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stderr_text(self):
        return _read_file(self.stderr_path)

    def stdout_text(self):
        return _read_file(self.stdout_path)

    def rss_kib(self):
        """Current resident set (VmRSS) in KiB."""
        return _proc_status_kib(self.proc.pid, "VmRSS")

    def hwm_kib(self):
        """Peak resident set (VmHWM) in KiB."""
        return _proc_status_kib(self.proc.pid, "VmHWM")

    def sanitized(self):
        """True when the binary runs under AddressSanitizer (RSS bounds do
        not apply: ASan's shadow memory and quarantine dominate)."""
        try:
            with open("/proc/%d/maps" % self.proc.pid) as f:
                return "libasan" in f.read()
        except OSError:
            return False

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit code or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout=15.0):
        """SIGTERM, wait up to timeout; SIGKILL and fail if it is still running.
        Returns the exit status (negative: killed by that signal)."""
        already = self.proc.poll() is not None
        rc, in_time = stop_process(self.proc, signal.SIGTERM, timeout)
        self.returncode = rc
        if not already and not in_time:
            fail("surgegate did not exit within %.0fs of SIGTERM (killed); stderr tail:\n%s"
                 % (timeout, self.stderr_text()[-3000:]))
        return rc

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        died = self.proc.poll() is not None
        rc = self.stop()
        if exc_type is None and self.check_exit:
            if died and rc != 0:
                fail("surgegate died during the test (exit %s); stderr tail:\n%s"
                     % (rc, self.stderr_text()[-3000:]))
            if rc != 0:
                fail("surgegate exited %s after SIGTERM (want 0); stderr tail:\n%s"
                     % (rc, self.stderr_text()[-3000:]))
        return False


_admin_seq = 0


def _fmt_duration(v):
    if isinstance(v, (int, float)):
        return '"%dms"' % int(v * 1000)
    return '"%s"' % v


def _backend_text(b):
    if isinstance(b, Backend):
        b = b.addr
    if isinstance(b, str):
        b = {"address": b}
    elif isinstance(b, (tuple, list)):
        b = dict(zip(("address", "weight", "maxconn"), b))
    item = ['address = "%s";' % b["address"]]
    for k in ("weight", "maxconn"):
        if b.get(k) is not None:
            item.append("%s = %d;" % (k, b[k]))
    return "{ %s }" % " ".join(item)


def pool_text(name, backends, balance="roundrobin", retries=2, maxqueue=100, max_idle=None,
              extra=""):
    """One pool group for the `pools = ( ... )` list; backends as in
    proxy_config()."""
    pool = ['name = "%s";' % name, 'balance = "%s";' % balance, "retries = %d;" % retries,
            "maxqueue = %d;" % maxqueue]
    if max_idle is not None:
        pool.append("max_idle = %d;" % max_idle)
    pool.append("backends = ( %s );" % ", ".join(_backend_text(b) for b in backends))
    if extra:
        pool.append(extra)
    return "{ %s }" % " ".join(pool)


def proxy_config(frontend_port, backends, balance="roundrobin", extra_pool="", extra_top="",
                 timeouts=None, limits=None, workers=1, maxconn=1000, retries=2,
                 maxqueue=100, max_idle=None, extra_frontend="", admin=True, routes=(),
                 more_pools=()):
    """A complete config: one frontend "fe" on 127.0.0.1:frontend_port whose
    default pool "app" holds `backends`, every timeout set.

    backends: items are "127.0.0.1:P", a Backend, (addr, weight),
    (addr, weight, maxconn) or {"address":..., "weight":..., "maxconn":...}.
    timeouts / limits: dicts overriding the defaults below (a number is
    seconds, a string is written as is, e.g. "250ms"). extra_pool, extra_top,
    extra_frontend: raw config text added inside the pool, at top level, and
    inside the frontend. routes: (host or None, path_prefix or None, pool)
    triples for the frontend; more_pools: pool_text() strings added after
    "app". admin=True puts the admin API on a private unix socket (so
    parallel tests never share /run/surgegate)."""
    global _admin_seq
    t = {"connect": "2s", "http_request": "5s", "client": "30s", "server": "30s",
         "queue": "5s", "keepalive": "30s", "upstream_idle": "30s", "grace": "10s"}
    if timeouts:
        t.update(timeouts)
    lines = ["workers = %d;" % workers,
             "timeouts = { %s };" % " ".join("%s = %s;" % (k, _fmt_duration(v))
                                            for k, v in t.items())]
    if limits:
        lines.append("limits = { %s };" % " ".join(
            "%s = %s;" % (k, v if not isinstance(v, int) or v < 2**31 else "%dL" % v)
            for k, v in limits.items()))
    if admin is True:
        _admin_seq += 1
        lines.append('admin = { listen = "unix:%s"; };' % tmp_path("admin-%d.sock" % _admin_seq))
    elif admin:
        lines.append("admin = { %s };" % admin)
    rt = ""
    if routes:
        items = []
        for host, prefix, pool in routes:
            f = []
            if host:
                f.append('host = "%s";' % host)
            if prefix:
                f.append('path_prefix = "%s";' % prefix)
            f.append('pool = "%s";' % pool)
            items.append("{ %s }" % " ".join(f))
        rt = "routes = ( %s ); " % ", ".join(items)
    lines.append('frontends = ( { name = "fe"; listen = "127.0.0.1:%d"; maxconn = %d; '
                 '%sdefault_pool = "app"; %s } );' % (frontend_port, maxconn, rt, extra_frontend))
    pools = [pool_text("app", backends, balance, retries, maxqueue, max_idle, extra_pool)]
    pools += list(more_pools)
    lines.append("pools = ( %s );" % ",\n          ".join(pools))
    if extra_top:
        lines.append(extra_top)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- clients

# sg-testbackend's /download body: byte i is PATTERN[i % 64].
PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"


def pattern_bytes(offset, n):
    """The n bytes of the /download pattern starting at offset."""
    reps = (n + 2 * len(PATTERN)) // len(PATTERN)
    start = offset % len(PATTERN)
    return (PATTERN * reps)[start:start + n]


class CIDict(dict):
    """Response headers: keys are stored lower-case and looked up
    case-insensitively; repeated headers are joined with ", "."""

    def __setitem__(self, k, v):
        dict.__setitem__(self, k.lower(), v)

    def __getitem__(self, k):
        return dict.__getitem__(self, k.lower())

    def __contains__(self, k):
        return dict.__contains__(self, k.lower())

    def get(self, k, default=None):
        return dict.get(self, k.lower(), default)


def _headers_of(msg_headers):
    h = CIDict()
    for k, v in msg_headers:
        if k in h:
            h[k] = h[k] + ", " + v
        else:
            h[k] = v
    return h


def http_request(port, method, path, body=None, host="test", headers=None, timeout=5):
    """One request on a fresh connection. Returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if host is not None and not any(k.lower() == "host" for k in hdrs):
            conn.putheader("Host", host)
        if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                        for k in hdrs):
            conn.putheader("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, _headers_of(resp.getheaders()), data
    finally:
        conn.close()


class KeepAlive:
    """A client keep-alive connection (http.client). request() returns
    (status, headers, body). It reconnects only after a response that said
    "Connection: close" (http.client's rule); any other close by the server
    between requests raises, since that is what a test wants to see."""

    def __init__(self, port, host="test", timeout=5):
        self.host = host
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        hdrs = {"Host": self.host} if self.host is not None else {}
        hdrs.update(headers or {})
        self.conn.request(method, path, body=body, headers=hdrs)
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, _headers_of(resp.getheaders()), data

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def http_get(port, path, host="test", headers=None, timeout=5):
    """GET on a fresh connection. Returns (status, headers, body bytes)."""
    return http_request(port, "GET", path, host=host, headers=headers, timeout=timeout)


def raw_exchange_full(port, data, timeout=3.0, shut_wr=False):
    """Sends raw bytes, reads until the peer closes or `timeout` seconds
    pass in total. Returns (bytes, how) with how in "closed", "reset",
    "timeout"."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = bytearray()
    how = "closed"
    deadline = time.monotonic() + timeout
    try:
        if data:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                how = "timeout"
                break
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                how = "timeout"
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not d:
                break
            out += d
    except (BrokenPipeError, ConnectionResetError):
        how = "reset"
        # read whatever arrived before the reset
    finally:
        s.close()
    return bytes(out), how


def raw_exchange(port, data, timeout=3.0):
    """Sends raw bytes and returns everything read until close or timeout."""
    return raw_exchange_full(port, data, timeout)[0]


def parse_responses(data, head_requests=()):
    """Splits raw bytes into HTTP/1.x responses.

    Returns (responses, rest): responses is a list of (status, headers, body)
    (interim 1xx responses included), rest the bytes after the last complete
    response. head_requests: indexes (among final responses) answered to HEAD
    requests, whose bodies are empty. A response without a length is read to
    the end of data."""
    res = []
    pos = 0
    final_idx = 0
    n = len(data)
    while pos < n:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        head = data[pos:end].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})(?: .*)?$", head[0])
        if not m:
            raise TestFailure("not an HTTP response at offset %d: %r" % (pos, _short(data[pos:pos + 200])))
        status = int(m.group(1))
        hdrs = CIDict()
        for line in head[1:]:
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
        p = end + 4
        if 100 <= status < 200:
            res.append((status, hdrs, b""))
            pos = p
            continue
        is_head = final_idx in head_requests
        final_idx += 1
        if is_head or status in (204, 304):
            body = b""
        elif "chunked" in hdrs.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                le = data.find(b"\r\n", p)
                if le < 0:
                    return res, data[pos:]
                size = int(data[p:le].split(b";")[0], 16)
                p = le + 2
                if size == 0:
                    te = data.find(b"\r\n\r\n", p - 2)
                    if te < 0:
                        return res, data[pos:]
                    p = te + 4
                    break
                if p + size + 2 > n:
                    return res, data[pos:]
                body += data[p:p + size]
                p += size + 2
            body = bytes(body)
        elif "content-length" in hdrs:
            cl = int(hdrs["content-length"])
            if p + cl > n:
                return res, data[pos:]
            body = data[p:p + cl]
            p += cl
        else:
            body = data[p:]
            p = n
        res.append((status, hdrs, body))
        pos = p
    return res, data[pos:]


# ---------------------------------------------------------------- runner

def run(test_main):
    """Runs test_main(), prints PASS/FAIL/SKIP, exits 0/1/77. Every process
    the harness started is stopped before exiting."""
    name = os.path.basename(sys.argv[0])
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    t0 = time.monotonic()
    rc = 1
    try:
        test_main()
        rc = 0
    except Skip as e:
        rc = 77
        print("SKIP %s: %s" % (name, e))
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        for p in _proxies:
            txt = p.stderr_text()
            if txt:
                print("--- surgegate #%d (pid %d) stderr tail ---\n%s"
                      % (_proxies.index(p) + 1, p.pid, txt[-4000:]))
    finally:
        _cleanup_all()
    if rc == 0:
        print("PASS %s (%.1fs)" % (name, time.monotonic() - t0))
    elif rc == 1:
        print("FAIL %s (%.1fs)" % (name, time.monotonic() - t0))
    sys.stdout.flush()
    _cleanup_tmp()
    os._exit(rc)
