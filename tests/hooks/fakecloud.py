"""fakecloud.py - a stand-in for a cloud's control plane, and stub `aws`,
`gcloud`, `kubectl` and `docker` CLIs that talk to it (Python 3 stdlib).

The stubs answer the calls the example hooks and member listings of hooks/
make, with the JSON shapes and exit statuses of the real CLIs; they keep the
group's state in a file. A controller thread in the test process plays the
platform: when the desired count goes up it starts instances (the test's
`start` callback: a real backend, or only an address), which are "pending"
for `delay` seconds and then in service; when it goes down the newest
instances are terminated (`stop`). `on_change` is called with the in-service
instances after every change (e.g. to rewrite DNS records).

    cloud = FakeCloud("aws", dir, group="web-asg", delay=1.0,
                      start=lambda i: {"ip": "10.0.0.%d" % (10 + i), "port": 8080})
    env PATH=cloud.bin:...   # the stub CLIs
    cloud.calls()            # every stub call: {"name", "argv", "t"}
    cloud.members()          # ["IP:PORT"] of the in-service instances
    cloud.close()

Kinds and what the stubs answer:
  aws     autoscaling set-desired-capacity / describe-auto-scaling-groups,
          ec2 describe-instances (LifecycleState Pending -> InService ->
          Terminating; State.Name pending -> running -> shutting-down)
  gcloud  compute instance-groups managed resize / list-instances,
          compute instances list (instanceStatus STAGING -> RUNNING -> STOPPING,
          currentAction CREATING -> NONE -> DELETING)
  kubectl scale deployment/NAME --replicas=N [-n NS] (pods: on_change)
  docker  compose [-f FILE] up -d --no-recreate --scale S=N S,
          compose [-f FILE] ps --format json [--status running] [S]
          (State running, Health starting -> healthy; one JSON object a line,
          or one array with ps_array=True, as Compose before 2.21 printed)

`cloud.fail(message, code)` makes every following stub call print the
message on stderr and exit with code (credentials gone, API down).
"""
import fcntl
import json
import os
import sys
import threading
import time

MODDIR = os.path.dirname(os.path.abspath(__file__))

STUB = r'''#!{python}
import sys
sys.path.insert(0, {moddir!r})
import fakecloud
sys.exit(fakecloud.cli_main({state!r}))
'''

CLI_OF = {"aws": "aws", "gcloud": "gcloud", "kubectl": "kubectl", "docker": "docker"}


