#!/bin/sh
# Installs the Debian packages tq needs, and nothing when they are all present.
#
#   scripts/bootstrap.sh [build|test|bench|all]
#
#   build  compiler, CMake, libzmq, msgpack-c, cmocka           (make, make demo)
#   test   build + clang with libFuzzer, clang-format, valgrind, and
#          Python's zmq and msgpack for the conformance test (make test)
#   bench  build + gearmand, libgearman, gnuplot                 (make bench)
#   all    everything above
#
# Run as root or with sudo available; otherwise it prints the exact
# apt-get line to run and exits 1.  It never fetches anything but
# Debian packages.
set -eu

profile=${1:-build}
build="cmake make gcc pkg-config libzmq3-dev libmsgpack-dev libcmocka-dev"
test_extra="clang libclang-rt-14-dev clang-format valgrind python3-zmq python3-msgpack"
bench_extra="gearman-job-server libgearman-dev gnuplot-nox"

case "$profile" in
build) want="$build" ;;
test) want="$build $test_extra" ;;
bench) want="$build $bench_extra" ;;
all) want="$build $test_extra $bench_extra" ;;
*)
	echo "bootstrap: unknown profile '$profile' (use build, test, bench or all)" >&2
	exit 2
	;;
esac

missing=""
for p in $want; do
	# dpkg-query prints "install ok installed" only for a fully installed package.
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

line="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" = 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo="sudo"
else
	echo "bootstrap: missing Debian packages:$missing" >&2
	echo "bootstrap: run as root:  apt-get update && $line" >&2
	exit 1
fi

echo "bootstrap: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# An update is needed on a fresh machine whose package lists are empty;
# a stale list only makes the install fail, so refresh before installing.
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends$missing >/dev/null
echo "bootstrap: done"
