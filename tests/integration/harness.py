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

Balancing / queueing tests (q*) also use: Backend(delay_ms=...) and
Backend.control(health=, status=, delay=, reset=) (sg-testbackend's
/__control), Backend.stats()["inflight"/"max_inflight"/"open"], the admin API
over the proxy's unix socket (admin_get/admin_post, pool_info, backend_info,
wait_backend, set_backend_state, AdminPoller; every assumption about its JSON
is in ADMIN_FIELDS), cfg_group() for config groups, and the clients load()
(many keep-alive requests from one select loop), Pending / burst()
(requests on their own connections, sent in a known order).

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
import selectors
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
    "sanitized_build",
    "log", "CIDict", "Popen", "stop_process", "KeepAlive", "PATTERN", "pattern_bytes",
    # admin API, groups, load generation (q* tests)
    "ADMIN_FIELDS", "admin_request", "admin_get", "admin_post", "admin_try_get", "pool_info",
    "backend_info", "backend_state", "set_backend_state", "wait_backend", "cfg_group",
    "Pending", "burst", "load", "LoadResult", "dead_port", "AdminPoller", "retry_after_ok",
    # the binary's own name lists (balancers, autoscale metrics, alert events)
    "sg_names",
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
    """Skips the test for a missing tool, except under CI=true, where
    packaging/install-deps --tests has installed every tool: there it fails."""
    if os.environ.get("CI") == "true":
        fail("CI=true and " + msg)
    raise Skip(msg)


def sanitized_build():
    """Why SG_BIN is a sanitizer build (ASan/UBSan, -DSG_SANITIZE=ON), or
    None: SG_SANITIZED=1 (set by tests/integration/CMakeLists.txt for such a
    build), else the sanitizer runtime's symbols in the binary (a build run
    outside ctest). valgrind cannot run such a binary."""
    if os.environ.get("SG_SANITIZED") == "1":
        return "SG_SANITIZED=1: built with -DSG_SANITIZE=ON"
    try:
        with open(SG_BIN, "rb") as f:
            data = f.read()
    except OSError:
        return None
    for sym in (b"__asan_init", b"__ubsan_handle_"):
        if sym in data:
            return "%s links %s (a sanitizer build)" % (SG_BIN, sym.decode())
    return None


def _short(v, n=600):
    if isinstance(v, (bytes, str)) and len(v) > n:
        return v[:n] + (b"..." if isinstance(v, bytes) else "...")
    return v


