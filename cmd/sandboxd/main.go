// Command sandboxd runs untrusted code in Linux sandboxes built with
// libcontainer. This package only wires command-line flags to the packages
// that do the work.
package main

import (
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// Device rules for cgroup v1 and v2; libcontainer needs this registered.
	_ "github.com/opencontainers/cgroups/devices"
	// The C half of libcontainer's init (namespace setup before Go starts).
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	"github.com/urfave/cli/v2"

	"github.com/sandboxd/sandboxd/runtime/entry"
)

// init is the only package init with side effects: libcontainer re-executes
// this binary as "init" inside each new sandbox, and that init then
// executes it once more as the sandbox's entry. Both must take over before
// main parses any flags.
func init() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "init":
		libcontainer.Init() // never returns
	case entry.Arg:
		entry.Main() // never returns
	}
}

func main() {
	app := &cli.App{
		Name:  "sandboxd",
		Usage: "run untrusted code in Linux sandboxes",
		Commands: []*cli.Command{
			execCommand(),
		},
		HideHelpCommand: true,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd:", err)
		os.Exit(exitSandboxFailed)
	}
}
