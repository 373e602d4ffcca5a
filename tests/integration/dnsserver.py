"""dnsserver.py - a real DNS server (Debian's dnsmasq) on 127.0.0.1 for the
discovery tests (d*), plus test backends on other loopback addresses.

    dns = DnsServer(hosts={"app.test": ["127.0.0.2"]},
                    srv=[("_http._tcp.app.test", "node.test", 8080, 0, 1)])
    dns.set_hosts({...})   # rewrites the hosts file and SIGHUPs (A/AAAA)
    dns.set_srv([...])     # SRV records live in dnsmasq's config: restarts it
                           # on the same port
    dns.stop() / dns.start()

Every record has TTL 0 (--local-ttl=0), so nothing is cached. dnsmasq is
started with --user set to the current user (no privilege drop that would
lose access to the test's private temp dir) and stopped by the harness like
every other process.
"""
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import time

from harness import (Backend, Popen, fail, free_port, log, skip, stop_process, tmp_path,
                     wait_for)

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def _query(port, name, qtype=1, timeout=0.3):
    """One UDP query; the response's rcode and answer count, or None."""
    qid = os.getpid() & 0xFFFF
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        r, _ = s.recvfrom(4096)
        return r[3] & 0xF, struct.unpack(">H", r[6:8])[0]
    except OSError:
        return None
    finally:
        s.close()


class DnsServer:
    _seq = 0

    def __init__(self, hosts=None, srv=(), port=None):
        if not os.access(DNSMASQ, os.X_OK):
            skip("dnsmasq is not installed (Debian package dnsmasq-base)")
        DnsServer._seq += 1
        self.port = port or free_port()
        self.hosts_path = tmp_path("dns-%d.hosts" % DnsServer._seq)
        self.conf_path = tmp_path("dns-%d.conf" % DnsServer._seq)
        self.log_path = tmp_path("dns-%d.log" % DnsServer._seq)
        self.proc = None
        self._write_hosts(hosts or {})
        self.srv = list(srv)
        self.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _write_hosts(self, hosts):
        tmp = self.hosts_path + ".new"
        with open(tmp, "w") as f:
            for name, ips in hosts.items():
                for ip in ips:
                    f.write("%s %s\n" % (ip, name))
        os.replace(tmp, self.hosts_path)

    def _write_conf(self):
        with open(self.conf_path, "w") as f:
            for name, target, port, prio, weight in self.srv:
                f.write("srv-host=%s,%s,%d,%d,%d\n" % (name, target, port, prio, weight))

    def start(self):
        self._write_conf()
        argv = [DNSMASQ, "--no-daemon", "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", "--no-poll", "--local=/test/",
                "--addn-hosts=%s" % self.hosts_path, "--conf-file=%s" % self.conf_path,
                "--local-ttl=0", "--pid-file", "--log-facility=%s" % self.log_path,
                "--log-queries", "--user=%s" % pwd.getpwuid(os.getuid()).pw_name,
                "--group=%s" % _group_name()]
        err = open(self.log_path + ".stderr", "ab")
        self.proc = Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        err.close()
        try:
            wait_for(lambda: self.proc.poll() is not None or _query(self.port, "ready.test")
                     is not None, timeout=5, what="dnsmasq answering on %d" % self.port)
        except Exception:
            pass
        if self.proc.poll() is not None or _query(self.port, "ready.test") is None:
            fail("dnsmasq did not start: %s" % open(self.log_path + ".stderr").read())
        log("dnsmasq on 127.0.0.1:%d" % self.port)

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def set_hosts(self, hosts):
        """New A/AAAA records; dnsmasq rereads its addn-hosts on SIGHUP."""
        self._write_hosts(hosts)
        self.proc.send_signal(signal.SIGHUP)

    def set_srv(self, srv):
        """New SRV records (name, target, port, priority, weight): restarts."""
        self.srv = list(srv)
        self.stop()
        self.start()

    def answers(self, name, qtype=1):
        r = _query(self.port, name, qtype)
        return None if r is None else r[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _group_name():
    import grp
    return grp.getgrgid(os.getgid()).gr_name


class HostBackend(Backend):
    """A test backend on another loopback address (127.0.0.N:port), for
    several A records of one name with one port."""

    def __init__(self, name, host, port, **kw):
        self.host = host
        super().__init__(name, port=port, **kw)

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)


def first_request_after(fe, name, t0, timeout=15.0, interval=0.01):
    """Sends GETs to the frontend every `interval` s until one is answered
    by backend `name` (X-Backend); returns seconds from t0 (time.monotonic()
    of the change in the source) to that response, which the new member
    served: the time from the change to its first request, give or take
    one interval and one request."""
    from harness import http_get
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st, h, _ = http_get(fe, "/first", timeout=3)
            if st == 200 and h.get("X-Backend") == name:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(interval)
    fail("backend %s got no request within %.0fs of the change" % (name, timeout))


def served_by(fe, n=12):
    """The backend names (X-Backend) answering n GETs, as a set; 503s as "503"."""
    from harness import http_get
    seen = set()
    for _ in range(n):
        st, h, _ = http_get(fe, "/who", timeout=5)
        seen.add(h.get("X-Backend") if st == 200 else str(st))
    return seen
