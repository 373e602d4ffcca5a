"""i03: the Debian package.

Builds it with packaging/build-deb --lintian (debhelper 13; lintian must
report no error and no warning), installs it on this machine with dpkg -i
(root: CI runs as root), and checks what the README's "Installing" section
promises:
- the files where the docs say: /usr/sbin/surgegate, /usr/bin/surgectl, the
  man pages surgegate(8) and surgectl(1), /etc/surgegate/surgegate.conf and
  /etc/logrotate.d/surgegate as conffiles, the example hooks executable in
  /etc/surgegate/hooks/, the unit in /lib/systemd/system, the sysusers.d file;
- the surgegate system user exists (home /var/lib/surgegate, no login shell);
- `surgegate -t` passes on the installed /etc/surgegate/surgegate.conf, run
  as root and as the surgegate user; --version is the package's version;
- the unit is Type=notify with a watchdog and a checked ExecReload, runs as
  surgegate, and `systemd-analyze security` rates it 1.8 or better;
- logrotate accepts the rule; nothing was started (the service is neither
  enabled nor started on installation).
Then purges the package, always (even on failure), and checks that its files
are gone. It refuses to run (skip; a failure under CI) where surgegate is
installed already, from a package or a source install."""
import fcntl
import os
import re
import shutil
import subprocess
import time

from harness import *

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HOOKS = ["aws-asg", "docker-compose-scale", "gcloud-mig", "kubectl-scale", "local-spawn",
         "webhook-alert", "aws-asg-members", "gcloud-mig-members", "docker-compose-members"]
FILES = ["/usr/sbin/surgegate", "/usr/bin/surgectl", "/usr/share/man/man8/surgegate.8.gz",
         "/usr/share/man/man1/surgectl.1.gz", "/etc/surgegate/surgegate.conf",
         "/etc/logrotate.d/surgegate", "/lib/systemd/system/surgegate.service",
         "/usr/lib/sysusers.d/surgegate.conf", "/usr/share/doc/surgegate/copyright",
         "/usr/share/doc/surgegate/README.md.gz"] + ["/etc/surgegate/hooks/" + h for h in HOOKS]
CONFFILES = ["/etc/surgegate/surgegate.conf", "/etc/logrotate.d/surgegate"] + \
    ["/etc/surgegate/hooks/" + h for h in HOOKS]
POLICY = "/usr/sbin/policy-rc.d"


def sh(argv, timeout=60, check_rc=True, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if check_rc and r.returncode != 0:
        fail("%s: exit %d\n%s" % (" ".join(argv), r.returncode, r.stdout[-4000:]))
    return r


def pkg_status():
    r = sh(["dpkg-query", "-W", "-f=${db:Status-Status}", "surgegate"], check_rc=False)
    return r.stdout.strip() if r.returncode == 0 else ""


def project_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        return re.search(r"project\(surgegate VERSION ([0-9.]+)", f.read()).group(1)


def surgegate_running():
    """pids of processes running the installed binary"""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % d).startswith("/usr/sbin/surgegate"):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def checks(version):
    for f in FILES:
        check(os.path.isfile(f), "%s not installed" % f)
    for h in HOOKS:
        check(os.access("/etc/surgegate/hooks/" + h, os.X_OK), "hook %s not executable" % h)
    conff = sh(["dpkg-query", "-W", "-f=${Conffiles}", "surgegate"]).stdout
    for f in CONFFILES:
        check(re.search(r"^ %s [0-9a-f]{32}$" % re.escape(f), conff, re.M),
              "%s is not a conffile:\n%s" % (f, conff))
    # the documented layout is also cmake --install's: nothing in the old places
    check(not os.path.exists("/usr/share/surgegate/hooks"), "hooks in /usr/share/surgegate")

    pw = sh(["getent", "passwd", "surgegate"]).stdout.strip().split(":")
    check_eq(pw[5], "/var/lib/surgegate", "surgegate's home")
    check(pw[6] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"),
          "surgegate has a login shell: %s" % pw[6])
    check(int(pw[2]) < 1000, "surgegate is not a system user (uid %s)" % pw[2])
    sh(["getent", "group", "surgegate"])

    out = sh(["/usr/sbin/surgegate", "--version"]).stdout.strip()
    check_eq(out, "surgegate " + version, "installed surgegate --version")
    for who in (["/usr/sbin/surgegate"], ["runuser", "-u", "surgegate", "--",
                                          "/usr/sbin/surgegate"]):
        r = sh(who + ["-t", "-c", "/etc/surgegate/surgegate.conf"], check_rc=False)
        check_eq(r.returncode, 0, "%s -t on the installed config; output:\n%s"
                 % (" ".join(who), r.stdout))
        check("configuration file /etc/surgegate/surgegate.conf is valid" in r.stdout,
              "-t output: %s" % r.stdout[-500:])
    log("surgegate -t /etc/surgegate/surgegate.conf: valid, as root and as surgegate")
    out = sh(["/usr/bin/surgectl", "--help"], check_rc=False).stdout
    check("usage" in out.lower(), "surgectl --help: %r" % out[:300])

    with open("/lib/systemd/system/surgegate.service") as f:
        unit = f.read()
    for line in ["Type=notify", "NotifyAccess=main", "User=surgegate",
                 "ExecReload=/usr/sbin/surgegate -t -c /etc/surgegate/surgegate.conf",
                 "ExecReload=/bin/kill -HUP $MAINPID"]:
        check(re.search("^" + re.escape(line) + "$", unit, re.M), "unit lacks %r" % line)
    check(re.search(r"^WatchdogSec=\d+s$", unit, re.M), "unit has no WatchdogSec")
    if shutil.which("systemd-analyze"):
        r = sh(["systemd-analyze", "security", "--offline=yes",
                "/lib/systemd/system/surgegate.service"], check_rc=False)
        m = re.search(r"Overall exposure level for surgegate.service: ([0-9.]+)", r.stdout)
        check(m, "systemd-analyze security: %s" % r.stdout[-800:])
        check(float(m.group(1)) <= 1.8, "exposure %s (want <= 1.8)" % m.group(1))
        log("systemd-analyze security: exposure %s" % m.group(1))
        r = sh(["systemd-analyze", "verify", "--man=no", "/lib/systemd/system/surgegate.service"],
               check_rc=False)
        check_eq(r.returncode, 0, "systemd-analyze verify: %s" % r.stdout)
    else:
        skip("systemd-analyze not installed (apt-get install systemd)")
    if shutil.which("logrotate") is None:
        skip("logrotate not installed (packaging/install-deps --tests)")
    r = sh(["logrotate", "--debug", "/etc/logrotate.d/surgegate"], check_rc=False)
    check_eq(r.returncode, 0, "logrotate --debug on the rule: %s" % r.stdout[-1500:])
    check("error" not in r.stdout.lower(), "logrotate: %s" % r.stdout[-1500:])

    check_eq(surgegate_running(), [], "surgegate processes after the install")
    if os.path.isdir("/run/systemd/system"):
        r = sh(["systemctl", "is-active", "surgegate.service"], check_rc=False)
        check(r.stdout.strip() != "active", "the service was started by the install")


