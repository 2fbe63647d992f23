// Package containerinit hands the process to libcontainer's init when
// sandboxd is re-executed as "init" inside a new sandbox. It is the only
// package init with side effects.
//
// Its place is chosen for speed: Go initializes packages in import-path
// order as soon as their imports are ready, and this path sorts before the
// daemon's heavier packages (images, the registry client, metrics), so a
// sandbox's init skips their initialization — about 2 ms per sandbox. Keep
// its imports to libcontainer's own.
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