def sg_names(kind):
    """The names surgegate knows for `kind` ("balance", "metric" or "event"),
    in its order, from `surgegate --list-names`: the tests keep no copy of
    these lists."""
    out = subprocess.run([SG_BIN, "--list-names"], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    names = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith(kind + " ")]
    if not names:
        raise TestFailure("surgegate --list-names printed no %r names" % kind)
    return tuple(names)


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
    answers 503; log: record "METHOD URL" per request (see log_lines());
    delay_ms: answer every request (but /__stats, /__control, /healthz) after
    that many ms unless it carries its own ?delay= (see also control());
    workers=N: a fixed capacity, at most N requests in service at once (each
    for its delay), the others wait in the backend's FIFO."""

    _seq = 0

    def __init__(self, name, close_after=None, refuse_health=False, log=True, port=None,
                 drop_after=None, idle_timeout_ms=None, delay_ms=None, workers=None):
        self.name = name
        self.delay_ms = delay_ms
        self.workers = workers
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
            if self.delay_ms is not None:
                argv += ["--delay", str(int(self.delay_ms))]
            if self.workers is not None:
                argv += ["--workers", str(int(self.workers))]
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

    def traffic_lines(self):
        """log_lines(): the backend logs no health check (/healthz, or any
        request of the proxy's checker)."""
        return self.log_lines()

    def stats(self, reset=False):
        """GET /__stats: {"connections": C, "requests": R, "accepted": A,
        "open": sockets open now, "healthz": health checks (/healthz, or any
        path with the proxy checker's User-Agent; not counted in "requests"
        or "connections"), "inflight": requests being handled now, "max_inflight":
        peak since start or since the last stats(reset=True)}. reset=True
        restarts max_inflight after reading it."""
        status, _, body = http_get(self.port, "/__stats?reset=1" if reset else "/__stats",
                                   timeout=5)
        check_eq(status, 200, "backend %s /__stats status" % self.name)
        return json.loads(body)

    def requests(self):
        """Requests received, health checks not included."""
        return self.stats()["requests"]

    def control(self, **kw):
        """GET /__control with the given settings, kept until changed:
        health=N (/healthz status), status=N (status of every other request
        without its own ?status=; 0 = normal), delay=MS (default delay),
        reset=1 (back to the startup settings, applied first)."""
        q = "&".join("%s=%d" % (k, int(v)) for k, v in kw.items())
        status, _, body = http_get(self.port, "/__control?" + q, timeout=5)
        check_eq(status, 200, "backend %s /__control?%s status" % (self.name, q))

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
    status 0 within 15 s. env: the whole environment (default: the test's)."""

    _seq = 0

    def __init__(self, config_text, listen_port=None, args=(), check_exit=True,
                 ready_timeout=10.0, wrapper=(), env=None):
        Proxy._seq += 1
        self.config_path = tmp_path("surgegate-%d.conf" % Proxy._seq)
        self.stderr_path = tmp_path("surgegate-%d.stderr" % Proxy._seq)
        self.stdout_path = tmp_path("surgegate-%d.stdout" % Proxy._seq)
        self.config_text = config_text
        self.check_exit = check_exit
        # the admin API's unix socket, when the config has one (admin_get())
        m = re.search(r'admin\s*=\s*\{[^}]*listen\s*=\s*"unix:([^"]+)"', config_text)
        self.admin_path = m.group(1) if m else None
        m = re.search(r'admin\s*=\s*\{[^}]*listen\s*=\s*"127\.0\.0\.1:(\d+)"', config_text)
        self.admin_port = int(m.group(1)) if m else None
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
                          stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
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
        b = dict(zip(("address", "weight", "maxconn", "backup"), b))
    addr = b["address"]
    if isinstance(addr, Backend):
        addr = addr.addr
    item = ['address = "%s";' % addr]
    for k in ("weight", "maxconn"):
        if b.get(k) is not None:
            item.append("%s = %d;" % (k, b[k]))
    if b.get("backup"):
        item.append("backup = true;")
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
    (addr, weight, maxconn), (addr, weight, maxconn, backup) or
    {"address":..., "weight":..., "maxconn":..., "backup": True}.
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
    if os.environ.get("SG_IO_URING") == "0":
        # The plain-syscall variants of the tests (tests/integration/CMakeLists.txt).
        lines.append("io_uring = false;")
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
    "timeout". Reads while it sends: a large request whose response streams
    back (an echo) must not wait on buffers both ways."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = bytearray()
    how = "closed"
    deadline = time.monotonic() + timeout
    view = memoryview(data or b"")
    sent = 0
    try:
        s.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if view else 0))
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    how = "timeout"
                    break
                events = sel.select(left)
                done = False
                for _, mask in events:
                    if mask & selectors.EVENT_WRITE:
                        try:
                            sent += s.send(view[sent:sent + 262144])
                        except BlockingIOError:
                            pass
                        if sent >= len(view):
                            sel.modify(s, selectors.EVENT_READ)
                            if shut_wr:
                                s.shutdown(socket.SHUT_WR)
                    if mask & selectors.EVENT_READ:
                        try:
                            d = s.recv(65536)
                        except BlockingIOError:
                            continue
                        except ConnectionResetError:
                            how = "reset"
                            done = True
                            break
                        if not d:
                            done = True
                            break
                        out += d
                if done:
                    break
                if not view and shut_wr and sent == 0:
                    s.shutdown(socket.SHUT_WR)
                    shut_wr = False
        finally:
            sel.close()
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


# ---------------------------------------------------------------- config groups

def _cfg_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[ %s ]" % ", ".join(_cfg_value(x) for x in v)
    return '"%s"' % v


def cfg_group(name, **kw):
    """'name = { k = v; ... };' for extra_pool / extra_top: strings are
    quoted (durations too: "200ms"), numbers and booleans written as is.
    cfg_group("health", type="http", path="/healthz", interval="200ms")."""
    return "%s = { %s };" % (name, " ".join("%s = %s;" % (k, _cfg_value(v))
                                            for k, v in kw.items()))


def dead_port():
    """A free port with nothing listening (connections to it are refused)."""
    return free_port()


# ---------------------------------------------------------------- admin API

