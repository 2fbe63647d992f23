#!/bin/sh
# `make test`'s phases, in order. On a fresh machine the language images
# take about 14 minutes to build, and most of the suite does not use them,
# so they build in the background while the packages that need no image
# run, the cgroup v2 VM boots and the fuzz targets run; the packages that
# need images (IMAGE_TESTS) and the soak run once they are built. Where the
# images are already built (IMAGE_CACHE), the background build only checks
# their keys and ends at once.
#
#   scripts/test.sh          (make test sets everything below)
#
# Environment: GO, TAGS, BIN, TESTROOT, IMAGE_CACHE, IMAGE_JOBS,
# IMAGE_TESTS (the go packages that import language images), LATE_TESTS
# (those that need no image but may wait for the build), MAKE.
set -eu

: "${GO:?}" "${TAGS:?}" "${BIN:?}" "${TESTROOT:?}" "${IMAGE_CACHE:?}" "${IMAGE_TESTS:?}" "${LATE_TESTS:?}" "${MAKE:=make}"
here=$(cd "$(dirname "$0")" && pwd)
export SANDBOXD_BIN="$PWD/$BIN" SANDBOXD_ROOTFS="$PWD/$TESTROOT" SANDBOXD_IMAGE_CACHE="$IMAGE_CACHE"

say() { echo "test: $*" >&2; }

# The image build's output goes to a file, shown when it is waited for, so
# that it does not interleave with the tests'.
mkdir -p "$IMAGE_CACHE"
images_log="$IMAGE_CACHE/.build-for-test.log"
JOBS=${IMAGE_JOBS:-2} "$here/build-images.sh" >"$images_log" 2>&1 &
images_pid=$!

# Waits for the image build and fails when it failed. A failing phase
# waits for it too: killing mmdebstrap midway would leave its bind mounts
# of /dev, /proc and /sys on the host, and a finished image is kept for
# the next run anyway.
images_status=
wait_images() {
	[ -z "$images_status" ] || return "$images_status"
	say "waiting for the language images (scripts/build-images.sh, log: $images_log)"
	images_status=0
	wait "$images_pid" || images_status=$?
	cat "$images_log" >&2
	[ "$images_status" = 0 ] || say "building the language images failed"
	return "$images_status"
}
trap 'rc=$?; trap - EXIT; [ -n "$images_status" ] || wait_images || true; exit $rc' EXIT

# shellcheck disable=SC2086
image_pkgs=$($GO list $IMAGE_TESTS)
# shellcheck disable=SC2086
late_pkgs=$($GO list $LATE_TESTS)
no_images=$($GO list ./... | grep -vxF "$image_pkgs" | grep -vxF "$late_pkgs")

$GO vet -tags "$TAGS" ./...
say "the packages that need no language image"
# shellcheck disable=SC2086
$GO test -tags "$TAGS" -count=1 -p 1 -timeout 35m $no_images
$MAKE --no-print-directory test-cgroup2
$MAKE --no-print-directory fuzz
# LATE_TESTS wait for the image build at some point (the README's quick
# start runs `make run`, which builds the images): last, so that the rest
# runs beside the build instead of after it.
say "the packages that may wait for the image build"
# shellcheck disable=SC2086
$GO test -tags "$TAGS" -count=1 -p 1 -timeout 35m $late_pkgs
wait_images
say "the packages that run language images"
# shellcheck disable=SC2086
$GO test -tags "$TAGS" -count=1 -p 1 -timeout 35m $IMAGE_TESTS
gcc_rootfs=$("$here/build-images.sh" --list gcc | awk '{print $4}')
$GO run ./bench/soak -bin "$BIN" -rootfs "$TESTROOT" -seq 300 -conc 100 -warmup 50 -gcc-rootfs "$gcc_rootfs"
