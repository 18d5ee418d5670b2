#!/bin/sh
# Decides whether the compose tests (ctest label `compose`) can run here:
# they need a Docker engine that answers and the Compose tool.
#
#   scripts/compose-check.sh             prints one loud line when they cannot
#                                        (the only way they may be skipped)
#   scripts/compose-check.sh --ctest-args  prints "-LE compose" when they cannot
available() {
	command -v docker >/dev/null 2>&1 || { why="no docker command"; return 1; }
	timeout 20 docker info >/dev/null 2>&1 || { why="the Docker engine does not answer (docker info failed)"; return 1; }
	if timeout 10 docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
		return 0
	fi
	why="neither 'docker compose' nor docker-compose is installed"
	return 1
}
why=""
if available; then
	[ "${1:-}" = "--ctest-args" ] || echo "compose tests: Docker engine found, they will run"
else
	if [ "${1:-}" = "--ctest-args" ]; then
		echo "-LE compose"
	else
		echo "### COMPOSE TESTS NOT RUN: $why: the docker-compose deployment (ctest -L compose) was not tested ###"
	fi
fi
