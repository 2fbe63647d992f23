#!/bin/sh
# Builds the language images of images/recipes/ with mmdebstrap, from the
# Debian mirror configured in this machine's apt sources, and trims them.
#
#   scripts/build-images.sh [--force] [--list] [RECIPE...]    (default: every recipe)
#
# Each image is a plain root filesystem directory, kept OUTSIDE the checkout
# so that fresh clones on the same machine reuse it:
#
#   $SANDBOXD_IMAGE_CACHE/<recipe>/rootfs/        the tree (sandboxd exec --rootfs, or tar -C it | image import)
#   $SANDBOXD_IMAGE_CACHE/<recipe>/key            sha256 of the recipe + this script + suite + arch
#   $SANDBOXD_IMAGE_CACHE/<recipe>/image          the store name (IMAGE of the recipe)
#   $SANDBOXD_IMAGE_CACHE/<recipe>/packages.txt   what got installed, with versions
#   $SANDBOXD_IMAGE_CACHE/<recipe>/size           du -sb of rootfs/, in bytes
#
# (default cache: /var/cache/sandboxd/images). An image is rebuilt only when
# its key changes (or with --force, e.g. to take Debian's security updates);
# a build happens in a temporary directory renamed into place, so a
# finished image is never half-made, and a lock per recipe keeps two
# builders from doing the same work. --list prints "recipe key image rootfs"
# for every up-to-date image and builds nothing.
#
# Environment: SANDBOXD_IMAGE_CACHE; JOBS (parallel builds, default 2);
# MIRROR (a URI or "deb URI SUITE main" lines, overriding the apt sources);
# SUITE (default bookworm).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
recipes_dir=$(cd "$here/../images/recipes" && pwd)
cache=${SANDBOXD_IMAGE_CACHE:-/var/cache/sandboxd/images}
jobs=${JOBS:-2}
suite=${SUITE:-bookworm}
arch=$(dpkg --print-architecture)

die() { echo "build-images: $*" >&2; exit 1; }

# The mirrors: "deb URI SUITE main" for SUITE, SUITE-updates and
# SUITE-security as the machine's apt sources list them (deb822
# debian.sources, else the one-line sources.list format).
mirrors() {
	if [ -n "${MIRROR:-}" ]; then
		printf '%s\n' "$MIRROR"
		return
	fi
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$suite" '
			function flush(   n, m, i, j, us, ss) {
				if (types ~ /(^| )deb( |$)/ && enabled != "no") {
					n = split(uris, us, " "); m = split(suites, ss, " ")
					for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
						if (ss[j] == s || ss[j] == s "-updates" || ss[j] == s "-security")
							print "deb " us[i] " " ss[j] " main"
				}
				types = uris = suites = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				k = tolower($1); sub(/:$/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
				if (k == "types") types = v; else if (k == "uris") uris = v
				else if (k == "suites") suites = v; else if (k == "enabled") enabled = tolower(v)
			}
			END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v s="$suite" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				if ($(i+1) == s || $(i+1) == s "-updates" || $(i+1) == s "-security")
					print "deb " $i " " $(i+1) " main"
			}' "$f"
	done
}

recipe_key() {
	cat "$recipes_dir/$1" "$self" | { cat; printf '%s %s\n' "$suite" "$arch"; } | sha256sum | cut -d' ' -f1
}

recipe_image() {
	(
		IMAGE=""
		# shellcheck disable=SC1090
		. "$recipes_dir/$1"
		[ -n "$IMAGE" ] || die "recipe $1 sets no IMAGE"
		printf '%s\n' "$IMAGE"
	)
}

up_to_date() {
	[ -d "$cache/$1/rootfs" ] && [ -f "$cache/$1/key" ] && [ "$(cat "$cache/$1/key")" = "$(recipe_key "$1")" ]
}

