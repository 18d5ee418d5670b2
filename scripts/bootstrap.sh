#!/bin/sh
# Installs the Debian packages tq needs, and nothing when they are all present.
#
#   scripts/bootstrap.sh [build|test|compose|bench|all]
#
#   build    compiler, CMake, libzmq, msgpack-c, cmocka         (make, make demo)
#   test     build + clang with libFuzzer, clang-format, valgrind, and
#            Python's zmq and msgpack for the conformance test  (make test)
#   compose  the Docker engine and Compose, for the compose tests (make test):
#            docker.io unless a `docker` command exists (from any source),
#            docker-compose unless `docker compose` or docker-compose works
#   bench    build + gearmand, libgearman, gnuplot               (make bench)
#   all      everything above
#
# Run as root or with sudo available; otherwise it prints the exact
# apt-get line to run and exits 1.  It never fetches anything but
# Debian packages.
#
# The compose profile alone is optional where the compose tests may be left
# out: when it cannot install what is missing it says so and exits 0, and
# scripts/compose-check.sh then leaves the tests out, loudly.  With
# TQ_REQUIRE_COMPOSE=1 (CI: .ci/run) that is an error (exit 1) like any other.
set -eu

profile=${1:-build}
build="cmake make gcc pkg-config libzmq3-dev libmsgpack-dev libcmocka-dev"
test_extra="clang libclang-rt-14-dev clang-format valgrind python3-zmq python3-msgpack"
bench_extra="gearman-job-server libgearman-dev gnuplot-nox"

# What the compose tests lack, judged by the commands rather than by
# Debian's package names, so that a Docker installed otherwise (Docker's
# own docker-ce and docker-compose-plugin) is left as it is.
compose_missing() {
	if ! command -v docker >/dev/null 2>&1; then
		echo docker.io
	fi
	if ! command -v docker-compose >/dev/null 2>&1 &&
		! { command -v docker >/dev/null 2>&1 && timeout 10 docker compose version >/dev/null 2>&1; }; then
		echo docker-compose
	fi
}

optional=false
case "$profile" in
build) want="$build" ;;
test) want="$build $test_extra" ;;
compose)
	want=""
	[ "${TQ_REQUIRE_COMPOSE:-0}" = 1 ] || optional=true
	;;
bench) want="$build $bench_extra" ;;
all) want="$build $test_extra $bench_extra" ;;
*)
	echo "bootstrap: unknown profile '$profile' (use build, test, compose, bench or all)" >&2
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
case "$profile" in
compose | all)
	for p in $(compose_missing); do
		missing="$missing $p"
	done
	;;
esac
[ -z "$missing" ] && exit 0

# give_up MESSAGE...: exit 1, or for the optional profile a loud note and 0.
give_up() {
	for m in "$@"; do
		echo "bootstrap: $m" >&2
	done
	if $optional; then
		echo "bootstrap: going on without them: the compose tests will be left out" \
			"(TQ_REQUIRE_COMPOSE=1 makes this an error)" >&2
		exit 0
	fi
	exit 1
}

line="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" = 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo="sudo"
else
	give_up "missing Debian packages:$missing" "run as root:  apt-get update && $line"
fi

echo "bootstrap: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# An update is needed on a fresh machine whose package lists are empty;
# a stale list only makes the install fail, so refresh before installing.
if ! $sudo apt-get update -qq || ! $sudo apt-get install -y -qq --no-install-recommends$missing >/dev/null; then
	give_up "could not install$missing: $line failed"
fi
echo "bootstrap: done"