class _Locked:
    """The state file under an exclusive lock: read, then written back."""

    def __init__(self, sdir, write=True):
        self.sdir = sdir
        self.write = write

    def __enter__(self):
        self.lock = open(os.path.join(self.sdir, "lock"), "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        with open(os.path.join(self.sdir, "state.json")) as f:
            self.st = json.load(f)
        return self.st

    def __exit__(self, exc_type, *rest):
        if self.write and exc_type is None:
            path = os.path.join(self.sdir, "state.json")
            with open(path + ".tmp", "w") as f:
                json.dump(self.st, f)
            os.replace(path + ".tmp", path)
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


class FakeCloud:
    def __init__(self, kind, sdir, group, delay=1.0, start=None, stop=None, on_change=None,
                 initial=0, max_size=10, zone="us-central1-a", region="eu-west-1",
                 namespace="prod", service_port=8080, ps_array=False, tick=0.05):
        if kind not in CLI_OF:
            raise ValueError("kind %r" % kind)
        self.kind = kind
        self.sdir = sdir
        self.bin = os.path.join(sdir, "bin")
        self.delay = delay
        self._start = start or (lambda i: {"ip": "10.0.0.%d" % (10 + i), "port": service_port})
        self._stop = stop or (lambda inst, handle: None)
        self.on_change = on_change
        self.handles = {}
        os.makedirs(os.path.join(sdir, "log"), exist_ok=True)
        os.makedirs(self.bin, exist_ok=True)
        st = {"kind": kind, "group": group, "desired": 0, "max_size": max_size, "zone": zone,
              "region": region, "namespace": namespace, "instances": [], "seq": 0,
              "fail": None, "ps_array": ps_array, "project": "demo-project"}
        with open(os.path.join(sdir, "state.json"), "w") as f:
            json.dump(st, f)
        open(os.path.join(sdir, "lock"), "w").close()
        path = os.path.join(self.bin, CLI_OF[kind])
        with open(path, "w") as f:
            f.write(STUB.format(python=sys.executable, moddir=MODDIR, state=sdir))
        os.chmod(path, 0o755)
        self.changes = []   # (monotonic time, [in-service members])
        self._ready = None
        self._quit = threading.Event()
        self.error = None
        if initial:
            with _Locked(self.sdir) as s:
                s["desired"] = initial
            self._step(now=time.time() - 2 * delay - 1)   # start them ...
            self._step(now=time.time() + 2 * delay + 1)   # ... and make them ready
        self._thread = threading.Thread(target=self._run, args=(tick,), daemon=True)
        self._thread.start()

    # -- the platform
    def _run(self, tick):
        while not self._quit.wait(tick):
            try:
                self._step()
            except Exception as e:   # seen by the test through .error
                self.error = repr(e)

    def _step(self, now=None):
        now = time.time() if now is None else now
        started, stopped = [], []
        with _Locked(self.sdir) as s:
            live = [i for i in s["instances"] if i["status"] != "terminating"]
            while len(live) < s["desired"]:
                s["seq"] += 1
                n = s["seq"]
                inst = {"n": n, "status": "pending", "created": now, "ready_at": now + self.delay}
                s["instances"].append(inst)
                live.append(inst)
                started.append(inst)
            for inst in sorted(live, key=lambda i: -i["n"])[:max(0, len(live) - s["desired"])]:
                inst["status"] = "terminating"
                inst["gone_at"] = now + 0.3
                stopped.append(inst)
            for inst in s["instances"]:
                if inst["status"] == "pending" and now >= inst["ready_at"]:
                    inst["status"] = "ready"
            s["instances"] = [i for i in s["instances"]
                              if not (i["status"] == "terminating" and now >= i["gone_at"])]
            for inst in started:
                got = self._start(inst["n"])
                inst["ip"], inst["port"] = got["ip"], got["port"]
                self.handles[inst["n"]] = got.get("handle")
            ready = sorted("%s:%d" % (i["ip"], i["port"]) for i in s["instances"]
                           if i["status"] == "ready")
        for inst in stopped:
            self._stop(inst, self.handles.pop(inst["n"], None))
        if ready != self._ready:
            self._ready = ready
            self.changes.append((time.monotonic(), ready))
            if self.on_change is not None:
                self.on_change(ready)

    def members(self):
        return list(self._ready or [])

    def state(self):
        with _Locked(self.sdir, write=False) as s:
            return s

    def set(self, **kw):
        with _Locked(self.sdir) as s:
            s.update(kw)

    def fail(self, message, code):
        self.set(fail={"message": message, "code": code})

    def calls(self):
        out = []
        d = os.path.join(self.sdir, "log")
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".json"):
                with open(os.path.join(d, fn)) as f:
                    out.append(json.load(f))
        return out

    def clear_calls(self):
        d = os.path.join(self.sdir, "log")
        for fn in os.listdir(d):
            os.unlink(os.path.join(d, fn))

    def close(self):
        self._quit.set()
        self._thread.join(5)
        for n, h in list(self.handles.items()):
            self._stop({"n": n}, h)
        self.handles.clear()


# ---------------------------------------------------------------- the stubs


class _Usage(Exception):
    pass


