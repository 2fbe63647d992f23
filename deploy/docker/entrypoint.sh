#!/bin/sh
# The entrypoint of sandboxd's image (make image): prepares what only the
# container's own setup can, starts `sandboxd serve` with the image's
# configuration (arguments go on to it), imports the busybox rootfs into
# the store at the first start, and passes SIGTERM and SIGINT on.
set -eu
conf=/etc/sandboxd/sandboxd.toml
socket=${SANDBOXD_SOCKET:-/run/sandboxd/sandboxd.sock}

# With --cgroupns=private, Docker mounts the container's own cgroups (the
# root of its cgroup namespace) read-only. A bind remount makes them
# writable for sandboxd, which nests its sandboxes below; it needs
# CAP_SYS_ADMIN, and changes nothing outside the container's subtree. When
# it fails, sandboxd's start-time check names what is missing.
for m in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do
	case " $(awk -v m="$m" '$2 == m { print $4 }' /proc/self/mounts | tr , ' ') " in
	*" ro "*) mount -o remount,bind,rw "$m" 2>/dev/null || true ;;
	esac
done

sandboxd serve --config "$conf" "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM INT
# alive: the daemon runs (a zombie, which kill -0 still finds, does not).
alive() {
	s=$(cat /proc/$pid/stat 2>/dev/null) || return 1
	set -- $s
	[ "$3" != Z ]
}

# The busybox image, once: the store (state_dir) keeps it afterwards.
i=0
until sandboxd status --socket "$socket" >/dev/null 2>&1; do
	alive || break
	i=$((i + 1))
	[ $i -le 600 ] || break
	sleep 0.1
done
if alive && ! sandboxd image inspect --socket "$socket" busybox >/dev/null 2>&1; then
	tar -C /usr/share/sandboxd/rootfs/busybox -c . | sandboxd image import --socket "$socket" --name busybox - >/dev/null ||
		echo "entrypoint: importing busybox failed" >&2
fi

# wait returns early when a trapped signal arrives; wait again until the
# daemon has finished its graceful stop, and exit with its status.
while :; do
	if wait $pid; then status=0; else status=$?; fi
	alive || break
done
exit $status
