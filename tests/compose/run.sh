#!/bin/sh
# The compose tests: tq across machines, in the deployment users run.
#
#   tests/compose/run.sh BUILD_DIR TEST
#
# TEST is lesson, node_loss, partition, broker_restart, scale_out or drain.
# Each test builds the images from BUILD_DIR (deploy/build-images.sh, fast
# when nothing changed), brings up a stack of its own - project
# tqtest-TEST-RANDOM: deploy/docker-compose.yml plus compose.test.yml, a
# broker, workers and a `tester` host running tq-compose-probe on the
# private network - acts, asserts, and always tears the stack down (trap),
# leaving no container, network or volume behind.  Every wait polls a
# condition with a bound; the whole run has a budget (TQ_COMPOSE_BUDGET, s).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR TEST" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
test=$2
case "$test" in
lesson | node_loss | partition | broker_restart | scale_out | drain) ;;
*)
	echo "run.sh: unknown test '$test'" >&2
	exit 2
	;;
esac

# ---- tools ------------------------------------------------------------------

t0=$(date +%s%3N)
now_ms() { date +%s%3N; }
log() { echo "[$(( ($(now_ms) - t0) / 1000 ))s] $*"; }
fail() {
	echo "FAIL ($test): $*"
	exit 1
}

if timeout 10 docker compose version >/dev/null 2>&1; then
	compose_cmd="docker compose"
elif command -v docker-compose >/dev/null 2>&1; then
	compose_cmd="docker-compose"
else
	fail "no Compose tool (docker compose or docker-compose)"
fi
timeout 20 docker info >/dev/null 2>&1 || fail "the Docker engine does not answer (docker info)"

# Each build directory gets its own image tag, so two checkouts don't
# replace each other's images; the project name is this run's own.
TQ_TAG=t$(printf %s "$build" | sha256sum | cut -c1-12)
project=tqtest-$(echo "$test" | tr _ -)-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
net=${project}_tq
export TQ_TAG
export TQ_HEALTH_INTERVAL=1s    # healthy (and `up` done) within a second
export TQ_WORKER_CONCURRENCY=1  # one task per worker: where tasks go is known
export TQ_WORKER_LIVENESS=3
export TQ_LOG=info

# Every docker call is bounded: a hung engine fails the test, not the run.
# (Teardown lowers the bounds, to end well inside ctest's TIMEOUT.)
limit=60
d() { timeout "$limit" docker "$@"; }
dc() { timeout "$((limit * 2))" $compose_cmd -p "$project" \
	-f "$root/deploy/docker-compose.yml" -f "$here/compose.test.yml" "$@"; }

# ---- teardown ---------------------------------------------------------------

watchdog=""
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	[ -z "$watchdog" ] || kill "$watchdog" 2>/dev/null || true
	limit=15
	if [ "$rc" -ne 0 ]; then
		echo "---- logs of $project (last lines) ----"
		dc logs --no-color --tail=60 2>&1 | tail -n 300 || true
	fi
	log "tearing down $project"
	dc down -v --remove-orphans -t 2 >/dev/null 2>&1 || true
	# What compose missed (e.g. after a failed `down`): only this project's.
	filter="label=com.docker.compose.project=$project"
	left=$(d ps -aq --filter "$filter" 2>/dev/null || true)
	[ -z "$left" ] || d rm -f -v $left >/dev/null 2>&1 || true
	left=$(d network ls -q --filter "$filter" 2>/dev/null || true)
	[ -z "$left" ] || d network rm $left >/dev/null 2>&1 || true
	left=$(d volume ls -q --filter "$filter" 2>/dev/null || true)
	[ -z "$left" ] || d volume rm -f $left >/dev/null 2>&1 || true
	left="$(d ps -aq --filter "$filter") $(d network ls -q --filter "$filter")"
	left="$left $(d volume ls -q --filter "$filter")"
	if [ -n "$(echo "$left" | tr -d ' ')" ]; then
		echo "FAIL ($test): teardown left containers, networks or volumes: $left"
		rc=1
	fi
	[ -z "$tmp" ] || rm -rf "$tmp"
	[ "$rc" -eq 0 ] && log "PASS $test" || log "FAILED $test (exit $rc)"
	exit "$rc"
}
tmp=""
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
tmp=$(mktemp -d)

