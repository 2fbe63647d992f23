package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// screen collects what a pseudo-terminal's master reads.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// expect waits until want shows, then forgets it and what came before
// it, which it returns.
func (s *screen) expect(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		text := s.buf.String()
		if i := strings.Index(text, want); i >= 0 {
			s.buf.Next(i + len(want))
			s.mu.Unlock()
			return text[:i]
		}
		s.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("waiting for %q; the terminal shows %q", want, s.buf.String())
	return ""
}

// TestCLIInteractiveTerminal: `sandboxd run -it` and `sandboxd sandbox exec
// -it`, on a real pseudo-terminal as a user's: the remote shell's prompt,
// the local terminal's size inside and followed on a resize, Ctrl-C typed
// interrupting a sleep, the exit code passed through, and the local
// terminal's modes restored on exit.
func TestCLIInteractiveTerminal(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	// No trailing blank: busybox's line editing writes a query of the
	// cursor's position (ESC [6n) where the prompt's last blank would be.
	const prompt = "PROMPT>"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"run -it", []string{"run", "--socket", d.Socket, "-it", "--image", "busybox", "--env", "PS1=" + prompt, "--", "sh", "-i"}},
		{"sandbox exec -it", []string{"sandbox", "exec", "--socket", d.Socket, "-it", "--env", "PS1=" + prompt, sb.ID, "--", "sh", "-i"}},
	} {
		t.Run(tc.name, func(t *testing.T) { driveTerminalCLI(t, tc.args, prompt) })
	}
}

// driveTerminalCLI runs the CLI with args on a pseudo-terminal as a user
// would and checks what TestCLIInteractiveTerminal promises.
func driveTerminalCLI(t *testing.T, args []string, prompt string) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 37, Cols: 111}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sandboxdBin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// The terminal is the CLI's controlling one, as in a login: a
	// resize sends it SIGWINCH.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var scr screen
	go func() { _, _ = io.Copy(&scr, ptmx) }()
	typed := func(s string) {
		if _, err := ptmx.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	scr.expect(t, prompt)
	typed("stty size\r")
	scr.expect(t, "37 111\r\n"+prompt)
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 44, Cols: 99}); err != nil {
		t.Fatal(err)
	}
	// The resize travels: CLI's SIGWINCH, a message, the daemon's
	// TIOCSWINSZ; ask until it has.
	testdaemon.WaitUntil(t, "the remote size to follow", 10*time.Second, func() bool {
		typed("stty size\r")
		return strings.Contains(scr.expect(t, prompt), "44 99\r\n")
	})
	const marker = "611.9"
	typed("sleep " + marker + "\r")
	testdaemon.WaitUntil(t, "the sleep", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) > 0 })
	typed("\x03") // raw mode: Ctrl-C is a byte for the remote terminal
	scr.expect(t, prompt)
	testdaemon.WaitUntil(t, "the sleep to end", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) == 0 })
	typed("exit 7\r")
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Fatalf("the CLI ended with %v, want exit code 7", err)
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Iflag != before.Iflag || after.Oflag != before.Oflag || after.Lflag != before.Lflag || after.Cflag != before.Cflag {
		t.Errorf("the terminal's modes were not restored: %+v, before %+v", after, before)
	}
}

// TestCLIInteractivePipes: `sandboxd run -i` without a terminal streams
// stdin to the program while it runs and its output back as it comes, and
// passes the signals the CLI gets on to the program.
func TestCLIInteractivePipes(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	cmd := exec.Command(sandboxdBin, "run", "--socket", d.Socket, "-i", "--image", "busybox", "--", "sh", "-c",
		`read line; echo "got $line"; trap 'echo got INT; exit 4' INT; echo ready; while :; do sleep 0.1; done`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var scr screen
	cmd.Stdout, cmd.Stderr = &scr, &scr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if _, err := stdin.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	// The answer comes while the program still runs: it was streamed.
	scr.expect(t, "got hello\nready\n")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 {
		t.Fatalf("the CLI ended with %v, want exit code 4", err)
	}
	scr.expect(t, "got INT\n")
}
