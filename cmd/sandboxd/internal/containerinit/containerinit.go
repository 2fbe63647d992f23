// Package containerinit hands the process to libcontainer's init when
// sandboxd is re-executed as "init" inside a new sandbox. It is the only
// package init with side effects.
//
// Its place is chosen for speed: Go initializes packages in import-path
// order as soon as their imports are ready, and this path sorts before
// most of the daemon's own packages (images, server, session...), so a
// sandbox's init skips their initialization. Packages that sort earlier
// and are ready earlier are still initialized first: in this binary, 96
// that the init never uses (third-party ones such as the registry
// client's names, prometheus and a JSON schema library, and crypto), 2 ms
// of a sandbox's start (GODEBUG=inittrace=1 sandboxd init). No path of
// this module sorts before them. Keep its imports to libcontainer's own.
package containerinit

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// Device rules for cgroup v1 and v2; libcontainer needs this registered.
	_ "github.com/opencontainers/cgroups/devices"
	// The C half of libcontainer's init (namespace setup before Go starts).
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

func init() {
	if len(os.Args) >= 2 && os.Args[1] == "init" {
		libcontainer.Init() // never returns
	}
}
