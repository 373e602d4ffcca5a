#!/usr/bin/env bash
# check_configs.sh: runs `surgegate -t -c FILE` on config files and checks the
# exit status and the FILE:LINE diagnostics (ctest: config_examples, config_bad).
#
# usage: check_configs.sh examples|bad SURGEGATE SOURCE_DIR
#   examples  every SOURCE_DIR/config/*.conf exits 0 and prints no error
#             (demo.conf, a template, as `surgegate -t --demo`). The examples
#             name hooks where hooks/README.md installs them,
#             /etc/surgegate/hooks/; they are checked from a copy that names
#             SOURCE_DIR/hooks/ instead (`-t` checks that a discover command
#             exists and is executable).
#   bad       every tests/configs/bad/*.conf exits 1 and prints exactly the
#             errors it expects; every tests/configs/warn/*.conf exits 0 and
#             prints exactly the warnings it expects.
# A file states what it expects in comment lines (the first line is one):
#   # expect: LINE: error: SUBSTRING      (LINE 0: a diagnostic with no line)
#   # expect: LINE: warning: SUBSTRING
# and `surgegate -t` must print "FILE:LINE: error: ...SUBSTRING..." for each.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 examples|bad SURGEGATE SOURCE_DIR" >&2
    exit 2
fi
mode=$1
bin=$2
src=$(cd "$3" && pwd) || exit 2

# The RLIMIT_NOFILE warning depends on the limit: make it the same everywhere.
ulimit -n 1024 2>/dev/null || true  # soft and hard: surgegate raises soft to hard

failures=0
checked=0
out=""
rc=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Runs the check on file $1; sets $out (stdout+stderr) and $rc.
run_check() {
    out=$("$bin" -t -c "$1" 2>&1)
    rc=$?
}

# Number of "FILE[:LINE]: SEV: " lines in $out for file $1, severity $2.
count_diags() {
    local f=$1 sev=$2 n=0 o
    while IFS= read -r o; do
        if [[ $o == "$f: $sev: "* ]] || [[ $o =~ ^(.*):[0-9]+:\ (error|warning):\  &&
            ${BASH_REMATCH[1]} == "$f" && ${BASH_REMATCH[2]} == "$sev" ]]; then
            n=$((n + 1))
        fi
    done <<<"$out"
    echo "$n"
}

# Checks that $out holds every expectation of file $1 of severity $2 and no
# other diagnostic of that severity.
check_expectations() {
    local f=$1 sev=$2 want=0 got line ln s sub prefix o found
    local re='^#[[:space:]]*expect:[[:space:]]*([0-9]+):[[:space:]]*(error|warning):[[:space:]]*(.*)$'
    while IFS= read -r line; do
        [[ $line =~ $re ]] || continue
        ln=${BASH_REMATCH[1]}
        s=${BASH_REMATCH[2]}
        sub=${BASH_REMATCH[3]}
        [ "$s" = "$sev" ] && want=$((want + 1))
        if [ "$ln" -gt 0 ]; then
            prefix="$f:$ln: $s: "
        else
            prefix="$f: $s: "
        fi
        found=0
        while IFS= read -r o; do
            if [[ $o == "$prefix"* && $o == *"$sub"* ]]; then
                found=1
                break
            fi
        done <<<"$out"
        [ $found -eq 1 ] || fail "$f: missing \"$prefix...$sub\""
    done <"$f"
    if [ $want -eq 0 ]; then
        fail "$f: no '# expect: LINE: $sev: ...' line"
    fi
    got=$(count_diags "$f" "$sev")
    if [ "$got" -ne "$want" ]; then
        fail "$f: $got ${sev}s printed, $want expected"
    fi
}

if [ ! -x "$bin" ]; then
    echo "FAIL: $bin is not an executable" >&2
    exit 1
fi

case $mode in
examples)
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/sg-configs.XXXXXX") || exit 1
    trap 'rm -rf "$tmp"' EXIT
    for src_f in "$src"/config/*.conf; do
        # demo.conf is a template (@HOOKS@): checked below as `-t --demo`
        # runs it, from the copy embedded at build time.
        [ "$(basename "$src_f")" = demo.conf ] && continue
        checked=$((checked + 1))
        f=$tmp/$(basename "$src_f")
        sed "s|/etc/surgegate/hooks/|$src/hooks/|g" "$src_f" >"$f"
        run_check "$f"
        if [ $rc -ne 0 ]; then
            fail "$src_f: exit $rc, want 0"
        elif [ "$(count_diags "$f" error)" -ne 0 ]; then
            fail "$src_f: errors printed"
        else
            continue
        fi
        printf '%s\n' "$out" | sed 's/^/    /'
    done
    # config/demo.conf as `surgegate --demo` runs it.
    checked=$((checked + 1))
    out=$("$bin" -t --demo 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [[ $out == *error* ]]; then
        fail "surgegate -t --demo: exit $rc"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
    ;;
bad)
    for f in "$src"/tests/configs/bad/*.conf; do
        checked=$((checked + 1))
        run_check "$f"
        before=$failures
        [ $rc -eq 1 ] || fail "$f: exit $rc, want 1"
        check_expectations "$f" error
        [ $failures -eq $before ] || printf '%s\n' "$out" | sed 's/^/    /'
    done
    for f in "$src"/tests/configs/warn/*.conf; do
        checked=$((checked + 1))
        run_check "$f"
        before=$failures
        [ $rc -eq 0 ] || fail "$f: exit $rc, want 0"
        check_expectations "$f" warning
        [ "$(count_diags "$f" error)" -eq 0 ] || fail "$f: errors printed"
        [ $failures -eq $before ] || printf '%s\n' "$out" | sed 's/^/    /'
    done
    ;;
*)
    echo "unknown mode '$mode' (examples or bad)" >&2
    exit 2
    ;;
esac

if [ $checked -eq 0 ]; then
    echo "FAIL: no config files found under $src"
    exit 1
fi
echo "$checked files checked, $failures failures"
[ $failures -eq 0 ]
