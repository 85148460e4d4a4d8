#!/usr/bin/env bash
# Reads the output of `swift test` (a file, or stdin) and prints XCTest's totals for the
# whole run as one line: "tests: P passed, K skipped, F failed". XCTest writes them after
# "Test Suite 'All tests'" as
#   Executed N tests, with F failures (U unexpected) in …
#   Executed N tests, with K tests skipped and F failures (U unexpected) in …
# Exits 1, saying so, when no such line is found (the run did not finish).
set -euo pipefail
summary="$(grep -A1 "Test Suite 'All tests'" "${1:-/dev/stdin}" \
	| grep -Eo 'Executed [0-9]+ tests?, with ([0-9]+ tests? skipped and )?[0-9]+ failures?' | tail -1 || true)"
if [ -z "$summary" ]; then
	echo "tests: no XCTest summary found (the run did not finish)"
	exit 1
fi
executed="$(echo "$summary" | sed -E 's/^Executed ([0-9]+) .*/\1/')"
skipped="$(echo "$summary" | sed -nE 's/.* ([0-9]+) tests? skipped.*/\1/p')"
failed="$(echo "$summary" | sed -E 's/.* ([0-9]+) failures?$/\1/')"
skipped="${skipped:-0}"
echo "tests: $((executed - skipped - failed)) passed, $skipped skipped, $failed failed"