# Every assumption about the admin API's JSON lives here.
#   GET /api/v1/pools/{pool} ->
#     {"name","balance","queue_depth","inflight","retries_total","retries_denied",
#      "backends":[{"address","state","inflight","queue_depth","reason","weight",
#                   "maxconn","ejected",...}]}
#   POST /api/v1/pools/{pool}/backends/{address}/state {"state":"drain"|"maint"|"ready"}
# Tests use the canonical names on the left; the admin JSON's names are on
# the right (change them here if the API differs).
ADMIN_FIELDS = {
    # pool
    "pool_name": "name", "balance": "balance", "pool_queue_depth": "queue_depth",
    "pool_inflight": "inflight", "retries_total": "retries_total",
    "retries_denied": "retries_denied", "backends": "backends",
    # backend
    "address": "address", "state": "state", "inflight": "inflight",
    "queue_depth": "queue_depth", "reason": "reason", "weight": "weight",
    "maxconn": "maxconn", "ejected": "ejected",
}
ADMIN_PREFIX = "/api/v1/"
ADMIN_STATES = ("up", "down", "drain", "maint")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self._unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def _admin_url(path):
    if path.startswith("/"):
        return path
    return ADMIN_PREFIX + path


def admin_request(proxy, method, path, obj=None, timeout=5, token=None, connect_wait=3.0):
    """One admin API call over the proxy's admin listener (the unix socket
    of proxy_config(admin=True), or 127.0.0.1:P). path: "pools/app" (under
    /api/v1/) or an absolute "/metrics". Returns (status, parsed JSON, or the
    text when the body is not JSON). The proxy accepts on its frontend
    before its admin listener exists: while the proxy runs, a missing or
    refusing listener is tried again for up to connect_wait seconds. Raises
    OSError when it cannot connect."""
    deadline = time.monotonic() + connect_wait
    while True:
        if proxy.admin_path:
            conn = _UnixHTTPConnection(proxy.admin_path, timeout)
        elif proxy.admin_port:
            conn = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=timeout)
        else:
            fail("admin_request: the proxy's config has no admin listener")
        try:
            conn.connect()
            break
        except (FileNotFoundError, ConnectionRefusedError):
            conn.close()
            if time.monotonic() >= deadline or not proxy.alive():
                raise
            time.sleep(0.02)
    try:
        body = None
        headers = {"Host": "localhost"}
        if obj is not None:
            body = json.dumps(obj).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        conn.request(method, _admin_url(path), body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        try:
            parsed = json.loads(data.decode("utf-8"))
        except ValueError:
            parsed = data.decode("utf-8", "replace")
        return resp.status, parsed
    finally:
        conn.close()


def admin_get(proxy, path, timeout=5):
    """(status, JSON) of GET path; fails the test when the admin API cannot
    be reached at all (not built yet, or the proxy is gone)."""
    try:
        return admin_request(proxy, "GET", path, timeout=timeout)
    except OSError as e:
        err = e
    fail("admin API unreachable (%s) for GET %s: %s"
         % (proxy.admin_path or proxy.admin_port, _admin_url(path), err))


def admin_post(proxy, path, obj, timeout=5):
    """(status, JSON) of POST path with the JSON body obj."""
    try:
        return admin_request(proxy, "POST", path, obj, timeout=timeout)
    except OSError as e:
        err = e
    fail("admin API unreachable (%s) for POST %s: %s"
         % (proxy.admin_path or proxy.admin_port, _admin_url(path), err))


def admin_try_get(proxy, path, timeout=2):
    """(status, JSON), or None when the admin API cannot be reached (for
    polling while something else is going on)."""
    try:
        return admin_request(proxy, "GET", path, timeout=timeout, connect_wait=0)
    except (OSError, http.client.HTTPException):
        return None


def _canon(obj, keys):
    out = dict(obj)
    for canon in keys:
        actual = ADMIN_FIELDS[canon]
        if actual in obj:
            out[canon] = obj[actual]
    return out


_POOL_KEYS = ("pool_name", "balance", "pool_queue_depth", "pool_inflight", "retries_total",
              "retries_denied")
_BACKEND_KEYS = ("address", "state", "inflight", "queue_depth", "reason", "weight", "maxconn",
                 "ejected")


def pool_info(proxy, pool="app", required=()):
    """GET pools/{pool}, with canonical keys (ADMIN_FIELDS) added: the pool's
    fields plus "backends", a list of backend dicts with canonical keys.
    required: canonical pool keys that must be present (fails naming them)."""
    status, obj = admin_get(proxy, "pools/%s" % pool)
    if status != 200 or not isinstance(obj, dict):
        fail("admin GET %spools/%s: status %s, body %r"
             % (ADMIN_PREFIX, pool, status, _short(obj if isinstance(obj, str) else str(obj))))
    out = _canon(obj, _POOL_KEYS)
    bs = obj.get(ADMIN_FIELDS["backends"])
    if bs is None:
        st, bs = admin_get(proxy, "pools/%s/backends" % pool)
        if st != 200:
            fail("admin GET %spools/%s/backends: status %s" % (ADMIN_PREFIX, pool, st))
        if isinstance(bs, dict):
            bs = bs.get(ADMIN_FIELDS["backends"], [])
    if not isinstance(bs, list):
        fail("admin pool %s: 'backends' is not a list: %r" % (pool, _short(str(bs))))
    out["backends"] = [_canon(b, _BACKEND_KEYS) for b in bs]
    for k in required:
        if k not in out:
            fail("admin pool %s JSON has no %r (%r): %r"
                 % (pool, k, ADMIN_FIELDS[k], _short(json.dumps(obj))))
    return out


def backend_info(proxy, addr, pool="app"):
    """The canonical backend dict of addr (a "127.0.0.1:P" or a Backend)."""
    if isinstance(addr, Backend):
        addr = addr.addr
    info = pool_info(proxy, pool)
    for b in info["backends"]:
        if b.get("address") == addr:
            return b
    fail("admin pool %s lists no backend %s (has %s)"
         % (pool, addr, [b.get("address") for b in info["backends"]]))


def backend_state(proxy, addr, pool="app"):
    """(state, reason) of a backend in the admin API."""
    b = backend_info(proxy, addr, pool)
    return b.get("state"), b.get("reason") or ""


def set_backend_state(proxy, addr, state, pool="app"):
    """POST pools/{pool}/backends/{addr}/state {"state": state}; fails unless 2xx."""
    if isinstance(addr, Backend):
        addr = addr.addr
    st, obj = admin_post(proxy, "pools/%s/backends/%s/state" % (pool, addr), {"state": state})
    check(200 <= st < 300, "admin: setting %s to %r answered %s %r" % (addr, state, st, obj))
    return obj


def wait_backend(proxy, addr, states, timeout, pool="app", interval=0.05, what=None):
    """Polls the admin API until backend addr's state is one of `states`
    (a string or a tuple). Returns (seconds waited, canonical backend dict);
    fails with the last state seen after timeout."""
    if isinstance(states, str):
        states = (states,)
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    while True:
        last = backend_info(proxy, addr, pool)
        if last.get("state") in states:
            return time.monotonic() - t0, last
        if time.monotonic() >= deadline:
            fail("%s: backend %s not %s within %.1fs; last seen: %r"
                 % (what or "wait_backend", addr if isinstance(addr, str) else addr.addr,
                    "/".join(states), timeout, last))
        time.sleep(interval)


class AdminPoller:
    """Polls pool_info() every `interval` seconds in a thread while the
    context is open. samples: list of (monotonic time, canonical pool dict);
    errors: text of failed polls (the API missing, a bad answer)."""

    def __init__(self, proxy, pool="app", interval=0.025):
        self.proxy = proxy
        self.pool = pool
        self.interval = interval
        self.samples = []
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), pool_info(self.proxy, self.pool)))
            except (TestFailure, OSError, http.client.HTTPException) as e:
                if len(self.errors) < 5:
                    self.errors.append(str(e)[:300])
            self._stop.wait(self.interval)

    def max_of(self, key, addr=None):
        """The largest value of canonical key seen: a pool key, or a
        backend key of backend addr. None when never seen."""
        if isinstance(addr, Backend):
            addr = addr.addr
        vals = []
        for _, p in self.samples:
            if addr is None:
                v = p.get(key)
            else:
                v = next((b.get(key) for b in p["backends"] if b.get("address") == addr), None)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                vals.append(v)
        return max(vals) if vals else None

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        return False