# The whole run's budget, inside ctest's TIMEOUT, so that teardown runs.
budget=${TQ_COMPOSE_BUDGET:-150}
(
	trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
	sleep "$budget" &
	sleeper=$!
	wait "$sleeper" && kill -TERM $$
) </dev/null >/dev/null 2>&1 &
watchdog=$!

# ---- images -----------------------------------------------------------------

log "images: tag $TQ_TAG from $build"
"$root/deploy/build-images.sh" "$build"
probe_bin="$build/tests/compose/tq-compose-probe"
[ -x "$probe_bin" ] || fail "$probe_bin is missing: build the tests (cmake --build $build)"
ctx="$build/tests/compose/probe-context"
mkdir -p "$ctx"
cp "$probe_bin" "$here/Dockerfile" "$ctx/"
inputs="$(sha256sum "$ctx/tq-compose-probe" "$ctx/Dockerfile" | cut -c1-64)
$(d image inspect -f '{{.Id}}' "tq:$TQ_TAG")"
hash=$(echo "$inputs" | sha256sum | cut -c1-16)
have=$(d image inspect -f '{{ index .Config.Labels "org.tq.test-inputs" }}' \
	"tq-compose-test:$TQ_TAG" 2>/dev/null || true)
if [ "$have" != "$hash" ]; then
	old=$(d image inspect -f '{{.Id}}' "tq-compose-test:$TQ_TAG" 2>/dev/null || true)
	out=$(timeout 120 docker build -q --build-arg "TQ_TAG=$TQ_TAG" \
		--label "org.tq.test-inputs=$hash" -t "tq-compose-test:$TQ_TAG" "$ctx" 2>&1) ||
		fail "building the test image: $out"
	[ -z "$old" ] || d image rm "$old" >/dev/null 2>&1 || true
	log "built tq-compose-test:$TQ_TAG"
fi

# ---- the stack --------------------------------------------------------------

