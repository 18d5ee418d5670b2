#!/bin/sh
# profile.sh - where a task's cost goes: for a throughput run against one
# tq-broker and one tq-worker, the syscalls, context switches and CPU time
# per task of each process (perf stat), and optionally a CPU profile of each
# (perf record; read it with perf report -i DIR/NAME.data).
#
#   bench/profile.sh [BUILD] [--record] [--floor] [-- tq-worker options]
#
#   BUILD     the build directory [build]
#   -- ...    tq-worker options, e.g. -- --isolation none [--concurrency 2 --prefetch 64]
#   --record  perf record each process into bench/out/profile/ instead
#   --floor   the same for the raw ZeroMQ relay (relay, echo worker, client)
#
# Needs perf (linux-perf) with tracepoint access (root, or
# kernel.perf_event_paranoid <= 1).  The load is tq-bench's `tq-load` role:
# 50,000 no-op tasks, 16 B, a window of 1,000 (PROFILE_TASKS, PROFILE_WINDOW
# and PROFILE_SIZE change them).
set -eu
cd "$(dirname "$0")/.."
build=build
record=no
floor=no
while [ $# -gt 0 ]; do
	case "$1" in
	--record) record=yes ;;
	--floor) floor=yes ;;
	--) shift; break ;;
	*) build=$1 ;;
	esac
	shift
done
wopts=${*:---concurrency 2}
tasks=${PROFILE_TASKS:-50000}
window=${PROFILE_WINDOW:-1000}
size=${PROFILE_SIZE:-16}
out=bench/out/profile
mkdir -p "$out"
command -v perf >/dev/null || { echo "profile: perf is not installed" >&2; exit 1; }

pids=""
cleanup() { for p in $pids; do kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

ev="-e raw_syscalls:sys_enter,context-switches,task-clock -x,"
watchers=""
watch() { # name pid-list
	if [ $record = yes ]; then
		perf record -e cpu-clock -F 4000 -g -p "$2" -o "$out/$1.data" >/dev/null 2>&1 &
	else
		# shellcheck disable=SC2086
		perf stat $ev -p "$2" -o "$out/$1.stat" &
	fi
	watchers="$watchers $!"
}
wait_line() { # file text
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 500 ] || { echo "profile: no '$2' in $1" >&2; exit 1; }
		sleep 0.01
	done
}
bench="$build/bench/tq-bench"

# Each in its own process group, so that the clean-up takes the executors too.
if [ $floor = yes ]; then
	setsid "$bench" --role floor-relay >"$out/relay.log" 2>&1 &
	relay=$!
	pids="$relay"
	wait_line "$out/relay.log" "listening front="
	fep=$(sed -n 's/.*front=\([^ ]*\) .*/\1/p' "$out/relay.log")
	bep=$(sed -n 's/.*back=\([^ ]*\)$/\1/p' "$out/relay.log")
	setsid "$bench" --role floor-echo "$bep" >"$out/echo.log" 2>&1 &
	echo=$!
	pids="$pids $echo"
	wait_line "$out/relay.log" "workers=1"
	role=floor-load
	ep=$fep
	procs="relay echo"
	watch_all() { watch relay "$relay"; watch echo "$echo"; }
else
	setsid "$build/broker/tq-broker" --clients 'tcp://127.0.0.1:*' \
		--workers 'tcp://127.0.0.1:*' 2>"$out/broker.log" &
	broker=$!
	pids="$broker"
	wait_line "$out/broker.log" "listening clients="
	ep=$(sed -n 's/.*listening clients=\([^ ]*\) .*/\1/p' "$out/broker.log")
	wep=$(sed -n 's/.*workers=\([^ ]*\) .*/\1/p' "$out/broker.log")
	# shellcheck disable=SC2086
	setsid "$build/worker/tq-worker" --broker "$wep" $wopts 2>"$out/worker.log" &
	worker=$!
	pids="$pids $worker"
	sleep 0.5
	zygote=$(pgrep -P "$worker" | head -1 || true)
	execs=$( [ -n "$zygote" ] && pgrep -P "$zygote" | paste -sd, - || true)
	role=tq-load
	if [ -n "$execs" ]; then
		procs="broker worker executors"
		watch_all() { watch broker "$broker"; watch worker "$worker"; watch executors "$execs"; }
	else # --isolation none: no executors
		procs="broker worker"
		watch_all() { watch broker "$broker"; watch worker "$worker"; }
	fi
fi
"$bench" --role $role "$ep" "$window" 10000 "$size" >/dev/null # warm-up
watch_all
sleep 0.3
if [ $record = yes ]; then
	perf record -e cpu-clock -F 4000 -g -o "$out/client.data" -- \
		"$bench" --role $role "$ep" "$window" "$tasks" "$size" 2>/dev/null
else
	# shellcheck disable=SC2086
	perf stat $ev -o "$out/client.stat" -- "$bench" --role $role "$ep" "$window" "$tasks" "$size"
fi
# shellcheck disable=SC2086
kill -INT $watchers
sleep 1

if [ $floor = yes ]; then
	echo "floor (raw ZeroMQ relay); $tasks round trips, window $window, $size B"
else
	echo "tq-worker $wopts; $tasks tasks, window $window, $size B"
fi
if [ $record = yes ]; then
	echo "profiles in $out/*.data (perf report -i FILE)"
	exit 0
fi
for f in $procs client; do
	awk -F, -v n="$tasks" -v f="$f" '
		/sys_enter/ { s = $1 } /context-switches/ { c = $1 } /task-clock/ { t = $1 }
		END { printf "  %-10s syscalls/task %6.2f   context switches/task %5.2f   CPU us/task %6.2f\n",
		      f, s / n, c / n, t * 1000 / n }' "$out/$f.stat"
done