# ---------------------------------------------------------------- concurrent clients

class Pending:
    """One request sent at once on its own connection (from the calling
    thread, so several are sent in a known order); a background thread reads
    the response. result() waits for it: (status, headers CIDict, body,
    seconds from send to the complete response); status None when the
    connection closed or failed without a complete response (error says
    why)."""

    def __init__(self, port, path, headers=None, method="GET", host="test", timeout=10.0,
                 defer=False):
        self.path = path
        self.status = None
        self.headers = CIDict()
        self.body = b""
        self.elapsed = None
        self.error = None
        self.timeout = timeout
        self._done = threading.Event()
        req = "%s %s HTTP/1.1\r\n" % (method, path)
        if host is not None:
            req += "Host: %s\r\n" % host
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        req += "Connection: close\r\n\r\n"
        self._req = req.encode("latin-1")
        self.t0 = time.monotonic()
        self.sock = None
        try:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            self._failed("connect: %s" % e)
            return
        if not defer:
            self.send()

    def _failed(self, why):
        self.error = why
        self.elapsed = time.monotonic() - self.t0
        if self.sock is not None:
            self.sock.close()
        self._done.set()

    def send(self):
        """Sends the request (done by the constructor unless defer=True:
        then the connection is open and the request waits for this call)."""
        if self._write():
            self._start()

    def _write(self):
        if self._done.is_set():
            return False
        self.t0 = time.monotonic()
        try:
            self.sock.sendall(self._req)
        except OSError as e:
            self._failed("send: %s" % e)
            return False
        return True

    def _start(self):
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        data = b""
        deadline = self.t0 + self.timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.error = "timed out after %.1fs" % self.timeout
                    break
                self.sock.settimeout(min(left, 0.5))
                try:
                    d = self.sock.recv(65536)
                except socket.timeout:
                    continue
                if d:
                    data += d
                    try:
                        res, _ = parse_responses(data)
                    except TestFailure as e:
                        self.error = str(e)
                        break
                    finals = [r for r in res if r[0] >= 200]
                    if finals and "content-length" in finals[0][1] or \
                            finals and "chunked" in finals[0][1].get("transfer-encoding", ""):
                        self._take(finals[0])
                        break
                    continue
                res, _ = parse_responses(data) if data else ([], b"")
                finals = [r for r in res if r[0] >= 200]
                if finals:
                    self._take(finals[0])
                else:
                    self.error = "closed without a response (%d bytes)" % len(data)
                break
        except OSError as e:
            self.error = "recv: %s" % e
        finally:
            self.elapsed = time.monotonic() - self.t0
            try:
                self.sock.close()
            except OSError:
                pass
            self._done.set()

    def _take(self, r):
        self.status, self.headers, self.body = r

    def done(self):
        return self._done.is_set()

    def result(self, timeout=None):
        if not self._done.wait(self.timeout + 5 if timeout is None else timeout):
            fail("request %s: no result" % self.path)
        return self.status, self.headers, self.body, self.elapsed

    @property
    def backend(self):
        return self.headers.get("X-Backend")


