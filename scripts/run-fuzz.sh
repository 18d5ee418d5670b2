#!/bin/sh
# Runs every libFuzzer target in BUILD/tests/fuzz for SECONDS each, starting
# from the seed corpus that the build writes from the unit tests' sample
# messages (BUILD/tests/fuzz/corpus/<target>/, see tests/fuzz/CMakeLists.txt),
# plus tests/fuzz/corpus/<target>/ when such a directory is committed
# (inputs that once found a bug).  New inputs go to BUILD/tests/fuzz/work-<target>/,
# findings to BUILD/tests/fuzz/<target>-crash-*, each log to <target>.log.
#   scripts/run-fuzz.sh BUILD SECONDS
set -eu
build=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$build/tests/fuzz
fail=0
found=0
for target in "$dir"/fuzz_*; do
	[ -x "$target" ] && [ -f "$target" ] || continue
	name=$(basename "$target")
	[ "$name" = fuzz_make_corpus ] && continue
	found=1
	work="$dir/work-$name"
	mkdir -p "$work"
	set -- "$work"
	for seeds in "$dir/corpus/$name" "$root/tests/fuzz/corpus/$name"; do
		[ -d "$seeds" ] && set -- "$@" "$seeds"
	done
	echo "fuzz: $name for ${seconds}s"
	# -malloc_limit_mb: no input of 64 KiB has a reason to make a decoder
	# reserve more than this in one allocation.
	if ! "$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
		-rss_limit_mb=1024 -malloc_limit_mb=64 -print_final_stats=1 \
		-artifact_prefix="$dir/$name-" "$@" >"$dir/$name.log" 2>&1; then
		echo "fuzz: $name FAILED; last lines of $dir/$name.log:"
		tail -n 30 "$dir/$name.log"
		fail=1
	else
		grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$dir/$name.log" | tail -n 1
	fi
done
if [ $found = 0 ]; then
	echo "fuzz: no targets in $dir (configure with -DTQ_BUILD_FUZZ=ON)"
	exit 1
fi
exit $fail
