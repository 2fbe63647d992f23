#!/bin/sh
# Builds a minimal busybox root filesystem in OUT from Debian's
# busybox-static: every applet linked to one static binary, a passwd with
# nobody, and the mount points sandboxd uses. Extra static binaries given
# after OUT are copied into OUT/usr/local/bin. The tree is made in a
# temporary directory and renamed into place, so OUT is never half-made.
set -eu
out=$1; shift
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "mkrootfs: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
tmp="$out.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/proc" "$tmp/dev" "$tmp/tmp" "$tmp/work" "$tmp/sys" "$tmp/usr/local/bin"
cp "$busybox" "$tmp/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$tmp/bin/$applet"
done
ln -s bin "$tmp/sbin"
ln -s ../bin "$tmp/usr/bin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/work:/bin/sh\n' > "$tmp/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$tmp/etc/group"
for bin in "$@"; do
	cp "$bin" "$tmp/usr/local/bin/"
done
chmod 1777 "$tmp/tmp"
rm -rf "$out"
mv "$tmp" "$out"
