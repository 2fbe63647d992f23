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

	// The sandbox entry (C, run before the Go runtime).
	_ "github.com/sandboxd/sandboxd/runtime/entry"
)

// init is the only package init with side effects: libcontainer re-executes
// this binary as "init" inside each new sandbox, and it must take over
// before main parses any flags. (The init then executes the binary once
// more as the sandbox's entry; that one is caught by a C constructor in
// package entry before the Go runtime even starts.)
func init() {
	if len(os.Args) >= 2 && os.Args[1] == "init" {
		libcontainer.Init() // never returns
	}
}

func main() {
	app := &cli.App{
		Name:    "sandboxd",
		Usage:   "run untrusted code in Linux sandboxes",
		Version: version,
		Commands: []*cli.Command{
			execCommand(),
			serveCommand(),
			runCommand(),
			imageCommand(),
			langCommand(),
			statusCommand(),
		},
		HideHelpCommand: true,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd:", err)
		os.Exit(exitSandboxFailed)
	}
}