def _opts(args, flags=(), multi=()):
    """Positional arguments and --name value / --name=value / -n value options."""
    pos, opt = [], {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-"):
            if "=" in a:
                k, v = a.split("=", 1)
                opt.setdefault(k, []).append(v)
            elif a in flags:
                opt.setdefault(a, []).append(True)
            else:
                if i + 1 >= len(args):
                    raise _Usage("argument %s: expected one argument" % a)
                vals = []
                i += 1
                # aws takes several values after one option (--instance-ids a b)
                while i < len(args) and not args[i].startswith("-"):
                    vals.append(args[i])
                    i += 1
                    if a not in multi:
                        break
                opt.setdefault(a, []).extend(vals)
                continue
        else:
            pos.append(a)
        i += 1
    return pos, opt


def _one(opt, k):
    v = opt.get(k)
    if not v or len(v) != 1:
        raise _Usage("%s needs exactly one value" % k)
    return v[0]


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"


def _aws(s, args):
    if args[:2] == ["autoscaling", "set-desired-capacity"]:
        _, opt = _opts(args[2:], flags=("--honor-cooldown", "--no-honor-cooldown"))
        g = _one(opt, "--auto-scaling-group-name")
        n = _one(opt, "--desired-capacity")
        if g != s["group"]:
            return 254, "", ("\nAn error occurred (ValidationError) when calling the "
                             "SetDesiredCapacity operation: AutoScalingGroup name not found - "
                             "null\n")
        if not n.isdigit():
            return 252, "", "\nargument --desired-capacity: invalid int value: '%s'\n" % n
        if int(n) > s["max_size"]:
            return 254, "", ("\nAn error occurred (ValidationError) when calling the "
                             "SetDesiredCapacity operation: New SetDesiredCapacity value %s is "
                             "above max value %d for the AutoScalingGroup.\n"
                             % (n, s["max_size"]))
        s["desired"] = int(n)
        return 0, "", ""
    if args[:2] == ["autoscaling", "describe-auto-scaling-groups"]:
        _, opt = _opts(args[2:], multi=("--auto-scaling-group-names",))
        names = opt.get("--auto-scaling-group-names", [])
        groups = []
        if not names or s["group"] in names:
            life = {"pending": "Pending", "ready": "InService", "terminating": "Terminating"}
            groups.append({
                "AutoScalingGroupName": s["group"],
                "AutoScalingGroupARN": "arn:aws:autoscaling:%s:123456789012:autoScalingGroup:"
                                       "x:autoScalingGroupName/%s" % (s["region"], s["group"]),
                "MinSize": 0, "MaxSize": s["max_size"], "DesiredCapacity": s["desired"],
                "DefaultCooldown": 300, "AvailabilityZones": [s["region"] + "a"],
                "HealthCheckType": "EC2", "HealthCheckGracePeriod": 300,
                "Instances": [{"InstanceId": "i-%017x" % i["n"], "InstanceType": "t3.micro",
                               "AvailabilityZone": s["region"] + "a",
                               "LifecycleState": life[i["status"]],
                               "HealthStatus": i.get("health", "Healthy"),
                               "LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0",
                                                  "LaunchTemplateName": "web",
                                                  "Version": "1"},
                               "ProtectedFromScaleIn": False}
                              for i in s["instances"]],
                "CreatedTime": "2026-01-01T00:00:00.000Z", "Tags": []})
        return 0, json.dumps({"AutoScalingGroups": groups}, indent=4) + "\n", ""
    if args[:2] == ["ec2", "describe-instances"]:
        _, opt = _opts(args[2:], multi=("--instance-ids",))
        ids = opt.get("--instance-ids", [])
        by_id = {"i-%017x" % i["n"]: i for i in s["instances"]}
        bad = [x for x in ids if x not in by_id]
        if bad:
            return 254, "", ("\nAn error occurred (InvalidInstanceID.NotFound) when calling the "
                             "DescribeInstances operation: The instance ID '%s' does not exist\n"
                             % bad[0])
        state = {"pending": "pending", "ready": "running", "terminating": "shutting-down"}
        insts = []
        for x in (ids or sorted(by_id)):
            i = by_id[x]
            insts.append({"InstanceId": x, "ImageId": "ami-0123456789abcdef0",
                          "InstanceType": "t3.micro", "LaunchTime": _iso(i["created"]),
                          "PrivateIpAddress": i["ip"],
                          "PrivateDnsName": "ip-%s.ec2.internal" % i["ip"].replace(".", "-"),
                          "State": {"Code": 16, "Name": state[i["status"]]},
                          "NetworkInterfaces": [{"PrivateIpAddress": i["ip"]}]})
        res = [{"ReservationId": "r-%017x" % (k + 1), "OwnerId": "123456789012",
                "Instances": [inst]} for k, inst in enumerate(insts)]
        return 0, json.dumps({"Reservations": res}, indent=4) + "\n", ""
    return 252, "", "\nusage: aws [options] <command> <subcommand> [parameters]\naws: error: " \
                    "argument operation: Invalid choice: %r\n" % " ".join(args[:2])


