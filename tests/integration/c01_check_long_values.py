#!/usr/bin/python3
"""c01: `surgegate -t` on a configuration with 5 MB bad values (issue 15).

Every problem is still reported (FILE:LINE: error: ...), exit status 1, but
each quoted value is cut to its first 64 bytes, "..." and its length, so a
line stays short (< 512 bytes) and the whole output small (< 8 KiB); before,
every message repeated the 5 MB value. Values of the length a person
writes are quoted whole.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import SG_BIN, check, check_eq, log, run, tmp_path  # noqa: E402

BIG = 5 * 1024 * 1024


def main():
    big = "b" * BIG
    conf = tmp_path("c01-long.conf")
    text = "\n".join([
        'timeouts = { connect = "%s"; };' % ("9" * BIG),                       # line 1
        'frontends = ( { name = "web"; listen = "127.0.0.1:%s"; default_pool = "app"; } );'
        % ("8" * BIG),                                                          # line 2
        'pools = ( { name = "app"; balance = "%s";' % big,                      # line 3
        '  backends = ( { address = "%s:80"; } ); } );' % ("1" * BIG),          # line 4
        'alerts = { events = [ "%s" ]; hook = [ "/bin/true" ]; };' % big,       # line 5
        'access_log = { path = "relative/%s"; };' % big,                        # line 6
        'admin = { listen = "unix:/tmp/x.sock"; };',
        'pools_typo = "%s";' % ("short value"),                                 # line 8
    ]) + "\n"
    with open(conf, "w") as f:
        f.write(text)
    p = subprocess.run([SG_BIN, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    lines = out.splitlines()
    log("surgegate -t: exit %d, %d bytes, %d lines" % (p.returncode, len(out), len(lines)))
    for ln in lines:
        log("  " + (ln if len(ln) < 300 else ln[:300] + "[... %d bytes]" % len(ln)))
    check_eq(p.returncode, 1, "surgegate -t exit status")
    errs = [ln for ln in lines if ": error: " in ln]
    for n in (1, 2, 3, 4, 5, 6, 8):
        check(any(ln.startswith("%s:%d: error: " % (conf, n)) for ln in errs),
              "an error reported for line %d" % n)
    check(len(out) < 8192, "whole output under 8 KiB (got %d bytes)" % len(out))
    for ln in lines:
        check(len(ln) < 512 + len(conf), "a line under 512 bytes (got %d)" % len(ln))
    check("...(%d bytes)" % BIG in out, "a cut value ends in '...(%d bytes)'" % BIG)
    check("b" * 64 + "...(%d bytes)" % BIG in out, "a cut value keeps its first 64 bytes")
    check("pools_typo" in out, "a short key name is quoted whole")


run(main)
