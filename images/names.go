package images

import (
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultTag is the tag of a name given without one.
const DefaultTag = "latest"

// Compiled on first use: a regexp built at package init costs every
// start of the binary (libcontainer's init among them) its compile.
var (
	nameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9._/-]+$`) })
	tagRe  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`) })
)

// maxNameLen bounds the repository part of a name, as registries do.
const maxNameLen = 255

// ParseName normalises an image name to name:tag ("busybox" becomes
// "busybox:latest") and validates it: the name is made of [a-z0-9._/-]
// in non-empty slash-separated components that are not "." or "..", the
// tag of [A-Za-z0-9_.-], at most 128 characters. Names are only keys of
// refs.json, never paths, but are kept this strict so that they print and
// pass through URLs unharmed.
func ParseName(s string) (string, error) {
	repo, tag := s, DefaultTag
	if i := strings.IndexByte(s, ':'); i >= 0 {
		repo, tag = s[:i], s[i+1:]
	}
	if repo == "" || len(repo) > maxNameLen || !nameRe().MatchString(repo) {
		return "", invalidf("bad image name %q: want [a-z0-9._/-]+", s)
	}
	for _, c := range strings.Split(repo, "/") {
		if c == "" || c == "." || c == ".." {
			return "", invalidf("bad image name %q: empty, \".\" or \"..\" component", s)
		}
	}
	if !tagRe().MatchString(tag) {
		return "", invalidf("bad image tag in %q: want [A-Za-z0-9_.-]{1,128}", s)
	}
	return repo + ":" + tag, nil
}

// nameFromRef derives a local name from a registry reference: the
// repository's last component and the tag, so "docker.io/library/busybox:1.36"
// becomes "busybox:1.36". A reference by digest gets the tag
// "sha256-<first 12 hex digits>", as a digest is no valid tag.
func nameFromRef(ref name.Reference) (string, error) {
	repo := ref.Context().RepositoryStr()
	base := repo[strings.LastIndexByte(repo, '/')+1:]
	tag := ref.Identifier()
	if d, ok := ref.(name.Digest); ok {
		hex := strings.TrimPrefix(d.DigestStr(), "sha256:")
		if len(hex) > 12 {
			hex = hex[:12]
		}
		tag = "sha256-" + hex
	}
	return ParseName(strings.ToLower(base) + ":" + tag)
}