# Removes what no program needs at run time: docs, man pages, locales,
# caches and logs, and empties /dev (sandboxd mounts its own).
trim() {
	root=$1
	find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
	rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" \
		"$root/usr/share/linda" "$root/usr/share/bug" "$root/usr/share/locale" \
		"$root/usr/share/bash-completion" "$root/usr/share/zsh"
	mkdir -p "$root/usr/share/locale"
	rm -rf "$root/var/cache/apt" "$root/var/lib/apt/lists" "$root/var/log"/* \
		"$root/var/cache/debconf"/*-old "$root/var/lib/dpkg"/*-old \
		"$root/var/cache/ldconfig"/* "$root/etc/machine-id" "$root/root/.cache"
	find "$root/var/lib/dpkg/info" -name '*.md5sums' -delete 2>/dev/null || true
	rm -rf "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/work"
	mkdir -p "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/work"
	chmod 755 "$root/dev" "$root/proc" "$root/sys" "$root/work"
	chmod 1777 "$root/tmp"
}

# rm -rf of a build tree, unless something is still mounted in it (a
# killed mmdebstrap may leave its bind mounts of the host's /dev behind).
remove_tree() {
	if awk -v p="$1/" 'index($2, p) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
		echo "build-images: leaving $1: something is mounted in it" >&2
		return 0
	fi
	rm -rf "$1"
}

build_one() {
	r=$1
	[ -f "$recipes_dir/$r" ] || die "no recipe images/recipes/$r"
	mkdir -p "$cache"
	exec 9>"$cache/.$r.lock"
	flock 9
	if [ "${FORCE:-0}" != 1 ] && up_to_date "$r"; then
		echo "build-images: $r is up to date ($(recipe_image "$r"), $(( $(cat "$cache/$r/size") / 1048576 )) MiB)"
		return 0
	fi
	key=$(recipe_key "$r")
	image=$(recipe_image "$r")
	pkgs=$(. "$recipes_dir/$r"; printf '%s' "$PACKAGES" | tr -s ' \t\n' ',' | sed 's/^,//; s/,$//')
	has_customize=$(. "$recipes_dir/$r"; command -v customize >/dev/null 2>&1 && echo 1 || echo 0)
	# What a killed builder left (the lock says none is running).
	for old in "$cache/.$r.build."*; do
		[ -e "$old" ] || continue
		if [ -d "$old" ]; then remove_tree "$old"; else rm -f "$old"; fi
	done
	tmp="$cache/.$r.build.$$"
	mkdir -p "$tmp"
	start=$(date +%s)
	echo "build-images: building $r ($image: $pkgs)"
	set -- --variant=essential --mode=root --include="$pkgs" \
		--hook-dir=/usr/share/mmdebstrap/hooks/maybe-merged-usr \
		--essential-hook='mkdir -p "$1/usr/share/man/man1"' \
		--aptopt='Acquire::Retries "3"' --dpkgopt=force-unsafe-io \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
	if [ "$has_customize" = 1 ]; then
		# The recipe's customize ROOT runs with the chroot's /proc and /dev mounted.
		set -- "$@" --customize-hook=". '$recipes_dir/$r' && customize \"\$1\""
	fi
	m=$(mirrors)
	[ -n "$m" ] || die "no $suite mirror in the apt sources (set MIRROR)"
	if ! mmdebstrap "$@" "$suite" "$tmp/rootfs" "$m" >"$tmp.log" 2>&1; then
		tail -n 30 "$tmp.log" >&2
		remove_tree "$tmp"
		die "$r: mmdebstrap failed (log: $tmp.log)"
	fi
	trim "$tmp/rootfs"
	chroot "$tmp/rootfs" dpkg-query -W -f='${Package} ${Version}\n' >"$tmp/packages.txt"
	du -sb "$tmp/rootfs" | cut -f1 >"$tmp/size"
	printf '%s\n' "$image" >"$tmp/image"
	printf '%s\n' "$key" >"$tmp/key"
	rm -rf "$cache/$r.old"
	[ ! -e "$cache/$r" ] || mv "$cache/$r" "$cache/$r.old"
	mv "$tmp" "$cache/$r"
	mv "$tmp.log" "$cache/$r/build.log"
	rm -rf "$cache/$r.old"
	echo "build-images: built $r in $(( $(date +%s) - start )) s ($image, $(( $(cat "$cache/$r/size") / 1048576 )) MiB)"
}

force=0 list=0
while [ $# -gt 0 ]; do
	case $1 in
	--force) force=1; shift ;;
	--list) list=1; shift ;;
	--one) shift; FORCE=${FORCE:-0} build_one "$1"; exit ;;
	-*) die "unknown flag $1" ;;
	*) break ;;
	esac
done
if [ $# -eq 0 ]; then
	set -- $(ls "$recipes_dir")
fi

if [ "$list" = 1 ]; then
	for r; do
		if up_to_date "$r"; then
			printf '%s %s %s %s\n' "$r" "$(cat "$cache/$r/key")" "$(cat "$cache/$r/image")" "$cache/$r/rootfs"
		fi
	done
	exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap --mode=root)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (scripts/deps.sh mmdebstrap)"
# Only the out-of-date ones, biggest first so that the parallel builds end together.
todo=""
for r; do
	if [ "$force" = 1 ] || ! up_to_date "$r"; then
		todo="$todo $(. "$recipes_dir/$r"; echo "${WEIGHT:-1}") $r"
	fi
done
[ -n "$todo" ] || exit 0
start=$(date +%s)
# shellcheck disable=SC2086
printf '%s %s\n' $todo | sort -rn | cut -d' ' -f2 |
	FORCE=$force xargs -r -n 1 -P "$jobs" "$self" --one
echo "build-images: done in $(( $(date +%s) - start )) s"