def retry_after_ok(headers):
    """True when a response's Retry-After is present and valid (delay
    seconds, or an HTTP date)."""
    v = (headers.get("Retry-After") or "").strip()
    return bool(re.fullmatch(r"\d{1,9}", v)) or bool(re.match(r"[A-Z][a-z]{2}, \d\d ", v))


def burst(port, paths, headers=None, timeout=10.0, gap=0.0):
    """Sends one request per path, each on its own connection, and waits for
    every answer. Without a gap, every connection is opened first and then
    the requests are written back to back (they reach the proxy together);
    with one, each is opened and sent `gap` seconds after the previous.
    Returns the list of Pending objects (same order as paths)."""
    ps = []
    for i, p in enumerate(paths):
        if gap and i:
            time.sleep(gap)
        ps.append(Pending(port, p, headers=headers, timeout=timeout, defer=not gap))
    if not gap:
        sent = [p for p in ps if p._write()]
        for p in sent:
            p._start()
    for p in ps:
        p.result()
    return ps


def wrk_failed(out):
    """(requests, failed, detail) from wrk's report: failed = non-2xx/3xx
    answers + socket errors (connect, read, write, timeout)."""
    m = re.search(r"(\d+) requests in", out)
    check(m, "no request count in wrk's output:\n%s" % out)
    total = int(m.group(1))
    errs = [0, 0, 0, 0]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs = [int(g) for g in m.groups()]
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    detail = "non-2xx %d, connect %d, read %d, write %d, timeout %d, max latency %s" % (
        non2xx, errs[0], errs[1], errs[2], errs[3], m.group(1) if m else "?")
    return total, non2xx + sum(errs), detail


class LoadResult:
    """What load() saw: statuses (dict status -> count; None for a request
    that got no response), backends (dict X-Backend -> count, 2xx only),
    errors (first few failures as text), records (per request: (thread,
    index, status, backend, start, end) in monotonic seconds), elapsed."""

    def __init__(self):
        self.statuses = {}
        self.backends = {}
        self.errors = []
        self.nerrors = 0
        self.records = []
        self.elapsed = 0.0
        self.total = 0

    def ok(self):
        return sum(n for s, n in self.statuses.items() if s is not None and 200 <= s < 300)

    def failed(self):
        return self.total - self.ok()

    def share(self, name):
        n = sum(self.backends.values())
        return self.backends.get(name, 0) / n if n else 0.0

    def __repr__(self):
        return "<LoadResult %d requests in %.1fs statuses=%s backends=%s errors=%s>" % (
            self.total, self.elapsed, self.statuses, self.backends, self.errors[:3])


