#!/bin/sh
# Decides whether the compose tests (ctest label `compose`) can run here:
# they need a Docker engine that answers and the Compose tool.
#
#   scripts/compose-check.sh               says whether they will run; one
#                                          loud line when they cannot (the
#                                          only way they may be left out)
#   scripts/compose-check.sh --ctest-args  prints "-LE compose" when they cannot
#   scripts/compose-check.sh --reminder    the loud line again when they could
#                                          not run (after ctest's summary)
#
# With TQ_REQUIRE_COMPOSE=1 (CI: .ci/run) they must run: where they cannot,
# each form prints the reason as an error and exits 1, and --ctest-args
# leaves them in, so that they fail rather than vanish.
available() {
	command -v docker >/dev/null 2>&1 || {
		why="no docker command (scripts/bootstrap.sh compose installs docker.io)"
		return 1
	}
	timeout 20 docker info >/dev/null 2>&1 || {
		why="the Docker engine does not answer (docker info failed: is dockerd running, may this user use it?)"
		return 1
	}
	if timeout 10 docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
		return 0
	fi
	why="neither 'docker compose' nor docker-compose is installed (scripts/bootstrap.sh compose installs docker-compose)"
	return 1
}
mode=${1:-}
case "$mode" in
"" | --ctest-args | --reminder) ;;
*)
	echo "usage: $0 [--ctest-args | --reminder]" >&2
	exit 2
	;;
esac
why=""
if available; then
	[ -n "$mode" ] || echo "compose tests: Docker engine found, they will run"
	exit 0
fi
if [ "${TQ_REQUIRE_COMPOSE:-0}" = 1 ]; then
	echo "### COMPOSE TESTS CANNOT RUN: $why; TQ_REQUIRE_COMPOSE=1 requires them: FAILED ###" >&2
	exit 1
fi
case "$mode" in
--ctest-args) echo "-LE compose" ;;
*) echo "### COMPOSE TESTS NOT RUN: $why: the docker-compose deployment (ctest -L compose) was not tested ###" ;;
esac
