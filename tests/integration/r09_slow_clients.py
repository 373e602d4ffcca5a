#!/usr/bin/python3
"""r09: slow clients at 2,000 connections, with slowhttptest (Debian).

surgegate with 2 workers and the default buffers and timeouts in front of
one sg-testbackend; slowloris, slow body and slow read (tests/bench/
slowclients.py runs them, 2,000 connections each, 12 s each) while a probe
client makes a GET on a new connection every 20 ms. Asserted:

- the probe gets every answer (no failure, no timeout) during each attack,
  in under 100 ms at p99;
- RSS stays under 256 MB throughout (a slow reader costs ~64 KiB: SG_OUT_HIGH
  plus one read; 530 KB before);
- memory is given back afterwards: 10 s after the attacks, at least 90% of
  what they added to RSS is gone (malloc_trim, the I/O batch's slab), and
  RSS is at most 8 MB above RSS after normal traffic before them (what stays:
  the first page of each free chunk in the worker threads' malloc arenas,
  pinned between libevent's per-descriptor records; ~4 MB per worker after
  2,000 connections);
- the proxy is alive and still answers.

The same run against HAProxy is the benchmark's job (never judged here)."""
import os
import shutil
import sys

from harness import *

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import slowclients  # noqa: E402


def main():
    tool = shutil.which("slowhttptest")
    if tool is None:
        skip("slowhttptest not installed (packaging/install-deps --tests installs it)")
    why = sanitized_build()
    if why is not None:
        # not a missing tool (skip() fails under CI=true): nothing to install
        raise Skip("timing and memory figures are meaningless under sanitizers: " + why)
    res = slowclients.run_target("surgegate", slowclients.sg_argv(SG_BIN), SG_BACKEND, tool,
                                 conns=2000, length=12, rate=500, tmp=tmp_path("slow"))
    for a in res["attacks"]:
        check(a["ok"] == a["sent"] and a["sent"] > 100,
              "%s: probe answered %d of %d" % (a["name"], a["ok"], a["sent"]))
        check(a["p99_ms"] is not None and a["p99_ms"] < 100.0,
              "%s: probe p99 %.1f ms (want < 100)" % (a["name"], a["p99_ms"] or -1))
        check(a["peak_kib"] < 256 * 1024,
              "%s: RSS peak %.1f MB (want < 256)" % (a["name"], a["peak_kib"] / 1024.0))
    before, after = res["before_kib"], res["after_kib"]
    peak = max(a["peak_kib"] for a in res["attacks"])
    log("RSS before %.1f MB, peak %.1f MB, after %.1f MB" % (before / 1024.0, peak / 1024.0,
                                                             after / 1024.0))
    check(after - before <= 0.1 * (peak - before) and after <= before + 8 * 1024,
          "RSS after the attacks %.1f MB, before %.1f MB, peak %.1f MB (want at least 90%% of "
          "what the attacks took given back, and at most 8 MB more than before)"
          % (after / 1024.0, before / 1024.0, peak / 1024.0))
    check(res["alive"], "surgegate still running after the attacks")
    log("PASS")


if __name__ == "__main__":
    run(main)
