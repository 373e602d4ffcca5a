#!/usr/bin/env python3
"""check_includes.py: the source tree by #include has floors, not knots.

Every file belongs to a module: x.c, x.h and x-internal.h are module x;
x-t.h (types only) is module "x-t", a floor below the functions. An arrow
A -> B is drawn when a file of A includes a header of B. The check fails
(exit 1) when:
  - modules include each other in a circle (a strongly connected group of
    two or more), printed with the files that draw each arrow;
  - a types header (x-t.h) includes a function header (y.h).
Sources: include/surgegate/, src/ and src/ctl/.
Usage: check_includes.py [SOURCE_DIR]   (default: the repository root)
"""
import collections
import glob
import os
import re
import sys

INCLUDE = re.compile(r'^#include "(?:surgegate/)?([^"]+)"', re.M)


def module(path):
    base = os.path.basename(path)
    if base.endswith("-t.h"):
        return base[:-4] + "-t"
    return re.sub(r"(-internal)?\.(h|c)$", "", base)


def knots(graph):
    """Strongly connected groups of two or more (Tarjan, iterative)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    out.append(sorted(group))
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    files = sorted(glob.glob(os.path.join(root, "include/surgegate/*.h")) +
                   glob.glob(os.path.join(root, "src/*.c")) +
                   glob.glob(os.path.join(root, "src/*.h")) +
                   glob.glob(os.path.join(root, "src/ctl/*.[ch]")))
    if not files:
        print("check_includes: no sources under %s" % root)
        return 1
    graph = collections.defaultdict(set)
    why = collections.defaultdict(list)
    bad = 0
    for f in files:
        m = module(f)
        graph[m]
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        for inc in INCLUDE.findall(text):
            d = module(inc)
            if f.endswith("-t.h") and not inc.endswith("-t.h"):
                print("types header %s includes the function header %s" % (
                    os.path.relpath(f, root), inc))
                bad += 1
            if d != m:
                graph[m].add(d)
                graph[d]
                why[(m, d)].append(os.path.relpath(f, root))
    for group in knots(graph):
        bad += 1
        print("modules that include each other in a circle: " + " ".join(group))
        for a in group:
            for b in sorted(graph[a] & set(group)):
                print("  %s -> %s (%s)" % (a, b, ", ".join(why[(a, b)])))
    print("check_includes: %d files, %d modules, %s" % (
        len(files), len(graph), "floors, no knots" if bad == 0 else "%d problem(s)" % bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
