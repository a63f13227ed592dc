#!/usr/bin/env bash
# hack/timed.sh NAME COMMAND...: runs COMMAND and prints how long it took, so `make test` shows the
# time of each phase (tools, images, checks, tests). Keeps COMMAND's exit code.
name=$1
shift
start=$SECONDS
"$@"
code=$?
echo "[make test] phase ${name}: $((SECONDS - start))s (exit ${code})"
exit "$code"
