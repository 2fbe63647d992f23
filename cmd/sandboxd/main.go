// Command sandboxd runs untrusted code in Linux sandboxes built with
// libcontainer. This package only wires command-line flags to the packages
// that do the work.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	// libcontainer's init, when this binary runs as one inside a sandbox.
	_ "github.com/sandboxd/sandboxd/cmd/sandboxd/internal/containerinit"
	// The sandbox entry (C, run before the Go runtime).
	_ "github.com/sandboxd/sandboxd/runtime/entry"
)

// libcontainer re-executes this binary as "init" inside each new sandbox;
// package containerinit takes over then, before main parses any flags. (The
// init then executes the binary once more as the sandbox's entry; that one
// is caught by a C constructor in package entry before the Go runtime even
// starts.)

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
			sandboxCommand(),
			cpCommand(),
			mcpCommand(),
		},
		HideHelpCommand: true,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd:", err)
		os.Exit(exitSandboxFailed)
	}
}