_RX_CL = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)
_RX_XB = re.compile(rb"\r\nx-backend:[ \t]*([^\r]*)", re.I)
_RX_CONN_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.I)
_RX_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.I)


def load(port, total, threads=4, path="/load", path_fn=None, headers_fn=None, keepalive=True,
         timeout=10.0, max_seconds=60.0, record=False, stop=None):
    """`total` GETs over `threads` client connections kept alive (one
    request outstanding on each; a fresh connection per request with
    keepalive=False, and after any failure or "Connection: close"), driven
    from one select loop (fast: the proxy, not Python, is the bottleneck).
    path_fn(i) / headers_fn(i) give request i's path / extra headers.
    A request without a complete answer within `timeout` counts as failed
    (status None). Stops after max_seconds or when stop (a threading.Event)
    is set. Responses must carry Content-Length (sg-testbackend's do).
    Returns a LoadResult."""
    import selectors
    res = LoadResult()
    sel = selectors.DefaultSelector()
    t_start = time.monotonic()
    deadline = t_start + max_seconds
    nxt = [0]        # next request index
    state = {}       # sock -> [buf, index, t0, path]

    def request_bytes(i):
        p = path_fn(i) if path_fn else path
        h = "GET %s HTTP/1.1\r\nHost: test\r\n" % p
        for k, v in ((headers_fn(i) or {}) if headers_fn else {}).items():
            h += "%s: %s\r\n" % (k, v)
        if not keepalive:
            h += "Connection: close\r\n"
        return (h + "\r\n").encode("latin-1"), p

    def note(i, p, status, name, t0, err=None):
        res.statuses[status] = res.statuses.get(status, 0) + 1
        if status is not None and 200 <= status < 300:
            res.backends[name] = res.backends.get(name, 0) + 1
        else:
            res.nerrors += 1
            if len(res.errors) < 5:
                res.errors.append("request %d (%s): %s" % (i, p, err or "status %s" % status))
        if record:
            res.records.append((0, i, status, name, t0, time.monotonic()))

    def send_next(s):
        """Sends the next request on s (a new connection when s is None).
        Returns False when there is nothing left to send."""
        if nxt[0] >= total or time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            if s is not None:
                sel.unregister(s)
                s.close()
                state.pop(s, None)
            return False
        i = nxt[0]
        nxt[0] += 1
        data, p = request_bytes(i)
        t0 = time.monotonic()
        if s is None:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as e:
                note(i, p, None, None, t0, "connect: %s" % e)
                return send_next(None)
            sel.register(s, selectors.EVENT_READ)
            state[s] = [b"", i, t0, p]
        st = state[s]
        st[1], st[2], st[3] = i, t0, p
        try:
            s.settimeout(timeout)
            s.sendall(data)
        except OSError as e:
            drop(s, "send: %s" % e)
            return True
        return True

    def drop(s, why):
        st = state.pop(s)
        sel.unregister(s)
        s.close()
        note(st[1], st[3], None, None, st[2], why)
        send_next(None)

    for _ in range(min(threads, total)):
        send_next(None)
    while state:
        now = time.monotonic()
        if now >= deadline + timeout:
            for s in list(state):
                drop(s, "load() out of time")
            break
        for key, _ in sel.select(0.2):
            s = key.fileobj
            if s not in state:
                continue
            try:
                s.settimeout(0)
                d = s.recv(262144)
            except BlockingIOError:
                continue
            except OSError as e:
                drop(s, "recv: %s" % e)
                continue
            if not d:
                drop(s, "connection closed without a response")
                continue
            st = state[s]
            st[0] += d
            he = st[0].find(b"\r\n\r\n")
            if he < 0:
                continue
            head = st[0][:he]
            if _RX_CHUNKED.search(head):
                fail("load(): chunked response (not supported here): %r" % head[:200])
            m = _RX_CL.search(head)
            n = int(m.group(1)) if m else 0
            if len(st[0]) < he + 4 + n:
                continue
            try:
                status = int(head[9:12])
            except ValueError:
                drop(s, "bad response %r" % head[:100])
                continue
            xb = _RX_XB.search(head)
            note(st[1], st[3], status, xb.group(1).decode("latin-1") if xb else None, st[2])
            st[0] = st[0][he + 4 + n:]
            if not keepalive or _RX_CONN_CLOSE.search(head):
                state.pop(s)
                sel.unregister(s)
                s.close()
                send_next(None)
            else:
                send_next(s)
        now = time.monotonic()
        for s in list(state):
            if now - state[s][2] > timeout:
                drop(s, "no response within %.1fs" % timeout)
    sel.close()
    res.elapsed = time.monotonic() - t_start
    res.total = sum(res.statuses.values())
    res.records.sort(key=lambda r: r[4])
    return res


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


