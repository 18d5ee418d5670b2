#!/bin/sh
# Runs every libFuzzer target in BUILD/tests/fuzz for SECONDS each, starting
# from the seed corpus the unit tests' messages make (tests/fuzz/corpus/).
#   scripts/run-fuzz.sh BUILD SECONDS
set -eu
build=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
fail=0
for target in "$build"/tests/fuzz/fuzz_*; do
	[ -x "$target" ] || continue
	name=$(basename "$target")
	seeds="$root/tests/fuzz/corpus/$name"
	work="$build/tests/fuzz/work-$name"
	mkdir -p "$work"
	echo "fuzz: $name for ${seconds}s"
	if ! "$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 \
		-print_final_stats=1 "$work" ${seeds:+$( [ -d "$seeds" ] && echo "$seeds")} \
		>"$build/tests/fuzz/$name.log" 2>&1; then
		echo "fuzz: $name FAILED; last lines of its log:"
		tail -n 30 "$build/tests/fuzz/$name.log"
		fail=1
	else
		grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$build/tests/fuzz/$name.log" | tail -n 1
	fi
done
exit $fail
