package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// TestCLIInteractive: `sandboxd run -i` and `sandboxd sandbox exec -i`
// pass what is written to their stdin to the program while it runs (the
// answer to the first line arrives before the second is written), end the
// program's stdin when theirs ends, and exit with the program's code.
func TestCLIInteractive(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	const script = `read a; echo "got $a"; read b; echo "got $b" >&2; cat; exit 4`
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"run -i", []string{"run", "-i", "--socket", d.Socket, "--image", "busybox", "--", "sh", "-c", script}},
		{"sandbox exec -i", []string{"sandbox", "exec", "-i", "--socket", d.Socket, sb.ID, "--", "sh", "-c", script}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, sandboxdBin, tc.args...)
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			io.WriteString(in, "one\n")
			first := make([]byte, len("got one\n"))
			if _, err := io.ReadFull(out, first); err != nil || string(first) != "got one\n" {
				t.Fatalf("first answer %q, %v (stderr %q)", first, err, stderr.String())
			}
			io.WriteString(in, "two\nthree\n")
			in.Close()
			rest, _ := io.ReadAll(out)
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 4 {
				t.Errorf("exit: %v, want code 4 (stderr %q)", err, stderr.String())
			}
			if string(rest) != "three\n" || !strings.Contains(stderr.String(), "got two\n") {
				t.Errorf("stdout after the first line %q, stderr %q", rest, stderr.String())
			}
		})
	}
	t.Run("sandbox exec ID -- CMD with a -- of its own", func(t *testing.T) {
		// The flag parser keeps the separator after a positional ID.
		out, err := exec.CommandContext(ctx, sandboxdBin, "sandbox", "exec", "--socket", d.Socket, sb.ID, "--", "echo", "--", "x").CombinedOutput()
		if err != nil || string(out) != "-- x\n" {
			t.Errorf("exit %v, output %q", err, out)
		}
	})
}