# Polls `cmd` every 0.2 s until it succeeds or `secs` pass.
wait_until() {
	what=$1 secs=$2
	shift 2
	until_ms=$(( $(now_ms) + secs * 1000 ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(now_ms)" -lt "$until_ms" ] || fail "not within ${secs}s: $what"
		sleep 0.2
	done
}

probe() { d exec "$tester" tq-compose-probe "$@"; }
stats() { probe stats 2>/dev/null || true; }
counter() { stats | awk -v n="$1" '$1 == "counter" && $2 == n { print $3 }'; }
# Workers registered and not draining.
ready_workers() { stats | awk '$1 == "worker" && $5 == 0' | wc -l; }
has_ready_workers() { [ "$(ready_workers)" -eq "$1" ]; }
# The name of a worker running a task (load > 0).
busy_worker() { stats | awk '$1 == "worker" && $3 > 0 { print $2; exit }'; }
worker_is_busy() { [ -n "$(busy_worker)" ]; }
# The worker containers' host names, as "HOST CONTAINER" lines in
# $tmp/hosts: looked up, not asked for, when a test must act fast.
map_hosts() {
	for c in $(dc ps -q worker); do
		echo "$(d inspect -f '{{.Config.Hostname}}' "$c") $c"
	done >"$tmp/hosts"
}
# The container whose host a worker name (HOST:PID) names.
container_of() {
	c=$(awk -v h="${1%%:*}" '$1 == h { print $2 }' "$tmp/hosts")
	[ -n "$c" ] || fail "no worker container has host name ${1%%:*}" >&2
	echo "$c"
}
worker_hosts() { awk '{ print $1 }' "$tmp/hosts"; }

up() {
	n=$1
	log "up: broker, $n workers, tester ($compose_cmd, project $project)"
	dc up -d --scale worker="$n" broker worker tester >"$tmp/up.log" 2>&1 ||
		{ cat "$tmp/up.log"; fail "docker compose up failed"; }
	tester=$(dc ps -q tester)
	[ -n "$tester" ] || fail "no tester container"
	wait_until "$n workers registered" 30 has_ready_workers "$n"
	map_hosts
	log "up: $n workers registered"
}

# Runs the probe in the background: run_bg FILE ARGS...; sets $bg.
run_bg() {
	out=$1
	shift
	d exec "$tester" tq-compose-probe run "$@" >"$out" 2>&1 &
	bg=$!
}
# The fields of task line I in a probe's output: field FILE I N (N: 3
# status, 4 worker, 5 attempt, 6 submit, 7 end, 8 elapsed).
field() { awk -v i="$2" -v n="$3" '$1 == "task" && $2 == i { print $n }' "$1"; }
done_ms() { awk '$1 == "done" { print $2 }' "$1"; }
strays() { awk '$1 == "strays" { print $2 }' "$1"; }
show() { sed 's/^/    /' "$1"; }
# The wall-clock times (ms) in task I's result, one a line: marks FILE I.
marks() {
	awk -v i="$2" '$1 == "task" && $2 == i { for (k = 9; k <= NF; k++) print $k }' "$1" |
		grep -o '[0-9]\{13\}' || true
}

# Registration lines in a container's log (the worker logs one each time).
registrations() { d logs "$1" 2>&1 | grep -c "registered with broker" || true; }
registered_again() { [ "$(registrations "$1")" -gt "$2" ]; }
counter_above() { [ "$(counter "$1")" -gt "$2" ]; }
counter_reaches() { [ "$(counter "$1")" -ge "$2" ]; }

# hit_busy_worker HOW FILE WHAT PROBE-RUN-ARGS...: runs the probe in the
# background (run_bg FILE ...), waits until a worker runs its task (WHAT
# names it in messages) and acts on that worker mid-task: HOW is kill
# (SIGKILL its container) or cut (its container off the network).  Sets
# $bg, $victim (the worker's name), $vc (its container), $regs (its
# registrations so far) and $hit (when it was done, ms).
hit_busy_worker() {
	how=$1 file=$2 hit_what=$3
	shift 3
	run_bg "$file" "$@"
	wait_until "the $hit_what runs" 10 worker_is_busy
	victim=$(busy_worker)
	vc=$(container_of "$victim")
	regs=$(registrations "$vc")
	case $how in
	kill) d kill "$vc" >/dev/null ;;
	cut) d network disconnect -f "$net" "$vc" ;;
	*) fail "hit_busy_worker: kill or cut, not $how" ;;
	esac
	hit=$(now_ms)
	log "$how $victim mid-task ($hit_what)"
}

# ---- the tests --------------------------------------------------------------