def main():
    if os.geteuid() != 0:
        skip("installing a package needs root")
    for tool in ("dpkg-buildpackage", "dh", "lintian"):
        if shutil.which(tool) is None:
            skip("%s not installed (packaging/install-deps --tests)" % tool)
    # one package test at a time on this machine (two build directories)
    lock = open("/tmp/surgegate-i03-deb.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    if pkg_status() not in ("", "not-installed", "config-files"):
        skip("the surgegate package is installed here already (%s): not touching it"
             % pkg_status())
    present = [f for f in FILES + ["/etc/surgegate"] if os.path.exists(f)]
    if present:
        skip("surgegate is installed here already (%s): not installing over it"
             % ", ".join(present[:4]))
    version = project_version()

    out = tmp_path("deb")
    t0 = time.monotonic()
    env = dict(os.environ, DEB_BUILD_OPTIONS="parallel=2")
    r = sh([os.path.join(SRC, "packaging", "build-deb"), "--lintian", out], timeout=540,
           check_rc=False, env=env)
    took = time.monotonic() - t0
    log("build-deb --lintian: exit %d in %.0f s; lintian's output:\n%s" % (
        r.returncode, took,
        "\n".join("    " + l for l in r.stdout.splitlines()
                  if re.match(r"^[EWIPNX]: ", l)) or "    (nothing)"))
    check_eq(r.returncode, 0, "build-deb --lintian; output:\n%s" % r.stdout[-4000:])
    check(took < 300, "the package build took %.0f s" % took)
    deb = os.path.join(out, "surgegate_%s_%s.deb" % (
        version, sh(["dpkg-architecture", "-qDEB_HOST_ARCH"]).stdout.strip()))
    check(os.path.isfile(deb), "no %s" % deb)

    # No service may start while we install (as packaging/install-deps does):
    # invoke-rc.d / deb-systemd-invoke honour a policy-rc.d exiting 101.
    # An existing policy (containers often have one) is moved aside and back.
    saved_policy = None
    if os.path.lexists(POLICY):
        saved_policy = POLICY + ".surgegate-i03"
        os.rename(POLICY, saved_policy)
    try:
        with open(POLICY, "w") as f:
            f.write("#!/bin/sh\n# written by surgegate tests/integration/i03_deb.py\nexit 101\n")
        os.chmod(POLICY, 0o755)
        r = sh(["dpkg", "-i", deb], timeout=120, check_rc=False)
        check_eq(r.returncode, 0, "dpkg -i %s:\n%s" % (deb, r.stdout[-3000:]))
        check_eq(pkg_status(), "installed", "package status after dpkg -i")
        log("dpkg -i: installed %s" % os.path.basename(deb))
        checks(version)
    finally:
        r = sh(["dpkg", "--purge", "surgegate"], timeout=120, check_rc=False)
        for p in surgegate_running():
            os.kill(p, 9)
        if saved_policy is None:
            os.unlink(POLICY)
        else:
            os.replace(saved_policy, POLICY)
    check_eq(r.returncode, 0, "dpkg --purge surgegate:\n%s" % r.stdout[-2000:])
    check(pkg_status() in ("", "not-installed"), "package still there: %s" % pkg_status())
    left = [f for f in FILES + ["/etc/surgegate"] if os.path.exists(f)]
    check_eq(left, [], "files left after dpkg --purge")
    log("dpkg --purge: every file gone (the surgegate system user stays, as Debian does)")


if __name__ == "__main__":
    run(main)