# ---------------------------------------------------------------- observability (o* tests)

def admin_raw(proxy, method, path, body=None, headers=None, token=None, timeout=5):
    """One admin API request with a raw body (bytes or str, sent as is) and
    extra headers. Returns (status, headers CIDict, parsed JSON or the text).
    Raises OSError when it cannot connect."""
    if proxy.admin_path:
        conn = _UnixHTTPConnection(proxy.admin_path, timeout)
    elif proxy.admin_port:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=timeout)
    else:
        fail("admin_raw: the proxy's config has no admin listener")
    try:
        hdrs = {"Host": "localhost"}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, _admin_url(path), body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        try:
            parsed = json.loads(data.decode("utf-8"))
        except ValueError:
            parsed = data.decode("utf-8", "replace")
        return resp.status, _headers_of(resp.getheaders()), parsed
    finally:
        conn.close()


def admin_stats(proxy, token=None):
    """GET stats (the full JSON); fails unless 200 and an object with "pools"."""
    st, obj = admin_request(proxy, "GET", "stats", token=token)
    check(st == 200 and isinstance(obj, dict) and isinstance(obj.get("pools"), list),
          "admin GET stats: status %s, body %r" % (st, _short(str(obj))))
    return obj


def stats_pool(proxy, pool="app", token=None):
    """The pool's object in GET stats (fails when it is missing)."""
    for p in admin_stats(proxy, token)["pools"]:
        if p.get("name") == pool:
            return p
    fail("admin stats: no pool %r" % pool)


def stats_backend(pool_obj, addr):
    """The backend object of addr (a "127.0.0.1:P" or a Backend) in a stats
    pool object, or None."""
    if isinstance(addr, Backend):
        addr = addr.addr
    return next((b for b in pool_obj.get("backends", []) if b.get("address") == addr), None)