# The lesson across machines: the parallel step runs on two worker hosts
# at once; a client on another host reaches the broker.
test_lesson() {
	up 2
	# Two 1-second computations that say when they ran: each notes the
	# wall-clock time, sleeps 1000 ms and notes it again (the containers
	# share the host's clock).
	probe run --count 2 --timeout 5000 ticks par 2 1000 >"$tmp/par" 2>&1 || true
	show "$tmp/par"
	for i in 0 1; do
		[ "$(field "$tmp/par" $i 3)" = OK ] || fail "task $i did not succeed"
		[ "$(marks "$tmp/par" $i | wc -l)" -eq 2 ] || fail "task $i did not return two times"
	done
	w0=$(field "$tmp/par" 0 4) w1=$(field "$tmp/par" 1 4)
	[ "${w0%%:*}" != "${w1%%:*}" ] || fail "both tasks ran on host ${w0%%:*}"
	hosts=$(worker_hosts)
	for w in "$w0" "$w1"; do
		echo "$hosts" | grep -qx "${w%%:*}" || fail "$w is not one of the worker hosts"
	done
	a0=$(marks "$tmp/par" 0 | head -n 1) z0=$(marks "$tmp/par" 0 | tail -n 1)
	a1=$(marks "$tmp/par" 1 | head -n 1) z1=$(marks "$tmp/par" 1 | tail -n 1)
	took=$(done_ms "$tmp/par")
	log "two 1000 ms computations on ${w0%%:*} and ${w1%%:*}: [$a0, $z0] and [$a1, $z1]; ${took} ms in all"
	[ $((z0 - a0)) -ge 1000 ] && [ $((z1 - a1)) -ge 1000 ] || fail "a computation took under 1000 ms"
	# At the same time, not in turn: each began before the other ended.
	# (How much sooner that is, is the benchmark's to measure.)
	[ "$a0" -lt "$z1" ] && [ "$a1" -lt "$z0" ] || fail "the two computations did not overlap"
	[ "$took" -ge 1000 ] || fail "the parallel step took $took ms, under the 1000 ms each ran"
	# The client service of the deployment, on its own host, through the CLI.
	res=$(dc run --rm client call --timeout 5000 double 21 2>"$tmp/call.err") ||
		{ cat "$tmp/call.err"; fail "tq call from the client service failed"; }
	[ "$res" = 42 ] || fail "tq call double 21 printed '$res'"
	log "client service: tq call double 21 = $res"
}

# Node loss: SIGKILL the container running a task.
test_node_loss() {
	up 3
	hit_busy_worker kill "$tmp/retry" "retryable task" --retries 2 --timeout 30000 sleep 5000
	wait "$bg" || true
	show "$tmp/retry"
	[ "$(field "$tmp/retry" 0 3)" = OK ] || fail "the retryable task did not complete"
	[ "$(field "$tmp/retry" 0 4)" != "$victim" ] || fail "it completed on the killed worker"
	[ "$(field "$tmp/retry" 0 5)" = 2 ] || fail "it completed on attempt $(field "$tmp/retry" 0 5), not 2"
	log "the retryable task completed on $(field "$tmp/retry" 0 4), attempt 2"

	wait_until "the broker forgets the killed worker" 5 has_ready_workers 2
	hit_busy_worker kill "$tmp/once" "non-retryable task" --retries 0 --timeout 30000 sleep 10000
	wait "$bg" || true
	show "$tmp/once"
	[ "$(field "$tmp/once" 0 3)" = EWORKERLOST ] ||
		fail "the non-retryable task ended $(field "$tmp/once" 0 3), not EWORKERLOST"
	after=$(( $(field "$tmp/once" 0 7) - hit ))
	log "EWORKERLOST $after ms after the kill"
	# Detected (a dead connection or missed heartbeats), not waited out:
	# the task's deadline is 30 s.  How fast it is, is the benchmark's.
	[ "$after" -lt 10000 ] || fail "EWORKERLOST came $after ms after the kill: not detected (deadline 30000)"
	[ "$(counter workers_lost)" -ge 2 ] || fail "the broker counted $(counter workers_lost) lost workers, not 2"
}

