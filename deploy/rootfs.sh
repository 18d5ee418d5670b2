#!/bin/sh
# Stages the root filesystem of tq's runtime images: the three programs, the
# shared libraries they load (as ldd lists them, and the dynamic loader),
# and the few files a process needs - /etc/passwd and /etc/group with the
# non-root user tq (uid and gid 10001), /etc/nsswitch.conf, and /tmp.
#
#   deploy/rootfs.sh BUILD_DIR DEST
#
# BUILD_DIR is a CMake build of tq (tq-broker, tq-worker and tq in it);
# DEST is emptied first.  Used by deploy/build-images.sh on the host and by
# deploy/Dockerfile.registry inside its build stage, so that both routes
# ship the same files.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR DEST" >&2
	exit 2
fi
build=$1
dest=$2
programs="$build/broker/tq-broker $build/worker/tq-worker $build/cli/tq"
for p in $programs; do
	if [ ! -x "$p" ]; then
		echo "rootfs: $p is missing: build tq first (cmake --build $build)" >&2
		exit 1
	fi
done

rm -rf "$dest"
mkdir -p "$dest/usr/local/bin" "$dest/etc" "$dest/tmp"
chmod 1777 "$dest/tmp"
for p in $programs; do
	cp "$p" "$dest/usr/local/bin/"
done

# Every library any of the programs loads, at the path the loader will look
# for it; copied as files (cp -L), since the image has no symlink targets.
libs=$(for p in $programs; do ldd "$p"; done | awk '
	/not found/ { print "missing:" $1; next }
	/=>/ && $3 ~ /^\// { print $3; next }
	$1 ~ /^\// && $2 ~ /^\(/ { print $1 }  # the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
' | sort -u)
if [ -z "$libs" ]; then
	echo "rootfs: ldd listed no libraries: are these dynamic executables?" >&2
	exit 1
fi
case "$libs" in *missing:*)
	echo "rootfs: libraries not found:" $(echo "$libs" | sed -n 's/^missing://p') >&2
	exit 1
	;;
esac
for lib in $libs; do
	mkdir -p "$dest$(dirname "$lib")"
	cp -L "$lib" "$dest$lib"
done

cat >"$dest/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
tq:x:10001:10001:tq:/tmp:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"$dest/etc/group" <<'EOF'
root:x:0:
tq:x:10001:
nogroup:x:65534:
EOF
# Host names (the broker's service name) resolve through /etc/hosts and the
# DNS server the container engine provides.
cat >"$dest/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
