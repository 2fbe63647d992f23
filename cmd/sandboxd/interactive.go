package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/runtime"
)

// -i and -t, as docker's: -i streams stdin to the program while it runs
// (over the daemon's WebSocket), -t runs it on a terminal. With both and
// a local terminal, that terminal is put in raw mode (every key goes to
// the program, Ctrl-C included) and its size followed; it is restored on
// exit.
func interactiveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "send standard input while the program runs; show its output as it comes"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "run the program on a terminal (stdout and stderr are then one stream)"},
	}
}

// maxTerminalSide is the daemon's bound on rows and columns.
const maxTerminalSide = 1000

// localSize is the local terminal's size, when stdout is one: the remote
// terminal starts at it. 0, 0 (the daemon's default) otherwise.
func localSize() (rows, cols int) {
	cols, rows, err := term.GetSize(int(os.Stdout.Fd()))
	if err != nil || rows <= 0 || cols <= 0 {
		return 0, 0
	}
	return min(rows, maxTerminalSide), min(cols, maxTerminalSide)
}

// interactiveRun drives a run over the WebSocket until its result and
// returns the exit code to leave with, as the plain calls do.
func interactiveRun(ctx context.Context, s *client.Interactive, tty bool, prog string) (int, error) {
	defer s.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := int(os.Stdin.Fd())
	if tty && term.IsTerminal(in) {
		old, err := term.MakeRaw(in)
		if err != nil {
			return 0, fmt.Errorf("putting the terminal in raw mode: %w", err)
		}
		defer term.Restore(in, old)
		go followSize(ctx, s)
	} else {
		// Without a local raw terminal, Ctrl-C and friends reach sandboxd:
		// they are the program's.
		go forwardSignals(ctx, s)
	}
	go pumpStdin(ctx, s)
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			return 0, fmt.Errorf("the connection ended before the result: %w", err)
		}
		switch ev.Type {
		case "stdout", "stderr":
			b, err := ev.Bytes()
			if err != nil {
				return 0, err
			}
			w := os.Stdout
			if ev.Type == "stderr" {
				w = os.Stderr
			}
			_, _ = w.Write(b)
		case "error":
			if ev.Error == nil {
				return 0, errors.New("the daemon reported an error")
			}
			return 0, &client.Error{Code: ev.Error.Code, Message: ev.Error.Message}
		case "result":
			return interactiveExit(ev, prog)
		}
	}
}

// interactiveExit reads the result event: raw and language mode both hold
// "status" and "run" (and language mode "compile").
func interactiveExit(ev *client.Event, prog string) (int, error) {
	var res struct {
		Status  runtime.Status `json:"status"`
		Run     *api.Result    `json:"run"`
		Compile *api.Result    `json:"compile"`
	}
	if err := ev.Result(&res); err != nil {
		return 0, err
	}
	if res.Run == nil {
		// A compile that failed: its output came as events already.
		fmt.Fprintf(os.Stderr, "%s: %s\n", prog, res.Status)
		return 1, nil
	}
	if res.Run.Status != runtime.StatusOK && res.Run.Status != runtime.StatusRuntimeError {
		fmt.Fprintf(os.Stderr, "%s: %s\n", prog, describe(res.Run))
	}
	if res.Run.Status == runtime.StatusInternalError {
		return exitSandboxFailed, nil
	}
	return res.Run.ExitCode, nil
}

// pumpStdin sends what is read from stdin as it comes; its end closes the
// program's input (on a terminal, Ctrl-D is typed).
func pumpStdin(ctx context.Context, s *client.Interactive) {
	buf := make([]byte, 32<<10)
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 && s.Stdin(ctx, buf[:n]) != nil {
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = s.CloseStdin(ctx)
			}
			return
		}
	}
}

// followSize sends the local terminal's new size on every SIGWINCH.
func followSize(ctx context.Context, s *client.Interactive) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGWINCH)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if rows, cols := localSize(); rows > 0 {
				_ = s.Resize(ctx, rows, cols)
			}
		}
	}
}

// forwardSignals passes the signals a user sends sandboxd (Ctrl-C, Ctrl-\,
// kill) on to the program; its result then says how it ended.
func forwardSignals(ctx context.Context, s *client.Interactive) {
	names := map[os.Signal]string{unix.SIGINT: "SIGINT", unix.SIGTERM: "SIGTERM", unix.SIGHUP: "SIGHUP", unix.SIGQUIT: "SIGQUIT"}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-ch:
			_ = s.Signal(ctx, names[sig])
		}
	}
}