_RX_PROM_SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
_RX_PROM_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def prom_parse(text):
    """Prometheus text exposition -> list of (name, labels dict, float value)
    for every sample line (comments skipped). Fails on a line it cannot read."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _RX_PROM_SAMPLE.match(line)
        if not m:
            fail("metrics line %d unreadable: %r" % (n, line))
        labels = {}
        rest = m.group(2) or ""
        pos = 0
        while pos < len(rest):
            lm = _RX_PROM_LABEL.match(rest, pos)
            if not lm:
                fail("metrics line %d: bad labels %r" % (n, line))
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        v = m.group(3)
        out.append((m.group(1), labels, float(v.replace("Inf", "inf"))))
    return out


def prom_value(samples, name, **labels):
    """The value of the one sample named name whose labels include `labels`
    (fails when there is none or more than one)."""
    hits = [v for n, l, v in samples
            if n == name and all(l.get(k) == str(x) for k, x in labels.items())]
    check(len(hits) == 1, "metrics: %d samples %s%r (want 1)" % (len(hits), name, labels))
    return hits[0]


ISO_MS_RX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def admin_events(proxy, since=None, limit=None, token=None):
    """GET events[?since=&limit=] -> the list of events (fails unless 200 + list)."""
    q = []
    if since is not None:
        q.append("since=" + since)
    if limit is not None:
        q.append("limit=%s" % limit)
    path = "events" + ("?" + "&".join(q) if q else "")
    st, obj = admin_request(proxy, "GET", path, token=token)
    check(st == 200 and isinstance(obj, list), "admin GET %s: status %s, body %r"
          % (path, st, _short(str(obj))))
    return obj


__all__ += ["admin_raw", "admin_stats", "stats_pool", "stats_backend", "prom_parse",
            "prom_value", "ISO_MS_RX", "admin_events"]


# ---------------------------------------------------------------- hooks and autoscaling (a* tests)

_HOOK_HEAD = r"""#!/bin/sh
# test hook written by harness.py: records argv, the environment it was
# started with (/proc/$$/environ: exactly what surgegate passed, nothing the
# shell adds), stdin and the start time, then runs the test's body.
d='%s'
r="$d/run.$$"
t0=$(date +%%s.%%N)
printf '%%s\000' "$0" "$@" >"$r.argv"
cat /proc/$$/environ >"$r.env"
cat >"$r.stdin"
echo "$t0" >"$r.rec.tmp" && mv "$r.rec.tmp" "$r.rec"
"""


class HookScript:
    """A /bin/sh hook in the test's temp dir that records every run (argv,
    environment, stdin, start time in wall-clock seconds) in its directory
    and then runs `body` (shell text; e.g. a printf of the output wanted,
    a sleep, an exit status). path: its absolute path (argv[0] for the
    config). runs(): the recorded runs, oldest first."""

    _seq = 0

    def __init__(self, name, body="exit 0\n"):
        HookScript._seq += 1
        self.name = name
        self.dir = tmp_path("hook-%s-%d" % (re.sub(r"[^A-Za-z0-9_.-]", "_", name),
                                            HookScript._seq))
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, "hook.sh")
        with open(self.path, "w") as f:
            f.write(_HOOK_HEAD % self.dir)
            f.write(body if body.endswith("\n") else body + "\n")
        os.chmod(self.path, 0o755)

    def runs(self):
        """[{"pid", "t" (wall seconds at start), "argv" (list), "env" (dict),
        "env_list" (the raw NAME=VALUE strings), "stdin" (text), "json"
        (stdin parsed, or None)}] of the runs recorded so far, by start time."""
        out = []
        for fn in os.listdir(self.dir):
            m = re.fullmatch(r"run\.(\d+)\.rec", fn)
            if not m:
                continue
            base = os.path.join(self.dir, "run." + m.group(1))
            try:
                t = float(_read_file(base + ".rec").strip())
            except ValueError:
                continue
            with open(base + ".argv", "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0")[:-1]]
            with open(base + ".env", "rb") as f:
                env_list = [e.decode("utf-8", "replace") for e in f.read().split(b"\0") if e]
            env = {}
            for e in env_list:
                k, _, v = e.partition("=")
                env[k] = v
            stdin = _read_file(base + ".stdin")
            try:
                js = json.loads(stdin)
            except ValueError:
                js = None
            out.append({"pid": int(m.group(1)), "t": t, "argv": argv, "env": env,
                        "env_list": env_list, "stdin": stdin, "json": js})
        out.sort(key=lambda r: r["t"])
        return out

    def wait_runs(self, n, timeout, what=None):
        """Waits until at least n runs are recorded; returns runs()."""
        wait_for(lambda: len(self.runs()) >= n, timeout=timeout, interval=0.05,
                 what=what or "%d run(s) of hook %s" % (n, self.name))
        return self.runs()


def find_events(events, type_, **fields):
    """The events of type_ whose fields equal the given values."""
    return [e for e in events if e.get("type") == type_
            and all(e.get(k) == v for k, v in fields.items())]


def wait_journal(proxy, type_, timeout=5.0, **fields):
    """Polls GET events until one of type_ with the given fields exists;
    returns the list of them."""
    return wait_for(lambda: find_events(admin_events(proxy), type_, **fields), timeout=timeout,
                    interval=0.1, what="a %s event with %r" % (type_, fields))


def hook_runs_total(proxy, pool, action, result):
    """surgegate_hook_runs_total{pool,action,result} on /metrics (0 when the
    sample is absent)."""
    st, text = admin_request(proxy, "GET", "/metrics")
    check_eq(st, 200, "GET /metrics status")
    hits = [v for n, l, v in prom_parse(text) if n == "surgegate_hook_runs_total"
            and l.get("action") == action and l.get("result") == result
            and (pool is None or l.get("pool") == pool)]
    check(len(hits) <= 1, "several surgegate_hook_runs_total samples for %s/%s/%s"
          % (pool, action, result))
    return hits[0] if hits else 0.0


class BackgroundLoad:
    """load() in a thread: `threads` keep-alive clients, each with one
    request outstanding, until stop() or max_seconds (always bounded).
    stop() returns the LoadResult."""

    def __init__(self, port, threads=8, max_seconds=30.0, path="/load", timeout=15.0,
                 keepalive=True):
        self._stop = threading.Event()
        self.result = None
        self._err = None

        def body():
            try:
                self.result = load(port, 10 ** 7, threads=threads, path=path,
                                   max_seconds=max_seconds, stop=self._stop, timeout=timeout,
                                   keepalive=keepalive)
            except BaseException as e:  # reported by stop()
                self._err = e
        self._thread = threading.Thread(target=body, daemon=True)
        self._thread.start()

    def stop(self, timeout=30.0):
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            fail("background load did not stop within %.0fs" % timeout)
        if self._err is not None:
            raise self._err
        return self.result

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)
        return False


__all__ += ["wrk_failed", "HookScript", "find_events", "wait_journal", "hook_runs_total", "BackgroundLoad"]
