package images

import (
	"strings"
)

// whiteout markers of the OCI image layer spec (after AUFS).
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// cleanEntryName turns a tar entry name (or a hard link's target) into a
// clean slash-separated path relative to the image root, or "." for the
// root itself. Leading slashes are dropped, as GNU tar does, so that an
// absolute name is contained in the image rather than refused (rootfs
// tarballs sometimes carry them); "." and empty components are dropped
// too. A ".." component anywhere is refused: no legitimate layer has one,
// and resolving it lexically would hide an attempt to climb out. NUL can't
// be in a file name.
//
// This is only the first gate: the unpacker still resolves every parent
// inside the root with openat2/RESOLVE_IN_ROOT, so symlinks left by
// earlier entries can't lead a write out either.
func cleanEntryName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", invalidf("tar entry name %q contains NUL", name)
	}
	parts := strings.Split(name, "/")
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", invalidf("tar entry name %q contains \"..\"", name)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return ".", nil
	}
	return strings.Join(out, "/"), nil
}

// whiteoutKind tells what an entry's base name means in a layer: a plain
// entry, a whiteout of a sibling named target, an opaque marker for its
// directory, or another AUFS metadata entry to skip.
type whiteoutKind int

const (
	notWhiteout whiteoutKind = iota
	whiteoutFile
	whiteoutDir
	whiteoutSkip
)

func classifyWhiteout(base string) (whiteoutKind, string) {
	switch {
	case base == whiteoutOpaque:
		return whiteoutDir, ""
	case strings.HasPrefix(base, whiteoutMeta):
		return whiteoutSkip, ""
	case strings.HasPrefix(base, whiteoutPrefix):
		target := base[len(whiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return whiteoutSkip, ""
		}
		return whiteoutFile, target
	}
	return notWhiteout, ""
}
