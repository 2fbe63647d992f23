package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/attach"
	"github.com/sandboxd/sandboxd/runtime"
)

// interactiveFlags are docker's -i and -t, for run and sandbox exec.
var interactiveFlags = []cli.Flag{
	&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open: what is typed reaches the program while it runs"},
	&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "run the program on a terminal of its own (stdin must be a terminal)"},
}

// terminal is the local terminal's size, for a run with -t.
type terminal struct {
	on         bool
	rows, cols int
}

// wantsInteractive reports whether the run goes over a WebSocket.
func wantsInteractive(c *cli.Context) bool { return c.Bool("interactive") || c.Bool("tty") }

// runAttached starts a run over a WebSocket and connects this process's
// stdin, stdout and stderr to it; it returns the program's exit code.
func runAttached(c *cli.Context, who string, start func(terminal) (*client.Interactive, error)) (int, error) {
	var t terminal
	if c.Bool("tty") {
		rows, cols, ok := attach.Size(os.Stdin)
		if !ok {
			return 0, errors.New("-t needs a terminal on stdin")
		}
		t = terminal{on: true, rows: rows, cols: cols}
	}
	if c.IsSet("stdin") {
		return 0, errors.New("--stdin and -i/-t exclude each other")
	}
	run, err := start(t)
	if err != nil {
		return 0, err
	}
	out, err := attach.Attach(c.Context, run, attach.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, t.on)
	if err != nil {
		return 0, err
	}
	if out.Error != nil {
		return 0, fmt.Errorf("%s: %s", out.Error.Code, out.Error.Message)
	}
	if out.Result == nil {
		// A language request that did not compile: its result has no run.
		fmt.Fprintf(os.Stderr, "%s: %s\n", who, out.Status)
		return 1, nil
	}
	if out.Result.Status != runtime.StatusOK && out.Result.Status != runtime.StatusRuntimeError {
		fmt.Fprintf(os.Stderr, "%s: %s\n", who, describe(out.Result))
	}
	if out.Result.Status == runtime.StatusInternalError {
		return exitSandboxFailed, nil
	}
	return out.Result.ExitCode, nil
}
