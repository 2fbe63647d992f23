package rootfs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sandboxd/sandboxd/errdefs"
)

// ErrBadPath: a files-API path that is not under /work or /tmp, or
// malformed.
var ErrBadPath = errdefs.New(errdefs.ErrInvalid, "bad path")

// maxPathBytes bounds a whole API path (the kernel's PATH_MAX); a segment
// is bounded by NAME_MAX (255).
const maxPathBytes = 4096

// ScratchPath maps a files-API path to a path relative to the scratch dir:
// "a/b" → "work/a/b" (relative means under /work), "/work/a" → "work/a",
// "/work" or "" → "work", "/tmp/x" → "tmp/x", "/tmp" → "tmp". A trailing
// slash is ignored. Refused, as ErrBadPath: any other absolute path, "..",
// ".", empty segments, NUL and control characters, a segment over 255
// bytes, a path over 4096 bytes. The result is purely lexical: whatever it
// names is opened later with openat2 beneath the scratch dir, never by
// this string alone.
func ScratchPath(p string) (string, error) {
	switch {
	case len(p) > maxPathBytes:
		return "", fmt.Errorf("%w: longer than %d bytes", ErrBadPath, maxPathBytes)
	case strings.ContainsFunc(p, isControl): // NUL included
		return "", fmt.Errorf("%w: %q contains a control character", ErrBadPath, p)
	}
	q := p
	if len(q) > 1 {
		q = strings.TrimSuffix(q, "/")
	}
	if q == "" {
		return "work", nil
	}
	top, rest := "work", q
	if strings.HasPrefix(q, "/") {
		var more bool
		top, rest, more = strings.Cut(q[1:], "/")
		if top != "work" && top != "tmp" {
			return "", fmt.Errorf("%w: %q is not under /work or /tmp", ErrBadPath, p)
		}
		if !more {
			return top, nil
		}
	}
	if err := checkSegments(rest); err != nil {
		return "", fmt.Errorf("%w: %q %s", ErrBadPath, p, err)
	}
	return top + "/" + rest, nil
}

// checkSegments rejects the segments that would make a relative path
// mean something else than its text: "..", ".", empty, or too long.
// The error is the reason only, for the caller to wrap.
func checkSegments(rel string) error {
	for seg := range strings.SplitSeq(rel, "/") {
		switch {
		case seg == "..":
			return errors.New("contains \"..\"")
		case seg == "" || seg == ".":
			return errors.New("has an empty or \".\" segment")
		case len(seg) > 255:
			return errors.New("has a segment longer than 255 bytes")
		}
	}
	return nil
}

// APIPath is the inverse of ScratchPath, for display: "work/a" → "/work/a".
func APIPath(rel string) string { return "/" + rel }