def _gcloud(s, args):
    base = "https://www.googleapis.com/compute/v1/projects/%s/zones/%s" % (s["project"], s["zone"])

    def name(i):
        return "%s-%04x" % (s["group"], i["n"])

    def zone_ok(z):
        return z == s["zone"]

    if args[:4] == ["compute", "instance-groups", "managed", "resize"]:
        pos, opt = _opts(args[4:], flags=("--quiet",))
        if len(pos) != 1:
            raise _Usage("resize: one NAME")
        size = _one(opt, "--size")
        if pos[0] != s["group"] or not zone_ok(_one(opt, "--zone")):
            return 1, "", ("ERROR: (gcloud.compute.instance-groups.managed.resize) Could not "
                           "fetch resource:\n - The resource 'projects/%s/zones/%s/"
                           "instanceGroupManagers/%s' was not found\n\n"
                           % (s["project"], _one(opt, "--zone"), pos[0]))
        s["desired"] = int(size)
        out = ("NAME     LOCATION       SCOPE  BASE_INSTANCE_NAME  SIZE  TARGET_SIZE  "
               "INSTANCE_TEMPLATE  AUTOSCALED\n%s  %s  zone   %s  %d  %s  web-tmpl  no\n"
               % (s["group"], s["zone"], s["group"], len(s["instances"]), size))
        return 0, out, "Updated [%s/instanceGroupManagers/%s].\n" % (base, s["group"])
    if args[:4] == ["compute", "instance-groups", "managed", "list-instances"]:
        pos, opt = _opts(args[4:])
        if _one(opt, "--format") != "json":
            raise _Usage("the stub prints --format=json only")
        if pos != [s["group"]] or not zone_ok(_one(opt, "--zone")):
            return 1, "", ("ERROR: (gcloud.compute.instance-groups.managed.list-instances) "
                           "HTTPError 404: The resource 'projects/%s/zones/%s/"
                           "instanceGroupManagers/%s' was not found\n"
                           % (s["project"], _one(opt, "--zone"), pos[0] if pos else ""))
        st = {"pending": "STAGING", "ready": "RUNNING", "terminating": "STOPPING"}
        act = {"pending": "CREATING", "ready": "NONE", "terminating": "DELETING"}
        out = [{"currentAction": act[i["status"]],
                "id": str(1000000 + i["n"]),
                "instance": "%s/instances/%s" % (base, name(i)),
                "instanceStatus": st[i["status"]],
                "name": name(i),
                "version": {"instanceTemplate": "https://www.googleapis.com/compute/v1/"
                                                "projects/%s/global/instanceTemplates/web-tmpl"
                                                % s["project"]}}
               for i in s["instances"]]
        return 0, json.dumps(out, indent=2) + "\n", ""
    if args[:3] == ["compute", "instances", "list"]:
        _, opt = _opts(args[3:])
        if _one(opt, "--format") != "json":
            raise _Usage("the stub prints --format=json only")
        zones = opt.get("--zones", [s["zone"]])
        st = {"pending": "STAGING", "ready": "RUNNING", "terminating": "STOPPING"}
        out = []
        if any(z == s["zone"] for zs in zones for z in zs.split(",")):
            # an instance of another group in the same zone, never a member
            out.append({"name": "bastion", "selfLink": "%s/instances/bastion" % base,
                        "status": "RUNNING", "zone": base,
                        "networkInterfaces": [{"name": "nic0", "networkIP": "10.9.9.9"}]})
            for i in s["instances"]:
                out.append({"name": name(i), "selfLink": "%s/instances/%s" % (base, name(i)),
                            "status": st[i["status"]], "zone": base,
                            "id": str(1000000 + i["n"]),
                            "networkInterfaces": [{"name": "nic0", "networkIP": i["ip"],
                                                   "network": "https://www.googleapis.com/"
                                                   "compute/v1/projects/%s/global/networks/"
                                                   "default" % s["project"]}]})
        return 0, json.dumps(out, indent=2) + "\n", ""
    return 2, "", "ERROR: (gcloud) Invalid choice: %r.\n" % " ".join(args[:4])


