#!/usr/bin/env bash
# .ci/times.sh FILE.json... — rank the packages and tests of `go test -json`
# outputs by wall time: where a CI run spends its minutes.
#   .ci/times.sh [-n N] run.json...     top N (default 25) of each table
# Package time is the package's test binary, start to end (its "pass" or
# "fail" event); test time is each top-level test's own elapsed (a parallel
# test's includes its wait for the others). Skips are listed: CI allows none.
set -euo pipefail
n=25
if [ "${1:-}" = -n ]; then n=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n N] FILE.json..." >&2; exit 2; }
cat "$@" | jq -rs --argjson n "$n" '
  def fmt: (. * 10 | round / 10 | tostring);
  [ .[] | select(type == "object") ] as $ev
  | ($ev | map(select(.Test == null and (.Action == "pass" or .Action == "fail") and .Elapsed != null))) as $pk
  | ($ev | map(select(.Test != null and (.Test | contains("/") | not) and (.Action == "pass" or .Action == "fail") and .Elapsed != null))) as $ts
  | ($ev | map(select(.Test != null and .Action == "skip"))) as $sk
  | "packages: \($pk | length), sum \($pk | map(.Elapsed) | add // 0 | fmt) s (the longest first)",
    ($pk | sort_by(-.Elapsed) | .[:$n][] | "  \(.Elapsed | fmt)\t\(.Action)\t\(.Package)"),
    "tests: \($ts | length) top-level, sum \($ts | map(.Elapsed) | add // 0 | fmt) s (the longest first)",
    ($ts | sort_by(-.Elapsed) | .[:$n][] | "  \(.Elapsed | fmt)\t\(.Action)\t\(.Package | sub("github.com/nbhosting/nbh-sync/"; "")).\(.Test)"),
    "skipped: \($sk | length)",
    ($sk[] | "  \(.Package | sub("github.com/nbhosting/nbh-sync/"; "")).\(.Test)"),
    "failed: \($ev | map(select(.Action == "fail")) | length) events"
'
