#!/bin/sh
# `make run`: start sandboxd in the foreground with its socket and state
# under a folder of the checkout, after making sure the default images are
# in its store. Ctrl-C (or SIGTERM) stops it gracefully.
set -eu
bin=$1 rootfs=$2 dir=${SANDBOXD_DEMO_DIR:-$(pwd)/.cache/demo}
mkdir -p "$dir"
socket="$dir/sandboxd.sock"
"$bin" serve --socket "$socket" --state-dir "$dir/state" --run-dir "$dir/run" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; exit 0' INT TERM
i=0
until "$bin" status --socket "$socket" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
		echo "run: the daemon did not start" >&2
		exit 1
	fi
	sleep 0.1
done
if ! "$bin" image inspect --socket "$socket" busybox >/dev/null 2>&1; then
	tar -C "$rootfs" -c . | "$bin" image import --socket "$socket" --name busybox - >/dev/null
fi
cat <<EOM

sandboxd is running. In another terminal:

  curl --unix-socket $socket http://localhost/v1/execute -d '{"image":"busybox","cmd":["/bin/sh","-c","echo hello from \$(hostname)"]}'

Ctrl-C stops it.
EOM
wait $pid
