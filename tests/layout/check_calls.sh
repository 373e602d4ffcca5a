#!/usr/bin/env bash
# check_calls.sh BUILD_DIR SOURCE_DIR: no two source files call each other in
# a circle, read from the object files of BUILD_DIR by the shared tool
# call-cycles (../shared/tools/call-cycles beside the repository). Without
# the tool the test is skipped (77), except under CI=true, where it fails.
set -uo pipefail
build=$1 src=$2
tool="$src/../shared/tools/call-cycles"
if [[ ! -x $tool ]]; then
    echo "check_calls: $tool not found"
    [[ ${CI:-} == true ]] && exit 1
    exit 77
fi
exec "$tool" "$build"
