#!/bin/sh
# Builds tq's container images from a host build, pulling nothing:
#
#   deploy/build-images.sh [BUILD_DIR]        (default: build)
#
# makes tq-broker:TAG, tq-worker:TAG and tq:TAG (TAG is $TQ_TAG, else
# latest) FROM scratch, out of BUILD_DIR's programs and the host's shared
# libraries (deploy/rootfs.sh stages them, deploy/Dockerfile layers them).
# The images carry a hash of everything that went in; when it has not
# changed, nothing is built, so running this before every `docker compose
# up` costs about a second.  Build tq first: `make` (or cmake --build).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
tag=${TQ_TAG:-latest}
targets="tq-broker tq-worker tq"

if ! command -v docker >/dev/null 2>&1; then
	echo "build-images: no docker command" >&2
	exit 1
fi
build=$(cd "$build" && pwd) || {
	echo "build-images: no build directory $1: build tq first (make)" >&2
	exit 1
}

ctx="$build/image-context"
mkdir -p "$ctx"
"$here/rootfs.sh" "$build" "$ctx/rootfs"
cp "$here/Dockerfile" "$ctx/Dockerfile"

# The inputs: every staged file's content, path and mode, the Dockerfile,
# and the scripts that made them.
hash=$(
	cd "$ctx"
	{
		find rootfs -print0 | sort -z | xargs -0 stat -c '%n %a %F'
		find rootfs -type f -print0 | sort -z | xargs -0 sha256sum
		sha256sum Dockerfile "$here/rootfs.sh" "$here/build-images.sh" | cut -c1-64
	} | sha256sum | cut -c1-16
)

image_label() {
	docker image inspect -f '{{ index .Config.Labels "org.tq.inputs" }}' "$1" 2>/dev/null || true
}

stale=""
for t in $targets; do
	[ "$(image_label "$t:$tag")" = "$hash" ] || stale="$stale $t"
done
if [ -z "$stale" ]; then
	echo "build-images: tq-broker:$tag tq-worker:$tag tq:$tag are up to date ($hash)"
	exit 0
fi

for t in $stale; do
	old=$(docker image inspect -f '{{ .Id }}' "$t:$tag" 2>/dev/null || true)
	# Quiet unless it fails: the legacy builder's notices are noise here.
	if ! out=$(timeout 300 docker build -q --target "$t" --label "org.tq.inputs=$hash" \
		-t "$t:$tag" "$ctx" 2>&1); then
		echo "$out" >&2
		echo "build-images: building $t:$tag failed" >&2
		exit 1
	fi
	new=$(docker image inspect -f '{{ .Id }}' "$t:$tag")
	# The image this tag named before is now unnamed: remove it, unless a
	# container still uses it (then docker keeps it and says nothing here).
	if [ -n "$old" ] && [ "$old" != "$new" ]; then
		docker image rm "$old" >/dev/null 2>&1 || true
	fi
	echo "build-images: built $t:$tag ($hash)"
done