# Partition: cut a worker off its network mid-task, then let it back.  The
# workers tolerate 10 s of broker silence (the broker's liveness is the
# default ~0.75 s), so a cut worker still holds its connection when the
# network returns, and learns from the broker that it was dropped.
#
# Its late result: the cut worker finishes the task during the cut and
# sends the result; the broker keeps a silent worker's connection open far
# longer than it takes to give the worker up, so when the network returns
# the result arrives, is fenced by its attempt number and counted - and
# never delivered: the client gets one outcome (attempt 2), drops no stray
# reply (it stays connected, --linger, until the late result was fenced),
# and the broker counts one completion.
test_partition() {
	export TQ_WORKER_LIVENESS=40
	up 2
	# 1. Retryable: re-dispatched; the cut worker's late result is fenced.
	fenced0=$(counter fenced)
	completed0=$(counter completed)
	release=/tmp/tq-release-retry
	hit_busy_worker cut "$tmp/retry" "retryable task" \
		--retries 1 --timeout 30000 --linger "$release" sleep 4000
	retry_bg=$bg
	# Its task ends (the probe prints it), and the probe lingers.
	wait_until "the retryable task ends" 40 grep -q '^done ' "$tmp/retry"
	show "$tmp/retry"
	[ "$(field "$tmp/retry" 0 3)" = OK ] || fail "the retryable task did not complete"
	[ "$(field "$tmp/retry" 0 4)" != "$victim" ] || fail "it completed on the cut worker"
	[ "$(field "$tmp/retry" 0 5)" = 2 ] || fail "it completed on attempt $(field "$tmp/retry" 0 5), not 2"
	redo=$(( $(field "$tmp/retry" 0 7) - hit - 4000 ))
	log "re-dispatched and done on $(field "$tmp/retry" 0 4); re-dispatch took ~$redo ms"
	# Re-dispatched once the broker gave the silent worker up, not when the
	# network came back (it was still cut): the deadline is 30 s.
	[ "$redo" -lt 10000 ] || fail "re-dispatch took ~$redo ms after the cut: not on the worker's loss"
	d network connect "$net" "$vc"
	log "reconnected $victim, which finished its attempt during the cut"
	wait_until "$victim registers again" 20 registered_again "$vc" "$regs"
	wait_until "2 workers ready" 10 has_ready_workers 2
	d logs "$vc" 2>&1 | grep -q "told to reconnect" ||
		fail "$victim did not learn from the broker that it was dropped"
	log "$victim learned it was dropped and rejoined"
	# Its late result reached the broker and was fenced; the retrying
	# client, still connected, has read what the broker sent it after that
	# (a round trip once released), so a duplicate would be a stray here.
	wait_until "the cut worker's late result is fenced" 20 counter_above fenced "$fenced0"
	probe release "$release"
	wait "$retry_bg" || true
	log "the retrying client, after the late result was fenced: strays $(strays "$tmp/retry")"
	[ "$(strays "$tmp/retry")" = 0 ] ||
		fail "the client received a stray (late) reply: strays $(strays "$tmp/retry")"
	# Results counted.
	probe run --timeout 5000 noop >"$tmp/noop" 2>&1 || true
	completed=$(( $(counter completed) - completed0 ))
	fenced=$(( $(counter fenced) - fenced0 ))
	log "broker: $completed completed (the task and a noop), $fenced late results fenced"
	[ "$completed" -eq 2 ] || fail "the broker counted $completed completions, not 2"
	[ "$fenced" -ge 1 ] || fail "the cut worker's late result was not fenced"

	# 2. Not retryable: fails with EWORKERLOST; the worker, back, is told
	# it was dropped, kills the task and registers again.
	hit_busy_worker cut "$tmp/once" "non-retryable task" --retries 0 --timeout 30000 sleep 10000
	wait "$bg" || true
	show "$tmp/once"
	[ "$(field "$tmp/once" 0 3)" = EWORKERLOST ] ||
		fail "the non-retryable task ended $(field "$tmp/once" 0 3), not EWORKERLOST"
	after=$(( $(field "$tmp/once" 0 7) - hit ))
	log "EWORKERLOST $after ms after the cut"
	# Missed heartbeats, not the deadline (30 s): see node_loss.
	[ "$after" -lt 10000 ] || fail "EWORKERLOST came $after ms after the cut: not detected (deadline 30000)"
	d network connect "$net" "$vc"
	log "reconnected $victim"
	wait_until "$victim registers again" 20 registered_again "$vc" "$regs"
	wait_until "2 workers ready" 10 has_ready_workers 2
	d logs "$vc" 2>&1 | grep -q "stopping 1 held task" ||
		fail "$victim did not stop the task the broker gave up on"
	log "$victim rejoined and stopped the task it held"

	# 3. Both serve again: two tasks at once take both workers.
	probe run --count 2 --timeout 5000 sleep 300 >"$tmp/again" 2>&1 || true
	show "$tmp/again"
	for i in 0 1; do
		[ "$(field "$tmp/again" $i 3)" = OK ] || fail "task $i failed after the rejoin"
	done
	[ "$(field "$tmp/again" 0 4)" != "$(field "$tmp/again" 1 4)" ] ||
		fail "after the rejoin only $(field "$tmp/again" 0 4) serves"
}

