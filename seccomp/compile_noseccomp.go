//go:build !(linux && cgo && seccomp)

package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandboxd/sandboxd/errdefs"
)

// ErrNotBuiltIn is returned by binaries built without the seccomp tag. The
// sandbox refuses to run without a filter rather than run without one.
var ErrNotBuiltIn = errdefs.New(errdefs.ErrUnavailable, "seccomp: sandboxd was built without libseccomp (build tag \"seccomp\")")

// Compile always fails in a build without libseccomp.
func Compile(*specs.LinuxSeccomp) ([]byte, error) { return nil, ErrNotBuiltIn }

// LibraryVersion names the missing library.
func LibraryVersion() string { return "none" }
