#!/bin/sh
# Starts dockerd in the background when no Docker engine answers (there is
# no systemd here), and waits for it. For `make bench` only.
set -eu
command -v docker >/dev/null || exit 1
docker info >/dev/null 2>&1 && exit 0
command -v dockerd >/dev/null || exit 1
nohup dockerd >/var/log/sandboxd-bench-dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 60 ] && { echo "dockerd did not start: see /var/log/sandboxd-bench-dockerd.log" >&2; exit 1; }
	sleep 0.5
done
