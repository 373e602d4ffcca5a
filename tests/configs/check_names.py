#!/usr/bin/env python3
"""check_names.py SURGEGATE SOURCE_DIR: every balancer, autoscale metric and
alert event the binary knows (`surgegate --list-names`, read from its own
tables) is documented in README.md and in the commented example
config/surgegate.conf. The names come from the binary, so this test keeps
no list of its own: a name added in the C table and not documented fails
here."""
import re
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        print("usage: check_names.py SURGEGATE SOURCE_DIR", file=sys.stderr)
        return 2
    binary, src = sys.argv[1], sys.argv[2]
    out = subprocess.run([binary, "--list-names"], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    names = [line.split(" ", 1) for line in out.splitlines() if line.strip()]
    kinds = {kind for kind, _ in names}
    if kinds != {"balance", "metric", "event"}:
        print("surgegate --list-names printed kinds %s" % sorted(kinds), file=sys.stderr)
        return 1
    missing = []
    for doc in ("README.md", "config/surgegate.conf"):
        with open("%s/%s" % (src, doc), encoding="utf-8") as f:
            text = f.read()
        for kind, name in names:
            if not re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(name), text):
                missing.append("%s: %s '%s' is not documented" % (doc, kind, name))
    for m in missing:
        print(m, file=sys.stderr)
    print("%d names, %d missing from the docs" % (len(names), len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