# Broker restart under load: tasks with retries are resubmitted and
# complete; the others end with a result or EBROKERLOST; none outlives
# its deadline; workers and clients come back by themselves.
test_broker_restart() {
	up 2
	old=$(stats | awk '$1 == "instance" { print $2 }')
	submitted0=$(counter submitted)
	run_bg "$tmp/retry" --count 20 --stagger 100 --retries 3 --timeout 30000 sleep 300
	bg_retry=$bg
	run_bg "$tmp/once" --count 20 --stagger 100 --retries 0 --timeout 30000 sleep 300
	bg_once=$bg
	wait_until "tasks run" 10 worker_is_busy
	# Mid-submission: the load is on when the broker goes, 16 of the 40
	# tasks submitted (each client submits one every 100 ms).
	wait_until "16 tasks submitted" 10 counter_reaches submitted $((submitted0 + 16))
	log "restarting the broker"
	went=$(now_ms)
	d restart -t 10 "$(dc ps -q broker)" >/dev/null
	back=$(now_ms)
	log "broker restarted"
	wait "$bg_retry" || true
	wait "$bg_once" || true
	echo "  with --retries 3:"
	show "$tmp/retry"
	echo "  with --retries 0:"
	show "$tmp/once"
	[ "$(grep -c '^task ' "$tmp/retry")" -eq 20 ] || fail "the retrying client lost tasks"
	[ "$(grep -c '^task ' "$tmp/once")" -eq 20 ] || fail "the other client lost tasks"
	bad=$(awk '$1 == "task" && $3 != "OK"' "$tmp/retry")
	[ -z "$bad" ] || fail "tasks with retries did not all complete: $bad"
	bad=$(awk '$1 == "task" && $3 != "OK" && $3 != "EBROKERLOST"' "$tmp/once")
	[ -z "$bad" ] || fail "tasks without retries ended otherwise than OK or EBROKERLOST: $bad"
	late=$(awk '$1 == "task" && ($8 < 0 || $8 > 30000)' "$tmp/retry" "$tmp/once")
	[ -z "$late" ] || fail "tasks outlived their deadline: $late"
	across=$(awk -v a="$went" -v b="$back" '$1 == "task" && $6 < a && $7 > b' "$tmp/retry" | wc -l)
	[ "$across" -ge 1 ] || fail "no task with retries was in flight across the restart"
	log "retries 3: $(grep -c ' OK ' "$tmp/retry") OK ($across across the restart);" \
		"retries 0: $(grep -c ' OK ' "$tmp/once") OK, $(grep -c EBROKERLOST "$tmp/once") EBROKERLOST"
	d logs "$(dc ps -q broker)" 2>&1 | grep -q "broker info  stopped" ||
		fail "the broker did not stop gracefully on SIGTERM"
	wait_until "both workers registered with the new broker" 20 has_ready_workers 2
	new=$(stats | awk '$1 == "instance" { print $2 }')
	[ "$new" != "$old" ] || fail "the broker instance did not change"
	probe run --count 2 --timeout 5000 sleep 100 >"$tmp/after" 2>&1 || true
	show "$tmp/after"
	[ "$(awk '$1 == "task" && $3 == "OK"' "$tmp/after" | wc -l)" -eq 2 ] ||
		fail "tasks fail after the restart"
}

