#!/bin/sh
# `make run`: start sandboxd in the foreground with its socket and state
# under a folder of the checkout, after making sure the default images
# (busybox and the language images of `make images`) are in its store.
# Ctrl-C (or SIGTERM) stops it gracefully.
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
# The language images scripts/build-images.sh built (make images): each is
# imported when the store lacks it or holds an older build of its recipe
# (the key of the last import is kept in $dir/lang-images/).
"$(dirname "$0")/build-images.sh" --list | while read -r recipe key image tree; do
	mark="$dir/lang-images/$recipe"
	if [ "$(cat "$mark" 2>/dev/null)" = "$key" ] && "$bin" image inspect --socket "$socket" "$image" >/dev/null 2>&1; then
		continue
	fi
	echo "run: importing $image" >&2
	tar -C "$tree" --numeric-owner -c . | "$bin" image import --socket "$socket" --name "$image" - >/dev/null
	mkdir -p "$dir/lang-images"
	printf '%s\n' "$key" >"$mark"
done
cat <<EOM

sandboxd is running. In another terminal:

  curl --unix-socket $socket http://localhost/v1/execute -d '{"image":"busybox","cmd":["/bin/sh","-c","echo hello from \$(hostname)"]}'

Ctrl-C stops it.
EOM
wait $pid