def _kubectl(s, args):
    if args[:1] == ["scale"]:
        pos, opt = _opts(args[1:])
        reps = _one(opt, "--replicas")
        ns = (opt.get("-n") or opt.get("--namespace") or ["default"])[0]
        if len(pos) != 1 or not pos[0].startswith("deployment/"):
            return 1, "", "error: resource(s) were provided, but no name was specified\n"
        dep = pos[0].split("/", 1)[1]
        if dep != s["group"] or ns != s["namespace"]:
            return 1, "", ('Error from server (NotFound): deployments.apps "%s" not found\n'
                           % dep)
        s["desired"] = int(reps)
        return 0, "deployment.apps/%s scaled\n" % dep, ""
    return 1, "", 'error: unknown command "%s" for "kubectl"\n' % (args[0] if args else "")


def _docker(s, args):
    if args[:1] != ["compose"]:
        return 125, "", "docker: unknown command: docker %s\n" % " ".join(args[:1])
    rest = args[1:]
    if rest[:1] == ["-f"]:
        rest = rest[2:]
    svc = s["group"]
    project = "app"
    if rest[:1] == ["up"]:
        pos, opt = _opts(rest[1:], flags=("-d", "--no-recreate"))
        scale = _one(opt, "--scale")
        k, _, n = scale.partition("=")
        if k != svc or pos != [svc]:
            return 1, "", "no such service: %s\n" % k
        s["desired"] = int(n)
        err = "".join(" Container %s-%s-%d  Running\n" % (project, svc, i["n"])
                      for i in s["instances"])
        return 0, "", err
    if rest[:1] == ["ps"]:
        pos, opt = _opts(rest[1:])
        if _one(opt, "--format") != "json":
            raise _Usage("the stub prints --format json only")
        if pos and pos != [svc]:
            return 1, "", "no such service: %s\n" % pos[0]
        status = opt.get("--status", [])
        rows = []
        for i in s["instances"]:
            if i["status"] == "terminating":
                continue   # removed at once, as `compose up --scale` does
            health = "healthy" if i["status"] == "ready" else "starting"
            rows.append({"Command": "\"sg-testbackend\"", "CreatedAt": _iso(i["created"]),
                         "ExitCode": 0, "Health": health,
                         "ID": "%012x" % (0xC0FFEE000 + i["n"]),
                         "Image": "app-web", "Labels": "com.docker.compose.service=%s" % svc,
                         "Name": "%s-%s-%d" % (project, svc, i["n"]), "Project": project,
                         "Publishers": [{"URL": i.get("url", "127.0.0.1"), "TargetPort": 8080,
                                         "PublishedPort": i["port"], "Protocol": "tcp"},
                                        {"URL": "", "TargetPort": 9100, "PublishedPort": 0,
                                         "Protocol": "tcp"}],
                         "Service": svc, "State": "running",
                         "Status": "Up 2 seconds (%s)" % health})
        if status and "running" not in status:
            rows = []
        if s["ps_array"]:
            return 0, json.dumps(rows) + "\n", ""
        return 0, "".join(json.dumps(r) + "\n" for r in rows), ""
    return 1, "", "unknown docker compose command: %s\n" % " ".join(rest[:1])


def cli_main(sdir):
    name = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    rec = {"name": name, "argv": args, "t": time.time(), "pid": os.getpid()}
    path = os.path.join(sdir, "log", "%d-%d.json" % (time.time_ns(), os.getpid()))
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f)
    os.replace(path + ".tmp", path)
    try:
        with _Locked(sdir) as s:
            if s["fail"]:
                code, out, err = s["fail"]["code"], "", s["fail"]["message"] + "\n"
            else:
                code, out, err = {"aws": _aws, "gcloud": _gcloud, "kubectl": _kubectl,
                                  "docker": _docker}[name](s, args)
    except _Usage as e:
        code, out, err = 2, "", "%s: error: %s\n" % (name, e)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code