# Scale-out: workers added while a batch runs take work at once (their
# first task starts as they register), and the batch ends sooner than on
# one worker.
test_scale_out() {
	up 1
	first_worker=$(dc ps -q worker)
	n=32
	run_bg "$tmp/batch" --count $n --timeout 60000 sleep 500
	wait_until "the batch runs" 10 worker_is_busy
	log "scaling out to 4 workers"
	dc up -d --no-deps --no-recreate --scale worker=4 worker >"$tmp/scale.log" 2>&1 ||
		{ cat "$tmp/scale.log"; fail "scaling out failed"; }
	log "scaled out"
	wait "$bg" || true
	show "$tmp/batch"
	[ "$(awk '$1 == "task" && $3 == "OK"' "$tmp/batch" | wc -l)" -eq $n ] ||
		fail "not every task of the batch succeeded"
	took=$(done_ms "$tmp/batch")
	serial=$((n * 500))
	log "batch of $n x 500 ms: $took ms (one worker: $serial ms)"
	for c in $(dc ps -q worker); do
		[ "$c" != "$first_worker" ] || continue
		host=$(d inspect -f '{{.Config.Hostname}}' "$c")
		# When it registered (its log's first line of that), and when its
		# first task ended.
		at=$(d logs "$c" 2>&1 | awk '/registered with broker/ { print $1; exit }')
		[ -n "$at" ] || fail "new worker $host never registered"
		reg=$(date -d "$at" +%s%3N)
		end=$(awk -v h="$host" '$1 == "task" && index($4, h ":") == 1 { if (!m || $7 < m) m = $7 }
			END { printf "%.0f\n", m }' "$tmp/batch")
		[ "$end" -gt 0 ] || fail "new worker $host took no task"
		wait=$((end - 500 - reg))
		log "new worker $host: first task started ~$wait ms after it registered"
		# Offered the queued tasks when it registered: a worker that is not
		# gets none of this batch (nothing else would offer it one).  5 s is
		# ten tasks' time, generous; how soon is the benchmark's to measure.
		[ "$wait" -le 5000 ] || fail "new worker $host waited $wait ms for work"
	done
	# Other workers took part of the work, at the same time.
	[ "$took" -lt "$serial" ] || fail "the batch was not sooner than on one worker: $took ms"
}

# SIGTERM: a worker drains (finishes its task, takes no new one, exits 0);
# the broker stops gracefully.
test_drain() {
	up 2
	run_bg "$tmp/long" --timeout 30000 sleep 6000
	wait_until "the task runs" 10 worker_is_busy
	victim=$(busy_worker)
	vc=$(container_of "$victim")
	d stop -t 30 "$vc" >/dev/null &
	stopper=$!
	log "docker stop $victim mid-task"
	drained() { stats | awk -v w="$victim" '$1 == "worker" && $2 == w && $5 == 1 { f = 1 } END { exit !f }'; }
	wait_until "$victim drains" 5 drained
	log "$victim is draining"
	probe run --count 2 --timeout 10000 sleep 200 >"$tmp/new" 2>&1 || true
	show "$tmp/new"
	[ "$(awk -v w="$victim" '$1 == "task" && $3 == "OK" && $4 != w' "$tmp/new" | wc -l)" -eq 2 ] ||
		fail "new tasks did not all go to the other worker while $victim drained"
	wait "$bg" || true
	wait "$stopper" || true
	show "$tmp/long"
	[ "$(field "$tmp/long" 0 3)" = OK ] && [ "$(field "$tmp/long" 0 4)" = "$victim" ] ||
		fail "the draining worker did not finish its task"
	code=$(d inspect -f '{{.State.ExitCode}}' "$vc")
	[ "$code" = 0 ] || fail "the drained worker exited $code"
	log "$victim finished its task and exited 0"
	bc=$(dc ps -q broker)
	started=$(now_ms)
	d stop -t 20 "$bc" >/dev/null
	took=$(( $(now_ms) - started ))
	code=$(d inspect -f '{{.State.ExitCode}}' "$bc")
	# It stopped by itself, on SIGTERM, with exit 0: not killed by docker
	# when the 20 s it was given ran out (that is exit 137).
	[ "$code" = 0 ] || fail "the broker exited $code on SIGTERM"
	[ "$took" -lt 20000 ] || fail "the broker took $took ms to stop: docker's SIGKILL stopped it"
	log "the broker stopped in $took ms, exit 0"
}

"test_$test"
