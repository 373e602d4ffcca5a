#!/usr/bin/env python3
"""The example hooks of hooks/ against stub CLIs (Python 3 stdlib only).

    test_hooks.py stubs       every hook with stub aws, kubectl, gcloud, docker,
                              curl and surgegate first on PATH: the exact argv
                              (and stdin) each CLI got, argument and environment
                              checks (exit 2), local-spawn up 0->2 and down 2->1
                              with stub demo backends that really answer HTTP
                              the scale hooks' CLI output kept off stdout
    test_hooks.py pairs       each cloud scale hook with its member listing
                              (aws-asg-members, gcloud-mig-members,
                              docker-compose-members) against fakecloud.py's
                              stub CLIs, whose instances appear after a delay:
                              the listing before and after, scale-down, failed
                              calls, bad arguments
    test_hooks.py shellcheck  `shellcheck -s sh` on every hook (77: skipped when
                              shellcheck is missing)

Each stub call is recorded as one JSON file (argv, stdin, pid). Hooks run as
surgegate runs them: an argv array, a minimal environment (the fixed hook PATH,
with the stub directory put first, and SURGEGATE_*), a JSON document on stdin.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakecloud  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOKS_DIR = os.path.join(ROOT, "hooks")
HOOKS = ["aws-asg", "kubectl-scale", "gcloud-mig", "docker-compose-scale", "webhook-alert",
         "local-spawn", "aws-asg-members", "gcloud-mig-members", "docker-compose-members"]
FIXED_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLIS = ["aws", "kubectl", "gcloud", "docker", "curl"]

# A CLI stub: records its argv and stdin, then prints STUB_STDOUT and exits
# with STUB_EXIT (both optional).
CLI_STUB = r'''#!{python}
import json, os, sys, time
data = sys.stdin.buffer.read()
rec = {{"name": os.path.basename(sys.argv[0]), "argv": sys.argv[1:],
       "stdin": data.decode("utf-8", "replace"), "pid": os.getpid()}}
path = os.path.join(os.environ["STUB_LOG_DIR"], "%d-%d.json" % (time.time_ns(), os.getpid()))
with open(path + ".tmp", "w") as f:
    json.dump(rec, f)
os.rename(path + ".tmp", path)
sys.stdout.write(os.environ.get("STUB_STDOUT", ""))
sys.exit(int(os.environ.get("STUB_EXIT", "0")))
'''

# A surgegate stub: records its argv; with --demo-backend HOST:PORT it behaves
# like the real one: first line "listening on HOST:PORT" on stdout, then
# serves HTTP (200 "demo PORT") until SIGTERM.
SURGEGATE_STUB = r'''#!{python}
import http.server, json, os, sys, time
rec = {{"name": "surgegate", "argv": sys.argv[1:], "stdin": "", "pid": os.getpid()}}
path = os.path.join(os.environ["STUB_LOG_DIR"], "%d-%d.json" % (time.time_ns(), os.getpid()))
with open(path + ".tmp", "w") as f:
    json.dump(rec, f)
os.rename(path + ".tmp", path)
# every stub backend, for the test's final cleanup whatever happened
with open(os.path.join(os.environ["STUB_PID_DIR"], str(os.getpid())), "w"):
    pass
if len(sys.argv) != 3 or sys.argv[1] != "--demo-backend":
    sys.stderr.write("stub surgegate: usage: surgegate --demo-backend HOST:PORT\n")
    sys.exit(2)
host, port = sys.argv[2].rsplit(":", 1)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("demo %d\n" % self.server.server_address[1]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

srv = http.server.HTTPServer((host, int(port)), H)
print("listening on %s:%d" % (host, srv.server_address[1]), flush=True)
srv.serve_forever()
'''

FAILURES = []


class Env:
    """A stub directory, a log directory for the stubs' records, a scratch dir."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="sg-hooks-")
        self.bin = os.path.join(self.tmp, "bin")
        self.log = os.path.join(self.tmp, "log")
        self.pids = os.path.join(self.tmp, "pids")
        os.mkdir(self.bin)
        os.mkdir(self.log)
        os.mkdir(self.pids)
        for name in CLIS:
            self._stub(name, CLI_STUB)
        self._stub("surgegate", SURGEGATE_STUB)

    def _stub(self, name, text):
        path = os.path.join(self.bin, name)
        with open(path, "w") as f:
            f.write(text.format(python=sys.executable))
        os.chmod(path, 0o755)

    def reset(self):
        for f in os.listdir(self.log):
            os.unlink(os.path.join(self.log, f))

    def calls(self):
        recs = []
        for f in sorted(glob.glob(os.path.join(self.log, "*.json"))):
            with open(f) as fh:
                recs.append(json.load(fh))
        return recs

    def run(self, hook, args, action="scale_up", current=2, desired=5, pool="app",
            stdin=None, extra=None, drop=(), timeout=30):
        """Runs hooks/HOOK like surgegate does; returns (rc, stdout, stderr)."""
        self.reset()
        env = {
            "PATH": self.bin + ":" + FIXED_PATH,
            "SURGEGATE_POOL": pool,
            "SURGEGATE_ACTION": action,
            "SURGEGATE_CURRENT": str(current),
            "SURGEGATE_DESIRED": str(desired),
            "SURGEGATE_REASON": "queue_depth 14.2 > 10 for 30s",
            "STUB_LOG_DIR": self.log,
            "STUB_PID_DIR": self.pids,
        }
        if action == "alert":
            env["SURGEGATE_EVENT"] = "backend_down"
        env.update(extra or {})
        for k in drop:
            env.pop(k, None)
        if stdin is None:
            stdin = json.dumps({"pool": pool, "action": action, "current": current,
                                "desired": desired,
                                "reason": env["SURGEGATE_REASON"],
                                "snapshot": {"backends": [{"address": "10.0.0.1:80",
                                                            "inflight": 12}],
                                             "queue_depth": 14}})
        p = subprocess.run([os.path.join(HOOKS_DIR, hook)] + list(args), env=env,
                           input=stdin.encode(), capture_output=True, timeout=timeout,
                           cwd=self.tmp)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def close(self):
        """Kills every stub backend still running, removes the files."""
        for name in os.listdir(self.pids):
            try:
                os.kill(int(name), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_call(env, hook, args, want, **kw):
    """The hook calls exactly one CLI with exactly argv `want`, exits 0."""
    rc, out, err = env.run(hook, args, **kw)
    check(rc == 0, "%s %s: exit %d (stderr %r)" % (hook, args, rc, err))
    calls = env.calls()
    check(len(calls) == 1, "%s %s: %d CLI calls, want 1: %r" % (hook, args, len(calls), calls))
    got = [calls[0]["name"]] + calls[0]["argv"]
    check(got == want, "%s %s:\n  got  %r\n  want %r" % (hook, args, got, want))
    return calls[0], out, err


def expect_bad(env, hook, args, words, **kw):
    """Exit 2, a message naming the hook and containing `words`, no CLI call."""
    rc, out, err = env.run(hook, args, **kw)
    check(rc == 2, "%s %r: exit %d, want 2 (stderr %r)" % (hook, args, rc, err))
    check(err.startswith(hook + ": ") and words in err,
          "%s %r: stderr %r lacks %r" % (hook, args, err, words))
    check(out == "", "%s %r: stdout %r, want nothing" % (hook, args, out))
    check(env.calls() == [], "%s %r: a CLI was called: %r" % (hook, args, env.calls()))


def expect_nothing(env, hook, args, **kw):
    """Exit 0, no output, no CLI call (e.g. an alert to a scale hook)."""
    rc, out, err = env.run(hook, args, **kw)
    check(rc == 0 and out == "", "%s %r: exit %d, stdout %r" % (hook, args, rc, out))
    check(env.calls() == [], "%s %r: a CLI was called: %r" % (hook, args, env.calls()))


def bad_env_cases(env, hook, args):
    expect_bad(env, hook, args, "SURGEGATE_DESIRED", drop=("SURGEGATE_DESIRED",))
    expect_bad(env, hook, args, "SURGEGATE_DESIRED", desired="-1")
    expect_bad(env, hook, args, "SURGEGATE_DESIRED", desired="3; reboot")
    expect_bad(env, hook, args, "SURGEGATE_DESIRED", desired="12345678")
    expect_bad(env, hook, args, "SURGEGATE_ACTION", action="scale_sideways")
    expect_bad(env, hook, args, "SURGEGATE_ACTION", drop=("SURGEGATE_ACTION",))
    expect_nothing(env, hook, args, action="alert")


# ------------------------------------------------------------------ hooks


def t_aws_asg(env):
    base = ["aws", "autoscaling", "set-desired-capacity", "--auto-scaling-group-name"]
    expect_call(env, "aws-asg", ["web-asg"], base + ["web-asg", "--desired-capacity", "5"])
    expect_call(env, "aws-asg", ["web-asg", "eu-west-1"],
                base + ["web-asg", "--desired-capacity", "5", "--region", "eu-west-1"])
    expect_call(env, "aws-asg", ["my_group.v2", "us-gov-west-1"],
                base + ["my_group.v2", "--desired-capacity", "1", "--region", "us-gov-west-1"],
                action="scale_down", current=3, desired=1)
    expect_call(env, "aws-asg", ["web-asg"], base + ["web-asg", "--desired-capacity", "0"],
                action="scale_down", current=1, desired=0)
    # the CLI's failure is the hook's
    rc, _, _ = env.run("aws-asg", ["web-asg"], extra={"STUB_EXIT": "254"})
    check(rc == 254, "aws-asg: exit %d, want the CLI's 254" % rc)
    expect_bad(env, "aws-asg", [], "usage")
    expect_bad(env, "aws-asg", ["a", "eu-west-1", "c"], "usage")
    expect_bad(env, "aws-asg", [""], "bad Auto Scaling group name")
    expect_bad(env, "aws-asg", ["--region"], "bad Auto Scaling group name")
    expect_bad(env, "aws-asg", ["web asg"], "bad Auto Scaling group name")
    expect_bad(env, "aws-asg", ["a" * 256], "longer than 255")
    expect_bad(env, "aws-asg", ["web-asg", "EU-WEST-1"], "bad region")
    expect_bad(env, "aws-asg", ["web-asg", "eu-west"], "bad region")
    expect_bad(env, "aws-asg", ["web-asg", ""], "bad region")
    bad_env_cases(env, "aws-asg", ["web-asg"])


def t_kubectl_scale(env):
    expect_call(env, "kubectl-scale", ["web"],
                ["kubectl", "scale", "deployment/web", "--replicas=5"])
    expect_call(env, "kubectl-scale", ["api.v2", "prod"],
                ["kubectl", "scale", "deployment/api.v2", "--replicas=2", "-n", "prod"],
                action="scale_down", current=4, desired=2)
    expect_bad(env, "kubectl-scale", [], "usage")
    expect_bad(env, "kubectl-scale", ["web", "prod", "x"], "usage")
    expect_bad(env, "kubectl-scale", ["Web"], "bad deployment name")
    expect_bad(env, "kubectl-scale", ["-web"], "bad deployment name")
    expect_bad(env, "kubectl-scale", ["web/x"], "bad deployment name")
    expect_bad(env, "kubectl-scale", ["web", "prod.eu"], "bad namespace")
    expect_bad(env, "kubectl-scale", ["web", "x" * 64], "namespace longer")
    bad_env_cases(env, "kubectl-scale", ["web"])


def t_gcloud_mig(env):
    expect_call(env, "gcloud-mig", ["web-mig", "us-central1-a"],
                ["gcloud", "compute", "instance-groups", "managed", "resize", "web-mig",
                 "--size=5", "--zone=us-central1-a", "--quiet"])
    expect_call(env, "gcloud-mig", ["m1", "northamerica-northeast1-b"],
                ["gcloud", "compute", "instance-groups", "managed", "resize", "m1",
                 "--size=1", "--zone=northamerica-northeast1-b", "--quiet"],
                action="scale_down", current=2, desired=1)
    expect_bad(env, "gcloud-mig", ["web-mig"], "usage")
    expect_bad(env, "gcloud-mig", ["web-mig", "us-central1-a", "x"], "usage")
    expect_bad(env, "gcloud-mig", ["1web", "us-central1-a"], "bad instance group name")
    expect_bad(env, "gcloud-mig", ["web-", "us-central1-a"], "bad instance group name")
    expect_bad(env, "gcloud-mig", ["web-mig", "us-central1"], "bad zone")
    expect_bad(env, "gcloud-mig", ["web-mig", "--zone=x"], "bad zone")
    bad_env_cases(env, "gcloud-mig", ["web-mig", "us-central1-a"])


def t_docker_compose_scale(env):
    compose = os.path.join(env.tmp, "compose.yaml")
    with open(compose, "w") as f:
        f.write("services:\n  web:\n    image: nginx\n")
    expect_call(env, "docker-compose-scale", ["web"],
                ["docker", "compose", "up", "-d", "--no-recreate", "--scale", "web=5", "web"])
    expect_call(env, "docker-compose-scale", ["web_1", compose],
                ["docker", "compose", "-f", compose, "up", "-d", "--no-recreate", "--scale",
                 "web_1=3", "web_1"], action="scale_down", current=5, desired=3)
    expect_bad(env, "docker-compose-scale", [], "usage")
    expect_bad(env, "docker-compose-scale", ["web", compose, "x"], "usage")
    expect_bad(env, "docker-compose-scale", ["-web"], "bad service name")
    expect_bad(env, "docker-compose-scale", ["web=3"], "bad service name")
    expect_bad(env, "docker-compose-scale", ["web", compose + ".missing"], "does not exist")
    expect_bad(env, "docker-compose-scale", ["web", env.tmp], "not a regular file")
    bad_env_cases(env, "docker-compose-scale", ["web"])


def t_webhook_alert(env):
    url = "https://hooks.example/services/T0/B0/xyz?token=a&b=c"
    doc = json.dumps({"pool": "app", "action": "alert", "event": "backend_down",
                      "backend": "10.0.0.2:80", "reason": "3 failed checks"})
    call, out, err = expect_call(
        env, "webhook-alert", [url],
        ["curl", "-fsS", "--max-time", "10", "-X", "POST", "-H",
         "Content-Type: application/json", "--data-binary", "@-", url],
        action="alert", stdin=doc, extra={"STUB_STDOUT": "ok"})
    check(call["stdin"] == doc, "webhook-alert: curl got stdin %r, want %r" % (call["stdin"], doc))
    # the webhook's reply must not be taken for hook output
    check(out == "", "webhook-alert: stdout %r, want nothing" % out)
    check("ok" in err, "webhook-alert: the reply %r should be on stderr" % err)
    # scale decisions too (same argv, the decision JSON posted)
    call, _, _ = expect_call(
        env, "webhook-alert", ["http://127.0.0.1:9/x"],
        ["curl", "-fsS", "--max-time", "10", "-X", "POST", "-H",
         "Content-Type: application/json", "--data-binary", "@-", "http://127.0.0.1:9/x"])
    check(json.loads(call["stdin"])["desired"] == 5, "webhook-alert: decision not posted")
    rc, _, _ = env.run("webhook-alert", [url], action="alert", extra={"STUB_EXIT": "22"})
    check(rc == 22, "webhook-alert: exit %d, want curl's 22" % rc)
    expect_bad(env, "webhook-alert", [], "usage", action="alert")
    expect_bad(env, "webhook-alert", [url, url], "usage", action="alert")
    expect_bad(env, "webhook-alert", ["ftp://x/y"], "bad URL", action="alert")
    expect_bad(env, "webhook-alert", ["hooks.example/x"], "bad URL", action="alert")
    expect_bad(env, "webhook-alert", ["https://"], "bad URL", action="alert")
    expect_bad(env, "webhook-alert", ["https://x/a b"], "bad URL", action="alert")
    expect_bad(env, "webhook-alert", ["https://x/a\nb"], "bad URL", action="alert")


def http_get(addr, timeout=2.0):
    with urllib.request.urlopen("http://%s/" % addr, timeout=timeout) as r:
        return r.status, r.read().decode()


def answers(addr):
    try:
        return http_get(addr, timeout=1.0)[0] == 200
    except (OSError, urllib.error.URLError):
        return False


def t_local_spawn(env):
    state = os.path.join(env.tmp, "state")
    pids = set()
    try:
        # nothing to do
        expect_nothing(env, "local-spawn", [state], action="alert")
        expect_nothing(env, "local-spawn", [state], current=2, desired=2)
        expect_nothing(env, "local-spawn", [state], action="scale_down", current=1, desired=3)

        # up 0 -> 2
        t0 = time.monotonic()
        rc, out, err = env.run("local-spawn", [state], current=0, desired=2)
        check(rc == 0, "local-spawn up: exit %d, stderr %r" % (rc, err))
        check(time.monotonic() - t0 < 10, "local-spawn up took %.1fs" % (time.monotonic() - t0))
        for c in env.calls():
            pids.add(c["pid"])
            check(c["argv"] == ["--demo-backend", "127.0.0.1:0"],
                  "local-spawn: surgegate called with %r" % c["argv"])
        check(len(env.calls()) == 2, "local-spawn up: %d backends started" % len(env.calls()))
        check(out.endswith("\n") and out.count("\n") == 1, "local-spawn up: stdout %r" % out)
        doc = json.loads(out)
        check(list(doc) == ["add"] and len(doc["add"]) == 2, "local-spawn up: %r" % doc)
        addrs = []
        for a in doc["add"]:
            check(set(a) == {"address", "weight"} and a["weight"] == 1, "entry %r" % a)
            check(a["address"].startswith("127.0.0.1:"), "address %r" % a["address"])
            addrs.append(a["address"])
        check(len(set(addrs)) == 2, "local-spawn up: addresses %r" % addrs)
        for a in addrs:
            status, body = http_get(a)
            check(status == 200 and body == "demo %s\n" % a.split(":")[1],
                  "backend %s answered %d %r" % (a, status, body))
        # detached: in a session of their own, not the hook's process group
        for pid in pids:
            check(os.getsid(pid) == pid, "backend %d is not in its own session" % pid)

        # down 2 -> 1: the newest goes
        rc, out, err = env.run("local-spawn", [state], action="scale_down", current=2,
                               desired=1)
        check(rc == 0, "local-spawn down: exit %d, stderr %r" % (rc, err))
        doc = json.loads(out)
        check(doc == {"remove": [addrs[1]]}, "local-spawn down: %r, want remove %s" %
              (doc, addrs[1]))
        deadline = time.monotonic() + 5
        while answers(addrs[1]) and time.monotonic() < deadline:
            time.sleep(0.1)
        check(not answers(addrs[1]), "the removed backend %s still answers" % addrs[1])
        check(answers(addrs[0]), "the remaining backend %s stopped answering" % addrs[0])
        check(env.calls() == [], "local-spawn down started something: %r" % env.calls())

        # up 1 -> 2 again with the pool's maxconn (issue 17): one more, a new
        # address, the originals' maxconn
        rc, out, err = env.run("local-spawn", [state], current=1, desired=2,
                               extra={"SURGEGATE_BACKEND_MAXCONN": "008"})
        check(rc == 0, "local-spawn up again: exit %d, stderr %r" % (rc, err))
        pids.update(c["pid"] for c in env.calls())
        entry = json.loads(out)["add"][0]
        check(entry.get("maxconn") == 8 and entry["weight"] == 1,
              "local-spawn with SURGEGATE_BACKEND_MAXCONN=008: entry %r" % entry)
        third = entry["address"]
        check(answers(third), "new backend %s does not answer" % third)
        rc, out, err = env.run("local-spawn", [state], current=2, desired=3,
                               extra={"SURGEGATE_BACKEND_MAXCONN": "x"})
        check(rc == 2 and out == "" and "SURGEGATE_BACKEND_MAXCONN" in err,
              "local-spawn with a bad SURGEGATE_BACKEND_MAXCONN: %d %r %r" % (rc, out, err))
        # down 2 -> 1 with the older one down (issue 17): SURGEGATE_REMOVE_FIRST
        # names it, so it goes before the newest
        rc, out, err = env.run("local-spawn", [state], action="scale_down", current=2,
                               desired=1,
                               extra={"SURGEGATE_REMOVE_FIRST": "10.9.9.9:1 %s" % addrs[0]})
        check(rc == 0, "local-spawn down, remove first: exit %d, stderr %r" % (rc, err))
        check(json.loads(out) == {"remove": [addrs[0]]},
              "local-spawn down with SURGEGATE_REMOVE_FIRST=%s: %r" % (addrs[0], out))
        check(answers(third), "the newest backend %s was stopped instead" % third)
        rc, out, err = env.run("local-spawn", [state], action="scale_down", current=1,
                               desired=0)
        check(rc == 0, "local-spawn down to 0: exit %d, stderr %r" % (rc, err))
        check(json.loads(out) == {"remove": [third]},
              "local-spawn down to 0: %r" % out)
        # asking for more than it started: removes nothing, says so, exit 0
        rc, out, err = env.run("local-spawn", [state], action="scale_down", current=1,
                               desired=0)
        check(rc == 0 and out == "" and "found 0" in err,
              "local-spawn down with none left: %d %r %r" % (rc, out, err))

        # a backend that never prints its line: stopped, no add, exit 1
        rc, out, err = env.run("local-spawn", [state], current=0, desired=1,
                               extra={"SURGEGATE_BIN": "/bin/sleep"}, timeout=30)
        check(rc == 1 and out == "" and "did not print" in err,
              "local-spawn with a silent backend: %d %r %r" % (rc, out, err))

        # default state dir from the pool name; bad arguments
        expect_bad(env, "local-spawn", ["relative/dir"], "absolute", current=0, desired=1)
        expect_bad(env, "local-spawn", [state, "x"], "usage")
        expect_bad(env, "local-spawn", [], "SURGEGATE_POOL", pool="../etc")
        expect_bad(env, "local-spawn", [state], "SURGEGATE_CURRENT", current="x")
        expect_bad(env, "local-spawn", [state], "SURGEGATE_DESIRED", drop=("SURGEGATE_DESIRED",))
        expect_bad(env, "local-spawn", [state], "SURGEGATE_ACTION", drop=("SURGEGATE_ACTION",))
        # a state dir that is not ours to use
        os.symlink(state, state + ".link")
        rc, out, err = env.run("local-spawn", [state + ".link"], current=0, desired=1)
        check(rc == 1 and "symbolic link" in err, "symlinked state dir: %d %r" % (rc, err))
        os.mkdir(state + ".open")
        os.chmod(state + ".open", 0o777)
        rc, out, err = env.run("local-spawn", [state + ".open"], current=0, desired=1)
        check(rc == 1 and "not writable by others" in err,
              "world-writable state dir: %d %r" % (rc, err))
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def t_local_spawn_pipes(env):
    """Started backends must not hold the hook's stdout/stderr: surgegate waits
    for EOF on them. Run through a pipe reader that times out."""
    state = os.path.join(env.tmp, "state2")
    pids = []
    try:
        t0 = time.monotonic()
        rc, out, err = env.run("local-spawn", [state], current=0, desired=1, timeout=15)
        pids = [c["pid"] for c in env.calls()]
        check(rc == 0, "local-spawn: exit %d %r" % (rc, err))
        check(time.monotonic() - t0 < 8, "the hook's pipes stayed open (%.1fs)" %
              (time.monotonic() - t0))
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def t_files(env):
    for h in HOOKS:
        path = os.path.join(HOOKS_DIR, h)
        check(os.access(path, os.X_OK), "%s is not executable" % h)
        with open(path) as f:
            check(f.readline() == "#!/bin/sh\n", "%s does not start with #!/bin/sh" % h)


def t_cli_stdout_to_stderr(env):
    """What a CLI prints on stdout must not reach the hook's stdout (surgegate
    parses it as {"add","remove"}): it goes to stderr."""
    compose = os.path.join(env.tmp, "compose2.yaml")
    with open(compose, "w") as f:
        f.write("services:\n  web:\n    image: nginx\n")
    for hook, args in (("aws-asg", ["web-asg"]), ("kubectl-scale", ["web", "prod"]),
                       ("gcloud-mig", ["web-mig", "us-central1-a"]),
                       ("docker-compose-scale", ["web", compose])):
        said = "deployment.apps/web scaled\nNAME SIZE\n"
        rc, out, err = env.run(hook, args, extra={"STUB_STDOUT": said})
        check(rc == 0 and out == "", "%s: exit %d, stdout %r (want nothing)" % (hook, rc, out))
        check(said in err, "%s: the CLI's output %r is not on stderr %r" % (hook, said, err))


# ------------------------------------------------------- scale hook + member listing


def run_hook(cloud, argv, action="discover", desired=None, extra=None, drop=()):
    """Runs hooks/argv[0] as surgegate runs a discovery command (or, with
    desired, a scale hook), the fake cloud's stub CLI first on PATH."""
    env = {"PATH": cloud.bin + ":" + FIXED_PATH, "HOME": cloud.sdir, "LANG": "C.UTF-8",
           "SURGEGATE_POOL": "app", "SURGEGATE_ACTION": action}
    if desired is not None:
        env.update(SURGEGATE_CURRENT="1", SURGEGATE_DESIRED=str(desired),
                   SURGEGATE_REASON="queue_depth 14 > 10 for 2s")
    env.update(extra or {})
    for k in drop:
        env.pop(k, None)
    p = subprocess.run([os.path.join(HOOKS_DIR, argv[0])] + list(argv[1:]), env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                       cwd=cloud.sdir)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def members_of(cloud, argv):
    """The listing's members as a sorted list of addresses (exit 0, one JSON
    array of {"address"} on one line, nothing on stderr)."""
    rc, out, err = run_hook(cloud, argv)
    check(rc == 0, "%s: exit %d, stderr %r" % (argv[0], rc, err))
    check(out.endswith("\n") and out.count("\n") == 1, "%s: stdout %r" % (argv[0], out))
    doc = json.loads(out)
    check(isinstance(doc, list) and all(isinstance(m, dict) and list(m) == ["address"]
                                        for m in doc), "%s: output %r" % (argv[0], out))
    return sorted(m["address"] for m in doc)


def wait_members(cloud, argv, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = members_of(cloud, argv)
        if got == sorted(want):
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError("%s: members %r, want %r" % (argv[0], got, sorted(want)))


def pair_cycle(cloud, scale, listing, addr):
    """One instance at start; the scale hook asks for 3: nothing new is listed
    while they boot (delay), then all 3; down to 1: the newest go."""
    check_eq = lambda got, want, what: check(got == want, "%s: %r, want %r" % (what, got, want))
    check_eq(members_of(cloud, listing), [addr(1)], "%s at start" % listing[0])
    cloud.clear_calls()
    t0 = time.monotonic()
    rc, out, err = run_hook(cloud, scale, action="scale_up", desired=3)
    check(rc == 0 and out == "", "%s up: exit %d, stdout %r, stderr %r" % (scale[0], rc, out, err))
    time.sleep(0.2)
    check_eq(members_of(cloud, listing), [addr(1)], "%s while booting" % listing[0])
    t1 = wait_members(cloud, listing, [addr(1), addr(2), addr(3)])
    check(t1 - t0 >= cloud.delay, "listed after %.2fs, before the boot delay" % (t1 - t0))
    rc, out, err = run_hook(cloud, scale, action="scale_down", desired=1)
    check(rc == 0 and out == "", "%s down: exit %d, stdout %r" % (scale[0], rc, out))
    wait_members(cloud, listing, [addr(1)])
    check(cloud.error is None, "fake cloud: %s" % cloud.error)


def listing_fails(cloud, listing, words):
    """A failing CLI: exit 1, nothing on stdout (the pool keeps its members),
    the CLI's message and the listing's own on stderr."""
    cloud.fail("Unable to locate credentials. You can configure credentials by running "
               "\"aws configure\".", 253)
    rc, out, err = run_hook(cloud, listing)
    check(rc == 1 and out == "", "%s with a failing CLI: exit %d, stdout %r" %
          (listing[0], rc, out))
    check("Unable to locate credentials" in err and err.count(listing[0] + ": ") == 1 and
          words in err, "%s: stderr %r" % (listing[0], err))
    cloud.set(fail=None)


def pair_env(cloud, listing):
    """The listing needs jq and its CLI: 127 with a message when missing."""
    rc, out, err = run_hook(cloud, listing, extra={"PATH": cloud.sdir})
    check(rc == 127 and out == "" and "not on PATH" in err,
          "%s without its CLIs: %d %r %r" % (listing[0], rc, out, err))


def expect_bad_listing(cloud, argv, words):
    cloud.clear_calls()
    rc, out, err = run_hook(cloud, argv)
    check(rc == 2 and out == "" and err.startswith(argv[0] + ": ") and words in err,
          "%r: exit %d, stdout %r, stderr %r (want 2, %r)" % (argv, rc, out, err, words))
    check(cloud.calls() == [], "%r: the CLI was called" % argv)


def t_aws_pair(tmp):
    cloud = fakecloud.FakeCloud("aws", os.path.join(tmp, "aws"), "web-asg", delay=0.6,
                                initial=1)
    try:
        listing = ["aws-asg-members", "web-asg", "8080", "eu-west-1"]
        pair_cycle(cloud, ["aws-asg", "web-asg", "eu-west-1"], listing,
                   lambda i: "10.0.0.%d:8080" % (10 + i))
        calls = [[c["name"]] + c["argv"] for c in cloud.calls()]
        check(["aws", "autoscaling", "set-desired-capacity", "--auto-scaling-group-name",
               "web-asg", "--desired-capacity", "3", "--region", "eu-west-1"] in calls,
              "aws calls %r" % calls)
        check(["aws", "autoscaling", "describe-auto-scaling-groups",
               "--auto-scaling-group-names", "web-asg", "--region", "eu-west-1",
               "--output", "json"] in calls, "aws calls %r" % calls)
        check(any(c[:4] == ["aws", "ec2", "describe-instances", "--instance-ids"] and
                  c[-4:] == ["--region", "eu-west-1", "--output", "json"] for c in calls),
              "aws calls %r" % calls)
        # no region: the CLI's default; an unhealthy instance is left out
        cloud.clear_calls()
        check(members_of(cloud, listing[:3]) == ["10.0.0.11:8080"], "without a region")
        check(all("--region" not in c["argv"] for c in cloud.calls()), "region passed")
        with fakecloud._Locked(cloud.sdir) as s:
            s["instances"][0]["health"] = "Unhealthy"
        check(members_of(cloud, listing) == [], "an Unhealthy instance was listed")
        # a group that does not exist: a failed lookup, not an empty set
        rc, out, err = run_hook(cloud, ["aws-asg-members", "other-asg", "8080"])
        check(rc == 1 and out == "" and "no Auto Scaling group named 'other-asg'" in err,
              "unknown group: %d %r %r" % (rc, out, err))
        listing_fails(cloud, listing, "describe-auto-scaling-groups failed (exit 253)")
        pair_env(cloud, listing)
        expect_bad_listing(cloud, ["aws-asg-members", "web-asg"], "usage")
        expect_bad_listing(cloud, ["aws-asg-members", "web-asg", "8080", "eu-west-1", "x"],
                           "usage")
        expect_bad_listing(cloud, ["aws-asg-members", "-web", "8080"], "bad Auto Scaling group")
        for port in ("0", "65536", "080", "http", "", "999999"):
            expect_bad_listing(cloud, ["aws-asg-members", "web-asg", port], "bad port")
        expect_bad_listing(cloud, ["aws-asg-members", "web-asg", "8080", "EU"], "bad region")
    finally:
        cloud.close()


def t_gcloud_pair(tmp):
    cloud = fakecloud.FakeCloud("gcloud", os.path.join(tmp, "gcloud"), "web-mig", delay=0.6,
                                initial=1, zone="us-central1-a")
    try:
        listing = ["gcloud-mig-members", "web-mig", "us-central1-a", "8080"]
        pair_cycle(cloud, ["gcloud-mig", "web-mig", "us-central1-a"], listing,
                   lambda i: "10.0.0.%d:8080" % (10 + i))
        calls = [[c["name"]] + c["argv"] for c in cloud.calls()]
        check(["gcloud", "compute", "instance-groups", "managed", "list-instances", "web-mig",
               "--zone=us-central1-a", "--format=json"] in calls, "gcloud calls %r" % calls)
        check(["gcloud", "compute", "instances", "list", "--zones=us-central1-a",
               "--format=json"] in calls, "gcloud calls %r" % calls)
        # the zone's other instances (the stub lists a "bastion") are not members
        check("10.9.9.9:8080" not in members_of(cloud, listing), "another instance listed")
        rc, out, err = run_hook(cloud, ["gcloud-mig-members", "web-mig", "europe-west4-b",
                                        "8080"])
        check(rc == 1 and out == "" and "list-instances failed" in err and "not found" in err,
              "unknown group: %d %r %r" % (rc, out, err))
        listing_fails(cloud, listing, "list-instances failed (exit 253)")
        pair_env(cloud, listing)
        expect_bad_listing(cloud, ["gcloud-mig-members", "web-mig", "us-central1-a"], "usage")
        expect_bad_listing(cloud, ["gcloud-mig-members", "Web", "us-central1-a", "8080"],
                           "bad instance group")
        expect_bad_listing(cloud, ["gcloud-mig-members", "web-mig", "us-central1", "8080"],
                           "bad zone")
        expect_bad_listing(cloud, ["gcloud-mig-members", "web-mig", "us-central1-a", "0"],
                           "bad port")
    finally:
        cloud.close()


def t_docker_pair(tmp):
    ports = {}

    def start(i):
        ports[i] = 32767 + i
        return {"ip": "127.0.0.1", "port": ports[i]}

    cloud = fakecloud.FakeCloud("docker", os.path.join(tmp, "docker"), "web", delay=0.6,
                                initial=1, start=start)
    compose = os.path.join(tmp, "compose.yaml")
    with open(compose, "w") as f:
        f.write("services:\n  web:\n    ports: [ \"127.0.0.1:32768-32790:8080\" ]\n")
    try:
        listing = ["docker-compose-members", "web", "8080", compose]
        pair_cycle(cloud, ["docker-compose-scale", "web", compose], listing,
                   lambda i: "127.0.0.1:%d" % (32767 + i))
        calls = [[c["name"]] + c["argv"] for c in cloud.calls()]
        check(["docker", "compose", "-f", compose, "ps", "--format", "json", "--status",
               "running", "web"] in calls, "docker calls %r" % calls)
        # Compose before 2.21 prints one array
        cloud.set(ps_array=True)
        check(members_of(cloud, listing) == ["127.0.0.1:32768"], "array output")
        # published on all addresses: reached on loopback; another container
        # port only: left out, named on stderr
        with fakecloud._Locked(cloud.sdir) as s:
            s["instances"][0]["url"] = "0.0.0.0"
        check(members_of(cloud, listing) == ["127.0.0.1:32768"], "0.0.0.0")
        with fakecloud._Locked(cloud.sdir) as s:
            s["instances"][0]["url"] = "::"
        check(members_of(cloud, listing) == ["[::1]:32768"], "::")
        rc, out, err = run_hook(cloud, ["docker-compose-members", "web", "9000", compose])
        check(rc == 0 and json.loads(out) == [] and "app-web-1 publishes no host port for "
              "9000/tcp" in err, "a port not published: %d %r %r" % (rc, out, err))
        listing_fails(cloud, listing, "docker compose ps failed (exit 253)")
        pair_env(cloud, listing)
        expect_bad_listing(cloud, ["docker-compose-members", "web"], "usage")
        expect_bad_listing(cloud, ["docker-compose-members", "-web", "8080"], "bad service")
        expect_bad_listing(cloud, ["docker-compose-members", "web", "8080", compose + ".x"],
                           "does not exist")
        expect_bad_listing(cloud, ["docker-compose-members", "web", "80a"], "bad port")
    finally:
        cloud.close()


def pairs():
    tmp = tempfile.mkdtemp(prefix="sg-pairs-")
    tests = [t_aws_pair, t_gcloud_pair, t_docker_pair]
    try:
        for t in tests:
            try:
                t(tmp)
                print("ok   %s" % t.__name__)
            except Exception:
                FAILURES.append(t.__name__)
                print("FAIL %s" % t.__name__)
                traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d failed: %s" % (len(FAILURES), " ".join(FAILURES)))
        return 1
    print("all %d passed" % len(tests))
    return 0


def stubs():
    env = Env()
    tests = [t_files, t_aws_asg, t_kubectl_scale, t_gcloud_mig, t_docker_compose_scale,
             t_webhook_alert, t_local_spawn, t_local_spawn_pipes, t_cli_stdout_to_stderr]
    try:
        for t in tests:
            try:
                t(env)
                print("ok   %s" % t.__name__)
            except Exception:
                FAILURES.append(t.__name__)
                print("FAIL %s" % t.__name__)
                traceback.print_exc()
    finally:
        env.close()
    if FAILURES:
        print("%d failed: %s" % (len(FAILURES), " ".join(FAILURES)))
        return 1
    print("all %d passed" % len(tests))
    return 0


def shellcheck():
    sc = shutil.which("shellcheck")
    if sc is None:
        if os.environ.get("CI") == "true":
            print("FAIL: CI=true and shellcheck is not installed (packaging/install-deps --tests)")
            return 1
        print("shellcheck is not installed: skipped (apt-get install shellcheck)")
        return 77
    files = [os.path.join(HOOKS_DIR, h) for h in sorted(os.listdir(HOOKS_DIR))
             if not h.endswith(".md")]
    check(sorted(os.path.basename(f) for f in files) == sorted(HOOKS),
          "hooks/ holds %r" % files)
    p = subprocess.run([sc, "-s", "sh"] + files)
    print("shellcheck -s sh: %s" % ("clean" if p.returncode == 0 else "problems above"))
    return 0 if p.returncode == 0 else 1


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "stubs"
    if mode == "stubs":
        sys.exit(stubs())
    if mode == "pairs":
        sys.exit(pairs())
    if mode == "shellcheck":
        sys.exit(shellcheck())
    sys.exit("usage: test_hooks.py [stubs|pairs|shellcheck]")
