#!/bin/sh
# Fails when a tracked C file differs from what .clang-format makes of it.
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format-check: clang-format is not installed (apt-get install clang-format)" >&2; exit 1; }
files=$(git ls-files '*.c' '*.h')
bad=$(clang-format --dry-run $files 2>&1 | grep -c 'warning:' || true)
if [ "$bad" != 0 ]; then
	clang-format --dry-run $files 2>&1 | grep 'warning:' | cut -d: -f1 | sort -u >&2
	echo "format-check: $bad places differ from .clang-format (run: make format)" >&2
	exit 1
fi
echo "format-check: clean"
